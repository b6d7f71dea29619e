//! Composes the reduction kernel from WGSL snippets and validates it with naga.
//!
//! The sizes the kernel is compiled with are Rust constants written into a generated header,
//! so the host and the shader cannot disagree about them.

use crate::family::Family;

/// Invocations per workgroup.
pub const WORKGROUP_SIZE: u32 = 256;
/// Samples per sequential run inside an invocation.
pub const RUN: u32 = 16;
// reduce.wgsl writes a run's four vec4 loads out by hand.
const _: () = assert!(RUN == 16);
/// Terms reduced together through the workgroup scratch (256 x 4 f32, 4 KiB).
pub const TREE_TERMS: u32 = 4;
/// Families with at most this many terms get their per-term additions written out one by
/// one (see [`compose`]).
pub const UNROLLED_TERMS: usize = 16;

/// A software adapter (lavapipe: Mesa's llvmpipe) ends an invocation's loops once they have
/// run this many iterations in all, counted over every loop of the shader (gallivm's
/// LP_MAX_TGSI_LOOP_ITERATIONS, a guard against endless shaders): the loops then exit at once
/// and the sums come back short, with no error. A negative-binomial kernel of 2048 samples
/// an invocation lost up to half its terms so. Hardware drivers have no such limit.
pub const SOFTWARE_LOOP_LIMIT: u32 = 65_535;

/// Loop iterations a kernel may spend besides its samples' (its own walk over loads, the
/// workgroup sums, the partials): a bound with room to spare.
const KERNEL_OWN_LOOPS: u32 = 4096;

/// The most samples one invocation may take on `ctx`'s adapter for `family` (whose terms
/// run up to [`Family::kernel_loop_iterations`] a sample, and the kernel one more for its
/// load): `None` where loops are not limited (a hardware adapter, or a family without
/// loops).
pub fn samples_per_invocation_cap(ctx: &super::GpuContext, family: &dyn Family) -> Option<u32> {
    let per_sample = family.kernel_loop_iterations();
    (ctx.adapter().software && per_sample > 0)
        .then(|| (SOFTWARE_LOOP_LIMIT - KERNEL_OWN_LOOPS) / (per_sample + 1))
}

/// How the reduction kernel walks the data, fixed per adapter.
///
/// Each invocation accumulates `samples_per_thread` samples (a power of two, at least
/// [`RUN`]), in runs of [`RUN`] summed separately, the runs in segments of
/// [`ReduceShape::segment`], so that no sequential f32 sum is long (its rounding error grows
/// with its length), before the workgroup sums its invocations' totals.
///
/// Which samples: a workgroup's span is cut into one block per group of `lane_group`
/// consecutive invocations, and at each step a group reads `lane_group` adjacent vec4s (four
/// samples each) of its block. The shape changes only the order of the sums, never which
/// samples are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReduceShape {
    pub samples_per_thread: u32,
    pub lane_group: u32,
}

impl ReduceShape {
    /// A hardware GPU needs many workgroups in flight to fill its cores, and reads memory
    /// fastest when a whole workgroup reads one contiguous row at each step (the group is the
    /// workgroup).
    pub const HARDWARE: ReduceShape = ReduceShape {
        samples_per_thread: 64,
        lane_group: WORKGROUP_SIZE,
    };
    /// A CPU adapter (lavapipe) runs a workgroup as its SIMD groups one after another, with
    /// every barrier a switch between them and every subgroup sum a loop over lanes: a
    /// workgroup's fixed cost is large there, so each takes many samples. Each invocation
    /// walks its own block from start to end (a group of one): a CPU streams a few long runs
    /// per SIMD group best, while a group of a SIMD group's width reads one short row and
    /// then jumps. Measured on lavapipe (gauss-eval at 2^26, vec4 loads): 256 samples per
    /// invocation in groups of 8, 3.4 GB/s; groups of 1, 3.8; 2048 samples per invocation,
    /// 6.4-7.0 GB/s, 0.94 of the plain sum's 7.0-7.5.
    pub const SOFTWARE: ReduceShape = ReduceShape {
        samples_per_thread: 2048,
        lane_group: 1,
    };

    pub fn for_adapter(ctx: &super::GpuContext) -> Self {
        let adapter = ctx.adapter();
        if adapter.software {
            Self::SOFTWARE
        } else {
            Self::HARDWARE
        }
    }

    /// The adapter's shape for `family`: on a software adapter, no more samples an
    /// invocation than its loop limit allows ([`samples_per_invocation_cap`]; a power of two,
    /// at least [`RUN`]).
    pub fn for_family(ctx: &super::GpuContext, family: &dyn Family) -> Self {
        let shape = Self::for_adapter(ctx);
        match samples_per_invocation_cap(ctx, family) {
            Some(cap) if cap < shape.samples_per_thread => {
                let largest = if cap >= RUN {
                    1u32 << (31 - cap.leading_zeros())
                } else {
                    RUN
                };
                ReduceShape {
                    samples_per_thread: largest,
                    ..shape
                }
            }
            _ => shape,
        }
    }

    /// This shape with `lanes` invocations per group, where `lanes` is a power of two no
    /// larger than the workgroup (so that groups tile it); otherwise unchanged.
    pub fn with_lane_group(self, lanes: u32) -> Self {
        if lanes.is_power_of_two() && lanes <= WORKGROUP_SIZE {
            ReduceShape {
                lane_group: lanes,
                ..self
            }
        } else {
            self
        }
    }

    /// Runs of [`RUN`] samples summed into one segment before the segment is added to the
    /// invocation's total (all of them where there are at most 16).
    pub fn segment(self) -> u32 {
        (self.samples_per_thread / RUN).clamp(1, 16)
    }

    /// Whether the kernel can walk this shape: samples per invocation a power of two of at
    /// least [`RUN`] (so that runs tile segments and segments tile the invocation's block),
    /// and groups that tile the workgroup.
    pub fn is_valid(self) -> bool {
        self.samples_per_thread.is_power_of_two()
            && self.samples_per_thread >= RUN
            && self.lane_group.is_power_of_two()
            && self.lane_group <= WORKGROUP_SIZE
    }

    /// Samples covered by one workgroup; chunks and the partial sums are laid out in these.
    pub fn samples_per_workgroup(self) -> usize {
        (WORKGROUP_SIZE * self.samples_per_thread) as usize
    }
}

/// Kernel parameters (e.g. mu) that fit in the parameter uniform, as f32 hi/lo pairs.
pub const MAX_KERNEL_PARAMS: usize = 8;
/// Per-sample terms one kernel can reduce (the categorical family has one per class).
pub const MAX_TERMS: usize = 1024;

const COMMON: &str = include_str!("../../shaders/common.wgsl");
/// f32 special functions (an accurate log, log gamma's parts) for families and heads.
pub(crate) const SPECIAL: &str = include_str!("../../shaders/special.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const TREE: &str = include_str!("../../shaders/reduce_tree.wgsl");
const SUBGROUP: &str = include_str!("../../shaders/reduce_subgroup.wgsl");

/// The full WGSL source of the reduction kernel for `family`; `subgroups` picks the
/// subgroup-operation workgroup sum instead of the shared-memory tree.
pub fn compose(family: &dyn Family, subgroups: bool, shape: ReduceShape) -> String {
    let header = format!(
        "// Generated for the {} family.\n\
         const N_TERMS: u32 = {}u;\n\
         const WORKGROUP_SIZE: u32 = {}u;\n\
         const SAMPLES_PER_THREAD: u32 = {}u;\n\
         const LANE_GROUP: u32 = {}u;\n\
         const RUN: u32 = {}u;\n\
         const SEGMENT: u32 = {}u;\n\
         const TREE_TERMS: u32 = {}u;\n\
         const KERNEL_PARAM_VEC4S: u32 = {}u;\n",
        family.name(),
        family.n_terms(),
        WORKGROUP_SIZE,
        shape.samples_per_thread,
        shape.lane_group,
        RUN,
        shape.segment(),
        TREE_TERMS,
        MAX_KERNEL_PARAMS / 2
    );
    let sum = if subgroups { SUBGROUP } else { TREE };
    let add_terms = add_terms(family.n_terms());
    // A family that packs a run's terms supplies `accumulate` and `add_run`; the others add
    // a run's terms as they are.
    let (family_source, add_run) = match family.packed_run_wgsl() {
        Some(packed) => (packed, String::new()),
        None => (
            family.wgsl().to_string(),
            "fn add_run(acc: ptr<function, array<f32, N_TERMS>>, \
             run: ptr<function, array<f32, N_TERMS>>) {\n    add_terms(acc, run);\n}\n"
                .to_string(),
        ),
    };
    let count_class = count_class(family.n_terms());
    [
        header.as_str(),
        COMMON,
        SPECIAL,
        sum,
        &family_source,
        &add_terms,
        &count_class,
        &add_run,
        REDUCE,
    ]
    .join("\n")
}

/// `add_terms(acc, run)`: acc[t] += run[t] for every term. With few terms it is written out
/// term by term: indexed by a constant, the accumulators stay in registers, while lavapipe
/// keeps a private array that any loop indexes in memory and writes it lane by lane (Mesa
/// does not unroll naga's loops). Measured on lavapipe: gauss-eval at 2^26 went from 3.2 to
/// 3.5 GB/s.
fn add_terms(n_terms: usize) -> String {
    let body = if n_terms <= UNROLLED_TERMS {
        (0..n_terms)
            .map(|t| format!("    (*acc)[{t}] = (*acc)[{t}] + (*run)[{t}];\n"))
            .collect()
    } else {
        "    for (var t = 0u; t < N_TERMS; t = t + 1u) {\n        \
         (*acc)[t] = (*acc)[t] + (*run)[t];\n    }\n"
            .to_string()
    };
    format!(
        "fn add_terms(acc: ptr<function, array<f32, N_TERMS>>, \
         run: ptr<function, array<f32, N_TERMS>>) {{\n{body}}}\n"
    )
}

/// `count_class(k, acc)`: acc[k] += 1, for the categorical family's class counts. With few
/// classes every count adds `k == t` (a compare and an add per class, vectorised across
/// lanes): lavapipe writes a private array at an index that differs by lane one lane at a
/// time. Measured on lavapipe (eval-categorical, 5 classes, 2^26 samples): 3.1 -> 5.1-5.6 GB/s.
pub(crate) fn count_class(n_terms: usize) -> String {
    let body = if n_terms <= UNROLLED_TERMS {
        (0..n_terms)
            .map(|t| format!("    (*acc)[{t}] = (*acc)[{t}] + f32(k == {t}u);\n"))
            .collect()
    } else {
        "    (*acc)[k] = (*acc)[k] + 1.0;\n".to_string()
    };
    format!("fn count_class(k: u32, acc: ptr<function, array<f32, N_TERMS>>) {{\n{body}}}\n")
}

// Packed runs (Family::packed_run_wgsl) hold counts of at most RUN samples as 5-bit digits.
const _: () = assert!(RUN < 32, "packed runs hold counts in 5-bit digits");

/// Parses and validates WGSL with naga (no GPU needed); the error text names line and column.
pub fn validate(source: &str, subgroups: bool) -> Result<(), String> {
    use wgpu::naga::valid::{Capabilities, ValidationFlags, Validator};
    let module =
        wgpu::naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    let capabilities = if subgroups {
        Capabilities::SUBGROUP
    } else {
        Capabilities::empty()
    };
    Validator::new(ValidationFlags::all(), capabilities)
        .validate(&module)
        .map_err(|e| format!("{e:?}"))?;
    Ok(())
}
