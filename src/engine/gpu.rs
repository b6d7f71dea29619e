//! The GPU engine: the family's WGSL kernel over data uploaded once.

use super::Engine;
use crate::data::Samples;
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
    /// The samples on the host (at their stored width), for [`Engine::exact_term_sums`].
    host: Option<Samples>,
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

    /// Whether the f64 copy of `n` samples is made on the device (where the adapter has
    /// SHADER_F64): always on a hardware GPU; on a software adapter, whose memory is the
    /// host's, only for a copy of at most a quarter of the device budget.
    pub fn f64_copy_fits(ctx: &GpuContext, n: usize) -> bool {
        !ctx.adapter().software || n as u64 * 8 <= ctx.memory_budget() / 4
    }

    /// As [`GpuEngine::new`], sharing the caller's host copy of the samples.
    pub fn shared(ctx: &GpuContext, family: Box<dyn Family>, data: Arc<[f64]>) -> Result<Self> {
        Self::from_samples(ctx, family, Samples::F64(data))
    }

    /// As [`GpuEngine::new`], over samples held at any width (f32 samples stay 4 bytes each on
    /// the host). They are re-expressed and rounded to f32 a piece at a time as they are
    /// uploaded, so no full-size widened copy is made.
    pub fn from_samples(ctx: &GpuContext, family: Box<dyn Family>, data: Samples) -> Result<Self> {
        let raw = data.summary();
        let map = SampleMap::for_f32(family.as_ref(), raw.min, raw.max);
        // Whether every re-expressed sample is an f32 exactly, so that the device's f32 copy
        // is the samples themselves.
        let exact_in_f32 = std::cell::Cell::new(true);
        let mut mapped = |start: usize, out: &mut [f64]| match &data {
            Samples::F32(v) => {
                for (o, &x) in out.iter_mut().zip(&v[start..]) {
                    *o = map.apply(x as f64);
                }
            }
            Samples::F64(v) => {
                for (o, &x) in out.iter_mut().zip(&v[start..]) {
                    *o = map.apply(x);
                }
            }
        };
        let reduction = TermReduction::from_source(
            ctx,
            family.as_ref(),
            data.len(),
            &mut |start, out| {
                mapped(start, out);
                if exact_in_f32.get() && out.iter().any(|&v| v as f32 as f64 != v) {
                    exact_in_f32.set(false);
                }
                Ok(())
            },
            ReductionOptions::default(),
        )?;
        // The f64 sums on the GPU where the adapter has SHADER_F64: from the f32 data the
        // kernel already holds where those are the samples exactly (then no host copy is
        // kept: one copy of the data in all), otherwise from an f64 copy where it can be made;
        // a failure (memory) leaves the f64 sums to the host copy, which gives the same sums
        // up to their order. On a software adapter the device's memory is the host's: an f64
        // copy of more than a quarter of the device budget is not made (the host's copy
        // serves, exactly, in f64).
        let applies = FamilyF64::applies(ctx, family.as_ref());
        let over_f32 = (applies && exact_in_f32.get())
            .then(|| FamilyF64::over_reduction(ctx, family.as_ref(), &reduction).ok())
            .flatten();
        let exact = over_f32.or_else(|| {
            (applies && Self::f64_copy_fits(ctx, data.len()))
                .then(|| {
                    // Bindings of 8 Mi samples: the widened piece on the host stays 64 MiB.
                    FamilyF64::from_source(
                        ctx,
                        family.as_ref(),
                        data.len(),
                        &mut mapped,
                        Some(1 << 23),
                    )
                    .ok()
                })
                .flatten()
        });
        // Over the samples as given, as the CPU and streamed engines sum it.
        let constant = super::constant_sum_of(family.as_ref(), &data);
        Ok(GpuEngine {
            reduction,
            adapter: ctx.adapter_label(),
            n: data.len(),
            constant,
            summary: Summary {
                min: map.apply(raw.min),
                max: map.apply(raw.max),
                ..raw
            },
            map,
            host: exact.is_none().then(|| data.clone()),
            exact,
            family,
        })
    }

    /// Whether [`GpuEngine::from_source`] can hold `family`'s samples on this device as their
    /// only copy: the adapter sums its terms in f64 from the f32 data it holds. (Whether the
    /// samples need no re-expression for f32 is known once their range is:
    /// [`SampleMap::f32_samples_as_they_are`].)
    pub fn reads_directly(ctx: &GpuContext, family: &dyn Family) -> bool {
        FamilyF64::applies(ctx, family)
    }

    /// Reads `source` straight onto the device, with no host copy of the samples: one pass
    /// validates them and finds their range, a second uploads them a binding at a time, in
    /// pieces of at most 1 Mi samples. Where [`GpuEngine::reads_directly`] holds, the samples
    /// are f32 exactly and their range needs no re-expression, that is the only copy of the
    /// data (the kernel reads the samples as they are, and the fit runs in the family's own
    /// parameters); otherwise `Ok(None)`, and the caller reads the data into memory instead.
    pub fn from_source(
        ctx: &GpuContext,
        family: Box<dyn Family>,
        source: super::stream::Source,
    ) -> Result<Option<Self>> {
        let mut build = |_| Ok(crate::family::rebuild(family.as_ref()));
        Self::from_surveyed_source(ctx, family.as_ref(), &mut build, source)
    }

    /// As [`GpuEngine::from_source`] for the categorical family, whose classes, where
    /// `classes` does not give them, are the largest label plus one: the survey pass checks
    /// the labels (integers below `classes`, or [`crate::data::MAX_CLASSES`]) and finds it, so
    /// that the classes need no pass of their own.
    pub fn from_categorical_source(
        ctx: &GpuContext,
        classes: Option<usize>,
        source: super::stream::Source,
    ) -> Result<Option<Self>> {
        use crate::family::FamilyName;
        let checked = FamilyName::Categorical.build(classes.unwrap_or(crate::data::MAX_CLASSES));
        let mut build =
            |max: f64| Ok(FamilyName::Categorical.build(classes.unwrap_or(max as usize + 1)));
        Self::from_surveyed_source(ctx, checked.as_ref(), &mut build, source)
    }

    /// The survey (against `checked`'s support) and the upload of [`GpuEngine::from_source`],
    /// with the family built from the samples' largest value once the survey has found it.
    fn from_surveyed_source(
        ctx: &GpuContext,
        checked: &dyn Family,
        build: &mut dyn FnMut(f64) -> Result<Box<dyn Family>>,
        mut source: super::stream::Source,
    ) -> Result<Option<Self>> {
        let n = source.len();
        // (Whether the family's terms fit the f64 sums is known once it is built.)
        if n == 0 || !ctx.adapter().shader_f64 {
            return Ok(None);
        }
        let mut buffer = vec![0.0; n.min(1 << 20)];
        let (constant, min, max) = super::stream::survey(checked, &mut source, &mut buffer)?;
        drop(buffer);
        let family = build(max)?;
        // A location or rate family's samples far outside f32's comfortable range need the
        // re-expression made in memory; so do more terms than the f64 sums take.
        if !SampleMap::f32_samples_as_they_are(family.as_ref(), min, max)
            || !Self::reads_directly(ctx, family.as_ref())
        {
            return Ok(None);
        }
        let mut exact_in_f32 = true;
        let reduction = TermReduction::from_source(
            ctx,
            family.as_ref(),
            n,
            &mut |start, out| {
                source.read(start, out)?;
                exact_in_f32 &= out.iter().all(|&v| v as f32 as f64 == v);
                Ok(())
            },
            ReductionOptions::default(),
        )?;
        if !exact_in_f32 {
            return Ok(None);
        }
        // Where the f64 pipeline cannot be made, the caller's in-memory path serves.
        let Ok(exact) = FamilyF64::over_reduction(ctx, family.as_ref(), &reduction) else {
            return Ok(None);
        };
        Ok(Some(GpuEngine {
            reduction,
            adapter: ctx.adapter_label(),
            n,
            constant,
            summary: Summary { n, min, max },
            map: SampleMap::identity(),
            host: None,
            exact: Some(exact),
            family,
        }))
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

    /// Whether the engine keeps a host copy of the samples (for its f64 sums, where the
    /// device cannot make them from the data it holds).
    pub fn holds_host_copy(&self) -> bool {
        self.host.is_some()
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
    fn count(&self) -> f64 {
        self.n as f64
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
    fn has_exact_sums(&self) -> bool {
        self.exact.is_some() || self.host.is_some()
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
