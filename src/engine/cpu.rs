//! The f64 reference engine: the twin of every GPU kernel, multi-threaded with rayon.

use super::Engine;
use crate::error::Result;
use crate::family::{Family, Summary};
use rayon::prelude::*;
use std::sync::Arc;

/// Samples per parallel task: large enough to amortise scheduling, small enough to balance.
pub(crate) const BLOCK: usize = 1 << 16;

/// Evaluates in f64 on all cores; block results are added in a fixed order, so results are
/// reproducible whatever the thread count.
pub struct CpuEngine {
    family: Box<dyn Family>,
    data: Arc<[f64]>,
    constant: f64,
    summary: Summary,
}

impl CpuEngine {
    pub fn new(family: Box<dyn Family>, data: Arc<[f64]>) -> Self {
        let constant = super::constant_sum(family.as_ref(), &data);
        let summary = Summary::of(&data);
        CpuEngine {
            family,
            data,
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
    fn unit_roundoff(&self) -> f64 {
        f64::EPSILON / 2.0
    }
    fn term_sums(&mut self, theta: &[f64]) -> Result<Vec<f64>> {
        let family = self.family.as_ref();
        let kp = family.kernel_params(theta);
        let terms = family.n_terms();
        let blocks: Vec<Vec<f64>> = self
            .data
            .par_chunks(BLOCK)
            .map(|block| {
                let mut acc = vec![0.0; terms];
                family.accumulate(block, &kp, &mut acc);
                acc
            })
            .collect();
        let mut sums = vec![0.0; terms];
        for block in &blocks {
            for (s, b) in sums.iter_mut().zip(block) {
                *s += b;
            }
        }
        Ok(sums)
    }
}
