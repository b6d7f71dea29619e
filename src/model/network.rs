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
            head: Head {
                family,
                classes,
                reference: true,
            },
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
        let d = self.inputs;
        let cond = cond.filter(|c| !c.is_identity());
        let blocks: Vec<(f64, Vec<f64>)> = rows
            .par_chunks(64)
            .map(|block| {
                let mut grad = vec![0.0; p];
                let mut nll = 0.0;
                let mut scratch = Scratch::new(self);
                let mut row = vec![0.0; d];
                for &r in block {
                    let raw = &x[r * d..(r + 1) * d];
                    let (xr, yr) = match cond {
                        Some(c) => {
                            c.row_into(raw, &mut row);
                            (&row[..], c.target(y[r]))
                        }
                        None => (raw, y[r]),
                    };
                    nll += self.sample_backward(params, xr, yr, &mut scratch, &mut grad);
                }
                (nll, grad)
            })
            .collect();
        let mut grad = vec![0.0; p];
        let mut nll = 0.0;
        for (f, g) in blocks {
            nll += f;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        (nll, grad)
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
        let widest = layers
            .iter()
            .map(|l| l.fan_in.max(l.fan_out))
            .max()
            .unwrap_or(1);
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
