//! f64 sums of a linear model's NLL, gradient and Hessian on the GPU, for adapters with
//! SHADER_F64: the f64 finish of a GPU fit (see `crate::model::linear`) without a pass over
//! the rows on the CPU. The conditioned rows are uploaded in f64 beside their f32 copy, in
//! chunks of at most one storage binding; a pass computes each row's head terms in f64
//! (exp and log written in the shader: naga has none in f64), then per workgroup the
//! moments sum_i x_i (x) slope_i and sum_i x_i x_i^T (x) curvature_i in a fixed order, and
//! the workgroups' sums are added in order on the GPU: the same sums as the CPU engine's f64
//! ones up to the order of their additions.

use super::buffers::{
    bind_all, compute_pipelines, read_back_as, upload_bytes, upload_bytes_with, upload_pieces,
};
use super::context::GpuContext;
use crate::error::{Error, Result};
use crate::family::FamilyName;
use crate::model::{Conditioning, Network};

use super::shader::WORKGROUP_SIZE;
/// Workgroups of the moments pass, each summing a contiguous share of a chunk's rows.
const GROUPS: u32 = 64;
/// The largest linear model whose Hessian the GPU sums in f64: its upper triangle is
/// p (p + 1) / 2 entries per workgroup (33 000 at 256 parameters, 17 MB of partial sums);
/// larger ones finish on the CPU engine.
pub const MAX_PARAMS: usize = 256;
/// Largest dispatch along x.
const MAX_DISPATCH: u32 = 65_535;

const SOURCE: &str = include_str!("../../shaders/linear64.wgsl");
/// f64 exp and log, which naga lacks (shared with the family kernels).
pub(crate) const MATH64: &str = include_str!("../../shaders/math64.wgsl");

/// The WGSL source for a model of `d` features and `m` outputs.
pub fn compose(family: FamilyName, reference: bool, d: usize, m: usize) -> Option<String> {
    let head = family.conditional().head64_wgsl()?;
    let p = (d + 1) * m;
    let entries = 1 + p + p * (p + 1) / 2;
    let header = format!(
        "// Generated for a linear {} model of {d} features and {m} outputs.\n\
         const D: u32 = {d}u;\n\
         const M: u32 = {m}u;\n\
         const STRIDE: u32 = {}u;\n\
         const REFERENCE: u32 = {}u;\n\
         const WORKGROUP_SIZE: u32 = {WORKGROUP_SIZE}u;\n\
         const GROUPS: u32 = {GROUPS}u;\n\
         const ENTRIES: u32 = {entries}u;\n",
        family.as_str(),
        stride(m),
        reference as u32,
    );
    Some(header + MATH64 + SOURCE + head)
}

/// Words per row of the per-row pass: the NLL, M slopes, the M (M + 1) / 2 curvatures.
fn stride(m: usize) -> usize {
    1 + m + m * (m + 1) / 2
}

/// One chunk of rows: its f64 buffers and the bind groups of a gradient pass and a full one.
struct Chunk {
    rows: usize,
    gradient: wgpu::BindGroup,
    full: wgpu::BindGroup,
}

/// A linear model's table in f64 on the GPU, and the pipelines that sum its derivatives.
pub struct LinearF64 {
    ctx: GpuContext,
    p: usize,
    entries: usize,
    chunks: Vec<Chunk>,
    params: wgpu::Buffer,
    partials: wgpu::Buffer,
    readback: wgpu::Buffer,
    rows_pipeline: wgpu::ComputePipeline,
    moments_pipeline: wgpu::ComputePipeline,
    totals_pipeline: wgpu::ComputePipeline,
}

impl LinearF64 {
    /// Whether `ctx` can run these kernels for `net` (SHADER_F64, a head with a Hessian, at
    /// most [`MAX_PARAMS`] parameters and no hidden layer).
    pub fn applies(ctx: &GpuContext, net: &Network) -> bool {
        ctx.features.contains(wgpu::Features::SHADER_F64)
            && net.hidden.is_empty()
            && net.head.globals() == 0
            && net.head.wgsl64().is_some()
            && net.head.has_native_link()
            && net.param_count() <= MAX_PARAMS
    }

    /// Device bytes the table of `n` rows takes, in chunks of at most `chunk_rows`.
    pub fn device_bytes(net: &Network, n: usize, chunk_rows: usize) -> u64 {
        let (d, m) = (net.inputs, net.head.outputs());
        let per_row = (d + 2) as u64 * 8;
        let p = (d + 1) * m;
        let entries = (1 + p + p * (p + 1) / 2) as u64;
        n as u64 * per_row
            + chunk_rows.min(n) as u64 * stride(m) as u64 * 8
            + (GROUPS as u64 + 1) * entries * 8 * 2
    }

    /// The rows of a chunk: as many as one storage binding holds (of the features, and of the
    /// per-row terms), at most `cap`.
    pub fn chunk_rows(ctx: &GpuContext, net: &Network, cap: Option<usize>) -> usize {
        let binding = ctx.limits.max_storage_buffer_binding_size;
        let (d, m) = (net.inputs.max(1), net.head.outputs());
        let widest = (d.max(stride(m)) as u64) * 8;
        let rows = (binding / widest).max(1) as usize;
        cap.map_or(rows, |c| c.clamp(1, rows))
    }

    /// Uploads the `n` rows of `x` (row-major) and `y` conditioned by `cond`, in f64, with the
    /// head's per-row constants; chunks of at most `chunk_cap` rows (default: one binding).
    pub fn new(
        ctx: &GpuContext,
        net: &Network,
        x: &[f64],
        y: &[f64],
        cond: Option<&Conditioning>,
        chunk_cap: Option<usize>,
    ) -> Result<LinearF64> {
        if !Self::applies(ctx, net) {
            return Err(Error::Usage(
                "the f64 GPU sums need SHADER_F64 and a linear model of a Bernoulli, Poisson, exponential or categorical head of at most 256 parameters".into(),
            ));
        }
        let (n, d, m) = (y.len(), net.inputs, net.head.outputs());
        if n == 0 || x.len() != n * d {
            return Err(Error::InvalidData(format!(
                "{n} rows and {} feature values for {d} features",
                x.len()
            )));
        }
        let p = net.param_count();
        let entries = 1 + p + p * (p + 1) / 2;
        let source =
            compose(net.head.family, net.head.reference, d, m).expect("applies() checked the head");
        let label = "likely linear f64";
        let read = wgpu::BufferBindingType::Storage { read_only: true };
        let write = wgpu::BufferBindingType::Storage { read_only: false };
        let (bind_layout, pipelines) = compute_pipelines(
            ctx,
            label,
            source,
            &[
                read,
                read,
                read,
                read,
                write,
                write,
                read,
                wgpu::BufferBindingType::Uniform,
            ],
            &["rows", "moments", "totals"],
        )?;
        let [rows_pipeline, moments_pipeline, totals_pipeline]: [wgpu::ComputePipeline; 3] =
            pipelines.try_into().expect("three entry points");

        let storage = |bytes: u64, what: &str, usage: wgpu::BufferUsages| {
            ctx.scoped(label, || {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("likely linear f64 {what}")),
                    size: bytes.max(8),
                    usage,
                    mapped_at_creation: false,
                })
            })
        };
        let chunk_rows = Self::chunk_rows(ctx, net, chunk_cap);
        let params = storage(
            (p * 8) as u64,
            "parameters",
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        )?;
        let per_row = storage(
            (chunk_rows.min(n) * stride(m) * 8) as u64,
            "per-row terms",
            wgpu::BufferUsages::STORAGE,
        )?;
        let partial_bytes = ((GROUPS as usize + 1) * entries * 8) as u64;
        let partials = storage(
            partial_bytes,
            "partial sums",
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        )?;
        let readback = storage(
            (entries * 8) as u64,
            "readback",
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        // pairs[e] for the Hessian's entries e > p: parameters a <= b, a in the low bits.
        let mut pairs = vec![0u32; entries];
        let mut e = 1 + p;
        for a in 0..p {
            for b in a..p {
                pairs[e] = (a as u32) | ((b as u32) << 16);
                e += 1;
            }
        }
        let pairs = upload_bytes(
            ctx,
            bytemuck::cast_slice(&pairs),
            "likely linear f64 Hessian pairs",
        )?;
        let family = net.head.family.build(net.head.classes);
        let mut chunks = Vec::new();
        for first in (0..n).step_by(chunk_rows) {
            let rows = chunk_rows.min(n - first);
            // The rows conditioned a piece at a time as they are uploaded (no copy of the
            // chunk on the host): value k of the chunk is feature k % d of its row k / d.
            let values = &x[first * d..(first + rows) * d];
            let x_buffer = upload_pieces::<f64>(
                ctx,
                values.len(),
                values.len(),
                "likely linear f64 rows",
                &mut |at, out| {
                    let piece = &values[at..at + out.len()];
                    match cond {
                        Some(c) => {
                            for (k, (o, &v)) in out.iter_mut().zip(piece).enumerate() {
                                let j = (at + k) % d;
                                *o = (v - c.center[j]) * c.inv_scale[j];
                            }
                        }
                        None => out.copy_from_slice(piece),
                    }
                    Ok(())
                },
            )?;
            let ys: Vec<f64> = y[first..first + rows]
                .iter()
                .map(|&t| cond.map_or(t, |c| c.target(t)))
                .collect();
            let constants: Vec<f64> = ys.iter().map(|&t| family.constant(t)).collect();
            let y_buffer =
                upload_bytes(ctx, bytemuck::cast_slice(&ys), "likely linear f64 targets")?;
            let c_buffer = upload_bytes(
                ctx,
                bytemuck::cast_slice(&constants),
                "likely linear f64 constants",
            )?;
            let bind = |count: usize, what: &str| -> Result<wgpu::BindGroup> {
                let shape = [rows as u32, count as u32, 0, 0];
                let uniform = upload_bytes_with(
                    ctx,
                    bytemuck::cast_slice(&shape),
                    "likely linear f64 shape",
                    wgpu::BufferUsages::UNIFORM,
                )?;
                bind_all(
                    ctx,
                    &format!("likely linear f64 {what} bindings"),
                    &bind_layout,
                    &[
                        &x_buffer, &y_buffer, &c_buffer, &params, &per_row, &partials, &pairs,
                        &uniform,
                    ],
                )
            };
            chunks.push(Chunk {
                rows,
                gradient: bind(1 + p, "gradient")?,
                full: bind(entries, "Hessian")?,
            });
        }
        ctx.take_errors(label)?;
        Ok(LinearF64 {
            ctx: ctx.clone(),
            p,
            entries,
            chunks,
            params,
            partials,
            readback,
            rows_pipeline,
            moments_pipeline,
            totals_pipeline,
        })
    }

    /// The NLL and its gradient at `params` (f64 sums on the GPU), and the Hessian (p x p,
    /// row-major) with `hessian`.
    pub fn sums(&self, params: &[f64], hessian: bool) -> Result<(f64, Vec<f64>, Option<Vec<f64>>)> {
        let p = self.p;
        if params.len() != p {
            return Err(Error::Usage(format!(
                "{} parameters for a model of {p}",
                params.len()
            )));
        }
        let count = if hessian { self.entries } else { 1 + p };
        self.ctx
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("likely linear f64 pass"),
            });
        encoder.clear_buffer(&self.partials, 0, None);
        for chunk in &self.chunks {
            let bind = if hessian {
                &chunk.full
            } else {
                &chunk.gradient
            };
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("likely linear f64 chunk"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, bind, &[]);
            pass.set_pipeline(&self.rows_pipeline);
            let groups = (chunk.rows as u32)
                .div_ceil(WORKGROUP_SIZE)
                .min(MAX_DISPATCH);
            pass.dispatch_workgroups(groups, 1, 1);
            pass.set_pipeline(&self.moments_pipeline);
            pass.dispatch_workgroups(GROUPS, 1, 1);
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("likely linear f64 totals"),
                timestamp_writes: None,
            });
            let bind = if hessian {
                &self.chunks[0].full
            } else {
                &self.chunks[0].gradient
            };
            pass.set_bind_group(0, bind, &[]);
            pass.set_pipeline(&self.totals_pipeline);
            pass.dispatch_workgroups((count as u32).div_ceil(WORKGROUP_SIZE), 1, 1);
        }
        let at = (GROUPS as usize * self.entries * 8) as u64;
        encoder.copy_buffer_to_buffer(&self.partials, at, &self.readback, 0, (count * 8) as u64);
        self.ctx.queue.submit([encoder.finish()]);
        let label = "likely linear f64 sums";
        let totals: Vec<f64> = read_back_as(&self.ctx, &self.readback, label)?;
        self.ctx.take_errors(label)?;
        let nll = totals[0];
        let gradient = totals[1..1 + p].to_vec();
        let hessian = hessian.then(|| {
            let mut h = vec![0.0; p * p];
            let mut e = 1 + p;
            for a in 0..p {
                for b in a..p {
                    h[a * p + b] = totals[e];
                    h[b * p + a] = totals[e];
                    e += 1;
                }
            }
            h
        });
        Ok((nll, gradient, hessian))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_validate_for_every_head() {
        use wgpu::naga::valid::{Capabilities, ValidationFlags, Validator};
        for (family, reference, m) in [
            (FamilyName::Bernoulli, false, 1),
            (FamilyName::Poisson, false, 1),
            (FamilyName::Exponential, false, 1),
            (FamilyName::Categorical, true, 3),
            (FamilyName::Categorical, false, 4),
        ] {
            let source = compose(family, reference, 5, m).unwrap();
            let module = wgpu::naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&source)));
            Validator::new(ValidationFlags::all(), Capabilities::FLOAT64)
                .validate(&module)
                .unwrap_or_else(|e| panic!("{family:?}: {e:?}"));
        }
    }
}
