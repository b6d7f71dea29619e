//! The CPU-vs-GPU conformance suite (`likely check`): every family's kernel at edge sizes,
//! at a size larger than one storage binding, at extreme parameters, with the subgroup and
//! the shared-memory reduction, compared with the f64 CPU engine.

use crate::engine::{CpuEngine, Engine, GpuEngine};
use crate::error::Result;
use crate::family::{Family, FamilyName};
use crate::gpu::reduce::ReductionOptions;
use crate::gpu::shader::{ReduceShape, WORKGROUP_SIZE};
use crate::gpu::GpuContext;
use crate::tolerance::{GPU_VS_CPU, MODEL_GPU_VS_CPU};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;
use std::sync::Arc;

/// Samples in one 128 MiB binding of f32 (lavapipe's limit, and the cap `check` imposes on
/// larger adapters so that the multi-binding path always runs).
pub const BINDING_CAP_SAMPLES: usize = (128 << 20) / 4;

/// One comparison of the GPU with the CPU.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    pub family: String,
    pub n: usize,
    /// "subgroup" or "tree" workgroup sum.
    pub reduction: String,
    /// Storage bindings the data spanned.
    pub chunks: usize,
    /// Parameters the case used (unconstrained).
    pub theta: Vec<f64>,
    /// Largest |gpu - cpu| over the NLL and every gradient component.
    pub max_abs_err: f64,
    /// Largest |gpu - cpu| / |cpu|.
    pub max_rel_err: f64,
    /// Largest |gpu - cpu| / condition scale, the quantity held to the tolerance.
    pub max_scaled_err: f64,
    pub pass: bool,
}

/// Which cases to run.
#[derive(Clone, Debug)]
pub struct CheckPlan {
    pub sizes: Vec<usize>,
    /// Each family at its own kernel's edge sizes ([`edge_sizes_for`]) instead of `sizes`.
    pub family_edges: bool,
    /// Also run a case larger than one storage binding.
    pub large: bool,
    /// Also run every size with the shared-memory tree where subgroups are the default.
    pub both_reductions: bool,
    pub seed: u64,
}

impl CheckPlan {
    /// Every edge size of the adapter's kernel, both reductions, and the multi-binding case.
    pub fn for_adapter(ctx: &GpuContext) -> Self {
        CheckPlan {
            sizes: edge_sizes(ctx),
            family_edges: true,
            large: true,
            both_reductions: true,
            seed: 7,
        }
    }
}

/// The sizes at the edges of the adapter's reduction kernel: 1; a workgroup's invocations
/// minus one, exactly, plus one; a workgroup's span of samples minus one, exactly, plus one;
/// and 1_000_003 (many workgroups, a partial last one).
pub fn edge_sizes(ctx: &GpuContext) -> Vec<usize> {
    edge_sizes_of(ReduceShape::for_adapter(ctx))
}

/// [`edge_sizes`] of `family`'s kernel, whose span is smaller where the adapter limits loops
/// ([`ReduceShape::for_family`]).
pub fn edge_sizes_for(ctx: &GpuContext, family: &dyn Family) -> Vec<usize> {
    edge_sizes_of(ReduceShape::for_family(ctx, family))
}

fn edge_sizes_of(shape: ReduceShape) -> Vec<usize> {
    let invocations = WORKGROUP_SIZE as usize;
    let span = shape.samples_per_workgroup();
    vec![
        1,
        invocations - 1,
        invocations,
        invocations + 1,
        span - 1,
        span,
        span + 1,
        1_000_003,
    ]
}

/// The families checked, with the categorical family at K = 7 and 300 (counted class by
/// class, and by index) and at 2 and 5 (the GPU's packed counts, at their widest).
pub fn check_families() -> Vec<Box<dyn Family>> {
    let mut v: Vec<Box<dyn Family>> = FamilyName::ALL.iter().map(|f| f.build(7)).collect();
    v.push(FamilyName::Categorical.build(300));
    v.push(FamilyName::Categorical.build(2));
    v.push(FamilyName::Categorical.build(crate::family::categorical::PACKED_CLASSES));
    v
}

/// Data drawn from `family` at `theta`, rounded to f32 so both engines see the same values.
pub fn sample_f32(family: &dyn Family, theta: &[f64], n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    family
        .sample(theta, n, &mut rng)
        .into_iter()
        .map(|x| x as f32 as f64)
        .collect()
}

/// Compares one GPU engine with the CPU engine on the same data at each theta.
pub fn compare(
    ctx: &GpuContext,
    family: &dyn Family,
    data: Arc<[f64]>,
    thetas: &[Vec<f64>],
    options: ReductionOptions,
) -> Result<Vec<CaseResult>> {
    let rebuild = || crate::family::rebuild(family);
    let mut gpu = GpuEngine::with_options(ctx, rebuild(), &data, options)?;
    let mut cpu = CpuEngine::as_given(rebuild(), data.clone());
    let mut out = Vec::new();
    for theta in thetas {
        let (g_nll, g_grad) = gpu.nll_and_grad(theta)?;
        let (c_nll, c_grad) = cpu.nll_and_grad(theta)?;
        let scales = condition_scales(family, &data, theta);
        let (mut abs, mut rel, mut scaled) = (0.0f64, 0.0f64, 0.0f64);
        let pairs = std::iter::once((g_nll, c_nll))
            .chain(g_grad.iter().cloned().zip(c_grad.iter().cloned()));
        for ((g, c), scale) in pairs.zip(&scales) {
            let d = if g == c { 0.0 } else { (g - c).abs() };
            abs = abs.max(d);
            rel = rel.max(if d == 0.0 { 0.0 } else { d / c.abs() });
            scaled = scaled.max(if d == 0.0 {
                0.0
            } else if *scale > 0.0 {
                d / scale
            } else {
                f64::INFINITY
            });
        }
        let finite = g_nll.is_finite() && g_grad.iter().all(|v| v.is_finite());
        out.push(CaseResult {
            family: family_label(family),
            n: data.len(),
            reduction: if gpu.uses_subgroups() {
                "subgroup"
            } else {
                "tree"
            }
            .into(),
            chunks: gpu.chunk_count(),
            theta: theta.clone(),
            max_abs_err: abs,
            max_rel_err: rel,
            max_scaled_err: scaled,
            pass: finite && scaled <= GPU_VS_CPU,
        });
    }
    Ok(out)
}

fn family_label(family: &dyn Family) -> String {
    if family.name() == "categorical" {
        format!("categorical(K={})", family.n_terms())
    } else {
        family.name().to_string()
    }
}

/// For each output (NLL, then each gradient component): sum_k |d out / d S_k| * sum_i |t_ik|.
/// `finish` is affine in the term sums S, so d out / d S_k = finish(e_k) - finish(0).
pub fn condition_scales(family: &dyn Family, data: &[f64], theta: &[f64]) -> Vec<f64> {
    let terms = family.n_terms();
    let kp = family.kernel_params(theta);
    let abs_sums = data
        .par_chunks(1 << 16)
        .map(|block| {
            let mut acc = vec![0.0; terms];
            let mut t = vec![0.0; terms];
            for &x in block {
                family.terms(x, &kp, &mut t);
                for (a, v) in acc.iter_mut().zip(&t) {
                    *a += v.abs();
                }
            }
            acc
        })
        .reduce(
            || vec![0.0; terms],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let n = data.len() as f64;
    let flat =
        |(nll, grad): (f64, Vec<f64>)| std::iter::once(nll).chain(grad).collect::<Vec<f64>>();
    let base = flat(family.finish(n, &vec![0.0; terms], theta));
    let mut scales = vec![0.0; base.len()];
    for (k, a) in abs_sums.iter().enumerate() {
        if *a == 0.0 {
            continue;
        }
        let mut e = vec![0.0; terms];
        e[k] = 1.0;
        let out = flat(family.finish(n, &e, theta));
        for ((s, o), b) in scales.iter_mut().zip(&out).zip(&base) {
            *s += (o - b).abs() * a;
        }
    }
    scales
}

/// Runs the whole plan; `progress` is called with each finished case.
pub fn run(
    ctx: &GpuContext,
    plan: &CheckPlan,
    mut progress: impl FnMut(&CaseResult),
) -> Result<Vec<CaseResult>> {
    let mut results = Vec::new();
    let mut record = |cases: Vec<CaseResult>, results: &mut Vec<CaseResult>| {
        for c in cases {
            progress(&c);
            results.push(c);
        }
    };
    let binding_samples = (ctx.limits.max_storage_buffer_binding_size / 4) as usize;
    let cap = BINDING_CAP_SAMPLES.min(binding_samples);
    let large_n = cap + 12_345;
    for (index, family) in check_families().iter().enumerate() {
        let family = family.as_ref();
        let seed = plan.seed.wrapping_add(1000 * index as u64);
        let mut rng = StdRng::seed_from_u64(seed);
        let theta = family.random_theta(&mut rng);
        let mut sizes = if plan.family_edges {
            edge_sizes_for(ctx, family)
        } else {
            plan.sizes.clone()
        };
        if plan.large {
            sizes.push(large_n);
        }
        for &n in &sizes {
            let data: Arc<[f64]> = sample_f32(family, &theta, n, seed ^ n as u64).into();
            let mut thetas = vec![theta.clone(), family.random_theta(&mut rng)];
            if n == 1_000_003 {
                thetas.extend(family.extreme_thetas());
            }
            let options = ReductionOptions {
                max_chunk_samples: Some(cap),
                ..Default::default()
            };
            record(
                compare(ctx, family, data.clone(), &thetas, options)?,
                &mut results,
            );
            if plan.both_reductions && ctx.has_subgroups() && n != large_n {
                let tree = ReductionOptions {
                    force_tree: true,
                    ..options
                };
                record(
                    compare(ctx, family, data, &thetas[..1], tree)?,
                    &mut results,
                );
            }
        }
    }
    Ok(results)
}

/// The model kernels' shapes `likely check` runs: (rows, inputs, hidden, batch); none of the
/// sizes is a multiple of the 16-wide tile except where the edge is the point.
/// The last takes the tiled (shared-memory) kernels: reductions over more than 64 terms and
/// more than 1024 weights in a layer; the others take the direct ones.
pub const MODEL_SHAPES: [(usize, usize, &[usize], usize); 5] = [
    (1, 3, &[], 1),
    (17, 10, &[32], 16),
    (255, 17, &[33, 7], 64),
    (1000, 10, &[32], 256),
    (300, 70, &[80, 70], 128),
];

/// `n` random rows of `inputs` features and a target in `family`'s support (`classes` for
/// the categorical), all f32-representable so that the GPU and the CPU see the same data.
pub fn random_table(
    rng: &mut StdRng,
    n: usize,
    inputs: usize,
    family: FamilyName,
    classes: usize,
) -> (Vec<f64>, Vec<f64>) {
    use rand::Rng;
    let x = (0..n * inputs)
        .map(|_| rng.random_range(-2.0f32..2.0) as f64)
        .collect();
    let y = (0..n)
        .map(|_| match family {
            FamilyName::Bernoulli => rng.random_range(0..2) as f64,
            FamilyName::Categorical => rng.random_range(0..classes) as f64,
            FamilyName::Poisson | FamilyName::NegativeBinomial => rng.random_range(0..5) as f64,
            FamilyName::Exponential
            | FamilyName::Gamma
            | FamilyName::Lognormal
            | FamilyName::Weibull => rng.random_range(0.1f32..3.0) as f64,
            FamilyName::Gaussian | FamilyName::Laplace | FamilyName::StudentT => {
                rng.random_range(-2.0f32..2.0) as f64
            }
            FamilyName::Beta => rng.random_range(0.05f32..0.95) as f64,
        })
        .collect();
    (x, y)
}

/// A random network and table on the GPU beside the f64 CPU reference, compared in two
/// cases: the full-batch NLL and gradient, and one training step on a batch of rows (fused
/// into two dispatches where the adapter has the fused step, kernel by kernel otherwise).
/// Errors are relative to the NLL's size and to the largest gradient component.
pub struct ModelComparison {
    net: crate::model::Network,
    x: Vec<f64>,
    y: Vec<f64>,
    params: Vec<f64>,
    gpu: crate::gpu::mlp::GpuNetwork,
    batch: usize,
    name: String,
    rng: StdRng,
}

impl ModelComparison {
    /// `n` random rows (f32-representable, so both sides see the same data) and random
    /// parameters; `batch` rows per training step.
    pub fn new(
        ctx: &GpuContext,
        net: &crate::model::Network,
        n: usize,
        batch: usize,
        seed: u64,
    ) -> Result<Self> {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(seed);
        let family = net.head.family;
        let (x, y) = random_table(&mut rng, n, net.inputs, family, net.head.classes);
        let params: Vec<f64> = (0..net.param_count())
            .map(|_| rng.random_range(-0.5f32..0.5) as f64)
            .collect();
        let constants = net.head.row_constants(&y);
        let gpu = crate::gpu::mlp::GpuNetwork::new(ctx, net, &x, &y, &constants, &[], batch)?;
        let name =
            format!("{} {:?} {:?}", family.as_str(), net.hidden, net.activation).to_lowercase();
        Ok(ModelComparison {
            net: net.clone(),
            x,
            y,
            params,
            gpu,
            batch,
            name,
            rng,
        })
    }

    /// The NLL and gradient over every row.
    pub fn full_batch(&self) -> Result<CaseResult> {
        let rows: Vec<usize> = (0..self.y.len()).collect();
        let cpu = self.net.nll_and_grad(&self.params, &self.x, &self.y, &rows);
        let gpu = self.gpu.nll_and_grad(&self.params)?;
        Ok(model_case(
            &self.name,
            rows.len(),
            format!("batch {}", self.batch),
            (cpu.0, &cpu.1),
            (gpu.0, &gpu.1),
        ))
    }

    /// One training step on a random batch of rows: its loss and the gradient it applied.
    pub fn training_step(&mut self) -> Result<CaseResult> {
        // One step of plain SGD from zero momentum moves every parameter by -lr times the
        // batch's mean gradient, so (before - after) / lr times the rows is the summed
        // gradient the step used. lr makes the largest move a quarter, which the f32
        // parameters resolve to about 1e-7 of it.
        use rand::seq::SliceRandom;
        let n = self.y.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut self.rng);
        order.truncate(self.batch.min(n));
        let rows: Vec<usize> = order.iter().map(|&r| r as usize).collect();
        let count = rows.len() as f64;
        let (cpu_nll, cpu_grad) = self.net.nll_and_grad(&self.params, &self.x, &self.y, &rows);
        let largest = cpu_grad.iter().fold(0.0f64, |m, g| m.max(g.abs())) / count;
        let lr = if largest > 0.0 {
            (0.25 / largest) as f32
        } else {
            1.0
        };
        let sgd = crate::gpu::mlp::Hyper {
            lr,
            optimizer: 0,
            ..Default::default()
        };
        self.gpu.set_params(&self.params);
        self.gpu.reset_optimizer();
        let losses = self.gpu.train_epoch(&order, sgd, 0)?;
        let after = self.gpu.read_params()?;
        let step_grad: Vec<f64> = self
            .params
            .iter()
            .zip(&after)
            .map(|(before, after)| (before - after) / lr as f64 * count)
            .collect();
        let path = if self.gpu.fused_steps() {
            "fused"
        } else {
            "kernels"
        };
        Ok(model_case(
            &self.name,
            rows.len(),
            format!("step {path}"),
            (cpu_nll, &cpu_grad),
            (losses.first().copied().unwrap_or(f64::NAN), &step_grad),
        ))
    }
}

/// One model comparison: the NLL relative to its size, the gradient relative to its largest
/// component.
fn model_case(
    name: &str,
    n: usize,
    reduction: String,
    (cpu_nll, cpu_grad): (f64, &[f64]),
    (gpu_nll, gpu_grad): (f64, &[f64]),
) -> CaseResult {
    let gscale = cpu_grad.iter().fold(1.0f64, |m, g| m.max(g.abs()));
    let mut abs = (gpu_nll - cpu_nll).abs();
    let mut rel = abs / cpu_nll.abs().max(1e-300);
    let mut scaled = abs / cpu_nll.abs().max(1.0);
    for (g, c) in gpu_grad.iter().zip(cpu_grad) {
        let d = (g - c).abs();
        abs = abs.max(d);
        rel = rel.max(if d == 0.0 { 0.0 } else { d / c.abs() });
        scaled = scaled.max(d / gscale);
    }
    let finite = gpu_nll.is_finite() && gpu_grad.iter().all(|g| g.is_finite());
    CaseResult {
        family: name.to_string(),
        n,
        reduction,
        chunks: 1,
        theta: Vec::new(),
        max_abs_err: abs,
        max_rel_err: rel,
        max_scaled_err: scaled,
        pass: finite && gpu_grad.len() == cpu_grad.len() && scaled <= MODEL_GPU_VS_CPU,
    }
}

/// The families whose heads the GPU network kernels carry (all but the t, with two globals).
pub fn gpu_heads() -> impl Iterator<Item = FamilyName> {
    FamilyName::ALL
        .into_iter()
        .filter(|f| f.conditional().head_wgsl().is_some())
}

/// Every head the GPU network kernels carry (not the t's, with two globals), with every
/// activation, at [`MODEL_SHAPES`].
pub fn run_models(
    ctx: &GpuContext,
    seed: u64,
    mut progress: impl FnMut(&CaseResult),
) -> Result<Vec<CaseResult>> {
    use crate::model::{Activation, Head, Network};
    let mut out = Vec::new();
    for family in gpu_heads() {
        for (i, (n, d, hidden, batch)) in MODEL_SHAPES.iter().enumerate() {
            let activation = [Activation::Relu, Activation::Tanh, Activation::Gelu][i % 3];
            let net = Network {
                inputs: *d,
                hidden: hidden.to_vec(),
                activation,
                head: Head::new(family, 5, hidden.is_empty()),
            };
            let mut comparison = ModelComparison::new(ctx, &net, *n, *batch, seed + i as u64)?;
            for case in [comparison.full_batch()?, comparison.training_step()?] {
                progress(&case);
                out.push(case);
            }
        }
    }
    Ok(out)
}
