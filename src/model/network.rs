//! Dense networks: the linear model (no hidden layer) and the MLP share one definition.
//!
//! Parameters are one flat vector: for each layer l with `fan_in` inputs and `fan_out`
//! outputs, W_l as `fan_in x fan_out` row-major, then b_l; then the head's globals.
//! Forward: a_0 = x, z_l = a_{l-1} W_l + b_l, a_l = act(z_l) for hidden layers; eta = z_last.
//! Backward: delta_last = dNLL/deta; dW_l = a_{l-1}^T delta_l, db_l = delta_l,
//! delta_{l-1} = (W_l delta_l) * act'(z_{l-1}).

use super::conditioning::Conditioning;
use super::head::Head;
use crate::family::FamilyName;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// Hidden-layer nonlinearity.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Tanh,
    /// GELU in its tanh form (PyTorch's `approximate="tanh"`).
    Gelu,
}

const GELU_C: f64 = 0.797_884_560_802_865_4; // sqrt(2 / pi)
const GELU_A: f64 = 0.044_715;

impl Activation {
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => z.tanh(),
            Activation::Gelu => 0.5 * z * (1.0 + (GELU_C * (z + GELU_A * z * z * z)).tanh()),
        }
    }
    /// a = act(z) for the first `m` values of each of `units` rows of `stride` values (the
    /// match outside the loops, which then vectorise).
    #[inline(always)]
    fn apply_rows(self, z: &[f64], a: &mut [f64], stride: usize, units: usize, m: usize) {
        for u in 0..units {
            let (zs, as_) = (
                &z[u * stride..u * stride + m],
                &mut a[u * stride..u * stride + m],
            );
            match self {
                Activation::Relu => as_.iter_mut().zip(zs).for_each(|(a, &z)| *a = z.max(0.0)),
                _ => as_
                    .iter_mut()
                    .zip(zs)
                    .for_each(|(a, &z)| *a = self.apply(z)),
            }
        }
    }

    /// d *= act'(z), laid out as in [`Activation::apply_rows`].
    #[inline(always)]
    fn scale_rows_by_derivative(
        self,
        z: &[f64],
        d: &mut [f64],
        stride: usize,
        units: usize,
        m: usize,
    ) {
        for u in 0..units {
            let (zs, ds) = (
                &z[u * stride..u * stride + m],
                &mut d[u * stride..u * stride + m],
            );
            match self {
                Activation::Relu => ds
                    .iter_mut()
                    .zip(zs)
                    .for_each(|(d, &z)| *d *= (z > 0.0) as u8 as f64),
                _ => ds
                    .iter_mut()
                    .zip(zs)
                    .for_each(|(d, &z)| *d *= self.derivative(z)),
            }
        }
    }

    pub fn derivative(self, z: f64) -> f64 {
        match self {
            Activation::Relu => (z > 0.0) as u8 as f64,
            Activation::Tanh => 1.0 - z.tanh().powi(2),
            Activation::Gelu => {
                let t = (GELU_C * (z + GELU_A * z * z * z)).tanh();
                0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * z * z)
            }
        }
    }
}

/// A network's shape: inputs, hidden widths, activation, head.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub inputs: usize,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub head: Head,
}

/// Where one layer's weights and biases sit in the flat parameter vector.
#[derive(Clone, Copy, Debug)]
pub struct LayerSlots {
    pub fan_in: usize,
    pub fan_out: usize,
    pub weights: usize,
    pub bias: usize,
}

impl Network {
    /// A linear model of `inputs` features: no hidden layer, the family's head (for the
    /// categorical family K - 1 logits against the first class as the reference).
    pub fn linear(inputs: usize, family: FamilyName, classes: usize) -> Network {
        Network {
            inputs,
            hidden: vec![],
            activation: Activation::Relu,
            head: Head::new(family, classes, true),
        }
    }

    /// Widths from input to output.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.inputs];
        w.extend(&self.hidden);
        w.push(self.head.outputs());
        w
    }

    pub fn layers(&self) -> Vec<LayerSlots> {
        let widths = self.widths();
        let mut at = 0;
        widths
            .windows(2)
            .map(|w| {
                let slots = LayerSlots {
                    fan_in: w[0],
                    fan_out: w[1],
                    weights: at,
                    bias: at + w[0] * w[1],
                };
                at += w[0] * w[1] + w[1];
                slots
            })
            .collect()
    }

    /// Offset of the head's globals.
    pub fn globals_offset(&self) -> usize {
        self.layers().last().map_or(0, |l| l.bias + l.fan_out)
    }

    /// [`Network::param_count`], or None where it overflows usize (absurd widths).
    pub fn checked_param_count(&self) -> Option<usize> {
        let mut total = self.head.globals();
        for w in self.widths().windows(2) {
            total = total.checked_add(w[0].checked_mul(w[1])?.checked_add(w[1])?)?;
        }
        Some(total)
    }

    pub fn param_count(&self) -> usize {
        self.globals_offset() + self.head.globals()
    }

    /// True for weights (which priors and weight decay act on), false for biases and globals.
    pub fn weight_mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.param_count()];
        for l in self.layers() {
            mask[l.weights..l.bias].iter_mut().for_each(|m| *m = true);
        }
        mask
    }

    /// Seeded initialisation: He normal (sqrt(2 / fan_in)) before ReLU and GELU, Glorot normal
    /// (sqrt(2 / (fan_in + fan_out))) before tanh and for the output layer; zero biases. A
    /// linear model (no hidden layer) starts at zero: its NLL is convex (the CLI then starts
    /// one with an intercept at the intercept-only MLE, [`Network::start_at_intercept_only`]).
    pub fn init(&self, seed: u64, y: &[f64]) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = vec![0.0; self.param_count()];
        let layers = self.layers();
        if !self.hidden.is_empty() {
            for (i, l) in layers.iter().enumerate() {
                let last = i + 1 == layers.len();
                let var = if !last && self.activation != Activation::Tanh {
                    2.0 / l.fan_in as f64
                } else {
                    2.0 / (l.fan_in + l.fan_out) as f64
                };
                let normal = Normal::new(0.0, var.sqrt()).expect("finite variance");
                for p in &mut params[l.weights..l.bias] {
                    *p = normal.sample(&mut rng);
                }
            }
        }
        let g = self.globals_offset();
        params[g..].copy_from_slice(&self.head.initial_globals(y));
        params
    }

    /// Sets the output layer's biases to the intercept-only MLE of targets `y` (see
    /// [`super::head::Head::intercept_only_eta`]), the start of a linear model with an
    /// intercept: with centred features, the bias is eta at the features' centre.
    pub fn start_at_intercept_only(&self, params: &mut [f64], y: &[f64]) {
        if let Some(last) = self.layers().last() {
            let eta = self.head.intercept_only_eta(y);
            params[last.bias..last.bias + last.fan_out].copy_from_slice(&eta);
        }
    }

    /// The outputs eta for one input row; `z` receives every layer's pre-activations.
    pub fn forward(&self, params: &[f64], x: &[f64], z: &mut Vec<Vec<f64>>) -> Vec<f64> {
        z.clear();
        let layers = self.layers();
        let mut a = x.to_vec();
        for (i, l) in layers.iter().enumerate() {
            let mut out = params[l.bias..l.bias + l.fan_out].to_vec();
            for (j, &aj) in a.iter().enumerate() {
                let row = &params[l.weights + j * l.fan_out..l.weights + (j + 1) * l.fan_out];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += aj * w;
                }
            }
            z.push(out.clone());
            a = if i + 1 < layers.len() {
                out.iter().map(|&v| self.activation.apply(v)).collect()
            } else {
                out
            };
        }
        a
    }

    /// Total NLL over `rows` (indices into the n x d row-major `x`) and its gradient, in f64.
    /// Rows are processed in parallel blocks of a fixed size whose results are added in a fixed
    /// order (so the sums do not depend on the number of threads).
    pub fn nll_and_grad(
        &self,
        params: &[f64],
        x: &[f64],
        y: &[f64],
        rows: &[usize],
    ) -> (f64, Vec<f64>) {
        self.conditioned_nll_and_grad(params, x, y, rows, None)
    }

    /// [`Network::nll_and_grad`] of the rows as `cond` re-expresses them (each row conditioned
    /// in f64 as it is read), with `params` in the conditioned coordinates.
    pub fn conditioned_nll_and_grad(
        &self,
        params: &[f64],
        x: &[f64],
        y: &[f64],
        rows: &[usize],
        cond: Option<&Conditioning>,
    ) -> (f64, Vec<f64>) {
        let p = self.param_count();
        let cond = cond.filter(|c| !c.is_identity());
        // Each block's sums are made alone and added in block order: the same result whatever
        // the threads (the scratch space carries no values from block to block).
        let blocks: Vec<(f64, Vec<f64>)> = rows
            .par_chunks(BLOCK_ROWS)
            .map_init(
                || BlockScratch::new(self),
                |scratch, block| {
                    let mut grad = vec![0.0; p];
                    let block = Block {
                        params,
                        x,
                        y,
                        rows: block,
                        cond,
                    };
                    let nll = self.block_backward(&block, scratch, &mut grad);
                    (nll, grad)
                },
            )
            .collect();
        let mut grad = vec![0.0; p];
        let mut nll = 0.0;
        for (f, g) in blocks {
            nll += f;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        (nll, grad)
    }

    /// The NLL of a block of at most [`BLOCK_ROWS`] rows; adds their gradient into `grad`.
    /// The block's values are held transposed (one row of `BLOCK_ROWS` values per unit of a
    /// layer), so that every loop runs over the block's rows, whatever the layers' widths,
    /// and vectorises: a forward or backward step is an axpy of a unit's row, a weight's
    /// gradient a dot product of two rows. Where the CPU has AVX2 the same code is compiled
    /// for it (chosen at run time), with the same results: the loops over rows are
    /// independent per row, and the dot products fix their order of additions
    /// ([`Lanes`]).
    fn block_backward(&self, block: &Block<'_>, s: &mut BlockScratch, grad: &mut [f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { self.block_backward_avx2(block, s, grad) };
        }
        self.block_backward_with::<Portable>(block, s, grad)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn block_backward_avx2(
        &self,
        block: &Block<'_>,
        s: &mut BlockScratch,
        grad: &mut [f64],
    ) -> f64 {
        self.block_backward_with::<Avx2>(block, s, grad)
    }

    #[inline(always)]
    fn block_backward_with<L: Lanes>(
        &self,
        block: &Block<'_>,
        s: &mut BlockScratch,
        grad: &mut [f64],
    ) -> f64 {
        const R: usize = BLOCK_ROWS;
        let Block {
            params,
            x,
            y,
            rows,
            cond,
        } = *block;
        let m = rows.len();
        let d = self.inputs;
        // The rows of a shuffled minibatch lie anywhere in the table: ask for all of them at
        // once, so that their cache (and TLB) misses overlap instead of coming one by one.
        debug_assert!(m <= R, "a block of {m} rows");
        #[cfg(target_arch = "x86_64")]
        for &row in rows {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // Every cache line of the row (8 f64s a line), and its target. The slices are
            // bounds-checked, so the addresses lie in `x` and `y`.
            let values = &x[row * d..(row + 1) * d];
            let target = &y[row..=row];
            // SAFETY: a prefetch reads nothing and writes nothing; it only hints the cache.
            unsafe {
                for line in values.iter().step_by(8).chain(values.last()) {
                    _mm_prefetch(line as *const f64 as *const i8, _MM_HINT_T0);
                }
                _mm_prefetch(target.as_ptr() as *const i8, _MM_HINT_T0);
            }
        }
        // The block's inputs, transposed: xt[j * R + r] = x_j of row r.
        for (r, &row) in rows.iter().enumerate() {
            let raw = &x[row * d..(row + 1) * d];
            let values = match cond {
                Some(c) => {
                    c.row_into(raw, &mut s.row);
                    &s.row[..]
                }
                None => raw,
            };
            for (j, &v) in values.iter().enumerate() {
                s.xt[j * R + r] = v;
            }
        }
        let layers = &s.layers;
        let last = layers.len() - 1;
        // Forward: z_o = b_o + sum_j a_j W_jo, in order of j (as a row at a time adds them).
        for (i, l) in layers.iter().enumerate() {
            let z = &mut s.z[i];
            let input: &[f64] = if i == 0 { &s.xt } else { &s.a[i - 1] };
            for o in 0..l.fan_out {
                z[o * R..o * R + m].fill(params[l.bias + o]);
            }
            for j in 0..l.fan_in {
                let a_j = &input[j * R..j * R + m];
                let weights = &params[l.weights + j * l.fan_out..l.weights + (j + 1) * l.fan_out];
                for (o, &w) in weights.iter().enumerate() {
                    axpy(w, a_j, &mut z[o * R..o * R + m]);
                }
            }
            if i < last {
                self.activation.apply_rows(z, &mut s.a[i], R, l.fan_out, m);
            }
        }
        // The head, a row at a time: its NLL and dNLL/deta.
        let g = s.globals_at;
        let outputs = layers[last].fan_out;
        let mut nll = 0.0;
        for (r, &row) in rows.iter().enumerate() {
            for k in 0..outputs {
                s.eta[k] = s.z[last][k * R + r];
            }
            s.d_eta.iter_mut().for_each(|v| *v = 0.0);
            let target = cond.map_or(y[row], |c| c.target(y[row]));
            nll += self
                .head
                .nll(&s.eta, &params[g..], target, &mut s.d_eta, &mut grad[g..]);
            for k in 0..outputs {
                s.delta[k * R + r] = s.d_eta[k];
            }
        }
        // Backward: dW_jo += sum_r a_j delta_o, db_o += sum_r delta_o,
        // delta'_j = (sum_o W_jo delta_o) * act'(z'_j).
        for i in (0..layers.len()).rev() {
            let l = layers[i];
            let input: &[f64] = if i == 0 { &s.xt } else { &s.a[i - 1] };
            for j in 0..l.fan_in {
                let a_j = &input[j * R..j * R + m];
                let row = &mut grad[l.weights + j * l.fan_out..l.weights + (j + 1) * l.fan_out];
                for (o, gw) in row.iter_mut().enumerate() {
                    // SAFETY: `L` is Portable, or Avx2 inside block_backward_avx2, which
                    // runs only where the CPU has AVX2.
                    *gw += unsafe { L::dot(a_j, &s.delta[o * R..o * R + m]) };
                }
            }
            for (o, gb) in grad[l.bias..l.bias + l.fan_out].iter_mut().enumerate() {
                *gb += sum_in_lanes(&s.delta[o * R..o * R + m]);
            }
            if i > 0 {
                for j in 0..l.fan_in {
                    let back = &mut s.previous[j * R..j * R + m];
                    back.fill(0.0);
                    let weights =
                        &params[l.weights + j * l.fan_out..l.weights + (j + 1) * l.fan_out];
                    for (o, &w) in weights.iter().enumerate() {
                        axpy(w, &s.delta[o * R..o * R + m], back);
                    }
                }
                self.activation.scale_rows_by_derivative(
                    &s.z[i - 1],
                    &mut s.previous,
                    R,
                    l.fan_in,
                    m,
                );
                std::mem::swap(&mut s.delta, &mut s.previous);
            }
        }
        nll
    }

    /// One sample's gradient (for the outer product of gradients).
    pub fn row_gradient(&self, params: &[f64], x: &[f64], y: f64) -> Vec<f64> {
        let mut grad = vec![0.0; self.param_count()];
        self.sample_backward(params, x, y, &mut Scratch::new(self), &mut grad);
        grad
    }

    /// One sample's NLL; adds its gradient into `grad`. Allocation-free: every intermediate
    /// lives in `s`.
    fn sample_backward(
        &self,
        params: &[f64],
        x: &[f64],
        y: f64,
        s: &mut Scratch,
        grad: &mut [f64],
    ) -> f64 {
        let layers = &s.layers;
        let last = layers.len() - 1;
        // Forward: z[i] = a[i-1] W_i + b_i (a[-1] = x), a[i] = act(z[i]) for hidden layers.
        for (i, l) in layers.iter().enumerate() {
            let out = &mut s.z[i];
            out.copy_from_slice(&params[l.bias..l.bias + l.fan_out]);
            let input: &[f64] = if i == 0 { x } else { &s.a[i - 1] };
            for (j, &aj) in input.iter().enumerate() {
                let row = &params[l.weights + j * l.fan_out..l.weights + (j + 1) * l.fan_out];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += aj * w;
                }
            }
            if i < last {
                for (a, &z) in s.a[i].iter_mut().zip(out.iter()) {
                    *a = self.activation.apply(z);
                }
            }
        }
        let g = s.globals_at;
        s.delta.clear();
        s.delta.resize(layers[last].fan_out, 0.0);
        let nll = self
            .head
            .nll(&s.z[last], &params[g..], y, &mut s.delta, &mut grad[g..]);
        // Backward: dW_i += a[i-1]^T delta_i, db_i += delta_i,
        // delta_{i-1} = (delta_i W_i^T) * act'(z[i-1]).
        for i in (0..layers.len()).rev() {
            let l = layers[i];
            let input: &[f64] = if i == 0 { x } else { &s.a[i - 1] };
            for (j, &aj) in input.iter().enumerate() {
                let row = &mut grad[l.weights + j * l.fan_out..l.weights + (j + 1) * l.fan_out];
                for (gw, d) in row.iter_mut().zip(&s.delta) {
                    *gw += aj * d;
                }
            }
            for (gb, d) in grad[l.bias..l.bias + l.fan_out].iter_mut().zip(&s.delta) {
                *gb += d;
            }
            if i > 0 {
                s.previous.clear();
                s.previous.extend((0..l.fan_in).map(|j| {
                    let row = &params[l.weights + j * l.fan_out..l.weights + (j + 1) * l.fan_out];
                    let back: f64 = row.iter().zip(&s.delta).map(|(w, d)| w * d).sum();
                    back * self.activation.derivative(s.z[i - 1][j])
                }));
                std::mem::swap(&mut s.delta, &mut s.previous);
            }
        }
        nll
    }
}

/// What a block pass of [`Network::block_backward`] reads: the parameters, the table
/// (row-major x, and y), the block's row indices and the rows' conditioning.
#[derive(Clone, Copy)]
struct Block<'a> {
    params: &'a [f64],
    x: &'a [f64],
    y: &'a [f64],
    rows: &'a [usize],
    cond: Option<&'a Conditioning>,
}

/// Rows a block of [`Network::block_backward`] holds.
const BLOCK_ROWS: usize = 64;

/// y += a x, element by element.
#[inline(always)]
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += a * xv;
    }
}

/// Lanes of the sums below: each lane adds every LANES-th product in order, and the lanes
/// are then added pairwise, so that the order of additions is fixed (and vectorises).
const LANES: usize = 8;

#[inline(always)]
fn add_lanes(mut lanes: [f64; LANES]) -> f64 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for k in 0..width {
            lanes[k] += lanes[k + width];
        }
    }
    lanes[0]
}

/// The dot product of [`Network::block_backward`] in the order [`LANES`] fixes, written
/// portably or with AVX2 intrinsics (LLVM vectorises the portable loop alone, but not once
/// it is inlined into the block's code).
trait Lanes {
    /// # Safety
    /// The CPU has the instructions the implementation uses.
    unsafe fn dot(a: &[f64], b: &[f64]) -> f64;
}

struct Portable;

impl Lanes for Portable {
    #[inline(always)]
    unsafe fn dot(a: &[f64], b: &[f64]) -> f64 {
        dot_in_lanes(a, b)
    }
}

/// Only inlined into a function compiled for AVX2 ([`Network::block_backward`] checks the
/// CPU).
#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    #[inline(always)]
    unsafe fn dot(a: &[f64], b: &[f64]) -> f64 {
        use std::arch::x86_64::*;
        let n = a.len().min(b.len());
        let whole = n / LANES * LANES;
        // SAFETY: the CPU has AVX2 (the only caller is compiled for it and chosen at run
        // time); every load lies within a[..whole] and b[..whole].
        let mut lanes = [0.0; LANES];
        unsafe {
            // Lanes 0-3 and 4-7, each lane adding every LANES-th product, as dot_in_lanes.
            let (mut low, mut high) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            for at in (0..whole).step_by(LANES) {
                let (pa, pb) = (a.as_ptr().add(at), b.as_ptr().add(at));
                low = _mm256_add_pd(low, _mm256_mul_pd(_mm256_loadu_pd(pa), _mm256_loadu_pd(pb)));
                high = _mm256_add_pd(
                    high,
                    _mm256_mul_pd(_mm256_loadu_pd(pa.add(4)), _mm256_loadu_pd(pb.add(4))),
                );
            }
            _mm256_storeu_pd(lanes.as_mut_ptr(), low);
            _mm256_storeu_pd(lanes.as_mut_ptr().add(4), high);
        }
        for (k, (&va, &vb)) in a[whole..n].iter().zip(&b[whole..n]).enumerate() {
            lanes[k] += va * vb;
        }
        add_lanes(lanes)
    }
}

/// sum_r a_r b_r in a fixed order (see [`LANES`]).
#[inline(always)]
fn dot_in_lanes(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0; LANES];
    let n = a.len().min(b.len());
    // Whole arrays of LANES, so that each step is one vector operation per register.
    let (a_whole, a_rest) = a[..n].as_chunks::<LANES>();
    let (b_whole, b_rest) = b[..n].as_chunks::<LANES>();
    for (ca, cb) in a_whole.iter().zip(b_whole) {
        for k in 0..LANES {
            lanes[k] += ca[k] * cb[k];
        }
    }
    for (k, (&va, &vb)) in a_rest.iter().zip(b_rest).enumerate() {
        lanes[k] += va * vb;
    }
    add_lanes(lanes)
}

/// sum_r a_r in a fixed order (see [`LANES`]).
#[inline(always)]
pub(super) fn sum_in_lanes(a: &[f64]) -> f64 {
    let mut lanes = [0.0; LANES];
    let (whole, rest) = a.as_chunks::<LANES>();
    for chunk in whole {
        for k in 0..LANES {
            lanes[k] += chunk[k];
        }
    }
    for (k, &v) in rest.iter().enumerate() {
        lanes[k] += v;
    }
    add_lanes(lanes)
}

/// The most units on either side of any layer (the deltas' room).
fn widest(layers: &[LayerSlots]) -> usize {
    layers
        .iter()
        .map(|l| l.fan_in.max(l.fan_out))
        .max()
        .unwrap_or(1)
}

/// A block's values, transposed (see [`Network::block_backward`]), reused from block to
/// block: nothing in it carries over.
struct BlockScratch {
    layers: Vec<LayerSlots>,
    globals_at: usize,
    /// The inputs, inputs x BLOCK_ROWS.
    xt: Vec<f64>,
    /// One conditioned input row.
    row: Vec<f64>,
    /// Each layer's pre-activations and (hidden layers) activations, fan_out x BLOCK_ROWS.
    z: Vec<Vec<f64>>,
    a: Vec<Vec<f64>>,
    /// The deltas of the layer being differentiated and of the one before, widest x
    /// BLOCK_ROWS.
    delta: Vec<f64>,
    previous: Vec<f64>,
    /// One row's eta and dNLL/deta, for the head.
    eta: Vec<f64>,
    d_eta: Vec<f64>,
}

impl BlockScratch {
    fn new(net: &Network) -> BlockScratch {
        let layers = net.layers();
        let widest = widest(&layers);
        let outputs = layers.last().map_or(1, |l| l.fan_out);
        BlockScratch {
            globals_at: net.globals_offset(),
            xt: vec![0.0; net.inputs * BLOCK_ROWS],
            row: vec![0.0; net.inputs],
            z: layers
                .iter()
                .map(|l| vec![0.0; l.fan_out * BLOCK_ROWS])
                .collect(),
            // (The last layer's eta needs no activations.)
            a: layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    vec![
                        0.0;
                        if i + 1 < layers.len() {
                            l.fan_out * BLOCK_ROWS
                        } else {
                            0
                        }
                    ]
                })
                .collect(),
            delta: vec![0.0; widest * BLOCK_ROWS],
            previous: vec![0.0; widest * BLOCK_ROWS],
            eta: vec![0.0; outputs],
            d_eta: vec![0.0; outputs],
            layers,
        }
    }
}

/// One row's intermediate values, reused from row to row: each layer's pre-activations `z`
/// and activations `a`, and the deltas of the layer being differentiated and the one before.
struct Scratch {
    layers: Vec<LayerSlots>,
    globals_at: usize,
    z: Vec<Vec<f64>>,
    a: Vec<Vec<f64>>,
    delta: Vec<f64>,
    previous: Vec<f64>,
}

impl Scratch {
    fn new(net: &Network) -> Scratch {
        let layers = net.layers();
        let widest = widest(&layers);
        Scratch {
            globals_at: net.globals_offset(),
            z: layers.iter().map(|l| vec![0.0; l.fan_out]).collect(),
            a: layers.iter().map(|l| vec![0.0; l.fan_out]).collect(),
            delta: Vec::with_capacity(widest),
            previous: Vec::with_capacity(widest),
            layers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::Rng;

    /// A target of `head`'s support.
    fn target(head: &Head, rng: &mut StdRng) -> f64 {
        head.random_target(rng)
    }

    #[test]
    fn blocks_of_rows_give_the_per_row_sums_on_every_path() {
        // The block path (transposed values, lanes of dot products, AVX2 where the CPU has
        // it) against the one-row-at-a-time definition (sample_backward), at block edges
        // (1, one lane, a block less one, a block, a block and one, several blocks), layer
        // widths that are not multiples of the lanes, every activation and head, shuffled
        // rows, with and without conditioning.
        let mut rng = StdRng::seed_from_u64(7);
        let heads = FamilyName::ALL.map(|family| {
            let classes = if family == FamilyName::Categorical {
                4
            } else {
                1
            };
            (family, classes)
        });
        for (family, classes) in heads {
            for hidden in [vec![], vec![3], vec![33, 7]] {
                for activation in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
                    let net = Network {
                        inputs: 5,
                        hidden: hidden.clone(),
                        activation,
                        head: Head::new(family, classes, true),
                    };
                    let n = 300;
                    let x: Vec<f64> = (0..n * 5).map(|_| rng.random_range(-2.0..2.0)).collect();
                    let y: Vec<f64> = (0..n).map(|_| target(&net.head, &mut rng)).collect();
                    let mut params = net.init(3, &y);
                    // Small weights keep exponential heads' rates moderate.
                    params.iter_mut().for_each(|p| *p *= 0.3);
                    let cond = Conditioning {
                        center: vec![0.5, -0.25, 0.0, 1.0, 2.0],
                        inv_scale: vec![0.5, 2.0, 1.0, 0.25, 1.0],
                        target_center: 0.0,
                        target_inv_scale: 1.0,
                    };
                    for m in [1, 8, 63, 64, 65, 200] {
                        let mut rows: Vec<usize> = (0..n).collect();
                        rows.shuffle(&mut rng);
                        rows.truncate(m);
                        for cond in [None, Some(&cond)] {
                            check_block(&net, &params, &x, &y, &rows, cond);
                        }
                    }
                }
            }
        }
    }

    fn check_block(
        net: &Network,
        params: &[f64],
        x: &[f64],
        y: &[f64],
        rows: &[usize],
        cond: Option<&Conditioning>,
    ) {
        let p = net.param_count();
        let d = net.inputs;
        let (nll, grad) = net.conditioned_nll_and_grad(params, x, y, rows, cond);
        // The definition, one row at a time.
        let mut want_grad = vec![0.0; p];
        let mut want_nll = 0.0;
        let mut scratch = Scratch::new(net);
        let mut row = vec![0.0; d];
        for &r in rows {
            let raw = &x[r * d..(r + 1) * d];
            let (xr, yr) = match cond {
                Some(c) => {
                    c.row_into(raw, &mut row);
                    (&row[..], c.target(y[r]))
                }
                None => (raw, y[r]),
            };
            want_nll += net.sample_backward(params, xr, yr, &mut scratch, &mut want_grad);
        }
        let what = format!(
            "{:?} {:?} {:?} m {}",
            net.head.family,
            net.hidden,
            net.activation,
            rows.len()
        );
        assert!(
            (nll - want_nll).abs() <= 1e-12 * want_nll.abs().max(1.0),
            "{what}: nll {nll} vs {want_nll}"
        );
        let scale = want_grad.iter().map(|g| g.abs()).fold(1.0, f64::max);
        for (j, (g, w)) in grad.iter().zip(&want_grad).enumerate() {
            assert!(
                (g - w).abs() <= 1e-12 * scale,
                "{what}: grad {j} {g} vs {w}"
            );
        }
        // The portable and the AVX2 code give the same bits. (On a CPU without AVX2 both are the portable
        // build: the comparison is then empty.)
        for block in rows.chunks(BLOCK_ROWS) {
            let mut s = BlockScratch::new(net);
            let block = Block {
                params,
                x,
                y,
                rows: block,
                cond,
            };
            let mut portable = vec![0.0; p];
            let a = net.block_backward_with::<Portable>(&block, &mut s, &mut portable);
            let mut dispatched = vec![0.0; p];
            let b = net.block_backward(&block, &mut s, &mut dispatched);
            assert_eq!(a.to_bits(), b.to_bits(), "{what}");
            assert_eq!(portable, dispatched, "{what}");
        }
    }
}
