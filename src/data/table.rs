//! Tables for conditional models: a target column and feature columns from a CSV or Parquet
//! file.

use super::rows::{TableStream, TargetCodec};
use super::LabelEncoder;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Features (row-major n x d) and, when present, the target.
#[derive(Clone, Debug)]
pub struct Table {
    pub path: PathBuf,
    pub n: usize,
    pub features: Vec<String>,
    /// n x d, row-major.
    pub x: Vec<f64>,
    pub target: String,
    /// The target (class indices for string labels); `None` when the file has no target column
    /// and it was optional.
    pub y: Option<Vec<f64>>,
    /// String class labels, sorted; value k of `y` is `labels[k]`.
    pub labels: Option<Vec<String>>,
}

/// How to read the target column.
pub enum TargetSpec<'a> {
    /// Training: numeric, or string labels when `allow_labels` (classes become the sorted labels).
    Train { allow_labels: bool },
    /// Evaluation with a saved model: string labels must be among `labels`; the column may be
    /// absent when `optional`.
    Known {
        labels: Option<&'a [String]>,
        optional: bool,
    },
    /// Predictions: the target column, if present, is not read (it is still not a feature).
    Ignore,
}

/// Reads `target` and `features` (default: every other column) from a CSV, Parquet or 2-D
/// `.npy` file into memory, in one pass.
pub fn load_table(
    path: &Path,
    target: &str,
    features: Option<&[String]>,
    spec: TargetSpec<'_>,
) -> Result<Table> {
    load_table_with_log(path, target, features, spec, None)
}

/// [`load_table`] with feature `log_feature` (if any) read as its logarithm
/// ([`TableStream::set_log_feature`]).
pub fn load_table_with_log(
    path: &Path,
    target: &str,
    features: Option<&[String]>,
    spec: TargetSpec<'_>,
    log_feature: Option<&str>,
) -> Result<Table> {
    let codec = match &spec {
        // The target's encoding (numbers or class labels) is decided once it is all read.
        TargetSpec::Train { allow_labels: true } => TargetCodec::Deferred,
        _ => TargetCodec::for_spec(&spec),
    };
    let mut stream = TableStream::open_with(path, target, features, &spec, codec)?;
    if let Some(name) = log_feature {
        stream.set_log_feature(name)?;
    }
    let d = stream.features.len();
    let capacity = stream.rows().unwrap_or(0);
    let (mut x, mut y) = (Vec::with_capacity(capacity * d), Vec::new());
    let mut text = TextTarget::default();
    let n = stream.for_each_chunk(|chunk| {
        x.append(&mut chunk.x);
        y.append(&mut chunk.y);
        chunk.cells.iter().for_each(|cell| text.push(cell));
        Ok(true)
    })?;
    debug_assert_eq!(x.len(), n * d);
    let (y, labels) = match (stream.has_target, &spec) {
        (false, _) => (None, None),
        (true, TargetSpec::Train { allow_labels: true }) if text.rows > 0 => {
            let (y, labels) = text.finish(path, target, |r, c| stream.location(r, c))?;
            (Some(y), labels)
        }
        (true, _) => (Some(y), stream.labels.clone()),
    };
    Ok(Table {
        path: path.to_path_buf(),
        n,
        features: stream.features.clone(),
        x,
        target: target.to_string(),
        y,
        labels,
    })
}

/// The target's index (if read), the feature names and their indices among `headers`.
/// With `target_only`, no features are selected (a pass over the target alone).
pub(super) fn select_columns(
    path: &Path,
    headers: &[String],
    target: &str,
    features: Option<&[String]>,
    spec: &TargetSpec<'_>,
    target_only: bool,
) -> Result<(Option<usize>, Vec<String>, Vec<usize>)> {
    if headers.iter().all(|h| h.is_empty()) {
        return Err(Error::data(
            path,
            "",
            "empty file: expected a header row naming the columns",
        ));
    }
    let find = |name: &str, what: &str| {
        if let Some(why) = super::duplicate_column(headers, name) {
            return Err(Error::data(path, "", why));
        }
        headers.iter().position(|h| h == name).ok_or_else(|| {
            Error::data(
                path,
                "",
                format!(
                    "no {what} column named '{name}'; columns are: {}{}",
                    headers.join(", "),
                    if headers.len() == 1 && headers[0].contains([';', '\t']) {
                        " (likely reads comma-separated files: is this one separated by ';' \
                         or tabs?)"
                    } else {
                        ""
                    }
                ),
            )
        })
    };
    let target_index = match (find(target, "target"), spec) {
        (_, TargetSpec::Ignore) => None,
        (Ok(i), _) => Some(i),
        (Err(_), TargetSpec::Known { optional: true, .. }) => None,
        (Err(e), _) => return Err(e),
    };
    let feature_names: Vec<String> = match features {
        Some(f) => f.to_vec(),
        None => headers
            .iter()
            .filter(|h| h.as_str() != target)
            .cloned()
            .collect(),
    };
    if feature_names.is_empty() && !target_only {
        return Err(Error::data(
            path,
            "",
            "no feature columns: the table needs at least one besides the target",
        ));
    }
    let feature_index: Vec<usize> = feature_names
        .iter()
        .map(|f| find(f, "feature"))
        .collect::<Result<_>>()?;
    if let Some(twice) = super::first_repeated(&feature_names) {
        return Err(Error::Usage(format!(
            "feature '{twice}' is listed twice in --features"
        )));
    }
    if let Some(t) = headers.iter().position(|h| h == target) {
        if feature_index.contains(&t) {
            return Err(Error::Usage(format!(
                "'{target}' is both the target and a feature"
            )));
        }
    }

    Ok((target_index, feature_names, feature_index))
}

/// Training targets read as text, encoded as they arrive: numbers while every cell is one,
/// and the cells as class labels (four bytes a row, see [`LabelEncoder`]).
struct TextTarget {
    rows: usize,
    /// Every cell's value while all are numbers; emptied at the first that is not.
    numbers: Vec<f64>,
    numeric: bool,
    labels: LabelEncoder,
}

impl Default for TextTarget {
    fn default() -> Self {
        TextTarget {
            rows: 0,
            numbers: Vec::new(),
            numeric: true,
            labels: LabelEncoder::default(),
        }
    }
}

impl TextTarget {
    fn push(&mut self, cell: &str) {
        self.rows += 1;
        if self.numeric {
            match cell.parse::<f64>() {
                Ok(v) => self.numbers.push(v),
                Err(_) => {
                    self.numeric = false;
                    self.numbers = Vec::new();
                }
            }
        }
        self.labels.push(cell);
    }

    /// Numbers when every cell is one, else class labels (the distinct cells, sorted).
    fn finish(
        self,
        path: &Path,
        target: &str,
        location: impl Fn(usize, &str) -> String,
    ) -> Result<(Vec<f64>, Option<Vec<String>>)> {
        if self.numeric {
            if let Some(r) = self.numbers.iter().position(|v| !v.is_finite()) {
                return Err(Error::data(
                    path,
                    location(r, target),
                    format!("value {} is not finite", self.numbers[r]),
                ));
            }
            return Ok((self.numbers, None));
        }
        let (y, labels) = self
            .labels
            .finish()
            .map_err(|e| Error::data(path, format!("column '{target}'"), e))?;
        Ok((y, Some(labels)))
    }
}
