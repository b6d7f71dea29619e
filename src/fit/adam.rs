//! Adam (Kingma and Ba 2015) with bias correction, on the summed objective.
//! With an L1 prior each step is followed by a per-coordinate soft-threshold (the proximal
//! step for lambda |theta|_1 in Adam's preconditioned metric), so exact zeros occur.

use super::{max_abs, pseudo_gradient, FitOptions, Objective, Run, StopReason};
use crate::error::Result;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

pub(crate) fn minimize(
    obj: &mut Objective<'_>,
    theta0: Vec<f64>,
    l1: Option<&[f64]>,
    options: &FitOptions,
) -> Result<Run> {
    let n = obj.n();
    let mut x = obj.eval(&theta0)?;
    let mut m = vec![0.0; x.theta.len()];
    let mut v = vec![0.0; x.theta.len()];
    let lr = options.learning_rate;
    for t in 1..=options.max_iter {
        if !x.finite() {
            let pg = pseudo_gradient(&x.theta, &x.grad, l1);
            return Ok(Run {
                grad_norm: max_abs(&pg),
                point: x,
                iterations: t - 1,
                reason: StopReason::NonFinite,
            });
        }
        let pg = pseudo_gradient(&x.theta, &x.grad, l1);
        if super::scaled_max_abs(&pg, options.gradient_scale.as_deref()) <= options.gtol * n {
            return Ok(Run {
                grad_norm: max_abs(&pg),
                point: x,
                iterations: t - 1,
                reason: StopReason::GradientNorm,
            });
        }
        let (c1, c2) = (1.0 - BETA1.powi(t as i32), 1.0 - BETA2.powi(t as i32));
        let mut theta = x.theta.clone();
        for j in 0..theta.len() {
            let g = x.grad[j];
            m[j] = BETA1 * m[j] + (1.0 - BETA1) * g;
            v[j] = BETA2 * v[j] + (1.0 - BETA2) * g * g;
            let scale = lr / ((v[j] / c2).sqrt() + EPS);
            theta[j] -= scale * m[j] / c1;
            if let Some(lambdas) = l1 {
                let shrink = scale * lambdas[j];
                theta[j] = theta[j].signum() * (theta[j].abs() - shrink).max(0.0);
            }
        }
        x = obj.eval(&theta)?;
    }
    let pg = pseudo_gradient(&x.theta, &x.grad, l1);
    let reason = if !x.finite() {
        StopReason::NonFinite
    } else {
        StopReason::MaxIterations
    };
    Ok(Run {
        grad_norm: max_abs(&pg),
        point: x,
        iterations: options.max_iter,
        reason,
    })
}
