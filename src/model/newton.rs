//! Newton's method for linear models (Fisher scoring: for the canonical links of the
//! Bernoulli, Poisson and categorical families the observed and expected information agree).
//! The Hessian is accumulated in f64 over the rows in parallel, solved by a pivoted LU
//! factorisation, and each step is damped by backtracking until the objective decreases.

use super::network::Network;
use super::train::{LossPoint, TrainOptions, TrainReport};
use crate::error::{Error, Result};
use crate::family::{log_sum_exp, sigmoid, FamilyName};
use crate::fit::Prior;
use rayon::prelude::*;

/// d^2 NLL / d(eta, globals)^2 for one sample, row-major m x m with m = outputs + globals.
fn head_hessian(net: &Network, eta: &[f64], globals: &[f64], y: f64) -> Result<Vec<f64>> {
    let head = net.head;
    let m = head.outputs() + head.globals();
    let mut h = vec![0.0; m * m];
    match head.family {
        FamilyName::Bernoulli => {
            let p = sigmoid(eta[0]);
            h[0] = p * (1.0 - p);
        }
        FamilyName::Poisson => h[0] = eta[0].exp(),
        FamilyName::Exponential => h[0] = eta[0].exp() * y,
        FamilyName::Gaussian => {
            // NLL = s + (y - mu)^2 e^{-2s} / 2 + const, with r = y - mu.
            let w = (-2.0 * globals[0]).exp();
            let r = y - eta[0];
            h[0] = w;
            h[1] = 2.0 * r * w;
            h[2] = 2.0 * r * w;
            h[3] = 2.0 * r * r * w;
        }
        FamilyName::Laplace => {
            return Err(Error::Usage(
                "Newton's method needs a twice-differentiable NLL; the Laplace NLL (absolute error) is not: use --optimizer lbfgs".into(),
            ))
        }
        FamilyName::Categorical => {
            let skip = head.reference as usize;
            let z: Vec<f64> = if head.reference { std::iter::once(0.0).chain(eta.iter().copied()).collect() } else { eta.to_vec() };
            let lse = log_sum_exp(&z);
            let p: Vec<f64> = z.iter().map(|v| (v - lse).exp()).collect();
            let o = head.outputs();
            for a in 0..o {
                for b in 0..o {
                    h[a * m + b] = p[a + skip] * ((a == b) as u8 as f64 - p[b + skip]);
                }
            }
        }
    }
    Ok(h)
}

/// Solves A x = b (A n x n, row-major) by LU with partial pivoting; `None` if singular.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for c in 0..n {
        let piv = (c..n).max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))?;
        if a[piv * n + c].abs() < 1e-300 {
            return None;
        }
        if piv != c {
            for k in 0..n {
                a.swap(c * n + k, piv * n + k);
            }
            b.swap(c, piv);
        }
        for r in c + 1..n {
            let f = a[r * n + c] / a[c * n + c];
            if f != 0.0 {
                for k in c..n {
                    a[r * n + k] -= f * a[c * n + k];
                }
                b[r] -= f * b[c];
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r * n + k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r * n + r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
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
    let p = net.param_count();
    let d = net.inputs;
    let o = net.head.outputs();
    let g_at = net.globals_offset();
    let ng = net.head.globals();
    let m = o + ng;
    if o == 1 && ng == 0 && net.hidden.is_empty() {
        return scalar_derivatives(net, params, x, y);
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
            for &r in block {
                let xr = &x[r * d..(r + 1) * d];
                let eta = net.forward(params, xr, &mut z);
                let mut d_glob = vec![0.0; ng];
                f += net
                    .head
                    .nll(&eta, &params[g_at..], y[r], &mut d_eta, &mut d_glob);
                let hh = head_hessian(net, &eta, &params[g_at..], y[r])?;
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

/// The common case of one output and no globals (logistic, Poisson, exponential regression):
/// eta = x w + b per row, H = sum_i h_i x~ x~^T over x~ = (x, 1). Rows are taken in blocks
/// held column by column, so that every sum (eta, the gradient, each upper-triangle entry of
/// H) is a dot product over contiguous rows that the compiler vectorises; H is then mirrored.
fn scalar_derivatives(net: &Network, params: &[f64], x: &[f64], y: &[f64]) -> Result<Derivatives> {
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
            let mut d_eta = [0.0];
            let end = n.min(first + 32 * BLOCK);
            for start in (first..end).step_by(BLOCK) {
                let rows = BLOCK.min(end - start);
                for i in 0..rows {
                    let xr = &x[(start + i) * d..(start + i + 1) * d];
                    for (j, v) in xr.iter().enumerate() {
                        columns[j * BLOCK + i] = *v;
                    }
                }
                let mut eta = [b; BLOCK];
                for (j, wj) in w.iter().enumerate() {
                    let column = &columns[j * BLOCK..j * BLOCK + rows];
                    for (e, v) in eta[..rows].iter_mut().zip(column) {
                        *e += wj * v;
                    }
                }
                if net.head.family == FamilyName::Bernoulli {
                    f += super::logistic::bernoulli_block(
                        &eta[..rows],
                        &y[start..start + rows],
                        &mut slope[..rows],
                        &mut curvature[..rows],
                    );
                } else {
                    for i in 0..rows {
                        let yi = y[start + i];
                        f += net.head.nll(&[eta[i]], &[], yi, &mut d_eta, &mut []);
                        slope[i] = d_eta[0];
                        curvature[i] = match net.head.family {
                            FamilyName::Poisson => d_eta[0] + yi, // e^eta
                            _ => head_hessian(net, &[eta[i]], &[], yi)?[0],
                        };
                    }
                }
                accumulate(
                    &mut g,
                    &mut h,
                    &columns,
                    BLOCK,
                    &slope[..rows],
                    &curvature[..rows],
                );
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
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has the features the function is compiled for.
        unsafe { accumulate_avx2(g, h, columns, stride, slope, curvature) };
        return;
    }
    accumulate_with::<false>(g, h, columns, stride, slope, curvature);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn accumulate_avx2(
    g: &mut [f64],
    h: &mut [f64],
    columns: &[f64],
    stride: usize,
    slope: &[f64],
    curvature: &[f64],
) {
    accumulate_with::<true>(g, h, columns, stride, slope, curvature);
}

#[inline(always)]
fn accumulate_with<const FMA: bool>(
    g: &mut [f64],
    h: &mut [f64],
    columns: &[f64],
    stride: usize,
    slope: &[f64],
    curvature: &[f64],
) {
    let (p, rows) = (g.len(), slope.len());
    let column = |j: usize| &columns[j * stride..j * stride + rows];
    let mut weighted = vec![0.0; rows];
    for j in 0..p {
        let cj = column(j);
        g[j] += dot::<FMA>(slope, cj);
        for (wv, (c, v)) in weighted.iter_mut().zip(curvature.iter().zip(cj)) {
            *wv = c * v;
        }
        // Four entries of row j at a time share each load of `weighted`.
        let mut k = j;
        while k + 4 <= p {
            let sums = dot4::<FMA>(
                &weighted,
                [column(k), column(k + 1), column(k + 2), column(k + 3)],
            );
            for (l, v) in sums.iter().enumerate() {
                h[j * p + k + l] += v;
            }
            k += 4;
        }
        for k in k..p {
            h[j * p + k] += dot::<FMA>(&weighted, column(k));
        }
    }
}

/// Four dot products of `a` with `b[0..4]`, each in four partial sums.
#[inline(always)]
fn dot4<const FMA: bool>(a: &[f64], b: [&[f64]; 4]) -> [f64; 4] {
    let mut acc = [[0.0; 4]; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        let x = &a[4 * c..4 * c + 4];
        for (acc_q, bq) in acc.iter_mut().zip(&b) {
            let y = &bq[4 * c..4 * c + 4];
            for l in 0..4 {
                acc_q[l] = if FMA {
                    x[l].mul_add(y[l], acc_q[l])
                } else {
                    acc_q[l] + x[l] * y[l]
                };
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

/// Damped Newton iterations on NLL + L2 prior (weights only).
pub fn newton(
    net: &Network,
    params: &mut Vec<f64>,
    x: &[f64],
    y: &[f64],
    options: &TrainOptions,
) -> Result<TrainReport> {
    let n = y.len();
    warm_start(net, params, x, y, options);
    newton_with(
        net,
        params,
        n,
        &mut |theta| derivatives(net, theta, x, y),
        options,
    )
}

/// Tables at least this long start Newton from the solution on a subsample.
pub const WARM_START_ROWS: usize = 1 << 17;

/// For tables of at least [`WARM_START_ROWS`] rows, moves `params` to the optimum on every
/// 8th row (see [`warm_start_from`]); the GPU's Newton passes start there too.
pub fn warm_start(net: &Network, params: &mut [f64], x: &[f64], y: &[f64], options: &TrainOptions) {
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
    warm_start_from(net, params, &xs, &ys, y.len(), options);
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
        &mut |theta| derivatives(net, theta, xs, ys),
        &sub_options,
    );
    if matches!(solved, Ok(ref r) if r.converged) && start.iter().all(|v| v.is_finite()) {
        params.copy_from_slice(&start);
    }
}

/// Damped Newton iterations given a function returning the NLL's derivatives (CPU or GPU).
pub fn newton_with(
    net: &Network,
    params: &mut Vec<f64>,
    rows: usize,
    nll_derivatives: &mut dyn FnMut(&[f64]) -> Result<Derivatives>,
    options: &TrainOptions,
) -> Result<TrainReport> {
    if net.head.family == FamilyName::Laplace {
        return Err(Error::Usage(
            "Newton's method needs a twice-differentiable NLL; the Laplace NLL (absolute error) is not: use --optimizer lbfgs".into(),
        ));
    }
    if !net.hidden.is_empty() {
        return Err(Error::Usage("--optimizer newton applies to linear models; an MLP's NLL is not convex: use adamw or lbfgs".into()));
    }
    if matches!(options.prior, Some(Prior::L1 { .. })) {
        return Err(Error::Usage(
            "--optimizer newton cannot handle an L1 prior (not differentiable at 0): use lbfgs"
                .into(),
        ));
    }
    let p = net.param_count();
    if p > crate::gpu::mlp::MAX_NEWTON_PARAMS {
        return Err(Error::Usage(format!(
            "--optimizer newton with {p} parameters needs a {p} x {p} Hessian: use lbfgs"
        )));
    }
    let mask = net.weight_mask();
    let l2 = match options.prior {
        Some(Prior::L2 { scale }) => 1.0 / (scale * scale),
        _ => 0.0,
    };
    let n = rows as f64;
    let mut objective = |params: &[f64]| -> Result<Derivatives> {
        let (mut f, mut g, mut h) = nll_derivatives(params)?;
        for j in 0..p {
            if mask[j] && l2 > 0.0 {
                f += 0.5 * l2 * params[j] * params[j];
                g[j] += l2 * params[j];
                h[j * p + j] += l2;
            }
            if options.frozen.get(j).copied().unwrap_or(false) {
                g[j] = 0.0;
                for k in 0..p {
                    h[j * p + k] = 0.0;
                    h[k * p + j] = 0.0;
                }
                h[j * p + j] = 1.0;
            }
        }
        Ok((f, g, h))
    };
    let max_iter = options.max_iter.unwrap_or(100);
    let (mut f, mut g, mut h) = objective(params)?;
    let mut history = Vec::new();
    for iteration in 1..=max_iter {
        let gmax = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        if gmax <= 1e-10 * n {
            return Ok(report(
                iteration - 1,
                true,
                "gradient norm below tolerance",
                history,
                options,
                params,
                &mask,
            ));
        }
        // Where the Hessian is not positive definite (e.g. the Gaussian's joint (beta, log sigma)
        // far from the optimum) the Newton step need not descend: damp it towards gradient
        // descent, H + mu I, until it does (Levenberg-Marquardt).
        let diag_scale = (0..p)
            .map(|j| h[j * p + j].abs())
            .fold(0.0f64, f64::max)
            .max(1e-12);
        let mut step = None;
        for mu in std::iter::once(0.0).chain((0..30).map(|e| diag_scale * 1e-8 * 10f64.powi(e))) {
            let mut damped = h.clone();
            (0..p).for_each(|j| damped[j * p + j] += mu);
            if let Some(s) = solve(damped, g.iter().map(|v| -v).collect()) {
                if s.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
                    step = Some(s);
                    break;
                }
            }
        }
        let Some(step) = step else {
            return Ok(report(
                iteration - 1,
                false,
                "the Hessian is singular (collinear features or separated classes?)",
                history,
                options,
                params,
                &mask,
            ));
        };
        // Newton decrement: the quadratic model predicts a decrease of lambda^2 / 2 = -g.step / 2,
        // about f - f* in the quadratic regime, where the full step leaves an error of order
        // lambda^4. Once that is negligible (here at most 1e-20 f^2) the step is taken without
        // another pass over the data to evaluate it.
        let predicted = -0.5 * step.iter().zip(&g).map(|(s, gi)| s * gi).sum::<f64>();
        if predicted <= 1e-10 * f.abs().max(1.0) {
            params.iter_mut().zip(&step).for_each(|(t, s)| *t += s);
            return Ok(report(
                iteration,
                true,
                "Newton decrement below tolerance",
                history,
                options,
                params,
                &mask,
            ));
        }
        let mut alpha = 1.0;
        let accepted = loop {
            let trial: Vec<f64> = params
                .iter()
                .zip(&step)
                .map(|(t, s)| t + alpha * s)
                .collect();
            let (tf, tg, th) = objective(&trial)?;
            if tf.is_finite()
                && tf <= f + 1e-4 * alpha * step.iter().zip(&g).map(|(s, gi)| s * gi).sum::<f64>()
            {
                break Some((trial, tf, tg, th));
            }
            if alpha == 1.0 && predicted <= 1e-6 * f.abs().max(1.0) {
                // The predicted decrease is below what an f32-reduced objective (the GPU's)
                // resolves, so the comparison is noise: take the full step and stop, rather
                // than halving it pass after pass.
                params.copy_from_slice(&trial);
                return Ok(report(
                    iteration,
                    true,
                    "Newton decrement below the objective's resolution",
                    history,
                    options,
                    params,
                    &mask,
                ));
            }
            alpha *= 0.5;
            if alpha < 1e-10 {
                break None;
            }
        };
        let Some((trial, tf, tg, th)) = accepted else {
            // Near the optimum the objective's rounding hides further decrease; elsewhere a
            // failed line search is a failure.
            let converged = gmax <= 1e-6 * n;
            let reason = if converged {
                "no decrease possible with a step above tolerance"
            } else {
                "line search failed along the Newton direction"
            };
            return Ok(report(
                iteration - 1,
                converged,
                reason,
                history,
                options,
                params,
                &mask,
            ));
        };
        let change = (f - tf).abs();
        *params = trial;
        (f, g, h) = (tf, tg, th);
        history.push(LossPoint {
            epoch: iteration,
            step: iteration,
            train_mean_nll: f / n,
            validation_mean_nll: None,
        });
        if change <= 1e-15 * f.abs().max(1.0) {
            return Ok(report(
                iteration,
                true,
                "relative change of the objective below tolerance",
                history,
                options,
                params,
                &mask,
            ));
        }
    }
    Ok(report(
        max_iter,
        false,
        "iteration limit reached",
        history,
        options,
        params,
        &mask,
    ))
}

fn report(
    steps: usize,
    converged: bool,
    reason: &str,
    history: Vec<LossPoint>,
    options: &TrainOptions,
    params: &[f64],
    mask: &[bool],
) -> TrainReport {
    TrainReport {
        steps,
        epochs: steps,
        converged,
        reason: reason.to_string(),
        history,
        log_prior: options.prior.map(|pr| pr.log_density(params, mask)),
    }
}
