//! Newton's method for linear models (Fisher scoring: for the canonical links of the
//! Bernoulli, Poisson and categorical families the observed and expected information agree).
//! The Hessian is accumulated in f64 over the rows in parallel, solved by a pivoted LU
//! factorisation, and each step is damped by backtracking until the objective decreases.

use super::conditioning::Conditioning;
use super::network::Network;
use super::train::{LossPoint, TrainOptions, TrainReport};
use crate::error::{Error, Result};
use crate::family::FamilyName;
use crate::fit::Prior;
use rayon::prelude::*;

/// d^2 NLL / d(eta, globals)^2 for one sample, row-major m x m with m = outputs + globals.
fn head_hessian(net: &Network, eta: &[f64], globals: &[f64], y: f64) -> Result<Vec<f64>> {
    net.head.hessian(eta, globals, y).map_err(Error::Usage)
}

/// (NLL, gradient, row-major Hessian).
pub type Derivatives = (f64, Vec<f64>, Vec<f64>);

/// NLL, gradient and Hessian of a linear model (no hidden layer) over all rows.
pub fn derivatives(
    net: &Network,
    params: &[f64],
    x: &[f64],
    y: &[f64],
) -> Result<(f64, Vec<f64>, Vec<f64>)> {
    conditioned_derivatives(net, params, x, y, None)
}

/// [`derivatives`] of the rows as `cond` re-expresses them (each row conditioned in f64 as it
/// is read), with `params` in the conditioned coordinates.
pub fn conditioned_derivatives(
    net: &Network,
    params: &[f64],
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
) -> Result<(f64, Vec<f64>, Vec<f64>)> {
    let cond = cond.filter(|c| !c.is_identity());
    let p = net.param_count();
    let d = net.inputs;
    let o = net.head.outputs();
    let g_at = net.globals_offset();
    let ng = net.head.globals();
    let m = o + ng;
    if o == 1 && ng == 0 && net.hidden.is_empty() {
        return scalar_derivatives(net, params, x, y, cond, true);
    }
    // Parameter index of (input j, output k), j = d being the intercept, and of global q.
    let index = |slot: usize, j: usize| {
        if slot < o {
            j * o + slot
        } else {
            g_at + slot - o
        }
    };
    let rows: Vec<usize> = (0..y.len()).collect();
    let blocks: Vec<Result<Derivatives>> = rows
        .par_chunks(512)
        .map(|block| {
            let (mut f, mut g, mut h) = (0.0, vec![0.0; p], vec![0.0; p * p]);
            let mut z = Vec::new();
            let mut d_eta = vec![0.0; o];
            let mut xt = vec![0.0; d + 1];
            let mut conditioned = vec![0.0; d];
            for &r in block {
                let (xr, yr) = match cond {
                    Some(c) => {
                        c.row_into(&x[r * d..(r + 1) * d], &mut conditioned);
                        (&conditioned[..], c.target(y[r]))
                    }
                    None => (&x[r * d..(r + 1) * d], y[r]),
                };
                let eta = net.forward(params, xr, &mut z);
                let mut d_glob = vec![0.0; ng];
                f += net
                    .head
                    .nll(&eta, &params[g_at..], yr, &mut d_eta, &mut d_glob);
                let hh = head_hessian(net, &eta, &params[g_at..], yr)?;
                let input = |j: usize| if j == d { 1.0 } else { xr[j] };
                for k in 0..o {
                    for j in 0..=d {
                        g[index(k, j)] += input(j) * d_eta[k];
                    }
                }
                for q in 0..ng {
                    g[g_at + q] += d_glob[q];
                }
                // H += x~ x~^T (x) h for the output block, x~ h for the output-global cross
                // terms, h for the globals, with x~ = (x, 1) and no allocation per row.
                xt[..d].copy_from_slice(xr);
                xt[d] = 1.0;
                for a in 0..m {
                    for b in 0..m {
                        let w = hh[a * m + b];
                        if w == 0.0 {
                            continue;
                        }
                        match (a < o, b < o) {
                            (true, true) => {
                                for (j, &xj) in xt.iter().enumerate() {
                                    let row = (j * o + a) * p;
                                    let wj = w * xj;
                                    for (k, &xk) in xt.iter().enumerate() {
                                        h[row + k * o + b] += wj * xk;
                                    }
                                }
                            }
                            (true, false) => {
                                for (j, &xj) in xt.iter().enumerate() {
                                    h[(j * o + a) * p + g_at + b - o] += w * xj;
                                }
                            }
                            (false, true) => {
                                for (k, &xk) in xt.iter().enumerate() {
                                    h[(g_at + a - o) * p + k * o + b] += w * xk;
                                }
                            }
                            (false, false) => h[(g_at + a - o) * p + g_at + b - o] += w,
                        }
                    }
                }
            }
            Ok((f, g, h))
        })
        .collect();
    let (mut f, mut g, mut h) = (0.0, vec![0.0; p], vec![0.0; p * p]);
    for block in blocks {
        let (bf, bg, bh) = block?;
        f += bf;
        g.iter_mut().zip(&bg).for_each(|(a, b)| *a += b);
        h.iter_mut().zip(&bh).for_each(|(a, b)| *a += b);
    }
    Ok((f, g, h))
}

/// NLL and gradient of a linear model over all rows as `cond` re-expresses them, for less
/// than [`conditioned_derivatives`] costs (no Hessian).
pub fn conditioned_gradient(
    net: &Network,
    params: &[f64],
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
) -> Result<(f64, Vec<f64>)> {
    let cond = cond.filter(|c| !c.is_identity());
    if net.head.outputs() == 1 && net.head.globals() == 0 && net.hidden.is_empty() {
        let (f, g, _) = scalar_derivatives(net, params, x, y, cond, false)?;
        return Ok((f, g));
    }
    let rows: Vec<usize> = (0..y.len()).collect();
    Ok(net.conditioned_nll_and_grad(params, x, y, &rows, cond))
}

/// The common case of one output and no globals (logistic, Poisson, exponential regression):
/// eta = x w + b per row, H = sum_i h_i x~ x~^T over x~ = (x, 1). Rows are taken in blocks
/// held column by column, so that every sum (eta, the gradient, each upper-triangle entry of
/// H) is a dot product over contiguous rows that the compiler vectorises; H is then mirrored.
fn scalar_derivatives(
    net: &Network,
    params: &[f64],
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
    with_hessian: bool,
) -> Result<Derivatives> {
    #[cfg(target_arch = "x86_64")]
    if super::newton512::available() {
        return super::newton512::scalar_derivatives(net, params, x, y, cond, with_hessian);
    }
    scalar_derivatives_in_columns(net, params, x, y, cond, with_hessian)
}

/// How this processor's Newton pass of a one-output linear head holds and sums its rows:
/// `rows-avx512` (row-major blocks, outer products in AVX-512 tiles), `columns-avx2`
/// (column-major blocks, AVX2 tiles) or `columns` (the portable sums).
pub fn scalar_pass_kind() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if super::newton512::available() {
            return "rows-avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "columns-avx2";
        }
    }
    "columns"
}

/// [`scalar_derivatives`] on any processor: blocks of rows held column by column.
pub(super) fn scalar_derivatives_in_columns(
    net: &Network,
    params: &[f64],
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
    with_hessian: bool,
) -> Result<Derivatives> {
    const BLOCK: usize = 128;
    let d = net.inputs;
    let p = d + 1;
    let (w, b) = (&params[..d], params[d]);
    let n = y.len();
    let starts: Vec<usize> = (0..n).step_by(32 * BLOCK).collect();
    let blocks: Vec<Result<Derivatives>> = starts
        .par_iter()
        .map(|&first| {
            let (mut f, mut g, mut h) = (0.0, vec![0.0; p], vec![0.0; p * p]);
            // columns[j * BLOCK + i] = x~ of row first + i, feature j (the last is the 1).
            let mut columns = vec![1.0; p * BLOCK];
            let (mut slope, mut curvature) = ([0.0; BLOCK], [0.0; BLOCK]);
            let mut targets = [0.0; BLOCK];
            let mut scratch = Vec::new();
            let end = n.min(first + 32 * BLOCK);
            for start in (first..end).step_by(BLOCK) {
                let rows = BLOCK.min(end - start);
                for i in 0..rows {
                    let xr = &x[(start + i) * d..(start + i + 1) * d];
                    match cond {
                        Some(c) => {
                            for (j, v) in xr.iter().enumerate() {
                                columns[j * BLOCK + i] = (v - c.center[j]) * c.inv_scale[j];
                            }
                            targets[i] = c.target(y[start + i]);
                        }
                        None => {
                            for (j, v) in xr.iter().enumerate() {
                                columns[j * BLOCK + i] = *v;
                            }
                            targets[i] = y[start + i];
                        }
                    }
                }
                let mut eta = [b; BLOCK];
                for (j, wj) in w.iter().enumerate() {
                    let column = &columns[j * BLOCK..j * BLOCK + rows];
                    for (e, v) in eta[..rows].iter_mut().zip(column) {
                        *e += wj * v;
                    }
                }
                f += head_slopes(
                    net,
                    &eta[..rows],
                    &targets[..rows],
                    &mut slope[..rows],
                    &mut curvature[..rows],
                )?;
                if with_hessian {
                    accumulate(
                        &mut g,
                        &mut h,
                        &columns,
                        BLOCK,
                        &slope[..rows],
                        &curvature[..rows],
                        &mut scratch,
                    );
                } else {
                    for (j, gj) in g.iter_mut().enumerate() {
                        let column = &columns[j * BLOCK..j * BLOCK + rows];
                        *gj += column
                            .iter()
                            .zip(&slope[..rows])
                            .map(|(a, b)| a * b)
                            .sum::<f64>();
                    }
                }
            }
            Ok((f, g, h))
        })
        .collect();
    let (mut f, mut g, mut h) = (0.0, vec![0.0; p], vec![0.0; p * p]);
    for block in blocks {
        let (bf, bg, bh) = block?;
        f += bf;
        g.iter_mut().zip(&bg).for_each(|(a, v)| *a += v);
        h.iter_mut().zip(&bh).for_each(|(a, v)| *a += v);
    }
    for j in 0..p {
        for k in 0..j {
            h[j * p + k] = h[k * p + j];
        }
    }
    Ok((f, g, h))
}

/// A one-output head's NLL summed over a block of rows, with dNLL/deta of each row in `slope`
/// and d^2NLL/deta^2 in `curvature`.
pub(super) fn head_slopes(
    net: &Network,
    eta: &[f64],
    targets: &[f64],
    slope: &mut [f64],
    curvature: &mut [f64],
) -> Result<f64> {
    if net.head.family == FamilyName::Bernoulli && net.head.has_native_link() {
        return Ok(super::logistic::bernoulli_block(
            eta, targets, slope, curvature,
        ));
    }
    let (mut f, mut d_eta) = (0.0, [0.0]);
    for i in 0..eta.len() {
        let yi = targets[i];
        f += net.head.nll(&[eta[i]], &[], yi, &mut d_eta, &mut []);
        slope[i] = d_eta[0];
        curvature[i] = net
            .head
            .curvature(eta[i], yi, d_eta[0])
            .map_err(Error::Usage)?;
    }
    Ok(f)
}

/// g += X~^T slope and the upper triangle of H += X~^T diag(curvature) X~ for one block of
/// rows held column by column (`columns[j * stride + i]`), with the host's widest vectors:
/// AVX2 with fused multiply-adds where the processor has them (checked at run time).
fn accumulate(
    g: &mut [f64],
    h: &mut [f64],
    columns: &[f64],
    stride: usize,
    slope: &[f64],
    curvature: &[f64],
    scratch: &mut Vec<f64>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has the features the function is compiled for.
        unsafe { accumulate_avx2(g, h, columns, stride, slope, curvature, scratch) };
        return;
    }
    accumulate_portable(g, h, columns, stride, slope, curvature, scratch);
}

/// [`accumulate`] with AVX2 and FMA: the upper triangle of H in tiles of two rows by four
/// columns of H, each tile's eight sums held in registers over the block's rows (six loads
/// for eight fused multiply-adds, where one entry or four at a time load once per
/// multiply-add).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn accumulate_avx2(
    g: &mut [f64],
    h: &mut [f64],
    columns: &[f64],
    stride: usize,
    slope: &[f64],
    curvature: &[f64],
    weighted: &mut Vec<f64>,
) {
    use std::arch::x86_64::*;
    let (p, rows) = (g.len(), slope.len());
    let column = |j: usize| &columns[j * stride..j * stride + rows];
    // weighted[j * rows + i] = curvature_i x~_ij.
    weighted.clear();
    weighted.resize(p * rows, 0.0);
    for j in 0..p {
        g[j] += dot::<true>(slope, column(j));
        for (wv, (c, v)) in weighted[j * rows..(j + 1) * rows]
            .iter_mut()
            .zip(curvature.iter().zip(column(j)))
        {
            *wv = c * v;
        }
    }
    let whole = rows / 4 * 4;
    let mut j = 0;
    while j < p {
        let pair = (p - j).min(2);
        let first = [j, (j + 1).min(p - 1)];
        let mut k = j;
        while k < p {
            let quad = (p - k).min(4);
            // Columns beyond the last are read as the last again and not stored.
            let ks = [
                k,
                (k + 1).min(p - 1),
                (k + 2).min(p - 1),
                (k + 3).min(p - 1),
            ];
            let mut sums = [[0.0f64; 4]; 2];
            // SAFETY: the CPU has AVX2 and FMA (this function is compiled for them and
            // chosen at run time); every load lies within the first `whole` values of a
            // row of `weighted` or a column.
            unsafe {
                let mut acc = [[_mm256_setzero_pd(); 4]; 2];
                let wa = [
                    weighted.as_ptr().add(first[0] * rows),
                    weighted.as_ptr().add(first[1] * rows),
                ];
                let cb = ks.map(|c| columns.as_ptr().add(c * stride));
                for i in (0..whole).step_by(4) {
                    let a = [_mm256_loadu_pd(wa[0].add(i)), _mm256_loadu_pd(wa[1].add(i))];
                    for (q, col) in cb.iter().enumerate() {
                        let b = _mm256_loadu_pd(col.add(i));
                        acc[0][q] = _mm256_fmadd_pd(a[0], b, acc[0][q]);
                        acc[1][q] = _mm256_fmadd_pd(a[1], b, acc[1][q]);
                    }
                }
                for (r, acc_r) in acc.iter().enumerate() {
                    for (q, v) in acc_r.iter().enumerate() {
                        let mut lanes = [0.0; 4];
                        _mm256_storeu_pd(lanes.as_mut_ptr(), *v);
                        sums[r][q] = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
                    }
                }
            }
            for r in 0..pair {
                let w_row = &weighted[first[r] * rows..(first[r] + 1) * rows];
                for q in 0..quad {
                    let (row, col) = (first[r], ks[q]);
                    if col < row {
                        continue;
                    }
                    let c = column(col);
                    let tail: f64 = (whole..rows).map(|i| w_row[i] * c[i]).sum();
                    h[row * p + col] += sums[r][q] + tail;
                }
            }
            k += 4;
        }
        j += 2;
    }
}

#[inline(always)]
fn accumulate_portable(
    g: &mut [f64],
    h: &mut [f64],
    columns: &[f64],
    stride: usize,
    slope: &[f64],
    curvature: &[f64],
    weighted: &mut Vec<f64>,
) {
    let (p, rows) = (g.len(), slope.len());
    let column = |j: usize| &columns[j * stride..j * stride + rows];
    weighted.clear();
    weighted.resize(rows, 0.0);
    for j in 0..p {
        let cj = column(j);
        g[j] += dot::<false>(slope, cj);
        for (wv, (c, v)) in weighted.iter_mut().zip(curvature.iter().zip(cj)) {
            *wv = c * v;
        }
        // Four entries of row j at a time share each load of `weighted`.
        let mut k = j;
        while k + 4 <= p {
            let sums = dot4(
                weighted,
                [column(k), column(k + 1), column(k + 2), column(k + 3)],
            );
            for (l, v) in sums.iter().enumerate() {
                h[j * p + k + l] += v;
            }
            k += 4;
        }
        for k in k..p {
            h[j * p + k] += dot::<false>(weighted, column(k));
        }
    }
}

/// Four dot products of `a` with `b[0..4]`, each in four partial sums.
#[inline(always)]
fn dot4(a: &[f64], b: [&[f64]; 4]) -> [f64; 4] {
    let mut acc = [[0.0; 4]; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        let x = &a[4 * c..4 * c + 4];
        for (acc_q, bq) in acc.iter_mut().zip(&b) {
            let y = &bq[4 * c..4 * c + 4];
            for l in 0..4 {
                acc_q[l] += x[l] * y[l];
            }
        }
    }
    let mut out = [0.0; 4];
    for (q, bq) in b.iter().enumerate() {
        let tail: f64 = (4 * chunks..a.len()).map(|i| a[i] * bq[i]).sum();
        out[q] = (acc[q][0] + acc[q][1]) + (acc[q][2] + acc[q][3]) + tail;
    }
    out
}

/// sum_i a_i b_i in eight independent partial sums (so that it vectorises), fused
/// multiply-adds when `FMA`.
#[inline(always)]
fn dot<const FMA: bool>(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for l in 0..8 {
            acc[l] = if FMA {
                x[l].mul_add(y[l], acc[l])
            } else {
                acc[l] + x[l] * y[l]
            };
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Damped Newton iterations on NLL + L2 prior (weights only), on the rows as `cond`
/// re-expresses them (`params` in the conditioned coordinates).
pub fn newton(
    net: &Network,
    params: &mut Vec<f64>,
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
    options: &TrainOptions,
) -> Result<TrainReport> {
    let n = y.len();
    warm_start(net, params, x, y, cond, options);
    if let Some(why) = newton_refusal(net, options.prior) {
        return Err(Error::Usage(why));
    }
    let mut problem = super::train::FullBatch {
        net,
        x,
        y,
        rows: (0..n).collect(),
        frozen: &options.frozen,
        cond,
    };
    let run =
        crate::fit::newton::minimize(&mut problem, params.clone(), &newton_settings(net, options))?;
    *params = run.theta.clone();
    Ok(newton_report(&run, n, options, net))
}

/// Newton's settings from a model's training options.
fn newton_settings(net: &Network, options: &TrainOptions) -> crate::fit::NewtonSettings {
    crate::fit::NewtonSettings {
        max_iter: options.max_iter.unwrap_or(100),
        prior: options.prior_layout(net),
        frozen: options.frozen.clone(),
    }
}

/// Tables at least this long start Newton from the solution on a subsample.
pub const WARM_START_ROWS: usize = 1 << 17;

/// For tables of at least [`WARM_START_ROWS`] rows, moves `params` to the optimum on every
/// 8th row (see [`warm_start_from`]); the GPU's Newton passes start there too.
pub fn warm_start(
    net: &Network,
    params: &mut [f64],
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
    options: &TrainOptions,
) {
    if y.len() < WARM_START_ROWS || !net.hidden.is_empty() {
        return;
    }
    let d = net.inputs;
    let rows: Vec<usize> = (0..y.len()).step_by(WARM_START_STRIDE).collect();
    let xs: Vec<f64> = rows
        .iter()
        .flat_map(|&r| x[r * d..(r + 1) * d].iter().copied())
        .collect();
    let ys: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
    warm_start_from(net, params, &xs, &ys, cond, y.len(), options);
}

/// The warm start's subsample: every this many rows.
pub const WARM_START_STRIDE: usize = 8;

/// Moves `params` to the optimum on a subsample of the `n` rows (`xs`, `ys`; the L2 prior
/// scaled to the subsample's share, so the two posteriors have the same shape), when that
/// solve converges: it lies within the statistical noise of the full optimum, where Newton
/// converges quadratically, so the full solve then needs two or three passes over the data
/// instead of five or six. Left unchanged when the subsample has no optimum (e.g. separated
/// classes) or fails.
pub fn warm_start_from(
    net: &Network,
    params: &mut [f64],
    xs: &[f64],
    ys: &[f64],
    cond: Option<&Conditioning>,
    n: usize,
    options: &TrainOptions,
) {
    let share = ys.len() as f64 / n as f64;
    let sub_options = TrainOptions {
        prior: options.prior.map(|p| match p {
            Prior::L2 { scale } => Prior::L2 {
                scale: scale / share.sqrt(),
            },
            other => other,
        }),
        ..options.clone()
    };
    let mut start = params.to_vec();
    let solved = newton_with(
        net,
        &mut start,
        ys.len(),
        f64::EPSILON / 2.0,
        &mut |theta| conditioned_derivatives(net, theta, xs, ys, cond),
        &sub_options,
    );
    if matches!(solved, Ok(ref r) if r.converged) && start.iter().all(|v| v.is_finite()) {
        params.copy_from_slice(&start);
    }
}

/// A problem given by a function returning the NLL's derivatives (CPU or GPU), for
/// [`crate::fit::newton::minimize`].
struct DerivativesFn<'a> {
    rows: usize,
    unit_roundoff: f64,
    f: &'a mut dyn FnMut(&[f64]) -> Result<Derivatives>,
}

impl crate::fit::SecondOrder for DerivativesFn<'_> {
    fn n(&self) -> usize {
        self.rows
    }
    fn unit_roundoff(&self) -> f64 {
        self.unit_roundoff
    }
    fn derivatives(&mut self, theta: &[f64]) -> Result<Derivatives> {
        (self.f)(theta)
    }
}

/// Why Newton cannot run on this model, if it cannot.
pub fn newton_refusal(net: &Network, prior: Option<Prior>) -> Option<String> {
    if net.head.family == FamilyName::Laplace {
        return Some("Newton's method needs a twice-differentiable NLL; the Laplace NLL (absolute error) is not: use --optimizer lbfgs".into());
    }
    if !net.hidden.is_empty() {
        return Some("--optimizer newton applies to linear models; an MLP's NLL is not convex: use adamw or lbfgs".into());
    }
    if matches!(prior, Some(Prior::L1 { .. })) {
        return Some(
            "--optimizer newton cannot handle an L1 prior (not differentiable at 0): use lbfgs"
                .into(),
        );
    }
    let p = net.param_count();
    (p > crate::gpu::mlp::MAX_NEWTON_PARAMS).then(|| {
        format!("--optimizer newton with {p} parameters needs a {p} x {p} Hessian: use lbfgs")
    })
}

/// Damped Newton iterations (see [`crate::fit::newton::minimize`]) given a function returning
/// the NLL's derivatives (CPU or GPU) over `rows` rows summed with `unit_roundoff`.
pub fn newton_with(
    net: &Network,
    params: &mut Vec<f64>,
    rows: usize,
    unit_roundoff: f64,
    nll_derivatives: &mut dyn FnMut(&[f64]) -> Result<Derivatives>,
    options: &TrainOptions,
) -> Result<TrainReport> {
    if let Some(why) = newton_refusal(net, options.prior) {
        return Err(Error::Usage(why));
    }
    let settings = newton_settings(net, options);
    let mut problem = DerivativesFn {
        rows,
        unit_roundoff,
        f: nll_derivatives,
    };
    let run = crate::fit::newton::minimize(&mut problem, params.clone(), &settings)?;
    *params = run.theta.clone();
    Ok(newton_report(&run, rows, options, net))
}

/// The training report of a Newton run over `rows` rows.
pub fn newton_report(
    run: &crate::fit::newton::NewtonResult,
    rows: usize,
    options: &TrainOptions,
    net: &Network,
) -> TrainReport {
    let n = rows.max(1) as f64;
    let history = run
        .history
        .iter()
        .enumerate()
        .map(|(i, f)| LossPoint {
            epoch: i + 1,
            step: i + 1,
            train_mean_nll: f / n,
            validation_mean_nll: None,
        })
        .collect();
    let reason = match run.stop {
        crate::fit::newton::NewtonStop::Singular => format!(
            "{} (collinear features or separated classes?)",
            run.stop.describe()
        ),
        stop => stop.describe().to_string(),
    };
    TrainReport {
        steps: run.iterations,
        epochs: run.iterations,
        converged: run.stop.converged(),
        reason,
        history,
        log_prior: options
            .prior_layout(net)
            .map(|layout| layout.log_density(&run.theta)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_hessian_tiles_give_the_portable_sums() {
        #[cfg(target_arch = "x86_64")]
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            eprintln!("SKIPPED: no AVX2 and FMA here, so no tiles to compare");
            return;
        }
        // The AVX2 tiles (two rows by four columns of H, tails of rows and columns) against
        // the portable sums, for every width of H up to a few tiles and blocks of rows that
        // are not whole vectors.
        let mut rng = StdRng::seed_from_u64(5);
        let stride = 128;
        for p in 1..=11 {
            for rows in [1, 3, 4, 5, 127, 128] {
                let columns: Vec<f64> = (0..p * stride)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let slope: Vec<f64> = (0..rows).map(|_| rng.random_range(-1.0..1.0)).collect();
                let curvature: Vec<f64> = (0..rows).map(|_| rng.random_range(0.0..0.25)).collect();
                let (mut g, mut h) = (vec![0.5; p], vec![0.25; p * p]);
                let (mut g_want, mut h_want) = (g.clone(), h.clone());
                accumulate(
                    &mut g,
                    &mut h,
                    &columns,
                    stride,
                    &slope,
                    &curvature,
                    &mut Vec::new(),
                );
                accumulate_portable(
                    &mut g_want,
                    &mut h_want,
                    &columns,
                    stride,
                    &slope,
                    &curvature,
                    &mut Vec::new(),
                );
                for j in 0..p {
                    assert!(
                        (g[j] - g_want[j]).abs() <= 1e-13 * rows as f64,
                        "p {p} rows {rows} g {j}"
                    );
                    for k in 0..p {
                        let (a, b) = (h[j * p + k], h_want[j * p + k]);
                        if k < j {
                            // Only the upper triangle is summed (then mirrored).
                            assert_eq!(a, 0.25, "p {p} rows {rows}: lower entry {j} {k} written");
                        } else {
                            assert!(
                                (a - b).abs() <= 1e-13 * rows as f64,
                                "p {p} rows {rows} H {j} {k}: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
}
