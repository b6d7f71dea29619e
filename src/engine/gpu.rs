//! The GPU engine: the family's WGSL kernel over data uploaded once.

use super::Engine;
use crate::error::Result;
use crate::family::{Family, SampleMap, Summary};
use crate::gpu::family64::FamilyF64;
use crate::gpu::reduce::ReductionOptions;
use crate::gpu::timer::KernelTime;
use crate::gpu::{GpuContext, TermReduction};
use std::sync::Arc;

pub struct GpuEngine {
    family: Box<dyn Family>,
    reduction: TermReduction,
    adapter: String,
    n: usize,
    constant: f64,
    summary: Summary,
    map: SampleMap,
    /// The samples in f64 on the host, for [`Engine::exact_term_sums`].
    host: Option<Arc<[f64]>>,
    /// The samples (re-expressed) in f64 on the GPU, for [`Engine::exact_term_sums`] where
    /// the adapter has SHADER_F64 (the host copy serves otherwise).
    exact: Option<FamilyF64>,
}

impl GpuEngine {
    /// Uploads `data` and builds the kernel; the data then stays on the GPU. The samples are
    /// re-expressed in f64 before they are rounded to f32 (see [`SampleMap::for_f32`]), and
    /// the engine keeps a host copy for its f64 sums.
    pub fn new(ctx: &GpuContext, family: Box<dyn Family>, data: &[f64]) -> Result<Self> {
        Self::shared(ctx, family, Arc::from(data))
    }

    /// As [`GpuEngine::new`], sharing the caller's host copy of the samples.
    pub fn shared(ctx: &GpuContext, family: Box<dyn Family>, data: Arc<[f64]>) -> Result<Self> {
        let raw = Summary::of(&data);
        let map = SampleMap::for_f32(family.as_ref(), raw.min, raw.max);
        let mapped: Vec<f64>;
        let uploaded: &[f64] = if map.is_identity() {
            &data
        } else {
            mapped = data.iter().map(|&x| map.apply(x)).collect();
            &mapped
        };
        let mut engine = Self::build(ctx, family, uploaded, ReductionOptions::default(), map)?;
        // The f64 copy on the GPU where it can be made; a failure (memory) leaves the f64 sums
        // to the host copy, which gives the same sums up to their order.
        if FamilyF64::applies(ctx, engine.family.as_ref()) {
            engine.exact = FamilyF64::new(ctx, engine.family.as_ref(), uploaded, None).ok();
        }
        engine.host = Some(data);
        Ok(engine)
    }

    /// The kernel over `data` as given (rounded to f32, not re-expressed), without a host
    /// copy: the conformance checks hold this to the CPU engine sample for sample.
    pub fn with_options(
        ctx: &GpuContext,
        family: Box<dyn Family>,
        data: &[f64],
        options: ReductionOptions,
    ) -> Result<Self> {
        Self::build(ctx, family, data, options, SampleMap::identity())
    }

    fn build(
        ctx: &GpuContext,
        family: Box<dyn Family>,
        data: &[f64],
        options: ReductionOptions,
        map: SampleMap,
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
            map,
            host: None,
            exact: None,
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
    fn sample_map(&self) -> SampleMap {
        self.map
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
    fn f64_engine(&self) -> &'static str {
        if self.exact.is_some() {
            "gpu"
        } else {
            "cpu"
        }
    }
    fn exact_term_sums(&mut self, theta: &[f64]) -> Result<Option<Vec<f64>>> {
        if let Some(exact) = &self.exact {
            return exact.term_sums(&self.family.kernel_params(theta)).map(Some);
        }
        Ok(self
            .host
            .as_ref()
            .map(|data| super::mapped_term_sums(self.family.as_ref(), data, &self.map, theta)))
    }
}
