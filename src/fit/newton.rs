//! Damped Newton's method on any problem that gives the gradient and Hessian of its NLL
//! (Fisher scoring where that Hessian is the expected information), with an L2 prior spread
//! over the coordinates and coordinates held fixed; and the optimality test of every smooth
//! fit: the Newton decrement.
//!
//! The decrement delta = sqrt(g^T H^-1 g) is the distance from theta to the optimum of the
//! local quadratic model, measured in the metric of H. At the MLE H^-1 is the covariance of
//! the estimates, so delta is that distance in standard errors: a test that does not depend
//! on the data's units or the parameterisation (it is affine invariant).

use super::prior::PriorLayout;
use crate::error::Result;
use crate::linalg::EquilibratedFactor;

/// (NLL, gradient, row-major Hessian).
pub type Derivatives = (f64, Vec<f64>, Vec<f64>);

/// A problem with a total NLL, its gradient and its Hessian over n samples.
pub trait SecondOrder {
    /// Number of samples the NLL sums over.
    fn n(&self) -> usize;
    /// Unit roundoff of the per-sample arithmetic (2^-24 for f32 kernels, 2^-53 for f64).
    fn unit_roundoff(&self) -> f64;
    /// NLL, gradient and Hessian at `theta`.
    fn derivatives(&mut self, theta: &[f64]) -> Result<Derivatives>;
    /// NLL and gradient alone, where the problem computes them for less than the Hessian
    /// costs (`None` otherwise): Newton's last step is verified with them.
    fn nll_and_gradient(&mut self, theta: &[f64]) -> Result<Option<(f64, Vec<f64>)>> {
        let _ = theta;
        Ok(None)
    }
}

/// A smooth fit is converged when its Newton decrement is at most this many standard errors.
/// Newton's quadratic convergence takes a decrement of 1e-5 to 1e-10 in one step, so the
/// tolerance costs at most one pass more than a looser one; f64 sums resolve it (their
/// rounding moves the estimate by about u sqrt(n kappa) standard errors, 1e-11 for a billion
/// rows or an information matrix of condition number 1e9), f32 sums of large tables do not,
/// which is what the f64 finish is for.
pub const DECREMENT_TOLERANCE: f64 = 1e-9;

/// Why Newton's method stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewtonStop {
    /// The decrement is at most [`DECREMENT_TOLERANCE`]: converged.
    Decrement,
    MaxIterations,
    /// The objective's rounding noise hides the decrease still needed: no step decreases the
    /// objective or the decrement any more.
    NoiseFloor,
    /// The information matrix is not positive semi-definite to working precision, or not
    /// finite, and no damped step descends.
    Singular,
    NonFinite,
}

impl NewtonStop {
    pub fn converged(self) -> bool {
        self == NewtonStop::Decrement
    }
    pub fn describe(self) -> &'static str {
        match self {
            NewtonStop::Decrement => "Newton decrement below tolerance",
            NewtonStop::MaxIterations => "iteration limit reached",
            NewtonStop::NoiseFloor => {
                "the objective's rounding noise hides the remaining decrease (noise floor)"
            }
            NewtonStop::Singular => {
                "the information matrix is singular or indefinite and no damped step descends"
            }
            NewtonStop::NonFinite => "objective or gradient not finite",
        }
    }
}

/// Settings of a Newton run.
#[derive(Clone, Debug)]
pub struct NewtonSettings {
    pub max_iter: usize,
    /// An L2 prior (an L1 prior is not smooth: its fits use the orthant-wise L-BFGS).
    pub prior: Option<PriorLayout>,
    /// Coordinates held at their starting value.
    pub frozen: Vec<bool>,
}

/// Where Newton's method stopped, with the objective's derivatives there.
#[derive(Clone, Debug)]
pub struct NewtonResult {
    pub theta: Vec<f64>,
    /// The NLL at `theta`.
    pub nll: f64,
    /// NLL + the prior's penalty, its gradient and Hessian at `theta` (frozen coordinates
    /// zeroed, with a unit diagonal).
    pub objective: f64,
    pub gradient: Vec<f64>,
    pub hessian: Vec<f64>,
    /// The Newton decrement at `theta`, in standard errors.
    pub decrement: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub stop: NewtonStop,
    /// The objective after each accepted step.
    pub history: Vec<f64>,
}

/// The ridge above which a factorisation is not taken as the information of a minimum: a
/// larger one means the Hessian is indefinite, not merely singular along harmless directions.
const MAX_CONVERGED_RIDGE: f64 = 1e-10;

/// One evaluated point: objective, gradient, Hessian, the Newton step and decrement there.
struct Point {
    theta: Vec<f64>,
    nll: f64,
    f: f64,
    g: Vec<f64>,
    h: Vec<f64>,
    step: Option<Vec<f64>>,
    decrement: f64,
    ridge: f64,
    factor: Option<EquilibratedFactor>,
}

impl Point {
    fn finite(&self) -> bool {
        self.f.is_finite() && self.g.iter().all(|v| v.is_finite())
    }
}

fn evaluate(
    problem: &mut dyn SecondOrder,
    theta: &[f64],
    settings: &NewtonSettings,
    evaluations: &mut usize,
) -> Result<Point> {
    *evaluations += 1;
    let (nll, g, mut h) = problem.derivatives(theta)?;
    let p = theta.len();
    if let Some(prior) = &settings.prior {
        prior.add_curvature(&mut h);
    }
    for j in 0..p {
        if settings.frozen.get(j).copied().unwrap_or(false) {
            for k in 0..p {
                h[j * p + k] = 0.0;
                h[k * p + j] = 0.0;
            }
            h[j * p + j] = 1.0;
        }
    }
    let (f, g) = objective_gradient(theta, nll, g, settings);
    let mut point = Point {
        theta: theta.to_vec(),
        nll,
        f,
        g,
        h,
        step: None,
        decrement: f64::INFINITY,
        ridge: f64::INFINITY,
        factor: None,
    };
    if point.finite() && point.h.iter().all(|v| v.is_finite()) {
        if let Some(factor) = EquilibratedFactor::new(&point.h, p) {
            let (step, decrement) = newton_step(&factor, &point.g);
            point.decrement = decrement;
            point.ridge = factor.ridge;
            point.step = Some(step);
            point.factor = Some(factor);
        }
    }
    Ok(point)
}

/// The objective (NLL + the prior's penalty) and its gradient, frozen coordinates' zeroed.
fn objective_gradient(
    theta: &[f64],
    nll: f64,
    mut g: Vec<f64>,
    settings: &NewtonSettings,
) -> (f64, Vec<f64>) {
    let mut f = nll;
    if let Some(prior) = &settings.prior {
        prior.add_smooth(theta, &mut f, &mut g);
    }
    for (j, gj) in g.iter_mut().enumerate() {
        if settings.frozen.get(j).copied().unwrap_or(false) {
            *gj = 0.0;
        }
    }
    (f, g)
}

/// The Newton step -H^-1 g and the decrement sqrt(g^T H^-1 g) from a factor of H.
fn newton_step(factor: &EquilibratedFactor, g: &[f64]) -> (Vec<f64>, f64) {
    let step: Vec<f64> = factor.solve(g).iter().map(|v| -v).collect();
    let descent = -super::dot(&step, g);
    (step, crate::linalg::decrement_of(descent))
}

/// A decrement below which the next full Newton step lands within the tolerance (the error
/// after a step is about the square of the decrement before it, times a constant of order
/// one): that step is verified from the gradient alone, with the Hessian one step old.
const QUADRATIC_REGIME: f64 = 1e-3;

/// Minimises NLL + the prior's penalty from `theta0` by damped Newton steps: the step solves
/// H s = -g (H equilibrated, with the smallest ridge that makes it positive definite, which
/// damps it towards gradient descent where H is indefinite), and is halved until the objective
/// decreases; below the objective's rounding noise a step is accepted when it shrinks the
/// decrement instead.
pub fn minimize(
    problem: &mut dyn SecondOrder,
    theta0: Vec<f64>,
    settings: &NewtonSettings,
) -> Result<NewtonResult> {
    let mut evaluations = 0;
    let mut x = evaluate(problem, &theta0, settings, &mut evaluations)?;
    let mut history = Vec::new();
    let noise_of = |f: f64, u: f64| 64.0 * u * f.abs().max(1.0);
    let u = problem.unit_roundoff();
    let mut stalls = 0;
    let mut best = x.decrement;
    let mut iterations = 0;
    let stop = loop {
        if !x.finite() {
            break NewtonStop::NonFinite;
        }
        let Some(step) = x.step.clone() else {
            break NewtonStop::Singular;
        };
        if x.decrement <= DECREMENT_TOLERANCE && x.ridge <= MAX_CONVERGED_RIDGE {
            break NewtonStop::Decrement;
        }
        if iterations >= settings.max_iter {
            break NewtonStop::MaxIterations;
        }
        iterations += 1;
        let slope = super::dot(&step, &x.g);
        let noise = noise_of(x.f, u);
        // Close to the optimum on a positive definite Hessian the gradient decides: the
        // objective's rounding can exceed 64 u |f| many times where f is a small difference
        // of large sums (a Poisson mean of 1e6 over 2e6 rows: terms of 1e13 cancelling to
        // 1e7, f known to 4e-3), and there the decrease a step still makes (decrement^2 / 2,
        // 5e-5 at a decrement of 0.01) cannot be seen. A step that halves the decrement is
        // taken then whatever f's last digits say; convergence is the decrement's test.
        let local = x.decrement <= 0.1 && x.ridge <= MAX_CONVERGED_RIDGE;
        let allowance = if local { noise.max(-slope) } else { noise };
        let mut alpha = 1.0;
        let mut accepted = None;
        while alpha >= 1e-10 {
            let trial: Vec<f64> = x
                .theta
                .iter()
                .zip(&step)
                .map(|(t, s)| t + alpha * s)
                .collect();
            // In the quadratic regime the full step should land within the tolerance: verify
            // it from the gradient with the Hessian one step old (its change over the step is
            // of the step's relative size, far below what the test resolves), which spares a
            // pass forming the Hessian.
            if alpha == 1.0 && x.decrement <= QUADRATIC_REGIME && x.ridge <= MAX_CONVERGED_RIDGE {
                if let (Some(factor), Some((nll, g))) =
                    (x.factor.as_ref(), problem.nll_and_gradient(&trial)?)
                {
                    evaluations += 1;
                    let (f, g) = objective_gradient(&trial, nll, g, settings);
                    let (_, decrement) = newton_step(factor, &g);
                    let finite = f.is_finite() && g.iter().all(|v| v.is_finite());
                    if finite && decrement <= DECREMENT_TOLERANCE {
                        history.push(f);
                        return Ok(NewtonResult {
                            theta: trial,
                            nll,
                            objective: f,
                            gradient: g,
                            hessian: x.h,
                            decrement,
                            iterations,
                            evaluations,
                            stop: NewtonStop::Decrement,
                            history,
                        });
                    }
                }
            }
            let t = evaluate(problem, &trial, settings, &mut evaluations)?;
            if t.finite() {
                let armijo = t.f <= x.f + 1e-4 * alpha * slope;
                // Below the noise floor f differences are not trusted; the decrement, from
                // the gradient, still is.
                let quieter = t.f <= x.f + allowance && t.decrement < x.decrement;
                let closer = local && t.decrement <= 0.5 * x.decrement;
                if armijo || quieter || closer {
                    accepted = Some(t);
                    break;
                }
            }
            if -slope <= noise {
                // The whole predicted decrease is below the noise: halving cannot help.
                break;
            }
            alpha *= 0.5;
        }
        match accepted {
            Some(t) => {
                // In the noise, a step that does not halve the best decrement seen is a stall
                // (steps that shrink it steadily, as towards an estimate on the boundary, are
                // not; steps that only move it around in the noise are).
                if -slope <= 10.0 * noise && t.decrement > 0.5 * best {
                    stalls += 1;
                } else {
                    stalls = 0;
                }
                best = best.min(t.decrement);
                x = t;
                history.push(x.f);
                if stalls >= 3 {
                    break NewtonStop::NoiseFloor;
                }
            }
            None if -slope <= 10.0 * noise => break NewtonStop::NoiseFloor,
            None => break NewtonStop::Singular,
        }
    };
    Ok(NewtonResult {
        theta: x.theta,
        nll: x.nll,
        objective: x.f,
        gradient: x.g,
        hessian: x.h,
        decrement: x.decrement,
        iterations,
        evaluations,
        stop,
        history,
    })
}

/// Which arithmetic finished a fit (JSON `precision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Precision {
    /// f64 throughout (the CPU engine).
    #[serde(rename = "f64")]
    F64,
    /// f32 passes whose result passed the optimality test evaluated in f64.
    #[serde(rename = "f32")]
    F32,
    /// f32 passes, then iterations on f64 sums to reach the optimum f32 cannot resolve.
    #[serde(rename = "f32+f64")]
    F32ThenF64,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F64 => "f64",
            Precision::F32 => "f32",
            Precision::F32ThenF64 => "f32+f64",
        }
    }
}

/// Newton on `problem`; where its sums are f32, continued on `exact` (the same problem summed
/// in f64) from where it stopped, so that the optimality test is decided in f64 and the fit
/// reaches the optimum f32 cannot resolve.
pub fn minimize_mixed(
    problem: &mut dyn SecondOrder,
    exact: Option<&mut dyn SecondOrder>,
    theta0: Vec<f64>,
    settings: &NewtonSettings,
) -> Result<(NewtonResult, Precision)> {
    let coarse = problem.unit_roundoff() > 1e-12;
    let first = minimize(problem, theta0, settings)?;
    match exact {
        Some(exact) if coarse => {
            let start = if first.theta.iter().all(|v| v.is_finite()) {
                first.theta.clone()
            } else {
                return Ok((first, Precision::F32));
            };
            let mut finish = minimize(exact, start, settings)?;
            let precision = if finish.iterations == 0 {
                Precision::F32
            } else {
                Precision::F32ThenF64
            };
            finish.iterations += first.iterations;
            finish.evaluations += first.evaluations;
            let mut history = first.history;
            history.append(&mut finish.history);
            finish.history = history;
            Ok((finish, precision))
        }
        _ => Ok((
            first,
            if coarse {
                Precision::F32
            } else {
                Precision::F64
            },
        )),
    }
}

/// Newton's method for NLL + sum_j lambda_j |theta_j| (an L1 prior) from a point near its
/// optimum (OWL-QN's), on the active set: coordinates at 0 whose gradient is within
/// [-lambda_j, lambda_j] stay there; the others take a Newton step on their smooth objective
/// NLL + lambda_j s_j theta_j (s_j their sign, or the side they leave 0 towards), projected
/// so that no coordinate crosses 0 (one that would is set to 0), halved until the objective
/// decreases. Stops when the step no longer changes the active set and its decrement is below
/// tolerance.
pub fn minimize_l1(
    problem: &mut dyn SecondOrder,
    theta0: Vec<f64>,
    lambdas: &[f64],
    frozen: &[bool],
    max_iter: usize,
) -> Result<(Vec<f64>, usize, usize)> {
    let p = theta0.len();
    let mut theta = theta0;
    let total = |nll: f64, t: &[f64]| -> f64 {
        nll + t.iter().zip(lambdas).map(|(v, l)| l * v.abs()).sum::<f64>()
    };
    let mut evaluations = 0;
    let mut iterations = 0;
    let (mut nll, mut g, mut h) = problem.derivatives(&theta)?;
    evaluations += 1;
    while iterations < max_iter {
        // The orthant each coordinate is in, or moves to from 0.
        let sign: Vec<f64> = (0..p)
            .map(|j| {
                if theta[j] != 0.0 || lambdas[j] == 0.0 {
                    theta[j].signum()
                } else if g[j] > lambdas[j] {
                    -1.0
                } else if g[j] < -lambdas[j] {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let free: Vec<usize> = (0..p)
            .filter(|&j| {
                !frozen.get(j).copied().unwrap_or(false) && (lambdas[j] == 0.0 || sign[j] != 0.0)
            })
            .collect();
        let m = free.len();
        if m == 0 {
            break;
        }
        let sub = crate::linalg::principal_submatrix(&h, p, &free, &[]);
        let gf: Vec<f64> = free.iter().map(|&j| g[j] + lambdas[j] * sign[j]).collect();
        let Some(factor) = EquilibratedFactor::new(&sub, m) else {
            break;
        };
        let step = factor.solve(&gf);
        let decrement = crate::linalg::decrement_of(super::dot(&step, &gf));
        if decrement <= 0.1 * DECREMENT_TOLERANCE {
            break;
        }
        iterations += 1;
        let f0 = total(nll, &theta);
        let mut alpha = 1.0;
        let mut moved = false;
        while alpha >= 1e-10 {
            let mut trial = theta.clone();
            for (a, &j) in free.iter().enumerate() {
                let v = theta[j] - alpha * step[a];
                // No crossing of 0: a coordinate that would is set to 0.
                trial[j] = if lambdas[j] > 0.0 && v * sign[j] < 0.0 {
                    0.0
                } else {
                    v
                };
            }
            let (tn, tg, th) = problem.derivatives(&trial)?;
            evaluations += 1;
            if tn.is_finite() && total(tn, &trial) <= f0 {
                theta = trial;
                (nll, g, h) = (tn, tg, th);
                moved = true;
                break;
            }
            alpha *= 0.5;
        }
        if !moved {
            break;
        }
    }
    Ok((theta, iterations, evaluations))
}
