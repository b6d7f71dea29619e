//! Kernel time from timestamp queries: the GPU's own clock at the start and end of a compute
//! pass, where the adapter has TIMESTAMP_QUERY. Wall-clock time around a submit also counts
//! the submit, the readback and the host; this counts only the pass.

use super::buffers::read_back_as;
use super::context::GpuContext;
use crate::error::Result;
use std::cell::Cell;

/// Timestamps around one compute pass at a time, summed over the passes it has timed.
pub struct PassTimer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
    total_seconds: Cell<f64>,
    passes: Cell<usize>,
    label: String,
}

impl PassTimer {
    /// A timer, or `None` where the adapter cannot write timestamps.
    pub fn new(ctx: &GpuContext, label: &str) -> Option<PassTimer> {
        if !ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let device = &ctx.device;
        let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some(&format!("{label} timestamps")),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let size = 2 * wgpu::QUERY_SIZE as u64;
        let resolved = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(&format!("{label} resolved timestamps")),
            size,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(&format!("{label} timestamps readback")),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Some(PassTimer {
            queries,
            resolved,
            readback,
            period_ns: ctx.queue.get_timestamp_period() as f64,
            total_seconds: Cell::new(0.0),
            passes: Cell::new(0),
            label: label.to_string(),
        })
    }

    /// The timestamp writes for the pass to time.
    pub fn writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }
    }

    /// Records the copy of the pass's timestamps into the readback buffer (after the pass).
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.queries, 0..2, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, self.resolved.size());
    }

    /// After the submit: adds the pass's kernel time to the total and returns it (seconds).
    pub fn collect(&self, ctx: &GpuContext) -> Result<f64> {
        let ticks: Vec<u64> = read_back_as(ctx, &self.readback, &self.label)?;
        let seconds = ticks[1].saturating_sub(ticks[0]) as f64 * self.period_ns * 1e-9;
        self.total_seconds.set(self.total_seconds.get() + seconds);
        self.passes.set(self.passes.get() + 1);
        Ok(seconds)
    }

    /// Kernel seconds of every pass collected so far, and how many passes that was.
    pub fn total(&self) -> KernelTime {
        KernelTime {
            seconds: self.total_seconds.get(),
            passes: self.passes.get(),
        }
    }
}

/// Kernel time summed over a number of timed passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelTime {
    pub seconds: f64,
    pub passes: usize,
}

impl KernelTime {
    /// All the passes counted as one unit of work (a whole fit).
    pub fn whole(self) -> KernelTime {
        KernelTime {
            seconds: self.seconds,
            passes: 1,
        }
    }

    /// Mean seconds per pass.
    pub fn mean(&self) -> f64 {
        self.seconds / self.passes.max(1) as f64
    }
}
