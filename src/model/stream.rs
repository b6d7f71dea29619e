//! Conditional models over tables streamed in chunks (out of core): full-batch passes for
//! L-BFGS and Newton, minibatch epochs, and the final pass for the evaluation, the
//! separation diagnosis and the information matrix. Host memory holds a few chunks; the work
//! on each chunk runs on the CPU engine or on a GPU network the chunk is loaded into.
//!
//! Sums over chunks are added in f64 in the table's order, so a streamed full-batch pass
//! equals the in-memory one up to the order of the additions.

use super::newton::{self, Derivatives, WARM_START_ROWS, WARM_START_STRIDE};
use super::train::{
    full_batch_lbfgs, gpu_hyper, LossPoint, ModelOptimizer, Run, TrainOptions, TrainReport,
};
use super::{Assessment, ColumnStats, Conditioning, Model, Network};
use crate::data::{RowChunk, TableStream};
use crate::error::{Error, Result};
use crate::family::FamilyName;
use crate::fit::Differentiable;
use crate::gpu::mlp::GpuNetwork;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Where the work on each chunk runs.
#[derive(Clone, Copy)]
pub enum ChunkEngine<'a> {
    /// The CPU engine (f64, all cores).
    Cpu,
    /// A GPU network built with [`GpuNetwork::for_chunks`] for at least a chunk's rows.
    Gpu(&'a GpuNetwork),
}

impl ChunkEngine<'_> {
    fn unit_roundoff(&self) -> f64 {
        match self {
            ChunkEngine::Cpu => f64::EPSILON / 2.0,
            ChunkEngine::Gpu(_) => f32::EPSILON as f64 / 2.0,
        }
    }

    /// Puts rows on the GPU, conditioned (nothing to do on the CPU).
    fn load(&self, net: &Network, x: &[f64], y: &[f64], cond: Option<&Conditioning>) -> Result<()> {
        match self {
            ChunkEngine::Cpu => Ok(()),
            ChunkEngine::Gpu(gpu) => gpu.load_conditioned(x, y, &net.head.row_constants(y), cond),
        }
    }

    fn nll_and_grad(
        &self,
        net: &Network,
        params: &[f64],
        chunk: &RowChunk,
        cond: Option<&Conditioning>,
    ) -> Result<(f64, Vec<f64>)> {
        match self {
            ChunkEngine::Cpu => {
                let rows: Vec<usize> = (0..chunk.rows).collect();
                Ok(net.conditioned_nll_and_grad(params, &chunk.x, &chunk.y, &rows, cond))
            }
            ChunkEngine::Gpu(gpu) => {
                self.load(net, &chunk.x, &chunk.y, cond)?;
                gpu.nll_and_grad(params)
            }
        }
    }

    fn derivatives(
        &self,
        net: &Network,
        params: &[f64],
        chunk: &RowChunk,
        cond: Option<&Conditioning>,
    ) -> Result<Derivatives> {
        match self {
            ChunkEngine::Cpu => {
                newton::conditioned_derivatives(net, params, &chunk.x, &chunk.y, cond)
            }
            ChunkEngine::Gpu(gpu) => {
                self.load(net, &chunk.x, &chunk.y, cond)?;
                gpu.derivatives(params)
            }
        }
    }
}

/// Adds `part` into `sum` element by element.
fn add_into(sum: &mut [f64], part: &[f64]) {
    sum.iter_mut().zip(part).for_each(|(a, b)| *a += b);
}

/// Total NLL and gradient over the table's rows as `cond` re-expresses them: one pass.
pub fn nll_and_grad(
    net: &Network,
    params: &[f64],
    table: &mut TableStream,
    engine: ChunkEngine<'_>,
    cond: Option<&Conditioning>,
) -> Result<(f64, Vec<f64>)> {
    let (mut nll, mut grad) = (0.0, vec![0.0; net.param_count()]);
    table.for_each_chunk(|chunk| {
        let (f, g) = engine.nll_and_grad(net, params, chunk, cond)?;
        nll += f;
        add_into(&mut grad, &g);
        Ok(true)
    })?;
    Ok((nll, grad))
}

/// NLL, gradient and Hessian over the table's rows as `cond` re-expresses them (linear
/// models): one pass.
pub fn derivatives(
    net: &Network,
    params: &[f64],
    table: &mut TableStream,
    engine: ChunkEngine<'_>,
    cond: Option<&Conditioning>,
) -> Result<Derivatives> {
    let p = net.param_count();
    let (mut f, mut g, mut h) = (0.0, vec![0.0; p], vec![0.0; p * p]);
    table.for_each_chunk(|chunk| {
        let (cf, cg, ch) = engine.derivatives(net, params, chunk, cond)?;
        f += cf;
        add_into(&mut g, &cg);
        add_into(&mut h, &ch);
        Ok(true)
    })?;
    Ok((f, g, h))
}

/// The full-batch problem over a streamed table (L-BFGS, Newton, profile likelihoods), of the
/// rows as `cond` re-expresses them.
pub struct StreamedProblem<'a, 'g> {
    pub net: &'a Network,
    pub table: &'a mut TableStream,
    pub engine: ChunkEngine<'g>,
    pub frozen: &'a [bool],
    pub n: usize,
    pub cond: Option<&'a Conditioning>,
}

impl crate::fit::SecondOrder for StreamedProblem<'_, '_> {
    fn n(&self) -> usize {
        self.n
    }
    fn unit_roundoff(&self) -> f64 {
        self.engine.unit_roundoff()
    }
    fn derivatives(&mut self, theta: &[f64]) -> Result<Derivatives> {
        derivatives(self.net, theta, self.table, self.engine, self.cond)
    }
    fn nll_and_gradient(&mut self, theta: &[f64]) -> Result<Option<(f64, Vec<f64>)>> {
        let (net, engine, cond) = (self.net, self.engine, self.cond);
        let (mut nll, mut grad) = (0.0, vec![0.0; net.param_count()]);
        self.table.for_each_chunk(|chunk| {
            let (f, g) = match engine {
                ChunkEngine::Cpu => {
                    newton::conditioned_gradient(net, theta, &chunk.x, &chunk.y, cond)?
                }
                ChunkEngine::Gpu(_) => engine.nll_and_grad(net, theta, chunk, cond)?,
            };
            nll += f;
            add_into(&mut grad, &g);
            Ok(true)
        })?;
        Ok(Some((nll, grad)))
    }
}

impl Differentiable for StreamedProblem<'_, '_> {
    fn n(&self) -> usize {
        self.n
    }
    fn unit_roundoff(&self) -> f64 {
        self.engine.unit_roundoff()
    }
    fn nll_and_grad(&mut self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        let (nll, mut grad) = nll_and_grad(self.net, theta, self.table, self.engine, self.cond)?;
        for (g, &f) in grad.iter_mut().zip(self.frozen) {
            if f {
                *g = 0.0;
            }
        }
        Ok((nll, grad))
    }
}

/// What the first pass over a training table finds: its rows, the largest target, a
/// subsample of every `stride`-th row (Newton's warm start; the head's starting globals), and
/// how the targets vary from chunk to chunk.
pub struct Survey {
    pub n: usize,
    pub max_target: f64,
    pub stride: usize,
    /// The subsample's features (row-major) and targets.
    pub sample_x: Vec<f64>,
    pub sample_y: Vec<f64>,
    /// Every column's sums (the features', then the target's), for the conditioning.
    pub stats: ColumnStats,
    /// Each chunk's rows and mean target.
    chunk_means: Vec<(usize, f64)>,
    /// The sum over chunks of the targets' squared deviations from their chunk's mean.
    within_chunk_squares: f64,
}

/// [`Survey::target_order`] above which a table's rows are taken to be ordered by their
/// target: in a table in random order the ratio is about 1 (it exceeds 10 by chance with
/// probability under 0.2% for two chunks, and far less for more).
pub const ORDERED_TARGET_RATIO: f64 = 10.0;

impl Survey {
    /// How much the chunks' mean targets differ, against how much targets vary within a
    /// chunk: the one-way analysis-of-variance ratio F = [sum_c m_c (mean_c - mean)^2 / (C - 1)]
    /// / [sum_c sum_(i in c) (y_i - mean_c)^2 / (n - C)] over the C chunks of m_c rows. About 1
    /// when the rows are in random order; large when the file is sorted or grouped by its
    /// target, which minibatch epochs (shuffled within a chunk only) cannot undo. None for a
    /// table read as one chunk.
    pub fn target_order(&self) -> Option<f64> {
        let chunks = self.chunk_means.len();
        if chunks < 2 || self.n <= chunks {
            return None;
        }
        let mean = self
            .chunk_means
            .iter()
            .map(|&(m, mean_c)| m as f64 * mean_c)
            .sum::<f64>()
            / self.n as f64;
        let between = self
            .chunk_means
            .iter()
            .map(|&(m, mean_c)| m as f64 * (mean_c - mean).powi(2))
            .sum::<f64>()
            / (chunks - 1) as f64;
        let within = self.within_chunk_squares / (self.n - chunks) as f64;
        Some(if within > 0.0 {
            between / within
        } else if between > 0.0 {
            f64::INFINITY
        } else {
            0.0
        })
    }
}

/// Classes a categorical target may have.
pub use crate::data::MAX_CLASSES;

/// Reads the training table once: checks every target against the family's support (class
/// labels 0..K-1 with K the number of string labels, or up to [`MAX_CLASSES`]) and keeps
/// every 8th row, or every 16th, 32nd, ... so that at most `max_sample_rows` are kept.
pub fn survey(
    table: &mut TableStream,
    family: FamilyName,
    max_sample_rows: usize,
) -> Result<Survey> {
    let classes = table.labels.as_ref().map_or(MAX_CLASSES, Vec::len);
    let support = family.build(classes);
    let d = table.features.len();
    let mut survey = Survey {
        n: 0,
        max_target: f64::NEG_INFINITY,
        stride: WARM_START_STRIDE,
        sample_x: Vec::new(),
        sample_y: Vec::new(),
        stats: ColumnStats::new(d + 1),
        chunk_means: Vec::new(),
        within_chunk_squares: 0.0,
    };
    let (path, target) = (table.path.clone(), table.target.clone());
    let mut failure = None;
    let located = |row: usize| (row, target.clone());
    let rows = table.for_each_chunk(|chunk| {
        for (i, &y) in chunk.y.iter().enumerate() {
            if let Some(why) = support.support_error(y) {
                failure = Some((located(chunk.first + i), why));
                return Ok(false);
            }
            survey.max_target = survey.max_target.max(y);
            let r = chunk.first + i;
            if r % survey.stride == 0 {
                survey
                    .sample_x
                    .extend_from_slice(&chunk.x[i * d..(i + 1) * d]);
                survey.sample_y.push(y);
                if survey.sample_y.len() > max_sample_rows.max(1) {
                    // Keep every other sampled row: rows at multiples of twice the stride.
                    survey.stride *= 2;
                    let keep: Vec<usize> = (0..survey.sample_y.len()).step_by(2).collect();
                    survey.sample_y = keep.iter().map(|&k| survey.sample_y[k]).collect();
                    survey.sample_x = keep
                        .iter()
                        .flat_map(|&k| survey.sample_x[k * d..(k + 1) * d].to_vec())
                        .collect();
                }
            }
        }
        survey.stats.add(&chunk.x, &chunk.y);
        let mean = chunk.y.iter().sum::<f64>() / chunk.rows as f64;
        survey.within_chunk_squares += chunk.y.iter().map(|y| (y - mean).powi(2)).sum::<f64>();
        survey.chunk_means.push((chunk.rows, mean));
        Ok(true)
    })?;
    if let Some(((row, column), why)) = failure {
        return Err(Error::data(
            path,
            table.location(row, &column),
            format!("{why} of the {} family", family.as_str()),
        ));
    }
    survey.n = rows;
    Ok(survey)
}

/// A seeded, order-free choice of validation rows: row `r` is held out when a hash of
/// (seed, r) falls below `fraction`, so every pass agrees without a list of rows.
pub fn held_out(seed: u64, row: usize, fraction: f64) -> bool {
    // SplitMix64's finaliser.
    let mut z = seed ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64) / ((1u64 << 53) as f64) < fraction
}

/// Trains `params` on a streamed table of `survey.n` rows. Newton and L-BFGS take full-batch
/// passes (Newton first solves on the survey's subsample); the minibatch optimisers read the
/// table in order each epoch and shuffle the rows within each chunk (seeded), carrying the
/// rows of an unfinished batch into the next chunk. `--validation` holds out rows by a
/// seeded hash of their index ([`held_out`]) and costs one more pass per epoch.
#[allow(clippy::too_many_arguments)]
pub fn train_streamed(
    net: &Network,
    params: &mut Vec<f64>,
    table: &mut TableStream,
    engine: ChunkEngine<'_>,
    survey: &Survey,
    cond: Option<&Conditioning>,
    options: &TrainOptions,
    mut progress: impl FnMut(&LossPoint),
) -> Result<TrainReport> {
    let n = survey.n;
    match options.optimizer {
        ModelOptimizer::Newton => {
            if n >= WARM_START_ROWS && net.hidden.is_empty() {
                // The survey's subsample, as the in-memory warm start's every 8th row.
                newton::warm_start_from(
                    net,
                    params,
                    &survey.sample_x,
                    &survey.sample_y,
                    cond,
                    n,
                    options,
                );
            }
            let report = newton::newton_with(
                net,
                params,
                n,
                engine.unit_roundoff(),
                &mut |theta| derivatives(net, theta, table, engine, cond),
                options,
            )?;
            if let Some(last) = report.history.last() {
                progress(last);
            }
            Ok(report)
        }
        ModelOptimizer::Lbfgs => {
            let mut problem = StreamedProblem {
                net,
                table,
                engine,
                frozen: &options.frozen,
                n,
                cond,
            };
            full_batch_lbfgs(net, &mut problem, params, options, progress)
        }
        _ => minibatch(net, params, table, engine, n, cond, options, &mut progress),
    }
}

/// Rows carried from one chunk to the next: features (row-major) and targets.
#[derive(Default)]
struct Rows {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Rows {
    fn clear(&mut self) {
        self.x.clear();
        self.y.clear();
    }
    fn push(&mut self, x: &[f64], y: f64) {
        self.x.extend_from_slice(x);
        self.y.push(y);
    }
}

#[allow(clippy::too_many_arguments)]
fn minibatch(
    net: &Network,
    params: &mut Vec<f64>,
    table: &mut TableStream,
    engine: ChunkEngine<'_>,
    n: usize,
    cond: Option<&Conditioning>,
    options: &TrainOptions,
    progress: &mut dyn FnMut(&LossPoint),
) -> Result<TrainReport> {
    let d = net.inputs;
    let fraction = options.validation.unwrap_or(0.0);
    let is_held_out = |r: usize| fraction > 0.0 && held_out(options.seed, r, fraction);
    let n_validation = (0..n).filter(|&r| is_held_out(r)).count();
    let n_train = n - n_validation;
    if fraction > 0.0 && (n_validation == 0 || n_train == 0) {
        return Err(Error::Usage(format!(
            "--validation {fraction} holds out {n_validation} of {n} rows: nothing to {}",
            if n_train == 0 {
                "train on"
            } else {
                "validate on"
            }
        )));
    }
    let batch = options.batch_size.unwrap_or(n_train).clamp(1, n_train);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut run = Run::new(net, params, options, n_train);
    let hyper = gpu_hyper(options, n_train);
    if let ChunkEngine::Gpu(gpu) = engine {
        gpu.set_prior_factors(&options.prior_factors(net));
        gpu.set_params(params);
        gpu.reset_optimizer();
    }
    // Steps over rows `order` of `rows`, in batches; false once the run must stop.
    let steps = |run: &mut Run,
                 params: &mut Vec<f64>,
                 rows: &Rows,
                 order: &[usize],
                 progress: &mut dyn FnMut(&LossPoint)| match engine {
        // Nothing to load: every row of the chunk held out, none carried over.
        _ if order.is_empty() => Ok(true),
        ChunkEngine::Cpu => {
            Ok(run.cpu_steps(net, params, &rows.x, &rows.y, cond, order, batch, progress))
        }
        ChunkEngine::Gpu(gpu) => {
            engine.load(net, &rows.x, &rows.y, cond)?;
            let order: Vec<u32> = order.iter().map(|&r| r as u32).collect();
            run.gpu_steps(gpu, params, &order, batch, hyper, progress)
        }
    };
    let (mut working, mut carry) = (Rows::default(), Rows::default());
    for epoch in 1..=options.epochs {
        if !run.may_step() {
            break;
        }
        run.epochs = epoch;
        carry.clear();
        let mut going = true;
        table.for_each_chunk(|chunk| {
            // This chunk's training rows after those carried from the last.
            std::mem::swap(&mut working, &mut carry);
            carry.clear();
            for i in 0..chunk.rows {
                if !is_held_out(chunk.first + i) {
                    working.push(&chunk.x[i * d..(i + 1) * d], chunk.y[i]);
                }
            }
            let mut order: Vec<usize> = (0..working.y.len()).collect();
            order.shuffle(&mut rng);
            let full = order.len() / batch * batch;
            for &r in &order[full..] {
                carry.push(&working.x[r * d..(r + 1) * d], working.y[r]);
            }
            going = steps(&mut run, params, &working, &order[..full], progress)?;
            working.clear();
            Ok(going)
        })?;
        if going && !carry.y.is_empty() {
            let order: Vec<usize> = (0..carry.y.len()).collect();
            going = steps(&mut run, params, &carry, &order, progress)?;
        }
        if let ChunkEngine::Gpu(gpu) = engine {
            *params = gpu.read_params()?;
        }
        if !going {
            break;
        }
        let validation = if n_validation > 0 {
            let mut sum = 0.0;
            table.for_each_chunk(|chunk| {
                let rows: Vec<usize> = (0..chunk.rows)
                    .filter(|&i| is_held_out(chunk.first + i))
                    .collect();
                sum += match engine {
                    ChunkEngine::Cpu => {
                        net.conditioned_nll_and_grad(params, &chunk.x, &chunk.y, &rows, cond)
                            .0
                    }
                    ChunkEngine::Gpu(gpu) => {
                        engine.load(net, &chunk.x, &chunk.y, cond)?;
                        let rows: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
                        gpu.nll(&rows)?
                    }
                };
                Ok(true)
            })?;
            Some(sum / n_validation as f64)
        } else {
            None
        };
        if !run.end_epoch(params, validation, progress) {
            break;
        }
    }
    Ok(run.finish(params))
}

/// What the final pass over a table finds about a fitted model: the assessment (NLL,
/// accuracy, separation), and the NLL's Hessian and the scores' outer products where asked.
pub struct Summary {
    pub assessment: Assessment,
    pub hessian: Option<Vec<f64>>,
    pub outer: Option<Vec<f64>>,
}

/// One pass computing the [`Summary`] of `model` on a streamed table: the assessment on the
/// CPU, and the NLL's Hessian and the scores' outer products (where asked) of the
/// conditioned rows at the conditioned parameters, the Hessian on the engine.
pub fn summarize(
    model: &Model,
    table: &mut TableStream,
    engine: ChunkEngine<'_>,
    conditioned: (&Conditioning, &[f64]),
    hessian: bool,
    outer: bool,
) -> Result<Summary> {
    let p = model.network.param_count();
    let (cond, params) = conditioned;
    let mut summary = Summary {
        assessment: model.assessment(true),
        hessian: hessian.then(|| vec![0.0; p * p]),
        outer: outer.then(|| vec![0.0; p * p]),
    };
    table.for_each_chunk(|chunk| {
        model.assess(&chunk.x, &chunk.y, &mut summary.assessment);
        if let Some(h) = &mut summary.hessian {
            add_into(
                h,
                &engine
                    .derivatives(&model.network, params, chunk, Some(cond))?
                    .2,
            );
        }
        if let Some(o) = &mut summary.outer {
            crate::inference::add_score_outer(
                &model.network,
                params,
                &chunk.x,
                &chunk.y,
                Some(cond),
                o,
            );
        }
        Ok(true)
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_rows_are_a_seeded_fraction() {
        let n = 100_000;
        for (seed, fraction) in [(0, 0.1), (7, 0.5), (12345, 0.02)] {
            let held = (0..n).filter(|&r| held_out(seed, r, fraction)).count() as f64;
            // Binomial(n, f): within 5 standard deviations.
            let sd = (n as f64 * fraction * (1.0 - fraction)).sqrt();
            assert!(
                (held - n as f64 * fraction).abs() < 5.0 * sd,
                "{seed} {fraction}: {held}"
            );
            // The same rows every time; other seeds choose other rows.
            assert!((0..1000).all(|r| held_out(seed, r, fraction) == held_out(seed, r, fraction)));
        }
        let differ = (0..1000)
            .filter(|&r| held_out(1, r, 0.5) != held_out(2, r, 0.5))
            .count();
        assert!((350..650).contains(&differ), "{differ}");
    }

    #[test]
    fn the_survey_thins_its_sample_to_the_budget() {
        let n = 10_000;
        let x: Vec<f64> = (0..n).map(|r| r as f64).collect();
        let y: Vec<f64> = (0..n).map(|r| (r % 2) as f64).collect();
        let table = crate::data::Table {
            path: "memory".into(),
            n,
            features: vec!["r".into()],
            x,
            target: "y".into(),
            y: Some(y),
            labels: None,
        };
        let mut stream = TableStream::memory(std::sync::Arc::new(table));
        stream.set_chunk_rows(777);
        let survey = survey(&mut stream, FamilyName::Bernoulli, 300).unwrap();
        assert_eq!(survey.n, n);
        assert_eq!(survey.max_target, 1.0);
        // Every 8th row is 1250 rows: thinned to every 64th, 157 rows.
        assert_eq!(survey.stride, 64);
        let expected: Vec<f64> = (0..n).step_by(64).map(|r| r as f64).collect();
        assert_eq!(survey.sample_x, expected);
        assert_eq!(survey.sample_y.len(), expected.len());
    }
}
