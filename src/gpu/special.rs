//! special.wgsl's f32 functions evaluated at given arguments, one invocation each: the GPU
//! side of their twin test against src/special.rs (the family and head kernels call them at
//! every row, where an error would show only through a whole fit).

use super::buffers::{bind_all, compute_pipelines, read_back_as, upload_bytes_with};
use super::context::GpuContext;
use crate::error::{Error, Result};

const LABEL: &str = "special functions";

/// The functions, in the order of [`evaluate`]'s columns.
pub const FUNCTIONS: [&str; 5] = [
    "log_sample",
    "gamma_normaliser",
    "digamma_minus_log",
    "trigamma",
    "expm1_minus",
];

const WORKGROUP_SIZE: u32 = 64;

const KERNEL: &str = r#"
@group(0) @binding(0) var<storage, read> arguments: array<f32>;
@group(0) @binding(1) var<storage, read_write> values: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i >= arrayLength(&arguments)) {
        return;
    }
    let x = arguments[i];
    values[5u * i] = log_sample(x);
    values[5u * i + 1u] = gamma_normaliser(x);
    values[5u * i + 2u] = digamma_minus_log(x);
    values[5u * i + 3u] = trigamma(x);
    values[5u * i + 4u] = expm1_minus(x);
}
"#;

/// Each function of [`FUNCTIONS`] at each argument (f32), on the GPU: row i holds the five
/// values at `arguments[i]`. A function outside its domain at an argument (the logs and the
/// gamma functions need x > 0) returns whatever the WGSL gives; the caller picks its checks.
pub fn evaluate(ctx: &GpuContext, arguments: &[f32]) -> Result<Vec<[f32; 5]>> {
    if arguments.is_empty() {
        return Ok(Vec::new());
    }
    let source = format!(
        "const WORKGROUP_SIZE: u32 = {WORKGROUP_SIZE}u;\n{}\n{KERNEL}",
        super::shader::SPECIAL
    );
    use wgpu::BufferBindingType as B;
    let (layout, pipelines) = compute_pipelines(
        ctx,
        LABEL,
        source,
        &[
            B::Storage { read_only: true },
            B::Storage { read_only: false },
        ],
        &["main"],
    )?;
    let input = upload_bytes_with(
        ctx,
        bytemuck::cast_slice(arguments),
        &format!("{LABEL} arguments"),
        wgpu::BufferUsages::STORAGE,
    )?;
    let size = (arguments.len() * 5 * 4) as u64;
    let output = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(&format!("{LABEL} values")),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(&format!("{LABEL} readback")),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let group = bind_all(ctx, LABEL, &layout, &[&input, &output])?;
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(LABEL) });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(LABEL),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipelines[0]);
        pass.set_bind_group(0, &group, &[]);
        let groups = (arguments.len() as u32).div_ceil(WORKGROUP_SIZE);
        pass.dispatch_workgroups(groups, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&output, 0, &readback, 0, size);
    ctx.queue.submit([encoder.finish()]);
    let values: Vec<f32> = read_back_as(ctx, &readback, LABEL)?;
    ctx.take_errors(LABEL)?;
    if values.len() < arguments.len() * 5 {
        return Err(Error::gpu(LABEL, "short readback"));
    }
    Ok(values
        .chunks_exact(5)
        .take(arguments.len())
        .map(|c| [c[0], c[1], c[2], c[3], c[4]])
        .collect())
}
