//! Tables for conditional models: a target column and feature columns from a CSV file.

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

fn location(row: usize, column: &str) -> String {
    format!("row {} (line {}), column '{column}'", row + 1, row + 2)
}

/// Reads `target` and `features` (default: every other column) from a CSV file.
pub fn load_table(
    path: &Path,
    target: &str,
    features: Option<&[String]>,
    spec: TargetSpec<'_>,
) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::data(path, "header", e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(Error::data(
            path,
            "",
            "empty file: expected a header row naming the columns",
        ));
    }
    let find = |name: &str, what: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            Error::data(
                path,
                "",
                format!(
                    "no {what} column named '{name}'; columns are: {}",
                    headers.join(", ")
                ),
            )
        })
    };
    let target_index = match (find(target, "target"), &spec) {
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
    if feature_names.is_empty() {
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
    if let Some(t) = headers.iter().position(|h| h == target) {
        if feature_index.contains(&t) {
            return Err(Error::Usage(format!(
                "'{target}' is both the target and a feature"
            )));
        }
    }

    let d = feature_names.len();
    let mut x = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    let mut n = 0;
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            Error::data(
                path,
                format!("row {} (line {})", row + 1, row + 2),
                e.to_string(),
            )
        })?;
        for (&i, name) in feature_index.iter().zip(&feature_names) {
            let cell = record.get(i).unwrap_or("");
            let v: f64 = cell.parse().map_err(|_| {
                let what = if cell.is_empty() {
                    "empty cell".to_string()
                } else {
                    format!("non-numeric feature value '{cell}'")
                };
                Error::data(path, location(row, name), what)
            })?;
            if !v.is_finite() {
                return Err(Error::data(
                    path,
                    location(row, name),
                    format!("value {v} is not finite"),
                ));
            }
            x.push(v);
        }
        if let Some(t) = target_index {
            let cell = record.get(t).unwrap_or("");
            if cell.is_empty() {
                return Err(Error::data(path, location(row, target), "empty cell"));
            }
            cells.push(cell.to_string());
        }
        n += 1;
    }
    if n == 0 {
        return Err(Error::data(
            path,
            "",
            "no data rows: the file holds no observations",
        ));
    }
    debug_assert_eq!(x.len(), n * d);
    let (y, labels) = match target_index {
        None => (None, None),
        Some(_) => {
            let (y, labels) = encode_target(path, target, &cells, spec)?;
            (Some(y), labels)
        }
    };
    Ok(Table {
        path: path.to_path_buf(),
        n,
        features: feature_names,
        x,
        target: target.to_string(),
        y,
        labels,
    })
}

fn encode_target(
    path: &Path,
    target: &str,
    cells: &[String],
    spec: TargetSpec<'_>,
) -> Result<(Vec<f64>, Option<Vec<String>>)> {
    let numeric: Option<Vec<f64>> = cells.iter().map(|c| c.parse::<f64>().ok()).collect();
    let known = match spec {
        TargetSpec::Known {
            labels: Some(l), ..
        } => Some(l),
        _ => None,
    };
    if let (Some(values), None) = (&numeric, known) {
        if let Some(r) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                path,
                location(r, target),
                format!("value {} is not finite", values[r]),
            ));
        }
        return Ok((values.clone(), None));
    }
    match (spec, known) {
        (_, Some(labels)) => {
            let y = cells
                .iter()
                .enumerate()
                .map(|(r, c)| {
                    labels
                        .iter()
                        .position(|l| l == c)
                        .map(|k| k as f64)
                        .ok_or_else(|| {
                            Error::data(
                                path,
                                location(r, target),
                                format!(
                                    "class '{c}' was not seen in training (classes: {})",
                                    labels.join(", ")
                                ),
                            )
                        })
                })
                .collect::<Result<_>>()?;
            Ok((y, Some(labels.to_vec())))
        }
        (TargetSpec::Train { allow_labels: true }, None) => {
            let mut labels = cells.to_vec();
            labels.sort();
            labels.dedup();
            let y = cells
                .iter()
                .map(|c| labels.binary_search(c).expect("label in set") as f64)
                .collect();
            Ok((y, Some(labels)))
        }
        _ => {
            let r = cells
                .iter()
                .position(|c| c.parse::<f64>().is_err())
                .unwrap_or(0);
            Err(Error::data(
                path,
                location(r, target),
                format!("non-numeric target value '{}'", cells[r]),
            ))
        }
    }
}
