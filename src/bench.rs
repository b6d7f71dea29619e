//! The benchmark jobs of `../shared/bench/peers.py`, shared by `likely bench` and the
//! `cargo bench` harness: their data (drawn here with a fixed seed, or read from the `.npy`
//! files `bench/peer_data.py` writes from peers.py's own generators, so that both sides fit
//! the same numbers) and one timed run of each.

use crate::data::NpyReader;
use crate::error::{Error, Result};
use crate::family::FamilyName;
use crate::gpu::mlp::GpuNetwork;
use crate::gpu::timer::KernelTime;
use crate::gpu::GpuContext;
use crate::model::{Activation, Head, ModelOptimizer, Network, TrainOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;
use std::time::Instant;

/// A job's table: row-major x (n x d, f32 values held as f64) and y.
pub struct JobData {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub d: usize,
    /// Where the data came from, for the report.
    pub source: String,
}

impl JobData {
    pub fn n(&self) -> usize {
        self.y.len()
    }

    /// Bytes of data a pass reads as the GPU holds it (f32 features and target).
    pub fn bytes(&self) -> f64 {
        (self.n() * (self.d + 1) * 4) as f64
    }
}

fn normal(rng: &mut StdRng) -> f64 {
    <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)
}

/// gauss-eval (and eval-<family>): n samples of the family at `truth`, as f32.
pub fn family_data(family: FamilyName, truth: &[f64], n: usize) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(0);
    family
        .build(5)
        .sample(truth, n, &mut rng)
        .into_iter()
        .map(|x| x as f32 as f64)
        .collect()
}

/// gauss-eval's sample, N(5, 2^2), and the point it is evaluated at (mu 4.9, sigma 1.9).
pub fn gauss_data(n: usize) -> Vec<f64> {
    family_data(FamilyName::Gaussian, &[5.0, 2f64.ln()], n)
}

/// The host's streaming limit over `values` in the same run: one pass summing d and d^2
/// (d = x - c, in f64 from the f32 value: what the Gaussian's evaluation must read and form),
/// on all cores, with eight independent accumulators so that no sum waits on the one before
/// (the compiler may then vectorise; it is built for the same baseline x86-64 target as the
/// engine, SSE2, not for this machine's AVX2). It is the same work as the Gaussian's terms
/// with nothing else: no family's evaluation can be much faster than this pass.
pub fn streaming_limit(values: &[f32], c: f64) -> (f64, f64) {
    use rayon::prelude::*;
    values
        .par_chunks(1 << 16)
        .map(|block| {
            let mut s1 = [0.0f64; 8];
            let mut s2 = [0.0f64; 8];
            let chunks = block.chunks_exact(8);
            let rest = chunks.remainder();
            for chunk in chunks {
                for k in 0..8 {
                    let d = chunk[k] as f64 - c;
                    s1[k] += d;
                    s2[k] += d * d;
                }
            }
            let mut t = (s1.iter().sum::<f64>(), s2.iter().sum::<f64>());
            for &x in rest {
                let d = x as f64 - c;
                t.0 += d;
                t.1 += d * d;
            }
            t
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// The same kind of pass as [`streaming_limit`] over f64 values: the sum and the sum of
/// squares of every value, on all cores, eight independent accumulators. The model engine's
/// row passes read the table's f64 rows: no pass over them can be much faster.
pub fn streaming_limit_f64(values: &[f64]) -> (f64, f64) {
    use rayon::prelude::*;
    values
        .par_chunks(1 << 15)
        .map(|block| {
            let mut s1 = [0.0f64; 8];
            let mut s2 = [0.0f64; 8];
            let (chunks, rest) = block.as_chunks::<8>();
            for chunk in chunks {
                for k in 0..8 {
                    s1[k] += chunk[k];
                    s2[k] += chunk[k] * chunk[k];
                }
            }
            let mut t = (s1.iter().sum::<f64>(), s2.iter().sum::<f64>());
            for &x in rest {
                t.0 += x;
                t.1 += x * x;
            }
            t
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// A job's table as the model engine's row passes see it: one block in memory.
struct SlicePass<'a> {
    x: &'a [f64],
    y: &'a [f64],
}

impl crate::model::linear::RowPass for SlicePass<'_> {
    fn rows(&self) -> usize {
        self.y.len()
    }
    fn each_block(&mut self, f: &mut crate::model::linear::BlockFn<'_>) -> Result<()> {
        f(0, self.x, self.y)
    }
}

/// One repetition's times of the model engine's row passes over a job's table, and of the
/// streaming limit over the same f64 values, timed one after the other.
#[derive(Clone, Copy, Debug)]
pub struct RowPassTimes {
    /// A logistic Newton pass: NLL, gradient and Hessian at the given parameters.
    pub newton: f64,
    /// A least-squares pass: the R factor of the rows [x, 1, y] (Householder reflections
    /// over blocks of rows, the accurate path that ill-conditioned designs need).
    pub least_squares: f64,
    pub limit: f64,
}

/// [`RowPassTimes`] over `data` (logistic parameters `params`), once.
pub fn time_row_passes(data: &JobData, params: &[f64]) -> Result<RowPassTimes> {
    let net = logreg_network(data.d);
    let start = Instant::now();
    let limit_sums = (streaming_limit_f64(&data.x), streaming_limit_f64(&data.y));
    let limit = start.elapsed().as_secs_f64();
    std::hint::black_box(limit_sums);
    let start = Instant::now();
    std::hint::black_box(crate::model::newton::derivatives(
        &net, params, &data.x, &data.y,
    )?);
    let newton = start.elapsed().as_secs_f64();
    let cond = crate::model::Conditioning::identity(data.d);
    let start = Instant::now();
    let mut pass = SlicePass {
        x: &data.x,
        y: &data.y,
    };
    std::hint::black_box(crate::model::linear::least_squares_factor(
        &mut pass, &cond, data.d, true,
    )?);
    let least_squares = start.elapsed().as_secs_f64();
    Ok(RowPassTimes {
        newton,
        least_squares,
        limit,
    })
}

/// gauss-eval's (mu, log sigma).
pub const GAUSS_AT: [f64; 2] = [4.9, 0.641_853_886_172_394_8];

/// logreg-fit: n rows of d = 16 standard-normal features, y ~ Bernoulli(sigmoid(X w + 0.3))
/// with w ~ N(0, 0.5^2).
pub fn logreg_data(n: usize) -> JobData {
    let d = 16;
    let mut rng = StdRng::seed_from_u64(1);
    let x: Vec<f64> = (0..n * d).map(|_| normal(&mut rng) as f32 as f64).collect();
    let w: Vec<f64> = (0..d).map(|_| 0.5 * normal(&mut rng)).collect();
    let y = (0..n)
        .map(|i| {
            let z: f64 = 0.3 + (0..d).map(|j| x[i * d + j] * w[j]).sum::<f64>();
            (rng.random::<f64>() < crate::family::sigmoid(z)) as u8 as f64
        })
        .collect();
    JobData {
        x,
        y,
        d,
        source: "likely's RNG, seed 1".into(),
    }
}

/// mlp-train: n rows of 10 standard-normal features labelled by the argmax of a fixed random
/// teacher 10 -> 32 ReLU -> 5.
pub fn mlp_data(n: usize) -> JobData {
    mlp_data_seeded(n, 2)
}

/// [`mlp_data`] from another seed.
pub fn mlp_data_seeded(n: usize, seed: u64) -> JobData {
    let d = 10;
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<f64> = (0..n * d).map(|_| normal(&mut rng) as f32 as f64).collect();
    let teacher = mlp_network();
    let mut params = vec![0.0; teacher.param_count()];
    for l in teacher.layers() {
        params[l.weights..l.bias]
            .iter_mut()
            .for_each(|w| *w = normal(&mut rng));
    }
    let mut z = Vec::new();
    let y = (0..n)
        .map(|r| {
            let eta = teacher.forward(&params, &x[r * d..(r + 1) * d], &mut z);
            teacher.head.predicted_class(&eta)
        })
        .collect();
    JobData {
        x,
        y,
        d,
        source: format!("likely's RNG, seed {seed}"),
    }
}

/// A job's data from `dir/<job>.x.npy` (and `dir/<job>.y.npy`), as bench/peer_data.py writes
/// them from peers.py's generators.
pub fn peer_data(dir: &Path, job: &str) -> Result<JobData> {
    let x_path = dir.join(format!("{job}.x.npy"));
    // A 1-D array opens as it is; a 2-D one through its first column, then reads whole rows.
    let mut reader =
        NpyReader::open(&x_path, None).or_else(|_| NpyReader::open(&x_path, Some("0")))?;
    let (n, d) = (reader.len(), reader.columns());
    let mut x = vec![0.0; n * d];
    reader.read_rows(0, &mut x)?;
    let bad = |path: &Path, why: String| Error::data(path, "", why);
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(bad(&x_path, format!("value {i} is {}: not a number", x[i])));
    }
    let expected_columns = match job {
        "gauss-eval" => Some(1),
        "mlp-train" => Some(mlp_network().inputs),
        _ => None,
    };
    if let Some(want) = expected_columns.filter(|&want| want != d) {
        return Err(bad(
            &x_path,
            format!("{job} reads {want} column(s) of features; the array has {d}"),
        ));
    }
    let y = if job == "gauss-eval" {
        Vec::new()
    } else {
        let y_path = dir.join(format!("{job}.y.npy"));
        let mut reader = NpyReader::open(&y_path, None)?;
        if reader.len() != n {
            return Err(Error::data(
                &y_path,
                "",
                format!("{} rows, but {} has {n}", reader.len(), x_path.display()),
            ));
        }
        let mut y = vec![0.0; n];
        reader.read(0, &mut y)?;
        // logreg-fit's targets are 0/1, mlp-train's class indices of the seed MLP's head.
        let classes = if job == "mlp-train" {
            mlp_network().head.classes
        } else {
            2
        };
        if let Some(i) = y
            .iter()
            .position(|&v| !(v >= 0.0 && v < classes as f64 && v.fract() == 0.0))
        {
            return Err(bad(
                &y_path,
                format!(
                    "target {i} is {}: {job} takes class labels 0 to {}",
                    y[i],
                    classes - 1
                ),
            ));
        }
        y
    };
    Ok(JobData {
        x,
        y,
        d,
        source: format!("{} (peers.py's generator)", dir.display()),
    })
}

/// The logistic regression of logreg-fit: d inputs, intercept, Bernoulli head.
pub fn logreg_network(d: usize) -> Network {
    Network::linear(d, FamilyName::Bernoulli, 1)
}

/// The seed MLP of mlp-train: 10 -> 32 ReLU -> 5 classes (cross-entropy).
pub fn mlp_network() -> Network {
    Network {
        inputs: 10,
        hidden: vec![32],
        activation: Activation::Relu,
        head: Head::new(FamilyName::Categorical, 5, false),
    }
}

/// One timed run: wall seconds, the final mean NLL, optimiser steps, and the kernel time of
/// the run where the GPU timed it.
pub struct Run {
    pub seconds: f64,
    pub mean_nll: f64,
    pub steps: usize,
    pub kernel: Option<KernelTime>,
}

/// logreg-fit: the unpenalised MLE by Newton / Fisher scoring, to convergence.
pub fn fit_logreg(data: &JobData, gpu: Option<&GpuContext>) -> Result<Run> {
    let net = logreg_network(data.d);
    let options = TrainOptions::new(ModelOptimizer::Newton, net.param_count());
    let mut params = net.init(0, &data.y);
    let n = data.n();
    let start = Instant::now();
    let (report, kernel) = match gpu {
        Some(c) => {
            let mut g = GpuNetwork::new(
                c,
                &net,
                &data.x,
                &data.y,
                &vec![0.0; n],
                &options.frozen,
                GpuNetwork::full_batch_rows(&net, n),
            )?;
            g.enable_kernel_timing();
            crate::model::newton::warm_start(&net, &mut params, &data.x, &data.y, None, &options);
            let report = crate::model::train_gpu(&g, &net, &mut params, &options, |_| {})?;
            // Every pass of the fit, as one unit of work.
            (report, g.kernel_time().map(KernelTime::whole))
        }
        None => (
            crate::model::train(&net, &mut params, &data.x, &data.y, &options, |_| {})?,
            None,
        ),
    };
    let seconds = start.elapsed().as_secs_f64();
    let rows: Vec<usize> = (0..n).collect();
    Ok(Run {
        seconds,
        mean_nll: net.nll_and_grad(&params, &data.x, &data.y, &rows).0 / n as f64,
        steps: report.steps,
        kernel,
    })
}

/// mlp-train: `epochs` timed epochs of AdamW (lr 1e-3, weight decay 0.01) at batch 1024 from
/// the same initialisation each time; returns each epoch's run (the network and its upload
/// are built once, outside the timing).
pub fn train_mlp(data: &JobData, gpu: Option<&GpuContext>, epochs: usize) -> Result<Vec<Run>> {
    let net = mlp_network();
    if data.d != net.inputs {
        return Err(Error::Usage(format!(
            "mlp-train takes {} features, the data has {}",
            net.inputs, data.d
        )));
    }
    let options = TrainOptions {
        weight_decay: 0.01,
        batch_size: Some(1024),
        ..TrainOptions::new(ModelOptimizer::Adamw, net.param_count())
    };
    let n = data.n();
    let mut gpu_net = match gpu {
        Some(c) => Some(GpuNetwork::new(
            c,
            &net,
            &data.x,
            &data.y,
            &vec![0.0; n],
            &options.frozen,
            1024,
        )?),
        None => None,
    };
    if let Some(g) = gpu_net.as_mut() {
        g.enable_kernel_timing();
    }
    let rows: Vec<usize> = (0..n).collect();
    let mut runs = Vec::new();
    for _ in 0..epochs {
        let mut params = net.init(0, &data.y);
        let before = gpu_net.as_ref().and_then(|g| g.kernel_time());
        let start = Instant::now();
        let report = match &gpu_net {
            Some(g) => crate::model::train_gpu(g, &net, &mut params, &options, |_| {})?,
            None => crate::model::train(&net, &mut params, &data.x, &data.y, &options, |_| {})?,
        };
        let seconds = start.elapsed().as_secs_f64();
        let kernel = gpu_net.as_ref().and_then(|g| g.kernel_time()).map(|k| {
            let earlier = before.map_or(0.0, |b| b.seconds);
            KernelTime {
                seconds: k.seconds - earlier,
                passes: 1,
            }
        });
        runs.push(Run {
            seconds,
            mean_nll: net.nll_and_grad(&params, &data.x, &data.y, &rows).0 / n as f64,
            steps: report.steps,
            kernel,
        });
    }
    Ok(runs)
}
