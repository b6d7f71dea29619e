//! Throughput of one Gaussian NLL + gradient evaluation (the `gauss-eval` job of
//! ../shared/bench/peers.py: x ~ N(5, 2^2), evaluated at mu = 4.9, sigma = 1.9), on the CPU
//! engine and, where there is an adapter, the GPU engine; with a same-run baseline: a plain
//! one-pass sum over the same bytes on the CPU.
//!
//! `cargo bench --bench throughput` (n from LIKELY_BENCH_N, default 2^24; reps from
//! LIKELY_BENCH_REPS, default 10). Reports median seconds, samples/s, GB/s and the ratio to the
//! baseline.

use likely::engine::{CpuEngine, Engine, GpuEngine};
use likely::family::FamilyName;
use likely::gpu::{AdapterSelector, GpuContext};
use rand::rngs::StdRng;
use rand::SeedableRng;
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
    let family = FamilyName::Gaussian.build(1);
    let mut rng = StdRng::seed_from_u64(0);
    let data: Arc<[f64]> = family
        .sample(&[5.0, 2f64.ln()], n, &mut rng)
        .into_iter()
        .map(|x| x as f32 as f64)
        .collect::<Vec<_>>()
        .into();
    let theta = [4.9, 1.9f64.ln()];

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

    match GpuContext::new(&AdapterSelector::default()) {
        Ok(ctx) => {
            let mut gpu = GpuEngine::new(&ctx, FamilyName::Gaussian.build(1), &data).unwrap();
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
        Err(e) => println!("gauss-eval gpu: skipped ({e})"),
    }
}
