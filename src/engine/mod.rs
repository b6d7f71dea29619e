//! Engines evaluate a family's NLL and gradient over a dataset. The fitting driver sees only
//! the [`Engine`] trait and never knows whether the CPU or the GPU runs underneath.

mod cpu;
mod gpu;
pub mod stream;
mod weighted;

pub use cpu::CpuEngine;
pub use gpu::GpuEngine;
pub use stream::StreamingEngine;
pub use weighted::WeightedCpuEngine;

use crate::data::Samples;
use crate::error::{Error, Result};
use crate::family::{Family, SampleMap, Summary};
use crate::gpu::{AdapterSelector, GpuContext};
use rayon::prelude::*;
use std::sync::Arc;

/// Which engine `--backend` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A hardware GPU when there is one, otherwise the CPU engine (a software adapter such as
    /// llvmpipe counts as no GPU: the CPU engine is faster there).
    #[default]
    Auto,
    /// Any GPU adapter, software ones included; an error when there is none.
    Gpu,
    /// The multi-threaded f64 CPU engine.
    Cpu,
}

/// A family bound to a dataset on some device: evaluates sums of per-sample terms.
///
/// An engine evaluates its samples as re-expressed by its [`SampleMap`] (identity for most
/// data; see there), so `theta` in [`Engine::term_sums`] and [`Engine::nll_and_grad`] is the
/// parameter of the re-expressed samples, theta' = `sample_map().to_mapped(theta)`, and the
/// NLL is theirs; [`Engine::nll_at`] takes and returns the samples' own.
pub trait Engine {
    /// "cpu" or "gpu".
    fn name(&self) -> &'static str;
    /// The adapter (GPU) or host (CPU) that runs the evaluations.
    fn adapter(&self) -> String;
    fn family(&self) -> &dyn Family;
    /// Number of samples (rows) the engine holds.
    fn n(&self) -> usize;
    /// The number of observations the likelihood counts: [`Engine::n`], or the sum of the
    /// frequency weights where the samples carry them (a row of weight w counts as w rows).
    /// Every `finish`, Hessian and information criterion takes this count. Required, so that
    /// an engine wrapping another cannot fall back to the row count.
    fn count(&self) -> f64;
    /// Sum over samples of the family's parameter-free NLL part (computed once, in f64).
    fn constant(&self) -> f64;
    /// Cheap facts about the (re-expressed) data (n, min, max), for starting points.
    fn summary(&self) -> Summary;
    /// How the engine re-expresses the samples (identity by default).
    fn sample_map(&self) -> SampleMap {
        SampleMap::identity()
    }
    /// [`Engine::term_sums`] summed in f64 from f64 samples, for engines whose own sums are
    /// coarser (the GPU's f32): the optimality test and the f64 finish of a fit use them.
    /// `None` where the engine has no f64 copy of its samples.
    fn exact_term_sums(&mut self, theta: &[f64]) -> Result<Option<Vec<f64>>> {
        if self.unit_roundoff() < 1e-12 {
            self.term_sums(theta).map(Some)
        } else {
            Ok(None)
        }
    }
    /// Whether [`Engine::exact_term_sums`] gives sums (without computing them: on a streamed
    /// table that is a pass over the file).
    fn has_exact_sums(&self) -> bool {
        self.unit_roundoff() < 1e-12
    }
    /// Which engine computes [`Engine::exact_term_sums`]: `cpu` (the CPU engine, and the GPU
    /// engine's host copy), or `gpu` (an adapter with SHADER_F64 holding the samples in f64).
    fn f64_engine(&self) -> &'static str {
        "cpu"
    }
    /// Unit roundoff of the per-sample arithmetic (2^-24 for f32 kernels, 2^-53 for f64).
    fn unit_roundoff(&self) -> f64;
    /// Sums over all samples of the family's per-sample terms at `theta`.
    fn term_sums(&mut self, theta: &[f64]) -> Result<Vec<f64>>;
    /// Kernel time of the evaluations timed so far, where the engine times its kernels
    /// (the GPU engine after `enable_kernel_timing`, from timestamp queries).
    fn kernel_time(&self) -> Option<crate::gpu::timer::KernelTime> {
        None
    }
    /// Calls `progress(samples read so far in this pass)` after each chunk of a pass, where
    /// the engine reads its data in chunks during the pass (the streaming engine); others
    /// ignore it.
    fn on_chunk(&mut self, progress: Box<dyn FnMut(usize)>) {
        let _ = progress;
    }

    /// The total NLL and its gradient with respect to the unconstrained parameters.
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        if theta.len() != self.family().n_params() {
            return Err(Error::Usage(format!(
                "{} expects {} parameters, got {}",
                self.family().name(),
                self.family().n_params(),
                theta.len()
            )));
        }
        let sums = self.term_sums(theta)?;
        let (nll, grad) = self.family().finish(self.count(), &sums, theta);
        Ok((nll + self.constant(), grad))
    }

    /// The samples' NLL at their own parameters theta (not the re-expressed ones).
    fn nll_at(&mut self, theta: &[f64]) -> Result<f64> {
        let map = self.sample_map();
        let (nll, _) = self.nll_and_grad(&map.to_mapped(theta))?;
        Ok(map.nll_from_mapped(nll, self.count()))
    }
}

/// Samples a family accumulates per call: a block is passed in pieces of this many, widened
/// (and re-expressed) into a buffer that stays in L1, whatever the samples' width, so f32 and
/// f64 samples give the same sums, added in the same order.
const PIECE: usize = 512;

/// Term sums of `family` over `data` as re-expressed by `map`, in f64 on all cores, in blocks
/// of [`cpu::BLOCK`] samples added in a fixed order (the in-memory CPU engine's sums). Each
/// term is formed in f64 from the sample as held (f32 samples are exact in f64).
pub(crate) fn mapped_term_sums(
    family: &dyn Family,
    data: &Samples,
    map: &SampleMap,
    theta: &[f64],
) -> Vec<f64> {
    let kp = family.kernel_params(theta);
    let terms = family.n_terms();
    let blocks = match data {
        Samples::F64(values) => block_sums(family, values, map, &kp, |x| x, |p| Some(p)),
        Samples::F32(values) => block_sums(family, values, map, &kp, |x| x as f64, |_| None),
    };
    let mut sums = vec![0.0; terms];
    for block in &blocks {
        for (s, b) in sums.iter_mut().zip(block) {
            *s += b;
        }
    }
    sums
}

/// Each block's term sums, the block passed to the family in pieces of [`PIECE`] samples:
/// as they are where `as_f64` gives them as f64s and the map is the identity, else widened
/// and re-expressed.
fn block_sums<T: Copy + Sync>(
    family: &dyn Family,
    values: &[T],
    map: &SampleMap,
    kp: &[f64],
    widen: impl Fn(T) -> f64 + Sync,
    as_f64: fn(&[T]) -> Option<&[f64]>,
) -> Vec<Vec<f64>> {
    let terms = family.n_terms();
    let identity = map.is_identity();
    values
        .par_chunks(cpu::BLOCK)
        .map(|block| {
            let mut acc = vec![0.0; terms];
            let mut wide = [0.0f64; PIECE];
            for piece in block.chunks(PIECE) {
                // f64 samples the map leaves alone go to the family as they are held.
                if let Some(held) = as_f64(piece).filter(|_| identity) {
                    family.accumulate(held, kp, &mut acc);
                    continue;
                }
                // The identity test outside the loops, so that each loop vectorises.
                if identity {
                    for (w, &x) in wide.iter_mut().zip(piece) {
                        *w = widen(x);
                    }
                } else {
                    for (w, &x) in wide.iter_mut().zip(piece) {
                        *w = map.apply(widen(x));
                    }
                }
                family.accumulate(&wide[..piece.len()], kp, &mut acc);
            }
            acc
        })
        .collect()
}

/// [`constant_sum`] over samples held at any width.
pub(crate) fn constant_sum_of(family: &dyn Family, data: &Samples) -> f64 {
    data.par_blocks(cpu::BLOCK, &SampleMap::identity(), |c| {
        c.iter().map(|&x| family.constant(x)).sum::<f64>()
    })
    .iter()
    .sum()
}

/// Sum of the family's parameter-free NLL parts, in f64, in a fixed order.
pub(crate) fn constant_sum(family: &dyn Family, data: &[f64]) -> f64 {
    constant_block_sums(family, data).iter().sum()
}

/// The parameter-free NLL parts summed per block of [`cpu::BLOCK`] samples, in parallel:
/// added in order, block by block, they give [`constant_sum`] of the whole (so a pass in
/// chunks of whole blocks reproduces the in-memory sum exactly).
pub(crate) fn constant_block_sums(family: &dyn Family, data: &[f64]) -> Vec<f64> {
    data.par_chunks(cpu::BLOCK)
        .map(|c| c.iter().map(|&x| family.constant(x)).sum::<f64>())
        .collect()
}

/// Checks every value against the family's support; the error names the first bad index.
pub fn validate_support(family: &dyn Family, data: &[f64]) -> Result<()> {
    for (i, &x) in data.iter().enumerate() {
        if !x.is_finite() {
            return Err(Error::InvalidData(format!("sample {i} is {x}")));
        }
        if let Some(why) = family.support_error(x) {
            return Err(Error::InvalidData(format!(
                "sample {i}: {why} of the {} family",
                family.name()
            )));
        }
    }
    if data.is_empty() {
        return Err(Error::InvalidData("no samples".into()));
    }
    Ok(())
}

/// Builds the engine `backend` asks for, with the data uploaded once where it is a GPU.
pub fn create(
    backend: Backend,
    family: Box<dyn Family>,
    data: Arc<[f64]>,
    selector: &AdapterSelector,
) -> Result<Box<dyn Engine>> {
    validate_support(family.as_ref(), &data)?;
    match gpu_for(backend, selector)? {
        Some(ctx) => Ok(Box::new(GpuEngine::shared(&ctx, family, data)?)),
        None => Ok(Box::new(CpuEngine::new(family, data))),
    }
}

/// The GPU context `backend` asks for, or `None` for the CPU engine.
pub fn gpu_for(backend: Backend, selector: &AdapterSelector) -> Result<Option<GpuContext>> {
    let use_gpu = match backend {
        Backend::Cpu => false,
        Backend::Gpu => true,
        Backend::Auto => crate::gpu::context::best_is_hardware(selector),
    };
    use_gpu.then(|| GpuContext::new(selector)).transpose()
}
