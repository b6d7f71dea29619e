//! Model kernels on the GPU against the f64 CPU reference: forward, head and backward on
//! random networks and data at edge batch sizes and shapes that are not multiples of the
//! 16-wide tile; and training trajectories from the same seed.

mod common;

use likely::check::ModelComparison;
use likely::family::FamilyName;
use likely::gpu::mlp::GpuNetwork;
use likely::model::{Activation, Head, Network};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn table(
    n: usize,
    d: usize,
    family: FamilyName,
    classes: usize,
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    likely::check::random_table(&mut StdRng::seed_from_u64(seed), n, d, family, classes)
}

#[test]
fn full_batch_nll_and_gradient_match_the_cpu() {
    let ctx = gpu_or_skip!();
    for family in likely::check::gpu_heads() {
        for (i, (n, d, hidden, batch)) in likely::check::MODEL_SHAPES.iter().enumerate() {
            for activation in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
                let net = Network {
                    inputs: *d,
                    hidden: hidden.to_vec(),
                    activation,
                    head: Head::new(family, 5, hidden.is_empty()),
                };
                let case = ModelComparison::new(ctx, &net, *n, *batch, 50 + i as u64)
                    .and_then(|c| c.full_batch())
                    .unwrap();
                assert!(case.pass, "{case:?}");
            }
        }
    }
}

/// A head the network kernels do not carry (the t's two globals) is refused with a message
/// that names the way out, not compiled into a wrong kernel; every other head is carried.
#[test]
fn heads_beyond_the_network_kernels_are_refused() {
    let ctx = gpu_or_skip!();
    let carried: Vec<FamilyName> = likely::check::gpu_heads().collect();
    assert_eq!(carried.len(), FamilyName::ALL.len() - 1);
    let net = Network {
        inputs: 2,
        hidden: vec![],
        activation: Activation::Relu,
        head: Head::new(FamilyName::StudentT, 1, true),
    };
    let (x, y) = table(10, 2, FamilyName::StudentT, 1, 3);
    match likely::gpu::mlp::GpuNetwork::new(ctx, &net, &x, &y, &[0.0; 10], &[], 10) {
        Err(e) => assert!(e.to_string().contains("--backend cpu"), "{e}"),
        Ok(_) => panic!("a student-t head was compiled into the network kernels"),
    }
}

#[test]
fn one_training_step_applies_the_cpu_gradient() {
    // The step that training runs (the fused step on a CPU adapter) for every head, at a batch
    // of one row and at one of several rounds and partial workgroups.
    let ctx = gpu_or_skip!();
    for family in likely::check::gpu_heads() {
        for (n, hidden, batch) in [(5, vec![], 1), (1000, vec![32], 200)] {
            let net = Network {
                inputs: 10,
                hidden,
                activation: Activation::Relu,
                head: Head::new(family, 5, false),
            };
            let mut comparison = ModelComparison::new(ctx, &net, n, batch, 60).unwrap();
            let case = comparison.training_step().unwrap();
            assert!(case.pass, "{case:?}");
            assert_eq!(case.n, batch);
            if ctx.adapter().software {
                assert_eq!(case.reduction, "step fused", "{case:?}");
            }
        }
    }
}

fn train_options(
    optimizer: likely::model::ModelOptimizer,
    p: usize,
    batch: usize,
    epochs: usize,
) -> likely::model::TrainOptions {
    likely::model::TrainOptions {
        lr: 1e-2,
        momentum: 0.9,
        weight_decay: 0.01,
        batch_size: Some(batch),
        epochs,
        seed: 4,
        log_every: 1,
        ..likely::model::TrainOptions::new(optimizer, p)
    }
}

#[test]
fn training_follows_the_cpu_trajectory() {
    use likely::model::{train, train_gpu, ModelOptimizer};
    let ctx = gpu_or_skip!();
    // The seed example's shape: 10 features -> 32 ReLU -> 5 classes.
    let net = Network {
        inputs: 10,
        hidden: vec![32],
        activation: Activation::Relu,
        head: Head::new(FamilyName::Categorical, 5, false),
    };
    let (x, y) = table(500, 10, FamilyName::Categorical, 5, 9);
    // The same run from the same start on both engines: (CPU report and parameters, GPU's).
    let run_both = |options: &likely::model::TrainOptions| {
        let start = net.init(4, &y);
        let mut cpu_params = start.clone();
        let cpu = train(&net, &mut cpu_params, &x, &y, options, |_| {}).unwrap();
        let gpu_net = GpuNetwork::new(ctx, &net, &x, &y, &vec![0.0; y.len()], &[], 50).unwrap();
        let mut gpu_params = start;
        let gpu = train_gpu(&gpu_net, &net, &mut gpu_params, options, |_| {}).unwrap();
        ((cpu, cpu_params), (gpu, gpu_params))
    };
    // Every logged point at the same step, with the same loss to 1e-4.
    let same_losses =
        |cpu: &likely::model::TrainReport, gpu: &likely::model::TrainReport, what: &str| {
            assert_eq!(gpu.history.len(), cpu.history.len(), "{what}");
            for (c, g) in cpu.history.iter().zip(&gpu.history) {
                assert_eq!(c.step, g.step);
                let rel = (c.train_mean_nll - g.train_mean_nll).abs() / c.train_mean_nll;
                assert!(
                    rel <= 1e-4,
                    "{what} step {}: cpu {} gpu {}",
                    c.step,
                    c.train_mean_nll,
                    g.train_mean_nll
                );
            }
        };
    for optimizer in [
        ModelOptimizer::Adamw,
        ModelOptimizer::Adam,
        ModelOptimizer::Sgd,
    ] {
        let options = train_options(optimizer, net.param_count(), 50, 2);
        let ((cpu, cpu_params), (gpu, gpu_params)) = run_both(&options);
        assert_eq!(cpu.history.len(), 20, "{optimizer:?}: 2 epochs of 10 steps");
        same_losses(&cpu, &gpu, &format!("{optimizer:?}"));
        let first = cpu.history[0].train_mean_nll;
        let last = cpu.history.last().unwrap().train_mean_nll;
        assert!(
            last < first,
            "{optimizer:?}: the loss falls ({first} -> {last})"
        );
        let scale = cpu_params.iter().fold(1.0f64, |m, p| m.max(p.abs()));
        for (c, g) in cpu_params.iter().zip(&gpu_params) {
            assert!(
                (c - g).abs() <= 1e-3 * scale,
                "{optimizer:?}: parameters {c} vs {g}"
            );
        }
    }
    // Points every 3 steps run across the epochs' boundary alike on both engines: steps 10 to
    // 12 make the fourth point.
    let options = likely::model::TrainOptions {
        log_every: 3,
        ..train_options(ModelOptimizer::Adamw, net.param_count(), 50, 2)
    };
    let ((cpu, _), (gpu, _)) = run_both(&options);
    let steps: Vec<usize> = cpu.history.iter().map(|p| p.step).collect();
    assert_eq!(steps, [3, 6, 9, 12, 15, 18]);
    assert_eq!(cpu.history[3].epoch, 2);
    same_losses(&cpu, &gpu, "log every 3");
}

#[test]
fn gpu_lbfgs_fits_a_logistic_regression_like_the_cpu() {
    use likely::model::{train, train_gpu, ModelOptimizer};
    let ctx = gpu_or_skip!();
    let net = Network::linear(3, FamilyName::Bernoulli, 1);
    let (x, y) = table(2000, 3, FamilyName::Bernoulli, 1, 10);
    let options = likely::model::TrainOptions {
        batch_size: None,
        ..train_options(ModelOptimizer::Lbfgs, net.param_count(), 1, 1)
    };
    let mut cpu_params = net.init(0, &y);
    let cpu = train(&net, &mut cpu_params, &x, &y, &options, |_| {}).unwrap();
    let gpu_net = GpuNetwork::new(ctx, &net, &x, &y, &vec![0.0; y.len()], &[], 1024).unwrap();
    let mut gpu_params = net.init(0, &y);
    let gpu = train_gpu(&gpu_net, &net, &mut gpu_params, &options, |_| {}).unwrap();
    assert!(cpu.converged && gpu.converged, "{cpu:?} {gpu:?}");
    for (c, g) in cpu_params.iter().zip(&gpu_params) {
        assert!((c - g).abs() <= 1e-4 * c.abs().max(0.01), "{c} vs {g}");
    }
}

fn compare_chunked(
    ctx: &likely::gpu::GpuContext,
    net: &Network,
    n: usize,
    batch: usize,
    cap: Option<usize>,
) -> usize {
    let (x, y) = table(n, net.inputs, net.head.family, net.head.classes, 77);
    let mut rng = StdRng::seed_from_u64(78);
    let params: Vec<f64> = (0..net.param_count())
        .map(|_| rng.random_range(-0.5f32..0.5) as f64)
        .collect();
    let rows: Vec<usize> = (0..n).collect();
    let (cpu_nll, cpu_grad) = net.nll_and_grad(&params, &x, &y, &rows);
    let gpu = GpuNetwork::with_chunk_cap(ctx, net, &x, &y, &vec![0.0; n], &[], batch, cap).unwrap();
    let (gpu_nll, gpu_grad) = gpu.nll_and_grad(&params).unwrap();
    let scale = cpu_grad.iter().fold(1.0f64, |m, g| m.max(g.abs()));
    let tol = likely::tolerance::MODEL_GPU_VS_CPU;
    assert!(
        (gpu_nll - cpu_nll).abs() <= tol * cpu_nll.abs(),
        "nll {gpu_nll} vs {cpu_nll}"
    );
    for (g, c) in gpu_grad.iter().zip(&cpu_grad) {
        assert!((g - c).abs() <= tol * scale, "grad {g} vs {c}");
    }
    gpu.chunk_count()
}

#[test]
fn tables_spanning_several_bindings() {
    let ctx = gpu_or_skip!();
    let net = Network {
        inputs: 10,
        hidden: vec![7],
        activation: Activation::Tanh,
        head: Head::new(FamilyName::Categorical, 3, false),
    };
    // Small chunks: batches draw rows from several bindings at once.
    assert_eq!(compare_chunked(ctx, &net, 1000, 64, Some(300)), 4);
    assert_eq!(compare_chunked(ctx, &net, 1000, 64, Some(1)), 1000);
}

#[test]
fn a_feature_table_larger_than_128_mib() {
    let ctx = gpu_or_skip!();
    let net = Network::linear(10, FamilyName::Bernoulli, 1);
    let cap_rows = (128usize << 20) / (4 * 10);
    let n = cap_rows + 1000;
    assert!(n * 10 * 4 > 128 << 20);
    let chunks = compare_chunked(ctx, &net, n, 8192, Some(cap_rows));
    assert!(chunks >= 2);
}

#[test]
fn gpu_reduced_hessian_matches_the_cpu_newton() {
    use likely::model::{train, train_gpu, ModelOptimizer};
    let ctx = gpu_or_skip!();
    for (family, classes) in [
        (FamilyName::Bernoulli, 1),
        (FamilyName::Categorical, 4),
        (FamilyName::Poisson, 1),
        (FamilyName::Gaussian, 1),
    ] {
        let net = Network::linear(5, family, classes);
        let (x, y) = table(3000, 5, family, classes, 30);
        let constants = net.head.row_constants(&y);
        let options = likely::model::TrainOptions {
            batch_size: None,
            ..train_options(ModelOptimizer::Newton, net.param_count(), 1, 1)
        };
        let mut cpu_params = net.init(0, &y);
        let cpu = train(&net, &mut cpu_params, &x, &y, &options, |_| {}).unwrap();
        // A batch that is not a multiple of the tile, and several batches per pass.
        let gpu_net = GpuNetwork::new(ctx, &net, &x, &y, &constants, &[], 999).unwrap();
        let mut gpu_params = net.init(0, &y);
        let gpu = train_gpu(&gpu_net, &net, &mut gpu_params, &options, |_| {}).unwrap();
        // f32 sums cannot decide a decrement of 1e-9 standard errors: the GPU's Newton run
        // alone converges or stops at its noise floor (the fit command then finishes on f64
        // sums); the CPU's converges.
        assert!(
            cpu.converged && (gpu.converged || gpu.reason.contains("noise floor")),
            "{family:?}: {cpu:?} {gpu:?}"
        );
        assert!(
            gpu.steps <= 12,
            "{family:?}: {} Newton steps on the GPU",
            gpu.steps
        );
        let scale = cpu_params.iter().fold(0.1f64, |m, v| m.max(v.abs()));
        for (c, g) in cpu_params.iter().zip(&gpu_params) {
            assert!((c - g).abs() <= 1e-4 * scale, "{family:?}: {c} vs {g}");
        }
        // The GPU stops where its f32 objective can no longer resolve a decrease; that point
        // is still at the optimum's NLL in f64, not short of it.
        let rows: Vec<usize> = (0..y.len()).collect();
        let at_cpu = net.nll_and_grad(&cpu_params, &x, &y, &rows).0;
        let at_gpu = net.nll_and_grad(&gpu_params, &x, &y, &rows).0;
        assert!(
            (at_gpu - at_cpu).abs() <= 1e-10 * at_cpu.abs(),
            "{family:?}: NLL {at_gpu} at the GPU's optimum vs {at_cpu}"
        );
    }
}

#[test]
fn gpu_hessian_matches_the_cpu_hessian() {
    let ctx = gpu_or_skip!();
    for (family, classes) in [
        (FamilyName::Bernoulli, 1),
        (FamilyName::Categorical, 4),
        (FamilyName::Poisson, 1),
        (FamilyName::Gaussian, 1),
        (FamilyName::Exponential, 1),
    ] {
        let net = Network::linear(5, family, classes);
        let (x, y) = table(777, 5, family, classes, 31);
        let constants = net.head.row_constants(&y);
        let mut rng = StdRng::seed_from_u64(32);
        let params: Vec<f64> = (0..net.param_count())
            .map(|_| rng.random_range(-0.3f32..0.3) as f64)
            .collect();
        let (cf, cg, ch) = likely::model::newton::derivatives(&net, &params, &x, &y).unwrap();
        let gpu = GpuNetwork::new(ctx, &net, &x, &y, &constants, &[], 100).unwrap();
        let (gf, gg, gh) = gpu.derivatives(&params).unwrap();
        let tol = likely::tolerance::MODEL_GPU_VS_CPU;
        assert!(
            (cf - gf).abs() <= tol * cf.abs(),
            "{family:?} nll {gf} vs {cf}"
        );
        let gs = cg.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (a, b) in gg.iter().zip(&cg) {
            assert!((a - b).abs() <= tol * gs, "{family:?} grad {a} vs {b}");
        }
        let hs = ch.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (k, (a, b)) in gh.iter().zip(&ch).enumerate() {
            assert!(
                (a - b).abs() <= tol * hs,
                "{family:?} hessian[{k}] {a} vs {b}"
            );
        }
    }
}

#[test]
fn fused_training_steps_match_the_kernel_by_kernel_steps() {
    use likely::fit::Prior;
    use likely::model::{train_gpu, ModelOptimizer};
    let ctx = gpu_or_skip!();
    let software = ctx.adapter().software;
    let net = |inputs: usize, hidden: &[usize], family, classes, activation| Network {
        inputs,
        hidden: hidden.to_vec(),
        activation,
        head: Head::new(family, classes, hidden.is_empty()),
    };
    // Every head, each activation, 0 to 2 hidden layers, every optimiser, both priors, a
    // frozen intercept; batches below and above the fused step's 32 rows per workgroup round,
    // of one and several rounds and workgroups, and tables whose last batch is partial.
    let cases = [
        (
            net(10, &[32], FamilyName::Categorical, 5, Activation::Relu),
            2500,
            1024,
            ModelOptimizer::Adamw,
            None,
            false,
        ),
        (
            net(3, &[], FamilyName::Bernoulli, 1, Activation::Relu),
            333,
            50,
            ModelOptimizer::Sgd,
            Some(Prior::L1 { scale: 0.5 }),
            true,
        ),
        (
            net(5, &[7], FamilyName::Gaussian, 1, Activation::Tanh),
            400,
            130,
            ModelOptimizer::Sgd,
            Some(Prior::L2 { scale: 1.0 }),
            false,
        ),
        (
            net(4, &[9, 6], FamilyName::Poisson, 1, Activation::Gelu),
            300,
            64,
            ModelOptimizer::Adam,
            None,
            false,
        ),
        (
            net(6, &[5], FamilyName::Laplace, 1, Activation::Relu),
            250,
            100,
            ModelOptimizer::Adamw,
            None,
            false,
        ),
        (
            net(3, &[4], FamilyName::Exponential, 1, Activation::Tanh),
            210,
            70,
            ModelOptimizer::Adam,
            None,
            false,
        ),
        (
            net(8, &[], FamilyName::Categorical, 4, Activation::Relu),
            500,
            200,
            ModelOptimizer::Adam,
            Some(Prior::L2 { scale: 2.0 }),
            false,
        ),
        // Edge batches of the fused step's rounds of 32 rows (8 invocations x 4): one row,
        // one short of a round, a round, one past it.
        (
            net(3, &[4], FamilyName::Bernoulli, 1, Activation::Tanh),
            7,
            1,
            ModelOptimizer::Adamw,
            None,
            false,
        ),
        (
            net(3, &[4], FamilyName::Bernoulli, 1, Activation::Relu),
            100,
            31,
            ModelOptimizer::Adam,
            None,
            false,
        ),
        (
            net(3, &[4], FamilyName::Gaussian, 1, Activation::Relu),
            96,
            32,
            ModelOptimizer::Adamw,
            None,
            false,
        ),
        (
            net(3, &[4], FamilyName::Categorical, 3, Activation::Gelu),
            99,
            33,
            ModelOptimizer::Sgd,
            None,
            false,
        ),
    ];
    if !software {
        eprintln!(
            "SKIPPING the fused-vs-kernel-by-kernel comparisons: {} is not a CPU adapter, \
             which alone has the fused step",
            ctx.adapter_label()
        );
    }
    for (i, (net, n, batch, optimizer, prior, frozen_bias)) in cases.into_iter().enumerate() {
        let (x, y) = table(
            n,
            net.inputs,
            net.head.family,
            net.head.classes,
            90 + i as u64,
        );
        let mut frozen = vec![false; net.param_count()];
        if frozen_bias {
            let l = net.layers()[0];
            frozen[l.bias..l.bias + l.fan_out].fill(true);
        }
        let options = likely::model::TrainOptions {
            prior,
            frozen: frozen.clone(),
            ..train_options(optimizer, net.param_count(), batch, 2)
        };
        let constants = net.head.row_constants(&y);
        let gpu = GpuNetwork::new(ctx, &net, &x, &y, &constants, &frozen, batch).unwrap();
        let start = net.init(i as u64, &y);
        if !software {
            // The fused step exists on CPU adapters only: nothing to compare on this one.
            gpu.set_fused_steps(true);
            assert!(!gpu.fused_steps(), "case {i}");
            continue;
        }
        let mut runs = Vec::new();
        for fused in [true, false] {
            gpu.set_fused_steps(fused);
            assert_eq!(gpu.fused_steps(), fused, "case {i}");
            let mut params = start.clone();
            let report = train_gpu(&gpu, &net, &mut params, &options, |_| {}).unwrap();
            assert!(report.converged, "case {i}: {}", report.reason);
            runs.push((report, params));
        }
        let ((fused, fused_params), (plain, plain_params)) = (&runs[0], &runs[1]);
        assert_eq!(fused.history.len(), 2 * n.div_ceil(batch), "case {i}");
        assert_eq!(fused.history.len(), plain.history.len(), "case {i}");
        // The same sums in f32, grouped differently: by invocation in the fused step, by
        // 64-row split in the kernel-by-kernel one.
        for (f, p) in fused.history.iter().zip(&plain.history) {
            let rel = (f.train_mean_nll - p.train_mean_nll).abs() / p.train_mean_nll.abs();
            assert!(
                rel <= 1e-5,
                "case {i} step {}: fused {} vs {}",
                f.step,
                f.train_mean_nll,
                p.train_mean_nll
            );
        }
        let scale = plain_params.iter().fold(1.0f64, |m, p| m.max(p.abs()));
        for (j, (f, p)) in fused_params.iter().zip(plain_params).enumerate() {
            assert!(
                (f - p).abs() <= 1e-5 * scale,
                "case {i} parameter {j}: fused {f} vs {p}"
            );
            if frozen[j] {
                assert_eq!(*f, start[j], "case {i}: frozen parameter {j} moved");
            }
        }
    }
    // A table spanning several storage bindings takes the kernel-by-kernel step.
    let net = net(10, &[7], FamilyName::Categorical, 3, Activation::Tanh);
    let (x, y) = table(1000, 10, FamilyName::Categorical, 3, 5);
    let gpu = GpuNetwork::with_chunk_cap(ctx, &net, &x, &y, &vec![0.0; 1000], &[], 64, Some(300))
        .unwrap();
    gpu.set_fused_steps(true);
    assert!(!gpu.fused_steps());
}

/// The f64 copy of a resident table follows the table: after another table is loaded, the f64
/// sums are those of the new rows (uploaded anew, the old copy released), not the CPU's
/// fallback for good, and not the old rows'.
#[test]
fn f64_sums_follow_a_reloaded_table() {
    let ctx = gpu_or_skip!();
    let net = Network::linear(3, FamilyName::Bernoulli, 2);
    let (xa, ya) = table(500, 3, FamilyName::Bernoulli, 2, 71);
    let (xb, yb) = table(400, 3, FamilyName::Bernoulli, 2, 72);
    let gpu = GpuNetwork::new(ctx, &net, &xa, &ya, &net.head.row_constants(&ya), &[], 100).unwrap();
    let theta = [0.3, -0.2, 0.1, 0.05];
    let check = |x: &[f64], y: &[f64], what: &str| {
        let Some(sums) = gpu.exact_sums(x, y, None) else {
            eprintln!(
                "SKIPPED ({what}): the adapter sums no f64 ({})",
                ctx.adapter().name
            );
            return false;
        };
        let (nll, grad, _) = sums.sums(&theta, false).unwrap();
        let (want_nll, want_grad, _) =
            likely::model::newton::derivatives(&net, &theta, x, y).unwrap();
        assert!(
            (nll - want_nll).abs() <= 1e-10 * want_nll.abs(),
            "{what}: {nll} vs {want_nll}"
        );
        for (g, w) in grad.iter().zip(&want_grad) {
            assert!(
                (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                "{what}: {g} vs {w}"
            );
        }
        true
    };
    if !check(&xa, &ya, "first table") {
        return;
    }
    gpu.load(&xb, &yb, &net.head.row_constants(&yb)).unwrap();
    assert!(
        check(&xb, &yb, "reloaded table"),
        "the f64 sums of the reloaded table"
    );
    assert!(gpu.has_exact_sums());
}
