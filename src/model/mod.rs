//! Conditional models y | x ~ family(f_theta(x)): a linear model or an MLP with a family head.
//! The CPU code here is the f64 reference for forward and backward passes.

pub mod conditioning;
pub mod head;
pub mod lad;
pub mod linear;
pub mod logistic;
pub mod network;
pub mod newton;
#[cfg(target_arch = "x86_64")]
mod newton512;
pub mod stream;
pub mod train;

pub use conditioning::{ColumnStats, Conditioning};
pub use head::Head;
pub use network::{Activation, Network};
pub use train::{train, train_gpu, ModelOptimizer, TrainOptions, TrainReport};

use crate::error::{Error, Result};
use crate::family::FamilyName;
use crate::util::json_f64;
use serde_json::{json, Map, Value};
use std::path::Path;

/// Zeroes the gradient of frozen parameters (held at their initial value: the intercept under
/// `--no-intercept`), so that no optimiser moves them.
pub(crate) fn zero_frozen(grad: &mut [f64], frozen: &[bool]) {
    for (g, &f) in grad.iter_mut().zip(frozen) {
        if f {
            *g = 0.0;
        }
    }
}

/// `--model`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Linear,
    Mlp,
}

/// A fitted model with what is needed to apply it to new data.
#[derive(Clone, Debug)]
pub struct Model {
    pub kind: ModelKind,
    pub network: Network,
    pub params: Vec<f64>,
    pub features: Vec<String>,
    pub target: String,
    /// Class names for the categorical family (string labels, or "0".."K-1").
    pub labels: Option<Vec<String>>,
    /// Whether class labels were strings in the training data.
    pub string_labels: bool,
    pub intercept: bool,
    /// A column added to the linear predictor with coefficient 1 (`--offset`, or the log of
    /// `--exposure`): the last of `features`, its coefficient held at 1.
    pub offset: Option<Offset>,
    /// Training summary as written to the model file.
    pub training: Value,
}

/// A linear model's offset: eta = x b + offset, the offset a column of the table (`--offset`)
/// or the logarithm of one (`--exposure`, a Poisson rate model's time or population at risk).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Offset {
    pub column: String,
    /// Whether the offset is the column's logarithm (an exposure).
    pub log: bool,
}

impl Offset {
    /// The JSON key the fit reports it under: `offset` or `exposure`.
    pub fn flag(&self) -> &'static str {
        if self.log {
            "exposure"
        } else {
            "offset"
        }
    }
}

/// Quality of a model on a table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    pub n: usize,
    pub nll: f64,
    pub mean_nll: f64,
    pub accuracy: Option<f64>,
    /// The sum of the rows' unit deviances (see [`Head::unit_deviance`]), where the family
    /// has one.
    pub deviance: Option<f64>,
    /// Pearson's chi^2, sum (y - mu)^2 / V(mu), where the family has a variance function.
    pub pearson_chi2: Option<f64>,
    /// The intercept-only model of the same targets, where the family's follows from slices
    /// of them (see [`crate::family::Conditional::null_part`]).
    pub null: Option<crate::family::NullModel>,
    /// The null model's statistics themselves (merged over the rows), from which a null
    /// model at held globals follows ([`crate::family::Head::null_model_at`]).
    pub null_part: Option<Vec<f64>>,
}

impl Model {
    pub fn family(&self) -> FamilyName {
        self.network.head.family
    }

    /// NLL, mean NLL and (classifiers) accuracy of the model on rows with targets.
    pub fn evaluate(&self, x: &[f64], y: &[f64]) -> Evaluation {
        let mut assessment = self.assessment(false);
        self.assess(x, y, &mut assessment);
        assessment.evaluation()
    }

    /// Predictions per row: class probabilities, P(y = 1), or the mean.
    pub fn predict(&self, x: &[f64], n: usize) -> Vec<Vec<f64>> {
        use rayon::prelude::*;
        let d = self.network.inputs;
        let g = self.network.globals_offset();
        x[..n * d]
            .par_chunks(d.max(1))
            .map_init(Vec::new, |z, row| {
                let eta = self.network.forward(&self.params, row, z);
                self.network.head.predict(&eta, &self.params[g..])
            })
            .collect()
    }

    /// [`Model::predict`] as CSV lines (no header), formatted in parallel.
    pub fn prediction_lines(&self, x: &[f64], n: usize) -> String {
        use rayon::prelude::*;
        use std::fmt::Write;
        let d = self.network.inputs.max(1);
        let blocks: Vec<String> = x[..n * d]
            .par_chunks(d * 4096)
            .map(|block| {
                let mut text = String::new();
                for row in self.predict(block, block.len() / d) {
                    for (k, v) in row.iter().enumerate() {
                        let sep = if k + 1 == row.len() { '\n' } else { ',' };
                        let _ = write!(text, "{v}{sep}");
                    }
                }
                text
            })
            .collect();
        blocks.concat()
    }

    /// Column names of `predict`'s output.
    pub fn prediction_columns(&self) -> Vec<String> {
        match (self.family(), &self.labels) {
            (FamilyName::Categorical, Some(labels)) => {
                labels.iter().map(|l| format!("prob_{l}")).collect()
            }
            (FamilyName::Bernoulli, _) => vec!["prob_1".into()],
            _ => vec!["mean".into()],
        }
    }

    /// Linear models: coefficients keyed by feature name plus `intercept`; for the categorical
    /// family one such object per non-reference class, keyed by the class label.
    pub fn coefficients(&self) -> Option<Value> {
        if self.kind != ModelKind::Linear {
            return None;
        }
        let layer = self.network.layers()[0];
        let per_output = |o: usize| {
            let mut m = Map::new();
            for (j, f) in self.features[..self.fitted_features()].iter().enumerate() {
                m.insert(
                    f.clone(),
                    json_f64(self.params[layer.weights + j * layer.fan_out + o]),
                );
            }
            if self.intercept {
                m.insert("intercept".into(), json_f64(self.params[layer.bias + o]));
            }
            Value::Object(m)
        };
        Some(match (self.family(), &self.labels) {
            (FamilyName::Categorical, Some(labels)) => {
                let skip = self.network.head.reference as usize;
                Value::Object(
                    (0..layer.fan_out)
                        .map(|o| (labels[o + skip].clone(), per_output(o)))
                        .collect(),
                )
            }
            _ => per_output(0),
        })
    }

    /// The features with fitted coefficients: all but the offset, which comes last.
    pub fn fitted_features(&self) -> usize {
        self.features.len() - self.offset.is_some() as usize
    }

    /// The head's first global parameter on the natural scale (sigma or b), if any.
    pub fn global(&self) -> Option<(&'static str, f64)> {
        self.globals().first().copied()
    }

    /// Every global parameter of the head on the natural scale (the t's sigma and df).
    pub fn globals(&self) -> Vec<(&'static str, f64)> {
        let at = self.network.globals_offset();
        self.network
            .head
            .global_names()
            .iter()
            .enumerate()
            .map(|(q, &name)| (name, self.params[at + q].exp()))
            .collect()
    }

    fn to_json(&self) -> Value {
        json!({
            "format": "likely-model",
            "version": 1,
            "model": self.kind,
            "family": self.family().as_str(),
            "link": self.network.head.link.as_str(),
            "classes": self.network.head.classes,
            "reference_class": self.network.head.reference,
            "labels": self.labels,
            "string_labels": self.string_labels,
            "features": self.features,
            "target": self.target,
            "intercept": self.intercept,
            "offset": self.offset,
            "hidden": self.network.hidden,
            "activation": self.network.activation,
            "params": self.params,
            "training": self.training,
        })
    }

    /// Writes the model atomically: a temporary file beside `path`, then a rename, so a crash
    /// never leaves a half-written model.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json())
            .map_err(|e| Error::Usage(e.to_string()))?;
        crate::util::write_atomically(path, |out| {
            out.write_all(text.as_bytes()).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })
        })
    }

    /// Reads a model written by [`Model::save`]; anything malformed is a clear error.
    pub fn load(path: &Path) -> Result<Model> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad =
            |why: String| Error::data(path, "", format!("not a valid likely model file: {why}"));
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if v["format"] != "likely-model" {
            return Err(bad("missing \"format\": \"likely-model\"".into()));
        }
        if v["version"] != 1 {
            return Err(bad(format!(
                "version {} (this likely reads version 1)",
                v["version"]
            )));
        }
        let field = |k: &str| {
            v.get(k)
                .cloned()
                .ok_or_else(|| bad(format!("missing '{k}'")))
        };
        let parse = |k: &str| -> Result<Value> { field(k) };
        let kind: ModelKind =
            serde_json::from_value(parse("model")?).map_err(|e| bad(format!("model: {e}")))?;
        let family_name: String =
            serde_json::from_value(parse("family")?).map_err(|e| bad(format!("family: {e}")))?;
        let family = FamilyName::ALL
            .into_iter()
            .find(|f| f.as_str() == family_name)
            .ok_or_else(|| bad(format!("unknown family '{family_name}'")))?;
        let get = |k: &str| -> Result<Value> { parse(k) };
        let from = |k: &str, e: serde_json::Error| bad(format!("{k}: {e}"));
        let classes: usize =
            serde_json::from_value(get("classes")?).map_err(|e| from("classes", e))?;
        let reference: bool = serde_json::from_value(get("reference_class")?)
            .map_err(|e| from("reference_class", e))?;
        let labels: Option<Vec<String>> =
            serde_json::from_value(get("labels")?).map_err(|e| from("labels", e))?;
        let string_labels: bool =
            serde_json::from_value(get("string_labels")?).map_err(|e| from("string_labels", e))?;
        let features: Vec<String> =
            serde_json::from_value(get("features")?).map_err(|e| from("features", e))?;
        let target: String =
            serde_json::from_value(get("target")?).map_err(|e| from("target", e))?;
        let intercept: bool =
            serde_json::from_value(get("intercept")?).map_err(|e| from("intercept", e))?;
        let hidden: Vec<usize> =
            serde_json::from_value(get("hidden")?).map_err(|e| from("hidden", e))?;
        let activation: Activation =
            serde_json::from_value(get("activation")?).map_err(|e| from("activation", e))?;
        let params: Vec<f64> =
            serde_json::from_value(get("params")?).map_err(|e| from("params", e))?;
        if classes == 0
            || (family == FamilyName::Categorical && classes < 2)
            || (family != FamilyName::Categorical && classes != 1)
            || features.is_empty()
            || hidden.contains(&0)
            || (kind == ModelKind::Linear && !hidden.is_empty())
        {
            return Err(bad(
                "inconsistent shape (classes, features or hidden widths)".into(),
            ));
        }
        if let Some(twice) = labels.as_deref().and_then(crate::data::first_repeated) {
            return Err(bad(format!(
                "class label '{twice}' is listed twice: each class needs its own label"
            )));
        }
        if labels.as_ref().is_some_and(|l| l.len() != classes) {
            return Err(bad(format!(
                "{} labels for {classes} classes",
                labels.as_ref().map_or(0, |l| l.len())
            )));
        }
        // Files written before links existed have none: the family's native one.
        let head = match v.get("link") {
            None => Head::new(family, classes, reference),
            Some(name) => {
                let link = name
                    .as_str()
                    .and_then(crate::family::MeanLink::parse)
                    .ok_or_else(|| bad(format!("unknown link {name}")))?;
                Head::new(family, classes, reference)
                    .with_link(link)
                    .map_err(bad)?
            }
        };
        let network = Network {
            inputs: features.len(),
            hidden,
            activation,
            head,
        };
        if let Some(twice) = crate::data::first_repeated(&features) {
            return Err(bad(format!("feature '{twice}' is listed twice")));
        }
        if network.checked_param_count() != Some(params.len()) {
            return Err(bad(format!(
                "{} parameters, the architecture needs {}",
                params.len(),
                network
                    .checked_param_count()
                    .map_or("more than 2^64".into(), |p| p.to_string())
            )));
        }
        if params.iter().any(|p| !p.is_finite()) {
            return Err(bad("non-finite parameters".into()));
        }
        // Files written before offsets existed have none.
        let offset: Option<Offset> = match v.get("offset") {
            None | Some(Value::Null) => None,
            Some(o) => Some(serde_json::from_value(o.clone()).map_err(|e| from("offset", e))?),
        };
        if let Some(o) = &offset {
            let layer = network.layers()[0];
            let last = features.len() - 1;
            let coefficient = params[layer.weights + last * layer.fan_out];
            if kind != ModelKind::Linear
                || layer.fan_out != 1
                || features[last] != o.column
                || coefficient != 1.0
            {
                return Err(bad(format!(
                    "the offset '{}' must be the last feature of a one-output linear model, \
                     with coefficient 1",
                    o.column
                )));
            }
        }
        let first = network.layers()[0];
        if !intercept
            && params[first.bias..first.bias + first.fan_out]
                .iter()
                .any(|&b| b != 0.0)
        {
            return Err(bad(
                "\"intercept\": false, but the intercepts in params are not 0".into(),
            ));
        }
        Ok(Model {
            kind,
            network,
            params,
            features,
            target,
            labels,
            string_labels,
            intercept,
            offset,
            training: v["training"].clone(),
        })
    }
}

impl Model {
    /// For each parameter: (class label for the categorical family, name) — `name` is a
    /// feature, `intercept`, or the head's global (`sigma`, `b`).
    pub fn param_keys(&self) -> Vec<(Option<String>, String)> {
        let mut keys = vec![(None, String::new()); self.network.param_count()];
        if let Some(l) = self
            .network
            .layers()
            .first()
            .filter(|_| self.kind == ModelKind::Linear)
        {
            let class = |o: usize| match (self.family(), &self.labels) {
                (FamilyName::Categorical, Some(labels)) => {
                    Some(labels[o + self.network.head.reference as usize].clone())
                }
                _ => None,
            };
            for o in 0..l.fan_out {
                for (j, f) in self.features.iter().enumerate() {
                    keys[l.weights + j * l.fan_out + o] = (class(o), f.clone());
                }
                keys[l.bias + o] = (class(o), "intercept".into());
            }
        }
        for (q, name) in self.network.head.global_names().iter().enumerate() {
            keys[self.network.globals_offset() + q] = (None, name.to_string());
        }
        keys
    }

    /// Values per parameter as JSON keyed like `coefficients` (globals at the top level);
    /// parameters without a value (`None`, e.g. a dropped intercept) are left out.
    pub fn keyed(&self, values: &[Option<f64>]) -> Value {
        let mut out = Map::new();
        for ((class, name), v) in self.param_keys().into_iter().zip(values) {
            let Some(v) = v else { continue };
            match class {
                Some(c) => {
                    let entry = out.entry(c).or_insert_with(|| Value::Object(Map::new()));
                    entry[name.as_str()] = json_f64(*v);
                }
                None => {
                    out.insert(name, json_f64(*v));
                }
            }
        }
        Value::Object(out)
    }

    /// Features that separate the classes on their own (complete or quasi-complete
    /// separation), for Bernoulli and categorical linear models: the MLE does not exist and
    /// coefficients drift. Also reports separation by a combination of features when every
    /// fitted probability of the observed class is within 1e-6 of 1; and for Poisson and
    /// exponential linear models, rows with y = 0 whose fitted means vanish (the MLE lies at
    /// the boundary, means of 0 for those rows, where it does not exist).
    pub fn separation(&self, x: &[f64], y: &[f64]) -> Vec<String> {
        let mut assessment = self.assessment(true);
        self.assess(x, y, &mut assessment);
        assessment.separation(self)
    }

    /// An empty [`Assessment`] of this model, to add rows to with [`Model::assess`]; with
    /// `separation`, it also gathers what the separation diagnosis needs (linear classifiers:
    /// every feature's range per class, an extra O(n d K) over the rows).
    pub fn assessment(&self, separation: bool) -> Assessment {
        let diagnose =
            separation && self.kind == ModelKind::Linear && self.network.head.is_classifier();
        let classes = match self.family() {
            FamilyName::Bernoulli => 2,
            _ => self.network.head.classes,
        };
        // Rows of zero counts drive a log mean to -inf, or an identity-link mean to the
        // boundary of its domain at 0.
        let counts = separation
            && self.kind == ModelKind::Linear
            && matches!(self.family(), FamilyName::Poisson | FamilyName::Exponential);
        Assessment {
            n: 0,
            nll: 0.0,
            hits: 0,
            perfect: true,
            zero_rows: counts.then_some(ZeroRows {
                finite_boundary: !self.network.head.has_native_link(),
                ..ZeroRows::default()
            }),
            ranges: if diagnose {
                vec![Range::default(); self.network.inputs * classes]
            } else {
                Vec::new()
            },
            classes,
            classifier: self.network.head.is_classifier(),
            deviance: Some(0.0),
            pearson: Some(0.0),
            // The statistics of no rows, to merge the parts into.
            // With an offset the null model is the intercept and the offset, whose MLE the
            // targets alone do not give: not computed.
            null: self
                .network
                .head
                .null_part(&[])
                .filter(|_| self.offset.is_none()),
            head: self.network.head,
        }
    }

    /// Adds rows (x row-major, their targets y) to `into`, in parallel blocks whose sums are
    /// added in a fixed order: chunks added one after the other give the sums of the whole.
    pub fn assess(&self, x: &[f64], y: &[f64], into: &mut Assessment) {
        use rayon::prelude::*;
        // The NLL is summed over blocks of 64 rows, as the engines' gradient passes sum it.
        const BLOCK: usize = 64;
        const BLOCKS_PER_TASK: usize = 64;
        let net = &self.network;
        let (d, g) = (net.inputs, net.globals_offset());
        let classifier = net.head.is_classifier();
        let classes = into.classes;
        let diagnose = !into.ranges.is_empty();
        let counts = into.zero_rows.is_some();
        let tasks: Vec<TaskSums> = y
            .par_chunks(BLOCK * BLOCKS_PER_TASK)
            .enumerate()
            .map(|(task, ys)| {
                let first = task * BLOCK * BLOCKS_PER_TASK;
                let mut ranges = vec![Range::default(); if diagnose { d * classes } else { 0 }];
                let (mut z, mut d_eta, mut d_globals) = (
                    Vec::new(),
                    vec![0.0; net.head.outputs()],
                    vec![0.0; net.head.globals()],
                );
                let (mut hits, mut perfect) = (0, true);
                let mut zero_rows = ZeroRows::default();
                let mut sums = Vec::with_capacity(BLOCKS_PER_TASK);
                let (mut deviance, mut pearson) = (Some(0.0), Some(0.0));
                for (b, block) in ys.chunks(BLOCK).enumerate() {
                    let mut sum = 0.0;
                    for (i, &yr) in block.iter().enumerate() {
                        let r = first + b * BLOCK + i;
                        let xr = &x[r * d..(r + 1) * d];
                        let eta = net.forward(&self.params, xr, &mut z);
                        sum +=
                            net.head
                                .nll(&eta, &self.params[g..], yr, &mut d_eta, &mut d_globals);
                        let mean = net.head.predict(&eta, &self.params[g..]);
                        deviance = deviance
                            .zip(net.head.unit_deviance(&mean, yr))
                            .map(|(a, b)| a + b);
                        pearson = pearson
                            .zip(net.head.variance(mean[0]))
                            .map(|(a, v)| a + (yr - mean[0]).powi(2) / v);
                        if counts {
                            zero_rows.add(mean[0], yr);
                        }
                        if !classifier {
                            continue;
                        }
                        hits += (net.head.predicted_class(&eta) == yr) as usize;
                        if diagnose {
                            let probs = net.head.predict(&eta, &self.params[g..]);
                            let p = match self.family() {
                                FamilyName::Bernoulli if yr == 1.0 => probs[0],
                                FamilyName::Bernoulli => 1.0 - probs[0],
                                _ => probs[yr as usize],
                            };
                            perfect &= p > 1.0 - 1e-6;
                            for (j, &v) in xr.iter().enumerate() {
                                for (c, range) in ranges[j * classes..(j + 1) * classes]
                                    .iter_mut()
                                    .enumerate()
                                {
                                    range.add(v, yr as usize == c);
                                }
                            }
                        }
                    }
                    sums.push(sum);
                }
                let null = net.head.null_part(ys);
                (
                    sums,
                    hits,
                    perfect,
                    ranges,
                    zero_rows,
                    [deviance, pearson],
                    null,
                )
            })
            .collect();
        for (sums, hits, perfect, ranges, zero_rows, [deviance, pearson], null) in tasks {
            into.deviance = into.deviance.zip(deviance).map(|(a, b)| a + b);
            into.pearson = into.pearson.zip(pearson).map(|(a, b)| a + b);
            into.null = match (into.null.take(), null) {
                (Some(mut total), Some(part)) => {
                    net.head.merge_null_part(&mut total, &part);
                    Some(total)
                }
                _ => None,
            };
            if let Some(z) = into.zero_rows.as_mut() {
                z.merge(&zero_rows);
            }
            for sum in sums {
                into.nll += sum;
            }
            into.hits += hits;
            into.perfect &= perfect;
            into.ranges
                .iter_mut()
                .zip(&ranges)
                .for_each(|(a, b)| a.merge(b));
        }
        into.n += y.len();
    }
}

/// One parallel task's share of an [`Assessment`]: its blocks' NLL sums, hits, whether
/// every row was predicted surely, the feature ranges, the zero rows, the sums of the unit
/// deviances and Pearson's terms, and the null model's statistics.
type TaskSums = (
    Vec<f64>,
    usize,
    bool,
    Vec<Range>,
    ZeroRows,
    [Option<f64>; 2],
    Option<Vec<f64>>,
);

/// Rows with y = 0 under a Poisson or exponential head: the smallest fitted mean among them,
/// and the rows and sum of y that give the mean of y to compare it with.
#[derive(Clone, Copy, Debug)]
struct ZeroRows {
    min_mean: f64,
    sum_y: f64,
    rows: usize,
    /// Whether the link reaches a mean of 0 at a finite eta (the identity link), where the
    /// MLE can lie on the boundary rather than at infinity.
    finite_boundary: bool,
}

impl Default for ZeroRows {
    fn default() -> Self {
        ZeroRows {
            min_mean: f64::INFINITY,
            sum_y: 0.0,
            rows: 0,
            finite_boundary: false,
        }
    }
}

impl ZeroRows {
    /// A zero row fitted below this fraction of the mean of y (its eta 23 below log mean):
    /// a finite MLE does not put a row there (its pull on the fit has vanished); a fit dragged
    /// towards the boundary where those rows' means are 0, where the MLE would be, does.
    const VANISHING: f64 = 1e-10;

    /// Under the identity link a mean approaches 0 linearly in the coefficients, not
    /// exponentially: a zero row fitted below this fraction of the mean of y sits at the
    /// boundary as closely as a fit gets to it.
    const AT_FINITE_BOUNDARY: f64 = 1e-6;

    fn add(&mut self, mean: f64, y: f64) {
        self.rows += 1;
        self.sum_y += y;
        if y == 0.0 {
            self.min_mean = self.min_mean.min(mean);
        }
    }

    fn merge(&mut self, other: &ZeroRows) {
        self.min_mean = self.min_mean.min(other.min_mean);
        self.sum_y += other.sum_y;
        self.rows += other.rows;
    }

    /// The diagnosis, if the smallest mean has vanished.
    fn boundary(&self) -> Option<String> {
        let mean_y = self.sum_y / self.rows.max(1) as f64;
        if self.rows > 0 && self.sum_y == 0.0 {
            return Some(
                "every y is 0: the likelihood grows without bound as the means go to 0".into(),
            );
        }
        if self.finite_boundary {
            return (self.min_mean < Self::AT_FINITE_BOUNDARY * mean_y).then(|| {
                format!(
                    "a row with y = 0 is fitted a mean of {:.3e} (the mean of y is {mean_y:.6e}): the maximum lies on the boundary of the link's domain, where that row's mean is 0 (a mean cannot be negative); the fit stops at the boundary, and its standard errors are not those of an interior optimum",
                    self.min_mean
                )
            });
        }
        (self.min_mean < Self::VANISHING * mean_y).then(|| {
            format!(
                "a row with y = 0 is fitted a mean of {:.3e} (the mean of y is {mean_y:.6e}): the rows with y = 0 are separable from the others by a combination of features, and the fit drifts towards means of 0 for them",
                self.min_mean
            )
        })
    }
}

/// A feature's range among one class's rows (`inside`) and among the other rows.
#[derive(Clone, Copy, Debug)]
struct Range {
    inside: (f64, f64),
    outside: (f64, f64),
}

impl Default for Range {
    fn default() -> Self {
        Range {
            inside: (f64::INFINITY, f64::NEG_INFINITY),
            outside: (f64::INFINITY, f64::NEG_INFINITY),
        }
    }
}

impl Range {
    fn add(&mut self, v: f64, inside: bool) {
        let r = if inside {
            &mut self.inside
        } else {
            &mut self.outside
        };
        *r = (r.0.min(v), r.1.max(v));
    }

    fn merge(&mut self, other: &Range) {
        self.inside = (
            self.inside.0.min(other.inside.0),
            self.inside.1.max(other.inside.1),
        );
        self.outside = (
            self.outside.0.min(other.outside.0),
            self.outside.1.max(other.outside.1),
        );
    }
}

/// What passes over rows with targets find about a fitted model: its NLL, a classifier's
/// hits, and (linear classifiers) the facts behind the separation diagnosis. Built by
/// [`Model::assessment`] and [`Model::assess`], a table in memory or chunk by chunk.
#[derive(Clone, Debug)]
pub struct Assessment {
    n: usize,
    nll: f64,
    hits: usize,
    /// Whether every row is predicted with probability > 1 - 1e-6 (linear classifiers).
    perfect: bool,
    /// Per feature j and class c (`j * classes + c`): the feature's ranges.
    ranges: Vec<Range>,
    /// Poisson and exponential linear models: the zero rows' fitted means.
    zero_rows: Option<ZeroRows>,
    /// 2 for the Bernoulli family, K for the categorical.
    classes: usize,
    classifier: bool,
    /// The sums of the unit deviances and of Pearson's terms (`None` where the family has
    /// none).
    deviance: Option<f64>,
    pearson: Option<f64>,
    /// The null model's statistics of the rows so far, merged in row order (`None` where the
    /// family's null model does not follow from slices); the head that merges them.
    null: Option<Vec<f64>>,
    head: Head,
}

impl Assessment {
    pub fn evaluation(&self) -> Evaluation {
        Evaluation {
            n: self.n,
            nll: self.nll,
            mean_nll: self.nll / self.n as f64,
            accuracy: self.classifier.then_some(self.hits as f64 / self.n as f64),
            deviance: self.deviance,
            pearson_chi2: self.pearson,
            null: self
                .null
                .as_ref()
                .filter(|_| self.n > 0)
                .map(|part| self.head.null_model_of(part)),
            null_part: self.null.clone().filter(|_| self.n > 0),
        }
    }

    /// The separation diagnosis (see [`Model::separation`]).
    pub fn separation(&self, model: &Model) -> Vec<String> {
        if let Some(zero_rows) = &self.zero_rows {
            return zero_rows.boundary().into_iter().collect();
        }
        if self.ranges.is_empty() {
            return Vec::new();
        }
        let label = |k: usize| {
            model
                .labels
                .as_ref()
                .map_or(k.to_string(), |l| l[k].clone())
        };
        let mut found = Vec::new();
        // (An offset's coefficient is held: it separates nothing the fit could follow.)
        for (j, feature) in model.features[..model.fitted_features()].iter().enumerate() {
            for c in 0..self.classes {
                let Range {
                    inside: (in_min, in_max),
                    outside: (out_min, out_max),
                } = self.ranges[j * self.classes + c];
                // A constant feature (collinear with the intercept) separates nothing.
                let constant = in_min == in_max && out_min == out_max && in_min == out_min;
                if !in_min.is_finite() || !out_min.is_finite() || constant {
                    continue;
                }
                let kind = |strict: bool| if strict { "complete" } else { "quasi-complete" };
                if in_min >= out_max {
                    found.push(format!(
                        "{} separation: feature '{feature}' >= {in_min} for every row of class {} and <= {out_max} for the others",
                        kind(in_min > out_max),
                        label(c)
                    ));
                } else if in_max <= out_min {
                    found.push(format!(
                        "{} separation: feature '{feature}' <= {in_max} for every row of class {} and >= {out_min} for the others",
                        kind(in_max < out_min),
                        label(c)
                    ));
                }
                if self.classes == 2 {
                    break;
                }
            }
        }
        if found.is_empty() && self.perfect {
            found.push("separation by a combination of features: every observation is predicted with probability > 1 - 1e-6".into());
        }
        found
    }
}
