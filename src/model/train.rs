//! Training a network: full-batch L-BFGS through the shared optimiser, or minibatch SGD
//! (momentum), Adam and AdamW with seeded shuffles, early stopping and a divergence guard.

use super::conditioning::Conditioning;
use super::network::Network;
use crate::error::{Error, Result};
use crate::fit::{self, Differentiable, FitOptions, Prior};
use crate::gpu::mlp::{GpuNetwork, Hyper};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// `--optimizer` for models.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelOptimizer {
    Sgd,
    Adam,
    Adamw,
    Lbfgs,
    /// Newton / Fisher scoring, for linear models.
    Newton,
}

/// Training settings, named as in PyTorch and scikit-learn.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub optimizer: ModelOptimizer,
    pub lr: f64,
    pub momentum: f64,
    /// AdamW's decoupled weight decay (on weights, as torch applies it to what it is given).
    pub weight_decay: f64,
    /// Minibatch size; `None` or >= n is full batch.
    pub batch_size: Option<usize>,
    pub epochs: usize,
    /// Optimiser steps at most (L-BFGS iterations, or minibatch steps).
    pub max_iter: Option<usize>,
    pub seed: u64,
    pub prior: Option<Prior>,
    /// Fraction of rows held out for early stopping (minibatch optimisers).
    pub validation: Option<f64>,
    /// Epochs without validation improvement before stopping.
    pub patience: usize,
    /// Report the loss every this many steps (0: once per epoch).
    pub log_every: usize,
    /// Parameters held at their initial value (the intercept under `--no-intercept`).
    pub frozen: Vec<bool>,
    /// Per parameter, the factor by which the prior's scale is multiplied (0: no prior), as
    /// conditioned coordinates state the user's prior (see
    /// [`super::Conditioning::prior_factors`]); `None` is 1 on weights and 0 elsewhere.
    pub prior_factors: Option<Vec<f64>>,
}

impl TrainOptions {
    /// One full-batch epoch with `optimizer` and PyTorch's defaults elsewhere (lr 1e-3, no
    /// momentum or decay, no prior, seed 0, patience 5, nothing frozen); adjust fields with
    /// struct update syntax.
    pub fn new(optimizer: ModelOptimizer, param_count: usize) -> Self {
        TrainOptions {
            optimizer,
            lr: 1e-3,
            momentum: 0.0,
            weight_decay: 0.0,
            batch_size: None,
            epochs: 1,
            max_iter: None,
            seed: 0,
            prior: None,
            validation: None,
            patience: 5,
            log_every: 0,
            frozen: vec![false; param_count],
            prior_factors: None,
        }
    }

    /// Each parameter's prior factor: [`TrainOptions::prior_factors`], or 1 on `net`'s weights.
    pub fn prior_factors(&self, net: &Network) -> Vec<f64> {
        self.prior_factors.clone().unwrap_or_else(|| {
            net.weight_mask()
                .iter()
                .map(|&m| if m { 1.0 } else { 0.0 })
                .collect()
        })
    }

    /// The prior laid out over `net`'s parameters.
    pub fn prior_layout(&self, net: &Network) -> Option<fit::PriorLayout> {
        self.prior
            .map(|prior| fit::PriorLayout::scaled(prior, self.prior_factors(net)))
    }
}

/// One reported point of the loss curve.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LossPoint {
    pub epoch: usize,
    pub step: usize,
    pub train_mean_nll: f64,
    pub validation_mean_nll: Option<f64>,
}

/// What happened during training.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainReport {
    pub steps: usize,
    pub epochs: usize,
    pub converged: bool,
    pub reason: String,
    pub history: Vec<LossPoint>,
    pub log_prior: Option<f64>,
}

/// The full-batch problem over a table on the CPU engine (L-BFGS, Newton, profile
/// likelihoods), of the rows as `cond` re-expresses them.
pub struct FullBatch<'a> {
    pub net: &'a Network,
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub rows: Vec<usize>,
    pub frozen: &'a [bool],
    pub cond: Option<&'a Conditioning>,
}

impl Differentiable for FullBatch<'_> {
    fn n(&self) -> usize {
        self.rows.len()
    }
    fn unit_roundoff(&self) -> f64 {
        f64::EPSILON / 2.0
    }
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        let (nll, mut grad) = self
            .net
            .conditioned_nll_and_grad(theta, self.x, self.y, &self.rows, self.cond);
        zero_frozen(&mut grad, self.frozen);
        Ok((nll, grad))
    }
}

impl fit::SecondOrder for FullBatch<'_> {
    fn n(&self) -> usize {
        self.rows.len()
    }
    fn unit_roundoff(&self) -> f64 {
        f64::EPSILON / 2.0
    }
    /// Linear models over all the table's rows (Newton's passes take no subset).
    fn derivatives(&mut self, theta: &[f64]) -> Result<fit::Derivatives> {
        debug_assert_eq!(self.rows.len(), self.y.len());
        super::newton::conditioned_derivatives(self.net, theta, self.x, self.y, self.cond)
    }
    fn nll_and_gradient(&mut self, theta: &[f64]) -> Result<Option<(f64, Vec<f64>)>> {
        super::newton::conditioned_gradient(self.net, theta, self.x, self.y, self.cond).map(Some)
    }
}

use super::zero_frozen;

/// Early stopping on a validation loss: keeps the best parameters seen.
struct EarlyStopping {
    best: Option<Vec<f64>>,
    best_loss: f64,
    since_best: usize,
    patience: usize,
}

impl EarlyStopping {
    fn new(patience: usize) -> Self {
        EarlyStopping {
            best: None,
            best_loss: f64::INFINITY,
            since_best: 0,
            patience,
        }
    }

    /// Records an epoch's validation loss; returns the reason to stop, if it is time.
    fn observe(&mut self, loss: f64, params: &[f64]) -> Option<String> {
        if self.best.is_none() || loss < self.best_loss {
            self.best = Some(params.to_vec());
            self.best_loss = loss;
            self.since_best = 0;
            return None;
        }
        self.since_best += 1;
        (self.since_best >= self.patience).then(|| {
            format!(
                "early stopping: validation loss did not improve for {} epochs",
                self.patience
            )
        })
    }
}

/// Seeded split into training and validation rows (the same on every engine).
fn split_rows(
    n: usize,
    validation: Option<f64>,
    rng: &mut StdRng,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut order: Vec<usize> = (0..n).collect();
    match validation {
        Some(f) if f > 0.0 => {
            if n < 2 {
                return Err(Error::Usage("--validation needs at least 2 rows".into()));
            }
            order.shuffle(rng);
            let held = ((n as f64 * f).round() as usize).clamp(1, n - 1);
            let validation = order.split_off(n - held);
            Ok((order, validation))
        }
        _ => Ok((order, Vec::new())),
    }
}

/// A minibatch run's seeded generator (after the split), its training and validation rows,
/// and its batch size (at most the training rows).
fn minibatch_plan(
    n: usize,
    options: &TrainOptions,
) -> Result<(StdRng, Vec<usize>, Vec<usize>, usize)> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let (train_rows, validation_rows) = split_rows(n, options.validation, &mut rng)?;
    let batch = options
        .batch_size
        .unwrap_or(train_rows.len())
        .clamp(1, train_rows.len());
    Ok((rng, train_rows, validation_rows, batch))
}

/// Gaussian and Laplace heads: the gradient test in units of the target's scale (the starting
/// sigma or b; its own coordinate, log sigma, has no units). d NLL / d w = sum x r / sigma^2
/// shrinks as 1 / sigma when the target is rescaled, so an unscaled test would stop a fit of
/// prices in cents far earlier (in standard errors) than the same fit in dollars.
fn target_scale(net: &Network, params: &[f64]) -> Option<Vec<f64>> {
    if net.head.globals() == 0 {
        return None;
    }
    let g = net.globals_offset();
    let scale = params[g].exp();
    (scale.is_finite() && scale > 0.0).then(|| {
        (0..params.len())
            .map(|j| if j >= g { 1.0 } else { scale })
            .collect()
    })
}

/// Full-batch L-BFGS through the shared optimiser, on either engine's problem.
pub(crate) fn full_batch_lbfgs(
    net: &Network,
    problem: &mut dyn Differentiable,
    params: &mut Vec<f64>,
    options: &TrainOptions,
    mut progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    let n = problem.n() as f64;
    let fit_options = FitOptions {
        optimizer: fit::Optimizer::Lbfgs,
        prior: options.prior,
        max_iter: options.max_iter.unwrap_or(1000),
        gradient_scale: target_scale(net, params),
        ..FitOptions::default()
    };
    let layout = options.prior_layout(net);
    let result = fit::minimize(problem, params.clone(), layout, &fit_options)?;
    *params = result.theta;
    let point = LossPoint {
        epoch: result.iterations,
        step: result.iterations,
        train_mean_nll: result.nll / n,
        validation_mean_nll: None,
    };
    progress(&point);
    Ok(TrainReport {
        steps: result.iterations,
        epochs: result.iterations,
        converged: result.converged,
        reason: result.reason.describe().to_string(),
        history: vec![point],
        log_prior: result.log_prior,
    })
}

/// Trains `params` in place; `progress(step, epoch, mean_nll)` is called at each report.
pub fn train(
    net: &Network,
    params: &mut Vec<f64>,
    x: &[f64],
    y: &[f64],
    options: &TrainOptions,
    progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    train_conditioned(net, params, x, y, None, options, progress)
}

/// [`train`] on the rows as `cond` re-expresses them, `params` in the conditioned coordinates.
pub fn train_conditioned(
    net: &Network,
    params: &mut Vec<f64>,
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
    options: &TrainOptions,
    mut progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    let n = y.len();
    if n == 0 {
        return Err(Error::InvalidData("no rows to train on".into()));
    }
    if options.optimizer == ModelOptimizer::Newton {
        let report = super::newton::newton(net, params, x, y, cond, options)?;
        if let Some(last) = report.history.last() {
            progress(last);
        }
        return Ok(report);
    }
    if options.optimizer == ModelOptimizer::Lbfgs {
        let mut problem = FullBatch {
            net,
            x,
            y,
            rows: (0..n).collect(),
            frozen: &options.frozen,
            cond,
        };
        return full_batch_lbfgs(net, &mut problem, params, options, progress);
    }
    minibatch(net, params, x, y, cond, options, progress)
}

fn minibatch(
    net: &Network,
    params: &mut Vec<f64>,
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
    options: &TrainOptions,
    mut progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    let (mut rng, mut train_rows, validation_rows, batch) = minibatch_plan(y.len(), options)?;
    let mut run = Run::new(net, params, options, train_rows.len());
    for epoch in 1..=options.epochs {
        run.epochs = epoch;
        train_rows.shuffle(&mut rng);
        if !run.cpu_steps(net, params, x, y, cond, &train_rows, batch, &mut progress) {
            break;
        }
        let validation = (!validation_rows.is_empty()).then(|| {
            net.conditioned_nll_and_grad(params, x, y, &validation_rows, cond)
                .0
                / validation_rows.len() as f64
        });
        if !run.end_epoch(params, validation, &mut progress) {
            break;
        }
    }
    Ok(run.finish(params))
}

/// A minibatch run (SGD with momentum, Adam, AdamW, as torch.optim) on either engine, in
/// memory or streamed: the optimiser's state, the steps taken, the loss curve, early stopping
/// and the divergence guard.
pub(crate) struct Run<'o> {
    options: &'o TrainOptions,
    /// Each parameter's prior factor (0 where no prior acts).
    prior_factors: Vec<f64>,
    /// First and second moments (SGD's momentum buffer is `m`).
    m: Vec<f64>,
    v: Vec<f64>,
    /// Rows the priors' per-sample share is taken over.
    n_train: f64,
    pub step: usize,
    pub epochs: usize,
    max_steps: usize,
    /// Loss and rows since the last reported point, and over the current epoch.
    running: (f64, usize),
    epoch_loss: (f64, usize),
    history: Vec<LossPoint>,
    last_finite: Vec<f64>,
    early: EarlyStopping,
    /// Why the run stopped early, and whether that counts as converged.
    stopped: Option<(String, bool)>,
    /// The mean NLL of the first batch (at the initial parameters) and of the last epoch
    /// completed: a run whose loss grew far past where it started diverged, finite or not.
    first_mean: Option<f64>,
    last_epoch_mean: Option<f64>,
}

impl<'o> Run<'o> {
    pub(crate) fn new(
        net: &Network,
        params: &[f64],
        options: &'o TrainOptions,
        n_train: usize,
    ) -> Run<'o> {
        let p = params.len();
        Run {
            options,
            prior_factors: options.prior_factors(net),
            m: vec![0.0; p],
            v: vec![0.0; p],
            n_train: n_train as f64,
            step: 0,
            epochs: 0,
            max_steps: options.max_iter.unwrap_or(usize::MAX),
            running: (0.0, 0),
            epoch_loss: (0.0, 0),
            history: Vec::new(),
            last_finite: params.to_vec(),
            early: EarlyStopping::new(options.patience),
            stopped: None,
            first_mean: None,
            last_epoch_mean: None,
        }
    }

    /// Steps left before --max-iter.
    pub(crate) fn steps_left(&self) -> usize {
        self.max_steps - self.step
    }

    /// Notes --max-iter once it is reached; false then.
    pub(crate) fn may_step(&mut self) -> bool {
        if self.stopped.is_none() && self.step >= self.max_steps {
            self.stopped = Some((format!("--max-iter {} steps reached", self.max_steps), true));
        }
        self.stopped.is_none()
    }

    /// Records one step's loss (summed over `rows`), reporting every --log-every steps.
    pub(crate) fn record(&mut self, loss: f64, rows: usize, progress: &mut dyn FnMut(&LossPoint)) {
        self.step += 1;
        if self.first_mean.is_none() && rows > 0 {
            self.first_mean = Some(loss / rows as f64);
        }
        self.running.0 += loss;
        self.running.1 += rows;
        self.epoch_loss.0 += loss;
        self.epoch_loss.1 += rows;
        let every = self.options.log_every;
        if every > 0 && self.step.is_multiple_of(every) {
            let point = LossPoint {
                epoch: self.epochs,
                step: self.step,
                train_mean_nll: self.running.0 / self.running.1 as f64,
                validation_mean_nll: None,
            };
            self.running = (0.0, 0);
            progress(&point);
            self.history.push(point);
        }
    }

    /// Stops after a non-finite loss at the next step; `params` are the ones kept.
    pub(crate) fn diverged(&mut self, loss: f64, kept: &str) {
        self.stopped = Some((
            format!(
                "diverged at step {}: the loss became {loss}; kept {kept} (try a smaller --lr)",
                self.step + 1
            ),
            false,
        ));
    }

    /// Minibatch steps on the CPU over `order` (rows of `x` and `y`), `batch` rows each (the
    /// last may be shorter). False once the run must stop.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cpu_steps(
        &mut self,
        net: &Network,
        params: &mut [f64],
        x: &[f64],
        y: &[f64],
        cond: Option<&Conditioning>,
        order: &[usize],
        batch: usize,
        progress: &mut dyn FnMut(&LossPoint),
    ) -> bool {
        for rows in order.chunks(batch) {
            if !self.may_step() {
                return false;
            }
            let (nll, grad) = net.conditioned_nll_and_grad(params, x, y, rows, cond);
            if !nll.is_finite() || grad.iter().any(|g| !g.is_finite()) {
                params.copy_from_slice(&self.last_finite);
                self.diverged(nll, "the last finite parameters");
                return false;
            }
            self.last_finite.copy_from_slice(params);
            self.apply(params, grad, rows.len());
            self.record(nll, rows.len(), progress);
        }
        true
    }

    /// One optimiser step from a batch's summed gradient over `rows` rows.
    fn apply(&mut self, params: &mut [f64], mut grad: Vec<f64>, rows: usize) {
        let options = self.options;
        let (beta1, beta2, eps) = (0.9, 0.999, 1e-8);
        // Gradient of the batch's mean NLL plus the prior's share: (-log prior) / n.
        let scale = 1.0 / rows as f64;
        grad.iter_mut().for_each(|g| *g *= scale);
        if let Some(Prior::L2 { scale: s }) = options.prior {
            for ((g, t), &f) in grad
                .iter_mut()
                .zip(params.iter())
                .zip(&self.prior_factors)
                .filter(|(_, &f)| f > 0.0)
            {
                *g += t / (s * f).powi(2) / self.n_train;
            }
        }
        let lambda_l1 = options.prior.and_then(|pr| match pr {
            Prior::L1 { scale } => Some(1.0 / scale),
            _ => None,
        });
        let t = (self.step + 1) as i32;
        for (j, &g) in grad.iter().enumerate() {
            if options.frozen.get(j).copied().unwrap_or(false) {
                continue;
            }
            let effective_lr = match options.optimizer {
                ModelOptimizer::Sgd => {
                    // torch.optim.SGD: buf = momentum * buf + g; p -= lr * buf.
                    self.m[j] = if t == 1 {
                        g
                    } else {
                        options.momentum * self.m[j] + g
                    };
                    params[j] -= options.lr * self.m[j];
                    options.lr
                }
                ModelOptimizer::Adam | ModelOptimizer::Adamw => {
                    if options.optimizer == ModelOptimizer::Adamw {
                        // Decoupled weight decay, as torch.optim.AdamW: p *= 1 - lr * wd.
                        params[j] *= 1.0 - options.lr * options.weight_decay;
                    }
                    self.m[j] = beta1 * self.m[j] + (1.0 - beta1) * g;
                    self.v[j] = beta2 * self.v[j] + (1.0 - beta2) * g * g;
                    let mhat = self.m[j] / (1.0 - f64::powi(beta1, t));
                    let vhat = self.v[j] / (1.0 - f64::powi(beta2, t));
                    let lr = options.lr / (vhat.sqrt() + eps);
                    params[j] -= lr * mhat;
                    lr
                }
                ModelOptimizer::Lbfgs | ModelOptimizer::Newton => {
                    unreachable!("handled by the full-batch paths")
                }
            };
            if let (Some(lambda), true) = (lambda_l1, self.prior_factors[j] > 0.0) {
                // Proximal step for (lambda / n) |theta_j|: soft-threshold, exact zeros.
                let shrink = effective_lr * lambda / self.prior_factors[j] / self.n_train;
                params[j] = params[j].signum() * (params[j].abs() - shrink).max(0.0);
            }
        }
    }

    /// The end of an epoch: its point on the loss curve (each epoch without --log-every, or
    /// with a validation loss) and early stopping. False once the run must stop.
    pub(crate) fn end_epoch(
        &mut self,
        params: &[f64],
        validation: Option<f64>,
        progress: &mut dyn FnMut(&LossPoint),
    ) -> bool {
        self.last_finite.copy_from_slice(params);
        if self.epoch_loss.1 > 0 {
            self.last_epoch_mean = Some(self.epoch_loss.0 / self.epoch_loss.1 as f64);
        }
        if self.options.log_every == 0 || validation.is_some() {
            let point = LossPoint {
                epoch: self.epochs,
                step: self.step,
                train_mean_nll: if self.epoch_loss.1 > 0 {
                    self.epoch_loss.0 / self.epoch_loss.1 as f64
                } else {
                    f64::NAN
                },
                validation_mean_nll: validation,
            };
            progress(&point);
            self.history.push(point);
            // Points every --log-every steps continue across epochs otherwise.
            self.running = (0.0, 0);
        }
        self.epoch_loss = (0.0, 0);
        if let Some(stop) = validation.and_then(|val| self.early.observe(val, params)) {
            self.stopped = Some((stop, true));
        }
        self.stopped.is_none()
    }

    /// The report; `params` become the best seen under early stopping.
    pub(crate) fn finish(self, params: &mut Vec<f64>) -> TrainReport {
        let (mut reason, mut converged) = self
            .stopped
            .unwrap_or_else(|| (format!("{} epochs completed", self.options.epochs), true));
        // Minibatch losses wander; one that ends more than a nat per row (or its own size)
        // above where it started has run away, as a NaN would have.
        if let (true, Some(first), Some(last)) = (converged, self.first_mean, self.last_epoch_mean)
        {
            if last > first + first.abs().max(1.0) {
                reason = format!(
                    "diverged: the training loss grew from {first:.6e} to {last:.6e} per row over the run (try a smaller --lr)"
                );
                converged = false;
            }
        }
        if converged {
            if let Some(best) = self.early.best {
                *params = best;
            }
        }
        TrainReport {
            steps: self.step,
            epochs: self.epochs,
            converged,
            reason,
            history: self.history,
            log_prior: self.options.prior.map(|pr| {
                fit::PriorLayout::scaled(pr, self.prior_factors.clone()).log_density(params)
            }),
        }
    }
}

/// The full-batch problem on the GPU, for L-BFGS.
struct GpuFullBatch<'a> {
    gpu: &'a GpuNetwork,
    frozen: &'a [bool],
}

impl Differentiable for GpuFullBatch<'_> {
    fn n(&self) -> usize {
        self.gpu.rows()
    }
    fn unit_roundoff(&self) -> f64 {
        f32::EPSILON as f64 / 2.0
    }
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        let (nll, mut grad) = self.gpu.nll_and_grad(theta)?;
        zero_frozen(&mut grad, self.frozen);
        Ok((nll, grad))
    }
}

/// [`train`] on the GPU: the same seeded shuffles, split and stopping rules; parameters,
/// optimiser state and the row order stay on the GPU, and the host reads back the per-step
/// losses once per epoch (and the parameters when it must keep a copy). A non-finite loss
/// restores the parameters from the start of that epoch.
pub fn train_gpu(
    gpu: &GpuNetwork,
    net: &Network,
    params: &mut Vec<f64>,
    options: &TrainOptions,
    mut progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    let n = gpu.rows();
    gpu.set_prior_factors(&options.prior_factors(net));
    if options.optimizer == ModelOptimizer::Newton {
        // Newton's Hessian is reduced on the GPU; the small solve runs on the host in f64.
        let report = super::newton::newton_with(
            net,
            params,
            n,
            f32::EPSILON as f64 / 2.0,
            &mut |theta| gpu.derivatives(theta),
            options,
        )?;
        if let Some(last) = report.history.last() {
            progress(last);
        }
        return Ok(report);
    }
    if options.optimizer == ModelOptimizer::Lbfgs {
        let mut problem = GpuFullBatch {
            gpu,
            frozen: &options.frozen,
        };
        return full_batch_lbfgs(net, &mut problem, params, options, progress);
    }
    let (mut rng, mut train_rows, validation_rows, batch) = minibatch_plan(n, options)?;
    let validation_rows: Vec<u32> = validation_rows.iter().map(|&r| r as u32).collect();
    let hyper = gpu_hyper(options, train_rows.len());
    gpu.set_params(params);
    gpu.reset_optimizer();
    let mut run = Run::new(net, params, options, train_rows.len());
    for epoch in 1..=options.epochs {
        if !run.may_step() {
            break;
        }
        run.epochs = epoch;
        train_rows.shuffle(&mut rng);
        let order: Vec<u32> = train_rows.iter().map(|&r| r as u32).collect();
        if !run.gpu_steps(gpu, params, &order, batch, hyper, &mut progress)? {
            break;
        }
        *params = gpu.read_params()?;
        let validation = if validation_rows.is_empty() {
            None
        } else {
            Some(gpu.nll(&validation_rows)? / validation_rows.len() as f64)
        };
        if !run.end_epoch(params, validation, &mut progress) {
            break;
        }
    }
    Ok(run.finish(params))
}

/// The optimiser settings as the GPU kernels read them, with the priors' share over `n_train`.
pub(crate) fn gpu_hyper(options: &TrainOptions, n_train: usize) -> Hyper {
    let n_train = n_train as f64;
    let (l2, l1) = match options.prior {
        Some(Prior::L2 { scale }) => (1.0 / (scale * scale * n_train), 0.0),
        Some(Prior::L1 { scale }) => (0.0, 1.0 / (scale * n_train)),
        None => (0.0, 0.0),
    };
    Hyper {
        lr: options.lr as f32,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: options.weight_decay as f32,
        momentum: options.momentum as f32,
        l2: l2 as f32,
        l1: l1 as f32,
        optimizer: match options.optimizer {
            ModelOptimizer::Sgd => 0,
            ModelOptimizer::Adam => 1,
            _ => 2,
        },
        accumulate: 0,
        pad: [0; 2],
    }
}

impl Run<'_> {
    /// Minibatch steps on the GPU over `order` (rows of the table the GPU holds), `batch`
    /// rows each, in one submit. A non-finite loss restores `params` (the parameters at the
    /// last end of an epoch) on the GPU; Ok(false) then.
    pub(crate) fn gpu_steps(
        &mut self,
        gpu: &GpuNetwork,
        params: &mut [f64],
        order: &[u32],
        batch: usize,
        hyper: Hyper,
        progress: &mut dyn FnMut(&LossPoint),
    ) -> Result<bool> {
        if !self.may_step() {
            return Ok(false);
        }
        // Honour --max-iter inside the pass by truncating its row order.
        let allowed = self.steps_left().saturating_mul(batch).min(order.len());
        let order = &order[..allowed];
        let losses = gpu.train_epoch(order, hyper, self.step as u32)?;
        for (loss, rows) in losses.iter().zip(order.chunks(batch)) {
            if !loss.is_finite() {
                gpu.set_params(&self.last_finite);
                params.copy_from_slice(&self.last_finite);
                let kept = format!("the parameters from the start of epoch {}", self.epochs);
                self.diverged(*loss, &kept);
                return Ok(false);
            }
            self.record(*loss, rows.len(), progress);
        }
        Ok(true)
    }
}
