//! `likely bench`: the jobs of ../shared/bench/peers.py on this machine's engines, with a
//! same-run streaming baseline for GPU evaluations.

use likely::engine::{CpuEngine, Engine, GpuEngine};
use likely::family::FamilyName;
use likely::gpu::timer::KernelTime;
use likely::gpu::{AdapterSelector, GpuContext};
use likely::model::{Activation, Head, ModelOptimizer, Network, TrainOptions};
use likely::util::json_f64;
use likely::Error;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchEngine {
    Cpu,
    Gpu,
}

#[derive(clap::Args)]
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
    #[arg(long)]
    json: bool,
}

fn normal(rng: &mut StdRng) -> f64 {
    <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)
}

/// Median and minimum of `reps` timings of `f` after one warm-up call.
fn time(reps: usize, mut f: impl FnMut() -> likely::Result<()>) -> likely::Result<(f64, f64)> {
    f()?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok((t[t.len() / 2], t[0]))
}

pub fn run(args: BenchArgs) -> likely::Result<i32> {
    if args.reps == 0 || args.n == Some(0) {
        return Err(Error::Usage("--reps and --n must be at least 1".into()));
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
            vec![4.9, 1.9f64.ln()],
            vec![5.0, 2f64.ln()],
        )),
        job if job.starts_with("eval-") => {
            let name = &job[5..];
            let family = FamilyName::ALL.into_iter().find(|f| f.as_str() == name).ok_or_else(|| {
                Error::Usage(format!("unknown job '{job}': eval-<family> takes one of bernoulli, gaussian, categorical, laplace, poisson, exponential"))
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
        let n = args.n.unwrap_or(1 << 24);
        let f = family.build(5);
        let mut rng = StdRng::seed_from_u64(0);
        let data: Arc<[f64]> = f
            .sample(&truth, n, &mut rng)
            .into_iter()
            .map(|x| x as f32 as f64)
            .collect::<Vec<_>>()
            .into();
        let mut engine: Box<dyn Engine> = match &ctx {
            Some(c) => {
                let mut gpu = GpuEngine::new(c, family.build(5), &data)?;
                gpu.enable_kernel_timing();
                Box::new(gpu)
            }
            None => Box::new(CpuEngine::new(family.build(5), data.clone())),
        };
        let (median, min) = time(args.reps, || engine.nll_and_grad(&at).map(|_| ()))?;
        let kernel = engine.kernel_time();
        // Bytes the engine reads per evaluation: f32 on the GPU, f64 on the CPU.
        let bytes = n as f64 * if ctx.is_some() { 4.0 } else { 8.0 };
        out["n"] = json!(n);
        out["seconds"] = json_f64(median);
        out["seconds_min"] = json_f64(min);
        out["samples_per_s"] = json_f64(n as f64 / median);
        out["gbps"] = json_f64(bytes / median / 1e9);
        report_kernel_time(&mut out, kernel, bytes);
        if let Some(c) = &ctx {
            // The adapter's streaming roofline in the same run: a plain one-pass sum over the
            // same bytes (the sufficient-statistic kernel of the exponential family).
            let mut sum = GpuEngine::new(
                c,
                FamilyName::Exponential.build(1),
                &data.iter().map(|x| x.abs()).collect::<Vec<_>>(),
            )?;
            sum.enable_kernel_timing();
            let (roof, _) = time(args.reps, || sum.term_sums(&[0.0]).map(|_| ()))?;
            out["roofline_gbps"] = json_f64(bytes / roof / 1e9);
            out["roofline_fraction"] = json_f64(roof / median);
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
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
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

/// N rows of d = 16 standard-normal features, y ~ Bernoulli(sigmoid(X w + 0.3)) with
/// w ~ N(0, 0.5^2); unpenalised MLE by Newton / Fisher scoring; time to fit and final mean NLL.
fn logreg(
    args: &BenchArgs,
    ctx: Option<&GpuContext>,
    out: &mut serde_json::Value,
) -> likely::Result<()> {
    let (n, d) = (args.n.unwrap_or(1_000_000), 16);
    let mut rng = StdRng::seed_from_u64(1);
    let x: Vec<f64> = (0..n * d).map(|_| normal(&mut rng) as f32 as f64).collect();
    let w: Vec<f64> = (0..d).map(|_| 0.5 * normal(&mut rng)).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| {
            let z: f64 = 0.3 + (0..d).map(|j| x[i * d + j] * w[j]).sum::<f64>();
            (rand::Rng::random::<f64>(&mut rng) < likely::family::sigmoid(z)) as u8 as f64
        })
        .collect();
    let net = Network {
        inputs: d,
        hidden: vec![],
        activation: Activation::Relu,
        head: Head {
            family: FamilyName::Bernoulli,
            classes: 1,
            reference: true,
        },
    };
    let options = train_options(ModelOptimizer::Newton, &net, None, 0.0);
    let mut seconds = Vec::new();
    let mut mean_nll = f64::NAN;
    let mut kernel = None;
    for _ in 0..args.reps.min(3) {
        let mut params = net.init(0, &y);
        let start = Instant::now();
        let report = match ctx {
            Some(c) => {
                let mut gpu = likely::gpu::mlp::GpuNetwork::new(
                    c,
                    &net,
                    &x,
                    &y,
                    &vec![0.0; n],
                    &options.frozen,
                    likely::gpu::mlp::GpuNetwork::full_batch_rows(&net, n),
                )?;
                gpu.enable_kernel_timing();
                let report = likely::model::train_gpu(&gpu, &net, &mut params, &options, |_| {})?;
                kernel = gpu.kernel_time();
                report
            }
            None => likely::model::train(&net, &mut params, &x, &y, &options, |_| {})?,
        };
        seconds.push(start.elapsed().as_secs_f64());
        let rows: Vec<usize> = (0..n).collect();
        mean_nll = net.nll_and_grad(&params, &x, &y, &rows).0 / n as f64;
        out["iterations"] = json!(report.steps);
    }
    seconds.sort_by(f64::total_cmp);
    out["n"] = json!(n);
    out["seconds"] = json_f64(seconds[seconds.len() / 2]);
    out["seconds_min"] = json_f64(seconds[0]);
    out["samples_per_s"] = json_f64(n as f64 / seconds[seconds.len() / 2]);
    out["gbps"] = json_f64((n * (d + 1) * 4) as f64 / seconds[seconds.len() / 2] / 1e9);
    out["mean_nll"] = json_f64(mean_nll);
    // Kernel time of one whole fit (every pass it made).
    report_kernel_time(out, kernel.map(KernelTime::whole), (n * (d + 1) * 4) as f64);
    Ok(())
}

/// N rows of 10 standard-normal features labelled by the argmax of a fixed random teacher
/// 10 -> 32 ReLU -> 5; the seed's MLP, AdamW (lr 1e-3, weight decay 0.01), batch 1024, one
/// epoch. Samples per second and the final mean NLL.
fn mlp(
    args: &BenchArgs,
    ctx: Option<&GpuContext>,
    out: &mut serde_json::Value,
) -> likely::Result<()> {
    let (n, d) = (args.n.unwrap_or(1 << 20), 10);
    let mut rng = StdRng::seed_from_u64(2);
    let x: Vec<f64> = (0..n * d).map(|_| normal(&mut rng) as f32 as f64).collect();
    let head = Head {
        family: FamilyName::Categorical,
        classes: 5,
        reference: false,
    };
    let teacher = Network {
        inputs: d,
        hidden: vec![32],
        activation: Activation::Relu,
        head,
    };
    let mut teacher_params = vec![0.0; teacher.param_count()];
    for l in teacher.layers() {
        teacher_params[l.weights..l.bias]
            .iter_mut()
            .for_each(|w| *w = normal(&mut rng));
    }
    let mut z = Vec::new();
    let y: Vec<f64> = (0..n)
        .map(|r| {
            head.predicted_class(&teacher.forward(&teacher_params, &x[r * d..(r + 1) * d], &mut z))
        })
        .collect();
    let net = Network {
        inputs: d,
        hidden: vec![32],
        activation: Activation::Relu,
        head,
    };
    let options = train_options(ModelOptimizer::Adamw, &net, Some(1024), 0.01);
    let mut seconds = Vec::new();
    let mut params = net.init(0, &y);
    let mut gpu = match ctx {
        Some(c) => Some(likely::gpu::mlp::GpuNetwork::new(
            c,
            &net,
            &x,
            &y,
            &vec![0.0; n],
            &options.frozen,
            1024,
        )?),
        None => None,
    };
    let reps = args.reps.min(3);
    if let Some(g) = gpu.as_mut() {
        g.enable_kernel_timing();
    }
    for _ in 0..reps {
        params = net.init(0, &y);
        let start = Instant::now();
        match &gpu {
            Some(g) => likely::model::train_gpu(g, &net, &mut params, &options, |_| {})?,
            None => likely::model::train(&net, &mut params, &x, &y, &options, |_| {})?,
        };
        seconds.push(start.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let rows: Vec<usize> = (0..n).collect();
    out["n"] = json!(n);
    out["seconds"] = json_f64(seconds[seconds.len() / 2]);
    out["seconds_min"] = json_f64(seconds[0]);
    out["samples_per_s"] = json_f64(n as f64 / seconds[seconds.len() / 2]);
    out["gbps"] = json_f64((n * (d + 1) * 4) as f64 / seconds[seconds.len() / 2] / 1e9);
    out["mean_nll"] = json_f64(net.nll_and_grad(&params, &x, &y, &rows).0 / n as f64);
    // Kernel time of one epoch, the mean over the timed epochs.
    let kernel = gpu
        .as_ref()
        .and_then(|g| g.kernel_time())
        .map(|k| KernelTime {
            seconds: k.seconds / reps as f64,
            passes: 1,
        });
    report_kernel_time(out, kernel, (n * (d + 1) * 4) as f64);
    Ok(())
}

fn train_options(
    optimizer: ModelOptimizer,
    net: &Network,
    batch: Option<usize>,
    weight_decay: f64,
) -> TrainOptions {
    TrainOptions {
        weight_decay,
        batch_size: batch,
        ..TrainOptions::new(optimizer, net.param_count())
    }
}
