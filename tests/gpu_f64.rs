//! The GPU's f64 sums (the f64 passes on adapters with SHADER_F64) against their CPU f64
//! twins: a linear model's NLL, gradient and Hessian against `conditioned_derivatives`, and a
//! family's term sums against its own `terms`, at edge sizes (1 row, a workgroup less one, a
//! workgroup, a workgroup and one, several chunks, more than one storage binding), for every
//! head and family; the gradient and Hessian also against finite differences; and a fit from
//! the CLI whose f64 passes ran on the GPU.

mod common;

use likely::family::FamilyName;
use likely::gpu::family64::{FamilyF64, Stored, Walk};
use likely::gpu::linear64::LinearF64;
use likely::gpu::reduce::{ReductionOptions, TermReduction};
use likely::model::newton::conditioned_derivatives;
use likely::model::{Activation, ColumnStats, Conditioning, Head, Network};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn network(family: FamilyName, reference: bool, d: usize) -> Network {
    Network {
        inputs: d,
        hidden: vec![],
        activation: Activation::Relu,
        head: Head::new(family, 4, reference),
    }
}

/// The GPU context where its adapter has SHADER_F64; `None` after a loud skip message.
fn f64_adapter() -> Option<&'static likely::gpu::GpuContext> {
    let ctx = common::gpu()?;
    if !ctx.adapter().shader_f64 {
        eprintln!("SKIPPED: the adapter has no SHADER_F64");
        return None;
    }
    Some(ctx)
}

const HEADS: [(FamilyName, bool); 5] = [
    (FamilyName::Bernoulli, false),
    (FamilyName::Poisson, false),
    (FamilyName::Exponential, false),
    (FamilyName::Categorical, true),
    (FamilyName::Categorical, false),
];

/// Rows far from the origin and in raw units (the conditioning has work to do), targets of
/// the head's kind, and parameters of moderate size (in the conditioned coordinates).
fn case(net: &Network, n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Conditioning, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = net.inputs;
    let (x, y) = likely::check::random_table(&mut rng, n, d, net.head.family, net.head.classes);
    let x: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(k, v)| v * 10f64.powi((k % d) as i32) + 1e3 * (k % d) as f64)
        .collect();
    let mut stats = ColumnStats::new(d + 1);
    stats.add(&x, &y);
    let cond = Conditioning::from_stats(&stats, true, false);
    let params: Vec<f64> = (0..net.param_count())
        .map(|_| rng.random_range(-0.5..0.5))
        .collect();
    (x, y, cond, params)
}

fn relative(a: f64, b: f64, scale: f64) -> f64 {
    (a - b).abs() / scale.max(f64::MIN_POSITIVE)
}

/// The GPU sums against the CPU's: the NLL, the gradient and the Hessian, each to 1e-12 of
/// its own scale (sums in another order, exp and log written in the shader).
fn compare(net: &Network, n: usize, chunk_cap: Option<usize>, seed: u64) {
    let ctx = common::gpu().expect("a GPU adapter");
    let (x, y, cond, params) = case(net, n, seed);
    let gpu = LinearF64::new(ctx, net, &x, &y, Some(&cond), chunk_cap).unwrap();
    let (nll, gradient, hessian) = gpu.sums(&params, true).unwrap();
    let hessian = hessian.unwrap();
    let (want_nll, want_gradient, want_hessian) =
        conditioned_derivatives(net, &params, &x, &y, Some(&cond)).unwrap();
    let what = format!(
        "{:?} reference {} n {n} chunks {chunk_cap:?}",
        net.head.family, net.head.reference
    );
    assert!(
        relative(nll, want_nll, want_nll.abs()) < 1e-12,
        "{what}: NLL {nll} vs {want_nll}"
    );
    assert_eq!(
        gradient.len(),
        want_gradient.len(),
        "{what}: gradient length"
    );
    assert_eq!(hessian.len(), want_hessian.len(), "{what}: Hessian length");
    let g_scale = want_gradient.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    for (j, (a, b)) in gradient.iter().zip(&want_gradient).enumerate() {
        assert!(
            relative(*a, *b, g_scale) < 1e-12,
            "{what}: gradient[{j}] {a} vs {b}"
        );
    }
    let h_scale = want_hessian.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    for (k, (a, b)) in hessian.iter().zip(&want_hessian).enumerate() {
        assert!(
            relative(*a, *b, h_scale) < 1e-12,
            "{what}: Hessian[{k}] {a} vs {b}"
        );
    }
    // The gradient-only pass gives the same NLL and gradient.
    let (nll2, gradient2, none) = gpu.sums(&params, false).unwrap();
    assert!(none.is_none());
    assert_eq!(nll2.to_bits(), nll.to_bits(), "{what}");
    assert_eq!(gradient2, gradient, "{what}");
}

#[test]
fn f64_sums_match_the_cpu_at_edge_sizes() {
    if f64_adapter().is_none() {
        return;
    }
    for (family, reference) in HEADS {
        let net = network(family, reference, 3);
        for (i, n) in [1, 255, 256, 257, 5000].into_iter().enumerate() {
            compare(&net, n, None, 10 + i as u64);
        }
        // Chunks of 100 rows: the partial sums accumulate across chunks.
        compare(&net, 1001, Some(100), 20);
    }
}

#[test]
fn f64_sums_span_several_storage_bindings() {
    let Some(ctx) = f64_adapter() else {
        return;
    };
    // More feature values than one binding holds (lavapipe's: 128 MiB, 16 Mi f64s).
    let net = network(FamilyName::Bernoulli, false, 4);
    let binding = ctx.max_storage_binding();
    let n = (binding / (8 * 4)) as usize + 1000;
    let rows_per_chunk = LinearF64::chunk_rows(ctx, &net, None);
    assert!(
        rows_per_chunk < n,
        "{rows_per_chunk} rows per chunk, {n} rows"
    );
    compare(&net, n, None, 30);
}

#[test]
fn the_f64_gradient_matches_finite_differences_of_the_nll() {
    let Some(ctx) = f64_adapter() else {
        return;
    };
    for (family, reference) in HEADS {
        let net = network(family, reference, 2);
        let (x, y, cond, params) = case(&net, 300, 40);
        let gpu = LinearF64::new(ctx, &net, &x, &y, Some(&cond), None).unwrap();
        let (_, gradient, hessian) = gpu.sums(&params, true).unwrap();
        let hessian = hessian.unwrap();
        let p = params.len();
        for j in 0..p {
            let h = 1e-5;
            let at = |delta: f64| {
                let mut t = params.clone();
                t[j] += delta;
                gpu.sums(&t, false).unwrap()
            };
            let (up, g_up, _) = at(h);
            let (down, g_down, _) = at(-h);
            let numeric = (up - down) / (2.0 * h);
            let scale = gradient[j].abs().max(1.0);
            assert!(
                (numeric - gradient[j]).abs() < 1e-6 * scale,
                "{family:?}: dNLL/dtheta[{j}] {} vs {numeric}",
                gradient[j]
            );
            // And the Hessian's column from the gradient's differences.
            for k in 0..p {
                let numeric = (g_up[k] - g_down[k]) / (2.0 * h);
                let scale = hessian[k * p + j].abs().max(1.0);
                assert!(
                    (numeric - hessian[k * p + j]).abs() < 1e-6 * scale,
                    "{family:?}: H[{k}, {j}] {} vs {numeric}",
                    hessian[k * p + j]
                );
            }
        }
    }
}

#[test]
fn a_gpu_fit_runs_its_f64_passes_on_the_gpu_and_agrees_with_the_cpu() {
    let ctx = gpu_or_skip!();
    let mut rng = StdRng::seed_from_u64(50);
    let n = 3000;
    let mut text = String::from("a,b,y\n");
    for _ in 0..n {
        let a: f64 = rng.random_range(-2.0..2.0) * 1e3 + 5e4;
        let b: f64 = rng.random_range(-1.0..1.0);
        let eta = 0.002 * (a - 5e4) - 1.5 * b + 0.3;
        let y = (rng.random::<f64>() < 1.0 / (1.0 + (-eta).exp())) as u8;
        text += &format!("{a},{b},{y}\n");
    }
    let path = common::temp_path("gpu-f64", "logit.csv");
    std::fs::write(&path, text).unwrap();
    let data = path.to_str().unwrap();
    let fit = |backend: &str| {
        common::cli::ok_json(&common::cli::model_fit(
            "linear",
            "bernoulli",
            data,
            "y",
            &["--backend", backend, "--json"],
        ))
    };
    let (cpu, gpu) = (fit("cpu"), fit("gpu"));
    assert_eq!(cpu["f64_engine"], "cpu");
    let want = if ctx.adapter().shader_f64 {
        "gpu"
    } else {
        "cpu"
    };
    assert_eq!(gpu["f64_engine"], want, "{gpu}");
    assert_eq!(gpu["converged"], true);
    for name in ["a", "b", "intercept"] {
        let (c, g) = (
            cpu["coefficients"][name].as_f64().unwrap(),
            gpu["coefficients"][name].as_f64().unwrap(),
        );
        let se = cpu["std_errors"][name].as_f64().unwrap();
        assert!(
            (c - g).abs() <= 1e-8 * c.abs().max(se),
            "{name}: cpu {c}, gpu {g}"
        );
    }
}

/// Samples of `family` near `centre` (its support's kind: counts, 0/1, classes, positive).
fn samples(family: FamilyName, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| match family {
            FamilyName::Gaussian | FamilyName::Laplace | FamilyName::StudentT => {
                // Ties with mu (the Laplace's zero count) as well as spread.
                if rng.random::<f64>() < 0.05 {
                    0.25
                } else {
                    rng.random_range(-3.0..3.0)
                }
            }
            FamilyName::Bernoulli => (rng.random::<f64>() < 0.3) as u8 as f64,
            FamilyName::Poisson | FamilyName::NegativeBinomial => rng.random_range(0..50) as f64,
            FamilyName::Exponential => rng.random_range(0.0..10.0),
            FamilyName::Gamma | FamilyName::Lognormal | FamilyName::Weibull => {
                rng.random_range(0.01..10.0)
            }
            FamilyName::Categorical => rng.random_range(0..5) as f64,
            FamilyName::Beta => rng.random_range(0.01..0.99),
        })
        .collect()
}

/// The GPU's f64 term sums against the family's own `terms`, summed here in f64 (with
/// compensation, so the reference is the more accurate side), to 1e-13 of the sum of |terms|:
/// from their own f64 copy, or (`Stored::F32`) from the f32 data of the reduction kernel,
/// with the samples rounded to f32 first so that those are the samples exactly.
/// Both storage widths, each with both walks (a GPU's strided one and a CPU adapter's
/// blocked one).
/// The f64 kernel's logarithm (math64.wgsl) across f64's whole positive range, through the
/// gamma family's ln x term, one sample at a time: values whose f32 is subnormal (1e-41) or
/// that the kernel rescales past 1e30 (2e-43 up to 1e-31) included; not f64 subnormals, which
/// a device may flush.
#[test]
fn family_f64_logarithms_hold_across_the_range_of_f64() {
    let Some(ctx) = f64_adapter() else {
        return;
    };
    let f = FamilyName::Gamma.build(1);
    for x in [
        1e-300, 1e-200, 2e-43, 6e-43, 3.7e-42, 1e-41, 1e-40, 1e-39, 1.1e-38, 1e-35, 1e-31, 1e-30,
        0.5, 1.0, 3.0, 1e30, 1e31, 1e100, 1e300, 1.7e308,
    ] {
        let gpu = FamilyF64::new_walking(ctx, f.as_ref(), &[x], None, Walk::Blocked).unwrap();
        let got = gpu.term_sums(&[]).unwrap()[0];
        let want = x.ln();
        assert!(
            (got - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1.0),
            "ln({x:e}) = {got} on the GPU, {want} in f64"
        );
    }
}

fn compare_terms(family: FamilyName, n: usize, chunk_cap: Option<usize>, seed: u64) {
    for stored in [Stored::F64, Stored::F32] {
        for walk in [Walk::Strided, Walk::Blocked] {
            compare_stored(family, n, chunk_cap, seed, stored, walk);
        }
    }
}

fn compare_stored(
    family: FamilyName,
    n: usize,
    chunk_cap: Option<usize>,
    seed: u64,
    stored: Stored,
    walk: Walk,
) {
    let ctx = common::gpu().expect("a GPU adapter");
    let f = family.build(5);
    let mut data = samples(family, n, seed);
    if stored == Stored::F32 {
        data.iter_mut().for_each(|x| *x = *x as f32 as f64);
    }
    let theta: Vec<f64> = match family {
        FamilyName::Gaussian | FamilyName::Laplace => vec![0.25, 0.1],
        _ => f.initial_theta(&likely::family::Summary::of(&data)),
    };
    let kp = f.kernel_params(&theta);
    // The reduction kernel's chunks: in samples, a multiple of its workgroup span.
    let options = ReductionOptions {
        max_chunk_samples: chunk_cap,
        ..Default::default()
    };
    let reduction = (stored == Stored::F32)
        .then(|| TermReduction::with_options(ctx, f.as_ref(), &data, options).unwrap());
    let gpu = match &reduction {
        None => FamilyF64::new_walking(ctx, f.as_ref(), &data, chunk_cap, walk).unwrap(),
        Some(reduction) => {
            FamilyF64::over_reduction_walking(ctx, f.as_ref(), reduction, walk).unwrap()
        }
    };
    let got = gpu.term_sums(&kp).unwrap();
    let terms = f.n_terms();
    let (mut sum, mut compensation, mut magnitude) =
        (vec![0.0; terms], vec![0.0; terms], vec![0.0; terms]);
    let mut t = vec![0.0; terms];
    for &x in &data {
        f.terms(x, &kp, &mut t);
        for k in 0..terms {
            // Kahan-Babuska summation.
            let s = sum[k] + t[k];
            compensation[k] += if sum[k].abs() >= t[k].abs() {
                (sum[k] - s) + t[k]
            } else {
                (t[k] - s) + sum[k]
            };
            sum[k] = s;
            magnitude[k] += t[k].abs();
        }
    }
    for k in 0..terms {
        let want = sum[k] + compensation[k];
        assert!(
            (got[k] - want).abs() <= 1e-13 * magnitude[k].max(1.0),
            "{family:?} n {n} chunks {chunk_cap:?} {stored:?} {walk:?}: term {k} {} vs {want}",
            got[k]
        );
    }
    match (stored, chunk_cap) {
        (Stored::F64, Some(cap)) => assert_eq!(gpu.chunk_sizes().len(), n.div_ceil(cap)),
        (Stored::F64, None) => assert_eq!(
            gpu.chunk_sizes().len() as u64,
            (n as u64 * 8).div_ceil(ctx.max_storage_binding())
        ),
        (Stored::F32, _) => {
            let chunks = reduction.as_ref().map(TermReduction::chunk_count);
            assert_eq!(Some(gpu.chunk_sizes().len()), chunks);
            assert_eq!(gpu.chunk_sizes().iter().sum::<usize>(), n);
        }
    }
}

#[test]
fn family_f64_term_sums_match_the_cpu_at_edge_sizes() {
    if f64_adapter().is_none() {
        return;
    }
    for family in FamilyName::ALL {
        for (i, n) in [1, 255, 256, 257, 100_000].into_iter().enumerate() {
            compare_terms(family, n, None, 60 + i as u64);
        }
        compare_terms(family, 10_001, Some(1000), 70);
        // f64 chunks that end inside a vec4 (each padded to a whole one).
        compare_terms(family, 10_001, Some(999), 71);
    }
}

#[test]
fn family_f64_term_sums_span_several_storage_bindings() {
    let Some(ctx) = f64_adapter() else {
        return;
    };
    let n = (ctx.max_storage_binding() / 8) as usize + 1000;
    compare_terms(FamilyName::Gaussian, n, None, 80);
}

/// The t's term sums in f64 on the GPU far towards its Gaussian limit (df of 1e9 and 1e22,
/// where a = r^2 / df is 1e-9 to 1e-22 and ln(1 + a) must keep its relative digits: the NLL
/// multiplies its sum by df / 2), and ln(1 + e) itself through the Bernoulli head's softplus
/// sums, against the CPU. The textbook ln(u) e / (u - 1) lost them on lavapipe (1e-7).
#[test]
fn f64_log1p_keeps_its_digits_for_tiny_arguments() {
    let Some(ctx) = f64_adapter() else {
        return;
    };
    let f = FamilyName::StudentT.build(1);
    let data = samples(FamilyName::StudentT, 4001, 90);
    let gpu = FamilyF64::new(ctx, f.as_ref(), &data, None).unwrap();
    for df in [1e9f64, 1e22] {
        let theta = [0.1, 0.2, df.ln()];
        let kp = f.kernel_params(&theta);
        let got = gpu.term_sums(&kp).unwrap();
        let mut want = vec![0.0; f.n_terms()];
        f.accumulate(&data, &kp, &mut want);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-13 * w.abs(),
                "df {df:e}: term {k} {g} vs {w}"
            );
        }
    }
}
