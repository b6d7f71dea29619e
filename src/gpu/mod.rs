//! The only part of likely that talks to wgpu.
//!
//! * [`context`]: adapter discovery and selection (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`,
//!   `WGPU_POWER_PREF`, `--adapter`), device creation with the adapter's own limits, and
//!   capture of validation errors as [`crate::Error`]s instead of panics.
//! * [`shader`]: composition of the reduction kernel from WGSL snippets, and naga validation.
//! * [`reduce`]: the fused per-sample reduction: data uploaded once (split across storage
//!   bindings as needed), every chunk's dispatch recorded into one encoder, one readback.
//! * [`roofline`]: the adapter's streaming roofline, a plain vec4 sum tuned on the data, which
//!   the bench times beside the reductions.
//! * [`timer`]: kernel time of a compute pass from timestamp queries.
//! * [`mlp`]: dense networks (linear models among them) in f32: training steps, full-batch
//!   gradients and Hessians.
//! * [`linear64`], [`family64`]: the f64 passes (optimality tests, f64 finishes) on adapters
//!   with SHADER_F64: a linear model's derivatives and a family's term sums from f64 copies.
//! * [`special`]: special.wgsl's f32 functions at given arguments (their twin test).

mod buffers;
pub mod context;
pub mod family64;
pub mod linear64;
pub mod mlp;
pub mod reduce;
pub mod roofline;
pub mod shader;
pub mod special;
pub mod timer;

pub use context::{list_adapters, AdapterReport, AdapterSelector, GpuContext};
pub use reduce::TermReduction;
