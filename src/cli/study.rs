use super::EngineArgs;
use likely::family::FamilyName;
use likely::study;

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct StudyArgs {
    #[arg(long, value_enum)]
    family: FamilyName,
    /// True natural parameters, e.g. mu=5,sigma=2 (vectors as probs=0.2:0.3:0.5).
    #[arg(long)]
    params: String,
    /// Sample sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    n: Vec<usize>,
    /// Simulated datasets per sample size.
    #[arg(long, default_value_t = 200)]
    reps: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// 1 - confidence level of the intervals whose coverage is measured.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Draw the estimates' spread against n beside the Cramer-Rao band into this .svg or .png file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    #[arg(long)]
    json: bool,
}

pub fn run(args: StudyArgs) -> likely::Result<i32> {
    if args.reps < 2 || args.n.is_empty() || args.n.contains(&0) {
        return Err(likely::Error::Usage(
            "--reps must be at least 2 and every --n at least 1".into(),
        ));
    }
    for &n in &args.n {
        super::check_sample_size("--n", n)?;
    }
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(likely::Error::Usage(format!(
            "--alpha must be in (0, 1), got {}",
            args.alpha
        )));
    }
    if let Some(p) = &args.plot {
        if !matches!(p.extension().and_then(|e| e.to_str()), Some("svg" | "png")) {
            return Err(likely::Error::Usage(format!(
                "--plot {}: the file must end in .svg or .png",
                p.display()
            )));
        }
    }
    let classes = if args.family == FamilyName::Categorical {
        args.params
            .split("probs=")
            .nth(1)
            .map_or(2, |v| v.split(',').next().unwrap_or("").split(':').count())
    } else {
        1
    };
    let family = args.family.build(classes);
    let theta = study::parse_params(family.as_ref(), &args.params)?;
    let total = args.n.len() * args.reps;
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total as u64)
    };
    let rows = study::run(
        family.as_ref(),
        &theta,
        &args.n,
        args.reps,
        args.seed,
        args.alpha,
        args.engine.backend,
        &args.engine.selector(),
        |_, _| bar.inc(1),
    )?;
    bar.finish_and_clear();
    // Fewer than two estimates give no bias, spread or coverage to report.
    if let Some(row) = rows.iter().find(|r| r.reps < 2) {
        return Err(likely::Error::InvalidData(format!(
            "at n = {}, {} of the {} simulated samples had no MLE (degenerate samples, e.g. \
             every value equal): too few estimates for a study; use a larger --n",
            row.n, row.failed, args.reps
        )));
    }
    if let Some(path) = &args.plot {
        let bytes = if path.extension().and_then(|e| e.to_str()) == Some("png") {
            study::png(&rows, args.alpha)?
        } else {
            study::svg(&rows, args.alpha).into_bytes()
        };
        std::fs::write(path, bytes).map_err(|source| likely::Error::Io {
            path: path.clone(),
            source,
        })?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::json!({ "family": family.name(), "alpha": args.alpha, "reps": args.reps, "results": rows })
        );
    } else {
        outln!(
            "{} study: {} datasets per n, intervals at {:.0}%",
            family.name(),
            args.reps,
            100.0 * (1.0 - args.alpha)
        );
        outln!(
            "{:>8} {:<10} {:>10} {:>11} {:>10} {:>12} {:>10} {:>10} {:>10} {:>9}",
            "n",
            "param",
            "true",
            "bias",
            "rmse",
            "sqrt(n)rmse",
            "CRLB sd",
            "mean se",
            "sd",
            "coverage"
        );
        for r in &rows {
            outln!(
                "{:>8} {:<10} {:>10.4} {:>11.3e} {:>10.3e} {:>12.4} {:>10.4} {:>10.3e} {:>10.3e} {:>9.3}",
                r.n, r.param, r.truth, r.bias, r.rmse, r.sqrt_n_rmse, r.crlb_sd, r.mean_se, r.sd, r.coverage
            );
        }
        let failed: usize = rows.iter().map(|r| r.failed).max().unwrap_or(0);
        if failed > 0 {
            outln!("(some degenerate samples had no MLE and were skipped: see 'failed' in --json)");
        }
    }
    Ok(0)
}
