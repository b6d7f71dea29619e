//! The f64 reference engine: the twin of every GPU kernel, multi-threaded with rayon.

use super::Engine;
use crate::data::Samples;
use crate::error::Result;
use crate::family::{Family, SampleMap, Summary};
use std::sync::Arc;

/// Samples per parallel task: large enough to amortise scheduling, small enough to balance.
pub(crate) const BLOCK: usize = 1 << 16;

/// Evaluates in f64 on all cores; block results are added in a fixed order, so results are
/// reproducible whatever the thread count.
pub struct CpuEngine {
    family: Box<dyn Family>,
    /// The samples as given, at their stored width; evaluations re-express them by `map`
    /// (see [`SampleMap::for_f64`]) block by block, in f64.
    data: Samples,
    map: SampleMap,
    constant: f64,
    summary: Summary,
}

impl CpuEngine {
    pub fn new(family: Box<dyn Family>, data: Arc<[f64]>) -> Self {
        Self::from_samples(family, Samples::F64(data))
    }

    /// The engine over samples held at any width (f32 samples stay 4 bytes each).
    pub fn from_samples(family: Box<dyn Family>, data: Samples) -> Self {
        let raw = data.summary();
        let map = SampleMap::for_f64(family.as_ref(), raw.min, raw.max);
        Self::with_map(family, data, map, raw)
    }

    /// The engine over the samples as given (no re-expression): the conformance twin of
    /// [`super::GpuEngine::with_options`], term sums at the same theta sample for sample.
    pub fn as_given(family: Box<dyn Family>, data: Arc<[f64]>) -> Self {
        let data = Samples::F64(data);
        let raw = data.summary();
        Self::with_map(family, data, SampleMap::identity(), raw)
    }

    fn with_map(family: Box<dyn Family>, data: Samples, map: SampleMap, raw: Summary) -> Self {
        let constant = super::constant_sum_of(family.as_ref(), &data);
        // The samples stay as they are (one copy); the map is applied block by block.
        let summary = Summary {
            min: map.apply(raw.min),
            max: map.apply(raw.max),
            ..raw
        };
        CpuEngine {
            family,
            data,
            map,
            constant,
            summary,
        }
    }
}

impl Engine for CpuEngine {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn adapter(&self) -> String {
        format!("host CPU, {} threads, f64", rayon::current_num_threads())
    }
    fn family(&self) -> &dyn Family {
        self.family.as_ref()
    }
    fn n(&self) -> usize {
        self.data.len()
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
    fn sample_map(&self) -> SampleMap {
        self.map
    }
    fn unit_roundoff(&self) -> f64 {
        f64::EPSILON / 2.0
    }
    fn term_sums(&mut self, theta: &[f64]) -> Result<Vec<f64>> {
        Ok(super::mapped_term_sums(
            self.family.as_ref(),
            &self.data,
            &self.map,
            theta,
        ))
    }
}
