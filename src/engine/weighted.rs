//! The f64 CPU engine over samples that carry frequency weights.
//!
//! A row of weight w counts as w rows: its terms enter the sums multiplied by w, its constant
//! too, and the likelihood's count of observations is the sum of the weights. Because every
//! family's NLL is `finish(n, sum_i terms(x_i), theta)` with `finish` affine in the sums and
//! n the count, the weighted fit is exactly the fit of the table with each row repeated w
//! times (estimates, Hessian and so standard errors, information criteria with n = sum w),
//! and it holds for non-integer weights the same way.
//!
//! With right-censored samples (`--censored`) the family is [`Censored`]: a censored sample
//! adds its -ln S terms in place of the density's, and the samples are taken as they are
//! (no re-expression, whose Jacobian only the observed samples would carry).

use super::Engine;
use crate::data::Samples;
use crate::error::{Error, Result};
use crate::family::{Censored, Family, SampleMap, Summary};
use rayon::prelude::*;
use std::sync::Arc;

/// Evaluates weighted term sums in f64 on all cores, block by block in a fixed order (so the
/// sums do not depend on the thread count). Rows of weight 0 are left out entirely: the
/// expanded table does not have them.
pub struct WeightedCpuEngine {
    family: Box<dyn Family>,
    data: Samples,
    weights: Arc<[f64]>,
    map: SampleMap,
    constant: f64,
    summary: Summary,
    count: f64,
    /// Which samples are right-censored, and the family that takes them.
    censoring: Option<(Arc<[bool]>, Censored)>,
}

impl WeightedCpuEngine {
    /// The engine over `data` with one weight per sample. The weights must be finite and
    /// non-negative with a positive sum (the CLI names the offending row before this).
    pub fn new(family: Box<dyn Family>, data: Samples, weights: Arc<[f64]>) -> Result<Self> {
        Self::with_censoring(family, data, weights, None)
    }

    /// The engine over weighted samples of which those flagged `true` in `censored` are
    /// right-censored (the family must be censorable, and some positive-weight sample
    /// observed: with every lifetime still running, the likelihood grows without bound as
    /// they lengthen).
    pub fn with_censoring(
        family: Box<dyn Family>,
        data: Samples,
        weights: Arc<[f64]>,
        censored: Option<Arc<[bool]>>,
    ) -> Result<Self> {
        if weights.len() != data.len() {
            return Err(Error::InvalidData(format!(
                "{} weights for {} samples",
                weights.len(),
                data.len()
            )));
        }
        if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(Error::InvalidData(format!(
                "weight {i} is {}: frequency weights are finite and non-negative",
                weights[i]
            )));
        }
        let count = ordered_sum(weights.len(), |i| weights[i]);
        if !(count > 0.0 && count.is_finite()) {
            return Err(Error::InvalidData(format!(
                "the weights sum to {count}: a weighted fit needs a positive, finite total"
            )));
        }
        let censoring = match censored {
            Some(flags) => {
                if flags.len() != data.len() {
                    return Err(Error::InvalidData(format!(
                        "{} censoring flags for {} samples",
                        flags.len(),
                        data.len()
                    )));
                }
                if !(0..data.len()).any(|i| weights[i] > 0.0 && !flags[i]) {
                    return Err(Error::InvalidData(
                        "every sample is censored: with no lifetime observed to end, the \
                         likelihood grows without bound as the lifetimes lengthen"
                            .into(),
                    ));
                }
                // The observed samples' range and the largest censored one (positive
                // weights only), by which the family tells a likelihood without a maximum.
                let (mut observed, mut censored_max) = (Summary::of(&[]), f64::NEG_INFINITY);
                for i in (0..data.len()).filter(|&i| weights[i] > 0.0) {
                    let x = data.get(i);
                    if flags[i] {
                        censored_max = censored_max.max(x);
                    } else {
                        observed.n += 1;
                        observed.min = observed.min.min(x);
                        observed.max = observed.max.max(x);
                    }
                }
                let family =
                    Censored::new(family.clone_box())?.with_samples(observed, censored_max);
                Some((flags, family))
            }
            None => None,
        };
        let is_censored = |i: usize| censoring.as_ref().is_some_and(|(flags, _)| flags[i]);
        // The samples the expanded table holds: those of positive weight.
        let (mut min, mut max, mut rows) = (f64::INFINITY, f64::NEG_INFINITY, 0);
        for (i, &w) in weights.iter().enumerate() {
            if w > 0.0 {
                let x = data.get(i);
                min = min.min(x);
                max = max.max(x);
                rows += 1;
            }
        }
        let map = if censoring.is_some() {
            SampleMap::identity()
        } else {
            SampleMap::for_f64(family.as_ref(), min, max)
        };
        // The density's constant, of the observed samples only.
        let constant = ordered_sum(data.len(), |i| {
            let w = weights[i];
            if w > 0.0 && !is_censored(i) {
                w * family.constant(data.get(i))
            } else {
                0.0
            }
        });
        let summary = Summary {
            n: rows,
            min: map.apply(min),
            max: map.apply(max),
        };
        Ok(WeightedCpuEngine {
            family,
            data,
            weights,
            map,
            constant,
            summary,
            count,
            censoring,
        })
    }

    /// The weights, one per sample.
    pub fn weights(&self) -> &Arc<[f64]> {
        &self.weights
    }
}

/// sum_{i < n} f(i) in f64, in blocks of [`super::cpu::BLOCK`] added in order.
fn ordered_sum(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    let block = super::cpu::BLOCK;
    (0..n.div_ceil(block))
        .into_par_iter()
        .map(|b| (b * block..((b + 1) * block).min(n)).map(&f).sum::<f64>())
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

impl Engine for WeightedCpuEngine {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn adapter(&self) -> String {
        format!("host CPU, {} threads, f64", rayon::current_num_threads())
    }
    fn family(&self) -> &dyn Family {
        match &self.censoring {
            Some((_, censored)) => censored,
            None => self.family.as_ref(),
        }
    }
    fn n(&self) -> usize {
        self.data.len()
    }
    fn count(&self) -> f64 {
        self.count
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
        let family = self.family();
        let kp = family.kernel_params(theta);
        let terms = family.n_terms();
        let (data, weights, map) = (&self.data, &self.weights, &self.map);
        let censoring = self.censoring.as_ref();
        let block = super::cpu::BLOCK;
        let blocks: Vec<Vec<f64>> = (0..data.len().div_ceil(block))
            .into_par_iter()
            .map(|b| {
                let mut acc = vec![0.0; terms];
                let mut t = vec![0.0; terms];
                for i in b * block..((b + 1) * block).min(data.len()) {
                    let w = weights[i];
                    if w == 0.0 {
                        continue;
                    }
                    match censoring {
                        Some((flags, censored)) if flags[i] => {
                            censored.censored_terms(data.get(i), &kp, &mut t)
                        }
                        _ => family.terms(map.apply(data.get(i)), &kp, &mut t),
                    }
                    for (a, v) in acc.iter_mut().zip(&t) {
                        *a += w * v;
                    }
                }
                acc
            })
            .collect();
        let mut sums = vec![0.0; terms];
        for b in &blocks {
            for (s, v) in sums.iter_mut().zip(b) {
                *s += v;
            }
        }
        Ok(sums)
    }
}
