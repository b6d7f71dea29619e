//! An engine over data streamed in chunks: from a .npy file read with positioned reads, or
//! from memory when only the GPU's budget is exceeded. Host memory stays bounded by the
//! chunk size; on the GPU the chunks are double-buffered.

use super::Engine;
use crate::data::{NpyReader, ParquetColumn, Samples};
use crate::error::{Error, Result};
use crate::family::{Family, SampleMap, Summary};
use crate::gpu::reduce::StreamReduction;
use crate::gpu::GpuContext;

/// Where streamed samples come from.
pub enum Source {
    Npy(NpyReader),
    Parquet(Box<ParquetColumn>),
    /// Samples in memory at their stored width, widened a chunk at a time as they are read.
    Memory(Samples),
}

impl Source {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Source::Npy(r) => r.len(),
            Source::Parquet(r) => r.len(),
            Source::Memory(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column label for messages ("" for memory and 1-D arrays).
    pub fn column_label(&self) -> &str {
        match self {
            Source::Npy(r) => r.column_label(),
            Source::Parquet(r) => r.column_label(),
            Source::Memory(_) => "",
        }
    }

    pub(crate) fn read(&mut self, start: usize, out: &mut [f64]) -> Result<()> {
        match self {
            Source::Npy(r) => r.read(start, out),
            Source::Parquet(r) => r.read(start, out),
            Source::Memory(Samples::F64(m)) => {
                out.copy_from_slice(&m[start..start + out.len()]);
                Ok(())
            }
            Source::Memory(Samples::F32(m)) => {
                let len = out.len();
                for (o, &x) in out.iter_mut().zip(&m[start..start + len]) {
                    *o = x as f64;
                }
                Ok(())
            }
        }
    }
}

pub struct StreamingEngine {
    family: Box<dyn Family>,
    source: Source,
    n: usize,
    chunk: usize,
    constant: f64,
    summary: Summary,
    /// How the samples are re-expressed as they are read (for f32 on the GPU, or extreme
    /// magnitudes in f64).
    map: SampleMap,
    gpu: Option<StreamReduction>,
    adapter: String,
    buffer: Vec<f64>,
    /// Called with the samples read so far after each chunk of a pass.
    progress: Option<Box<dyn FnMut(usize)>>,
}

impl StreamingEngine {
    /// Validates every sample (finite, in the family's support) in one streamed pass, which
    /// also sums the parameter-free NLL part and finds the range. `host_bytes` bounds the
    /// host's chunk buffer; with `gpu`, `gpu_bytes` bounds the two device buffers.
    pub fn new(
        family: Box<dyn Family>,
        mut source: Source,
        host_bytes: u64,
        gpu: Option<(&GpuContext, u64)>,
    ) -> Result<Self> {
        let n = source.len();
        if n == 0 {
            let why = "no data rows: the file holds no observations";
            return Err(match &source {
                Source::Npy(r) => Error::data(r.path(), "", why),
                Source::Parquet(r) => Error::data(r.path(), "", why),
                Source::Memory(_) => Error::InvalidData("no samples".into()),
            });
        }
        let chunk = ((host_bytes / 8) as usize).clamp(4096, n.max(4096));
        let mut buffer = vec![0.0; chunk.min(n)];
        let (constant, min, max) = survey(family.as_ref(), &mut source, &mut buffer)?;
        let map = match gpu {
            Some(_) => SampleMap::for_f32(family.as_ref(), min, max),
            None => SampleMap::for_f64(family.as_ref(), min, max),
        };
        let (min, max) = (map.apply(min), map.apply(max));
        let (gpu, adapter) = match gpu {
            Some((ctx, budget)) => (
                Some(StreamReduction::new(
                    ctx,
                    family.as_ref(),
                    n,
                    budget,
                    chunk,
                )?),
                format!("{} (streamed)", ctx.adapter_label()),
            ),
            None => (
                None,
                format!(
                    "host CPU, {} threads, f64 (streamed)",
                    rayon::current_num_threads()
                ),
            ),
        };
        Ok(StreamingEngine {
            family,
            source,
            n,
            chunk,
            constant,
            summary: Summary { n, min, max },
            map,
            gpu,
            adapter,
            buffer,
            progress: None,
        })
    }
}

/// One pass over `source` in chunks of `buffer`'s length: validates every sample (finite, in
/// the family's support), and returns the sum of the parameter-free NLL part and the range.
pub(crate) fn survey(
    family: &dyn Family,
    source: &mut Source,
    buffer: &mut [f64],
) -> Result<(f64, f64, f64)> {
    use rayon::prelude::*;
    let n = source.len();
    let chunk = buffer.len().max(1);
    let (mut constant, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
    for start in (0..n).step_by(chunk) {
        let len = chunk.min(n - start);
        source.read(start, &mut buffer[..len])?;
        // Per block of the CPU engine's, on all cores, in one sweep: the constant NLL part
        // (summed in order within the block, and the blocks added in order, so that chunks of
        // whole blocks give the in-memory sum exactly), the range, and the first sample that
        // is not finite or not in the support.
        let blocks: Vec<(f64, f64, f64, Option<usize>)> = buffer[..len]
            .par_chunks(super::cpu::BLOCK)
            .map(|block| {
                let (mut sum, mut lo, mut hi) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
                for (i, &x) in block.iter().enumerate() {
                    if !x.is_finite() || family.support_error(x).is_some() {
                        return (sum, lo, hi, Some(i));
                    }
                    sum += family.constant(x);
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
                (sum, lo, hi, None)
            })
            .collect();
        for (b, (sum, lo, hi, bad)) in blocks.into_iter().enumerate() {
            if let Some(i) = bad {
                let at = start + b * super::cpu::BLOCK + i;
                return Err(sample_error(family, source, at, buffer[at - start]));
            }
            constant += sum;
            min = min.min(lo);
            max = max.max(hi);
        }
    }
    Ok((constant, min, max))
}

/// The error for sample `at` of `source`, `x`, which is not finite or not in the family's
/// support, in the words of the in-memory checks (data::load, Dataset::check_support).
fn sample_error(family: &dyn Family, source: &Source, at: usize, x: f64) -> Error {
    let why = crate::data::invalid_sample(family, x).unwrap_or_default();
    let element = format!("element {at}");
    match source {
        Source::Npy(r) => {
            let column = match r.column_label() {
                "" => String::new(),
                c => format!(", column {c}"),
            };
            Error::data(r.path(), format!("{element}{column}"), why)
        }
        Source::Parquet(r) => Error::data(
            r.path(),
            format!("row {}, column '{}'", at + 1, r.column_label()),
            why,
        ),
        Source::Memory(_) => Error::InvalidData(format!("{element}: {why}")),
    }
}

impl Engine for StreamingEngine {
    fn name(&self) -> &'static str {
        if self.gpu.is_some() {
            "gpu"
        } else {
            "cpu"
        }
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
        self.n() as f64
    }
    fn constant(&self) -> f64 {
        self.constant
    }
    fn summary(&self) -> Summary {
        self.summary
    }
    fn unit_roundoff(&self) -> f64 {
        if self.gpu.is_some() {
            f32::EPSILON as f64 / 2.0
        } else {
            f64::EPSILON / 2.0
        }
    }
    fn on_chunk(&mut self, progress: Box<dyn FnMut(usize)>) {
        self.progress = Some(progress);
    }
    fn sample_map(&self) -> SampleMap {
        self.map
    }
    fn term_sums(&mut self, theta: &[f64]) -> Result<Vec<f64>> {
        let kp = self.family.kernel_params(theta);
        let (n, map, source, progress) = (self.n, self.map, &mut self.source, &mut self.progress);
        let read = |start: usize, out: &mut [f64]| -> Result<()> {
            source.read(start, out)?;
            if !map.is_identity() {
                out.iter_mut().for_each(|x| *x = map.apply(*x));
            }
            if let Some(report) = progress.as_mut() {
                report(start + out.len());
            }
            Ok(())
        };
        match &mut self.gpu {
            Some(gpu) => gpu.sums(&kp, n, read),
            None => cpu_sums(
                self.family.as_ref(),
                &kp,
                n,
                self.chunk,
                &mut self.buffer,
                read,
            ),
        }
    }
    fn has_exact_sums(&self) -> bool {
        true
    }
    fn exact_term_sums(&mut self, theta: &[f64]) -> Result<Option<Vec<f64>>> {
        let kp = self.family.kernel_params(theta);
        let (n, map, source) = (self.n, self.map, &mut self.source);
        let read = |start: usize, out: &mut [f64]| -> Result<()> {
            source.read(start, out)?;
            if !map.is_identity() {
                out.iter_mut().for_each(|x| *x = map.apply(*x));
            }
            Ok(())
        };
        let family = self.family.as_ref();
        cpu_sums(family, &kp, n, self.chunk, &mut self.buffer, read).map(Some)
    }
}

/// Term sums over `n` samples that `read` supplies in chunks, on the CPU: the same blocks, in
/// the same order, as the in-memory CPU engine.
fn cpu_sums(
    family: &dyn Family,
    kp: &[f64],
    n: usize,
    chunk: usize,
    buffer: &mut [f64],
    mut read: impl FnMut(usize, &mut [f64]) -> Result<()>,
) -> Result<Vec<f64>> {
    let terms = family.n_terms();
    let mut sums = vec![0.0; terms];
    for start in (0..n).step_by(chunk) {
        let len = chunk.min(n - start);
        read(start, &mut buffer[..len])?;
        let blocks = super::block_sums(
            family,
            &buffer[..len],
            &SampleMap::identity(),
            kp,
            |x| x,
            |p| Some(p),
        );
        for block in &blocks {
            sums.iter_mut().zip(block).for_each(|(s, b)| *s += b);
        }
    }
    Ok(sums)
}

/// Peak resident memory of this process in bytes (Linux), for reports and tests.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Parses sizes such as `512MiB`, `2GiB`, `100MB` or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| Error::Usage(format!("invalid size '{text}': e.g. 512MiB, 2GiB")))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(Error::Usage(format!(
                "invalid size unit in '{text}': use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
            )))
        }
    };
    let bytes = value * scale;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(Error::Usage(format!(
            "invalid size '{text}': a memory size must be at least 1 byte, e.g. 512MiB"
        )));
    }
    Ok(bytes as u64)
}
