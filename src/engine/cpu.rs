//! The f64 reference engine: the twin of every GPU kernel, multi-threaded with rayon.

use super::Engine;
use crate::error::Result;
use crate::family::{Family, SampleMap, Summary};
use std::sync::Arc;

/// Samples per parallel task: large enough to amortise scheduling, small enough to balance.
pub(crate) const BLOCK: usize = 1 << 16;

/// Evaluates in f64 on all cores; block results are added in a fixed order, so results are
/// reproducible whatever the thread count.
pub struct CpuEngine {
    family: Box<dyn Family>,
    /// The samples as the engine evaluates them (scaled by a power of two where their
    /// magnitude is beyond what f64 squares hold, see [`SampleMap::for_f64`]).
    data: Arc<[f64]>,
    map: SampleMap,
    constant: f64,
    summary: Summary,
}

impl CpuEngine {
    pub fn new(family: Box<dyn Family>, data: Arc<[f64]>) -> Self {
        let constant = super::constant_sum(family.as_ref(), &data);
        let summary = Summary::of(&data);
        let map = SampleMap::for_f64(family.as_ref(), summary.min, summary.max);
        let (data, summary) = if map.is_identity() {
            (data, summary)
        } else {
            // Only for data near the ends of f64's range; scaling by a power of two is exact.
            let mapped: Arc<[f64]> = data.iter().map(|&x| map.apply(x)).collect();
            let summary = Summary::of(&mapped);
            (mapped, summary)
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
            &SampleMap::identity(),
            theta,
        ))
    }
}
