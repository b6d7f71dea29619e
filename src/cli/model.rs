//! `likely fit --model ...`, `likely eval`, `likely predict`.

use super::fit::OptimizerArg;
use super::EngineArgs;
use likely::data::{load_table_with_log, FileFormat, Table, TableStream, TargetSpec};
use likely::engine::Backend;
use likely::family::FamilyName;
use likely::gpu::context::best_is_hardware;
use likely::gpu::mlp::GpuNetwork;
use likely::gpu::GpuContext;
use likely::inference::{CovType, LinearSums};
use likely::model::stream::{
    summarize, survey, train_streamed, ChunkEngine, StreamedProblem, Summary, Survey, MAX_CLASSES,
    ORDERED_TARGET_RATIO,
};
use likely::model::train::FullBatch;
use likely::model::{
    Activation, Head, Model, ModelKind, ModelOptimizer, Network, Offset, TrainOptions,
};
use likely::util::json_f64;
use likely::Error;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// What a Gaussian linear model reports: mle (default: standard errors at the MLE sigma,
    /// z statistics) or ols (statsmodels' OLS: the unbiased scale, t statistics with n - p
    /// degrees of freedom, R^2, adjusted R^2 and the F test).
    #[arg(long, value_enum)]
    pub report: Option<Report>,
    /// Hold a parameter at a value instead of estimating it, as NAME=VALUE: for a family fit
    /// any of its scalar parameters (scipy's f0 and floc: shape=2, mu=0); for a model the
    /// head's global, alpha for a negative-binomial head (statsmodels' GLM
    /// NegativeBinomial(alpha)), phi for a beta head, shape for a gamma or Weibull head.
    /// Reported under `fixed`, without a standard error, and not counted in k.
    #[arg(long, value_name = "NAME=VALUE")]
    pub fix: Option<String>,
    /// The link g of the model's mean, eta = g(mu): bernoulli logit (default), probit,
    /// cloglog; poisson log (default), identity; gamma log (default), inverse, identity;
    /// gaussian identity (default), log. Links other than the default run on the CPU engine.
    #[arg(long, value_enum)]
    pub link: Option<likely::family::MeanLink>,
    /// Linear models: a column added to the linear predictor with coefficient 1, eta = x b +
    /// offset (statsmodels' and R's offset); needed again by eval and predict.
    #[arg(long, value_name = "COLUMN")]
    pub offset: Option<String>,
    /// Linear models: a column whose logarithm is the offset (statsmodels' exposure): a rate
    /// model, e.g. a Poisson model of counts per unit of time or population at risk; every
    /// value must be positive.
    #[arg(long, value_name = "COLUMN")]
    pub exposure: Option<String>,
}

/// The global `--fix` can hold in each head that has one, by name: those fitted by Newton on
/// every parameter (the Gaussian, Laplace and lognormal heads' scale comes out of an exact
/// solve) and free of the data's units (a t head's df, not its sigma).
fn fixable_global(family: FamilyName) -> Option<&'static str> {
    match family {
        FamilyName::NegativeBinomial => Some("alpha"),
        FamilyName::Beta => Some("phi"),
        FamilyName::Gamma | FamilyName::Weibull => Some("shape"),
        FamilyName::StudentT => Some("df"),
        _ => None,
    }
}

/// `--fix NAME=VALUE`: the head's global (its name checked) and its positive value.
fn fixed_global(fit: &super::fit::FitArgs) -> likely::Result<Option<(&'static str, f64)>> {
    let Some(text) = fit.model.fix.as_deref() else {
        return Ok(None);
    };
    let Some(global) = fixable_global(fit.family) else {
        return Err(Error::Usage(format!(
            "--fix holds a negative-binomial head's alpha, a beta head's phi, a gamma or \
             Weibull head's shape or a student-t head's df; a {} model has none it can hold",
            fit.family.as_str()
        )));
    };
    let (name, value) = super::fit::split_fix(text, &format!("{global}=0.5"))?;
    if name != global {
        let globals = fit.family.conditional().global_names();
        return Err(Error::Usage(if globals.len() > 1 {
            format!(
                "--fix '{name}': of a {} head's global parameters ({}) --fix holds {global} \
                 (--fix {global}=VALUE)",
                fit.family.as_str(),
                globals.join(", ")
            )
        } else {
            format!(
                "--fix '{name}': a {} head's global parameter is {global} (--fix {global}=VALUE)",
                fit.family.as_str()
            )
        }));
    }
    // A normal positive double: below f64's normal range the logarithm the fit holds is
    // that of a rounded value.
    let value: f64 = value
        .parse()
        .ok()
        .filter(|v: &f64| *v >= f64::MIN_POSITIVE && v.is_finite())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--fix {global}={value}: the value must be a positive number"
            ))
        })?;
    Ok(Some((global, value)))
}

/// `--report`: the maximum-likelihood summary, or statsmodels' OLS summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    #[default]
    Mle,
    Ols,
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
            (self.report.is_some(), "--report"),
            (self.link.is_some(), "--link"),
            (self.offset.is_some(), "--offset"),
            (self.exposure.is_some(), "--exposure"),
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
fn gpu_for_models(engine: &EngineArgs, cpu_only: bool) -> likely::Result<Option<GpuContext>> {
    let selector = engine.selector();
    let use_gpu = match engine.backend {
        Backend::Cpu => false,
        Backend::Gpu => true,
        // Heads the GPU kernels do not carry (a link other than the native one, two
        // globals) run on the CPU engine; asked for, the GPU refuses them (check_model_flags).
        Backend::Auto => best_is_hardware(&selector) && !cpu_only,
    };
    use_gpu.then(|| GpuContext::new(&selector)).transpose()
}

/// Where a model fit's rows are and where the work runs.
enum Rows {
    /// The table in host memory, on the CPU engine.
    Memory(Arc<Table>),
    /// The table in host memory and in GPU buffers.
    Resident(Arc<Table>, GpuNetwork),
    /// The table read chunk by chunk (from the file, or from memory through a GPU whose
    /// budget it exceeds), each chunk worked on by the CPU engine or loaded into the GPU.
    Chunked(TableStream, Option<GpuNetwork>),
}

/// A training table's targets (it was read with one).
fn targets(table: &Table) -> &[f64] {
    table.y.as_deref().expect("training tables have a target")
}

/// The engine a chunked pass hands each chunk to: the GPU network where there is one.
fn chunk_engine(gpu: &Option<GpuNetwork>) -> ChunkEngine<'_> {
    gpu.as_ref().map_or(ChunkEngine::Cpu, ChunkEngine::Gpu)
}

/// Host bytes per table row a fit holds with the table in memory: the f64 table (features
/// and target), Newton's warm start on every 8th row, and a full pass's row indices and
/// per-row values (16 bytes). Measured: 5e6 rows of 10 features from Parquet peak at 663 MB,
/// 583 MB above the process's own 80; this gives 575 MB.
fn in_memory_bytes_per_row(features: usize) -> u64 {
    let table = 8 * (features as u64 + 1);
    table + table / 8 + 16
}

/// Bytes per table row a chunked pass holds on the host: chunks in flight, the working copy
/// of a minibatch pass, and the GPU's f32 staging.
fn host_bytes_per_row(columns: usize) -> u64 {
    8 * 8 * (columns as u64 + 1)
}

/// The table and the checks of its targets: the rows, the classes, and the targets the
/// head's starting values and Newton's warm start are taken from.
struct Prepared {
    n: usize,
    features: Vec<String>,
    labels: Option<Vec<String>>,
    classes: usize,
    survey: Option<Survey>,
}

pub fn fit_model(
    fit: &super::fit::FitArgs,
    gpu_memory: Option<u64>,
    host_budget: u64,
) -> likely::Result<i32> {
    let (family, prior, seed) = (fit.family, fit.prior, fit.seed);
    let (engine, args, inference_args) = (&fit.engine, &fit.model, &fit.inference);
    let kind = args.model.expect("called with --model");
    let target = check_model_flags(fit, kind)?;
    if let Some(save) = &args.save {
        likely::util::refuse_overwriting_input("--save", save, &[("--data", &fit.data)])?;
    }
    let requested = model_optimizer(fit, kind)?;
    let cpu_only = GpuNetwork::refusal(&Network {
        inputs: 1,
        hidden: Vec::new(),
        activation: Activation::Relu,
        head: head_for(fit, kind, 1)?,
    })
    .is_some();
    let gpu_context = gpu_for_models(engine, cpu_only)?;
    // Newton's passes run on the CPU engine (f64) unless the GPU is asked for: on a GPU they
    // are f32 and the fit finishes on f64 sums on the CPU anyway.
    let newton_default =
        requested.is_none() && kind == ModelKind::Linear && engine.backend != Backend::Gpu;
    let gpu_context = if (requested == Some(ModelOptimizer::Newton) || newton_default)
        && engine.backend != Backend::Gpu
    {
        None
    } else {
        gpu_context
    };
    if let Some(ctx) = &gpu_context {
        ctx.set_memory_budget(gpu_memory.unwrap_or_else(|| ctx.adapter().max_buffer.min(2 << 30)));
    }

    let reading = std::time::Instant::now();
    let offset = offset_of(fit, kind)?;
    let features = model_features(fit, target, offset.as_ref())?;
    let (rows, mut prepared) = read_training_table(fit, target, features.as_deref(), host_budget)?;
    // Null where the table is streamed: it is read during the fit.
    let read_seconds = matches!(rows, Rows::Memory(_)).then(|| reading.elapsed().as_secs_f64());
    let fitting = std::time::Instant::now();
    let network = network_for(fit, kind, target, &prepared, host_budget)?;
    let optimizer = match (requested, kind) {
        (Some(o), _) => o,
        (None, ModelKind::Linear) => likely::model::linear::default_optimizer(&network, prior),
        (None, ModelKind::Mlp) => ModelOptimizer::Adamw,
    };
    let gpu_context = if optimizer == ModelOptimizer::Newton && engine.backend != Backend::Gpu {
        None
    } else {
        gpu_context
    };
    let full_batch = matches!(optimizer, ModelOptimizer::Lbfgs | ModelOptimizer::Newton);
    let coefficients = prepared.features.len() + usize::from(has_intercept(args, kind));
    if kind == ModelKind::Linear
        && matches!(family, FamilyName::Gaussian | FamilyName::Laplace)
        && prepared.n <= coefficients
    {
        // The fit passes through every row: the scale's MLE is 0 and the likelihood unbounded.
        return Err(Error::data(
            fit.data.as_path(),
            "",
            format!(
                "{} rows for {coefficients} coefficients: a linear {} model interpolates them \
                 (its scale's MLE is 0, the likelihood unbounded); it needs more rows than \
                 coefficients",
                prepared.n,
                family.as_str()
            ),
        ));
    }
    let mut options = train_options(fit, optimizer, &network);
    // The data conditioned: features centred (with an intercept) and scaled by powers of two,
    // and the target of a Gaussian or Laplace head too; the fit runs in those coordinates.
    let mut cond = conditioning(&rows, &prepared, &network, has_intercept(args, kind))?;
    // The offset column is taken as it is (its coefficient is held at 1, not solved for);
    // with an intercept its mean moves the start's intercept instead.
    let offset_mean = offset.as_ref().map(|_| {
        let j = network.inputs - 1;
        let mean = cond.center[j];
        cond.center[j] = 0.0;
        cond.inv_scale[j] = 1.0;
        mean
    });
    options.prior_factors = Some(cond.prior_factors(&network));
    let nll_offset = cond.target_scale().ln();
    let start = |y: Vec<f64>| {
        let mut params = network.init(seed, &y);
        if kind == ModelKind::Linear && has_intercept(args, kind) {
            network.start_at_intercept_only(&mut params, &y);
        }
        params
    };
    let mut params = match (&rows, &prepared.survey) {
        (Rows::Memory(table), _) => start(targets(table).iter().map(|&v| cond.target(v)).collect()),
        (_, Some(survey)) => start(survey.sample_y.iter().map(|&v| cond.target(v)).collect()),
        _ => unreachable!("a streamed table has its survey"),
    };
    if let Some(mean) = offset_mean {
        // Coefficient 1 in the data's units is 1 / t on a target conditioned by its scale t
        // (a power of two: exact both ways).
        let layer = network.layers()[0];
        let at = layer.weights + (network.inputs - 1) * layer.fan_out;
        params[at] = 1.0 / cond.target_scale();
        options.frozen[at] = true;
        if let Some(factors) = options.prior_factors.as_mut() {
            factors[at] = 0.0;
        }
        if has_intercept(args, kind) {
            params[layer.bias] -= mean / cond.target_scale();
        }
    }
    // --fix: the global (optimised as its logarithm) held where the user put it.
    let fixed = fixed_global(fit)?;
    if let Some((name, value)) = fixed {
        let global = family
            .conditional()
            .global_names()
            .iter()
            .position(|g| *g == name);
        let at = network.globals_offset() + global.unwrap_or(0);
        params[at] = value.ln();
        options.frozen[at] = true;
    }

    let mut rows = match &gpu_context {
        Some(ctx) => place_on_gpu(rows, ctx, &network, &options, &mut prepared, family, &cond)?,
        None => rows,
    };
    if let (Rows::Chunked(table, _), Some(survey), false) = (&rows, &prepared.survey, full_batch) {
        warn_if_ordered_by_target(survey, table, target);
    }

    let started = std::time::Instant::now();
    let bar = progress_bar(fit.json, full_batch, args.epochs());
    let rows_per_epoch = prepared.n as f64 * (1.0 - args.validation.unwrap_or(0.0));
    let mut report_progress = |p: &likely::model::train::LossPoint| {
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let rate = (p.epoch.saturating_sub(1) as f64 * rows_per_epoch + rows_per_epoch) / elapsed;
        let val = p.validation_mean_nll.map_or(String::new(), |v| {
            format!(", validation {:.5}", v + nll_offset)
        });
        bar.set_position(p.epoch as u64);
        bar.set_message(format!(
            "loss {:.5}{val}, {:.3e} samples/s",
            p.train_mean_nll + nll_offset,
            rate
        ));
    };
    let wants_outer = kind == ModelKind::Linear && inference_args.cov != CovType::Hessian;
    let mut trained = if kind == ModelKind::Linear && full_batch {
        fit_linear_rows(
            &mut rows,
            &network,
            &cond,
            params,
            &options,
            &prepared,
            &gpu_context,
            &mut report_progress,
        )?
    } else {
        let report = train_rows(
            &mut rows,
            &network,
            &mut params,
            &cond,
            &options,
            &prepared,
            &gpu_context,
            report_progress,
        )?;
        minibatch_trained(report, kind, &mut rows, &network, &cond, params, &options)?
    };
    // The loss curve in the data's own units (the fit ran on the conditioned target).
    for point in &mut trained.report.history {
        point.train_mean_nll += nll_offset;
        if let Some(v) = point.validation_mean_nll.as_mut() {
            *v += nll_offset;
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let original = trained
        .original
        .clone()
        .unwrap_or_else(|| cond.to_original(&network, &trained.params));
    let model = fitted_model(
        fit,
        kind,
        target,
        &prepared,
        network,
        original,
        optimizer,
        &trained.report,
    );

    let summary = final_pass(
        &mut rows,
        &model,
        &cond,
        &trained.params,
        trained.hessian.take(),
        kind == ModelKind::Linear && family != FamilyName::Laplace,
        wants_outer,
    )?;
    let eval = summary.assessment.evaluation();
    let separation = summary.assessment.separation(&model);
    // Where the MLE does not exist, no point is its optimum, however small the gradient.
    // (Under an identity link the diagnosis is of a maximum on the boundary of the means'
    // domain instead: it exists, but no gradient test holds there.)
    let no_mle = !separation.is_empty();
    let on_boundary = !model.network.head.has_native_link();
    if no_mle && (full_batch || trained.report.converged) {
        trained.report.converged = false;
        trained.report.reason = format!(
            "{} (see the warning); the fit stopped: {}",
            if on_boundary {
                "the maximum lies on the boundary of the link's domain"
            } else {
                "the MLE does not exist"
            },
            trained.report.reason
        );
    }
    // An exact least-squares fit (sigma = 0) has no standard errors.
    let exact_fit = trained
        .warnings
        .iter()
        .any(|w| w == likely::model::linear::EXACT_FIT);
    let mut inference = (kind == ModelKind::Linear && !exact_fit).then(|| {
        likely::inference::for_linear_model_sums(
            &model,
            &LinearSums {
                n: prepared.n,
                nll: eval.nll,
                hessian: summary.hessian.clone(),
                outer: summary.outer.clone(),
                conditioned: Some((cond.clone(), trained.params.clone())),
            },
            &options.frozen,
            prior,
            inference_args.cov,
            inference_args.alpha,
        )
    });
    if let (Some(inf), super::report::CiMethod::Profile) = (inference.as_mut(), inference_args.ci) {
        profile_intervals(
            &mut rows,
            &model,
            &cond,
            &trained.params,
            fit,
            &options,
            prepared.n,
            inf,
        )?;
    }
    // statsmodels' OLS report, from the MLE inference (checked by check_model_flags).
    let ols = match (args.report, inference.as_mut()) {
        (Some(Report::Ols), Some(inf)) => {
            // The Gaussian null model's deviance: the targets' squares about their mean. A
            // model without an intercept is compared with the zero model instead, as
            // statsmodels' OLS without a constant: the uncentred sum of squares, the squares
            // about the mean plus n mean^2 (the null statistics hold the mean as hi + lo).
            let intercept = has_intercept(args, kind);
            let centred = eval.null.and_then(|null| null.deviance);
            let tss = match (intercept, eval.null_part.as_deref()) {
                (true, _) => centred,
                (false, Some(&[n, hi, lo, _])) => centred.map(|c| c + n * (hi + lo) * (hi + lo)),
                (false, _) => None,
            }
            .ok_or_else(|| Error::Usage("--report ols needs the targets' sum of squares".into()))?;
            let sigma = model.global().map_or(f64::NAN, |(_, v)| v);
            let coefficients = inf.estimates.len().saturating_sub(1);
            Some(likely::inference::ols_report(
                inf,
                coefficients,
                intercept,
                sigma,
                tss,
                prepared.n,
            )?)
        }
        (Some(Report::Ols), None) => {
            return Err(Error::Usage(
                "--report ols: the fit has no standard errors (an exact fit)".into(),
            ))
        }
        _ => None,
    };
    let fit_seconds = fitting.elapsed().as_secs_f64();
    if let Some(path) = &args.save {
        model.save(path)?;
    }
    // What the user must know comes before the report.
    for w in &trained.warnings {
        errln!("warning: {w}");
    }
    for w in &separation {
        if on_boundary {
            errln!("warning: {w}");
        } else {
            errln!("warning: {w}: the MLE does not exist; coefficients drift and their standard errors are meaningless (a prior, e.g. --prior l2:10, gives a MAP estimate)");
        }
    }
    let claims_optimum = full_batch;
    if !trained.report.converged && claims_optimum && !no_mle {
        errln!(
            "warning: the fit did not converge: {} (the optimality test measures {:.3e} standard errors; converged means at most {:.0e})",
            trained.report.reason,
            trained.decrement,
            likely::fit::DECREMENT_TOLERANCE
        );
    } else if !trained.report.converged && trained.report.reason.contains("diverged") {
        errln!("warning: {}", trained.report.reason);
    }
    let outcome = FitOutcome {
        fit,
        model: &model,
        prepared: &prepared,
        optimizer,
        trained: &trained,
        eval: &eval,
        inference: inference.as_ref(),
        ols: ols.as_ref(),
        fixed,
        separation: &separation,
        frozen: &options.frozen,
        seconds,
        read_seconds,
        fit_seconds,
        streamed: matches!(rows, Rows::Chunked(..)),
        f64_engine: match &rows {
            Rows::Resident(_, gpu) if gpu.has_exact_sums() => "gpu",
            _ => "cpu",
        },
    };
    if fit.json {
        outln!("{}", outcome.json());
    } else {
        outcome.print();
    }
    // Minibatch training stops by its epoch budget or early stopping, not by an optimality
    // test: it exits 0 unless it diverged.
    let failed =
        !trained.report.converged && (claims_optimum || trained.report.reason.contains("diverged"));
    Ok(if failed { super::EXIT_NOT_CONVERGED } else { 0 })
}

/// The conditioning of the training rows: from the table in memory, or the survey's sums.
fn conditioning(
    rows: &Rows,
    prepared: &Prepared,
    network: &Network,
    intercept: bool,
) -> likely::Result<likely::model::Conditioning> {
    // Centring and scaling the target maps a location-scale head's mean onto itself; a
    // log mean it would not.
    let location_scale = network.head.has_native_link()
        && matches!(
            network.head.family,
            FamilyName::Gaussian | FamilyName::Laplace
        );
    let stats = match (rows, &prepared.survey) {
        (Rows::Memory(table) | Rows::Resident(table, _), _) => {
            let mut stats = likely::model::ColumnStats::new(network.inputs + 1);
            stats.add(&table.x, targets(table));
            stats
        }
        (_, Some(survey)) => survey.stats.clone(),
        _ => unreachable!("a streamed table has its survey"),
    };
    Ok(likely::model::Conditioning::from_stats(
        &stats,
        intercept,
        location_scale,
    ))
}

/// The model flags' own checks (each a usage error); returns the target column.
fn check_model_flags(fit: &super::fit::FitArgs, kind: ModelKind) -> likely::Result<&str> {
    let (args, inference_args) = (&fit.model, &fit.inference);
    inference_args.validate()?;
    if inference_args.ci == super::report::CiMethod::Profile && kind != ModelKind::Linear {
        return Err(Error::Usage(
            "--ci profile applies to families and linear models; MLPs get no intervals".into(),
        ));
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
    let out_of_range = [
        (
            args.batch_size == Some(0),
            "--batch-size must be at least 1",
        ),
        (args.epochs() == 0, "--epochs must be at least 1"),
        (
            args.weight_decay().is_nan() || args.weight_decay() < 0.0,
            "--weight-decay must be >= 0",
        ),
        (
            !(args.momentum() >= 0.0 && args.momentum() < 1.0),
            "--momentum must be in [0, 1)",
        ),
    ];
    if let Some((_, why)) = out_of_range.iter().find(|(bad, _)| *bad) {
        return Err(Error::Usage(why.to_string()));
    }
    if args.hidden.as_ref().is_some_and(|h| h.contains(&0)) {
        return Err(Error::Usage("--hidden widths must be at least 1".into()));
    }
    fixed_global(fit)?;
    offset_of(fit, kind)?;
    let head = head_for(fit, kind, 1)?;
    if args.report == Some(Report::Ols) && !head.has_native_link() {
        return Err(Error::Usage(
            "--report ols is of the least-squares fit, a gaussian model at its identity link: \
             drop --link"
                .into(),
        ));
    }
    if fit.engine.backend == Backend::Gpu {
        let network = Network {
            inputs: 1,
            hidden: Vec::new(),
            activation: Activation::Relu,
            head,
        };
        if let Some(why) = GpuNetwork::refusal(&network) {
            return Err(Error::Usage(why));
        }
    }
    if args.report == Some(Report::Ols) {
        let why = if kind != ModelKind::Linear || fit.family != FamilyName::Gaussian {
            Some("--report ols applies to --model linear --family gaussian")
        } else if fit.prior.is_some() {
            Some("--report ols is of the unpenalised least-squares fit: drop --prior")
        } else if inference_args.cov != CovType::Hessian {
            Some("--report ols has its own covariance (the unbiased scale): drop --cov")
        } else if inference_args.ci != super::report::CiMethod::Wald {
            Some("--report ols gives Student-t intervals: drop --ci profile")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::Usage(why.into()));
        }
    }
    Ok(target)
}

/// The optimiser asked for (L-BFGS for linear models, AdamW for MLPs by default), refusing
/// the flags of other optimisers: they are mistakes, not silently ignored.
/// The optimiser asked for (`None`: the default, Newton or L-BFGS for linear models by their
/// size, AdamW for MLPs), refusing the flags of other optimisers: they are mistakes, not
/// silently ignored.
fn model_optimizer(
    fit: &super::fit::FitArgs,
    kind: ModelKind,
) -> likely::Result<Option<ModelOptimizer>> {
    let args = &fit.model;
    let requested = fit.optimizer.map(|o| match o {
        OptimizerArg::Lbfgs => ModelOptimizer::Lbfgs,
        OptimizerArg::Adam => ModelOptimizer::Adam,
        OptimizerArg::Adamw => ModelOptimizer::Adamw,
        OptimizerArg::Sgd => ModelOptimizer::Sgd,
        OptimizerArg::Newton => ModelOptimizer::Newton,
    });
    // For the flag checks: the defaults are full-batch for linear models, AdamW for MLPs.
    let optimizer = requested.unwrap_or(if kind == ModelKind::Linear {
        ModelOptimizer::Newton
    } else {
        ModelOptimizer::Adamw
    });
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
        (
            full_batch && fit.lr.is_some(),
            "--lr applies to sgd, adam and adamw; lbfgs and newton choose their own steps",
        ),
        (
            !full_batch && args.patience.is_some() && args.validation.is_none(),
            "--patience stops on the validation loss: it needs --validation FRACTION",
        ),
        (
            kind == ModelKind::Mlp && fit.inference.cov != CovType::Hessian,
            "--cov applies to families and linear models; MLPs get no standard errors",
        ),
    ];
    match misplaced.iter().find(|(given, _)| *given) {
        Some((_, why)) => Err(Error::Usage(why.to_string())),
        None => Ok(requested),
    }
}

/// Reads the training table into memory, or, where its in-memory footprint
/// ([`in_memory_bytes_per_row`]) exceeds the host budget (or with --stream), surveys it for
/// a chunked fit; either way every target is checked against the family's support.
fn read_training_table(
    fit: &super::fit::FitArgs,
    target: &str,
    features: Option<&[String]>,
    host_budget: u64,
) -> likely::Result<(Rows, Prepared)> {
    let (family, data) = (fit.family, fit.data.as_path());
    let exposure = fit.model.exposure.as_deref();
    let footprint = {
        let columns = TableStream::open(data, target, features, TargetSpec::Ignore)?;
        columns.estimated_rows()? as u64 * in_memory_bytes_per_row(columns.features.len())
    };
    let spec = TargetSpec::Train {
        allow_labels: family == FamilyName::Categorical,
    };
    if fit.stream || footprint > host_budget {
        let mut table = TableStream::open(data, target, features, spec)?;
        if let Some(column) = exposure {
            table.set_log_feature(column)?;
        }
        let row_budget = (host_budget / host_bytes_per_row(table.features.len())) as usize;
        table.set_chunk_rows((row_budget / 64 * 64).clamp(1024, 1 << 20));
        let survey = survey(&mut table, family, row_budget.max(1024))?;
        // The survey bounded a categorical target by the classes it may have.
        let classes = match &table.labels {
            Some(l) => l.len(),
            None => (survey.max_target as usize).saturating_add(1),
        };
        let prepared = Prepared {
            n: survey.n,
            features: table.features.clone(),
            labels: table.labels.clone(),
            classes,
            survey: Some(survey),
        };
        return Ok((Rows::Chunked(table, None), prepared));
    }
    let table = load_table_with_log(data, target, features, spec, exposure)?;
    let y = targets(&table);
    let classes = table.labels.as_ref().map_or_else(
        || (y.iter().fold(0.0f64, |m, &v| m.max(v)) as usize).saturating_add(1),
        Vec::len,
    );
    // Categorical targets name at most MAX_CLASSES classes (as a streamed survey checks).
    let support = family.build(if family == FamilyName::Categorical {
        classes.min(MAX_CLASSES)
    } else {
        classes
    });
    for (r, &v) in y.iter().enumerate() {
        if let Some(why) = support.support_error(v) {
            return Err(Error::data(
                data,
                likely::data::cell_location(Some(FileFormat::of(data)?), data, r, target),
                format!("{why} of the {} family", family.as_str()),
            ));
        }
    }
    let prepared = Prepared {
        n: table.n,
        features: table.features.clone(),
        labels: table.labels.clone(),
        classes,
        survey: None,
    };
    Ok((Rows::Memory(Arc::new(table)), prepared))
}

/// Host bytes per parameter a fit may hold: f64 copies for the parameters, gradient,
/// optimiser moments, the best point so far and L-BFGS's history, with room to spare.
const HOST_BYTES_PER_PARAM: u128 = 8 * 32;

/// The network the flags describe over the table's features and classes; one whose
/// parameters would not fit in the host budget is a usage error.
fn network_for(
    fit: &super::fit::FitArgs,
    kind: ModelKind,
    target: &str,
    prepared: &Prepared,
    host_budget: u64,
) -> likely::Result<Network> {
    let (family, args) = (fit.family, &fit.model);
    let classes = if family == FamilyName::Categorical {
        if prepared.classes < 2 {
            return Err(Error::data(
                fit.data.as_path(),
                "",
                format!("target '{target}' has a single class: nothing to classify"),
            ));
        }
        if prepared.classes > prepared.n {
            // Numeric labels name classes 0..=max: an ID-like column makes a huge network
            // whose unseen classes have no MLE.
            return Err(Error::data(
                fit.data.as_path(),
                "",
                format!(
                    "target '{target}' names {} classes (labels 0 to {}) but the table has \
                     only {} rows: categorical targets are class labels 0..K-1, each class \
                     with rows of its own",
                    prepared.classes,
                    prepared.classes - 1,
                    prepared.n
                ),
            ));
        }
        prepared.classes
    } else {
        1
    };
    let network = Network {
        inputs: prepared.features.len(),
        hidden: match kind {
            ModelKind::Linear => Vec::new(),
            ModelKind::Mlp => args.hidden.clone().unwrap_or_else(|| vec![32]),
        },
        activation: args.activation.unwrap_or(Activation::Relu),
        head: head_for(fit, kind, classes)?,
    };
    match network.checked_param_count() {
        Some(p) if p as u128 * HOST_BYTES_PER_PARAM <= host_budget as u128 => Ok(network),
        p => Err(Error::Usage(format!(
            "the network has {} parameters ({} inputs, hidden {:?}, {} outputs): more than \
             the host memory budget ({host_budget} bytes, --host-memory) holds at {} bytes each",
            p.map_or("more than 2^64".to_string(), |p| p.to_string()),
            network.inputs,
            network.hidden,
            network.head.outputs(),
            HOST_BYTES_PER_PARAM
        ))),
    }
}

/// `--offset COLUMN` or `--exposure COLUMN` (whose logarithm is the offset), checked against
/// the model and the target.
fn offset_of(fit: &super::fit::FitArgs, kind: ModelKind) -> likely::Result<Option<Offset>> {
    let args = &fit.model;
    let offset =
        match (&args.offset, &args.exposure) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => return Err(Error::Usage(
                "--offset and --exposure both give the offset: --exposure E is --offset ln(E); \
                 give one"
                    .into(),
            )),
            (Some(c), None) => Offset {
                column: c.clone(),
                log: false,
            },
            (None, Some(c)) => Offset {
                column: c.clone(),
                log: true,
            },
        };
    let flag = format!("--{} {}", offset.flag(), offset.column);
    let why = if kind != ModelKind::Linear {
        Some(format!("{flag} applies to --model linear"))
    } else if fit.family == FamilyName::Laplace {
        Some(format!(
            "{flag}: a laplace model's least-absolute-deviations solve has no offset; \
             subtract it from the target instead"
        ))
    } else if args.report == Some(Report::Ols) {
        Some(format!(
            "{flag}: --report ols is of a least-squares fit without an offset"
        ))
    } else if args.target.as_deref() == Some(offset.column.as_str()) {
        Some(format!("{flag}: the offset column is the target"))
    } else if args
        .features
        .as_ref()
        .is_some_and(|f| f.contains(&offset.column))
    {
        Some(format!(
            "{flag}: the offset column is also in --features (its coefficient is 1, not \
             estimated): leave it out of --features"
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::Usage(why)),
        None => Ok(Some(offset)),
    }
}

/// The columns a fit reads as features: `--features` (default: every column but the target),
/// and an offset column last, where there is one.
fn model_features(
    fit: &super::fit::FitArgs,
    target: &str,
    offset: Option<&Offset>,
) -> likely::Result<Option<Vec<String>>> {
    let Some(offset) = offset else {
        return Ok(fit.model.features.clone());
    };
    let mut features = match &fit.model.features {
        Some(f) => f.clone(),
        None => {
            let columns = TableStream::open(&fit.data, target, None, TargetSpec::Ignore)?;
            columns
                .features
                .into_iter()
                .filter(|f| *f != offset.column)
                .collect()
        }
    };
    features.push(offset.column.clone());
    Ok(Some(features))
}

/// The model's head: the family at the `--link` asked for (a usage error where the family
/// does not take it), with a reference class for linear categorical models.
fn head_for(fit: &super::fit::FitArgs, kind: ModelKind, classes: usize) -> likely::Result<Head> {
    let head = Head::new(fit.family, classes, kind == ModelKind::Linear);
    match fit.model.link {
        Some(link) => head
            .with_link(link)
            .map_err(|why| Error::Usage(format!("--link {}: {why}", link.as_str()))),
        None => Ok(head),
    }
}

/// Whether the fitted model has intercepts: linear models without --no-intercept, and MLPs.
fn has_intercept(args: &ModelArgs, kind: ModelKind) -> bool {
    !(kind == ModelKind::Linear && args.no_intercept)
}

/// The optimiser's settings, with PyTorch's defaults where a flag is absent; without an
/// intercept the first layer's biases are frozen at 0.
fn train_options(
    fit: &super::fit::FitArgs,
    optimizer: ModelOptimizer,
    network: &Network,
) -> TrainOptions {
    let args = &fit.model;
    let kind = args.model.expect("called with --model");
    let mut frozen = vec![false; network.param_count()];
    if !has_intercept(args, kind) {
        let l = network.layers()[0];
        frozen[l.bias..l.bias + l.fan_out]
            .iter_mut()
            .for_each(|f| *f = true);
    }
    TrainOptions {
        optimizer,
        lr: fit.lr.unwrap_or(if optimizer == ModelOptimizer::Sgd {
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
        batch_size: if matches!(optimizer, ModelOptimizer::Lbfgs | ModelOptimizer::Newton) {
            None
        } else {
            Some(args.batch_size.unwrap_or(1024))
        },
        epochs: args.epochs(),
        max_iter: fit.max_iter,
        seed: fit.seed,
        prior: fit.prior,
        validation: args.validation,
        patience: args.patience.unwrap_or(5).max(1),
        log_every: args.log_every.unwrap_or(0),
        frozen,
        prior_factors: None,
    }
}

/// A progress bar on stderr: hidden with --json, and by indicatif when stderr is not a
/// terminal. Full-batch fits (L-BFGS, Newton) have no epochs to count: a spinner with the
/// iteration.
fn progress_bar(as_json: bool, full_batch: bool, epochs: usize) -> indicatif::ProgressBar {
    if as_json {
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
        let bar = indicatif::ProgressBar::new(epochs as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    }
}

/// What training produced, and where it ran.
struct Trained {
    report: likely::model::TrainReport,
    engine: &'static str,
    adapter: String,
    /// The trained parameters, in the conditioned coordinates.
    params: Vec<f64>,
    /// The parameters in the data's units where the fit refined them there (least squares).
    original: Option<Vec<f64>>,
    /// The NLL's Hessian at `params` (conditioned coordinates, f64), where the fit formed it.
    hessian: Option<Vec<f64>>,
    precision: likely::fit::Precision,
    /// How the optimum was found (see [`likely::model::linear::LinearFit::method`]).
    method: &'static str,
    /// The optimality test's measure at `params` (standard errors; NaN for MLPs).
    decrement: f64,
    warnings: Vec<String>,
}

fn cpu_label() -> String {
    format!("host CPU, {} threads, f64", rayon::current_num_threads())
}

/// A linear model fitted full-batch (Newton, the exact solves, L-BFGS) wherever its rows are,
/// finished and checked on f64 sums.
#[allow(clippy::too_many_arguments)]
fn fit_linear_rows(
    rows: &mut Rows,
    network: &Network,
    cond: &likely::model::Conditioning,
    params: Vec<f64>,
    options: &TrainOptions,
    prepared: &Prepared,
    gpu_context: &Option<GpuContext>,
    progress: &mut dyn FnMut(&likely::model::train::LossPoint),
) -> likely::Result<Trained> {
    use likely::model::linear::{fit_linear, Placement};
    // Newton's warm start on large tables: every 8th row in memory, the survey's sample when
    // streamed.
    let subsample: Option<(Vec<f64>, Vec<f64>)> = match (&*rows, &prepared.survey) {
        (Rows::Memory(table) | Rows::Resident(table, _), _) => {
            let d = network.inputs;
            let picked: Vec<usize> = (0..table.n)
                .step_by(likely::model::newton::WARM_START_STRIDE)
                .collect();
            let y = targets(table);
            (table.n >= likely::model::newton::WARM_START_ROWS).then(|| {
                (
                    picked
                        .iter()
                        .flat_map(|&r| table.x[r * d..(r + 1) * d].iter().copied())
                        .collect(),
                    picked.iter().map(|&r| y[r]).collect(),
                )
            })
        }
        (_, Some(survey)) => Some((survey.sample_x.clone(), survey.sample_y.clone())),
        _ => None,
    };
    let warm = subsample.as_ref().map(|(x, y)| (&x[..], &y[..]));
    let (mut placement, engine, adapter) = match rows {
        Rows::Memory(table) => (Placement::Memory(table), "cpu", cpu_label()),
        Rows::Resident(table, gpu) => (
            Placement::Resident(gpu, table),
            "gpu",
            gpu_label(gpu_context),
        ),
        Rows::Chunked(table, gpu) => {
            let (engine, adapter) = match gpu {
                Some(_) => ("gpu", gpu_label(gpu_context)),
                None => ("cpu", cpu_label()),
            };
            (
                Placement::Chunked(table, gpu.as_ref(), prepared.n),
                engine,
                format!("{adapter} (streamed)"),
            )
        }
    };
    let fit = fit_linear(
        network,
        &mut placement,
        cond,
        params,
        warm,
        options,
        progress,
    )?;
    let (engine, adapter) = if fit.ran_on_placement {
        (engine, adapter)
    } else {
        // The exact solves run on the CPU whatever engine holds the rows.
        ("cpu", cpu_label())
    };
    Ok(Trained {
        report: fit.report,
        engine,
        adapter,
        params: fit.params,
        original: fit.original,
        hessian: fit.hessian,
        precision: fit.precision,
        method: fit.method,
        decrement: fit.decrement,
        warnings: fit.warnings,
    })
}

/// A minibatch run (or an MLP's L-BFGS) as [`Trained`]; a linear model's result is held to
/// the optimality test from f64 sums (minibatch training stops by its epochs or early
/// stopping, so it is converged only if the test happens to hold).
fn minibatch_trained(
    trained: (
        likely::model::TrainReport,
        &'static str,
        String,
        likely::fit::Precision,
    ),
    kind: ModelKind,
    rows: &mut Rows,
    network: &Network,
    cond: &likely::model::Conditioning,
    params: Vec<f64>,
    options: &TrainOptions,
) -> likely::Result<Trained> {
    let (mut report, engine, adapter, precision) = trained;
    let method = match options.optimizer {
        ModelOptimizer::Sgd => "sgd",
        ModelOptimizer::Adam => "adam",
        ModelOptimizer::Adamw => "adamw",
        ModelOptimizer::Lbfgs => "lbfgs",
        ModelOptimizer::Newton => "newton",
    };
    let (mut decrement, mut hessian) = (f64::NAN, None);
    if kind == ModelKind::Linear && params.iter().all(|v| v.is_finite()) {
        use likely::model::linear::{check_trained, Placement};
        let n = rows_count(rows);
        let mut placement = match rows {
            Rows::Memory(table) => Placement::Memory(table),
            Rows::Resident(table, gpu) => Placement::Resident(gpu, table),
            Rows::Chunked(table, gpu) => Placement::Chunked(table, gpu.as_ref(), n),
        };
        let check = check_trained(network, &mut placement, cond, &params, options)?;
        decrement = check.decrement;
        hessian = check.hessian;
        if check.holds && !report.reason.contains("diverged") {
            report.converged = true;
            report.reason = format!(
                "{}; the optimality test holds (checked in f64)",
                report.reason
            );
        } else if report.converged {
            report.converged = false;
            report.reason = format!(
                "{} (minibatch training makes no optimality claim: the Newton decrement is {decrement:.3e} standard errors)",
                report.reason
            );
        }
    } else if report.converged {
        // An MLP has no optimality test: its training ends by its epochs or early stopping.
        report.converged = false;
    }
    Ok(Trained {
        report,
        engine,
        adapter,
        params,
        original: None,
        hessian,
        precision,
        method,
        decrement,
        warnings: Vec::new(),
    })
}

fn rows_count(rows: &Rows) -> usize {
    match rows {
        Rows::Memory(t) | Rows::Resident(t, _) => t.n,
        Rows::Chunked(table, _) => table.rows().unwrap_or(0),
    }
}

/// Trains `params` (conditioned coordinates) wherever the rows are: in memory on the CPU,
/// resident on the GPU, or chunk by chunk.
#[allow(clippy::too_many_arguments)]
fn train_rows(
    rows: &mut Rows,
    network: &Network,
    params: &mut Vec<f64>,
    cond: &likely::model::Conditioning,
    options: &TrainOptions,
    prepared: &Prepared,
    gpu_context: &Option<GpuContext>,
    report_progress: impl FnMut(&likely::model::train::LossPoint),
) -> likely::Result<(
    likely::model::TrainReport,
    &'static str,
    String,
    likely::fit::Precision,
)> {
    use likely::fit::Precision;
    Ok(match rows {
        Rows::Resident(_, gpu) => {
            let report = likely::model::train_gpu(gpu, network, params, options, report_progress)?;
            (report, "gpu", gpu_label(gpu_context), Precision::F32)
        }
        Rows::Memory(table) => {
            let y = targets(table);
            let report = likely::model::train::train_conditioned(
                network,
                params,
                &table.x,
                y,
                Some(cond),
                options,
                report_progress,
            )?;
            (report, "cpu", cpu_label(), Precision::F64)
        }
        Rows::Chunked(table, gpu) => {
            let chunk_engine = chunk_engine(gpu);
            let survey = prepared.survey.as_ref().expect("surveyed");
            let report = train_streamed(
                network,
                params,
                table,
                chunk_engine,
                survey,
                Some(cond),
                options,
                report_progress,
            )?;
            let (engine, adapter, precision) = match gpu {
                Some(_) => ("gpu", gpu_label(gpu_context), Precision::F32),
                None => ("cpu", cpu_label(), Precision::F64),
            };
            (report, engine, format!("{adapter} (streamed)"), precision)
        }
    })
}

/// The fitted model as `--save` writes it, with how it was trained.
#[allow(clippy::too_many_arguments)]
fn fitted_model(
    fit: &super::fit::FitArgs,
    kind: ModelKind,
    target: &str,
    prepared: &Prepared,
    network: Network,
    params: Vec<f64>,
    optimizer: ModelOptimizer,
    report: &likely::model::TrainReport,
) -> Model {
    let labels = match (&prepared.labels, fit.family) {
        (Some(l), _) => Some(l.clone()),
        (None, FamilyName::Categorical) => {
            Some((0..network.head.classes).map(|k| k.to_string()).collect())
        }
        _ => None,
    };
    Model {
        kind,
        params,
        features: prepared.features.clone(),
        target: target.to_string(),
        labels,
        string_labels: prepared.labels.is_some(),
        intercept: has_intercept(&fit.model, kind),
        offset: offset_of(fit, kind).ok().flatten(),
        training: json!({
            "data": fit.data.display().to_string(),
            "n": prepared.n,
            "optimizer": optimizer,
            "seed": fit.seed,
            "report": report,
        }),
        network,
    }
}

/// The final pass: NLL, accuracy, separation (the model in its own units, on the rows as they
/// are), and the sums inference needs (the conditioned rows at the conditioned parameters,
/// in f64 on the CPU).
fn final_pass(
    rows: &mut Rows,
    model: &Model,
    cond: &likely::model::Conditioning,
    conditioned: &[f64],
    hessian: Option<Vec<f64>>,
    wants_hessian: bool,
    wants_outer: bool,
) -> likely::Result<Summary> {
    let wants_hessian = wants_hessian
        && hessian.is_none()
        && model.network.param_count() <= likely::gpu::mlp::MAX_NEWTON_PARAMS;
    Ok(match rows {
        Rows::Memory(table) | Rows::Resident(table, _) => {
            let y = targets(table);
            let mut assessment = model.assessment(true);
            model.assess(&table.x, y, &mut assessment);
            let outer = wants_outer.then(|| {
                let mut sum = vec![0.0; model.network.param_count().pow(2)];
                likely::inference::add_score_outer(
                    &model.network,
                    conditioned,
                    &table.x,
                    y,
                    Some(cond),
                    &mut sum,
                );
                sum
            });
            let hessian = match hessian {
                Some(h) => Some(h),
                None if wants_hessian => Some(
                    likely::model::newton::conditioned_derivatives(
                        &model.network,
                        conditioned,
                        &table.x,
                        y,
                        Some(cond),
                    )?
                    .2,
                ),
                None => None,
            };
            Summary {
                assessment,
                hessian,
                outer,
            }
        }
        Rows::Chunked(table, _) => {
            let mut summary = summarize(
                model,
                table,
                ChunkEngine::Cpu,
                (cond, conditioned),
                wants_hessian,
                wants_outer,
            )?;
            if hessian.is_some() {
                summary.hessian = hessian;
            }
            summary
        }
    })
}

/// `--ci profile`: profile-likelihood intervals, re-fitting over the conditioned rows on the
/// CPU engine (f64) wherever they are.
#[allow(clippy::too_many_arguments)]
fn profile_intervals(
    rows: &mut Rows,
    model: &Model,
    cond: &likely::model::Conditioning,
    conditioned: &[f64],
    fit: &super::fit::FitArgs,
    options: &TrainOptions,
    n: usize,
    inf: &mut likely::inference::Inference,
) -> likely::Result<()> {
    let net = &model.network;
    let mut profile = |problem: &mut dyn likely::fit::Differentiable| {
        likely::inference::profile_conditioned_linear_model(
            problem,
            model,
            cond,
            conditioned,
            &options.frozen,
            fit.prior,
            fit.inference.alpha,
            inf,
        )
    };
    match rows {
        Rows::Memory(table) | Rows::Resident(table, _) => {
            let y = targets(table);
            profile(&mut FullBatch {
                net,
                x: &table.x,
                y,
                rows: (0..table.n).collect(),
                frozen: &options.frozen,
                cond: Some(cond),
            })
        }
        Rows::Chunked(table, _) => profile(&mut StreamedProblem {
            net,
            table,
            engine: ChunkEngine::Cpu,
            frozen: &options.frozen,
            n,
            cond: Some(cond),
        }),
    }
}

/// A finished model fit, as `fit --model` reports it.
struct FitOutcome<'a> {
    fit: &'a super::fit::FitArgs,
    model: &'a Model,
    prepared: &'a Prepared,
    optimizer: ModelOptimizer,
    trained: &'a Trained,
    eval: &'a likely::model::Evaluation,
    inference: Option<&'a likely::inference::Inference>,
    /// statsmodels' OLS report (`--report ols`), whose standard errors `inference` then holds.
    ols: Option<&'a likely::inference::OlsReport>,
    /// The global `--fix` held, and its value.
    fixed: Option<(&'static str, f64)>,
    separation: &'a [String],
    /// Which engine summed the f64 passes (the optimality test, the f64 finish): `gpu` where
    /// the rows were resident on an adapter with SHADER_F64, `cpu` otherwise.
    f64_engine: &'static str,
    frozen: &'a [bool],
    /// The optimiser alone.
    seconds: f64,
    /// Reading the table into memory (`None` where it is streamed).
    read_seconds: Option<f64>,
    /// Everything after the read: set-up, a GPU upload, the fit, the final pass and inference.
    fit_seconds: f64,
    streamed: bool,
}

/// `deviance`, `pearson_chi2` and the comparison with the null model (`llnull`,
/// `null_deviance`, `llr`, `df_model`, `llr_pvalue`, `pseudo_r2`); null where the family has
/// no such statistic.
fn add_goodness_of_fit(
    out: &mut Value,
    eval: &likely::model::Evaluation,
    null: Option<likely::inference::NullComparison>,
) {
    let number = |v: Option<f64>| v.map_or(Value::Null, json_f64);
    out["deviance"] = number(eval.deviance);
    out["pearson_chi2"] = number(eval.pearson_chi2);
    out["llnull"] = number(null.map(|c| c.llnull));
    out["null_deviance"] = number(null.and_then(|c| c.null_deviance));
    out["llr"] = number(null.map(|c| c.llr));
    out["df_model"] = null.map_or(Value::Null, |c| json!(c.df_model));
    out["llr_pvalue"] = number(null.and_then(|c| c.llr_pvalue));
    out["pseudo_r2"] = number(null.map(|c| c.pseudo_r2));
}

impl FitOutcome<'_> {
    /// The fit against the intercept-only model of its targets, where the family's null
    /// model follows from its rows.
    fn null_comparison(&self) -> Option<likely::inference::NullComparison> {
        let model = self.model;
        let fitted = self.frozen.iter().filter(|f| !**f).count();
        let head = &model.network.head;
        // With --fix the null model holds the global where the fit held it.
        let (null, held) = match self.fixed {
            Some((_, value)) => (
                head.null_model_at(self.eval.null_part.as_deref()?, &[value.ln()])?,
                1,
            ),
            None => (self.eval.null?, 0),
        };
        Some(likely::inference::NullComparison::new(
            -self.eval.nll,
            null,
            head,
            fitted,
            has_intercept(&self.fit.model, model.kind),
            model.kind == ModelKind::Linear,
            held,
        ))
    }

    /// Why there are no standard errors, where there are none.
    fn no_inference(&self) -> &'static str {
        match self.model.kind {
            ModelKind::Mlp => MLP_NO_SE,
            ModelKind::Linear => likely::model::linear::EXACT_FIT,
        }
    }

    fn json(&self) -> Value {
        let (model, eval, report) = (self.model, self.eval, &self.trained.report);
        let mut out = json!({
            "model": model.kind,
            "family": self.fit.family.as_str(),
            "link": model.network.head.link.as_str(),
            "n": self.prepared.n,
            "target": model.target,
            "features": model.features[..model.fitted_features()],
            "nll": json_f64(eval.nll),
            "mean_nll": json_f64(eval.mean_nll),
            "converged": report.converged,
            "reason": report.reason,
            "iterations": report.steps,
            "epochs": report.epochs,
            "optimizer": self.optimizer,
            "method": self.trained.method,
            "warnings": self.trained.warnings,
            "precision": self.trained.precision,
            "f64_engine": self.f64_engine,
            "decrement": json_f64(self.trained.decrement),
            "engine": self.trained.engine,
            "adapter": self.trained.adapter,
            "seed": self.fit.seed,
            "seconds": self.seconds,
            "read_seconds": self.read_seconds.map_or(Value::Null, json_f64),
            "fit_seconds": json_f64(self.fit_seconds),
            "history": report.history,
            "streamed": self.streamed,
            "peak_rss_bytes": likely::engine::stream::peak_rss_bytes(),
        });
        if let Some(c) = model.coefficients() {
            out["coefficients"] = c;
        }
        match self.inference {
            Some(inf) => {
                // Values of the fitted (not frozen) parameters, keyed by parameter name.
                let keep: Vec<usize> = (0..model.network.param_count())
                    .filter(|&j| !self.frozen[j])
                    .collect();
                let keyed = |values: &[f64]| {
                    let mut full = vec![None; model.network.param_count()];
                    keep.iter()
                        .zip(values)
                        .for_each(|(&j, &v)| full[j] = Some(v));
                    model.keyed(&full)
                };
                super::report::add_json(&mut out, inf, &Vec::new(), Some(&keyed))
            }
            None => {
                out["std_errors"] = Value::Null;
                out["inference"] = json!(self.no_inference());
                out["llf"] = json_f64(-eval.nll);
            }
        }
        if let Some((name, value)) = self.fixed {
            out["fixed"] = json!({ name: json_f64(value) });
        }
        if let Some(o) = &model.offset {
            out[o.flag()] = json!(o.column);
        }
        out["report"] = json!(if self.ols.is_some() {
            Report::Ols
        } else {
            Report::Mle
        });
        if let Some(ols) = self.ols {
            // t statistics with the residual degrees of freedom, under their own name.
            if let Some(z) = out.as_object_mut().and_then(|o| o.remove("z")) {
                out["t"] = z;
            }
            out["scale"] = json_f64(ols.scale);
            out["df_resid"] = json!(ols.df_resid);
            out["rsquared"] = json_f64(ols.rsquared);
            out["rsquared_adj"] = json_f64(ols.rsquared_adj);
            out["fvalue"] = json_f64(ols.fvalue);
            out["f_pvalue"] = json_f64(ols.f_pvalue);
        }
        out["separation"] = json!(self.separation);
        if let Some(a) = eval.accuracy {
            out["accuracy"] = json_f64(a);
        }
        add_goodness_of_fit(&mut out, eval, self.null_comparison());
        for (name, v) in model.globals() {
            out[name] = json_f64(v);
        }
        // A held global as the user gave it, not exp(ln value) rounded.
        if let Some((name, value)) = self.fixed {
            out[name] = json_f64(value);
        }
        if let Some(l) = &model.labels {
            out["labels"] = json!(l);
        }
        if let (Some(p), Some(lp)) = (self.fit.prior, report.log_prior) {
            out["prior"] = json!(p.to_string());
            out["log_prior"] = json_f64(lp);
            out["log_posterior"] = json_f64(lp - eval.nll);
        }
        if let Some(path) = &self.fit.model.save {
            out["saved"] = json!(path.display().to_string());
        }
        out
    }

    fn print(&self) {
        let (model, eval, report) = (self.model, self.eval, &self.trained.report);
        outln!(
            "{:?} {} model ({} link) of '{}' on {} features, n = {}{}",
            model.kind,
            self.fit.family.as_str(),
            model.network.head.link.as_str(),
            model.target,
            model.fitted_features(),
            self.prepared.n,
            if self.streamed { " (streamed)" } else { "" }
        );
        let full_batch = matches!(
            self.optimizer,
            ModelOptimizer::Newton | ModelOptimizer::Lbfgs
        );
        if !report.converged && full_batch {
            outln!(
                "NOT CONVERGED ({}): the estimates below are where the fit stopped",
                report.reason
            );
        }
        if let Some(o) = &model.offset {
            outln!(
                "offset: {} (coefficient 1)",
                if o.log {
                    format!("ln({})", o.column)
                } else {
                    o.column.clone()
                }
            );
        }
        outln!(
            "engine: {} on {} ({}, {} arithmetic)",
            self.trained.engine,
            self.trained.adapter,
            self.trained.method,
            self.trained.precision.as_str()
        );
        match self.inference {
            Some(inf) => {
                let ci = format!("{:?}", self.fit.inference.ci).to_lowercase();
                match self.ols {
                    Some(ols) => {
                        super::report::print_table_with(inf, &ci, "t");
                        outln!(
                            "  OLS (statsmodels' report): scale = {}   df_resid = {}   R2 = {:.6}   adj. R2 = {:.6}   F({}, {}) = {}, p = {:.4e}",
                            super::report::fixed_or_sci(ols.scale, 10),
                            ols.df_resid,
                            ols.rsquared,
                            ols.rsquared_adj,
                            ols.df_model,
                            ols.df_resid,
                            super::report::fixed_or_sci(ols.fvalue, 6),
                            ols.f_pvalue
                        );
                    }
                    None => super::report::print_table(inf, &ci),
                }
            }
            None => {
                outln!("{}", self.no_inference());
                for (name, v) in model.globals() {
                    outln!("  {name} = {v:.10}");
                }
            }
        }
        if let Some((name, value)) = self.fixed {
            outln!("  {name} = {value} (fixed, not estimated)");
        }
        outln!(
            "  NLL = {}   mean NLL = {}",
            super::report::fixed_or_sci(eval.nll, 10),
            super::report::fixed_or_sci(eval.mean_nll, 10)
        );
        if let Some(a) = eval.accuracy {
            outln!("  accuracy = {a:.6}");
        }
        if let Some(c) = self.null_comparison() {
            let p = c
                .llr_pvalue
                .map_or(String::new(), |p| format!(", p = {p:.4e}"));
            outln!(
                "  null model: llnull = {}   LR chi2({}) = {}{p}   pseudo R2 (McFadden) = {:.6}",
                super::report::fixed_or_sci(c.llnull, 10),
                c.df_model,
                super::report::fixed_or_sci(c.llr, 6),
                c.pseudo_r2
            );
        }
        if let Some(d) = eval.deviance {
            outln!("  deviance = {}", super::report::fixed_or_sci(d, 10));
        }
        outln!(
            "{} ({}) after {} steps, {:.3} s",
            if report.converged {
                "converged"
            } else if full_batch || report.reason.contains("diverged") {
                "NOT CONVERGED"
            } else {
                "done"
            },
            report.reason,
            report.steps,
            self.seconds
        );
        if let Some(path) = &self.fit.model.save {
            outln!("saved to {}", path.display());
        }
    }
}

/// Minibatch epochs over a chunked table shuffle rows within a chunk only: a file sorted or
/// grouped by its target would feed batches of one kind at a time, silently.
fn warn_if_ordered_by_target(survey: &Survey, table: &TableStream, target: &str) {
    if let Some(ratio) = survey.target_order().filter(|&r| r > ORDERED_TARGET_RATIO) {
        errln!(
            "warning: the target '{target}' changes from chunk to chunk of the table (F = \
             {ratio:.3e}, the spread of chunk means against the spread within chunks; about 1 \
             for rows in random order): minibatch epochs shuffle rows only within a chunk \
             ({} rows), so each batch sees one part of the table. Shuffle the file's rows, give \
             --host-memory room for larger chunks, or fit full-batch (--optimizer lbfgs)",
            table.chunk_rows()
        );
    }
}

/// Puts the table on the GPU: resident when its buffers fit the GPU's budget, else passed
/// through buffers for the most rows that fit, chunk by chunk (with the rows an unfinished
/// minibatch carries over).
fn place_on_gpu(
    rows: Rows,
    ctx: &GpuContext,
    network: &Network,
    options: &TrainOptions,
    prepared: &mut Prepared,
    family: FamilyName,
    cond: &likely::model::Conditioning,
) -> likely::Result<Rows> {
    let n = prepared.n;
    // A minibatch has at most the table's rows.
    let batch = options.batch_size.map(|b| b.min(n));
    let step_rows =
        |rows: usize| batch.unwrap_or_else(|| GpuNetwork::full_batch_rows(network, rows));
    let mut table = match rows {
        Rows::Memory(table) if n <= GpuNetwork::max_rows(ctx, network, step_rows(n)) => {
            let y = targets(&table);
            let constants = network.head.row_constants(y);
            let gpu = GpuNetwork::for_chunks(ctx, network, n, &options.frozen, step_rows(n))?;
            gpu.load_conditioned(&table.x, y, &constants, Some(cond))?;
            return Ok(Rows::Resident(table, gpu));
        }
        Rows::Memory(table) => TableStream::memory(table),
        Rows::Chunked(table, _) => table,
        Rows::Resident(..) => unreachable!("not yet on the GPU"),
    };
    let carry = batch.unwrap_or(0);
    let chunk =
        GpuNetwork::chunk_rows_within_budget(ctx, network, table.chunk_rows(), carry, step_rows)?;
    table.set_chunk_rows(chunk);
    let capacity = chunk + carry;
    let gpu = GpuNetwork::for_chunks(ctx, network, capacity, &options.frozen, step_rows(capacity))?;
    if prepared.survey.is_none() {
        let sample_rows = table.chunk_rows();
        prepared.survey = Some(survey(&mut table, family, sample_rows)?);
    }
    Ok(Rows::Chunked(table, Some(gpu)))
}

fn gpu_label(ctx: &Option<GpuContext>) -> String {
    ctx.as_ref()
        .map_or_else(String::new, GpuContext::adapter_label)
}

const MLP_NO_SE: &str = "standard errors are not reported for MLPs: their parameters are not identified (hidden units can be permuted and rescaled), so the asymptotics behind standard errors do not apply";

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
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

/// A saved model's offset column must be in the table (named as such where it is not).
fn check_offset_column(model: &Model, data: &std::path::Path) -> likely::Result<()> {
    let Some(o) = &model.offset else {
        return Ok(());
    };
    let columns = TableStream::open(data, &model.target, None, TargetSpec::Ignore)?;
    if columns.features.contains(&o.column) {
        return Ok(());
    }
    Err(Error::data(
        data,
        "",
        format!(
            "no {flag} column named '{c}': the model was fitted with --{flag} {c}, and eval and \
             predict need it too; columns are: {}",
            columns.features.join(", "),
            flag = o.flag(),
            c = o.column
        ),
    ))
}

/// A saved model's exposure is read as its logarithm, as in training.
fn read_offset_as_saved(model: &Model, table: &mut TableStream) -> likely::Result<()> {
    match &model.offset {
        Some(o) if o.log => table.set_log_feature(&o.column),
        _ => Ok(()),
    }
}

pub fn eval(args: EvalArgs) -> likely::Result<i32> {
    let model = Model::load(&args.model)?;
    check_offset_column(&model, &args.data)?;
    // Read chunk by chunk: the table need not fit in memory.
    let mut table = TableStream::open(
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
    read_offset_as_saved(&model, &mut table)?;
    let support = model.family().build(model.network.head.classes);
    let mut assessment = model.assessment(false);
    let mut failure = None;
    table.for_each_chunk(|chunk| {
        for (i, &v) in chunk.y.iter().enumerate() {
            if let Some(why) = support.support_error(v) {
                let msg = if model.family() == FamilyName::Categorical {
                    format!("class {v} was not seen in training ({why})")
                } else {
                    why
                };
                failure = Some((chunk.first + i, msg));
                return Ok(false);
            }
        }
        model.assess(&chunk.x, &chunk.y, &mut assessment);
        Ok(true)
    })?;
    if let Some((row, msg)) = failure {
        return Err(Error::data(
            &args.data,
            table.location(row, &model.target),
            msg,
        ));
    }
    let e = assessment.evaluation();
    if !e.nll.is_finite() {
        let largest = model.params.iter().fold(0.0f64, |m, p| m.max(p.abs()));
        return Err(Error::data(
            &args.model,
            "",
            format!(
                "the model's NLL on {} is {} (not a number a likelihood can have): its \
                 parameters (the largest of magnitude {largest:.3e}) overflow f64 when evaluated",
                args.data.display(),
                e.nll
            ),
        ));
    }
    if args.json {
        let mut out = json!({ "n": e.n, "nll": json_f64(e.nll), "mean_nll": json_f64(e.mean_nll), "model": model.kind, "family": model.family().as_str() });
        if let Some(a) = e.accuracy {
            out["accuracy"] = json_f64(a);
        }
        let number = |v: Option<f64>| v.map_or(Value::Null, json_f64);
        out["deviance"] = number(e.deviance);
        out["pearson_chi2"] = number(e.pearson_chi2);
        outln!("{out}");
    } else {
        outln!(
            "n = {}   NLL = {}   mean NLL = {}",
            e.n,
            super::report::fixed_or_sci(e.nll, 10),
            super::report::fixed_or_sci(e.mean_nll, 10)
        );
        if let Some(a) = e.accuracy {
            outln!("accuracy = {a:.6}");
        }
    }
    Ok(0)
}

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
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
    if let Some(output) = &args.output {
        likely::util::refuse_overwriting_input(
            "--output",
            output,
            &[("--data", &args.data), ("--model", &args.model)],
        )?;
    }
    let model = Model::load(&args.model)?;
    check_offset_column(&model, &args.data)?;
    // Read and written chunk by chunk: neither the table nor the predictions need fit in memory.
    let mut table = TableStream::open(
        &args.data,
        &model.target,
        Some(&model.features),
        TargetSpec::Ignore,
    )?;
    read_offset_as_saved(&model, &mut table)?;
    let header = model.prediction_columns().join(",") + "\n";
    let mut write_all = |out: &mut dyn Write, path: &std::path::Path| {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        out.write_all(header.as_bytes()).map_err(io)?;
        table.for_each_chunk(|chunk| {
            let lines = model.prediction_lines(&chunk.x, chunk.rows);
            out.write_all(lines.as_bytes()).map_err(io)?;
            Ok(true)
        })?;
        out.flush().map_err(io)
    };
    match &args.output {
        Some(path) => likely::util::write_atomically(path, |out| write_all(out, path))?,
        None => write_all(
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
            std::path::Path::new("<stdout>"),
        )?,
    }
    Ok(0)
}
