//! The accuracy policy in one place. Every comparison in tests and in `likely check` uses
//! these named tolerances; the README explains them.

/// GPU (f32 per-sample terms, tree-reduced, finished in f64) against the f64 CPU engine.
/// The error of each output is measured relative to its condition scale
/// sum_k |d out / d S_k| * sum_i |t_ik| (the size of what was summed, not of the result, which
/// can cancel to near zero). Each f32 sum sees at most ~3 roundings forming a term, 15 in a
/// per-invocation run of 16 samples, 3 adding an invocation's 4 runs (on a CPU adapter, whose
/// invocations take 2048 samples, 15 adding 16 runs into a segment and 7 adding 8 segments),
/// and then the workgroup's sum: 8 in the shared-memory tree; with subgroup operations, the
/// adapter's subgroup sum (log2 S roundings as a tree, S - 1 at worst lane by lane, for S
/// lanes) and log2(256 / S) adding the subgroups' totals pairwise. In the worst case: 29 unit
/// roundoffs u = 2^-24 on a hardware GPU with the tree or a tree-shaped subgroup sum of 32
/// lanes (55 were its 32 lanes added in sequence); 48 on a CPU adapter with the tree, 52 with
/// lavapipe's 8-lane subgroups. We allow 64 u = 3.8e-6.
pub const GPU_VS_CPU: f64 = 64.0 * (f32::EPSILON as f64 / 2.0);

/// Model kernels (f32) against the f64 reference: the NLL relative to its size, gradients
/// relative to the largest component. Each output is an f32 dot product of at most ~65 terms
/// through up to three layers, summed over up to 1000 rows in 16-row slabs and a tree; with
/// exp/log/tanh accurate to a few ulp, about 1000 u = 6e-5 in the worst case, which we allow (2^-14); observed errors are below 1e-6.
pub const MODEL_GPU_VS_CPU: f64 = 1.0 / 16384.0;

/// The CPU engine's decomposition (terms + finish) against the direct sum of log-densities,
/// both f64: relative to the sum of |log p(x_i)|.
pub const DECOMPOSITION: f64 = 1e-11;

/// Central finite differences (step 1e-6 relative) against analytic gradients, relative to
/// the largest gradient component and the NLL's scale.
pub const FINITE_DIFFERENCE: f64 = 1e-6;

/// Fitted parameters against closed-form estimates (natural scale), relative.
pub const CLOSED_FORM: f64 = 1e-6;

/// |a - b| / |b|; 0 when equal, infinite when b = 0 and a differs.
pub fn relative_error(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs()
    }
}
