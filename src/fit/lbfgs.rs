//! L-BFGS, and its orthant-wise variant (OWL-QN, Andrew and Gao 2007) for an L1 prior.
//!
//! Smooth case: the two-loop recursion gives d = -H g; a line search along d finds a step
//! meeting the strong Wolfe conditions, or Hager and Zhang's approximate Wolfe conditions
//! when f differences are below the engine's rounding noise. The bracket is refined with the
//! directional derivative (secant, safeguarded bisection), so it also converges onto kinks
//! such as the Laplace median, where f is flat to rounding but the derivative changes sign.
//!
//! L1 case: with F = f + lambda |theta|_1, the pseudo-gradient replaces g; the direction is
//! constrained to the orthant it points into, and trial points are projected onto that
//! orthant, so coordinates land on exactly zero.

use super::{
    dot, l1_penalty, max_abs, pseudo_gradient, FitOptions, Objective, Point, Run, StopReason,
};
use crate::error::Result;
use std::collections::VecDeque;

/// Single-coordinate directions tried per iteration when neither the quasi-Newton nor the
/// steepest-descent direction makes progress.
const MAX_COORDINATE_TRIES: usize = 16;

const HISTORY: usize = 10;
const C1: f64 = 1e-4;
const C2: f64 = 0.9;
const MAX_LINE_SEARCH: usize = 60;

struct Memory {
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>, // (s, y, 1 / y.s)
}

impl Memory {
    fn new() -> Self {
        Memory {
            pairs: VecDeque::new(),
        }
    }
    fn push(&mut self, s: Vec<f64>, y: Vec<f64>) {
        let ys = dot(&y, &s);
        // Keep only pairs with positive curvature, so H stays positive definite.
        if ys > 1e-300 && ys.is_finite() {
            if self.pairs.len() == HISTORY {
                self.pairs.pop_front();
            }
            self.pairs.push_back((s, y, 1.0 / ys));
        }
    }
    /// d = -H g by the two-loop recursion, H0 = (s.y / y.y) I.
    fn direction(&self, g: &[f64]) -> Vec<f64> {
        let mut q = g.to_vec();
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for (s, y, rho) in self.pairs.iter().rev() {
            let a = rho * dot(s, &q);
            for (qi, yi) in q.iter_mut().zip(y) {
                *qi -= a * yi;
            }
            alphas.push(a);
        }
        if let Some((s, y, _)) = self.pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y, rho), a) in self.pairs.iter().zip(alphas.into_iter().rev()) {
            let b = rho * dot(y, &q);
            for (qi, si) in q.iter_mut().zip(s) {
                *qi += (a - b) * si;
            }
        }
        q.iter().map(|v| -v).collect()
    }
}

/// The full objective including the L1 term.
fn total(p: &Point, l1: Option<&[f64]>) -> f64 {
    p.f + l1.map_or(0.0, |lambdas| l1_penalty(&p.theta, lambdas))
}

fn step(theta: &[f64], d: &[f64], alpha: f64) -> Vec<f64> {
    theta.iter().zip(d).map(|(t, di)| t + alpha * di).collect()
}

pub(crate) fn minimize(
    obj: &mut Objective<'_>,
    theta0: Vec<f64>,
    l1: Option<&[f64]>,
    options: &FitOptions,
) -> Result<Run> {
    let mut x = obj.eval(&theta0)?;
    let n = obj.n();
    let mut memory = Memory::new();
    let mut pg = pseudo_gradient(&x.theta, &x.grad, l1);
    let mut iterations = 0;
    let finish = |x: Point, iterations, reason, pg: &[f64]| Run {
        point: x,
        iterations,
        reason,
        grad_norm: max_abs(pg),
    };
    if !x.finite() {
        return Ok(finish(x, 0, StopReason::NonFinite, &pg));
    }
    loop {
        if super::scaled_max_abs(&pg, options.gradient_scale.as_deref()) <= options.gtol * n {
            return Ok(finish(x, iterations, StopReason::GradientNorm, &pg));
        }
        if iterations >= options.max_iter {
            return Ok(finish(x, iterations, StopReason::MaxIterations, &pg));
        }
        iterations += 1;

        // Quasi-Newton direction first; steepest descent, then single coordinates, when the
        // line search cannot decrease the objective along it.
        // The coordinates are those of the largest pseudo-gradient components, at most
        // MAX_COORDINATE_TRIES of them (each try is a line search), each direction built only
        // when it is tried: with many parameters, all of them would be a p x p matrix.
        let quasi_newton = (!memory.pairs.is_empty()).then(|| memory.direction(&pg));
        let largest = max_abs(&pg);
        let steepest: Vec<f64> = pg.iter().map(|g| -g / largest).collect();
        let mut steepest_coordinates: Vec<usize> = (0..pg.len())
            .filter(|&j| pg[j] != 0.0 && x.theta.len() > 1)
            .collect();
        steepest_coordinates.sort_by(|&a, &b| pg[b].abs().total_cmp(&pg[a].abs()));
        steepest_coordinates.truncate(MAX_COORDINATE_TRIES);
        let coordinates = steepest_coordinates.into_iter().map(|j| {
            let mut e = vec![0.0; pg.len()];
            e[j] = -pg[j].signum();
            e
        });
        let candidates = quasi_newton
            .into_iter()
            .chain(std::iter::once(steepest))
            .chain(coordinates);
        // Take the first candidate that makes real progress: f falls by more than ftol
        // relative, or (below f's noise floor) the gradient at least halves. Tiny gains are
        // kept as a fallback: if no direction does better, we are at a minimum to working
        // precision (this also stops the stall that kinks cause in quasi-Newton directions).
        let f0 = total(&x, l1);
        let g0 = max_abs(&pg);
        let mut next = None;
        let mut fallback: Option<Point> = None;
        for mut d in candidates {
            if l1.is_some() {
                // OWL-QN: keep only components that descend along the pseudo-gradient.
                for (di, gi) in d.iter_mut().zip(&pg) {
                    if *di * gi >= 0.0 {
                        *di = 0.0;
                    }
                }
            }
            if dot(&d, &pg) >= 0.0 || max_abs(&d) == 0.0 {
                continue;
            }
            let alpha0 = if memory.pairs.is_empty() {
                (1.0 / max_abs(&d)).min(1.0)
            } else {
                1.0
            };
            let found = match l1 {
                None => wolfe_search(obj, &x, &d, alpha0, options)?,
                Some(lambdas) => projected_search(obj, &x, &pg, &d, alpha0, lambdas, options)?,
            };
            if let Some(p) = found {
                let f = total(&p, l1);
                let g = max_abs(&pseudo_gradient(&p.theta, &p.grad, l1));
                if f0 - f > options.ftol * f0.abs().max(f.abs()).max(1.0)
                    || (f <= f0 + obj.f_noise(f0) && g < 0.5 * g0)
                {
                    next = Some(p);
                    break;
                }
                if f < f0 && fallback.as_ref().is_none_or(|b| f < total(b, l1)) {
                    fallback = Some(p);
                }
            }
            memory = Memory::new();
        }
        let Some(new) = next else {
            return Ok(match fallback {
                Some(p) => {
                    let pg = pseudo_gradient(&p.theta, &p.grad, l1);
                    finish(p, iterations, StopReason::RelativeChange, &pg)
                }
                None => finish(x, iterations, StopReason::StepTolerance, &pg),
            });
        };
        if !new.finite() {
            return Ok(finish(new, iterations, StopReason::NonFinite, &pg));
        }
        let s: Vec<f64> = new.theta.iter().zip(&x.theta).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = new.grad.iter().zip(&x.grad).map(|(a, b)| a - b).collect();
        memory.push(s, y);
        x = new;
        pg = pseudo_gradient(&x.theta, &x.grad, l1);
    }
}

/// Smallest step length worth trying along `d` from `theta`.
fn min_step(theta: &[f64], d: &[f64], xtol: f64) -> f64 {
    xtol * (1.0 + max_abs(theta)) / max_abs(d)
}

/// Strong-Wolfe line search with approximate-Wolfe acceptance near the noise floor.
/// Returns `None` when the bracket collapses below the step tolerance without progress.
fn wolfe_search(
    obj: &mut Objective<'_>,
    x: &Point,
    d: &[f64],
    alpha0: f64,
    options: &FitOptions,
) -> Result<Option<Point>> {
    let dphi0 = dot(&x.grad, d);
    let noise = obj.f_noise(x.f);
    let tiny = min_step(&x.theta, d, options.xtol);
    let (mut lo, mut dphi_lo, mut best): (f64, f64, Option<Point>) = (0.0, dphi0, None);
    let (mut hi, mut dphi_hi) = (f64::INFINITY, f64::NAN);
    let mut alpha = alpha0;
    for _ in 0..MAX_LINE_SEARCH {
        let p = obj.eval(&step(&x.theta, d, alpha))?;
        if !p.finite() {
            hi = alpha;
            dphi_hi = f64::NAN;
        } else {
            let dphi = dot(&p.grad, d);
            let armijo = p.f <= x.f + C1 * alpha * dphi0;
            let approx = p.f <= x.f + noise && dphi <= (2.0 * C1 - 1.0) * dphi0;
            if (armijo || approx) && dphi.abs() <= C2 * dphi0.abs() {
                return Ok(Some(p));
            }
            if (armijo || approx) && dphi < 0.0 {
                lo = alpha;
                dphi_lo = dphi;
                best = Some(p);
            } else {
                hi = alpha;
                dphi_hi = dphi;
            }
        }
        if hi.is_infinite() {
            alpha *= 4.0;
            continue;
        }
        if hi - lo <= tiny {
            break;
        }
        // Secant on the directional derivative when it brackets a sign change, else bisect.
        let width = hi - lo;
        alpha = if dphi_hi.is_finite() && dphi_hi > 0.0 && dphi_lo < 0.0 {
            let a = lo - dphi_lo * width / (dphi_hi - dphi_lo);
            a.clamp(lo + 0.05 * width, hi - 0.05 * width)
        } else {
            lo + 0.5 * width
        };
    }
    Ok(best)
}

/// OWL-QN backtracking along the orthant-projected path with a sufficient-decrease test on
/// F = f + lambda |theta|_1.
fn projected_search(
    obj: &mut Objective<'_>,
    x: &Point,
    pg: &[f64],
    d: &[f64],
    alpha0: f64,
    lambdas: &[f64],
    options: &FitOptions,
) -> Result<Option<Point>> {
    let orthant: Vec<f64> = x
        .theta
        .iter()
        .zip(pg)
        .map(|(&t, &g)| if t != 0.0 { t.signum() } else { -g.signum() })
        .collect();
    let f0 = total(x, Some(lambdas));
    let noise = obj.f_noise(f0);
    let tiny = min_step(&x.theta, d, options.xtol);
    let mut alpha = alpha0;
    while alpha > tiny {
        let theta: Vec<f64> = step(&x.theta, d, alpha)
            .into_iter()
            .zip(&orthant)
            .map(|(t, &o)| if t * o > 0.0 { t } else { 0.0 })
            .collect();
        let p = obj.eval(&theta)?;
        if p.finite() {
            let moved: Vec<f64> = theta.iter().zip(&x.theta).map(|(a, b)| a - b).collect();
            let decrease = dot(pg, &moved);
            let f = total(&p, Some(lambdas));
            if f <= f0 + C1 * decrease || (f < f0 + noise && decrease < 0.0 && f < f0) {
                return Ok(Some(p));
            }
        }
        alpha *= 0.5;
    }
    Ok(None)
}
