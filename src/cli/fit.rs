use super::EngineArgs;
use likely::data;
use likely::engine;
use likely::engine::stream::{parse_size, Source};
use likely::engine::StreamingEngine;
use likely::family::{FamilyName, ParamValue};
use likely::fit::{self, FitOptions, Optimizer, Prior};
use likely::util::json_f64;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct FitArgs {
    /// The likelihood family.
    #[arg(long, value_enum)]
    pub(super) family: FamilyName,
    /// CSV (with a header row), .npy or Parquet file.
    #[arg(long)]
    pub(super) data: PathBuf,
    /// Column name (CSV, Parquet), or column index of a 2-D .npy array.
    #[arg(long)]
    pub(super) column: Option<String>,
    /// Frequency weights: a column of the same file, one weight (at least 0) per row; a row of
    /// weight w counts as w rows (standard errors and BIC's n included). Family fits, on the
    /// CPU engine, with the data in memory.
    #[arg(long, value_name = "COL")]
    pub(super) weights: Option<String>,
    /// Right-censoring flags: a column of the same file, 1 where the row's lifetime was still
    /// running at its value (it contributes ln S(x) = ln P(X > x)), 0 where it ended there.
    /// Family fits of exponential, weibull, lognormal and gaussian, on the CPU engine, with
    /// the data in memory.
    #[arg(long, value_name = "COL")]
    pub(super) censored: Option<String>,
    /// Number of classes for the categorical family (default: from the data).
    #[arg(long)]
    pub(super) classes: Option<usize>,
    /// MAP prior on the unconstrained parameters: l2:SCALE (Gaussian, sd SCALE) or l1:SCALE (Laplace, scale SCALE).
    #[arg(long)]
    pub(super) prior: Option<Prior>,
    /// newton, lbfgs or adam for a family (default newton, which falls back to lbfgs where it
    /// does not apply); for --model also sgd and adamw (default: newton for linear models of
    /// up to 2048 parameters, lbfgs beyond, adamw for MLPs).
    #[arg(long, value_enum)]
    pub(super) optimizer: Option<OptimizerArg>,
    /// Maximum optimiser iterations (default 500 for lbfgs, 5000 for adam).
    #[arg(long)]
    pub(super) max_iter: Option<usize>,
    /// Learning rate (default 0.05 for a family's Adam; for models 1e-3 for adam/adamw, 0.01 for sgd).
    #[arg(long)]
    pub(super) lr: Option<f64>,
    /// Seed for random choices (recorded in the output; unconditional fits are deterministic).
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    #[command(flatten)]
    pub(super) engine: EngineArgs,
    /// Print one JSON object instead of the human-readable report.
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub model: super::model::ModelArgs,
    #[command(flatten)]
    pub inference: super::report::InferenceArgs,
    /// Stream the data in chunks instead of loading it (automatic when its f64 footprint exceeds
    /// --host-memory): a .npy or Parquet column for a family; a CSV, Parquet or .npy table for --model.
    #[arg(long)]
    pub(super) stream: bool,
    /// Host memory for data (default: half of the available memory), e.g. 8GiB.
    #[arg(long)]
    pub(super) host_memory: Option<String>,
    /// Device memory for data (default: the adapter's largest buffer, at most 2 GiB); larger
    /// data is streamed through two buffers.
    #[arg(long)]
    pub(super) gpu_memory: Option<String>,
}

/// Half of the memory available to this process (the kernel's MemAvailable within any cgroup
/// limit; 4 GiB where neither can be read).
fn default_host_budget() -> u64 {
    likely::util::available_memory().map_or(4 << 30, |bytes| bytes / 2)
}

/// Host bytes a family fit of `rows` samples of `width` bytes holds with its data in memory:
/// the samples, and where the adapter's memory is the host's (a software adapter) the
/// device's f32 copy and, where it is made, its f64 copy.
fn in_memory_bytes(rows: usize, width: u64, gpu: Option<&likely::gpu::GpuContext>) -> u64 {
    let rows = rows as u64;
    match gpu {
        Some(ctx) if ctx.adapter().software => {
            let f64_copy =
                ctx.adapter().shader_f64 && engine::GpuEngine::f64_copy_fits(ctx, rows as usize);
            rows * (width + 4 + if f64_copy { 8 } else { 0 })
        }
        _ => rows * width,
    }
}

/// Reads the data into memory and builds the engine over it (on the device, streamed through
/// two device buffers where the device budget is exceeded, or on the CPU).
fn load_and_build(
    args: &FitArgs,
    gpu: &Option<likely::gpu::GpuContext>,
    gpu_budget: u64,
    host_chunk_bytes: u64,
    read_seconds: &mut Option<f64>,
    weights: &mut Option<std::sync::Arc<[f64]>>,
    censored: &mut Option<std::sync::Arc<[bool]>>,
) -> likely::Result<(Box<dyn engine::Engine>, data::Dataset)> {
    let reading = std::time::Instant::now();
    let mut dataset = data::load(&args.data, args.column.as_deref(), args.family)?;
    if let Some(column) = &args.weights {
        // Read as a numeric column of the same file (any family's samples are numbers).
        let w = data::load(&args.data, Some(column), FamilyName::Gaussian)?;
        w.check_weights()?;
        *weights = Some(w.values.to_f64());
    }
    if let Some(column) = &args.censored {
        let flags = data::load(&args.data, Some(column), FamilyName::Gaussian)?;
        *censored = Some(flags.censoring_flags()?);
    }
    *read_seconds = Some(reading.elapsed().as_secs_f64());
    let classes = if args.family == FamilyName::Categorical {
        dataset.classes(args.classes)?
    } else {
        1
    };
    let family = args.family.build(classes);
    dataset.check_support(family.as_ref())?;
    let values = dataset.values.clone();
    if weights.is_some() || censored.is_some() {
        // Unweighted rows of a censored fit weigh 1 each.
        let w = weights.get_or_insert_with(|| vec![1.0; values.len()].into());
        let engine =
            engine::WeightedCpuEngine::with_censoring(family, values, w.clone(), censored.clone())?;
        return Ok((Box::new(engine), dataset));
    }
    let engine: Box<dyn engine::Engine> = match &gpu {
        // Larger than the device budget: stream it through two device buffers.
        Some(ctx) if values.len() as u64 * 4 > gpu_budget => Box::new(StreamingEngine::new(
            family,
            Source::Memory(values),
            host_chunk_bytes,
            Some((ctx, gpu_budget)),
        )?),
        Some(ctx) => {
            let engine = engine::GpuEngine::from_samples(ctx, family, values)?;
            // Where the device holds the samples exactly and makes the f64 sums from
            // them, and the covariance needs no per-sample scores, the host's copy is
            // let go: one copy of the data in all.
            if !engine.holds_host_copy()
                && args.inference.cov == likely::inference::CovType::Hessian
            {
                dataset.values = likely::data::Samples::empty();
            }
            Box::new(engine)
        }
        None => Box::new(engine::CpuEngine::from_samples(family, values)),
    };
    Ok((engine, dataset))
}

/// The observations counted, as JSON: an integer where it is one (every unweighted fit),
/// else the weights' sum as a number.
fn count_json(count: f64) -> Value {
    if count.fract() == 0.0 && count >= 0.0 && count < 2f64.powi(53) {
        json!(count as u64)
    } else {
        json_f64(count)
    }
}

/// Every optimiser name the CLI accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerArg {
    Lbfgs,
    Adam,
    Adamw,
    Sgd,
    /// Newton / Fisher scoring (linear models).
    Newton,
}

pub fn run(args: FitArgs) -> likely::Result<i32> {
    args.inference.validate()?;
    if let Some(lr) = args.lr {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(likely::Error::Usage(format!(
                "--lr must be positive, got {lr}"
            )));
        }
    }
    let host_budget = match &args.host_memory {
        Some(text) => parse_size(text)?,
        None => default_host_budget(),
    };
    if args.engine.backend == engine::Backend::Cpu {
        // A warning, not an error: scripts pass the same flags to both backends.
        for (given, flag) in [
            (args.engine.adapter.is_some(), "--adapter"),
            (args.gpu_memory.is_some(), "--gpu-memory"),
        ] {
            if given {
                errln!("warning: {flag} has no effect: --backend cpu uses no GPU");
            }
        }
    }
    if args.model.model.is_some() {
        if args.column.is_some() || args.classes.is_some() {
            return Err(likely::Error::Usage(
                "--column and --classes apply to family fits: a model takes --target and \
                 --features, and its classes are the target's values"
                    .into(),
            ));
        }
        if args.weights.is_some() {
            return Err(likely::Error::Usage(
                "--weights applies to family fits so far (fit --family F --data D --weights W); \
                 a model fit does not take weights yet: expand the table (each row repeated \
                 its weight's number of times) instead"
                    .into(),
            ));
        }
        if args.censored.is_some() {
            return Err(likely::Error::Usage(
                "--censored applies to family fits so far (fit --family F --data D --censored \
                 C); a model fit does not take censored rows yet"
                    .into(),
            ));
        }
        let gpu_memory = args.gpu_memory.as_deref().map(parse_size).transpose()?;
        return super::model::fit_model(&args, gpu_memory, host_budget);
    }
    args.model.reject_without_model()?;
    let optimizer = match args.optimizer.unwrap_or(OptimizerArg::Newton) {
        OptimizerArg::Newton => Optimizer::Newton,
        OptimizerArg::Lbfgs => Optimizer::Lbfgs,
        OptimizerArg::Adam => Optimizer::Adam,
        other => {
            return Err(likely::Error::Usage(format!(
                "--optimizer {other:?} applies to models (--model); a family fit takes newton, lbfgs or adam"
            )
            .to_lowercase()))
        }
    };
    if args.classes == Some(0) {
        return Err(likely::Error::Usage("--classes must be at least 1".into()));
    }
    if args.max_iter == Some(0) {
        return Err(likely::Error::Usage("--max-iter must be at least 1".into()));
    }
    if optimizer != Optimizer::Adam && args.lr.is_some() {
        return Err(likely::Error::Usage(
            "--lr applies to --optimizer adam; Newton and L-BFGS choose their own steps".into(),
        ));
    }
    if let Some(family) = args.censored.as_ref().map(|_| args.family.build(1)) {
        if !family.censorable() {
            return Err(likely::Error::Usage(format!(
                "--censored: the {} family takes no censored rows yet (censoring applies to {})",
                family.name(),
                likely::family::censored::censorable_names().join(", ")
            )));
        }
    }
    // Weights and censoring flags are columns held beside the samples, on the CPU engine.
    let row_roles = match (&args.weights, &args.censored) {
        (Some(_), _) => Some(("--weights", "weights")),
        (None, Some(_)) => Some(("--censored", "censored rows")),
        (None, None) => None,
    };
    if let Some((flag, what)) = row_roles {
        if args.engine.backend == engine::Backend::Gpu {
            return Err(likely::Error::Usage(format!(
                "{flag} runs on the CPU engine (--backend cpu or auto): the GPU kernels do \
                 not take {what} yet"
            )));
        }
        if args.stream {
            return Err(likely::Error::Usage(format!(
                "{flag} holds the data and its {what} in memory; it does not stream"
            )));
        }
    }
    // A weighted or censored fit runs on the CPU engine (the kernels take neither).
    let backend = if row_roles.is_some() {
        engine::Backend::Cpu
    } else {
        args.engine.backend
    };
    let gpu = engine::gpu_for(backend, &args.engine.selector())?;
    let gpu_budget = match (&args.gpu_memory, &gpu) {
        (Some(text), _) => parse_size(text)?,
        (None, Some(ctx)) => ctx.adapter().max_buffer.min(2 << 30),
        (None, None) => 0,
    };
    if let Some(ctx) = &gpu {
        ctx.set_memory_budget(gpu_budget);
    }
    // Data whose in-memory footprint exceeds the host budget (or any, with --stream) is
    // streamed in chunks.
    let format = data::FileFormat::of(&args.data)?;
    let column = args.column.as_deref();
    // A weighted fit holds an f64 weight beside each sample, and never streams (it is
    // refused below where it would have to).
    let weight_bytes = if row_roles.is_some() { 9 } else { 0 };
    let too_big = |rows: usize, width: u64| {
        args.stream || in_memory_bytes(rows, width + weight_bytes, gpu.as_ref()) > host_budget
    };
    // An f32 .npy bound for the device (with a covariance that needs no per-sample scores)
    // is read straight onto it, with no host copy (GpuEngine::from_source).
    let mut direct = None;
    let reader = match format {
        data::FileFormat::Npy => {
            let reader = data::NpyReader::open(&args.data, column)?;
            let width = if reader.exact_in_f32() { 4 } else { 8 };
            // (A categorical family's classes are counted as the samples are read onto the
            // device: GpuEngine::from_categorical_source.)
            let family = args.family.build(1);
            let onto_device = gpu.as_ref().filter(|ctx| {
                engine::GpuEngine::reads_directly(ctx, family.as_ref())
                    && reader.exact_in_f32()
                    && reader.len() as u64 * 4 <= gpu_budget
                    && args.inference.cov == likely::inference::CovType::Hessian
                    // An L1 prior's fit runs in coordinates scaled by the samples'
                    // re-expression (psi = a theta, the prior's kink at 0), which a kernel
                    // reading the samples as they are does not have: a location of data
                    // spread over 1e-12 would be 1e12 times worse scaled than log sigma.
                    && !(matches!(args.prior, Some(likely::fit::Prior::L1 { .. }))
                        && family.rescaling() != likely::family::Rescaling::None)
            });
            match (too_big(reader.len(), width), onto_device) {
                (true, _) => Some(Source::Npy(reader)),
                (false, Some(ctx)) => {
                    direct = Some((ctx, reader, family));
                    None
                }
                (false, None) => None,
            }
        }
        data::FileFormat::Parquet => {
            let reader = data::ParquetColumn::open(&args.data, column)?;
            if reader.is_text() && args.stream {
                return Err(likely::Error::Usage(format!(
                    "--stream reads numeric columns; '{}' holds strings (class labels), which \
                     are read into memory",
                    reader.column_label()
                )));
            }
            // Read as f64, then narrowed where exact or moved into the shared buffer a piece
            // at a time (Samples::narrowest): 8 bytes a sample at the peak.
            (!reader.is_text() && too_big(reader.len(), 8))
                .then(|| Source::Parquet(Box::new(reader)))
        }
        data::FileFormat::Csv if args.stream => {
            return Err(likely::Error::Usage(
                "--stream reads .npy and Parquet files; convert the CSV (numpy.save or \
                 pandas.DataFrame.to_parquet)"
                    .into(),
            ));
        }
        data::FileFormat::Csv => {
            // A CSV family column is read into memory (it cannot be streamed): say so where
            // its values alone would exceed the budget the user set.
            let bytes = std::fs::metadata(&args.data).map_or(0, |m| m.len());
            if args.host_memory.is_some() && bytes / 2 > host_budget {
                errln!(
                    "warning: --host-memory does not stream a CSV family fit: {} ({bytes} bytes) \
                     is read into memory; convert it to .npy or Parquet to stream it",
                    args.data.display()
                );
            }
            None
        }
    };
    if args.family != FamilyName::Categorical && args.classes.is_some() {
        return Err(likely::Error::Usage(
            "--classes applies to the categorical family only".into(),
        ));
    }
    let host_chunk_bytes = (host_budget / 4).clamp(1 << 16, 256 << 20);
    // The time to read the data into memory (a streamed fit reads during the fit).
    let mut read_seconds = None;
    // The frequency weights (`--weights`) and censoring flags (`--censored`), read beside
    // the samples.
    let mut weights = None;
    let mut censored = None;
    let fitting = std::time::Instant::now();
    let mut streamed = false;
    // Whether the samples were read straight onto the device (no host copy).
    let mut onto_device = false;
    if let (Some((flag, what)), Some(_)) = (row_roles, &reader) {
        return Err(likely::Error::Usage(format!(
            "{flag} holds the data and its {what} in memory, and {} with its {what} exceeds \
             the host memory budget ({host_budget} bytes; see --host-memory)",
            args.data.display()
        )));
    }
    // Streamed, or read straight onto the device; else (None) read into memory below.
    let built: Option<(Box<dyn engine::Engine>, data::Dataset)> = match (reader, direct) {
        (Some(reader), _) => {
            if args.family == FamilyName::Categorical && args.classes.is_none() {
                return Err(likely::Error::Usage(
                    "streamed categorical data needs --classes K".into(),
                ));
            }
            let family = args.family.build(args.classes.unwrap_or(1));
            let dataset = data::Dataset::streamed(&args.data, reader.column_label(), format);
            streamed = true;
            let engine = StreamingEngine::new(
                family,
                reader,
                host_chunk_bytes,
                gpu.as_ref().map(|c| (c, gpu_budget)),
            )?;
            Some((Box::new(engine), dataset))
        }
        (None, Some((ctx, reader, family))) => {
            let reading = std::time::Instant::now();
            let label = reader.column_label().to_string();
            let source = Source::Npy(reader);
            let engine = if args.family == FamilyName::Categorical {
                engine::GpuEngine::from_categorical_source(ctx, args.classes, source)?
            } else {
                engine::GpuEngine::from_source(ctx, family, source)?
            };
            match engine {
                Some(engine) => {
                    read_seconds = Some(reading.elapsed().as_secs_f64());
                    // A dataset without values in memory (the device holds them).
                    let dataset = data::Dataset::streamed(&args.data, &label, format);
                    onto_device = true;
                    Some((Box::new(engine) as Box<dyn engine::Engine>, dataset))
                }
                None => None,
            }
        }
        (None, None) => None,
    };
    let (engine, dataset) = match built {
        Some(built) => built,
        None => load_and_build(
            &args,
            &gpu,
            gpu_budget,
            host_chunk_bytes,
            &mut read_seconds,
            &mut weights,
            &mut censored,
        )?,
    };
    let rows = engine.n();
    let count = engine.count();
    if streamed && args.inference.cov != likely::inference::CovType::Hessian {
        return Err(likely::Error::Usage(
            "--cov opg and robust need the data in memory; streamed fits use --cov hessian".into(),
        ));
    }

    let fixed = family_fixed(engine.family(), args.model.fix.as_deref())?;
    if fixed.is_some() && args.inference.ci == super::report::CiMethod::Profile {
        return Err(likely::Error::Usage(
            "--ci profile re-fits every parameter; with --fix use the Wald intervals".into(),
        ));
    }
    let options = FitOptions {
        fixed: fixed.as_ref().map_or(Vec::new(), |f| f.theta.clone()),
        optimizer,
        prior: args.prior,
        max_iter: args.max_iter.unwrap_or(match optimizer {
            Optimizer::Newton | Optimizer::Lbfgs => 500,
            Optimizer::Adam => 5000,
        }),
        learning_rate: args.lr.unwrap_or(0.05),
        ..FitOptions::default()
    };
    let mut engine = super::progress::with_progress(engine, args.json);
    let started = std::time::Instant::now();
    let result = fit::fit(engine.as_mut(), &options)?;
    let seconds = started.elapsed().as_secs_f64();
    let natural = engine.family().natural(&result.theta);
    let held = options.held(result.theta.len());
    let (prior, cov, alpha) = (args.prior, args.inference.cov, args.inference.alpha);
    let mut inference = match &weights {
        Some(w) => {
            let values = data::Weighted {
                values: &dataset.values,
                weights: w,
                censored: censored.as_deref(),
            };
            let (theta, nll) = (&result.theta, result.nll);
            likely::inference::for_family(
                engine.as_mut(),
                theta,
                nll,
                &values,
                prior,
                cov,
                alpha,
                &held,
            )?
        }
        None => likely::inference::for_family(
            engine.as_mut(),
            &result.theta,
            result.nll,
            &dataset.values,
            prior,
            cov,
            alpha,
            &held,
        )?,
    };
    if args.inference.ci == super::report::CiMethod::Profile {
        likely::inference::profile_family(
            engine.as_mut(),
            &result,
            &options,
            args.inference.alpha,
            &mut inference,
        )?;
    }
    // Engine set-up (the GPU upload), the fit and its inference.
    let fit_seconds = fitting.elapsed().as_secs_f64() - read_seconds.unwrap_or(0.0);
    // What the user must know comes first: the table below is of a point that is not the
    // optimum when the fit did not converge.
    for w in &result.warnings {
        errln!("warning: {w}");
    }
    if !result.converged {
        errln!(
            "warning: the fit did not converge ({}); the optimality test measures {:.3e} \
             (standard errors from the optimum; converged means at most {:.0e}); the last \
             gradient norm was {:.3e}",
            result.reason.describe(),
            result.decrement,
            fit::DECREMENT_TOLERANCE,
            result.grad_norm
        );
    }
    // The held parameter as the user gave it (not its link's image mapped back).
    let mut natural = natural;
    if let Some(f) = &fixed {
        for p in natural.iter_mut().filter(|p| p.name == f.name) {
            p.value = likely::family::ParamValue::Scalar(f.value);
        }
        for e in inference.estimates.iter_mut().filter(|e| e.name == f.name) {
            e.estimate = f.value;
        }
    }
    let family = engine.family();
    let shape: super::report::Shape = natural
        .iter()
        .map(|p| (p.name.to_string(), p.value.values().len()))
        .collect();

    if args.json {
        let mut params = Map::new();
        for p in &natural {
            params.insert(p.name.into(), p.value.to_json());
        }
        let theta: Map<String, Value> = family
            .theta_names()
            .into_iter()
            .zip(&result.theta)
            .map(|(k, v)| (k, json_f64(*v)))
            .collect();
        let mut out = json!({
            "family": family.name(),
            "n": count_json(count),
            "rows": rows,
            "data": dataset.path.display().to_string(),
            "column": dataset.column,
            "params": params,
            "theta": theta,
            "nll": json_f64(result.nll),
            "loglik": json_f64(-result.nll),
            "converged": result.converged,
            "reason": result.reason,
            "iterations": result.iterations,
            "evaluations": result.evaluations,
            "grad_norm": json_f64(result.grad_norm),
            "optimizer": result.optimizer,
            "precision": result.precision,
            "f64_engine": engine.f64_engine(),
            "decrement": json_f64(result.decrement),
            "engine": engine.name(),
            "adapter": engine.adapter(),
            "seed": args.seed,
            "seconds": seconds,
            "read_seconds": read_seconds.map_or(Value::Null, json_f64),
            "fit_seconds": fit_seconds,
            "streamed": streamed,
            "read_onto_device": onto_device,
            "peak_rss_bytes": likely::engine::stream::peak_rss_bytes(),
        });
        out["warnings"] = json!(result.warnings);
        if let Some(w) = &args.weights {
            out["weights"] = json!(w);
        }
        if let (Some(c), Some(flags)) = (&args.censored, &censored) {
            out["censored"] = json!(c);
            out["censored_rows"] = json!(flags.iter().filter(|&&f| f).count());
        }
        if let Some(f) = &fixed {
            out["fixed"] = json!({ f.name: likely::util::json_f64(f.value) });
        }
        super::report::add_json(&mut out, &inference, &shape, None);
        if let Some(labels) = &dataset.labels {
            out["labels"] = json!(labels);
        }
        if let (Some(prior), Some(lp), Some(lpost)) =
            (args.prior, result.log_prior, result.log_posterior())
        {
            out["prior"] = json!(prior.to_string());
            out["log_prior"] = json_f64(lp);
            out["log_posterior"] = json_f64(lpost);
        }
        outln!("{out}");
    } else {
        let column = if dataset.column.is_empty() {
            String::new()
        } else {
            format!(" (column {})", dataset.column)
        };
        let mut n = match &args.weights {
            Some(w) => format!("n = {count} (the sum of the weights in {w}; {rows} rows)"),
            None => format!("n = {rows}"),
        };
        if let (Some(c), Some(flags)) = (&args.censored, &censored) {
            let k = flags.iter().filter(|&&f| f).count();
            n += &format!(", {k} rows right-censored (flagged in {c})");
        }
        outln!(
            "{} fit to {}{column}, {n}",
            family.name(),
            dataset.path.display()
        );
        if !result.converged {
            outln!(
                "NOT CONVERGED ({}): the estimates below are where the fit stopped",
                result.reason.describe()
            );
        }
        outln!(
            "engine: {} on {} ({} arithmetic)",
            engine.name(),
            engine.adapter(),
            result.precision.as_str()
        );
        if let Some(prior) = args.prior {
            outln!("estimate: MAP with prior {prior} on the unconstrained parameters");
        } else {
            outln!("estimate: maximum likelihood");
        }
        for p in &natural {
            match &p.value {
                ParamValue::Scalar(v) if fixed.as_ref().is_some_and(|f| f.name == p.name) => {
                    outln!("  {:<8} = {v} (fixed, not estimated)", p.name)
                }
                ParamValue::Scalar(v) => outln!("  {:<8} = {v:.10}", p.name),
                ParamValue::Vector(vs) => {
                    for (k, v) in vs.iter().enumerate() {
                        // --classes may exceed the text labels: the extra classes are unnamed.
                        let label = match &dataset.labels {
                            None => k.to_string(),
                            Some(l) => l
                                .get(k)
                                .cloned()
                                .unwrap_or_else(|| format!("{k}, no label")),
                        };
                        outln!("  {}[{label}] = {v:.10}", p.name);
                    }
                }
            }
        }
        outln!(
            "  NLL      = {:.10}   log-likelihood = {:.10}",
            result.nll,
            -result.nll
        );
        if let (Some(lp), Some(lpost)) = (result.log_prior, result.log_posterior()) {
            outln!("  log prior = {lp:.10}   log posterior = {lpost:.10}");
        }
        super::report::print_table(
            &inference,
            &format!("{:?}", args.inference.ci).to_lowercase(),
        );
        outln!(
            "{} ({}) after {} iterations, {} evaluations, {seconds:.3} s",
            if result.converged {
                "converged"
            } else {
                "NOT converged"
            },
            result.reason.describe(),
            result.iterations,
            result.evaluations
        );
    }
    Ok(if result.converged {
        0
    } else {
        super::EXIT_NOT_CONVERGED
    })
}

/// `--fix`'s NAME and VALUE, trimmed; `example` shows the form where there is no `=`.
pub(super) fn split_fix<'a>(text: &'a str, example: &str) -> likely::Result<(&'a str, &'a str)> {
    text.split_once('=')
        .map(|(name, value)| (name.trim(), value.trim()))
        .ok_or_else(|| {
            likely::Error::Usage(format!(
                "--fix takes NAME=VALUE (e.g. {example}), got '{text}'"
            ))
        })
}

/// `--fix NAME=VALUE` for a family fit: the natural parameter NAME held at VALUE, as its
/// coordinate of theta (the link's image of VALUE).
struct FamilyFixed {
    name: &'static str,
    value: f64,
    /// theta's coordinates, the held one given.
    theta: Vec<Option<f64>>,
}

fn family_fixed(
    family: &dyn likely::family::Family,
    text: Option<&str>,
) -> likely::Result<Option<FamilyFixed>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let p = family.n_params();
    let natural = family.natural(&vec![0.0; p]);
    let names: Vec<&'static str> = natural.iter().map(|n| n.name).collect();
    let scalar = natural.len() == p
        && natural
            .iter()
            .all(|n| matches!(n.value, likely::family::ParamValue::Scalar(_)));
    if !scalar {
        return Err(likely::Error::Usage(format!(
            "--fix holds a scalar parameter; the {} family's are not",
            family.name()
        )));
    }
    let (name, value) = split_fix(text, &format!("{}=1", names[0]))?;
    let Some(j) = names.iter().position(|n| *n == name) else {
        return Err(likely::Error::Usage(format!(
            "--fix '{name}': the {} family's parameters are {}",
            family.name(),
            names.join(", ")
        )));
    };
    let link = family.links()[j];
    let parsed: Option<f64> = value.parse().ok();
    // Positive parameters as normal doubles (a subnormal's logarithm is that of a rounded
    // value).
    let in_range = |v: f64| {
        v.is_finite()
            && link.forward(v).is_finite()
            && (link != likely::family::Link::Log || v >= f64::MIN_POSITIVE)
    };
    let Some(v) = parsed.filter(|&v| in_range(v)) else {
        return Err(likely::Error::Usage(format!(
            "--fix {}={value}: outside the parameter's range ({})",
            names[j],
            match link {
                likely::family::Link::Log => "a positive number",
                likely::family::Link::Logit => "a probability in (0, 1)",
                likely::family::Link::Identity => "a finite number",
            }
        )));
    };
    let mut theta = vec![None; p];
    theta[j] = Some(link.forward(v));
    Ok(Some(FamilyFixed {
        name: names[j],
        value: v,
        theta,
    }))
}
