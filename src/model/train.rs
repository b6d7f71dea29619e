//! Training a network: full-batch L-BFGS through the shared optimiser, or minibatch SGD
//! (momentum), Adam and AdamW with seeded shuffles, early stopping and a divergence guard.

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
        }
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

/// The full-batch problem over a table on the CPU engine (L-BFGS, profile likelihoods).
pub struct FullBatch<'a> {
    pub net: &'a Network,
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub rows: Vec<usize>,
    pub frozen: &'a [bool],
}

impl Differentiable for FullBatch<'_> {
    fn n(&self) -> usize {
        self.rows.len()
    }
    fn unit_roundoff(&self) -> f64 {
        f64::EPSILON / 2.0
    }
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        let (nll, mut grad) = self.net.nll_and_grad(theta, self.x, self.y, &self.rows);
        zero_frozen(&mut grad, self.frozen);
        Ok((nll, grad))
    }
}

fn zero_frozen(grad: &mut [f64], frozen: &[bool]) {
    for (g, &f) in grad.iter_mut().zip(frozen) {
        if f {
            *g = 0.0;
        }
    }
}

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

/// Full-batch L-BFGS through the shared optimiser, on either engine's problem.
fn full_batch_lbfgs(
    problem: &mut dyn Differentiable,
    params: &mut Vec<f64>,
    mask: &[bool],
    options: &TrainOptions,
    mut progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    let n = problem.n() as f64;
    let fit_options = FitOptions {
        prior: options.prior,
        max_iter: options.max_iter.unwrap_or(1000),
        ..FitOptions::default()
    };
    let result = fit::minimize(problem, params.clone(), mask, &fit_options)?;
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
    mut progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    let n = y.len();
    if n == 0 {
        return Err(Error::InvalidData("no rows to train on".into()));
    }
    let mask = net.weight_mask();
    if options.optimizer == ModelOptimizer::Newton {
        let report = super::newton::newton(net, params, x, y, options)?;
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
        };
        return full_batch_lbfgs(&mut problem, params, &mask, options, progress);
    }
    minibatch(net, params, x, y, options, &mask, progress)
}

fn minibatch(
    net: &Network,
    params: &mut Vec<f64>,
    x: &[f64],
    y: &[f64],
    options: &TrainOptions,
    mask: &[bool],
    mut progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    let n = y.len();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let (mut train_rows, validation_rows) = split_rows(n, options.validation, &mut rng)?;
    let batch = options
        .batch_size
        .unwrap_or(train_rows.len())
        .clamp(1, train_rows.len());
    let p = params.len();
    let (mut m, mut v) = (vec![0.0; p], vec![0.0; p]);
    let (beta1, beta2, eps) = (0.9, 0.999, 1e-8);
    let n_train = train_rows.len() as f64;
    let lambda_l1 = options.prior.and_then(|pr| match pr {
        Prior::L1 { scale } => Some(1.0 / scale),
        _ => None,
    });
    let mut history = Vec::new();
    let mut step = 0usize;
    let mut early = EarlyStopping::new(options.patience);
    let mut reason = format!("{} epochs completed", options.epochs);
    let mut converged = true;
    let mut last_finite = params.clone();
    let max_steps = options.max_iter.unwrap_or(usize::MAX);
    let mut epochs_run = 0;
    let mut running = (0.0, 0usize);
    'epochs: for epoch in 1..=options.epochs {
        epochs_run = epoch;
        train_rows.shuffle(&mut rng);
        for rows in train_rows.chunks(batch) {
            if step >= max_steps {
                reason = format!("--max-iter {max_steps} steps reached");
                break 'epochs;
            }
            step += 1;
            let (nll, mut grad) = net.nll_and_grad(params, x, y, rows);
            if !nll.is_finite() || grad.iter().any(|g| !g.is_finite()) {
                *params = last_finite;
                converged = false;
                reason = format!("diverged at step {step}: the loss became {nll}; kept the last finite parameters (try a smaller --lr)");
                break 'epochs;
            }
            last_finite.copy_from_slice(params);
            running.0 += nll;
            running.1 += rows.len();
            // Gradient of the batch's mean NLL plus the prior's share: (-log prior) / n.
            let scale = 1.0 / rows.len() as f64;
            grad.iter_mut().for_each(|g| *g *= scale);
            if let Some(Prior::L2 { scale: s }) = options.prior {
                for ((g, t), _) in grad
                    .iter_mut()
                    .zip(params.iter())
                    .zip(mask)
                    .filter(|(_, &mk)| mk)
                {
                    *g += t / (s * s) / n_train;
                }
            }
            zero_frozen(&mut grad, &options.frozen);
            let t = step as i32;
            for j in 0..p {
                if options.frozen.get(j).copied().unwrap_or(false) {
                    continue;
                }
                let g = grad[j];
                let effective_lr = match options.optimizer {
                    ModelOptimizer::Sgd => {
                        // torch.optim.SGD: buf = momentum * buf + g; p -= lr * buf.
                        m[j] = if step == 1 {
                            g
                        } else {
                            options.momentum * m[j] + g
                        };
                        params[j] -= options.lr * m[j];
                        options.lr
                    }
                    ModelOptimizer::Adam | ModelOptimizer::Adamw => {
                        if options.optimizer == ModelOptimizer::Adamw {
                            // Decoupled weight decay, as torch.optim.AdamW: p *= 1 - lr * wd.
                            params[j] *= 1.0 - options.lr * options.weight_decay;
                        }
                        m[j] = beta1 * m[j] + (1.0 - beta1) * g;
                        v[j] = beta2 * v[j] + (1.0 - beta2) * g * g;
                        let mhat = m[j] / (1.0 - f64::powi(beta1, t));
                        let vhat = v[j] / (1.0 - f64::powi(beta2, t));
                        let lr = options.lr / (vhat.sqrt() + eps);
                        params[j] -= lr * mhat;
                        lr
                    }
                    ModelOptimizer::Lbfgs | ModelOptimizer::Newton => {
                        unreachable!("handled by the full-batch paths")
                    }
                };
                if let (Some(lambda), true) = (lambda_l1, mask[j]) {
                    // Proximal step for (lambda / n) |theta_j|: soft-threshold, exact zeros.
                    let shrink = effective_lr * lambda / n_train;
                    params[j] = params[j].signum() * (params[j].abs() - shrink).max(0.0);
                }
            }
            if options.log_every > 0 && step.is_multiple_of(options.log_every) {
                let point = LossPoint {
                    epoch,
                    step,
                    train_mean_nll: running.0 / running.1 as f64,
                    validation_mean_nll: None,
                };
                running = (0.0, 0);
                progress(&point);
                history.push(point);
            }
        }
        if options.log_every == 0 || !validation_rows.is_empty() {
            let train_mean = if running.1 > 0 {
                running.0 / running.1 as f64
            } else {
                f64::NAN
            };
            running = (0.0, 0);
            let validation = (!validation_rows.is_empty()).then(|| {
                net.nll_and_grad(params, x, y, &validation_rows).0 / validation_rows.len() as f64
            });
            let point = LossPoint {
                epoch,
                step,
                train_mean_nll: train_mean,
                validation_mean_nll: validation,
            };
            progress(&point);
            history.push(point);
            if let Some(stop) = validation.and_then(|val| early.observe(val, params)) {
                reason = stop;
                break 'epochs;
            }
        }
    }
    if converged {
        if let Some(best_params) = early.best {
            *params = best_params;
        }
    }
    let log_prior = options.prior.map(|pr| pr.log_density(params, mask));
    Ok(TrainReport {
        steps: step,
        epochs: epochs_run,
        converged,
        reason,
        history,
        log_prior,
    })
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
    let mask = net.weight_mask();
    if options.optimizer == ModelOptimizer::Newton {
        // Newton's Hessian is reduced on the GPU; the small solve runs on the host in f64.
        let report = super::newton::newton_with(
            net,
            params,
            n,
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
        return full_batch_lbfgs(&mut problem, params, &mask, options, progress);
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    let (mut train_rows, validation_rows) = split_rows(n, options.validation, &mut rng)?;
    let validation_rows: Vec<u32> = validation_rows.iter().map(|&r| r as u32).collect();
    let n_train = train_rows.len() as f64;
    let (l2, l1) = match options.prior {
        Some(Prior::L2 { scale }) => (1.0 / (scale * scale * n_train), 0.0),
        Some(Prior::L1 { scale }) => (0.0, 1.0 / (scale * n_train)),
        None => (0.0, 0.0),
    };
    let hyper = Hyper {
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
    };
    gpu.set_params(params);
    gpu.reset_optimizer();
    let max_steps = options.max_iter.unwrap_or(usize::MAX);
    let (mut step, mut epochs_run) = (0usize, 0usize);
    let mut history = Vec::new();
    let mut early = EarlyStopping::new(options.patience);
    let mut converged = true;
    let mut reason = format!("{} epochs completed", options.epochs);
    let mut epoch_start = params.clone();
    let batch = options
        .batch_size
        .unwrap_or(train_rows.len())
        .clamp(1, train_rows.len());
    for epoch in 1..=options.epochs {
        if step >= max_steps {
            reason = format!("--max-iter {max_steps} steps reached");
            break;
        }
        epochs_run = epoch;
        train_rows.shuffle(&mut rng);
        // Honour --max-iter inside the epoch by truncating its row order.
        let allowed = (max_steps - step)
            .saturating_mul(batch)
            .min(train_rows.len());
        let order: Vec<u32> = train_rows[..allowed].iter().map(|&r| r as u32).collect();
        let losses = gpu.train_epoch(&order, hyper, step as u32)?;
        let sizes: Vec<usize> = order.chunks(batch).map(|c| c.len()).collect();
        if let Some(bad) = losses.iter().position(|l| !l.is_finite()) {
            gpu.set_params(&epoch_start);
            *params = epoch_start;
            converged = false;
            reason = format!(
                "diverged at step {}: the loss became {}; kept the parameters from the start of epoch {epoch} (try a smaller --lr)",
                step + bad + 1,
                losses[bad]
            );
            return Ok(TrainReport {
                steps: step + bad + 1,
                epochs: epoch,
                converged,
                reason,
                history,
                log_prior: None,
            });
        }
        if options.log_every > 0 {
            for (chunk_losses, chunk_sizes) in losses
                .chunks(options.log_every)
                .zip(sizes.chunks(options.log_every))
            {
                let point = LossPoint {
                    epoch,
                    step: step + chunk_losses.len(),
                    train_mean_nll: chunk_losses.iter().sum::<f64>()
                        / chunk_sizes.iter().sum::<usize>() as f64,
                    validation_mean_nll: None,
                };
                step += chunk_losses.len();
                if chunk_losses.len() == options.log_every {
                    progress(&point);
                    history.push(point);
                }
            }
        } else {
            step += losses.len();
        }
        *params = gpu.read_params()?;
        epoch_start = params.clone();
        if options.log_every == 0 || !validation_rows.is_empty() {
            let validation = if validation_rows.is_empty() {
                None
            } else {
                Some(gpu.nll(&validation_rows)? / validation_rows.len() as f64)
            };
            let point = LossPoint {
                epoch,
                step,
                train_mean_nll: losses.iter().sum::<f64>() / order.len() as f64,
                validation_mean_nll: validation,
            };
            progress(&point);
            history.push(point);
            if let Some(stop) = validation.and_then(|val| early.observe(val, params)) {
                reason = stop;
                break;
            }
        }
    }
    if let Some(best_params) = early.best {
        *params = best_params;
    }
    let log_prior = options.prior.map(|pr| pr.log_density(params, &mask));
    Ok(TrainReport {
        steps: step,
        epochs: epochs_run,
        converged,
        reason,
        history,
        log_prior,
    })
}
