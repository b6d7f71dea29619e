//! Composes the reduction kernel from WGSL snippets and validates it with naga.
//!
//! The sizes the kernel is compiled with are Rust constants written into a generated header,
//! so the host and the shader cannot disagree about them.

use crate::family::Family;

/// Invocations per workgroup.
pub const WORKGROUP_SIZE: u32 = 256;
/// Samples per sequential run inside an invocation.
pub const RUN: u32 = 16;
/// Terms reduced together through the workgroup scratch (256 x 4 f32, 4 KiB).
pub const TREE_TERMS: u32 = 4;
/// Families with at most this many terms get their per-term additions written out one by
/// one (see [`compose`]).
pub const UNROLLED_TERMS: usize = 16;

/// How the reduction kernel walks the data, fixed per adapter.
///
/// Each invocation accumulates `samples_per_thread` samples, in runs of [`RUN`] summed
/// separately, so that no sequential f32 sum is long (its rounding error grows with its
/// length), before the workgroup sums its invocations' totals.
///
/// Which samples: a workgroup's span is cut into one block per group of `lane_group`
/// consecutive invocations, and at each step a group reads `lane_group` adjacent words of its
/// block. The shape changes only the order of the sums, never which samples are summed.
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
    /// workgroup's fixed cost is large there, so each takes four times the samples (measured
    /// on lavapipe: gauss-eval at 2^26 went from 3.5 to 4.3 GB/s). The group is one SIMD
    /// group, so that it walks its own block from start to end: with the workgroup as the
    /// group, consecutive steps of a SIMD group were a workgroup row (1 KiB) apart. Measured
    /// on lavapipe: gauss-eval 4.3 -> 4.8 GB/s, the plain sum 4.9 -> 5.2 GB/s.
    /// [`ReduceShape::for_adapter`] takes the adapter's subgroup size; 8 is lavapipe's on AVX2.
    pub const SOFTWARE: ReduceShape = ReduceShape {
        samples_per_thread: 256,
        lane_group: 8,
    };

    pub fn for_adapter(ctx: &super::GpuContext) -> Self {
        let adapter = ctx.adapter();
        if adapter.software {
            Self::SOFTWARE.with_lane_group(adapter.subgroup_size)
        } else {
            Self::HARDWARE
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
         const TREE_TERMS: u32 = {}u;\n\
         const KERNEL_PARAM_VEC4S: u32 = {}u;\n",
        family.name(),
        family.n_terms(),
        WORKGROUP_SIZE,
        shape.samples_per_thread,
        shape.lane_group,
        RUN,
        TREE_TERMS,
        MAX_KERNEL_PARAMS / 2
    );
    let sum = if subgroups { SUBGROUP } else { TREE };
    let add_terms = add_terms(family.n_terms());
    [
        header.as_str(),
        COMMON,
        sum,
        family.wgsl(),
        &add_terms,
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
