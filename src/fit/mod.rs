//! Maximum-likelihood and MAP fitting on any [`Engine`].
//!
//! The driver owns the loop, counts evaluations and applies the termination rules; the
//! optimisers ([`lbfgs`], [`adam`]) only propose steps. All optimiser arithmetic is f64.

pub mod adam;
pub mod lbfgs;
pub mod prior;

pub use prior::Prior;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::family::Degenerate;

/// `--optimizer`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Optimizer {
    /// Limited-memory BFGS with a Wolfe line search (orthant-wise for an L1 prior).
    #[default]
    Lbfgs,
    /// Adam with bias correction (proximal soft-thresholding for an L1 prior).
    Adam,
}

/// Settings of a fit. Tolerances are documented in the README's accuracy policy.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub optimizer: Optimizer,
    pub prior: Option<Prior>,
    pub max_iter: usize,
    /// Stop when the largest gradient component is at most `gtol * n` (a mean per sample).
    pub gtol: f64,
    /// Stop when the objective changes by at most `ftol` relative to its size.
    pub ftol: f64,
    /// Stop when no step longer than `xtol * (1 + |theta|)` decreases the objective.
    pub xtol: f64,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Starting point on the unconstrained scale; the family's default when `None`.
    pub initial: Option<Vec<f64>>,
    /// Per-coordinate factors the gradient is multiplied by in the `gtol` test, so that the
    /// test does not depend on the data's units (family fits set 1 / sqrt of each coordinate's
    /// curvature per sample at the start); 1 when `None`.
    pub gradient_scale: Option<Vec<f64>>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            optimizer: Optimizer::Lbfgs,
            prior: None,
            max_iter: 500,
            gtol: 1e-10,
            ftol: 1e-15,
            xtol: 1e-13,
            learning_rate: 0.05,
            initial: None,
            gradient_scale: None,
        }
    }
}

/// Why a fit stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The (pseudo-)gradient fell below `gtol * n`.
    GradientNorm,
    /// The objective changed by less than `ftol` relative.
    RelativeChange,
    /// No step longer than `xtol` decreases the objective in the gradient or any coordinate
    /// direction: a minimum to working precision (also at a kink, e.g. the Laplace median).
    StepTolerance,
    /// `max_iter` iterations without meeting a criterion.
    MaxIterations,
    /// The objective or its gradient became NaN or infinite.
    NonFinite,
}

impl StopReason {
    pub fn converged(self) -> bool {
        matches!(
            self,
            StopReason::GradientNorm | StopReason::RelativeChange | StopReason::StepTolerance
        )
    }
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::GradientNorm => "gradient norm below tolerance",
            StopReason::RelativeChange => "relative change of the objective below tolerance",
            StopReason::StepTolerance => "no decrease possible with a step above tolerance",
            StopReason::MaxIterations => "iteration limit reached",
            StopReason::NonFinite => "objective or gradient not finite",
        }
    }
}

/// The outcome of a fit.
#[derive(Clone, Debug)]
pub struct FitResult {
    /// Unconstrained parameters at the optimum.
    pub theta: Vec<f64>,
    /// Total negative log-likelihood at `theta`.
    pub nll: f64,
    /// log p(theta) when a prior was given.
    pub log_prior: Option<f64>,
    pub iterations: usize,
    pub evaluations: usize,
    pub converged: bool,
    pub reason: StopReason,
    /// Largest component of the objective's (pseudo-)gradient at `theta`.
    pub grad_norm: f64,
    /// Things the user should know about the estimate (e.g. an MLE on the boundary).
    pub warnings: Vec<String>,
}

impl FitResult {
    /// log-likelihood + log-prior (the unnormalised log posterior) when a prior was given.
    pub fn log_posterior(&self) -> Option<f64> {
        self.log_prior.map(|lp| lp - self.nll)
    }
}

/// Anything with a total NLL and its gradient over n samples: an [`Engine`] bound to a
/// family, or a conditional model over a table.
pub trait Differentiable {
    /// Number of samples the NLL sums over.
    fn n(&self) -> usize;
    /// Unit roundoff of the per-sample arithmetic.
    fn unit_roundoff(&self) -> f64;
    /// Total NLL and its gradient at `theta`.
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)>;
}

/// An engine seen as a [`Differentiable`] problem.
pub(crate) struct EngineProblem<'a>(pub(crate) &'a mut dyn Engine);

impl Differentiable for EngineProblem<'_> {
    fn n(&self) -> usize {
        self.0.n()
    }
    fn unit_roundoff(&self) -> f64 {
        self.0.unit_roundoff()
    }
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.0.nll_and_grad(theta)
    }
}

/// The objective an optimiser minimises: NLL plus the smooth part of -log prior on the
/// coordinates the prior applies to. Counts evaluations. The L1 part, if any, is left to the
/// optimiser (it is not smooth).
pub(crate) struct Objective<'a> {
    problem: &'a mut dyn Differentiable,
    prior: Option<Prior>,
    mask: Vec<bool>,
    pub evaluations: usize,
}

/// One evaluation: smooth objective, its gradient, and the NLL alone.
#[derive(Clone, Debug)]
pub(crate) struct Point {
    pub theta: Vec<f64>,
    pub f: f64,
    pub grad: Vec<f64>,
    pub nll: f64,
}

impl Point {
    pub fn finite(&self) -> bool {
        self.f.is_finite() && self.grad.iter().all(|g| g.is_finite())
    }
}

impl Objective<'_> {
    pub fn eval(&mut self, theta: &[f64]) -> Result<Point> {
        self.evaluations += 1;
        let (nll, mut grad) = self.problem.nll_and_grad(theta)?;
        let mut f = nll;
        if let Some(p) = &self.prior {
            p.add_smooth(theta, &self.mask, &mut f, &mut grad);
        }
        Ok(Point {
            theta: theta.to_vec(),
            f,
            grad,
            nll,
        })
    }

    pub fn n(&self) -> f64 {
        self.problem.n().max(1) as f64
    }

    /// Noise level of f from the engine's rounding, used by the line search's approximate
    /// Wolfe test (Hager and Zhang): differences below it are not trusted.
    pub fn f_noise(&self, f: f64) -> f64 {
        64.0 * self.problem.unit_roundoff() * f.abs().max(1.0)
    }
}

/// Fits the engine's family to its data by MLE (no prior) or MAP.
pub fn fit(engine: &mut dyn Engine, options: &FitOptions) -> Result<FitResult> {
    let family = engine.family();
    let theta0 = match &options.initial {
        Some(t) => t.clone(),
        None => family.initial_theta(&engine.summary()),
    };
    if theta0.len() != family.n_params() {
        return Err(Error::Usage(format!(
            "starting point has {} values, {} needs {}",
            theta0.len(),
            family.name(),
            family.n_params()
        )));
    }
    let mut warnings = Vec::new();
    match family.degenerate(&engine.summary()) {
        Some(Degenerate::Unbounded(why)) if options.prior.is_none() => {
            return Err(Error::InvalidData(format!(
                "the maximum-likelihood estimate does not exist: {why}; a prior (e.g. --prior l2:10) gives a MAP estimate"
            )))
        }
        Some(Degenerate::Boundary(why)) if options.prior.is_none() => {
            warnings.push(format!("{why}; the estimate approaches it and its logarithmic parameter is large"))
        }
        _ => {}
    }
    // The gradient test in units of each coordinate's curvature: for the Gaussian's mu,
    // d NLL / d mu = n (mu - mean) / sigma^2, so a fixed threshold on it would stop within a
    // fixed fraction of sigma^2 of the mean (many standard errors off for data in the
    // billions). Scaled by sigma (1 / sqrt of the curvature per sample), it stops within a
    // fixed fraction of sigma, whatever the units.
    // (The Hessian is dense: past MAX_INFERENCE_PARAMS coordinates the test stays unscaled.)
    let gradient_scale = match &options.gradient_scale {
        Some(scale) => Some(scale.clone()),
        None if theta0.len() <= crate::inference::MAX_INFERENCE_PARAMS => {
            Some(curvature_scales(engine, &theta0)?)
        }
        None => None,
    };
    let options = &FitOptions {
        gradient_scale,
        ..options.clone()
    };
    let mask = vec![true; theta0.len()];
    let mut result = minimize(&mut EngineProblem(engine), theta0, &mask, options)?;
    result.warnings.extend(warnings);
    Ok(result)
}

/// 1 / sqrt(H_jj / n) for each coordinate of the family's Hessian at `theta` (1 where that
/// curvature is not positive and finite).
fn curvature_scales(engine: &mut dyn Engine, theta: &[f64]) -> Result<Vec<f64>> {
    let sums = engine.term_sums(theta)?;
    let n = engine.n().max(1) as f64;
    let p = theta.len();
    let hessian = engine.family().hessian(n, &sums, theta);
    Ok((0..p)
        .map(|j| {
            let per_sample = hessian[j * p + j] / n;
            if per_sample > 0.0 && per_sample.is_finite() {
                1.0 / per_sample.sqrt()
            } else {
                1.0
            }
        })
        .collect())
}

/// The largest |g_j| * scale_j (scale 1 where `scale` is `None`).
pub(crate) fn scaled_max_abs(g: &[f64], scale: Option<&[f64]>) -> f64 {
    match scale {
        Some(s) => g
            .iter()
            .zip(s)
            .fold(0.0f64, |m, (g, s)| m.max((g * s).abs())),
        None => max_abs(g),
    }
}

/// Minimises NLL - log prior over `theta`, the prior applying where `mask` is true (models
/// leave intercepts and biases unpenalised).
pub fn minimize(
    problem: &mut dyn Differentiable,
    theta0: Vec<f64>,
    mask: &[bool],
    options: &FitOptions,
) -> Result<FitResult> {
    let l1: Option<Vec<f64>> = options
        .prior
        .and_then(|p| p.l1_weight())
        .map(|lambda| mask.iter().map(|&m| if m { lambda } else { 0.0 }).collect());
    let mut objective = Objective {
        problem,
        prior: options.prior,
        mask: mask.to_vec(),
        evaluations: 0,
    };
    let run = match options.optimizer {
        Optimizer::Lbfgs => lbfgs::minimize(&mut objective, theta0, l1.as_deref(), options)?,
        Optimizer::Adam => adam::minimize(&mut objective, theta0, l1.as_deref(), options)?,
    };
    let log_prior = options.prior.map(|p| p.log_density(&run.point.theta, mask));
    Ok(FitResult {
        nll: run.point.nll,
        theta: run.point.theta,
        log_prior,
        iterations: run.iterations,
        evaluations: objective.evaluations,
        converged: run.reason.converged(),
        reason: run.reason,
        grad_norm: run.grad_norm,
        warnings: Vec::new(),
    })
}

/// What an optimiser returns to the driver.
pub(crate) struct Run {
    pub point: Point,
    pub iterations: usize,
    pub reason: StopReason,
    pub grad_norm: f64,
}

/// The orthant-wise pseudo-gradient of f + lambda |theta|_1 (equals the gradient without L1):
/// the minimum-norm subgradient.
pub(crate) fn pseudo_gradient(theta: &[f64], grad: &[f64], l1: Option<&[f64]>) -> Vec<f64> {
    let Some(lambdas) = l1 else {
        return grad.to_vec();
    };
    theta
        .iter()
        .zip(grad)
        .zip(lambdas)
        .map(|((&t, &g), &lambda)| {
            if t > 0.0 {
                g + lambda
            } else if t < 0.0 {
                g - lambda
            } else if g + lambda < 0.0 {
                g + lambda
            } else if g - lambda > 0.0 {
                g - lambda
            } else {
                0.0
            }
        })
        .collect()
}

/// sum_j lambda_j |theta_j|.
pub(crate) fn l1_penalty(theta: &[f64], lambdas: &[f64]) -> f64 {
    theta.iter().zip(lambdas).map(|(t, l)| l * t.abs()).sum()
}

pub(crate) fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
