//! `likely fit --model ...`, `likely eval`, `likely predict`.

use super::fit::OptimizerArg;
use super::EngineArgs;
use likely::data::{load_table, TargetSpec};
use likely::engine::Backend;
use likely::family::FamilyName;
use likely::fit::Prior;
use likely::gpu::context::best_is_hardware;
use likely::gpu::mlp::GpuNetwork;
use likely::gpu::GpuContext;
use likely::model::{Activation, Head, Model, ModelKind, ModelOptimizer, Network, TrainOptions};
use likely::util::json_f64;
use likely::Error;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Flags of `fit` that apply to conditional models.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// Fit a conditional model y | x ~ family(f(x)) instead of a family to one column.
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    /// The target column (the model's y).
    #[arg(long)]
    pub target: Option<String>,
    /// Feature columns, comma-separated (default: every column but the target).
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Linear models: no intercept.
    #[arg(long)]
    pub no_intercept: bool,
    /// MLP hidden widths, e.g. 32 or 64,32.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Hidden-layer activation (default relu).
    #[arg(long, value_enum)]
    pub activation: Option<Activation>,
    /// SGD momentum (as torch.optim.SGD; default 0).
    #[arg(long)]
    pub momentum: Option<f64>,
    /// AdamW's decoupled weight decay (default 0.01, torch.optim.AdamW's).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Minibatch size (default: 1024 for sgd/adam/adamw, the full batch for lbfgs).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Passes over the training rows (sgd/adam/adamw; default 20).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Hold out this fraction of rows for early stopping (sgd/adam/adamw).
    #[arg(long)]
    pub validation: Option<f64>,
    /// Epochs without validation improvement before stopping (default 5).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Report the training loss every N steps (default: every epoch).
    #[arg(long)]
    pub log_every: Option<usize>,
    /// Write the fitted model to this JSON file (atomically).
    #[arg(long)]
    pub save: Option<PathBuf>,
}

impl ModelArgs {
    fn epochs(&self) -> usize {
        self.epochs.unwrap_or(20)
    }
    fn momentum(&self) -> f64 {
        self.momentum.unwrap_or(0.0)
    }
    fn weight_decay(&self) -> f64 {
        self.weight_decay.unwrap_or(0.01)
    }

    /// Model-only flags given without --model are mistakes, not silently ignored.
    pub fn reject_without_model(&self) -> likely::Result<()> {
        let given = [
            (self.target.is_some(), "--target"),
            (self.features.is_some(), "--features"),
            (self.no_intercept, "--no-intercept"),
            (self.hidden.is_some(), "--hidden"),
            (self.batch_size.is_some(), "--batch-size"),
            (self.validation.is_some(), "--validation"),
            (self.activation.is_some(), "--activation"),
            (self.momentum.is_some(), "--momentum"),
            (self.weight_decay.is_some(), "--weight-decay"),
            (self.epochs.is_some(), "--epochs"),
            (self.patience.is_some(), "--patience"),
            (self.log_every.is_some(), "--log-every"),
            (self.save.is_some(), "--save"),
        ];
        match given.iter().find(|(g, _)| *g) {
            Some((_, flag)) => Err(Error::Usage(format!(
                "{flag} applies to models: add --model linear or --model mlp"
            ))),
            None => Ok(()),
        }
    }
}

/// The GPU context a model fit should use, or `None` for the CPU engine.
fn gpu_for_models(engine: &EngineArgs) -> likely::Result<Option<GpuContext>> {
    let selector = engine.selector();
    let use_gpu = match engine.backend {
        Backend::Cpu => false,
        Backend::Gpu => true,
        Backend::Auto => best_is_hardware(&selector),
    };
    use_gpu.then(|| GpuContext::new(&selector)).transpose()
}

#[allow(clippy::too_many_arguments)]
pub fn fit_model(
    family: FamilyName,
    data: &Path,
    prior: Option<Prior>,
    optimizer: Option<OptimizerArg>,
    max_iter: Option<usize>,
    lr: Option<f64>,
    seed: u64,
    engine: &EngineArgs,
    as_json: bool,
    args: &ModelArgs,
    inference_args: &super::report::InferenceArgs,
    gpu_memory: Option<u64>,
) -> likely::Result<i32> {
    let kind = args.model.expect("called with --model");
    inference_args.validate()?;
    if inference_args.ci == super::report::CiMethod::Profile && kind != ModelKind::Linear {
        return Err(Error::Usage(
            "--ci profile applies to families and linear models; MLPs get no intervals".into(),
        ));
    }
    let gpu_context = gpu_for_models(engine)?;
    if let (Some(ctx), Some(bytes)) = (&gpu_context, gpu_memory) {
        ctx.set_memory_budget(bytes);
    }
    let target = args
        .target
        .as_deref()
        .ok_or_else(|| Error::Usage("--model needs --target COLUMN".into()))?;
    if kind == ModelKind::Linear && args.hidden.is_some() {
        return Err(Error::Usage("--hidden applies to --model mlp".into()));
    }
    if kind == ModelKind::Mlp && args.no_intercept {
        return Err(Error::Usage(
            "--no-intercept applies to --model linear".into(),
        ));
    }
    if let Some(v) = args.validation {
        if !(v > 0.0 && v < 1.0) {
            return Err(Error::Usage(format!(
                "--validation must be a fraction in (0, 1), got {v}"
            )));
        }
    }
    if args.batch_size == Some(0) || args.epochs() == 0 {
        return Err(Error::Usage(
            "--batch-size and --epochs must be at least 1".into(),
        ));
    }
    if !(args.weight_decay() >= 0.0 && args.momentum() >= 0.0 && args.momentum() < 1.0) {
        return Err(Error::Usage(
            "--weight-decay must be >= 0 and --momentum in [0, 1)".into(),
        ));
    }
    let table = load_table(
        data,
        target,
        args.features.as_deref(),
        TargetSpec::Train {
            allow_labels: family == FamilyName::Categorical,
        },
    )?;
    let y = table.y.clone().expect("training tables have a target");
    let classes = if family == FamilyName::Categorical {
        let seen = table.labels.as_ref().map_or_else(
            || y.iter().fold(0.0f64, |m, &v| m.max(v)) as usize + 1,
            |l| l.len(),
        );
        if seen < 2 {
            return Err(Error::data(
                data,
                "",
                format!("target '{target}' has a single class: nothing to classify"),
            ));
        }
        seen
    } else {
        1
    };
    let head = Head {
        family,
        classes,
        reference: kind == ModelKind::Linear,
    };
    let support = family.build(classes);
    for (r, &v) in y.iter().enumerate() {
        if let Some(why) = support.support_error(v) {
            return Err(Error::data(
                data,
                format!("row {} (line {}), column '{target}'", r + 1, r + 2),
                format!("{why} of the {} family", family.as_str()),
            ));
        }
    }
    let hidden = match kind {
        ModelKind::Linear => Vec::new(),
        ModelKind::Mlp => args.hidden.clone().unwrap_or_else(|| vec![32]),
    };
    if hidden.contains(&0) {
        return Err(Error::Usage("--hidden widths must be at least 1".into()));
    }
    let network = Network {
        inputs: table.features.len(),
        hidden,
        activation: args.activation.unwrap_or(Activation::Relu),
        head,
    };
    let optimizer = match optimizer.unwrap_or(if kind == ModelKind::Linear {
        OptimizerArg::Lbfgs
    } else {
        OptimizerArg::Adamw
    }) {
        OptimizerArg::Lbfgs => ModelOptimizer::Lbfgs,
        OptimizerArg::Adam => ModelOptimizer::Adam,
        OptimizerArg::Adamw => ModelOptimizer::Adamw,
        OptimizerArg::Sgd => ModelOptimizer::Sgd,
        OptimizerArg::Newton => ModelOptimizer::Newton,
    };
    // Flags of other optimisers are mistakes, not silently ignored.
    let full_batch = matches!(optimizer, ModelOptimizer::Lbfgs | ModelOptimizer::Newton);
    let misplaced = [
        (
            args.momentum.is_some() && optimizer != ModelOptimizer::Sgd,
            "--momentum applies to --optimizer sgd",
        ),
        (
            args.weight_decay.is_some() && optimizer != ModelOptimizer::Adamw,
            "--weight-decay applies to --optimizer adamw (an L2 penalty for any optimiser: --prior l2:SCALE)",
        ),
        (
            full_batch
                && (args.epochs.is_some()
                    || args.batch_size.is_some()
                    || args.validation.is_some()
                    || args.patience.is_some()),
            "--epochs, --batch-size, --validation and --patience apply to sgd, adam and adamw; lbfgs and newton are full-batch and run to convergence (--max-iter bounds them)",
        ),
        (
            kind == ModelKind::Linear && args.activation.is_some(),
            "--activation applies to --model mlp",
        ),
    ];
    if let Some((_, why)) = misplaced.iter().find(|(given, _)| *given) {
        return Err(Error::Usage(why.to_string()));
    }
    // Newton's Hessian is reduced on the CPU engine.
    let gpu_context = if optimizer == ModelOptimizer::Newton && engine.backend != Backend::Gpu {
        None
    } else {
        gpu_context
    };
    let intercept = !(kind == ModelKind::Linear && args.no_intercept);
    let mut frozen = vec![false; network.param_count()];
    if !intercept {
        let l = network.layers()[0];
        frozen[l.bias..l.bias + l.fan_out]
            .iter_mut()
            .for_each(|f| *f = true);
    }
    let options = TrainOptions {
        optimizer,
        lr: lr.unwrap_or(if optimizer == ModelOptimizer::Sgd {
            0.01
        } else {
            1e-3
        }),
        momentum: args.momentum(),
        weight_decay: if optimizer == ModelOptimizer::Adamw {
            args.weight_decay()
        } else {
            0.0
        },
        batch_size: if optimizer == ModelOptimizer::Lbfgs {
            None
        } else {
            Some(args.batch_size.unwrap_or(1024))
        },
        epochs: args.epochs(),
        max_iter,
        seed,
        prior,
        validation: args.validation,
        patience: args.patience.unwrap_or(5).max(1),
        log_every: args.log_every.unwrap_or(0),
        frozen,
    };
    let mut params = network.init(seed, &y);
    let started = std::time::Instant::now();
    // A progress bar on stderr: hidden with --json, and by indicatif when stderr is not a terminal.
    // Full-batch fits (L-BFGS, Newton) have no epochs to count: a spinner with the iteration.
    let full_batch = optimizer == ModelOptimizer::Lbfgs || optimizer == ModelOptimizer::Newton;
    let bar = if as_json {
        indicatif::ProgressBar::hidden()
    } else if full_batch {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} iteration {pos} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    } else {
        let bar = indicatif::ProgressBar::new(args.epochs() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    let rows_per_epoch = table.n as f64 * (1.0 - args.validation.unwrap_or(0.0));
    let report_progress = |p: &likely::model::train::LossPoint| {
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let rate = (p.epoch.saturating_sub(1) as f64 * rows_per_epoch + rows_per_epoch) / elapsed;
        let val = p
            .validation_mean_nll
            .map_or(String::new(), |v| format!(", validation {v:.5}"));
        bar.set_position(p.epoch as u64);
        bar.set_message(format!(
            "loss {:.5}{val}, {:.3e} samples/s",
            p.train_mean_nll, rate
        ));
    };
    let wants_hessian = kind == ModelKind::Linear
        && family != FamilyName::Laplace
        && network.param_count() <= likely::gpu::mlp::MAX_NEWTON_PARAMS;
    let (report, engine_name, adapter, hessian) = match &gpu_context {
        Some(ctx) => {
            let constants = network.head.row_constants(&y);
            let batch = options
                .batch_size
                .unwrap_or_else(|| GpuNetwork::full_batch_rows(&network, table.n));
            let gpu = GpuNetwork::new(
                ctx,
                &network,
                &table.x,
                &y,
                &constants,
                &options.frozen,
                batch,
            )?;
            let report =
                likely::model::train_gpu(&gpu, &network, &mut params, &options, report_progress)?;
            // Observed information of a linear model, reduced on the GPU.
            let hessian = if wants_hessian {
                Some(gpu.derivatives(&params)?.2)
            } else {
                None
            };
            (report, "gpu", ctx.adapter_label(), hessian)
        }
        None => {
            let report = likely::model::train(
                &network,
                &mut params,
                &table.x,
                &y,
                &options,
                report_progress,
            )?;
            let hessian = if wants_hessian {
                Some(likely::model::newton::derivatives(&network, &params, &table.x, &y)?.2)
            } else {
                None
            };
            (
                report,
                "cpu",
                format!("host CPU, {} threads, f64", rayon::current_num_threads()),
                hessian,
            )
        }
    };
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let labels = match (&table.labels, family) {
        (Some(l), _) => Some(l.clone()),
        (None, FamilyName::Categorical) => Some((0..classes).map(|k| k.to_string()).collect()),
        _ => None,
    };
    let model = Model {
        kind,
        network,
        params,
        features: table.features.clone(),
        target: target.to_string(),
        labels,
        string_labels: table.labels.is_some(),
        intercept,
        training: json!({ "data": data.display().to_string(), "n": table.n, "optimizer": optimizer, "seed": seed, "report": report }),
    };
    let eval = model.evaluate(&table.x, &y);
    let separation = model.separation(&table.x, &y);
    let mut inference = (kind == ModelKind::Linear).then(|| {
        likely::inference::for_linear_model(
            &model,
            &table.x,
            &y,
            hessian,
            eval.nll,
            &options.frozen,
            prior,
            inference_args.cov,
            inference_args.alpha,
        )
    });
    if let (Some(inf), super::report::CiMethod::Profile) = (inference.as_mut(), inference_args.ci) {
        let objective_hat = eval.nll - report.log_prior.unwrap_or(0.0);
        likely::inference::profile_linear_model(
            &model,
            &table.x,
            &y,
            &options.frozen,
            prior,
            objective_hat,
            inference_args.alpha,
            inf,
        )?;
    }
    let keep: Vec<usize> = (0..model.network.param_count())
        .filter(|&j| !options.frozen[j])
        .collect();
    let keyed = |values: &[f64]| {
        let mut full = vec![None; model.network.param_count()];
        keep.iter()
            .zip(values)
            .for_each(|(&j, &v)| full[j] = Some(v));
        model.keyed(&full)
    };
    if let Some(path) = &args.save {
        model.save(path)?;
    }
    if as_json {
        let mut out = json!({
            "model": kind,
            "family": family.as_str(),
            "n": table.n,
            "target": target,
            "features": table.features,
            "nll": json_f64(eval.nll),
            "mean_nll": json_f64(eval.mean_nll),
            "converged": report.converged,
            "reason": report.reason,
            "iterations": report.steps,
            "epochs": report.epochs,
            "optimizer": optimizer,
            "engine": engine_name,
            "adapter": adapter,
            "seed": seed,
            "seconds": seconds,
            "history": report.history,
        });
        if let Some(c) = model.coefficients() {
            out["coefficients"] = c;
        }
        match &inference {
            Some(inf) => super::report::add_json(&mut out, inf, &Vec::new(), Some(&keyed)),
            None => {
                out["std_errors"] = Value::Null;
                out["inference"] = json!(MLP_NO_SE);
                out["llf"] = json_f64(-eval.nll);
            }
        }
        out["separation"] = json!(separation);
        if let Some(a) = eval.accuracy {
            out["accuracy"] = json_f64(a);
        }
        if let Some((name, v)) = model.global() {
            out[name] = json_f64(v);
        }
        if let Some(l) = &model.labels {
            out["labels"] = json!(l);
        }
        if let (Some(p), Some(lp)) = (prior, report.log_prior) {
            out["prior"] = json!(p.to_string());
            out["log_prior"] = json_f64(lp);
            out["log_posterior"] = json_f64(lp - eval.nll);
        }
        if let Some(path) = &args.save {
            out["saved"] = json!(path.display().to_string());
        }
        println!("{out}");
    } else {
        println!(
            "{kind:?} {} model of '{target}' on {} features, n = {}",
            family.as_str(),
            table.features.len(),
            table.n
        );
        println!("engine: {engine_name} on {adapter}");
        match &inference {
            Some(inf) => {
                super::report::print_table(inf, &format!("{:?}", inference_args.ci).to_lowercase())
            }
            None => {
                println!("{MLP_NO_SE}");
                if let Some((name, v)) = model.global() {
                    println!("  {name} = {v:.10}");
                }
            }
        }
        println!(
            "  NLL = {:.10}   mean NLL = {:.10}",
            eval.nll, eval.mean_nll
        );
        if let Some(a) = eval.accuracy {
            println!("  accuracy = {a:.6}");
        }
        println!(
            "{} ({}) after {} steps, {seconds:.3} s",
            if report.converged { "done" } else { "STOPPED" },
            report.reason,
            report.steps
        );
        if let Some(path) = &args.save {
            println!("saved to {}", path.display());
        }
    }
    for w in &separation {
        eprintln!("warning: {w}: the MLE does not exist; coefficients drift and their standard errors are meaningless (a prior, e.g. --prior l2:10, gives a MAP estimate)");
    }
    if !report.converged {
        eprintln!("warning: {}", report.reason);
    }
    Ok(0)
}

const MLP_NO_SE: &str = "standard errors are not reported for MLPs: their parameters are not identified (hidden units can be permuted and rescaled), so the asymptotics behind standard errors do not apply";

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A model file written by `likely fit --save`.
    #[arg(long)]
    model: PathBuf,
    /// CSV or Parquet file with the model's feature columns and its target.
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> likely::Result<i32> {
    let model = Model::load(&args.model)?;
    let table = load_table(
        &args.data,
        &model.target,
        Some(&model.features),
        TargetSpec::Known {
            labels: model
                .string_labels
                .then_some(model.labels.as_deref())
                .flatten(),
            optional: false,
        },
    )?;
    model.check_table(&table)?;
    let y = table.y.as_ref().expect("target required");
    let support = model.family().build(model.network.head.classes);
    for (r, &v) in y.iter().enumerate() {
        if let Some(why) = support.support_error(v) {
            let msg = if model.family() == FamilyName::Categorical {
                format!("class {v} was not seen in training ({why})")
            } else {
                why
            };
            return Err(Error::data(
                &args.data,
                format!("row {} (line {}), column '{}'", r + 1, r + 2, model.target),
                msg,
            ));
        }
    }
    let e = model.evaluate(&table.x, y);
    if args.json {
        let mut out = json!({ "n": e.n, "nll": json_f64(e.nll), "mean_nll": json_f64(e.mean_nll), "model": model.kind, "family": model.family().as_str() });
        if let Some(a) = e.accuracy {
            out["accuracy"] = json_f64(a);
        }
        println!("{out}");
    } else {
        println!(
            "n = {}   NLL = {:.10}   mean NLL = {:.10}",
            e.n, e.nll, e.mean_nll
        );
        if let Some(a) = e.accuracy {
            println!("accuracy = {a:.6}");
        }
    }
    Ok(0)
}

#[derive(clap::Args)]
pub struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    /// CSV or Parquet file with the model's feature columns (the target may be absent).
    #[arg(long)]
    data: PathBuf,
    /// Write predictions here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn predict(args: PredictArgs) -> likely::Result<i32> {
    let model = Model::load(&args.model)?;
    let table = load_table(
        &args.data,
        &model.target,
        Some(&model.features),
        TargetSpec::Ignore,
    )?;
    model.check_table(&table)?;
    let rows = model.predict(&table.x, table.n);
    let mut text = model.prediction_columns().join(",") + "\n";
    for r in rows {
        text += &r
            .iter()
            .map(|v| format!("{v}"))
            .collect::<Vec<_>>()
            .join(",");
        text.push('\n');
    }
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|source| Error::Io {
                path: "<stdout>".into(),
                source,
            })?,
    }
    Ok(0)
}
