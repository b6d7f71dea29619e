//! The adapter's streaming roofline: the fastest plain one-pass sum of f32 values we can
//! write for it, which the bench times beside every family's reduction over the same bytes.
//!
//! "Plain" means the pass does nothing but read: vec4 loads, two independent accumulators per
//! invocation, one partial per subgroup, the partials added in f64 on the host. Which walk
//! (each invocation its own contiguous run, or the whole grid one row per step) and how many
//! workgroups stream fastest differ between adapters, so [`PlainSum::tune`] times every
//! candidate on the data and keeps the fastest.

use super::buffers::{bind_all, compute_pipelines, read_back, upload_from};
use super::context::GpuContext;
use super::shader::WORKGROUP_SIZE;
use super::timer::{KernelTime, PassTimer};
use crate::error::{Error, Result};
use std::time::Instant;

const SOURCE: &str = include_str!("../../shaders/plain_sum.wgsl");

const WITH_SUBGROUPS: &str = "\
struct SumInvocation {
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
}
fn finish(total: f32, inv: SumInvocation) {
    let sum = subgroupAdd(total);
    if (inv.lane == 0u) {
        partials[info.partial_base + inv.wid.x * inv.subgroups + inv.subgroup] = sum;
    }
}
";

const WITHOUT_SUBGROUPS: &str = "\
struct SumInvocation {
    @builtin(global_invocation_id) gid: vec3<u32>,
}
fn finish(total: f32, inv: SumInvocation) {
    partials[info.partial_base + inv.gid.x] = total;
}
";

/// How the invocations walk the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    Blocked,
    GridStride,
}

impl Walk {
    const ALL: [Walk; 2] = [Walk::Blocked, Walk::GridStride];

    fn entry_point(self) -> &'static str {
        match self {
            Walk::Blocked => "blocked",
            Walk::GridStride => "grid_stride",
        }
    }
}

/// One way of running the sum: a walk and a number of workgroups per storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SumVariant {
    pub walk: Walk,
    pub workgroups: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SumInfo {
    len4: u32,
    threads: u32,
    partial_base: u32,
    pad: u32,
}

struct SumChunk {
    data: wgpu::Buffer,
    len4: usize,
}

/// f32 values resident on the device, summed by the plain kernel.
pub struct PlainSum {
    ctx: GpuContext,
    layout: wgpu::BindGroupLayout,
    pipelines: [wgpu::ComputePipeline; 2],
    chunks: Vec<SumChunk>,
    info: Vec<wgpu::Buffer>,
    variant: SumVariant,
    /// The partials, their readback and the chunks' bind groups, sized for `variant`: one
    /// slot per invocation of each chunk's dispatch (the most subgroups there can be).
    partials: Option<(wgpu::Buffer, wgpu::Buffer, Vec<wgpu::BindGroup>)>,
    timer: Option<PassTimer>,
}

const LABEL: &str = "likely plain sum";
/// The most workgroups a variant dispatches per binding.
const MAX_WORKGROUPS: u32 = 4096;

impl PlainSum {
    /// Uploads `values` as f32 (split across storage bindings as the adapter requires),
    /// converted a piece at a time.
    pub fn new(ctx: &GpuContext, values: &[f64]) -> Result<Self> {
        Self::with_chunk_cap(ctx, values, None)
    }

    /// As [`PlainSum::new`] with at most `cap` values per storage binding (tests use it to
    /// span several bindings cheaply).
    pub fn with_chunk_cap(ctx: &GpuContext, values: &[f64], cap: Option<usize>) -> Result<Self> {
        if values.is_empty() {
            return Err(Error::InvalidData("no values to sum".into()));
        }
        let interface = if ctx.has_subgroups() {
            WITH_SUBGROUPS
        } else {
            WITHOUT_SUBGROUPS
        };
        let source =
            format!("const WORKGROUP_SIZE: u32 = {WORKGROUP_SIZE}u;\n{SOURCE}\n{interface}");
        use wgpu::BufferBindingType as B;
        let (layout, pipelines) = compute_pipelines(
            ctx,
            LABEL,
            source,
            &[
                B::Storage { read_only: true },
                B::Storage { read_only: false },
                B::Uniform,
            ],
            &Walk::ALL.map(Walk::entry_point),
        )?;
        let pipelines: [wgpu::ComputePipeline; 2] = pipelines
            .try_into()
            .map_err(|_| Error::gpu(LABEL, "expected two pipelines"))?;
        // Chunks of whole vec4s within one binding.
        let binding = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size) as usize;
        let mut per_chunk = (binding / 16) * 4;
        if let Some(cap) = cap {
            per_chunk = per_chunk.min(cap / 4 * 4).max(4);
        }
        let mut chunks = Vec::new();
        for (index, piece) in values.chunks(per_chunk).enumerate() {
            // Zero beyond the last value, so whole vec4s sum exactly.
            let data = upload_from(
                ctx,
                piece.len(),
                &format!("{LABEL} data chunk {index}"),
                &mut |at, out| {
                    out.copy_from_slice(&piece[at..at + out.len()]);
                    Ok(())
                },
            )?;
            chunks.push(SumChunk {
                data,
                len4: piece.len().div_ceil(4),
            });
        }
        let info = (0..chunks.len())
            .map(|i| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("{LABEL} chunk {i} info")),
                    size: std::mem::size_of::<SumInfo>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        ctx.take_errors(LABEL)?;
        let variant = SumVariant {
            walk: if ctx.adapter().software {
                Walk::Blocked
            } else {
                Walk::GridStride
            },
            workgroups: 64,
        };
        Ok(PlainSum {
            ctx: ctx.clone(),
            layout,
            pipelines,
            chunks,
            info,
            variant,
            partials: None,
            timer: None,
        })
    }

    /// Times every later pass with timestamp queries; false where the adapter has none.
    pub fn enable_kernel_timing(&mut self) -> bool {
        self.timer = PassTimer::new(&self.ctx, LABEL);
        self.timer.is_some()
    }

    /// Kernel time of every pass timed so far.
    pub fn kernel_time(&self) -> Option<KernelTime> {
        self.timer.as_ref().map(PassTimer::total)
    }

    /// Number of storage bindings the values span.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The variant [`PlainSum::sum`] runs.
    pub fn variant(&self) -> SumVariant {
        self.variant
    }

    /// Every walk at workgroup counts from 2 to 4096 (as the adapter's dispatch limit allows).
    pub fn candidates(&self) -> Vec<SumVariant> {
        let limit = self.ctx.limits.max_compute_workgroups_per_dimension;
        let mut out = Vec::new();
        for walk in Walk::ALL {
            let mut workgroups = 2;
            while workgroups <= MAX_WORKGROUPS.min(limit) {
                out.push(SumVariant { walk, workgroups });
                workgroups *= 4;
            }
        }
        out
    }

    /// Times every candidate `reps` times (after one untimed run) and keeps the fastest by
    /// its median; returns it with its median seconds.
    pub fn tune(&mut self, reps: usize) -> Result<(SumVariant, f64)> {
        let mut best: Option<(SumVariant, f64)> = None;
        for candidate in self.candidates() {
            self.set_variant(candidate);
            self.sum()?;
            let mut times = Vec::with_capacity(reps);
            for _ in 0..reps.max(1) {
                let start = Instant::now();
                self.sum()?;
                times.push(start.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            if best.is_none_or(|(_, t)| median < t) {
                best = Some((candidate, median));
            }
        }
        let best = best.ok_or_else(|| Error::gpu(LABEL, "no variant to run"))?;
        self.set_variant(best.0);
        Ok(best)
    }

    /// Runs `variant` from now on.
    pub fn set_variant(&mut self, variant: SumVariant) {
        if variant != self.variant {
            self.variant = variant;
            self.partials = None;
        }
    }

    fn threads(&self) -> u32 {
        self.variant.workgroups * WORKGROUP_SIZE
    }

    /// The partial-sum buffers and bind groups for the current variant, made on first use.
    fn prepare(&mut self) -> Result<()> {
        if self.partials.is_some() {
            return Ok(());
        }
        let ctx = &self.ctx;
        let threads = self.threads();
        let bytes = (self.chunks.len() * threads as usize * 4) as u64;
        let buffer = |name: &str, usage| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("{LABEL} {name}")),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        let partials = buffer(
            "partials",
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        );
        let readback = buffer(
            "partials readback",
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let mut groups = Vec::with_capacity(self.chunks.len());
        for (i, chunk) in self.chunks.iter().enumerate() {
            let info = SumInfo {
                len4: chunk.len4 as u32,
                threads,
                partial_base: i as u32 * threads,
                pad: 0,
            };
            ctx.queue
                .write_buffer(&self.info[i], 0, bytemuck::bytes_of(&info));
            groups.push(bind_all(
                ctx,
                LABEL,
                &self.layout,
                &[&chunk.data, &partials, &self.info[i]],
            )?);
        }
        self.partials = Some((partials, readback, groups));
        Ok(())
    }

    /// The sum of all values: one submit, one readback, the partials added in f64.
    pub fn sum(&mut self) -> Result<f64> {
        self.prepare()?;
        let ctx = &self.ctx;
        let SumVariant { walk, workgroups } = self.variant;
        let pipeline = &self.pipelines[walk as usize];
        let Some((partials, readback, groups)) = &self.partials else {
            return Err(Error::gpu(LABEL, "partials not prepared"));
        };
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(LABEL) });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(walk.entry_point()),
                timestamp_writes: self.timer.as_ref().map(PassTimer::writes),
            });
            pass.set_pipeline(pipeline);
            for group in groups {
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(workgroups, 1, 1);
            }
        }
        encoder.copy_buffer_to_buffer(partials, 0, readback, 0, partials.size());
        if let Some(timer) = &self.timer {
            timer.resolve(&mut encoder);
        }
        ctx.queue.submit([encoder.finish()]);
        let partials = read_back(ctx, readback, LABEL)?;
        if let Some(timer) = &self.timer {
            timer.collect(ctx)?;
        }
        ctx.take_errors(LABEL)?;
        Ok(partials.iter().map(|&p| p as f64).sum())
    }
}
