//! The GPU engine: the family's WGSL kernel over data uploaded once.

use super::Engine;
use crate::error::Result;
use crate::family::{Family, Summary};
use crate::gpu::reduce::ReductionOptions;
use crate::gpu::timer::KernelTime;
use crate::gpu::{GpuContext, TermReduction};

pub struct GpuEngine {
    family: Box<dyn Family>,
    reduction: TermReduction,
    adapter: String,
    n: usize,
    constant: f64,
    summary: Summary,
}

impl GpuEngine {
    /// Uploads `data` and builds the kernel; the data then stays on the GPU.
    pub fn new(ctx: &GpuContext, family: Box<dyn Family>, data: &[f64]) -> Result<Self> {
        Self::with_options(ctx, family, data, ReductionOptions::default())
    }

    pub fn with_options(
        ctx: &GpuContext,
        family: Box<dyn Family>,
        data: &[f64],
        options: ReductionOptions,
    ) -> Result<Self> {
        let reduction = TermReduction::with_options(ctx, family.as_ref(), data, options)?;
        let constant = super::constant_sum(family.as_ref(), data);
        Ok(GpuEngine {
            family,
            reduction,
            adapter: ctx.adapter_label(),
            n: data.len(),
            constant,
            summary: Summary::of(data),
        })
    }

    /// Number of storage bindings the data spans.
    pub fn chunk_count(&self) -> usize {
        self.reduction.chunk_count()
    }

    /// Times every later evaluation's kernels with timestamp queries; false where the adapter
    /// has none.
    pub fn enable_kernel_timing(&mut self) -> bool {
        self.reduction.enable_kernel_timing()
    }

    pub fn uses_subgroups(&self) -> bool {
        self.reduction.uses_subgroups()
    }
}

impl Engine for GpuEngine {
    fn name(&self) -> &'static str {
        "gpu"
    }
    fn adapter(&self) -> String {
        self.adapter.clone()
    }
    fn family(&self) -> &dyn Family {
        self.family.as_ref()
    }
    fn n(&self) -> usize {
        self.n
    }
    fn constant(&self) -> f64 {
        self.constant
    }
    fn summary(&self) -> Summary {
        self.summary
    }
    fn unit_roundoff(&self) -> f64 {
        f32::EPSILON as f64 / 2.0
    }
    fn kernel_time(&self) -> Option<KernelTime> {
        self.reduction.kernel_time()
    }
    fn term_sums(&mut self, theta: &[f64]) -> Result<Vec<f64>> {
        let kp = self.family.kernel_params(theta);
        self.reduction.sums(&kp)
    }
}
