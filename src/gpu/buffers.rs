//! Buffer helpers shared by the kernels: upload (as f32, or as raw bytes), bind, read back.

use super::context::GpuContext;
use crate::error::{Error, Result};

pub(crate) fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

/// Creates a storage buffer holding `values` as f32, written through a mapping (no extra
/// copy), with the given usages (e.g. COPY_SRC / COPY_DST for buffers read back later).
pub(crate) fn upload_with(
    ctx: &GpuContext,
    values: &[f64],
    label: &str,
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    mapped_buffer(ctx, label, (values.len() * 4) as u64, usage, |view| {
        // Convert in pieces so no full-size f32 copy of the data is ever held on the host.
        const PIECE: usize = 1 << 16;
        let mut staging: Vec<f32> = Vec::with_capacity(PIECE);
        for (i, piece) in values.chunks(PIECE).enumerate() {
            staging.clear();
            staging.extend(piece.iter().map(|&v| v as f32));
            let at = i * PIECE * 4;
            view.slice(at..at + piece.len() * 4)
                .copy_from_slice(bytemuck::cast_slice(&staging));
        }
    })
}

/// A storage buffer of `len` f32 samples (then zeros to a whole vec4) that `fill(at, out)`
/// writes in f64 a piece at a time (64 Ki samples), rounded to f32 as they are uploaded: no
/// full-size host copy is held (see [`upload_pieces`]).
pub(crate) fn upload_from(
    ctx: &GpuContext,
    len: usize,
    label: &str,
    fill: &mut dyn FnMut(usize, &mut [f64]) -> Result<()>,
) -> Result<wgpu::Buffer> {
    let mut wide = Vec::new();
    upload_pieces::<f32>(ctx, len, len.div_ceil(4) * 4, label, &mut |at, out| {
        wide.resize(out.len(), 0.0);
        fill(at, &mut wide)?;
        for (o, &v) in out.iter_mut().zip(&wide) {
            *o = v as f32;
        }
        Ok(())
    })
}

/// A storage buffer of `len` values of `T` (room for `capacity`, at least 16 bytes; the rest
/// zero) that `fill(at, out)` writes a piece of 64 Ki values at a time. The pieces go through
/// the queue, which is flushed every 32 pieces, so that its staging memory stays bounded too
/// (a buffer created mapped is a full-size staging copy until the queue runs, on a software
/// adapter in host memory beside the buffer itself).
pub(crate) fn upload_pieces<T: bytemuck::Pod + Default>(
    ctx: &GpuContext,
    len: usize,
    capacity: usize,
    label: &str,
    fill: &mut dyn FnMut(usize, &mut [T]) -> Result<()>,
) -> Result<wgpu::Buffer> {
    const PIECE: usize = 1 << 16;
    const FLUSH_PIECES: usize = 32;
    let width = std::mem::size_of::<T>();
    let buffer = ctx.scoped(label, || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: ((capacity.max(len) * width) as u64)
                .max(16)
                .next_multiple_of(8),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    })?;
    let mut staging = vec![T::default(); PIECE.min(len)];
    // Each flush submits the pieces written since the last and waits for the flush before
    // it: the copy of one stretch overlaps the reading of the next, and at most two
    // stretches of staging memory are held.
    let mut previous: Option<wgpu::SubmissionIndex> = None;
    let mut flush = |last: bool| -> Result<()> {
        let index = ctx.queue.submit([]);
        let wait = if last {
            Some(index)
        } else {
            previous.replace(index)
        };
        if let Some(index) = wait {
            ctx.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(index),
                    timeout: None,
                })
                .map_err(|e| Error::gpu(label, e))?;
        }
        Ok(())
    };
    for (i, at) in (0..len).step_by(PIECE).enumerate() {
        let piece = &mut staging[..PIECE.min(len - at)];
        fill(at, piece)?;
        ctx.queue
            .write_buffer(&buffer, (at * width) as u64, bytemuck::cast_slice(piece));
        if (i + 1) % FLUSH_PIECES == 0 {
            flush(false)?;
        }
    }
    flush(true)?;
    Ok(buffer)
}

/// A buffer of `size` bytes created mapped, filled by `fill` through the mapping, unmapped.
fn mapped_buffer(
    ctx: &GpuContext,
    label: &str,
    size: u64,
    usage: wgpu::BufferUsages,
    fill: impl FnOnce(&mut wgpu::BufferViewMut),
) -> Result<wgpu::Buffer> {
    let buffer = ctx.scoped(label, || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: true,
        })
    })?;
    {
        let mut view = buffer
            .slice(..)
            .get_mapped_range_mut()
            .map_err(|e| Error::gpu(label, e))?;
        fill(&mut view);
    }
    buffer.unmap();
    if size >= 1 << 20 {
        // The mapping of a buffer the GPU reads is a staging copy until the queue runs its
        // copy: let it run now, so that an upload in chunks holds one staging copy at a time,
        // not one per chunk (on a software adapter, all of them in host memory at once).
        ctx.queue.submit([]);
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::gpu(label, e))?;
    }
    Ok(buffer)
}

/// Writes `values` as f32 into `buffer` from byte `offset`, converted in pieces so that no
/// full-size f32 copy is held on the host; the queue is flushed every 64 MiB, so its staging
/// memory stays bounded too.
pub(crate) fn write_f32(ctx: &GpuContext, buffer: &wgpu::Buffer, offset: u64, values: &[f64]) {
    write_f32_mapped(ctx, buffer, offset, values, |_, v| v);
}

/// As [`write_f32`], each value first mapped in f64 by `map(index in values, value)`.
pub(crate) fn write_f32_mapped(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    offset: u64,
    values: &[f64],
    map: impl Fn(usize, f64) -> f64,
) {
    const PIECE: usize = 1 << 16;
    const FLUSH_PIECES: usize = 256;
    let mut staging: Vec<f32> = Vec::with_capacity(PIECE.min(values.len()));
    for (i, piece) in values.chunks(PIECE).enumerate() {
        staging.clear();
        let base = i * PIECE;
        staging.extend(
            piece
                .iter()
                .enumerate()
                .map(|(k, &v)| map(base + k, v) as f32),
        );
        let at = offset + (i * PIECE * 4) as u64;
        ctx.queue
            .write_buffer(buffer, at, bytemuck::cast_slice(&staging));
        if (i + 1) % FLUSH_PIECES == 0 {
            ctx.queue.submit([]);
        }
    }
}

/// Maps `buffer`, waits for the GPU, and copies its f32 contents out.
pub(crate) fn read_back(ctx: &GpuContext, buffer: &wgpu::Buffer, label: &str) -> Result<Vec<f32>> {
    read_back_as(ctx, buffer, label)
}

/// Maps `buffer`, waits for the GPU, and copies its contents out as `T`s (mapped ranges are
/// aligned to 8 bytes).
pub(crate) fn read_back_as<T: bytemuck::Pod>(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    label: &str,
) -> Result<Vec<T>> {
    let (tx, rx) = std::sync::mpsc::channel();
    buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::gpu(label, e))?;
    rx.recv()
        .map_err(|e| Error::gpu(label, e))?
        .map_err(|e| Error::gpu(label, e))?;
    let values = {
        let view = buffer
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::gpu(label, e))?;
        bytemuck::cast_slice::<u8, T>(&view).to_vec()
    };
    buffer.unmap();
    Ok(values)
}

/// A storage buffer holding `bytes` (f64s, u32s: any plain data), written through a mapping.
pub(crate) fn upload_bytes(ctx: &GpuContext, bytes: &[u8], label: &str) -> Result<wgpu::Buffer> {
    upload_bytes_with(ctx, bytes, label, wgpu::BufferUsages::STORAGE)
}

/// As [`upload_bytes`], with the given usages; the buffer is at least 16 bytes (a multiple
/// of 8), so that an empty table still binds.
pub(crate) fn upload_bytes_with(
    ctx: &GpuContext,
    bytes: &[u8],
    label: &str,
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    let size = (bytes.len() as u64).max(16).next_multiple_of(8);
    mapped_buffer(ctx, label, size, usage, |view| {
        view.slice(..bytes.len()).copy_from_slice(bytes)
    })
}

/// A compute shader's binding of one whole buffer of type `ty`.
pub(crate) fn layout_entry(
    binding: u32,
    ty: wgpu::BufferBindingType,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A shader's bind group layout (one storage or uniform buffer per binding, in order) and its
/// compute pipelines, one per entry point, each labelled `{label} {entry point}`; a shader
/// or pipeline that does not validate is an `Err`.
pub(crate) fn compute_pipelines(
    ctx: &GpuContext,
    label: &str,
    source: String,
    bindings: &[wgpu::BufferBindingType],
    entry_points: &[&str],
) -> Result<(wgpu::BindGroupLayout, Vec<wgpu::ComputePipeline>)> {
    let module = ctx.scoped(label, || {
        ctx.device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&format!("{label} shader")),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            })
    })?;
    let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
        .iter()
        .enumerate()
        .map(|(binding, &ty)| layout_entry(binding as u32, ty))
        .collect();
    let layout = ctx
        .device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&format!("{label} bindings")),
            entries: &entries,
        });
    let pipeline_layout = ctx
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&format!("{label} pipeline layout")),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
    let pipelines = entry_points
        .iter()
        .map(|entry_point| {
            ctx.scoped(label, || {
                ctx.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(&format!("{label} {entry_point}")),
                        layout: Some(&pipeline_layout),
                        module: &module,
                        entry_point: Some(entry_point),
                        compilation_options: Default::default(),
                        cache: None,
                    })
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((layout, pipelines))
}

/// The bind group of `buffers` (binding i the i-th) under `layout`.
pub(crate) fn bind_all(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> Result<wgpu::BindGroup> {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| entry(i as u32, b))
        .collect();
    ctx.scoped(label, || {
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        })
    })
}
