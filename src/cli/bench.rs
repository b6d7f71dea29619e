//! `likely bench`: the jobs of ../shared/bench/peers.py on this machine's engines, with a
//! same-run streaming baseline for GPU evaluations.

use likely::engine::{CpuEngine, Engine, GpuEngine};
use likely::family::FamilyName;
use likely::gpu::timer::KernelTime;
use likely::gpu::{AdapterSelector, GpuContext};
use likely::util::json_f64;
use likely::Error;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchEngine {
    Cpu,
    Gpu,
}

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct BenchArgs {
    /// gauss-eval, logreg-fit, mlp-train, or eval-<family> (eval-bernoulli, eval-poisson, ...).
    #[arg(long)]
    job: String,
    /// Samples (rows); default: 2^24 for evaluations, 1e6 for logreg-fit, 2^20 for mlp-train.
    #[arg(long)]
    n: Option<usize>,
    #[arg(long, value_enum, default_value_t = BenchEngine::Cpu)]
    engine: BenchEngine,
    /// Timed repetitions (median and min are reported).
    #[arg(long, default_value_t = 10)]
    reps: usize,
    #[arg(long)]
    adapter: Option<String>,
    /// Read the job's data from DIR/<job>.x.npy and DIR/<job>.y.npy, as bench/peer_data.py
    /// writes them from peers.py's own generators, so that likely and the peers fit the same
    /// numbers (default: the same distributions drawn with likely's RNG).
    #[arg(long, value_name = "DIR", conflicts_with = "n")]
    data: Option<std::path::PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Median and minimum of some timings.
fn median_min(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

pub fn run(args: BenchArgs) -> likely::Result<i32> {
    if args.reps == 0 || args.n == Some(0) {
        return Err(Error::Usage("--reps and --n must be at least 1".into()));
    }
    if let Some(n) = args.n {
        super::check_sample_size("--n", n)?;
    }
    let ctx = match args.engine {
        BenchEngine::Gpu => Some(GpuContext::new(&AdapterSelector {
            name: args.adapter.clone(),
        })?),
        BenchEngine::Cpu => None,
    };
    let adapter = ctx.as_ref().map_or(
        format!("host CPU, {} threads, f64", rayon::current_num_threads()),
        |c| c.adapter_label(),
    );
    let engine_name = if ctx.is_some() { "gpu" } else { "cpu" };
    let mut out = json!({ "job": args.job, "engine": engine_name, "adapter": adapter });
    let family_job = match args.job.as_str() {
        "gauss-eval" => Some((
            FamilyName::Gaussian,
            likely::bench::GAUSS_AT.to_vec(),
            vec![5.0, 2f64.ln()],
        )),
        job if job.starts_with("eval-") => {
            let name = &job[5..];
            let family = FamilyName::ALL
                .into_iter()
                .find(|f| f.as_str() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = FamilyName::ALL.iter().map(|f| f.as_str()).collect();
                    Error::Usage(format!(
                        "unknown job '{job}': eval-<family> takes one of {}",
                        names.join(", ")
                    ))
                })?;
            let f = family.build(5);
            let mut rng = StdRng::seed_from_u64(5);
            let truth = f.random_theta(&mut rng);
            let at = f.random_theta(&mut rng);
            Some((family, at, truth))
        }
        _ => None,
    };
    if let Some((family, at, truth)) = family_job {
        let data: Arc<[f64]> = match &args.data {
            Some(dir) if args.job == "gauss-eval" => {
                let data = likely::bench::peer_data(dir, &args.job)?;
                out["data"] = json!(data.source);
                data.x.into()
            }
            Some(_) => {
                return Err(Error::Usage(format!(
                    "--data holds peers.py's jobs; {} has no peer data",
                    args.job
                )))
            }
            None => likely::bench::family_data(family, &truth, args.n.unwrap_or(1 << 24)).into(),
        };
        let n = data.len();
        // On the CPU the data are held as the engine holds them: f32 values (as the peers
        // hold them) at 4 bytes a sample.
        let (mut engine, host_samples): (Box<dyn Engine>, _) = match &ctx {
            Some(c) => {
                let mut gpu = GpuEngine::new(c, family.build(5), &data)?;
                gpu.enable_kernel_timing();
                (Box::new(gpu), None)
            }
            None => {
                let samples = likely::data::Samples::narrowest(data.to_vec());
                let cpu = CpuEngine::from_samples(family.build(5), samples.clone());
                (Box::new(cpu), Some(samples))
            }
        };
        // The host's streaming limit over the same f32 values (the engine's own, shared),
        // timed in the same run.
        let host_values: Option<std::borrow::Cow<[f32]>> =
            host_samples.as_ref().map(|samples| match samples {
                likely::data::Samples::F32(v) => std::borrow::Cow::Borrowed(&v[..]),
                likely::data::Samples::F64(v) => v.iter().map(|&x| x as f32).collect(),
            });
        let mut limit_times = Vec::new();
        // The adapter's streaming roofline in the same run: the fastest plain one-pass sum
        // over the same f32 values (tuned on them), timed alternately with the job so that
        // both see the same machine.
        let mut roofline = match &ctx {
            Some(c) => {
                // The exact sum of the f32 values the kernel reads.
                let exact: f64 = data.iter().map(|&x| x as f32 as f64).sum();
                let mut sum = likely::gpu::roofline::PlainSum::new(c, &data)?;
                sum.tune(3)?;
                let error = likely::tolerance::relative_error(sum.sum()?, exact);
                let variant = sum.variant();
                out["roofline_kernel"] = json!(format!(
                    "{:?} walk, {} workgroups of {}",
                    variant.walk,
                    variant.workgroups,
                    likely::gpu::shader::WORKGROUP_SIZE
                ));
                out["roofline_relative_error"] = json_f64(error);
                sum.enable_kernel_timing();
                Some(sum)
            }
            None => None,
        };
        let mut job_times = Vec::new();
        let mut roof_times = Vec::new();
        // The first repetition warms up (pipelines, caches) and is not counted. The job and
        // the roofline take turns going first, so that neither always follows the other.
        for rep in 0..=args.reps {
            let mut time_job = || -> likely::Result<f64> {
                let start = Instant::now();
                engine.nll_and_grad(&at)?;
                Ok(start.elapsed().as_secs_f64())
            };
            let (job_seconds, roof_seconds) = match roofline.as_mut() {
                Some(sum) => {
                    let mut time_sum = || -> likely::Result<f64> {
                        let start = Instant::now();
                        std::hint::black_box(sum.sum()?);
                        Ok(start.elapsed().as_secs_f64())
                    };
                    if rep % 2 == 0 {
                        let job = time_job()?;
                        (job, Some(time_sum()?))
                    } else {
                        let roof = time_sum()?;
                        (time_job()?, Some(roof))
                    }
                }
                None => {
                    let values = host_values.as_deref().unwrap_or_default();
                    let time_limit = || {
                        let start = Instant::now();
                        std::hint::black_box(likely::bench::streaming_limit(values, at[0]));
                        start.elapsed().as_secs_f64()
                    };
                    let (job, limit) = if rep % 2 == 0 {
                        let job = time_job()?;
                        (job, time_limit())
                    } else {
                        let limit = time_limit();
                        (time_job()?, limit)
                    };
                    if rep > 0 {
                        limit_times.push(limit);
                    }
                    (job, None)
                }
            };
            if rep > 0 {
                job_times.push(job_seconds);
                roof_times.extend(roof_seconds);
            }
        }
        // Our fraction of the roofline: the median over repetitions of each one's ratio, so
        // that a slow spell of a shared machine slows both sides of the ratios it touches.
        let mut fractions: Vec<f64> = roof_times
            .iter()
            .zip(&job_times)
            .map(|(roof, job)| roof / job)
            .collect();
        // (Each repetition's ratio to the limit too, before the job's times are sorted.)
        let mut limit_fractions: Vec<f64> = limit_times
            .iter()
            .zip(&job_times)
            .map(|(limit, job)| limit / job)
            .collect();
        let (median, min) = median_min(&mut job_times);
        let kernel = engine.kernel_time();
        // Bytes the engine reads per evaluation: f32 on the GPU, and on the CPU the width
        // the samples are held at (f32 where exact, as the bench's data are).
        let bytes = n as f64
            * match &ctx {
                Some(_) => 4.0,
                None => host_samples.as_ref().map_or(8, |s| s.width()) as f64,
            };
        if !limit_times.is_empty() {
            let (limit, _) = median_min(&mut limit_times);
            let (fraction, _) = median_min(&mut limit_fractions);
            out["limit_gbps"] = json_f64(bytes / limit / 1e9);
            out["limit_samples_per_s"] = json_f64(n as f64 / limit);
            out["limit_fraction"] = json_f64(fraction);
        }
        out["n"] = json!(n);
        out["seconds"] = json_f64(median);
        out["seconds_min"] = json_f64(min);
        out["samples_per_s"] = json_f64(n as f64 / median);
        out["gbps"] = json_f64(bytes / median / 1e9);
        report_kernel_time(&mut out, kernel, bytes);
        if let Some(sum) = &roofline {
            let (roof, _) = median_min(&mut roof_times);
            let (fraction, _) = median_min(&mut fractions);
            out["roofline_gbps"] = json_f64(bytes / roof / 1e9);
            out["roofline_fraction"] = json_f64(fraction);
            if let (Some(ours), Some(plain)) = (kernel, sum.kernel_time()) {
                // The same comparison on kernel time alone (no submit or readback).
                out["roofline_kernel_gbps"] = json_f64(bytes / plain.mean() / 1e9);
                out["roofline_kernel_fraction"] = json_f64(plain.mean() / ours.mean());
            }
        }
    } else {
        match args.job.as_str() {
            "logreg-fit" => logreg(&args, ctx.as_ref(), &mut out)?,
            "mlp-train" => mlp(&args, ctx.as_ref(), &mut out)?,
            job => {
                return Err(Error::Usage(format!(
                    "unknown job '{job}': gauss-eval, logreg-fit, mlp-train or eval-<family>"
                )))
            }
        }
    }
    if args.json {
        outln!("{out}");
    } else {
        outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(0)
}

/// `kernel_seconds` (mean per timed unit of work, from timestamp queries) and the GB/s of
/// data it implies.
fn report_kernel_time(out: &mut serde_json::Value, kernel: Option<KernelTime>, bytes: f64) {
    if let Some(k) = kernel.filter(|k| k.passes > 0 && k.seconds > 0.0) {
        out["kernel_seconds"] = json_f64(k.mean());
        out["kernel_gbps"] = json_f64(bytes / k.mean() / 1e9);
    }
}

/// The job's table: peers.py's (with --data) or drawn with likely's RNG.
fn job_data(
    args: &BenchArgs,
    out: &mut serde_json::Value,
    draw: fn(usize) -> likely::bench::JobData,
    default_n: usize,
) -> likely::Result<likely::bench::JobData> {
    let data = match &args.data {
        Some(dir) => likely::bench::peer_data(dir, &args.job)?,
        None => draw(args.n.unwrap_or(default_n)),
    };
    out["data"] = json!(data.source);
    Ok(data)
}

/// Median and minimum seconds, samples/s and GB/s of `runs` over `data`, the median run's
/// final mean NLL and steps, and its kernel time.
fn report_runs(
    out: &mut serde_json::Value,
    data: &likely::bench::JobData,
    mut runs: Vec<likely::bench::Run>,
) {
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let median = &runs[runs.len() / 2];
    out["n"] = json!(data.n());
    out["seconds"] = json_f64(median.seconds);
    out["seconds_min"] = json_f64(runs[0].seconds);
    out["samples_per_s"] = json_f64(data.n() as f64 / median.seconds);
    out["gbps"] = json_f64(data.bytes() / median.seconds / 1e9);
    out["mean_nll"] = json_f64(median.mean_nll);
    out["iterations"] = json!(median.steps);
    report_kernel_time(out, median.kernel, data.bytes());
}

/// logreg-fit: the unpenalised logistic MLE (Newton / Fisher scoring) to convergence.
fn logreg(
    args: &BenchArgs,
    ctx: Option<&GpuContext>,
    out: &mut serde_json::Value,
) -> likely::Result<()> {
    let data = job_data(args, out, likely::bench::logreg_data, 1_000_000)?;
    let runs = (0..args.reps.min(3))
        .map(|_| likely::bench::fit_logreg(&data, ctx))
        .collect::<likely::Result<Vec<_>>>()?;
    report_runs(out, &data, runs);
    if ctx.is_none() {
        report_row_passes(args, &data, out)?;
    }
    Ok(())
}

/// The CPU model engine's row passes over the job's table (a logistic Newton pass, a
/// least-squares pass) beside the streaming limit over the same f64 values, timed in turn in
/// each repetition: `newton_pass_gbps`, `least_squares_pass_gbps`, `limit_gbps` and each
/// pass's `*_limit_fraction` (the median of the repetitions' ratios), and how the Newton pass
/// holds its rows on this processor (`newton_pass_kind`).
fn report_row_passes(
    args: &BenchArgs,
    data: &likely::bench::JobData,
    out: &mut serde_json::Value,
) -> likely::Result<()> {
    let net = likely::bench::logreg_network(data.d);
    let params = net.init(0, &data.y);
    // One untimed round first: the threads started, the table's pages touched.
    likely::bench::time_row_passes(data, &params)?;
    let times = (0..args.reps)
        .map(|_| likely::bench::time_row_passes(data, &params))
        .collect::<likely::Result<Vec<_>>>()?;
    let bytes = ((data.x.len() + data.y.len()) * 8) as f64;
    let mut limit: Vec<f64> = times.iter().map(|t| t.limit).collect();
    let (limit, _) = median_min(&mut limit);
    out["limit_gbps"] = json_f64(bytes / limit / 1e9);
    out["newton_pass_kind"] = likely::model::newton::scalar_pass_kind().into();
    for (name, pass) in [
        (
            "newton",
            (|t: &likely::bench::RowPassTimes| t.newton) as fn(&_) -> f64,
        ),
        ("least_squares", |t| t.least_squares),
    ] {
        let mut fractions: Vec<f64> = times.iter().map(|t| t.limit / pass(t)).collect();
        let mut seconds: Vec<f64> = times.iter().map(pass).collect();
        let (median, _) = median_min(&mut seconds);
        let (fraction, _) = median_min(&mut fractions);
        out[format!("{name}_pass_seconds")] = json_f64(median);
        out[format!("{name}_pass_gbps")] = json_f64(bytes / median / 1e9);
        out[format!("{name}_limit_fraction")] = json_f64(fraction);
    }
    Ok(())
}

/// mlp-train: one epoch of AdamW at batch 1024 on the seed MLP.
fn mlp(
    args: &BenchArgs,
    ctx: Option<&GpuContext>,
    out: &mut serde_json::Value,
) -> likely::Result<()> {
    let data = job_data(args, out, likely::bench::mlp_data, 1 << 20)?;
    let runs = likely::bench::train_mlp(&data, ctx, args.reps.min(3))?;
    report_runs(out, &data, runs);
    Ok(())
}
