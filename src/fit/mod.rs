//! Maximum-likelihood and MAP fitting on any [`Engine`].
//!
//! The driver owns the loop, counts evaluations and applies the termination rules; the
//! optimisers ([`lbfgs`], [`adam`]) only propose steps. All optimiser arithmetic is f64.

pub mod adam;
pub mod lbfgs;
pub mod newton;
pub mod prior;

pub use newton::{Derivatives, NewtonSettings, Precision, SecondOrder, DECREMENT_TOLERANCE};
pub use prior::{Prior, PriorLayout};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::family::Degenerate;

/// `--optimizer`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Newton's method on the family's exact Hessian (from the same term sums as the NLL);
    /// L-BFGS where the family has no exact Hessian (the Laplace's kinks), more than 2048
    /// parameters or an L1 prior.
    #[default]
    Newton,
    /// Limited-memory BFGS with a Wolfe line search (orthant-wise for an L1 prior).
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
    /// Coordinates of theta held at a value instead of estimated (`--fix`; scipy's `f0` and
    /// `floc`): Newton runs on the others, the optimality test holds these where they are,
    /// and inference leaves them out. Empty: none.
    pub fixed: Vec<Option<f64>>,
}

impl FitOptions {
    /// Which coordinates [`FitOptions::fixed`] holds, for `p` of them.
    pub fn held(&self, p: usize) -> Vec<bool> {
        (0..p)
            .map(|j| self.fixed.get(j).is_some_and(|v| v.is_some()))
            .collect()
    }
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            optimizer: Optimizer::Newton,
            prior: None,
            max_iter: 500,
            gtol: 1e-10,
            ftol: 1e-15,
            xtol: 1e-13,
            learning_rate: 0.05,
            initial: None,
            gradient_scale: None,
            fixed: Vec::new(),
        }
    }
}

/// Newton iterations an f32 phase may take before the f64 finish (see [`fit`]): Newton
/// converges in far fewer wherever f32 resolves the NLL.
const F32_PHASE_ITERATIONS: usize = 50;

/// Why a fit stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The optimality test holds at the estimate: the Newton decrement (in standard errors)
    /// of the smooth coordinates, and the subgradient condition at kinks (the Laplace's mu,
    /// coordinates an L1 prior holds at 0), evaluated from f64 sums.
    Optimal,
    /// The optimiser stopped (no step decreases the objective, or it changes by less than its
    /// tolerance) where the optimality test does not hold.
    NotOptimal,
    /// The objective's rounding noise hides the decrease still needed.
    NoiseFloor,
    /// The information matrix is singular or indefinite and no damped Newton step descends.
    Singular,
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
    /// Whether an optimiser's own stopping rule says it is done (the optimality test then
    /// decides whether the fit converged).
    pub fn optimiser_done(self) -> bool {
        matches!(
            self,
            StopReason::GradientNorm
                | StopReason::RelativeChange
                | StopReason::StepTolerance
                | StopReason::Optimal
        )
    }
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Optimal => "optimality test holds (Newton decrement, subgradient)",
            StopReason::NotOptimal => {
                "the optimiser stopped where the optimality test does not hold"
            }
            StopReason::NoiseFloor => {
                "the objective's rounding noise hides the remaining decrease (noise floor)"
            }
            StopReason::Singular => {
                "the information matrix is singular or indefinite and no damped step descends"
            }
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
    /// The optimality test's measure at `theta`: the Newton decrement in standard errors
    /// (the largest curvature-scaled gradient component for fits without a Hessian).
    pub decrement: f64,
    /// Which arithmetic finished the fit.
    pub precision: Precision,
    /// The optimiser that ran (Newton falls back to L-BFGS where it does not apply).
    pub optimizer: Optimizer,
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

/// A family's engine as the problem a fit solves: evaluated at theta' = phi + offset (the
/// engine's coordinates, see [`Engine::sample_map`]), from the engine's own sums or, with
/// `exact`, from its f64 sums.
pub(crate) struct EngineProblem<'a> {
    pub engine: &'a mut dyn Engine,
    pub offset: Vec<f64>,
    pub exact: bool,
    /// Curvature added along the family's invariant direction (no prior breaks the
    /// invariance): see [`crate::family::Family::invariant_direction`].
    pub pin_invariant: bool,
    /// Coordinates held at their value ([`FitOptions::fixed`]); empty where none are.
    pub held: Vec<bool>,
}

/// Adds n v v^T / |v|^2 to a row-major Hessian: curvature along a direction in which the NLL
/// is constant, so that a Newton step has no component along it (the gradient has none, up to
/// rounding) and the decrement is the pseudo-inverse's.
fn pin_direction(h: &mut [f64], v: &[f64], n: f64) {
    let p = v.len();
    let norm2: f64 = v.iter().map(|x| x * x).sum();
    let c = n.max(1.0) / norm2;
    for i in 0..p {
        for k in 0..p {
            h[i * p + k] += c * v[i] * v[k];
        }
    }
}

impl<'a> EngineProblem<'a> {
    fn at(&self, phi: &[f64]) -> Vec<f64> {
        phi.iter().zip(&self.offset).map(|(a, b)| a + b).collect()
    }

    /// The term sums at phi.
    fn sums(&mut self, phi: &[f64]) -> Result<Vec<f64>> {
        let theta = self.at(phi);
        if theta.len() != self.engine.family().n_params() {
            return Err(Error::Usage(format!(
                "{} expects {} parameters, got {}",
                self.engine.family().name(),
                self.engine.family().n_params(),
                theta.len()
            )));
        }
        if self.exact {
            if let Some(sums) = self.engine.exact_term_sums(&theta)? {
                return Ok(sums);
            }
        }
        self.engine.term_sums(&theta)
    }

    /// Whether evaluations are f64 sums.
    fn is_exact(&self) -> bool {
        self.exact || self.engine.unit_roundoff() < 1e-12
    }
}

impl Differentiable for EngineProblem<'_> {
    fn n(&self) -> usize {
        // The observations counted (the weights' sum where rows carry weights), for the
        // optimisers' per-observation tolerances.
        (self.engine.count().ceil() as usize).max(1)
    }
    fn unit_roundoff(&self) -> f64 {
        if self.is_exact() {
            f64::EPSILON / 2.0
        } else {
            self.engine.unit_roundoff()
        }
    }
    fn nll_and_grad(&mut self, phi: &[f64]) -> Result<(f64, Vec<f64>)> {
        let sums = self.sums(phi)?;
        let theta = self.at(phi);
        let (nll, grad) = self
            .engine
            .family()
            .finish(self.engine.count(), &sums, &theta);
        Ok((nll + self.engine.constant(), grad))
    }
}

impl SecondOrder for EngineProblem<'_> {
    fn n(&self) -> usize {
        // The observations counted (the weights' sum where rows carry weights), for the
        // optimisers' per-observation tolerances.
        (self.engine.count().ceil() as usize).max(1)
    }
    fn unit_roundoff(&self) -> f64 {
        Differentiable::unit_roundoff(self)
    }
    fn derivatives(&mut self, phi: &[f64]) -> Result<Derivatives> {
        let sums = self.sums(phi)?;
        let theta = self.at(phi);
        let family = self.engine.family();
        let n = self.engine.count();
        let (nll, grad) = family.finish(n, &sums, &theta);
        let mut hessian = family.hessian(n, &sums, &theta);
        if let (true, Some(v)) = (self.pin_invariant, family.invariant_direction()) {
            pin_direction(&mut hessian, &v, n);
        }
        Ok((nll + self.engine.constant(), grad, hessian))
    }
}

/// The objective an optimiser minimises: NLL plus the smooth part of -log prior. Counts
/// evaluations. The L1 part, if any, is left to the optimiser (it is not smooth).
pub(crate) struct Objective<'a> {
    problem: &'a mut dyn Differentiable,
    prior: Option<PriorLayout>,
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
            p.add_smooth(theta, &mut f, &mut grad);
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

/// How many times L-BFGS is restarted with the gradient test rescaled at its last point when
/// it stops where the optimality test fails.
const LBFGS_RESTARTS: usize = 3;

/// The coordinates a family fit runs in: psi = theta' - offset, where theta' = a theta + b is
/// the engine's own parameter (see [`Engine::sample_map`]). The offset is b, so that psi = a
/// theta keeps the prior centred at 0, except for a location parameter without an L1 prior:
/// there it is the starting location, so that psi is small whatever the data's location
/// (L-BFGS's step tolerance is relative to |psi|, and mu near 1e8 would make it 1e-5).
pub struct FitCoordinates {
    /// a: theta' = a theta + b (powers of two).
    pub scale: Vec<f64>,
    /// b.
    pub map_offset: Vec<f64>,
    /// Where psi = 0 lies in the engine's coordinates.
    pub offset: Vec<f64>,
}

impl FitCoordinates {
    /// The coordinates of a fit on `engine` (theta0' is the engine's starting point).
    pub fn new(engine: &dyn Engine, prior: Option<Prior>) -> Self {
        let family = engine.family();
        let p = family.n_params();
        let (scale, map_offset) = engine.sample_map().coordinate_affine(p);
        let mut offset = map_offset.clone();
        let l1 = matches!(prior, Some(Prior::L1 { .. }));
        if family.rescaling() == crate::family::Rescaling::Location && !l1 {
            offset[0] = family.initial_theta(&engine.summary())[0];
        }
        FitCoordinates {
            scale,
            map_offset,
            offset,
        }
    }

    pub fn to_psi(&self, theta: &[f64]) -> Vec<f64> {
        (0..theta.len())
            .map(|j| theta[j] * self.scale[j] + self.map_offset[j] - self.offset[j])
            .collect()
    }

    pub fn to_theta(&self, psi: &[f64]) -> Vec<f64> {
        (0..psi.len())
            .map(|j| (psi[j] + self.offset[j] - self.map_offset[j]) / self.scale[j])
            .collect()
    }

    /// The user's prior on theta as a prior on psi: N(0, S^2) on theta_j is N(b_j - o_j,
    /// (S a_j)^2) on psi_j.
    pub fn prior(&self, prior: Prior) -> PriorLayout {
        PriorLayout {
            prior,
            factors: self.scale.clone(),
            centers: self
                .map_offset
                .iter()
                .zip(&self.offset)
                .map(|(b, o)| b - o)
                .collect(),
        }
    }
}

/// Fits the engine's family to its data by MLE (no prior) or MAP.
///
/// The fit runs in the coordinates of [`FitCoordinates`], by Newton's method where the
/// family's Hessian is exact (L-BFGS otherwise, or Adam when asked). On an f32 engine it then
/// continues on the engine's f64 sums from where f32 stopped. It is `converged` only when the
/// optimality test holds at the estimate, evaluated from f64 sums.
pub fn fit(engine: &mut dyn Engine, options: &FitOptions) -> Result<FitResult> {
    let family = crate::family::rebuild(engine.family());
    let map = engine.sample_map();
    let p = family.n_params();
    let coordinates = FitCoordinates::new(engine, options.prior);
    let phi0 = match &options.initial {
        Some(t) if t.len() == p => coordinates.to_psi(t),
        Some(t) => {
            return Err(Error::Usage(format!(
                "starting point has {} values, {} needs {p}",
                t.len(),
                family.name(),
            )))
        }
        None => family
            .initial_theta(&engine.summary())
            .iter()
            .zip(&coordinates.offset)
            .map(|(t, o)| t - o)
            .collect(),
    };
    let held = options.held(p);
    let mut phi0 = phi0;
    if held.iter().any(|&h| h) {
        let mut theta0 = coordinates.to_theta(&phi0);
        for (j, v) in options.fixed.iter().enumerate() {
            if let Some(v) = v {
                theta0[j] = *v;
            }
        }
        phi0 = coordinates.to_psi(&theta0);
    }
    let offset = coordinates.offset.clone();
    let mut warnings = Vec::new();
    let raw_summary = map.unmap_summary(engine.summary());
    match family.degenerate(&raw_summary) {
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
    let prior = options.prior.map(|prior| coordinates.prior(prior));
    let l1 = prior.as_ref().and_then(PriorLayout::l1_weights);
    let newton_applies =
        family.exact_hessian() && p <= crate::inference::MAX_INFERENCE_PARAMS && l1.is_none();
    // Newton for a family with kinks (the Laplace) is Newton on its smooth coordinates with
    // the kinked ones bisected (see kinked_finish); L-BFGS where neither applies.
    let kinked = (0..p).any(|j| family.kinked(j));
    if held.iter().any(|&h| h) && !(newton_applies && options.optimizer == Optimizer::Newton) {
        return Err(Error::Usage(format!(
            "--fix holds parameters in Newton's method, which a {} fit{} does not use",
            family.name(),
            if options.optimizer == Optimizer::Newton {
                ""
            } else {
                " with this --optimizer"
            }
        )));
    }
    let optimizer = match options.optimizer {
        Optimizer::Newton if !(newton_applies || kinked && l1.is_none()) => Optimizer::Lbfgs,
        other => other,
    };
    let coarse = engine.unit_roundoff() > 1e-12;
    let settings = NewtonSettings {
        max_iter: options.max_iter,
        prior: prior.clone(),
        frozen: held.clone(),
    };
    let mut iterations = 0;
    let mut evaluations = 0;
    let mut problem = EngineProblem {
        engine: &mut *engine,
        offset: offset.clone(),
        exact: false,
        pin_invariant: prior.is_none(),
        held: held.clone(),
    };
    // The optimiser on the engine's own sums. Where those are f32 and f64 sums exist to
    // finish on, the f32 phase gets a bounded share of the iterations: where f32 cannot
    // resolve the NLL (a negative binomial of counts near 1e6, rows' terms of 1e7 cancelling
    // to 10) its steps wander in the noise, and they had spent all 500 iterations (232 s on
    // lavapipe) before the f64 finish could start.
    let f32_phase = if coarse && problem.engine.has_exact_sums() {
        NewtonSettings {
            max_iter: options.max_iter.min(F32_PHASE_ITERATIONS),
            ..settings.clone()
        }
    } else {
        settings.clone()
    };
    let (mut phi, mut stop) = match optimizer {
        Optimizer::Newton if newton_applies => {
            let run = newton::minimize(&mut problem, phi0, &f32_phase)?;
            iterations += run.iterations;
            evaluations += run.evaluations;
            (run.theta, stop_reason(run.stop))
        }
        Optimizer::Newton => {
            let run = kinked_finish(
                &mut problem,
                phi0,
                prior.as_ref(),
                &coordinates,
                options.max_iter,
            )?;
            iterations += run.iterations;
            evaluations += run.evaluations;
            (run.theta, run.reason)
        }
        _ => {
            let run = first_order(&mut problem, phi0, prior.as_ref(), options, optimizer)?;
            iterations += run.iterations;
            evaluations += run.evaluations;
            (run.theta, run.reason)
        }
    };
    // The f64 finish: Newton where it applies, else L-BFGS, on the f64 sums.
    let exact_available = problem.engine.exact_term_sums(&problem.at(&phi))?.is_some();
    problem.exact = exact_available;
    if prior.is_none() && !held.iter().any(|&h| h) {
        let (used, warning) = settle_boundary(&mut problem, &mut phi)?;
        evaluations += used;
        warnings.extend(warning);
    }
    let mut precision = if coarse {
        Precision::F32
    } else {
        Precision::F64
    };
    let mut check = optimality(&mut problem, &phi, prior.as_ref(), &coordinates)?;
    evaluations += check.evaluations;
    // Finish where the test fails: f32 stopped (continue on the f64 sums), or L-BFGS stopped
    // by its own rules short of the optimum (its gradient test was scaled at the start).
    let resumable = phi.iter().all(|v| v.is_finite()) && iterations < options.max_iter;
    let from_f32 = coarse && exact_available;
    let short = optimizer == Optimizer::Lbfgs && stop.optimiser_done() && !coarse;
    if !check.holds && resumable && (from_f32 || short) {
        if from_f32 {
            precision = Precision::F32ThenF64;
        }
        let budget = FitOptions {
            max_iter: options.max_iter - iterations,
            initial: None,
            ..options.clone()
        };
        if newton_applies {
            let settings = NewtonSettings {
                max_iter: budget.max_iter,
                ..settings.clone()
            };
            let run = newton::minimize(&mut problem, phi.clone(), &settings)?;
            iterations += run.iterations;
            evaluations += run.evaluations;
            (phi, stop) = (run.theta, stop_reason(run.stop));
        } else if kinked && l1.is_none() {
            let run = kinked_finish(
                &mut problem,
                phi.clone(),
                prior.as_ref(),
                &coordinates,
                budget.max_iter,
            )?;
            iterations += run.iterations;
            evaluations += run.evaluations;
            (phi, stop) = (run.theta, run.reason);
        } else {
            // Under an L1 prior the objective is smooth within the orthant of the estimate:
            // where L-BFGS stopped short (the last decrease lies below the rounding of the
            // objective, which its line search compares), Newton steps within the orthant,
            // taken on the gradient alone, finish; L-BFGS restarts where they cannot.
            if l1.is_some() && family.exact_hessian() {
                let (at, steps, used) =
                    orthant_newton(&mut problem, phi.clone(), prior.as_ref(), &coordinates)?;
                iterations += steps;
                evaluations += used;
                phi = at;
                check = optimality(&mut problem, &phi, prior.as_ref(), &coordinates)?;
                evaluations += check.evaluations;
            }
            let mut scales = check.curvature_scales.clone();
            // L-BFGS's own test, max_j |g_j| s_j <= gtol n with s_j = 1 / sqrt(H_jj / n), is
            // |g_j| / sqrt(H_jj) <= gtol sqrt(n) per coordinate: looser than the optimality
            // test's decrement (in standard errors) for all but tiny n, so that a restart at
            // the default gtol stopped at once where the test still failed (a Gaussian under
            // an L1 prior, n = 5000: 5e-9 standard errors, converged false). The restarts ask
            // for the test's tolerance per coordinate, shared over the coordinates, and ten
            // times less at each further restart (correlated coordinates add up).
            let samples = problem.engine.count().max(1.0);
            let per_coordinate = 0.5 * DECREMENT_TOLERANCE / (samples * p as f64).sqrt();
            for restart in 0..LBFGS_RESTARTS {
                if check.holds {
                    break;
                }
                let lbfgs = FitOptions {
                    optimizer: Optimizer::Lbfgs,
                    gradient_scale: Some(scales),
                    max_iter: options.max_iter.saturating_sub(iterations).max(1),
                    gtol: budget
                        .gtol
                        .min(per_coordinate * 0.1f64.powi(restart as i32)),
                    ..budget.clone()
                };
                let run = lbfgs_run(&mut problem, phi.clone(), prior.as_ref(), &lbfgs)?;
                iterations += run.iterations;
                evaluations += run.evaluations;
                (phi, stop) = (run.theta, run.reason);
                check = optimality(&mut problem, &phi, prior.as_ref(), &coordinates)?;
                evaluations += check.evaluations;
                scales = check.curvature_scales.clone();
                if check.holds || !stop.optimiser_done() || iterations >= options.max_iter {
                    break;
                }
            }
        }
        check = optimality(&mut problem, &phi, prior.as_ref(), &coordinates)?;
        evaluations += check.evaluations;
        // The finish may have carried a coordinate towards a boundary the coarse phase had
        // not yet reached (the t's df past 1e5 only on the f64 sums): settle it there too.
        if !check.holds && prior.is_none() && !held.iter().any(|&h| h) && warnings.is_empty() {
            let (used, warning) = settle_boundary(&mut problem, &mut phi)?;
            evaluations += used;
            if warning.is_some() {
                warnings.extend(warning);
                check = optimality(&mut problem, &phi, prior.as_ref(), &coordinates)?;
                evaluations += check.evaluations;
            }
        }
    }
    let (converged, reason) = if check.holds {
        (true, StopReason::Optimal)
    } else if stop.optimiser_done() {
        (false, StopReason::NotOptimal)
    } else {
        (false, stop)
    };
    let mut theta = coordinates.to_theta(&phi);
    // Held coordinates exactly as given (the round trip through psi may round them).
    for (t, v) in theta.iter_mut().zip(&options.fixed) {
        if let Some(v) = v {
            *t = *v;
        }
    }
    let nll = map.nll_from_mapped(check.nll, problem.engine.count());
    Ok(FitResult {
        log_prior: options
            .prior
            .map(|pr| pr.log_density(&theta, &vec![true; p])),
        theta,
        nll,
        iterations,
        evaluations,
        converged,
        reason,
        grad_norm: check.grad_norm,
        warnings,
        decrement: check.decrement,
        precision,
        optimizer,
    })
}

/// Newton steps on NLL - log prior under an L1 prior, within the orthant of `phi`: the
/// coordinates at 0 stay there, the others move by the Newton step of the smooth objective
/// their orthant gives (the L1 prior's gradient is lambda sign(phi_j) there, its curvature
/// 0), as long as no coordinate would change sign. Steps are kept while the optimality
/// test's decrement falls, a test on the gradient alone (the objective's own decrease, of
/// the order of the decrement squared, lies far below its rounding here). Returns the
/// point, the steps and the evaluations.
fn orthant_newton(
    problem: &mut EngineProblem<'_>,
    mut phi: Vec<f64>,
    prior: Option<&PriorLayout>,
    coordinates: &FitCoordinates,
) -> Result<(Vec<f64>, usize, usize)> {
    let p = phi.len();
    let precisions = prior.map_or(vec![0.0; p], PriorLayout::l2_precisions);
    let l1 = prior
        .and_then(PriorLayout::l1_weights)
        .unwrap_or_else(|| vec![0.0; p]);
    let (mut steps, mut evaluations) = (0, 0);
    let mut check = optimality(problem, &phi, prior, coordinates)?;
    evaluations += check.evaluations;
    for _ in 0..8 {
        if check.holds {
            break;
        }
        let (_, mut g, h) = SecondOrder::derivatives(problem, &phi)?;
        evaluations += 1;
        if let Some(prior) = prior {
            let mut f = 0.0;
            prior.add_smooth(&phi, &mut f, &mut g);
        }
        let free: Vec<usize> = (0..p).filter(|&j| l1[j] == 0.0 || phi[j] != 0.0).collect();
        for &j in &free {
            g[j] += l1[j] * phi[j].signum();
        }
        let sub = crate::linalg::principal_submatrix(&h, p, &free, &precisions);
        let Some(factor) = crate::linalg::EquilibratedFactor::new(&sub, free.len()) else {
            break;
        };
        let gf: Vec<f64> = free.iter().map(|&j| g[j]).collect();
        let step = factor.solve(&gf);
        let mut next = phi.clone();
        for (a, &j) in free.iter().enumerate() {
            next[j] -= step[a];
        }
        let stays = free
            .iter()
            .all(|&j| l1[j] == 0.0 || next[j].signum() == phi[j].signum());
        if !stays || next.iter().any(|v| !v.is_finite()) {
            break;
        }
        let trial = optimality(problem, &next, prior, coordinates)?;
        evaluations += trial.evaluations;
        if !(trial.holds || trial.decrement < check.decrement) {
            break;
        }
        (phi, check) = (next, trial);
        steps += 1;
    }
    Ok((phi, steps, evaluations))
}

/// Block coordinate descent for families whose NLL has kinks (the Laplace's mu): each kinked
/// coordinate is bisected to where its derivative interval (from the left and the right, the
/// prior's gradient added) contains 0, to within the test's tolerance; the smooth coordinates
/// then take Newton steps on their block of the Hessian (exact there); until the optimality
/// test holds. The Laplace's mu does not depend on b without a prior, so one round usually
/// does.
fn kinked_finish(
    problem: &mut EngineProblem<'_>,
    mut phi: Vec<f64>,
    prior: Option<&PriorLayout>,
    coordinates: &FitCoordinates,
    max_iter: usize,
) -> Result<FirstOrderRun> {
    let family = crate::family::rebuild(problem.engine.family());
    let p = phi.len();
    let n = problem.engine.count();
    let precisions = prior.map_or(vec![0.0; p], PriorLayout::l2_precisions);
    let centers = prior.map_or(vec![0.0; p], |pr| pr.centers.clone());
    let mut evaluations = 0;
    let smooth: Vec<usize> = (0..p).filter(|&j| !family.kinked(j)).collect();
    let mut iterations = 0;
    for _round in 0..20 {
        iterations += 1;
        for j in (0..p).filter(|&j| family.kinked(j)) {
            // The derivative interval of coordinate j at psi_j = t (the others fixed).
            let interval = |t: f64, problem: &mut EngineProblem<'_>| -> Result<(f64, f64, f64)> {
                let mut at = phi.clone();
                at[j] = t;
                let sums = problem.sums(&at)?;
                let theta = problem.at(&at);
                let iv = family
                    .derivative_intervals(n, &sums, &theta)
                    .expect("a family with kinks");
                let w = precisions[j] * (t - centers[j]);
                let curvature = family.hessian_diagonal(n, &sums, &theta)[j] + precisions[j];
                Ok((iv[j].0 + w, iv[j].1 + w, curvature))
            };
            let (left, right, curvature) = interval(phi[j], problem)?;
            evaluations += 1;
            if left <= 0.0 && right >= 0.0 {
                continue;
            }
            let se = if curvature > 0.0 {
                1.0 / curvature.sqrt()
            } else {
                1.0
            };
            // Bracket the crossing: the derivative is nondecreasing in t (convexity).
            let direction = if right < 0.0 { 1.0 } else { -1.0 };
            let (mut lo, mut hi) = (phi[j], phi[j]);
            let mut step = se;
            for _ in 0..200 {
                let t = phi[j] + direction * step;
                let (l, r, _) = interval(t, problem)?;
                evaluations += 1;
                if direction > 0.0 {
                    hi = t;
                    if l >= 0.0 || (l <= 0.0 && r >= 0.0) {
                        break;
                    }
                    lo = t;
                } else {
                    lo = t;
                    if r <= 0.0 || (l <= 0.0 && r >= 0.0) {
                        break;
                    }
                    hi = t;
                }
                step *= 2.0;
            }
            // Bisect to the crossing. The NLL's kinks sit at samples (the Laplace's median):
            // where the crossing is a kink, the derivative interval contains 0 at one point
            // only, so the bracket is narrowed to adjacent floats and the endpoint at the kink
            // taken. Stopping at the test's resolution instead would leave the location a
            // fraction of an ulp of the data from the sample, and the scale, optimal for that
            // point, wrong by the ratio of the data's quantum to the scale (1e8 + Laplace(0,
            // 1e-6) quantised at 1.5e-8: b off by 1e-4). The bracket is halved in the floats'
            // order (their bit patterns), so adjacent floats are reached in at most 64 steps
            // wherever the crossing lies, near zero too (halving the values would walk down
            // through the subnormals, over a thousand passes over the data).
            let mut best = None;
            for _ in 0..70 {
                let mid = float_between(lo, hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                let (l, r, _) = interval(mid, problem)?;
                evaluations += 1;
                if l <= 0.0 && r >= 0.0 {
                    best = Some(mid);
                    break;
                }
                if r < 0.0 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let best = match best {
                Some(t) => t,
                None => {
                    let mut best = 0.5 * (lo + hi);
                    for t in [lo, hi] {
                        let (l, r, _) = interval(t, problem)?;
                        evaluations += 1;
                        if l <= 0.0 && r >= 0.0 {
                            best = t;
                            break;
                        }
                    }
                    best
                }
            };
            phi[j] = best;
        }
        // Newton on the smooth block.
        for _ in 0..50 {
            let (_, mut g, h) = SecondOrder::derivatives(problem, &phi)?;
            evaluations += 1;
            if let Some(prior) = prior {
                let mut f = 0.0;
                prior.add_smooth(&phi, &mut f, &mut g);
            }
            let m = smooth.len();
            if m == 0 {
                break;
            }
            let sub = crate::linalg::principal_submatrix(&h, p, &smooth, &precisions);
            let gs: Vec<f64> = smooth.iter().map(|&i| g[i]).collect();
            let Some(factor) = crate::linalg::EquilibratedFactor::new(&sub, m) else {
                break;
            };
            let step = factor.solve(&gs);
            let decrement = crate::linalg::decrement_of(dot(&step, &gs));
            for (a, &i) in smooth.iter().enumerate() {
                phi[i] -= step[a];
            }
            if decrement <= 0.01 * DECREMENT_TOLERANCE {
                break;
            }
        }
        let check = optimality(problem, &phi, prior, coordinates)?;
        evaluations += check.evaluations;
        if check.holds || iterations >= max_iter {
            return Ok(FirstOrderRun {
                reason: if check.holds {
                    StopReason::Optimal
                } else {
                    StopReason::MaxIterations
                },
                theta: phi,
                iterations,
                evaluations,
            });
        }
    }
    Ok(FirstOrderRun {
        theta: phi,
        reason: StopReason::NotOptimal,
        iterations,
        evaluations,
    })
}

/// Moves coordinates whose MLE is infinite (see [`crate::family::Family::boundary_point`])
/// far enough out, where that does not raise the NLL; returns the evaluations made and the
/// family's [`crate::family::Family::boundary_warning`].
fn settle_boundary(
    problem: &mut EngineProblem<'_>,
    phi: &mut Vec<f64>,
) -> Result<(usize, Option<String>)> {
    let sums = problem.sums(phi)?;
    let theta = problem.at(phi);
    let family = crate::family::rebuild(problem.engine.family());
    let n = problem.engine.count();
    let Some(moved) = family.boundary_point(n, &sums, &theta) else {
        return Ok((1, None));
    };
    let warning = family.boundary_warning(n, &sums);
    let candidate: Vec<f64> = moved
        .iter()
        .zip(&problem.offset)
        .map(|(t, o)| t - o)
        .collect();
    let before = family.finish(n, &sums, &theta).0 + problem.engine.constant();
    let (after, _) = problem.nll_and_grad(&candidate)?;
    if after <= before + 64.0 * f64::EPSILON * before.abs().max(1.0) {
        *phi = candidate;
    }
    Ok((2, warning))
}

fn stop_reason(stop: newton::NewtonStop) -> StopReason {
    match stop {
        newton::NewtonStop::Decrement => StopReason::Optimal,
        newton::NewtonStop::MaxIterations => StopReason::MaxIterations,
        newton::NewtonStop::NoiseFloor => StopReason::NoiseFloor,
        newton::NewtonStop::Singular => StopReason::Singular,
        newton::NewtonStop::NonFinite => StopReason::NonFinite,
    }
}

/// What a first-order run (L-BFGS, Adam) of a family fit returns.
struct FirstOrderRun {
    theta: Vec<f64>,
    reason: StopReason,
    iterations: usize,
    evaluations: usize,
}

/// L-BFGS or Adam from phi0, the gradient test scaled by the curvature at the start.
fn first_order(
    problem: &mut EngineProblem<'_>,
    phi0: Vec<f64>,
    prior: Option<&PriorLayout>,
    options: &FitOptions,
    optimizer: Optimizer,
) -> Result<FirstOrderRun> {
    let gradient_scale = match &options.gradient_scale {
        Some(scale) => Some(scale.clone()),
        None => Some(curvature_scales(problem, &phi0)?),
    };
    let options = FitOptions {
        optimizer,
        gradient_scale,
        ..options.clone()
    };
    lbfgs_run(problem, phi0, prior, &options)
}

fn lbfgs_run(
    problem: &mut EngineProblem<'_>,
    phi0: Vec<f64>,
    prior: Option<&PriorLayout>,
    options: &FitOptions,
) -> Result<FirstOrderRun> {
    let result = minimize(problem, phi0, prior.cloned(), options)?;
    Ok(FirstOrderRun {
        theta: result.theta,
        reason: result.reason,
        iterations: result.iterations,
        evaluations: result.evaluations,
    })
}

/// 1 / sqrt(H_jj / n) for each coordinate of the family's Hessian at phi (1 where that
/// curvature is not positive and finite).
fn curvature_scales(problem: &mut EngineProblem<'_>, phi: &[f64]) -> Result<Vec<f64>> {
    let sums = problem.sums(phi)?;
    let theta = problem.at(phi);
    let n = problem.engine.count().max(f64::MIN_POSITIVE);
    let diagonal = problem.engine.family().hessian_diagonal(n, &sums, &theta);
    Ok(diagonal
        .iter()
        .map(|&h| {
            let per_sample = h / n;
            if per_sample > 0.0 && per_sample.is_finite() {
                1.0 / per_sample.sqrt()
            } else {
                1.0
            }
        })
        .collect())
}

/// The optimality test at a family fit's estimate.
struct Optimality {
    holds: bool,
    /// The Newton decrement of the smooth free coordinates (standard errors), or the largest
    /// curvature-scaled gradient component where the Hessian is not formed.
    decrement: f64,
    nll: f64,
    grad_norm: f64,
    /// 1 / sqrt(H_jj / n) at the estimate, for an L-BFGS restart.
    curvature_scales: Vec<f64>,
    evaluations: usize,
}

/// Evaluates the optimality test at phi: coordinates where the NLL has a kink (the Laplace's
/// mu) must hold an optimum within DECREMENT_TOLERANCE standard errors (the derivative from
/// the left below phi is <= 0 <= the one from the right above it); coordinates an L1 prior
/// holds at exactly 0 must have |g_j| <= lambda_j; the other coordinates' Newton decrement
/// must be at most DECREMENT_TOLERANCE, plus what the f64 representation of the estimate
/// itself allows (an estimate near 1e8 with a standard error of 1e-3 is resolved by f64 only
/// to about 1e-5 of it).
fn optimality(
    problem: &mut EngineProblem<'_>,
    phi: &[f64],
    prior: Option<&PriorLayout>,
    coordinates: &FitCoordinates,
) -> Result<Optimality> {
    let p = phi.len();
    let family = crate::family::rebuild(problem.engine.family());
    let n = problem.engine.count();
    let mut evaluations = 1;
    let sums = problem.sums(phi)?;
    let theta = problem.at(phi);
    let (nll, mut g) = family.finish(n, &sums, &theta);
    let nll = nll + problem.engine.constant();
    if let Some(prior) = prior {
        let mut f = 0.0;
        prior.add_smooth(phi, &mut f, &mut g);
    }
    let precisions = prior.map_or(vec![0.0; p], PriorLayout::l2_precisions);
    let l1 = prior.and_then(PriorLayout::l1_weights);
    let dense = p <= crate::inference::MAX_INFERENCE_PARAMS;
    let diagonal: Vec<f64> = family
        .hessian_diagonal(n, &sums, &theta)
        .iter()
        .zip(&precisions)
        .map(|(h, w)| h + w)
        .collect();
    let curvature_scales = diagonal
        .iter()
        .map(|&h| {
            if h > 0.0 && h.is_finite() {
                (n.max(1.0) / h).sqrt()
            } else {
                1.0
            }
        })
        .collect();
    // The representation allowance per coordinate: 2 ulps of the estimate (and of the offset
    // it is evaluated at), the resolution of the f64 number the estimate is.
    let theta_here = coordinates.to_theta(phi);
    let allowance: Vec<f64> = (0..p)
        .map(|j| {
            let ulp = |v: f64| v.abs().max(f64::MIN_POSITIVE) * f64::EPSILON;
            let a = coordinates.scale[j];
            2.0 * ulp(theta_here[j]) * a
                + 2.0 * ulp(coordinates.offset[j] - coordinates.map_offset[j])
        })
        .collect();
    let mut holds = g.iter().all(|v| v.is_finite()) && nll.is_finite();
    let mut free: Vec<usize> = Vec::new();
    // Coordinates on the boundary (a class never observed, placed far out): only without a
    // prior, which otherwise gives them a finite optimum.
    let mut held = if prior.is_none() {
        family.on_boundary(n, &sums, &theta)
    } else {
        vec![false; p]
    };
    // Those --fix holds.
    for (h, &fixed) in held.iter_mut().zip(&problem.held) {
        *h |= fixed;
    }
    let mut kink_violation = 0.0f64;
    let intervals = family.derivative_intervals(n, &sums, &theta);
    for j in 0..p {
        let lambda = l1.as_ref().map_or(0.0, |w| w[j]);
        if intervals.is_some() && family.kinked(j) {
            // An optimum of coordinate j within the tolerance's standard errors of phi_j.
            let se = if diagonal[j] > 0.0 {
                1.0 / diagonal[j].sqrt()
            } else {
                0.0
            };
            let eps = DECREMENT_TOLERANCE * se + allowance[j];
            let side = |delta: f64, problem: &mut EngineProblem<'_>| -> Result<(f64, f64)> {
                let mut at = phi.to_vec();
                at[j] += delta;
                let sums = problem.sums(&at)?;
                let th = problem.at(&at);
                let iv = family
                    .derivative_intervals(n, &sums, &th)
                    .expect("a family with kinks");
                let w = precisions[j] * (at[j] - prior.map_or(0.0, |p| p.centers[j]));
                Ok((iv[j].0 + w, iv[j].1 + w))
            };
            let (left, _) = side(-eps, problem)?;
            let (_, right) = side(eps, problem)?;
            evaluations += 2;
            let ok = left - lambda <= 0.0 && right + lambda >= 0.0;
            if !ok {
                holds = false;
                kink_violation = kink_violation.max(left.max(-right) * se);
            }
        } else if lambda > 0.0 && phi[j] == 0.0 {
            if g[j].abs() > lambda {
                holds = false;
                let se = if diagonal[j] > 0.0 {
                    1.0 / diagonal[j].sqrt()
                } else {
                    1.0
                };
                kink_violation = kink_violation.max((g[j].abs() - lambda) * se);
            }
        } else if held[j] {
            // On the boundary (see Family::on_boundary): held where it is.
        } else {
            if lambda > 0.0 {
                g[j] += lambda * phi[j].signum();
            }
            free.push(j);
        }
    }
    let decrement = if free.is_empty() {
        0.0
    } else if dense {
        let mut h = family.hessian(n, &sums, &theta);
        // The invariant direction stays (nearly) one where the coordinates held are on the
        // boundary, whose probabilities are within rounding of 0.
        let held_count = held.iter().filter(|&&h| h).count();
        if let (true, true, Some(v)) = (
            prior.is_none(),
            free.len() + held_count == p,
            family.invariant_direction(),
        ) {
            pin_direction(&mut h, &v, n);
        }
        let m = free.len();
        let sub = crate::linalg::principal_submatrix(&h, p, &free, &precisions);
        let gf: Vec<f64> = free.iter().map(|&i| g[i]).collect();
        match crate::linalg::EquilibratedFactor::new(&sub, m) {
            Some(factor) if factor.ridge <= 1e-10 => {
                // The Newton step, less what each coordinate's representation cannot resolve,
                // measured in the metric of H.
                let step: Vec<f64> = factor
                    .solve(&gf)
                    .iter()
                    .zip(&free)
                    .map(|(s, &i)| s.signum() * (s.abs() - allowance[i]).max(0.0))
                    .collect();
                let hs: Vec<f64> = (0..m)
                    .map(|a| (0..m).map(|b| sub[a * m + b] * step[b]).sum())
                    .collect();
                crate::linalg::decrement_of(dot(&step, &hs))
            }
            _ => f64::INFINITY,
        }
    } else {
        free.iter()
            .map(|&j| {
                if diagonal[j] > 0.0 {
                    let step = g[j].abs() / diagonal[j];
                    (step - allowance[j]).max(0.0) * diagonal[j].sqrt()
                } else {
                    f64::INFINITY
                }
            })
            .fold(0.0, f64::max)
    };
    holds &= decrement <= DECREMENT_TOLERANCE;
    let pg = pseudo_gradient(phi, &g, None);
    Ok(Optimality {
        holds,
        decrement: decrement.max(kink_violation),
        nll,
        grad_norm: max_abs(&pg),
        curvature_scales,
        evaluations,
    })
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

/// Minimises NLL - log prior over `theta` by L-BFGS (orthant-wise for an L1 prior) or Adam, as
/// `options.optimizer` says (Newton is not a first-order method: it runs L-BFGS here). The
/// prior, if any, is `prior` (its layout over the coordinates; `options.prior` is not read);
/// the result's `log_prior` is in these coordinates.
pub fn minimize(
    problem: &mut dyn Differentiable,
    theta0: Vec<f64>,
    prior: Option<PriorLayout>,
    options: &FitOptions,
) -> Result<FitResult> {
    let l1 = prior.as_ref().and_then(PriorLayout::l1_weights);
    let log_prior = |theta: &[f64]| prior.as_ref().map(|p| p.log_density(theta));
    let mut objective = Objective {
        problem,
        prior: prior.clone(),
        evaluations: 0,
    };
    let run = match options.optimizer {
        Optimizer::Lbfgs | Optimizer::Newton => {
            lbfgs::minimize(&mut objective, theta0, l1.as_deref(), options)?
        }
        Optimizer::Adam => adam::minimize(&mut objective, theta0, l1.as_deref(), options)?,
    };
    let precision = if objective.problem.unit_roundoff() < 1e-12 {
        Precision::F64
    } else {
        Precision::F32
    };
    Ok(FitResult {
        nll: run.point.nll,
        log_prior: log_prior(&run.point.theta),
        theta: run.point.theta,
        iterations: run.iterations,
        evaluations: objective.evaluations,
        converged: run.reason.optimiser_done(),
        reason: run.reason,
        grad_norm: run.grad_norm,
        warnings: Vec::new(),
        decrement: f64::NAN,
        precision,
        optimizer: options.optimizer,
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

/// A float halfway between `lo < hi` in the floats' order: the midpoint of their positions
/// in the sequence of all f64s (the ordered bit patterns), so that repeated halving reaches
/// adjacent floats in at most 64 steps.
fn float_between(lo: f64, hi: f64) -> f64 {
    // The position of x among the floats: the bits for x >= 0, their negation for x < 0
    // (-0 and +0 share position 0).
    let position = |x: f64| -> i128 {
        let bits = x.to_bits();
        let magnitude = (bits & !(1u64 << 63)) as i128;
        if bits >> 63 == 1 {
            -magnitude
        } else {
            magnitude
        }
    };
    let float_at = |k: i128| -> f64 {
        if k >= 0 {
            f64::from_bits(k as u64)
        } else {
            f64::from_bits((-k) as u64 | (1u64 << 63))
        }
    };
    let (a, b) = (position(lo), position(hi));
    float_at(a + (b - a) / 2)
}

#[cfg(test)]
mod tests {
    use super::float_between;

    #[test]
    fn halving_in_the_floats_order_reaches_adjacent_floats_in_64_steps() {
        for (lo, hi, target) in [
            (0.0, 1.0, 1e-300),
            (-1.0, 1.0, -5e-324),
            (-1e300, 1e300, 1e8 + 0.5),
            (1e8, 1e8 + 1.0, 1e8 + 3.0 * 2f64.powi(-26)),
            (-3.0, -2.0, -2.5),
        ] {
            let (mut lo, mut hi): (f64, f64) = (lo, hi);
            let mut steps = 0;
            loop {
                let mid = float_between(lo, hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                steps += 1;
                if mid < target {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            assert!(steps <= 64, "{steps} steps");
            // Adjacent floats around the target.
            assert!(lo < target && target <= hi, "{lo} {target} {hi}");
            assert_eq!(lo.next_up(), hi, "{lo} {hi}");
        }
        assert_eq!(float_between(-1.0, 1.0), 0.0);
    }
}
