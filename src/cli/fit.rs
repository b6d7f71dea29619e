use super::EngineArgs;
use likely::data;
use likely::engine;
use likely::family::{FamilyName, ParamValue};
use likely::fit::{self, FitOptions, Optimizer, Prior};
use likely::util::json_f64;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct FitArgs {
    /// The likelihood family.
    #[arg(long, value_enum)]
    family: FamilyName,
    /// CSV (with a header row) or .npy file.
    #[arg(long)]
    data: PathBuf,
    /// CSV column name, or column index of a 2-D .npy array.
    #[arg(long)]
    column: Option<String>,
    /// Number of classes for the categorical family (default: from the data).
    #[arg(long)]
    classes: Option<usize>,
    /// MAP prior on the unconstrained parameters: l2:SCALE (Gaussian, sd SCALE) or l1:SCALE (Laplace, scale SCALE).
    #[arg(long)]
    prior: Option<Prior>,
    /// lbfgs or adam for a family; for --model also sgd and adamw (default: lbfgs for linear
    /// models, adamw for MLPs).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Maximum optimiser iterations (default 500 for lbfgs, 5000 for adam).
    #[arg(long)]
    max_iter: Option<usize>,
    /// Learning rate (default 0.05 for a family's Adam; for models 1e-3 for adam/adamw, 0.01 for sgd).
    #[arg(long)]
    lr: Option<f64>,
    /// Seed for random choices (recorded in the output; unconditional fits are deterministic).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    engine: EngineArgs,
    /// Print one JSON object instead of the human-readable report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub model: super::model::ModelArgs,
    #[command(flatten)]
    pub inference: super::report::InferenceArgs,
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
    if args.model.model.is_some() {
        return super::model::fit_model(
            args.family,
            &args.data,
            args.prior,
            args.optimizer,
            args.max_iter,
            args.lr,
            args.seed,
            &args.engine,
            args.json,
            &args.model,
            &args.inference,
        );
    }
    args.model.reject_without_model()?;
    let optimizer = match args.optimizer.unwrap_or(OptimizerArg::Lbfgs) {
        OptimizerArg::Lbfgs => Optimizer::Lbfgs,
        OptimizerArg::Adam => Optimizer::Adam,
        other => {
            return Err(likely::Error::Usage(format!(
                "--optimizer {other:?} applies to models (--model); a family fit takes lbfgs or adam"
            )
            .to_lowercase()))
        }
    };
    if args.max_iter == Some(0) {
        return Err(likely::Error::Usage("--max-iter must be at least 1".into()));
    }
    let dataset = data::load(&args.data, args.column.as_deref(), args.family)?;
    let classes = if args.family == FamilyName::Categorical {
        dataset.classes(args.classes)?
    } else {
        if args.classes.is_some() {
            return Err(likely::Error::Usage(
                "--classes applies to the categorical family only".into(),
            ));
        }
        1
    };
    let family = args.family.build(classes);
    dataset.check_support(family.as_ref())?;
    let n = dataset.values.len();
    let values: Arc<[f64]> = dataset.values.clone().into();
    let mut engine = engine::create(args.engine.backend, family, values, &args.engine.selector())?;

    let options = FitOptions {
        optimizer,
        prior: args.prior,
        max_iter: args.max_iter.unwrap_or(match optimizer {
            Optimizer::Lbfgs => 500,
            Optimizer::Adam => 5000,
        }),
        learning_rate: args.lr.unwrap_or(0.05),
        ..FitOptions::default()
    };
    let started = std::time::Instant::now();
    let result = fit::fit(engine.as_mut(), &options)?;
    let seconds = started.elapsed().as_secs_f64();
    let natural = engine.family().natural(&result.theta);
    let mut inference = likely::inference::for_family(
        engine.as_mut(),
        &result.theta,
        result.nll,
        &dataset.values,
        args.prior,
        args.inference.cov,
        args.inference.alpha,
    )?;
    if args.inference.ci == super::report::CiMethod::Profile {
        likely::inference::profile_family(
            engine.as_mut(),
            &result,
            &options,
            args.inference.alpha,
            &mut inference,
        )?;
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
            "n": n,
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
            "optimizer": format!("{optimizer:?}").to_lowercase(),
            "engine": engine.name(),
            "adapter": engine.adapter(),
            "seed": args.seed,
            "seconds": seconds,
        });
        out["warnings"] = json!(result.warnings);
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
        println!("{out}");
    } else {
        let column = if dataset.column.is_empty() {
            String::new()
        } else {
            format!(" (column {})", dataset.column)
        };
        println!(
            "{} fit to {}{column}, n = {n}",
            family.name(),
            dataset.path.display()
        );
        println!("engine: {} on {}", engine.name(), engine.adapter());
        if let Some(prior) = args.prior {
            println!("estimate: MAP with prior {prior} on the unconstrained parameters");
        } else {
            println!("estimate: maximum likelihood");
        }
        for p in &natural {
            match &p.value {
                ParamValue::Scalar(v) => println!("  {:<8} = {v:.10}", p.name),
                ParamValue::Vector(vs) => {
                    for (k, v) in vs.iter().enumerate() {
                        let label = dataset
                            .labels
                            .as_ref()
                            .map_or(k.to_string(), |l| l[k].clone());
                        println!("  {}[{label}] = {v:.10}", p.name);
                    }
                }
            }
        }
        println!(
            "  NLL      = {:.10}   log-likelihood = {:.10}",
            result.nll, -result.nll
        );
        if let (Some(lp), Some(lpost)) = (result.log_prior, result.log_posterior()) {
            println!("  log prior = {lp:.10}   log posterior = {lpost:.10}");
        }
        super::report::print_table(
            &inference,
            &format!("{:?}", args.inference.ci).to_lowercase(),
        );
        println!(
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
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    if !result.converged {
        eprintln!(
            "warning: the fit did not converge ({}); the last gradient norm was {:.3e}",
            result.reason.describe(),
            result.grad_norm
        );
    }
    Ok(0)
}
