//! f64 sums of a family's per-sample terms on the GPU, for adapters with SHADER_F64: the f64
//! passes of a GPU family fit (its optimality test and f64 finish) without a pass over the
//! samples on the CPU. The samples, as the engine re-expressed them in f64 (see
//! [`crate::family::SampleMap`]), are uploaded in f64 beside their f32 copy, in chunks of at
//! most one storage binding; the terms are the family's own WGSL snippet with f64 for f32.

use super::buffers::{bind_all, compute_pipelines, read_back_as, upload_bytes_with, upload_pieces};
use super::context::GpuContext;
use super::reduce::TermReduction;
use crate::error::{Error, Result};
use crate::family::Family;

use super::shader::WORKGROUP_SIZE;
/// Workgroups, each summing a contiguous share of a chunk (more where the adapter limits an
/// invocation's loops: [`groups_for`]).
const GROUPS: u32 = 64;

/// Workgroups per chunk for `family` on `ctx`'s adapter: [`GROUPS`], or enough that no
/// invocation takes more samples of a chunk (at most one storage binding of f32 samples)
/// than the adapter's loop limit allows ([`super::shader::samples_per_invocation_cap`]).
fn groups_for(ctx: &GpuContext, family: &dyn Family) -> u32 {
    match super::shader::samples_per_invocation_cap(ctx, family) {
        Some(cap) => {
            let most = (ctx.limits.max_storage_buffer_binding_size / 4).div_ceil(4) * 4;
            let per_group = u64::from(WORKGROUP_SIZE) * u64::from(cap.max(4) / 4 * 4);
            GROUPS.max(most.div_ceil(per_group).min(u64::from(u16::MAX)) as u32)
        }
        None => GROUPS,
    }
}
/// The most terms a sample has here (each invocation keeps them in an f64 array): a
/// categorical family of more classes sums its counts on the CPU.
pub const MAX_TERMS: usize = 64;

const SOURCE: &str = include_str!("../../shaders/family64.wgsl");

/// The width the samples are stored at on the device: their own f64 copy, or the f32 data
/// of the reduction kernel where those are the samples exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    F64,
    F32,
}

/// How each invocation walks its workgroup's share of a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Its own contiguous block: a CPU adapter streams a few long runs per SIMD group best
    /// (on lavapipe, 2^26 Gaussian f32 samples summed in f64 at 1.9 GB/s with a scalar
    /// strided walk, 5.8 GB/s with vec4 loads in blocks, beside 7.5 GB/s for the f32 kernel).
    Blocked,
    /// Every WORKGROUP_SIZE-th vec4: adjacent invocations read adjacent memory (a GPU).
    Strided,
}

impl Walk {
    pub fn for_adapter(ctx: &GpuContext) -> Self {
        if ctx.adapter().software {
            Walk::Blocked
        } else {
            Walk::Strided
        }
    }
}

/// The WGSL source for `family`'s terms in f64, over samples stored as `stored`.
pub fn compose(family: &dyn Family, stored: Stored, walk: Walk, groups: u32) -> String {
    let blocked = walk == Walk::Blocked;
    let element = match stored {
        Stored::F64 => "f64",
        Stored::F32 => "f32",
    };
    let header = format!(
        "// Generated for the {} family.\n\
         const N_TERMS: u32 = {}u;\n\
         const WORKGROUP_SIZE: u32 = {WORKGROUP_SIZE}u;\n\
         const GROUPS: u32 = {groups}u;\n\
         const BLOCKED: bool = {blocked};\n\
         @group(0) @binding(0) var<storage, read> x: array<vec4<{element}>>;\n",
        family.name(),
        family.n_terms(),
    );
    [
        header.as_str(),
        SOURCE,
        super::linear64::MATH64,
        &family.wgsl().replace("f32", "f64"),
        &super::shader::count_class(family.n_terms()).replace("f32", "f64"),
    ]
    .join("\n")
}

/// A family's samples in f64 on the GPU, and the pipelines that sum their terms.
pub struct FamilyF64 {
    ctx: GpuContext,
    /// Workgroups a chunk is dispatched as ([`groups_for`]).
    groups: u32,
    terms: usize,
    kernel_params: usize,
    layout: wgpu::BindGroupLayout,
    label: String,
    /// Each chunk's samples and bindings (which hold its buffers alive).
    chunks: Vec<(usize, wgpu::BindGroup)>,
    kernel: wgpu::Buffer,
    partials: wgpu::Buffer,
    readback: wgpu::Buffer,
    terms_pipeline: wgpu::ComputePipeline,
    totals_pipeline: wgpu::ComputePipeline,
}

impl FamilyF64 {
    /// Whether `ctx` can sum `family`'s terms in f64.
    pub fn applies(ctx: &GpuContext, family: &dyn Family) -> bool {
        ctx.features.contains(wgpu::Features::SHADER_F64) && family.n_terms() <= MAX_TERMS
    }

    fn require(ctx: &GpuContext, family: &dyn Family) -> Result<()> {
        if Self::applies(ctx, family) {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "the f64 GPU sums need SHADER_F64 and at most {MAX_TERMS} terms per sample"
            )))
        }
    }

    /// Uploads `samples` (already re-expressed) in f64, in chunks of at most `chunk_cap`
    /// samples (default: as many as one storage binding holds).
    pub fn new(
        ctx: &GpuContext,
        family: &dyn Family,
        samples: &[f64],
        chunk_cap: Option<usize>,
    ) -> Result<FamilyF64> {
        Self::new_walking(ctx, family, samples, chunk_cap, Walk::for_adapter(ctx))
    }

    /// As [`FamilyF64::new`], with the invocations' walk given (the tests run both on one
    /// adapter).
    pub fn new_walking(
        ctx: &GpuContext,
        family: &dyn Family,
        samples: &[f64],
        chunk_cap: Option<usize>,
        walk: Walk,
    ) -> Result<FamilyF64> {
        Self::upload(
            ctx,
            family,
            samples.len(),
            &mut |start, out| out.copy_from_slice(&samples[start..start + out.len()]),
            chunk_cap,
            walk,
        )
    }

    /// As [`FamilyF64::new`] over `n` samples that `fill(start, out)` writes (re-expressed),
    /// one storage binding's worth at a time.
    pub fn from_source(
        ctx: &GpuContext,
        family: &dyn Family,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [f64]),
        chunk_cap: Option<usize>,
    ) -> Result<FamilyF64> {
        Self::upload(ctx, family, n, fill, chunk_cap, Walk::for_adapter(ctx))
    }

    fn upload(
        ctx: &GpuContext,
        family: &dyn Family,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [f64]),
        chunk_cap: Option<usize>,
        walk: Walk,
    ) -> Result<FamilyF64> {
        Self::require(ctx, family)?;
        let label = "likely family f64";
        let mut f64s = Self::prepare(ctx, family, Stored::F64, walk, label)?;
        // Whole vec4s of f64 per binding: the last vec4 of a chunk is padded with zeros.
        let per_binding = (ctx.limits.max_storage_buffer_binding_size / 32).max(1) as usize * 4;
        let chunk = chunk_cap.map_or(per_binding, |c| c.clamp(1, per_binding));
        for start in (0..n).step_by(chunk) {
            let len = chunk.min(n - start);
            let x = upload_pieces::<f64>(
                ctx,
                len,
                len.next_multiple_of(4),
                &format!("{label} samples"),
                &mut |at, out| {
                    fill(start + at, out);
                    Ok(())
                },
            )?;
            f64s.bind_chunk(&x, len)?;
        }
        ctx.take_errors(label)?;
        Ok(f64s)
    }

    /// The f64 sums over the f32 data a reduction kernel already holds on the device: exact
    /// where those f32 values are the samples (as re-expressed), and no second copy of them.
    pub fn over_reduction(
        ctx: &GpuContext,
        family: &dyn Family,
        reduction: &TermReduction,
    ) -> Result<FamilyF64> {
        Self::over_reduction_walking(ctx, family, reduction, Walk::for_adapter(ctx))
    }

    /// As [`FamilyF64::over_reduction`], with the invocations' walk given.
    pub fn over_reduction_walking(
        ctx: &GpuContext,
        family: &dyn Family,
        reduction: &TermReduction,
        walk: Walk,
    ) -> Result<FamilyF64> {
        Self::require(ctx, family)?;
        let label = "likely family f64 over f32";
        let mut f64s = Self::prepare(ctx, family, Stored::F32, walk, label)?;
        for (buffer, len) in reduction.data_buffers() {
            f64s.bind_chunk(buffer, len)?;
        }
        ctx.take_errors(label)?;
        Ok(f64s)
    }

    /// The pipelines and the buffers the sums use, with no samples bound yet.
    fn prepare(
        ctx: &GpuContext,
        family: &dyn Family,
        stored: Stored,
        walk: Walk,
        label: &str,
    ) -> Result<FamilyF64> {
        let read = wgpu::BufferBindingType::Storage { read_only: true };
        let groups = groups_for(ctx, family);
        let (layout, pipelines) = compute_pipelines(
            ctx,
            label,
            compose(family, stored, walk, groups),
            &[
                read,
                read,
                wgpu::BufferBindingType::Storage { read_only: false },
                wgpu::BufferBindingType::Uniform,
            ],
            &["terms", "totals"],
        )?;
        let [terms_pipeline, totals_pipeline]: [wgpu::ComputePipeline; 2] =
            pipelines.try_into().expect("two entry points");
        let terms = family.n_terms();
        let kernel_params = family.kernel_params(&vec![0.0; family.n_params()]).len();
        let buffer = |bytes: usize, what: &str, usage: wgpu::BufferUsages| {
            ctx.scoped(label, || {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("{label} {what}")),
                    size: (bytes as u64).max(16),
                    usage,
                    mapped_at_creation: false,
                })
            })
        };
        let kernel = buffer(
            kernel_params.max(1) * 8,
            "kernel parameters",
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        )?;
        let partials = buffer(
            (groups as usize + 1) * terms * 8,
            "partial sums",
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        )?;
        let readback = buffer(
            terms * 8,
            "readback",
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        Ok(FamilyF64 {
            ctx: ctx.clone(),
            groups,
            terms,
            kernel_params,
            layout,
            label: label.to_string(),
            chunks: Vec::new(),
            kernel,
            partials,
            readback,
            terms_pipeline,
            totals_pipeline,
        })
    }

    /// Binds one chunk of `len` samples held in `x`.
    fn bind_chunk(&mut self, x: &wgpu::Buffer, len: usize) -> Result<()> {
        let ctx = &self.ctx;
        let label = &self.label;
        let shape = [len as u32, 0, 0, 0];
        let uniform = upload_bytes_with(
            ctx,
            bytemuck::cast_slice(&shape),
            &format!("{label} shape"),
            wgpu::BufferUsages::UNIFORM,
        )?;
        let bind = bind_all(
            ctx,
            &format!("{label} bindings"),
            &self.layout,
            &[x, &self.kernel, &self.partials, &uniform],
        )?;
        self.chunks.push((len, bind));
        Ok(())
    }

    /// The sums of the terms over every sample, at the family's kernel parameters `kp`.
    pub fn term_sums(&self, kp: &[f64]) -> Result<Vec<f64>> {
        if kp.len() != self.kernel_params {
            return Err(Error::Usage(format!(
                "{} kernel parameters for a family of {}",
                kp.len(),
                self.kernel_params
            )));
        }
        if !kp.is_empty() {
            self.ctx
                .queue
                .write_buffer(&self.kernel, 0, bytemuck::cast_slice(kp));
        }
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("likely family f64 pass"),
            });
        encoder.clear_buffer(&self.partials, 0, None);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("likely family f64 terms"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.terms_pipeline);
            for (_, bind) in &self.chunks {
                pass.set_bind_group(0, bind, &[]);
                pass.dispatch_workgroups(self.groups, 1, 1);
            }
            pass.set_pipeline(&self.totals_pipeline);
            pass.dispatch_workgroups((self.terms as u32).div_ceil(WORKGROUP_SIZE), 1, 1);
        }
        let at = (self.groups as usize * self.terms * 8) as u64;
        encoder.copy_buffer_to_buffer(
            &self.partials,
            at,
            &self.readback,
            0,
            (self.terms * 8) as u64,
        );
        self.ctx.queue.submit([encoder.finish()]);
        let label = "likely family f64 sums";
        let sums: Vec<f64> = read_back_as(&self.ctx, &self.readback, label)?;
        self.ctx.take_errors(label)?;
        Ok(sums[..self.terms].to_vec())
    }

    /// Samples per chunk, for tests of tables spanning several bindings.
    pub fn chunk_sizes(&self) -> Vec<usize> {
        self.chunks.iter().map(|(n, _)| *n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::FamilyName;

    #[test]
    fn the_kernel_validates_for_every_family() {
        use wgpu::naga::valid::{Capabilities, ValidationFlags, Validator};
        for name in FamilyName::ALL {
            let family = name.build(5);
            for (stored, walk) in [Stored::F64, Stored::F32]
                .into_iter()
                .zip([Walk::Strided, Walk::Blocked])
            {
                let source = compose(family.as_ref(), stored, walk, GROUPS);
                let module = wgpu::naga::front::wgsl::parse_str(&source)
                    .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&source)));
                Validator::new(ValidationFlags::all(), Capabilities::FLOAT64)
                    .validate(&module)
                    .unwrap_or_else(|e| panic!("{name:?}: {e:?}"));
            }
        }
    }
}
