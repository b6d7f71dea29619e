//! Every family's GPU kernel against the f64 CPU engine on seeded random data at the edge
//! sizes of the adapter's kernel (1, 255, 256, 257: a workgroup's invocations - 1, +0, +1;
//! a workgroup's span of samples - 1, +0, +1; 1_000_003), and one whose f32 data exceeds
//! 128 MiB (more than one storage binding on lavapipe; the binding is capped at 128 MiB on
//! larger adapters), at random and extreme parameters, with the subgroup and the
//! shared-memory reduction.

mod common;

use likely::check::{
    check_families, compare, edge_sizes, edge_sizes_for, sample_f32, BINDING_CAP_SAMPLES,
};
use likely::family::{Family, FamilyName};
use likely::for_each_family;
use likely::gpu::reduce::{ReductionOptions, TermReduction};
use likely::gpu::shader::{ReduceShape, WORKGROUP_SIZE};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;

fn assert_cases(
    family: &dyn Family,
    n: usize,
    seed: u64,
    extremes: bool,
    options: ReductionOptions,
) -> usize {
    let ctx = common::gpu().expect("checked by caller");
    let mut rng = StdRng::seed_from_u64(seed);
    let theta = family.random_theta(&mut rng);
    let data: Arc<[f64]> = sample_f32(family, &theta, n, seed).into();
    let mut thetas = vec![theta, family.random_theta(&mut rng)];
    if extremes {
        thetas.extend(family.extreme_thetas());
    }
    let cases = compare(ctx, family, data, &thetas, options).unwrap();
    for c in &cases {
        assert!(c.pass, "GPU disagrees with CPU: {c:?}");
    }
    cases[0].chunks
}

fn families_named(name: FamilyName) -> Vec<Box<dyn Family>> {
    check_families()
        .into_iter()
        .filter(|f| f.name() == name.as_str())
        .collect()
}

for_each_family!(edge_sizes, |name| {
    let ctx = gpu_or_skip!();
    for family in families_named(name) {
        let sizes = edge_sizes_for(ctx, family.as_ref());
        for (i, &n) in sizes.iter().enumerate() {
            let extremes = n == 1 || n == 1_000_003;
            assert_cases(
                family.as_ref(),
                n,
                100 + i as u64,
                extremes,
                ReductionOptions::default(),
            );
            let tree = ReductionOptions {
                force_tree: true,
                ..Default::default()
            };
            assert_cases(family.as_ref(), n, 200 + i as u64, extremes, tree);
        }
    }
});

for_each_family!(larger_than_one_storage_binding, |name| {
    let ctx = gpu_or_skip!();
    let binding = (ctx.adapter().max_storage_binding / 4) as usize;
    let cap = BINDING_CAP_SAMPLES.min(binding);
    let n = BINDING_CAP_SAMPLES + 4097;
    assert!(
        n * 4 > 128 << 20,
        "the case must exceed 128 MiB of f32 data"
    );
    let family = name.build(7);
    let options = ReductionOptions {
        max_chunk_samples: Some(cap),
        ..Default::default()
    };
    let chunks = assert_cases(family.as_ref(), n, 300, false, options);
    assert!(
        chunks >= 2,
        "the data must span more than one storage binding"
    );
});

#[test]
fn edge_sizes_straddle_the_kernels_workgroup_span() {
    // The span is chosen per adapter; the edge sizes must follow the kernel actually built.
    let ctx = gpu_or_skip!();
    let family = FamilyName::Gaussian.build(1);
    let reduction = TermReduction::new(ctx, family.as_ref(), &[1.0; 10]).unwrap();
    let span = reduction.samples_per_workgroup();
    let sizes = edge_sizes(ctx);
    for n in [span - 1, span, span + 1] {
        assert!(sizes.contains(&n), "{n} missing from {sizes:?}");
    }
    let expected = if ctx.adapter().software {
        ReduceShape::SOFTWARE
    } else {
        ReduceShape::HARDWARE
    };
    assert_eq!(span, expected.samples_per_workgroup());
    // Every family's kernel, at its own span where the adapter limits its loops.
    for name in FamilyName::ALL {
        let family = name.build(3);
        let reduction = TermReduction::new(ctx, family.as_ref(), &[1.0; 10]).unwrap();
        let span = reduction.samples_per_workgroup();
        let sizes = edge_sizes_for(ctx, family.as_ref());
        for n in [span - 1, span, span + 1] {
            assert!(sizes.contains(&n), "{name:?}: {n} missing from {sizes:?}");
        }
        let per_invocation = span as u64 / likely::gpu::shader::WORKGROUP_SIZE as u64;
        if ctx.adapter().software {
            // Within the adapter's loop limit, with the kernel's own loops besides.
            let loops = per_invocation * (family.kernel_loop_iterations() as u64 + 1);
            assert!(
                loops < likely::gpu::shader::SOFTWARE_LOOP_LIMIT as u64,
                "{name:?}: {loops} loop iterations an invocation"
            );
        }
    }
}

#[test]
fn every_kernel_shape_agrees_with_the_cpu() {
    // Each adapter builds one shape; the others are run here too, so that both the hardware
    // and the CPU-adapter layouts (and lane groups of 1 and of a whole workgroup) are checked
    // on whatever adapter runs the tests. Sizes straddle each shape's workgroup span.
    gpu_or_skip!();
    let shapes = [
        ReduceShape::HARDWARE,
        ReduceShape::SOFTWARE,
        ReduceShape::SOFTWARE.with_lane_group(1),
        ReduceShape::SOFTWARE.with_lane_group(32),
        ReduceShape::HARDWARE.with_lane_group(8),
    ];
    for (s, shape) in shapes.into_iter().enumerate() {
        let options = ReductionOptions {
            shape: Some(shape),
            ..Default::default()
        };
        let span = shape.samples_per_workgroup();
        for family in [
            FamilyName::Gaussian.build(1),
            FamilyName::Categorical.build(7),
        ] {
            for (i, n) in [1, 257, span - 1, span, span + 1].into_iter().enumerate() {
                let seed = 500 + 10 * s as u64 + i as u64;
                assert_cases(family.as_ref(), n, seed, false, options);
            }
        }
    }
}

#[test]
fn lane_groups_must_tile_the_workgroup() {
    // A lane group that is not a power of two up to the workgroup size is not taken.
    let shape = ReduceShape::SOFTWARE;
    assert_eq!(shape.with_lane_group(3), shape);
    assert_eq!(shape.with_lane_group(0), shape);
    assert_eq!(shape.with_lane_group(2 * WORKGROUP_SIZE), shape);
    assert_eq!(shape.with_lane_group(16).lane_group, 16);
    // Shapes the kernel cannot walk (its blocks would overlap) are refused, not run.
    assert!(ReduceShape::SOFTWARE.is_valid() && ReduceShape::HARDWARE.is_valid());
    for samples_per_thread in [0, 8, 272] {
        let bad = ReduceShape {
            samples_per_thread,
            ..ReduceShape::SOFTWARE
        };
        assert!(!bad.is_valid());
        if let Some(ctx) = common::gpu() {
            let family = FamilyName::Gaussian.build(1);
            let options = ReductionOptions {
                shape: Some(bad),
                ..Default::default()
            };
            assert!(
                TermReduction::with_options(ctx, family.as_ref(), &[1.0; 10], options).is_err()
            );
        }
    }
}

#[test]
fn chunked_and_unchunked_evaluations_agree() {
    // The same data split over many small bindings gives the same sums as one binding.
    gpu_or_skip!();
    let family = FamilyName::Gaussian.build(1);
    for cap in [4096, 10_000, 333_333] {
        let options = ReductionOptions {
            max_chunk_samples: Some(cap),
            ..Default::default()
        };
        assert_cases(family.as_ref(), 1_000_003, 400, false, options);
    }
}

#[test]
fn the_rooflines_plain_sum_agrees_with_an_f64_sum_in_every_variant() {
    // The bench's yardstick must sum what it reads: every walk and workgroup count, at sizes
    // that leave every kind of remainder (a partial vec4, fewer vec4s than invocations, a
    // leftover after the main loop), and across several storage bindings.
    use likely::gpu::roofline::PlainSum;
    let ctx = gpu_or_skip!();
    let mut rng = StdRng::seed_from_u64(77);
    for (n, cap) in [
        (1, None),
        (3, None),
        (5, None),
        (WORKGROUP_SIZE as usize * 8 + 3, None),
        (1_000_003, None),
        (1_000_003, Some(300_001)),
    ] {
        let values: Vec<f64> = (0..n)
            .map(|_| rand::Rng::random_range(&mut rng, -1.0f32..2.0) as f64)
            .collect();
        let exact: f64 = values.iter().sum();
        let scale: f64 = values.iter().map(|x| x.abs()).sum();
        let mut sum = PlainSum::with_chunk_cap(ctx, &values, cap).unwrap();
        if cap.is_some() {
            assert!(sum.chunk_count() >= 3);
        }
        for variant in sum.candidates() {
            sum.set_variant(variant);
            let got = sum.sum().unwrap();
            // Each accumulator adds at most len/(8 threads) + 2 vec4s in sequence; then the
            // four lanes, the subgroup and the f64 finish.
            let threads = (variant.workgroups * WORKGROUP_SIZE) as f64;
            let sequential = (n as f64 / (8.0 * threads)).ceil() + 2.0;
            let bound = (sequential + 16.0) * f32::EPSILON as f64 / 2.0 * scale;
            assert!(
                (got - exact).abs() <= bound,
                "n = {n}, {variant:?}: {got} vs {exact} (bound {bound:e})"
            );
        }
    }
}

/// The term sums themselves, where they are counts (exact integers on both engines): the
/// Laplace's signs and its count of samples at mu (data with ties at mu, which the NLL and
/// gradient do not see: the subgradient test does), and the categorical counts, at the sizes
/// where runs, workgroups and chunks end.
#[test]
fn counted_terms_equal_the_cpu_counts() {
    use likely::engine::{CpuEngine, Engine, GpuEngine};
    let ctx = gpu_or_skip!();
    let laplace = FamilyName::Laplace.build(1);
    // (family, theta, the terms that are counts)
    type Case = (Box<dyn Family>, Vec<f64>, Vec<usize>);
    let cases: Vec<Case> = vec![
        (laplace, vec![2.0, 0.0], vec![1, 2]),
        (
            FamilyName::Categorical.build(5),
            vec![0.1, -0.3, 0.2, 0.0],
            (0..5).collect(),
        ),
        (
            FamilyName::Categorical.build(2),
            vec![0.4],
            (0..2).collect(),
        ),
    ];
    for (family, theta, counted) in cases {
        // Values 0..values (classes for the categorical, 0..4 for the Laplace), and a repeated
        // value (mu = 2 for the Laplace; the last class, the widest digit, for the
        // categorical) in stretches longer than a run's reach, so that runs hold 16 of a kind.
        let (values, repeated) = if family.name() == "categorical" {
            (family.n_terms(), family.n_terms() as f64 - 1.0)
        } else {
            (5, 2.0)
        };
        for n in [1, 17, 255, 257, 4097, 100_003] {
            let data: Arc<[f64]> = (0..n)
                .map(|i| {
                    if i % 8192 < 5000 {
                        repeated
                    } else {
                        ((i * 7 + i / 3) % values) as f64
                    }
                })
                .collect::<Vec<_>>()
                .into();
            let rebuild = || likely::family::rebuild(family.as_ref());
            let mut gpu =
                GpuEngine::with_options(ctx, rebuild(), &data, ReductionOptions::default())
                    .unwrap();
            let mut cpu = CpuEngine::as_given(rebuild(), data.clone());
            let (g, c) = (
                gpu.term_sums(&theta).unwrap(),
                cpu.term_sums(&theta).unwrap(),
            );
            for &t in &counted {
                assert_eq!(
                    g[t],
                    c[t],
                    "{} n {n} term {t}: {g:?} vs {c:?}",
                    family.name()
                );
            }
        }
    }
}
