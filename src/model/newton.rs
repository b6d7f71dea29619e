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
/// eta = x w + b per row, H = sum_i h_i x~ x~^T accumulated on the upper triangle without
/// allocation per row, then mirrored.
fn scalar_derivatives(net: &Network, params: &[f64], x: &[f64], y: &[f64]) -> Result<Derivatives> {
    let d = net.inputs;
    let p = d + 1;
    let (w, b) = (&params[..d], params[d]);
    let blocks: Vec<Result<Derivatives>> = (0..y.len())
        .collect::<Vec<usize>>()
        .par_chunks(4096)
        .map(|rows| {
            let (mut f, mut g, mut h) = (0.0, vec![0.0; p], vec![0.0; p * p]);
            let mut d_eta = [0.0];
            let mut xt = vec![1.0; p];
            for &r in rows {
                let xr = &x[r * d..(r + 1) * d];
                let eta = b + xr.iter().zip(w).map(|(a, c)| a * c).sum::<f64>();
                f += net.head.nll(&[eta], &[], y[r], &mut d_eta, &mut []);
                let curvature = match net.head.family {
                    FamilyName::Bernoulli => {
                        let q = d_eta[0] + y[r]; // sigmoid(eta), from dNLL/deta = sigmoid - y
                        q * (1.0 - q)
                    }
                    FamilyName::Poisson => d_eta[0] + y[r], // e^eta
                    _ => head_hessian(net, &[eta], &[], y[r])?[0],
                };
                xt[..d].copy_from_slice(xr);
                for j in 0..p {
                    g[j] += d_eta[0] * xt[j];
                    let wj = curvature * xt[j];
                    let row = &mut h[j * p..(j + 1) * p];
                    for k in j..p {
                        row[k] += wj * xt[k];
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

/// Damped Newton iterations on NLL + L2 prior (weights only).
pub fn newton(
    net: &Network,
    params: &mut Vec<f64>,
    x: &[f64],
    y: &[f64],
    options: &TrainOptions,
) -> Result<TrainReport> {
    newton_with(
        net,
        params,
        y.len(),
        &mut |theta| derivatives(net, theta, x, y),
        options,
    )
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
