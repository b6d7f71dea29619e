//! Tables for conditional models: a target column and feature columns from a CSV or Parquet
//! file.

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

/// Where a CSV cell is: the data row and the file line (after the header).
fn location(row: usize, column: &str) -> String {
    format!("row {} (line {}), column '{column}'", row + 1, row + 2)
}

/// Where a Parquet cell is.
fn parquet_location(row: usize, column: &str) -> String {
    format!("row {}, column '{column}'", row + 1)
}

/// Reads `target` and `features` (default: every other column) from a CSV or Parquet file.
pub fn load_table(
    path: &Path,
    target: &str,
    features: Option<&[String]>,
    spec: TargetSpec<'_>,
) -> Result<Table> {
    if super::FileFormat::of(path)? == super::FileFormat::Parquet {
        return load_parquet_table(path, target, features, spec);
    }
    let mut reader = super::csv_file::open(path)?;
    let headers = super::csv_file::headers(path, &mut reader)?;
    let (target_index, feature_names, feature_index) =
        select_columns(path, &headers, target, features, &spec)?;

    let d = feature_names.len();
    let mut x = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    let mut n = 0;
    // One record buffer reused for every row.
    let mut record = csv::StringRecord::new();
    for row in 0.. {
        let more = reader.read_record(&mut record).map_err(|e| {
            Error::data(
                path,
                format!("row {} (line {})", row + 1, row + 2),
                e.to_string(),
            )
        })?;
        if !more {
            break;
        }
        for (&i, name) in feature_index.iter().zip(&feature_names) {
            let cell = record.get(i).unwrap_or("").trim();
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
            let cell = record.get(t).unwrap_or("").trim();
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
            let (y, labels) = encode_target(path, target, &cells, spec, location)?;
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

/// A table from a Parquet file, read column by column (numbers; string targets as labels).
fn load_parquet_table(
    path: &Path,
    target: &str,
    features: Option<&[String]>,
    spec: TargetSpec<'_>,
) -> Result<Table> {
    use super::{Cells, ParquetColumn};
    let headers = super::parquet_file::column_names(path)?;
    let (target_index, feature_names, _) = select_columns(path, &headers, target, features, &spec)?;
    let d = feature_names.len();
    let mut x = Vec::new();
    let mut n = 0;
    for (c, name) in feature_names.iter().enumerate() {
        let mut column = ParquetColumn::open(path, Some(name))?;
        let values = match column.read_all()? {
            Cells::Numbers(v) => v,
            Cells::Text(cells) => {
                return Err(Error::data(
                    path,
                    parquet_location(0, name),
                    format!(
                        "non-numeric feature value '{}'",
                        cells.first().map_or("", |s| s.as_str())
                    ),
                ))
            }
        };
        if let Some(r) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                path,
                parquet_location(r, name),
                format!("value {} is not finite", values[r]),
            ));
        }
        if c == 0 {
            n = values.len();
            x = vec![0.0; n * d];
        }
        for (r, v) in values.into_iter().enumerate() {
            x[r * d + c] = v;
        }
    }
    if n == 0 {
        return Err(Error::data(
            path,
            "",
            "no data rows: the file holds no observations",
        ));
    }
    let table = Table {
        path: path.to_path_buf(),
        n,
        features: feature_names,
        x,
        target: target.to_string(),
        y: None,
        labels: None,
    };
    let (y, labels) = match target_index {
        None => (None, None),
        Some(_) => {
            let known_labels = matches!(
                spec,
                TargetSpec::Known {
                    labels: Some(_),
                    ..
                }
            );
            let cells = match ParquetColumn::open(path, Some(target))?.read_all()? {
                Cells::Numbers(values) if !known_labels => {
                    if let Some(r) = values.iter().position(|v| !v.is_finite()) {
                        return Err(Error::data(
                            path,
                            parquet_location(r, target),
                            format!("value {} is not finite", values[r]),
                        ));
                    }
                    return Ok(Table {
                        y: Some(values),
                        labels: None,
                        ..table
                    });
                }
                // Numbers matched against a saved model's class labels, as text.
                Cells::Numbers(values) => values.iter().map(|v| v.to_string()).collect(),
                Cells::Text(cells) => cells,
            };
            let (y, labels) = encode_target(path, target, &cells, spec, parquet_location)?;
            (Some(y), labels)
        }
    };
    Ok(Table { y, labels, ..table })
}

/// The target's index (if read), the feature names and their indices among `headers`.
fn select_columns(
    path: &Path,
    headers: &[String],
    target: &str,
    features: Option<&[String]>,
    spec: &TargetSpec<'_>,
) -> Result<(Option<usize>, Vec<String>, Vec<usize>)> {
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

    Ok((target_index, feature_names, feature_index))
}

fn encode_target(
    path: &Path,
    target: &str,
    cells: &[String],
    spec: TargetSpec<'_>,
    location: fn(usize, &str) -> String,
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
            let (y, labels) = super::classes_of(cells);
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
