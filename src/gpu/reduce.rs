//! The fused reduction of per-sample terms over a dataset resident on the GPU.

use super::buffers::{entry, read_back, upload_from};
use super::context::GpuContext;
use super::shader::{self, ReduceShape, MAX_KERNEL_PARAMS, MAX_TERMS};
use super::timer::{KernelTime, PassTimer};
use crate::error::{Error, Result};
use crate::family::Family;
use wgpu::util::DeviceExt;

/// How a reduction is built; the defaults use everything the adapter offers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReductionOptions {
    /// Use the shared-memory tree even where subgroup operations exist.
    pub force_tree: bool,
    /// Cap on samples per storage binding (tests use it to exercise chunking cheaply).
    pub max_chunk_samples: Option<usize>,
    /// A kernel shape other than the adapter's own (tests run every shape on one adapter).
    pub shape: Option<ReduceShape>,
}

struct Chunk {
    bind_group: wgpu::BindGroup,
    workgroups: u32,
    data: wgpu::Buffer,
    len: usize,
    _info: wgpu::Buffer,
}

/// A family's reduction kernel bound to one dataset that stays on the GPU.
pub struct TermReduction {
    ctx: GpuContext,
    label: String,
    pipeline: wgpu::ComputePipeline,
    chunks: Vec<Chunk>,
    params: wgpu::Buffer,
    partials: wgpu::Buffer,
    readback: wgpu::Buffer,
    n_terms: usize,
    total_workgroups: usize,
    /// Samples per workgroup of the kernel.
    span: usize,
    subgroups: bool,
    timer: Option<PassTimer>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ChunkInfo {
    len: u32,
    partial_base: u32,
    pad: [u32; 2],
}

impl TermReduction {
    /// Uploads `data` (as f32) once and builds the family's kernel.
    pub fn new(ctx: &GpuContext, family: &dyn Family, data: &[f64]) -> Result<Self> {
        Self::with_options(ctx, family, data, ReductionOptions::default())
    }

    pub fn with_options(
        ctx: &GpuContext,
        family: &dyn Family,
        data: &[f64],
        options: ReductionOptions,
    ) -> Result<Self> {
        Self::from_source(
            ctx,
            family,
            data.len(),
            &mut |start, out| {
                out.copy_from_slice(&data[start..start + out.len()]);
                Ok(())
            },
            options,
        )
    }

    /// As [`TermReduction::with_options`] over `n` samples that `fill(start, out)` writes, in
    /// f64, a piece at a time: no full-size host copy is made for the upload.
    pub fn from_source(
        ctx: &GpuContext,
        family: &dyn Family,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [f64]) -> Result<()>,
        options: ReductionOptions,
    ) -> Result<Self> {
        let label = format!("likely {} reduction", family.name());
        let n_terms = family.n_terms();
        if n == 0 {
            return Err(Error::InvalidData("no samples to reduce".into()));
        }
        if n_terms > MAX_TERMS {
            return Err(Error::Capacity(format!(
                "the GPU kernel reduces at most {MAX_TERMS} terms per sample; {} needs {n_terms} \
                 (use --backend cpu)",
                family.name()
            )));
        }
        let subgroups = ctx.has_subgroups() && !options.force_tree;
        let shape = options
            .shape
            .unwrap_or_else(|| ReduceShape::for_family(ctx, family));
        if !shape.is_valid() {
            return Err(Error::Usage(format!("the kernel cannot walk {shape:?}")));
        }
        let span = shape.samples_per_workgroup();
        let device = &ctx.device;

        let chunk_len = chunk_samples(&ctx.limits, span, options.max_chunk_samples);
        let starts: Vec<usize> = (0..n).step_by(chunk_len).collect();
        let workgroups: Vec<u32> = starts
            .iter()
            .map(|&s| (n.min(s + chunk_len) - s).div_ceil(span) as u32)
            .collect();
        let total_workgroups: usize = workgroups.iter().map(|&w| w as usize).sum();
        let partial_bytes = (total_workgroups * n_terms * 4) as u64;
        if partial_bytes > ctx.limits.max_storage_buffer_binding_size {
            return Err(Error::Capacity(format!(
                "{} partial sums ({partial_bytes} bytes) exceed the adapter's storage binding limit",
                family.name()
            )));
        }

        let (pipeline, layout) = build_pipeline(ctx, family, subgroups, shape, &label)?;

        let (params, partials, readback) = reduction_buffers(device, partial_bytes, "likely");

        let mut chunks = Vec::with_capacity(starts.len());
        let mut partial_base = 0u32;
        for (index, (&start, &groups)) in starts.iter().zip(&workgroups).enumerate() {
            let len = n.min(start + chunk_len) - start;
            let data_buffer = upload_from(
                ctx,
                len,
                &format!("likely data chunk {index}"),
                &mut |at, out| {
                    fill(start + at, out)?;
                    match out
                        .iter()
                        .position(|x| x.is_nan() || x.abs() > f32::MAX as f64)
                    {
                        Some(i) => Err(Error::Capacity(format!(
                            "sample {} ({:e}) is outside the f32 range the GPU kernels use (use \
                             --backend cpu)",
                            start + at + i,
                            out[i]
                        ))),
                        None => Ok(()),
                    }
                },
            )?;
            let info = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(&format!("likely chunk {index} info")),
                contents: bytemuck::bytes_of(&ChunkInfo {
                    len: len as u32,
                    partial_base,
                    pad: [0; 2],
                }),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("likely chunk {index} bindings")),
                layout: &layout,
                entries: &[
                    entry(0, &data_buffer),
                    entry(1, &partials),
                    entry(2, &info),
                    entry(3, &params),
                ],
            });
            partial_base += groups * n_terms as u32;
            chunks.push(Chunk {
                bind_group,
                workgroups: groups,
                data: data_buffer,
                len,
                _info: info,
            });
        }
        ctx.take_errors(&label)?;
        Ok(TermReduction {
            ctx: ctx.clone(),
            label,
            pipeline,
            chunks,
            params,
            partials,
            readback,
            n_terms,
            total_workgroups,
            span,
            subgroups,
            timer: None,
        })
    }

    /// Each chunk's data buffer (f32 samples, then zeros to a whole vec4) and its samples.
    pub(crate) fn data_buffers(&self) -> Vec<(&wgpu::Buffer, usize)> {
        self.chunks.iter().map(|c| (&c.data, c.len)).collect()
    }

    /// Number of storage bindings the data was split across.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Samples one workgroup of the kernel covers (the adapter's [`ReduceShape`]).
    pub fn samples_per_workgroup(&self) -> usize {
        self.span
    }

    /// Whether the kernel uses subgroup operations.
    pub fn uses_subgroups(&self) -> bool {
        self.subgroups
    }

    /// Times every later evaluation's pass with timestamp queries; false where the adapter
    /// has none.
    pub fn enable_kernel_timing(&mut self) -> bool {
        self.timer = PassTimer::new(&self.ctx, &self.label);
        self.timer.is_some()
    }

    /// Kernel time of every evaluation timed so far.
    pub fn kernel_time(&self) -> Option<KernelTime> {
        self.timer.as_ref().map(PassTimer::total)
    }

    /// The sums over all samples of every per-sample term, finished in f64.
    /// One submit and one readback, however many chunks the data spans.
    pub fn sums(&mut self, kernel_params: &[f64]) -> Result<Vec<f64>> {
        if kernel_params.len() > MAX_KERNEL_PARAMS {
            return Err(Error::Capacity(format!(
                "{} kernel parameters exceed the uniform's {MAX_KERNEL_PARAMS}",
                kernel_params.len()
            )));
        }
        let packed = pack_kernel_params(kernel_params);
        self.ctx
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&packed));

        let device = &self.ctx.device;
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some(&self.label),
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&self.label),
                timestamp_writes: self.timer.as_ref().map(PassTimer::writes),
            });
            pass.set_pipeline(&self.pipeline);
            for chunk in &self.chunks {
                pass.set_bind_group(0, &chunk.bind_group, &[]);
                pass.dispatch_workgroups(chunk.workgroups, 1, 1);
            }
        }
        encoder.copy_buffer_to_buffer(&self.partials, 0, &self.readback, 0, self.partials.size());
        if let Some(timer) = &self.timer {
            timer.resolve(&mut encoder);
        }
        self.ctx.queue.submit([encoder.finish()]);

        let partials = read_back(&self.ctx, &self.readback, &self.label)?;
        if let Some(timer) = &self.timer {
            timer.collect(&self.ctx)?;
        }
        self.ctx.take_errors(&self.label)?;
        // Partials are laid out [workgroup][term]; sum each term in f64, in a fixed order.
        let mut sums = vec![0.0f64; self.n_terms];
        for group in partials
            .chunks_exact(self.n_terms)
            .take(self.total_workgroups)
        {
            for (s, &p) in sums.iter_mut().zip(group) {
                *s += p as f64;
            }
        }
        Ok(sums)
    }
}

/// The kernel-parameter uniform, the partial-sums buffer and its readback twin.
fn reduction_buffers(
    device: &wgpu::Device,
    partial_bytes: u64,
    label: &str,
) -> (wgpu::Buffer, wgpu::Buffer, wgpu::Buffer) {
    let buffer = |name: &str, size: u64, usage: wgpu::BufferUsages| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(&format!("{label} {name}")),
            size,
            usage,
            mapped_at_creation: false,
        })
    };
    (
        buffer(
            "kernel parameters",
            (MAX_KERNEL_PARAMS * 8) as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        ),
        buffer(
            "partial sums",
            partial_bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        ),
        buffer(
            "partial sums readback",
            partial_bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        ),
    )
}

/// Each kernel parameter as an f32 pair (hi, lo) with hi + lo = value to ~48 bits.
fn pack_kernel_params(kernel_params: &[f64]) -> [f32; MAX_KERNEL_PARAMS * 2] {
    let mut packed = [0f32; MAX_KERNEL_PARAMS * 2];
    for (i, &v) in kernel_params.iter().take(MAX_KERNEL_PARAMS).enumerate() {
        let hi = v as f32;
        packed[2 * i] = hi;
        packed[2 * i + 1] = (v - hi as f64) as f32;
    }
    packed
}

/// The family's reduction pipeline and its bind group layout, built in an error scope.
fn build_pipeline(
    ctx: &GpuContext,
    family: &dyn Family,
    subgroups: bool,
    shape: ReduceShape,
    label: &str,
) -> Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout)> {
    let device = &ctx.device;
    let source = shader::compose(family, subgroups, shape);
    let layout = bind_group_layout(device, label);
    let pipeline = ctx.scoped(label, || {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("reduce_terms"),
            compilation_options: Default::default(),
            cache: None,
        })
    })?;
    Ok((pipeline, layout))
}

/// Samples per storage binding: the adapter's binding and buffer limits, and the dispatch
/// limit on workgroups of `span` samples per dimension.
fn chunk_samples(limits: &wgpu::Limits, span: usize, cap: Option<usize>) -> usize {
    let bytes = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let by_bytes = (bytes / 4) as usize;
    let by_dispatch = limits.max_compute_workgroups_per_dimension as usize * span;
    let mut len = by_bytes.min(by_dispatch);
    if let Some(cap) = cap {
        len = len.min(cap.max(1));
    }
    // Keep chunk boundaries on workgroup boundaries when a chunk spans more than one.
    if len > span {
        len -= len % span;
    }
    len
}

fn bind_group_layout(device: &wgpu::Device, label: &str) -> wgpu::BindGroupLayout {
    let buffer = super::buffers::layout_entry;
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &[
            buffer(0, wgpu::BufferBindingType::Storage { read_only: true }),
            buffer(1, wgpu::BufferBindingType::Storage { read_only: false }),
            buffer(2, wgpu::BufferBindingType::Uniform),
            buffer(3, wgpu::BufferBindingType::Uniform),
        ],
    })
}

/// The same reduction over data streamed from the host: two device buffers of `chunk`
/// samples take turns (double buffering), so the upload of one chunk overlaps the kernel on
/// the other and at most two chunks are ever in flight; partial sums are combined exactly as
/// in the resident path.
pub struct StreamReduction {
    ctx: GpuContext,
    label: String,
    pipeline: wgpu::ComputePipeline,
    slots: [(wgpu::Buffer, wgpu::Buffer, wgpu::BindGroup); 2],
    params: wgpu::Buffer,
    partials: wgpu::Buffer,
    readback: wgpu::Buffer,
    n_terms: usize,
    chunk: usize,
    /// Samples per workgroup of the kernel.
    span: usize,
    staging: Vec<f32>,
}

impl StreamReduction {
    /// `budget` bytes of device memory for the two data buffers (each at least one workgroup
    /// span of samples; the adapter's binding limit caps each), chunks of at most `max_chunk`
    /// samples (the host's buffer); `n` samples.
    pub fn new(
        ctx: &GpuContext,
        family: &dyn Family,
        n: usize,
        budget: u64,
        max_chunk: usize,
    ) -> Result<Self> {
        let label = format!("likely {} streamed reduction", family.name());
        let n_terms = family.n_terms();
        if n_terms > MAX_TERMS {
            return Err(Error::Capacity(format!(
                "the GPU kernel reduces at most {MAX_TERMS} terms per sample (use --backend cpu)"
            )));
        }
        let per_slot = (budget / 2)
            .min(ctx.limits.max_storage_buffer_binding_size)
            .min(ctx.limits.max_buffer_size);
        let shape = ReduceShape::for_family(ctx, family);
        let span = shape.samples_per_workgroup();
        let chunk = ((per_slot / 4) as usize).min(max_chunk) / span * span;
        let chunk = chunk.max(span).min(n.div_ceil(span) * span);
        let (pipeline, layout) = build_pipeline(ctx, family, ctx.has_subgroups(), shape, &label)?;
        let device = &ctx.device;
        let groups_per_chunk = chunk.div_ceil(span);
        let chunks = n.div_ceil(chunk);
        let partial_bytes = (chunks * groups_per_chunk * n_terms * 4) as u64;
        if partial_bytes > ctx.limits.max_storage_buffer_binding_size {
            return Err(Error::Capacity(format!(
                "{partial_bytes} bytes of partial sums exceed one storage binding"
            )));
        }
        let (params, partials, readback) =
            reduction_buffers(device, partial_bytes, "likely streamed");
        let slot = |i: usize| {
            let data = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("likely streamed data slot {i}")),
                size: (chunk * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let info = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("likely streamed chunk info {i}")),
                size: std::mem::size_of::<ChunkInfo>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("likely streamed slot {i} bindings")),
                layout: &layout,
                entries: &[
                    entry(0, &data),
                    entry(1, &partials),
                    entry(2, &info),
                    entry(3, &params),
                ],
            });
            (data, info, bind_group)
        };
        let slots = [slot(0), slot(1)];
        ctx.take_errors(&label)?;
        Ok(StreamReduction {
            ctx: ctx.clone(),
            label,
            pipeline,
            slots,
            params,
            partials,
            readback,
            n_terms,
            chunk,
            span,
            staging: Vec::new(),
        })
    }

    /// Samples per uploaded chunk.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Term sums over all `n` samples, which `read(start, out)` supplies chunk by chunk.
    pub fn sums(
        &mut self,
        kernel_params: &[f64],
        n: usize,
        mut read: impl FnMut(usize, &mut [f64]) -> Result<()>,
    ) -> Result<Vec<f64>> {
        let packed = pack_kernel_params(kernel_params);
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.params, 0, bytemuck::cast_slice(&packed));
        let span = self.span;
        let groups_per_chunk = self.chunk.div_ceil(span);
        let mut host = vec![0.0f64; self.chunk];
        let mut in_flight: [Option<wgpu::SubmissionIndex>; 2] = [None, None];
        let mut total_groups = 0usize;
        for (k, start) in (0..n).step_by(self.chunk).enumerate() {
            let len = self.chunk.min(n - start);
            read(start, &mut host[..len])?;
            let slot = k % 2;
            // Wait until the kernel that last used this slot is done before overwriting it.
            if let Some(index) = in_flight[slot].take() {
                self.ctx
                    .device
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(index),
                        timeout: None,
                    })
                    .map_err(|e| Error::gpu(&self.label, e))?;
            }
            self.staging.clear();
            self.staging.extend(host[..len].iter().map(|&v| v as f32));
            let (data, info, bind_group) = &self.slots[slot];
            queue.write_buffer(data, 0, bytemuck::cast_slice(&self.staging));
            let groups = len.div_ceil(span);
            let chunk_info = ChunkInfo {
                len: len as u32,
                partial_base: (k * groups_per_chunk * self.n_terms) as u32,
                pad: [0; 2],
            };
            queue.write_buffer(info, 0, bytemuck::bytes_of(&chunk_info));
            let mut encoder =
                self.ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some(&self.label),
                    });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(&self.label),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(groups as u32, 1, 1);
            }
            in_flight[slot] = Some(queue.submit([encoder.finish()]));
            total_groups = k * groups_per_chunk + groups;
        }
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(&self.label),
            });
        encoder.copy_buffer_to_buffer(&self.partials, 0, &self.readback, 0, self.partials.size());
        queue.submit([encoder.finish()]);
        let partials = read_back(&self.ctx, &self.readback, &self.label)?;
        self.ctx.take_errors(&self.label)?;
        // Chunks' partials sit at k * groups_per_chunk; unused slots of a short last chunk
        // are never read.
        let mut sums = vec![0.0f64; self.n_terms];
        for (g, group) in partials
            .chunks_exact(self.n_terms)
            .enumerate()
            .take(total_groups)
        {
            let k = g / groups_per_chunk;
            let within = g % groups_per_chunk;
            let len = self.chunk.min(n - k * self.chunk);
            if within < len.div_ceil(span) {
                for (s, &p) in sums.iter_mut().zip(group) {
                    *s += p as f64;
                }
            }
        }
        Ok(sums)
    }
}
