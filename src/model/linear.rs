//! Linear models fitted to their optimum, wherever their rows are.
//!
//! Every fit runs on the conditioned rows (see [`super::Conditioning`]). Least squares (a
//! Gaussian head without a prior) is solved exactly: a QR factorisation of the conditioned
//! design and target, accumulated by Givens rotations in f64 as the rows are read (digits lost
//! in proportion to the design's condition number, not its square), with sigma in closed form.
//! A Laplace head without a prior is solved exactly by [`super::lad`]. Other models take
//! Newton's method (up to [`crate::gpu::mlp::MAX_NEWTON_PARAMS`] parameters) or L-BFGS on the
//! engine the rows are on; where that engine sums in f32 (the GPU), the fit continues with
//! Newton (or L-BFGS) on f64 sums of the same rows on the CPU. Every result is checked: the
//! Newton decrement (in standard errors) from f64 sums, the subgradient test for an L1 prior.

use super::conditioning::Conditioning;
use super::network::Network;
use super::stream::{ChunkEngine, StreamedProblem};
use super::train::{FullBatch, LossPoint, ModelOptimizer, TrainOptions, TrainReport};
use crate::data::{Table, TableStream};
use crate::error::{Error, Result};
use crate::family::FamilyName;
use crate::fit::{
    self, newton, Derivatives, Differentiable, NewtonSettings, Precision, SecondOrder,
    DECREMENT_TOLERANCE,
};
use crate::gpu::mlp::{GpuNetwork, MAX_NEWTON_PARAMS};
use crate::linalg::QrRows;
use rayon::prelude::*;

/// What a [`RowPass`] hands each block of rows to: (first row, features row-major, targets).
pub type BlockFn<'f> = dyn FnMut(usize, &[f64], &[f64]) -> Result<()> + 'f;

/// A pass over a table's rows, block by block, in order: the raw rows (features row-major and
/// targets), which the consumer conditions.
pub trait RowPass {
    /// Rows in the table.
    fn rows(&self) -> usize;
    /// Calls `f(first row, x, y)` for consecutive blocks covering every row.
    fn each_block(&mut self, f: &mut BlockFn<'_>) -> Result<()>;
}

/// A table in memory, as one block.
pub struct MemoryPass<'a>(pub &'a Table);

impl RowPass for MemoryPass<'_> {
    fn rows(&self) -> usize {
        self.0.n
    }
    fn each_block(&mut self, f: &mut BlockFn<'_>) -> Result<()> {
        let y = self
            .0
            .y
            .as_deref()
            .ok_or_else(|| Error::InvalidData("the table has no target".into()))?;
        f(0, &self.0.x, y)
    }
}

/// A table read chunk by chunk.
pub struct StreamPass<'a> {
    pub table: &'a mut TableStream,
    pub rows: usize,
}

impl RowPass for StreamPass<'_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn each_block(&mut self, f: &mut BlockFn<'_>) -> Result<()> {
        self.table.for_each_chunk(|chunk| {
            f(chunk.first, &chunk.x, &chunk.y)?;
            Ok(true)
        })?;
        Ok(())
    }
}

/// A problem with both first and second derivatives.
pub trait ModelProblem: Differentiable + SecondOrder {}
impl<T: Differentiable + SecondOrder> ModelProblem for T {}

/// The full-batch problem of a table resident on the GPU (f32 sums).
pub struct GpuProblem<'a> {
    pub gpu: &'a GpuNetwork,
    pub frozen: &'a [bool],
}

impl Differentiable for GpuProblem<'_> {
    fn n(&self) -> usize {
        self.gpu.rows()
    }
    fn unit_roundoff(&self) -> f64 {
        f32::EPSILON as f64 / 2.0
    }
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        let (nll, mut grad) = self.gpu.nll_and_grad(theta)?;
        super::zero_frozen(&mut grad, self.frozen);
        Ok((nll, grad))
    }
}

impl SecondOrder for GpuProblem<'_> {
    fn n(&self) -> usize {
        self.gpu.rows()
    }
    fn unit_roundoff(&self) -> f64 {
        f32::EPSILON as f64 / 2.0
    }
    fn derivatives(&mut self, theta: &[f64]) -> Result<Derivatives> {
        self.gpu.derivatives(theta)
    }
}

/// The full-batch problem of a table resident on the GPU, summed in f64 there (adapters with
/// SHADER_F64, see [`crate::gpu::linear64`]): the f64 passes without the CPU.
pub struct GpuExactProblem<'a> {
    pub sums: &'a crate::gpu::linear64::LinearF64,
    pub frozen: &'a [bool],
    pub n: usize,
}

impl Differentiable for GpuExactProblem<'_> {
    fn n(&self) -> usize {
        self.n
    }
    fn unit_roundoff(&self) -> f64 {
        f64::EPSILON / 2.0
    }
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        let (nll, mut grad, _) = self.sums.sums(theta, false)?;
        super::zero_frozen(&mut grad, self.frozen);
        Ok((nll, grad))
    }
}

impl SecondOrder for GpuExactProblem<'_> {
    fn n(&self) -> usize {
        self.n
    }
    fn unit_roundoff(&self) -> f64 {
        f64::EPSILON / 2.0
    }
    fn derivatives(&mut self, theta: &[f64]) -> Result<Derivatives> {
        let (nll, grad, hessian) = self.sums.sums(theta, true)?;
        let hessian = hessian.ok_or_else(|| {
            crate::Error::gpu(
                "likely linear f64 sums",
                "no Hessian where one was asked for",
            )
        })?;
        Ok((nll, grad, hessian))
    }
    fn nll_and_gradient(&mut self, theta: &[f64]) -> Result<Option<(f64, Vec<f64>)>> {
        let (nll, grad, _) = self.sums.sums(theta, false)?;
        Ok(Some((nll, grad)))
    }
}

/// Where a model fit's rows are.
pub enum Placement<'a> {
    /// In host memory; the CPU engine.
    Memory(&'a Table),
    /// In GPU buffers (conditioned at upload, in f32, and in f64 for the f64 passes where
    /// the adapter has SHADER_F64), and in host memory (the f64 passes elsewhere).
    Resident(&'a GpuNetwork, &'a Table),
    /// Read chunk by chunk; each chunk worked on by the CPU engine or loaded into the GPU
    /// network; the f64 passes read the table on the CPU.
    Chunked(&'a mut TableStream, Option<&'a GpuNetwork>, usize),
}

impl Placement<'_> {
    pub fn rows(&self) -> usize {
        match self {
            Placement::Memory(t) | Placement::Resident(_, t) => t.n,
            Placement::Chunked(_, _, n) => *n,
        }
    }

    /// Whether the engine the rows are on sums in f32.
    pub fn on_gpu(&self) -> bool {
        matches!(
            self,
            Placement::Resident(..) | Placement::Chunked(_, Some(_), _)
        )
    }

    /// Runs `f` on the problem of the engine the rows are on.
    fn with_primary<R>(
        &mut self,
        net: &Network,
        cond: &Conditioning,
        frozen: &[bool],
        f: impl FnOnce(&mut dyn ModelProblem) -> R,
    ) -> R {
        match self {
            Placement::Resident(gpu, _) => f(&mut GpuProblem { gpu, frozen }),
            Placement::Chunked(table, Some(gpu), n) => f(&mut StreamedProblem {
                net,
                table,
                engine: ChunkEngine::Gpu(gpu),
                frozen,
                n: *n,
                cond: Some(cond),
            }),
            _ => self.with_exact(net, cond, frozen, f),
        }
    }

    /// Runs `f` on the problem of the same rows summed in f64: on the GPU where it holds them
    /// and sums in f64 ([`GpuNetwork::exact_sums`]), on the CPU otherwise.
    fn with_exact<R>(
        &mut self,
        net: &Network,
        cond: &Conditioning,
        frozen: &[bool],
        f: impl FnOnce(&mut dyn ModelProblem) -> R,
    ) -> R {
        if let Placement::Resident(gpu, table) = self {
            let y = table.y.as_deref().unwrap_or(&[]);
            if let Some(sums) = gpu.exact_sums(&table.x, y, Some(cond)) {
                return f(&mut GpuExactProblem {
                    sums: &sums,
                    frozen,
                    n: table.n,
                });
            }
        }
        match self {
            Placement::Memory(table) | Placement::Resident(_, table) => {
                let y = table.y.as_deref().unwrap_or(&[]);
                f(&mut FullBatch {
                    net,
                    x: &table.x,
                    y,
                    rows: (0..table.n).collect(),
                    frozen,
                    cond: Some(cond),
                })
            }
            Placement::Chunked(table, _, n) => f(&mut StreamedProblem {
                net,
                table,
                engine: ChunkEngine::Cpu,
                frozen,
                n: *n,
                cond: Some(cond),
            }),
        }
    }

    /// The rows for a pass of the CPU engine.
    pub fn pass(&mut self) -> Box<dyn RowPass + '_> {
        match self {
            Placement::Memory(table) | Placement::Resident(_, table) => Box::new(MemoryPass(table)),
            Placement::Chunked(table, _, n) => Box::new(StreamPass { table, rows: *n }),
        }
    }
}

/// A fitted linear model, in the conditioned coordinates.
#[derive(Clone, Debug)]
pub struct LinearFit {
    pub params: Vec<f64>,
    /// The parameters in the data's own units where the fit refined them there (least
    /// squares); `None`: map `params` back with the conditioning.
    pub original: Option<Vec<f64>>,
    pub report: TrainReport,
    pub precision: Precision,
    /// How the optimum was found: `qr` (least squares), `lad-simplex`, `newton`, `lbfgs`, or
    /// the minibatch optimiser's name.
    pub method: &'static str,
    /// Whether the engine the rows are on did the work (false where the exact solve or the
    /// whole fit ran on the CPU although the rows were on a GPU).
    pub ran_on_placement: bool,
    /// The optimality test's measure at `params`: the Newton decrement in standard errors.
    pub decrement: f64,
    /// The NLL's Hessian at `params` (conditioned coordinates, f64 sums), where the fit formed
    /// it.
    pub hessian: Option<Vec<f64>>,
    pub warnings: Vec<String>,
}

/// The warning of a least-squares fit through every row exactly.
pub const EXACT_FIT: &str = "the data lie exactly on the fit: sigma's MLE is 0 (the likelihood is unbounded), so there are no standard errors; the coefficients are the exact least-squares solution";

/// Which method a linear model takes.
fn method_for(net: &Network, options: &TrainOptions) -> &'static str {
    let laplace = net.head.family == FamilyName::Laplace;
    match options.optimizer {
        ModelOptimizer::Newton | ModelOptimizer::Lbfgs if laplace && options.prior.is_none() => {
            // A smooth method stops at a kink short of the LAD optimum: solve it exactly.
            "lad-simplex"
        }
        // The exact least-squares solve estimates every coefficient: one held (an offset's)
        // goes to Newton instead.
        ModelOptimizer::Newton if options.prior.is_none() => match net.head.family {
            FamilyName::Gaussian if net.head.has_native_link() && !holds_a_weight(net, options) => {
                "qr"
            }
            _ => "newton",
        },
        ModelOptimizer::Newton if laplace => "lbfgs",
        ModelOptimizer::Newton => "newton",
        ModelOptimizer::Lbfgs => "lbfgs",
        ModelOptimizer::Sgd => "sgd",
        ModelOptimizer::Adam => "adam",
        ModelOptimizer::Adamw => "adamw",
    }
}

/// Whether a weight (not an intercept) of the linear model is held where it starts.
fn holds_a_weight(net: &Network, options: &TrainOptions) -> bool {
    let layer = net.layers()[0];
    options.frozen[layer.weights..layer.bias].iter().any(|&f| f)
}

/// The default optimiser of a linear model: Newton up to [`MAX_NEWTON_PARAMS`] parameters
/// (the exact solves for Gaussian and Laplace heads without a prior), L-BFGS beyond or with
/// an L1 prior (or a Laplace head with a prior, whose NLL has no Hessian).
pub fn default_optimizer(net: &Network, prior: Option<fit::Prior>) -> ModelOptimizer {
    let exact = prior.is_none()
        && net.head.has_native_link()
        && matches!(net.head.family, FamilyName::Gaussian | FamilyName::Laplace);
    if exact || super::newton::newton_refusal(net, prior).is_none() {
        ModelOptimizer::Newton
    } else {
        ModelOptimizer::Lbfgs
    }
}

/// Fits a linear model from `params` (conditioned coordinates) to its optimum; `warm` is a
/// subsample of the raw rows (features, targets) for Newton's warm start on large tables.
pub fn fit_linear(
    net: &Network,
    placement: &mut Placement<'_>,
    cond: &Conditioning,
    params: Vec<f64>,
    warm: Option<(&[f64], &[f64])>,
    options: &TrainOptions,
    progress: &mut dyn FnMut(&LossPoint),
) -> Result<LinearFit> {
    if !net.hidden.is_empty() {
        return Err(Error::Usage("fit_linear fits linear models".into()));
    }
    let method = method_for(net, options);
    let n = placement.rows();
    let mut fit = match method {
        "qr" => least_squares(net, placement, cond, options)?,
        "lad-simplex" => {
            let on_gpu = placement.on_gpu();
            let lad = {
                let mut pass = placement.pass();
                super::lad::fit(net, pass.as_mut(), cond, options)?
            };
            let mut report = lad.report;
            if let Some(p) = report.history.last() {
                progress(p);
            }
            report.log_prior = None;
            // The subgradient test has no decrement: 0 where it holds, unmeasured if not.
            let decrement = if report.converged { 0.0 } else { f64::NAN };
            LinearFit {
                params: lad.params,
                original: None,
                report,
                precision: Precision::F64,
                method,
                ran_on_placement: !on_gpu,
                decrement,
                hessian: None,
                warnings: lad.warnings,
            }
        }
        "newton" | "lbfgs" => {
            let mut params = params;
            if method == "newton" && n >= super::newton::WARM_START_ROWS {
                if let Some((xs, ys)) = warm {
                    super::newton::warm_start_from(
                        net,
                        &mut params,
                        xs,
                        ys,
                        Some(cond),
                        n,
                        options,
                    );
                }
            }
            iterate(net, placement, cond, params, options, method)?
        }
        _ => {
            return Err(Error::Usage(format!(
                "fit_linear runs full-batch optimisers; {method} is a minibatch one"
            )))
        }
    };
    if let Some(p) = fit.report.history.last() {
        progress(p);
    }
    fit.report.log_prior = options
        .prior_layout(net)
        .map(|layout| layout.log_density(&fit.params));
    Ok(fit)
}

/// Newton or L-BFGS on the rows' engine, then on f64 sums where that engine is f32, then the
/// optimality test from f64 sums.
fn iterate(
    net: &Network,
    placement: &mut Placement<'_>,
    cond: &Conditioning,
    params: Vec<f64>,
    options: &TrainOptions,
    method: &'static str,
) -> Result<LinearFit> {
    let p = net.param_count();
    let n = placement.rows();
    let frozen = options.frozen.clone();
    let layout = options.prior_layout(net);
    let l1 = layout.as_ref().and_then(fit::PriorLayout::l1_weights);
    let newton_ok = super::newton::newton_refusal(net, options.prior).is_none();
    if method == "newton" {
        if let Some(why) = super::newton::newton_refusal(net, options.prior) {
            return Err(Error::Usage(why));
        }
    }
    let max_iter = options
        .max_iter
        .unwrap_or(if method == "newton" { 100 } else { 1000 });
    let settings = NewtonSettings {
        max_iter,
        prior: layout.clone(),
        frozen: frozen.clone(),
    };
    let run_newton = |problem: &mut dyn ModelProblem, start: Vec<f64>, max_iter: usize| {
        newton::minimize(
            problem,
            start,
            &NewtonSettings {
                max_iter,
                ..settings.clone()
            },
        )
    };
    let run_lbfgs = |problem: &mut dyn ModelProblem, start: Vec<f64>, max_iter: usize| {
        let fit_options = fit::FitOptions {
            optimizer: fit::Optimizer::Lbfgs,
            max_iter,
            ..fit::FitOptions::default()
        };
        fit::minimize(problem, start, layout.clone(), &fit_options)
    };
    // The rows' engine.
    let (mut params, mut iterations, mut stop) =
        placement.with_primary(net, cond, &frozen, |problem| -> Result<_> {
            Ok(if method == "newton" {
                let r = run_newton(problem, params, max_iter)?;
                (r.theta, r.iterations, Stop::Newton(r.stop))
            } else {
                let r = run_lbfgs(problem, params, max_iter)?;
                (r.theta, r.iterations, Stop::Lbfgs(r.reason))
            })
        })?;
    let mut precision = if placement.on_gpu() {
        Precision::F32
    } else {
        Precision::F64
    };
    // The test from f64 sums; where it fails after f32 passes, continue on f64 sums.
    let mut check = placement.with_exact(net, cond, &frozen, |problem| {
        optimality(problem, net, &params, layout.as_ref(), &frozen)
    })?;
    let remaining = max_iter.saturating_sub(iterations);
    if !check.holds && placement.on_gpu() && remaining > 0 && params.iter().all(|v| v.is_finite()) {
        precision = Precision::F32ThenF64;
        let (finished, more, finish_stop) =
            placement.with_exact(net, cond, &frozen, |problem| -> Result<_> {
                Ok(if newton_ok && l1.is_none() {
                    let r = run_newton(problem, params.clone(), remaining)?;
                    (r.theta, r.iterations, Stop::Newton(r.stop))
                } else {
                    let r = run_lbfgs(problem, params.clone(), remaining)?;
                    (r.theta, r.iterations, Stop::Lbfgs(r.reason))
                })
            })?;
        params = finished;
        iterations += more;
        stop = finish_stop;
        check = placement.with_exact(net, cond, &frozen, |problem| {
            optimality(problem, net, &params, layout.as_ref(), &frozen)
        })?;
    }
    // L-BFGS stopped by its own rules short of the optimum: finish with Newton steps on f64
    // sums where Newton applies, else restart it with its gradient test in units of each
    // coordinate's curvature at the point reached.
    let short = |stop: Stop| matches!(stop, Stop::Lbfgs(r) if r.optimiser_done());
    if !check.holds && method == "lbfgs" && short(stop) && newton_ok && l1.is_none() {
        let budget = max_iter.saturating_sub(iterations).max(1);
        let (next, more, next_stop) =
            placement.with_exact(net, cond, &frozen, |problem| -> Result<_> {
                let r = run_newton(problem, params.clone(), budget)?;
                Ok((r.theta, r.iterations, Stop::Newton(r.stop)))
            })?;
        params = next;
        iterations += more;
        stop = next_stop;
        check = placement.with_exact(net, cond, &frozen, |problem| {
            optimality(problem, net, &params, layout.as_ref(), &frozen)
        })?;
    }
    // An L1 prior: Newton on the active set OWL-QN found (where Newton applies to the rest:
    // a Laplace head has no Hessian anywhere, and no test can certify its L-BFGS result).
    let kinked_head = net.head.family == FamilyName::Laplace;
    if !check.holds
        && method == "lbfgs"
        && short(stop)
        && l1.is_some()
        && !kinked_head
        && p <= MAX_NEWTON_PARAMS
    {
        let lambdas = l1.clone().expect("an L1 prior");
        let budget = max_iter.saturating_sub(iterations).max(1);
        let (next, more) = placement.with_exact(net, cond, &frozen, |problem| -> Result<_> {
            let (t, it, _) =
                newton::minimize_l1(problem, params.clone(), &lambdas, &frozen, budget)?;
            Ok((t, it))
        })?;
        params = next;
        iterations += more;
        check = placement.with_exact(net, cond, &frozen, |problem| {
            optimality(problem, net, &params, layout.as_ref(), &frozen)
        })?;
    }
    let mut restarts = 0;
    while !check.holds
        && !kinked_head
        && method == "lbfgs"
        && short(stop)
        && restarts < 3
        && iterations < max_iter
    {
        restarts += 1;
        let scales: Option<Vec<f64>> = check.hessian.as_ref().map(|h| {
            (0..p)
                .map(|j| {
                    let c = h[j * p + j] / n.max(1) as f64;
                    if c > 0.0 && c.is_finite() {
                        1.0 / c.sqrt()
                    } else {
                        1.0
                    }
                })
                .collect()
        });
        let budget = max_iter - iterations;
        let (next, more, next_stop) =
            placement.with_exact(net, cond, &frozen, |problem| -> Result<_> {
                let fit_options = fit::FitOptions {
                    optimizer: fit::Optimizer::Lbfgs,
                    max_iter: budget,
                    gradient_scale: scales.clone(),
                    gtol: 1e-12,
                    ..fit::FitOptions::default()
                };
                let r = fit::minimize(problem, params.clone(), layout.clone(), &fit_options)?;
                Ok((r.theta, r.iterations, Stop::Lbfgs(r.reason)))
            })?;
        params = next;
        iterations += more;
        stop = next_stop;
        check = placement.with_exact(net, cond, &frozen, |problem| {
            optimality(problem, net, &params, layout.as_ref(), &frozen)
        })?;
    }
    let converged = check.holds;
    let reason = if net.head.family == FamilyName::Laplace {
        "the Laplace NLL has a kink at every zero residual: with a prior the fit is L-BFGS's, which the subgradient test cannot certify (without a prior the LAD solve is exact)".to_string()
    } else if converged {
        match stop {
            Stop::Newton(_) => "Newton decrement below tolerance (checked in f64)".to_string(),
            Stop::Lbfgs(_) => "optimality test holds (checked in f64)".to_string(),
        }
    } else {
        match stop {
            Stop::Newton(s) if s != newton::NewtonStop::Decrement => s.describe().to_string(),
            Stop::Lbfgs(r) if !r.optimiser_done() => r.describe().to_string(),
            _ => format!(
                "the optimiser stopped where the optimality test does not hold (decrement {:.3e} standard errors)",
                check.decrement
            ),
        }
    };
    let _ = p;
    Ok(LinearFit {
        report: TrainReport {
            steps: iterations,
            epochs: iterations,
            converged,
            reason,
            history: vec![LossPoint {
                epoch: iterations,
                step: iterations,
                train_mean_nll: check.nll / n.max(1) as f64,
                validation_mean_nll: None,
            }],
            log_prior: None,
        },
        params,
        original: None,
        precision,
        method,
        ran_on_placement: true,
        decrement: check.decrement,
        hessian: check.hessian,
        warnings: Vec::new(),
    })
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    Newton(newton::NewtonStop),
    Lbfgs(fit::StopReason),
}

/// The optimality test of a linear model at `params`, from the problem's sums.
pub struct Check {
    pub holds: bool,
    pub decrement: f64,
    pub nll: f64,
    /// The NLL's Hessian (without the prior), where formed.
    pub hessian: Option<Vec<f64>>,
}

/// The optimality test: coordinates an L1 prior holds at exactly 0 need |g_j| <= lambda_j;
/// the others' Newton decrement (the objective's Hessian, the prior's curvature included) must
/// be at most [`DECREMENT_TOLERANCE`]. Models of more than [`MAX_NEWTON_PARAMS`] parameters
/// are tested without a Hessian: each free coordinate's gradient in units of its curvature,
/// from the diagonal of H.
pub fn optimality(
    problem: &mut dyn ModelProblem,
    net: &Network,
    params: &[f64],
    prior: Option<&fit::PriorLayout>,
    frozen: &[bool],
) -> Result<Check> {
    let p = params.len();
    if net.head.family == FamilyName::Laplace {
        // The Laplace NLL has a kink at every zero residual: a point a smooth method reaches
        // has no Hessian and fails the subgradient test; only the LAD solve certifies one.
        let (nll, _) = Differentiable::nll_and_grad(problem, params)?;
        return Ok(Check {
            holds: false,
            decrement: f64::NAN,
            nll,
            hessian: None,
        });
    }
    let (nll, mut g, h) = if p <= MAX_NEWTON_PARAMS {
        let (f, g, h) = SecondOrder::derivatives(problem, params)?;
        (f, g, Some(h))
    } else {
        let (f, g) = Differentiable::nll_and_grad(problem, params)?;
        (f, g, None)
    };
    let precisions = prior.map_or(vec![0.0; p], fit::PriorLayout::l2_precisions);
    let l1 = prior.and_then(fit::PriorLayout::l1_weights);
    if let Some(prior) = prior {
        let mut f = 0.0;
        prior.add_smooth(params, &mut f, &mut g);
    }
    let mut holds = nll.is_finite() && g.iter().all(|v| v.is_finite());
    let mut free = Vec::new();
    let mut violation = 0.0f64;
    for j in 0..p {
        if frozen.get(j).copied().unwrap_or(false) {
            continue;
        }
        let lambda = l1.as_ref().map_or(0.0, |w| w[j]);
        if lambda > 0.0 && params[j] == 0.0 {
            if g[j].abs() > lambda {
                holds = false;
                let curvature = h.as_ref().map_or(1.0, |h| h[j * p + j] + precisions[j]);
                violation = violation.max((g[j].abs() - lambda) / curvature.max(1e-300).sqrt());
            }
            continue;
        }
        if lambda > 0.0 {
            g[j] += lambda * params[j].signum();
        }
        free.push(j);
    }
    let decrement = match &h {
        Some(h) => {
            let m = free.len();
            let sub = crate::linalg::principal_submatrix(h, p, &free, &precisions);
            let gf: Vec<f64> = free.iter().map(|&i| g[i]).collect();
            match crate::linalg::EquilibratedFactor::new(&sub, m) {
                Some(factor) if factor.ridge <= 1e-10 => {
                    crate::linalg::decrement_of(fit::dot(&factor.solve(&gf), &gf))
                }
                _ => f64::INFINITY,
            }
        }
        None => {
            // Without the Hessian: a pass for its diagonal would cost as much as the fit; the
            // gradient relative to the rows (coordinates are conditioned, so unit-free).
            free.iter()
                .map(|&j| g[j].abs() / (n_of(problem) as f64).sqrt())
                .fold(0.0, f64::max)
        }
    };
    holds &= decrement <= DECREMENT_TOLERANCE;
    Ok(Check {
        holds,
        decrement: decrement.max(violation),
        nll,
        hessian: h,
    })
}

fn n_of(problem: &dyn ModelProblem) -> usize {
    Differentiable::n(problem).max(1)
}

/// Least squares on the conditioned rows, exactly: the R factor of [X~' | y'] in one pass
/// (rows in blocks, each block's factor by Givens rotations, merged in the table's order),
/// beta' = R^-1 Q^T y'. Then iterative refinement in the original units, whose fixed point is
/// the exact least-squares solution of the data as stored: each residual y - x beta is formed
/// from the raw row in double-double (exact products and sums), and the correction solves
/// R^T R d' = X'^T r' with the same R (the corrected semi-normal equations). Mapping beta'
/// back to an intercept in the data's units cancels terms of the target's magnitude; the
/// refinement restores the digits that costs (Wampler1's intercept: 9 correct digits from the
/// solve, 15 after). sigma^2 = RSS / n from the refined residuals, and the optimality test
/// from an f64 pass.
fn least_squares(
    net: &Network,
    placement: &mut Placement<'_>,
    cond: &Conditioning,
    options: &TrainOptions,
) -> Result<LinearFit> {
    let d = net.inputs;
    let layer = net.layers()[0];
    let intercept = !options.frozen.get(layer.bias).copied().unwrap_or(false);
    let k = d + intercept as usize;
    let n = placement.rows();
    let factor = {
        let mut pass = placement.pass();
        least_squares_factor(pass.as_mut(), cond, d, intercept)?
    };
    let m = k + 1;
    let diag_max = (0..k)
        .map(|i| factor.r[i * m + i].abs())
        .fold(0.0f64, f64::max);
    // Columns whose pivot is at rounding level are dependent on the earlier ones: their
    // coefficient is 0 (a basic solution; inference reports the singular direction).
    let tiny = 1e-13 * diag_max;
    let beta = solve_with_dependent(&factor, k, tiny);
    let mut conditioned = vec![0.0; net.param_count()];
    for j in 0..d {
        conditioned[layer.weights + j] = beta[j];
    }
    if intercept {
        conditioned[layer.bias] = beta[d];
    }
    let g_at = net.globals_offset();
    // The data's own units, refined there.
    let mut original = cond.to_original(net, &conditioned);
    let t = cond.target_scale();
    // The least-squares correction for the gradient X^T r in the data's units: R^T R d' =
    // X'^T r' in the conditioned ones (r' = r / t), mapped back by the conditioning's linear
    // part: (the image of 0, the image of d'), whose difference is the correction.
    let correction = |gradient: &[f64]| {
        let rhs: Vec<f64> = gradient.iter().map(|g| g / t).collect();
        let z = factor.solve_leading_transposed(k, &rhs);
        let step = solve_upper(&factor, k, &z, tiny);
        let mut delta = vec![0.0; net.param_count()];
        for j in 0..d {
            delta[layer.weights + j] = step[j];
        }
        if intercept {
            delta[layer.bias] = step[d];
        }
        (
            cond.to_original(net, &vec![0.0; net.param_count()]),
            cond.to_original(net, &delta),
        )
    };
    let (mut rss, mut rss_plain) = (0.0, 0.0);
    let mut last_gradient = vec![0.0; k];
    // Corrections (converging at a rate of about cond(X')^2 u per step) until they no longer
    // change the coefficients beyond a few ulps: NIST's certified digits ask for more than the
    // decrement's tolerance where a standard error dwarfs its coefficient (Wampler3's
    // intercept: 1 with a standard error of 2152). Each is followed by the pass that measures
    // the residuals it leaves.
    let mut refinements = 0;
    for pass_number in 0..12 {
        let (gradient, r2, plain2) = {
            let mut pass = placement.pass();
            exact_residual_gradient(pass.as_mut(), cond, d, intercept, &original, layer)?
        };
        (rss, rss_plain) = (r2, plain2);
        last_gradient = gradient.clone();
        if pass_number == 11 {
            break;
        }
        // The correction in conditioned units (r' = r / t): R^T R d' = X'^T r'; its image in
        // the original units.
        let (zero, image) = correction(&gradient);
        let mut changed = false;
        for j in (0..d)
            .map(|j| layer.weights + j)
            .chain(intercept.then_some(layer.bias))
        {
            let v = original[j] + (image[j] - zero[j]);
            changed |= (v - original[j]).abs() > 4.0 * f64::EPSILON * v.abs();
            original[j] = v;
        }
        refinements += 1;
        if !changed {
            // The last correction was at rounding level: measure the residuals it left.
            let (gradient, r2, plain2) = {
                let mut pass = placement.pass();
                exact_residual_gradient(pass.as_mut(), cond, d, intercept, &original, layer)?
            };
            (rss, rss_plain, last_gradient) = (r2, plain2, gradient);
            break;
        }
    }
    // The test from the exact gradient: at sigma^2 = RSS / n the log sigma coordinate's
    // gradient is 0, and the coefficients' block of H is X'^T X' / sigma'^2 = R^T R / sigma'^2,
    // so delta = |R^-T X'^T r'| / sigma'. (A design as ill-conditioned as Filip's, cond(X')^2
    // u near 1, leaves this measure at its rounding, about cond(X') u sqrt(n) standard
    // errors, above the tolerance: the fit then says it is not resolved.)
    // The Newton step that is left, less what the f64 coefficients themselves cannot resolve
    // (2 ulps of each: an intercept near 1e8 is an f64 only to 1.5e-8, which can be 1e-7 of
    // its standard error), measured in the metric of H.
    let decrement = {
        let sigma = (rss / n as f64).sqrt() / t;
        let (zero, mut image) = correction(&last_gradient);
        for j in 0..image.len() {
            let change = image[j] - zero[j];
            let ulps = 2.0 * f64::EPSILON * original[j].abs();
            image[j] = zero[j] + change.signum() * (change.abs() - ulps).max(0.0);
        }
        let back_zero = cond.to_conditioned(net, &zero);
        let shrunk = cond.to_conditioned(net, &image);
        let mut s: Vec<f64> = (0..d)
            .map(|j| shrunk[layer.weights + j] - back_zero[layer.weights + j])
            .collect();
        if intercept {
            s.push(shrunk[layer.bias] - back_zero[layer.bias]);
        }
        // |R s| / sigma': R upper triangular.
        let rs: Vec<f64> = (0..k)
            .map(|i| (i..k).map(|j| factor.r[i * m + j] * s[j]).sum::<f64>())
            .collect();
        rs.iter().map(|v| v * v).sum::<f64>().sqrt() / sigma
    };
    let mut warnings = Vec::new();
    let y_square: f64 = (0..m).map(|i| factor.r[i * m + k].powi(2)).sum::<f64>() * t * t;
    let exact_fit = rss <= (64.0 * f64::EPSILON).powi(2) * y_square;
    // An exact fit's residuals are 0 or rounding: sigma is taken from them as f64 arithmetic
    // forms them (the rounding level of the data), and the fit says so.
    let rss = if exact_fit { rss.max(rss_plain) } else { rss };
    if rss == 0.0 {
        // Every row on the fit, exactly: the coefficients are the exact solution, sigma's MLE
        // is 0 and the likelihood unbounded; no optimality test applies at the boundary.
        original[g_at] = f64::NEG_INFINITY;
        let params = cond.to_conditioned(net, &original);
        return Ok(LinearFit {
            report: TrainReport {
                steps: refinements,
                epochs: refinements,
                converged: false,
                reason: "every row lies exactly on the least-squares fit: the coefficients are the exact solution, but sigma's MLE is 0 and the likelihood is unbounded (no MLE exists; --prior l2:SCALE gives a MAP estimate)".into(),
                history: Vec::new(),
                log_prior: None,
            },
            params,
            original: Some(original),
            precision: Precision::F64,
            method: "qr",
            ran_on_placement: !placement.on_gpu(),
            decrement: f64::NAN,
            hessian: None,
            warnings: vec![EXACT_FIT.into()],
        });
    }
    original[g_at] = 0.5 * (rss / n as f64).ln();
    let params = cond.to_conditioned(net, &original);
    let frozen = options.frozen.clone();
    let check = placement.with_exact(net, cond, &frozen, |problem| {
        optimality(problem, net, &params, None, &frozen)
    })?;
    if exact_fit {
        warnings.push("the fit is exact: the residuals are at the data's rounding level, so sigma's MLE is that rounding (the likelihood is unbounded as sigma -> 0) and the standard errors are rounding noise; the coefficients are the exact solution".into());
    }
    // The decrement from the exact gradient: at sigma^2 = RSS / n the log sigma coordinate's
    // gradient is 0, and the coefficients' block of H is X'^T X' / sigma'^2 = R^T R / sigma'^2,
    // so delta = |R^-T X'^T r'| / sigma'.
    let converged = decrement <= DECREMENT_TOLERANCE || exact_fit;
    let reason = if exact_fit {
        "exact least-squares solve (QR); the fit is exact".to_string()
    } else if converged {
        "exact least-squares solve (QR) refined on exact residuals, checked: Newton decrement below tolerance".to_string()
    } else {
        format!(
            "the least-squares solve (QR) is resolved only to {decrement:.3e} standard errors: the design is too ill-conditioned"
        )
    };
    Ok(LinearFit {
        report: TrainReport {
            steps: refinements,
            epochs: refinements,
            converged,
            reason,
            history: vec![LossPoint {
                epoch: 1,
                step: 1,
                train_mean_nll: check.nll / n.max(1) as f64,
                validation_mean_nll: None,
            }],
            log_prior: None,
        },
        params,
        original: Some(original),
        precision: Precision::F64,
        method: "qr",
        ran_on_placement: !placement.on_gpu(),
        decrement,
        hessian: check.hessian,
        warnings,
    })
}

/// A double-double number hi + lo (|lo| <= ulp(hi) / 2): sums and products of f64s kept
/// exactly to about 106 bits.
#[derive(Clone, Copy, Debug, Default)]
struct Dd(f64, f64);

impl Dd {
    /// a + b as (sum, its rounding error) exactly (Knuth's two-sum).
    fn two_sum(a: f64, b: f64) -> Dd {
        let s = a + b;
        let bb = s - a;
        Dd(s, (a - (s - bb)) + (b - bb))
    }
    fn add(self, b: f64) -> Dd {
        let s = Dd::two_sum(self.0, b);
        Dd::normalised(s.0, s.1 + self.1)
    }
    fn add_dd(self, b: Dd) -> Dd {
        let s = Dd::two_sum(self.0, b.0);
        Dd::normalised(s.0, s.1 + self.1 + b.1)
    }
    /// self * b, the product of the high parts exact by a fused multiply-add.
    fn mul(self, b: f64) -> Dd {
        let p = self.0 * b;
        let e = self.0.mul_add(b, -p);
        Dd::normalised(p, e + self.1 * b)
    }
    fn normalised(hi: f64, lo: f64) -> Dd {
        let s = hi + lo;
        Dd(s, lo - (s - hi))
    }
    fn value(self) -> f64 {
        self.0 + self.1
    }
}

/// At original parameters `params` of a linear Gaussian model: the gradient of the residual
/// sum of squares' half in the conditioned design's columns, X'^T r (the intercept's last),
/// and sum r^2, with sum r^2 of the residuals as plain f64 arithmetic forms them. Everything
/// that decides the refinement's fixed point is exact before its final rounding: each
/// residual r = y - x beta is formed from the raw row in double-double, and X^T r is summed
/// from the raw features and the double-double residuals in double-double, then centred and
/// scaled (sum (x_j - c_j) r = sum x_j r - c_j sum r). So the fixed point is where X^T r
/// vanishes to working precision for the data as stored, whatever the residuals' size.
fn exact_residual_gradient(
    pass: &mut dyn RowPass,
    cond: &Conditioning,
    d: usize,
    intercept: bool,
    params: &[f64],
    layer: super::network::LayerSlots,
) -> Result<(Vec<f64>, f64, f64)> {
    const TASK: usize = 4096;
    let w = &params[layer.weights..layer.weights + d];
    let b = if intercept { params[layer.bias] } else { 0.0 };
    // sum_i x_ij r_i (j < d) and sum_i r_i (index d), in double-double.
    let mut sums = vec![Dd::default(); d + 1];
    let (mut rss, mut rss_plain) = (0.0, 0.0);
    pass.each_block(&mut |_, x, y| {
        let parts: Vec<(Vec<Dd>, f64, f64)> = y
            .par_chunks(TASK)
            .enumerate()
            .map(|(task, ys)| {
                let mut part = vec![Dd::default(); d + 1];
                let (mut r2, mut plain2) = (0.0, 0.0);
                for (i, &yi) in ys.iter().enumerate() {
                    let at = (task * TASK + i) * d;
                    let xr = &x[at..at + d];
                    let mut r = Dd::two_sum(yi, -b);
                    for (xv, wv) in xr.iter().zip(w) {
                        let p = xv * wv;
                        let e = xv.mul_add(*wv, -p);
                        r = r.add(-p).add(-e);
                    }
                    let rv = r.value();
                    r2 += rv * rv;
                    let plain = yi - b - xr.iter().zip(w).map(|(a, c)| a * c).sum::<f64>();
                    plain2 += plain * plain;
                    for (s, &xv) in part.iter_mut().zip(xr) {
                        *s = s.add_dd(r.mul(xv));
                    }
                    part[d] = part[d].add_dd(r);
                }
                (part, r2, plain2)
            })
            .collect();
        for (part, r2, plain2) in parts {
            for (s, v) in sums.iter_mut().zip(part) {
                *s = s.add_dd(v);
            }
            rss += r2;
            rss_plain += plain2;
        }
        Ok(())
    })?;
    let total = sums[d];
    let mut gradient: Vec<f64> = (0..d)
        .map(|j| {
            // sum (x_j - c_j) r = sum x_j r - c_j sum r, then the power-of-two scale.
            sums[j].add_dd(total.mul(-cond.center[j])).value() * cond.inv_scale[j]
        })
        .collect();
    if intercept {
        gradient.push(total.value());
    }
    Ok((gradient, rss, rss_plain))
}

/// The R factor of the conditioned rows [x', 1 (with an intercept), y'] over one pass.
pub(crate) fn least_squares_factor(
    pass: &mut dyn RowPass,
    cond: &Conditioning,
    d: usize,
    intercept: bool,
) -> Result<QrRows> {
    const TASK: usize = 4096;
    let m = d + intercept as usize + 1;
    let mut total = QrRows::new(m);
    pass.each_block(&mut |_, x, y| {
        let parts: Vec<QrRows> = y
            .par_chunks(TASK)
            .enumerate()
            .map(|(t, ys)| {
                // Blocks of BLOCK rows, held column by column, reflected into R.
                const BLOCK: usize = 256;
                let mut qr = QrRows::new(m);
                let mut row = vec![0.0; d];
                let mut block = vec![0.0; m * BLOCK];
                for (b, block_ys) in ys.chunks(BLOCK).enumerate() {
                    for (i, &yi) in block_ys.iter().enumerate() {
                        let r = t * TASK + b * BLOCK + i;
                        cond.row_into(&x[r * d..(r + 1) * d], &mut row);
                        for (j, &v) in row.iter().enumerate() {
                            block[j * BLOCK + i] = v;
                        }
                        if intercept {
                            block[d * BLOCK + i] = 1.0;
                        }
                        block[(m - 1) * BLOCK + i] = cond.target(yi);
                    }
                    qr.add_block(&mut block, BLOCK, block_ys.len());
                }
                qr
            })
            .collect();
        for part in &parts {
            total.merge(part);
        }
        Ok(())
    })?;
    total.nonnegative_diagonal();
    Ok(total)
}

/// R[..k, ..k] x = R[..k, k], with coordinates whose pivot is at most `tiny` set to 0.
fn solve_with_dependent(factor: &QrRows, k: usize, tiny: f64) -> Vec<f64> {
    let m = factor.cols;
    let rhs: Vec<f64> = (0..k).map(|i| factor.r[i * m + k]).collect();
    solve_upper(factor, k, &rhs, tiny)
}

/// R[..k, ..k] x = b by back substitution, coordinates with a pivot at most `tiny` set to 0.
fn solve_upper(factor: &QrRows, k: usize, b: &[f64], tiny: f64) -> Vec<f64> {
    let m = factor.cols;
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let pivot = factor.r[i * m + i];
        if pivot.abs() <= tiny {
            continue;
        }
        let tail: f64 = (i + 1..k).map(|j| factor.r[i * m + j] * x[j]).sum();
        x[i] = (b[i] - tail) / pivot;
    }
    x
}

/// The optimality test of a model trained by another route (minibatch optimisers), from f64
/// sums of its rows: whether its result happens to be at the optimum.
pub fn check_trained(
    net: &Network,
    placement: &mut Placement<'_>,
    cond: &Conditioning,
    params: &[f64],
    options: &TrainOptions,
) -> Result<Check> {
    let layout = options.prior_layout(net);
    let frozen = options.frozen.clone();
    placement.with_exact(net, cond, &frozen, |problem| {
        optimality(problem, net, params, layout.as_ref(), &frozen)
    })
}
