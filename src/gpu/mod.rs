//! The only part of likely that talks to wgpu.
//!
//! * [`context`]: adapter discovery and selection (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`,
//!   `WGPU_POWER_PREF`, `--adapter`), device creation with the adapter's own limits, and
//!   capture of validation errors as [`crate::Error`]s instead of panics.
//! * [`shader`]: composition of the reduction kernel from WGSL snippets, and naga validation.
//! * [`reduce`]: the fused per-sample reduction: data uploaded once (split across storage
//!   bindings as needed), every chunk's dispatch recorded into one encoder, one readback.
//! * [`timer`]: kernel time of a compute pass from timestamp queries.

mod buffers;
pub mod context;
pub mod mlp;
pub mod reduce;
pub mod shader;
pub mod timer;

pub use context::{list_adapters, AdapterReport, AdapterSelector, GpuContext};
pub use reduce::TermReduction;
