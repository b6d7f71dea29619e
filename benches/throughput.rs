//! The jobs of ../shared/bench/peers.py (as `likely bench` runs them) for development:
//! `gauss-eval` (one Gaussian NLL + gradient evaluation, x ~ N(5, 2^2) at mu = 4.9,
//! sigma = 1.9) against a same-run baseline, a plain one-pass sum over the same bytes on the
//! CPU; `logreg-fit` (Newton to convergence) and `mlp-train` (one epoch of AdamW at batch
//! 1024), on the GPU against the CPU engine in the same run. The GPU rows run where there is
//! an adapter.
//!
//! `cargo bench --bench throughput [-- JOB ...]` (n of gauss-eval from LIKELY_BENCH_N,
//! default 2^24, the other jobs' n scaled from it; reps from LIKELY_BENCH_REPS, default 10).
//! Reports median seconds, samples/s, GB/s and the ratio to the baseline.

use likely::engine::{CpuEngine, Engine, GpuEngine};
use likely::family::FamilyName;
use likely::gpu::{AdapterSelector, GpuContext};
use rayon::prelude::*;
use std::sync::Arc;
use std::time::Instant;

fn median_seconds(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

fn report(name: &str, n: usize, bytes_per_sample: usize, seconds: f64, baseline: f64) {
    println!(
        "{name:<28} n={n:<10} {seconds:>9.5} s {:>10.1} M samples/s {:>7.2} GB/s  {:>5.2}x baseline",
        n as f64 / seconds / 1e6,
        (n * bytes_per_sample) as f64 / seconds / 1e9,
        baseline / seconds
    );
}

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("LIKELY_BENCH_N", 1 << 24);
    let reps = env("LIKELY_BENCH_REPS", 10).max(1);
    let jobs: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |job: &str| jobs.is_empty() || jobs.iter().any(|j| j == job);
    let ctx = GpuContext::new(&AdapterSelector::default())
        .map_err(|e| println!("GPU rows skipped: {e}"))
        .ok();
    if wants("gauss-eval") {
        gauss_eval(n, reps, ctx.as_ref());
    }
    // 1e6 and 2^20 rows at the default n, as in peers.py.
    let rows = |default: usize| (default as f64 * n as f64 / (1 << 24) as f64).max(1.0) as usize;
    if wants("logreg-fit") {
        let data = likely::bench::logreg_data(rows(1_000_000));
        gpu_against_cpu("logreg-fit", &data, ctx.as_ref(), |gpu| {
            (0..reps.min(3))
                .map(|_| likely::bench::fit_logreg(&data, gpu).unwrap().seconds)
                .collect()
        });
    }
    if wants("mlp-train") {
        let data = likely::bench::mlp_data(rows(1 << 20));
        gpu_against_cpu("mlp-train", &data, ctx.as_ref(), |gpu| {
            likely::bench::train_mlp(&data, gpu, reps.min(3))
                .unwrap()
                .iter()
                .map(|r| r.seconds)
                .collect()
        });
    }
}

/// The median of `runs` on the CPU engine (the baseline) and, where there is an adapter, on
/// the GPU.
fn gpu_against_cpu(
    job: &str,
    data: &likely::bench::JobData,
    ctx: Option<&GpuContext>,
    runs: impl Fn(Option<&GpuContext>) -> Vec<f64>,
) {
    let median = |gpu| {
        let mut seconds = runs(gpu);
        seconds.sort_by(f64::total_cmp);
        seconds[seconds.len() / 2]
    };
    let bytes_per_row = 4 * (data.d + 1);
    let cpu = median(None);
    report(&format!("{job} cpu"), data.n(), bytes_per_row, cpu, cpu);
    if let Some(c) = ctx {
        let gpu = median(Some(c));
        report(&format!("{job} gpu"), data.n(), bytes_per_row, gpu, cpu);
    }
}

fn gauss_eval(n: usize, reps: usize, ctx: Option<&GpuContext>) {
    let data: Arc<[f64]> = likely::bench::gauss_data(n).into();
    let theta = likely::bench::GAUSS_AT;

    // Baseline: a plain parallel sum over the same f64 bytes (the host's streaming rate).
    let baseline = median_seconds(reps, || {
        let s: f64 = data
            .par_chunks(1 << 16)
            .map(|c| c.iter().sum::<f64>())
            .sum();
        std::hint::black_box(s);
    });
    report("baseline: plain sum (cpu)", n, 8, baseline, baseline);

    let mut cpu = CpuEngine::new(FamilyName::Gaussian.build(1), data.clone());
    let t = median_seconds(reps, || {
        std::hint::black_box(cpu.nll_and_grad(&theta).unwrap());
    });
    report("gauss-eval cpu (f64 data)", n, 8, t, baseline);

    if let Some(ctx) = ctx {
        let mut gpu = GpuEngine::new(ctx, FamilyName::Gaussian.build(1), &data).unwrap();
        let t = median_seconds(reps, || {
            std::hint::black_box(gpu.nll_and_grad(&theta).unwrap());
        });
        report(
            &format!("gauss-eval gpu ({})", ctx.adapter().name),
            n,
            4,
            t,
            baseline,
        );
    }
}
