//! Composes the reduction kernel from WGSL snippets and validates it with naga.
//!
//! The sizes the kernel is compiled with are Rust constants written into a generated header,
//! so the host and the shader cannot disagree about them.

use crate::family::Family;

/// Invocations per workgroup.
pub const WORKGROUP_SIZE: u32 = 256;
/// Samples each invocation accumulates before the workgroup tree, in runs of
/// [`RUN`] summed separately, so that no sequential f32 sum is long (its rounding error grows
/// with its length) while a workgroup's fixed cost is spread over many samples.
pub const SAMPLES_PER_THREAD: u32 = 64;
/// Samples per sequential run inside an invocation.
pub const RUN: u32 = 16;
/// Terms reduced together through the workgroup scratch (256 x 4 f32, 4 KiB).
pub const TREE_TERMS: u32 = 4;
/// Samples covered by one workgroup.
pub const SAMPLES_PER_WORKGROUP: u32 = WORKGROUP_SIZE * SAMPLES_PER_THREAD;
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
pub fn compose(family: &dyn Family, subgroups: bool) -> String {
    let header = format!(
        "// Generated for the {} family.\n\
         const N_TERMS: u32 = {}u;\n\
         const WORKGROUP_SIZE: u32 = {}u;\n\
         const SAMPLES_PER_THREAD: u32 = {}u;\n\
         const RUN: u32 = {}u;\n\
         const TREE_TERMS: u32 = {}u;\n\
         const KERNEL_PARAM_VEC4S: u32 = {}u;\n",
        family.name(),
        family.n_terms(),
        WORKGROUP_SIZE,
        SAMPLES_PER_THREAD,
        RUN,
        TREE_TERMS,
        MAX_KERNEL_PARAMS / 2
    );
    let sum = if subgroups { SUBGROUP } else { TREE };
    [header.as_str(), COMMON, sum, family.wgsl(), REDUCE].join("\n")
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
