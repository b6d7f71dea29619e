//! Reading observations from CSV, NumPy `.npy` and Parquet files, with errors that name the file,
//! row and column, and checks against the family's support.

mod csv_file;
mod npy;
mod parquet_file;
mod rows;
mod table;

pub use npy::{write_npy_f64, write_npy_f64_table, NpyReader};
pub use parquet_file::{Cells, ParquetColumn};
pub use rows::{cell_location, RowChunk, TableStream};
pub use table::{load_table, Table, TargetSpec};

use crate::error::{Error, Result};
use crate::family::{Family, FamilyName};
use std::path::{Path, PathBuf};

/// One column of observations as loaded from a file.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub values: Vec<f64>,
    /// Class names when the column held string labels (value k is `labels[k]`).
    pub labels: Option<Vec<String>>,
    pub path: PathBuf,
    /// The column the values came from, as the user would name it.
    pub column: String,
    kind: FileKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Csv,
    Npy,
    Parquet,
}

/// The formats likely reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Npy,
    Parquet,
}

impl FileFormat {
    /// By extension (.npy, .parquet, .pq), else by the file's first bytes; anything else is CSV.
    pub fn of(path: &Path) -> Result<FileFormat> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "npy" => return Ok(FileFormat::Npy),
            "parquet" | "pq" => return Ok(FileFormat::Parquet),
            _ => {}
        }
        use std::io::Read;
        let mut head = [0u8; 6];
        let mut file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let got = file.read(&mut head).unwrap_or(0);
        Ok(if head[..got].starts_with(npy::MAGIC) {
            FileFormat::Npy
        } else if head[..got].starts_with(parquet_file::MAGIC) {
            FileFormat::Parquet
        } else {
            FileFormat::Csv
        })
    }
}

/// String class labels as class indices: the classes are the distinct labels in sorted order.
pub(crate) fn classes_of(cells: &[String]) -> (Vec<f64>, Vec<String>) {
    let mut labels = cells.to_vec();
    labels.sort();
    labels.dedup();
    let values = cells
        .iter()
        .map(|c| labels.binary_search(c).expect("label is in the set") as f64)
        .collect();
    (values, labels)
}

impl Dataset {
    /// A dataset that is streamed from `path` rather than held in memory (no values).
    pub fn streamed(path: &Path, column: &str, format: FileFormat) -> Dataset {
        Dataset {
            values: Vec::new(),
            labels: None,
            path: path.to_path_buf(),
            column: column.to_string(),
            kind: match format {
                FileFormat::Parquet => FileKind::Parquet,
                _ => FileKind::Npy,
            },
        }
    }

    /// Where sample `i` sits in the file, for error messages.
    pub fn location(&self, i: usize) -> String {
        match self.kind {
            FileKind::Csv => format!("row {} (line {}), column '{}'", i + 1, i + 2, self.column),
            FileKind::Npy => format!("element {i}{}", self.column_suffix()),
            FileKind::Parquet => format!("row {}, column '{}'", i + 1, self.column),
        }
    }

    fn column_suffix(&self) -> String {
        if self.column.is_empty() {
            String::new()
        } else {
            format!(", column {}", self.column)
        }
    }

    /// Number of classes: `--classes`, else the labels seen (string labels) or max label + 1.
    pub fn classes(&self, requested: Option<usize>) -> Result<usize> {
        let seen = match &self.labels {
            Some(l) => l.len(),
            None => self.values.iter().fold(0.0f64, |m, &v| m.max(v)) as usize + 1,
        };
        match requested {
            Some(0) => Err(Error::Usage("--classes must be at least 1".into())),
            Some(k) if self.labels.is_some() && k < seen => Err(Error::Usage(format!(
                "--classes {k} is fewer than the {seen} distinct labels in {}",
                self.path.display()
            ))),
            Some(k) => Ok(k),
            None => Ok(seen),
        }
    }

    /// Checks every value against the family's support; the error names file, row and column.
    pub fn check_support(&self, family: &dyn Family) -> Result<()> {
        for (i, &x) in self.values.iter().enumerate() {
            if let Some(why) = family.support_error(x) {
                return Err(Error::data(
                    &self.path,
                    self.location(i),
                    format!("{why} of the {} family", family.name()),
                ));
            }
        }
        Ok(())
    }
}

/// Loads one column for `family` from CSV, `.npy` or Parquet (see [`FileFormat::of`]).
/// String labels are accepted for the categorical family only.
pub fn load(path: &Path, column: Option<&str>, family: FamilyName) -> Result<Dataset> {
    let allow_labels = family == FamilyName::Categorical;
    let dataset = match FileFormat::of(path)? {
        FileFormat::Npy => {
            let mut reader = NpyReader::open(path, column)?;
            let mut values = vec![0.0; reader.len()];
            reader.read(0, &mut values)?;
            Dataset {
                values,
                labels: None,
                path: path.to_path_buf(),
                column: reader.column_label().to_string(),
                kind: FileKind::Npy,
            }
        }
        FileFormat::Parquet => {
            let mut reader = ParquetColumn::open(path, column)?;
            let name = reader.column_label().to_string();
            let (values, labels) = match reader.read_all()? {
                Cells::Numbers(values) => (values, None),
                Cells::Text(cells) if allow_labels => {
                    let (values, labels) = classes_of(&cells);
                    (values, Some(labels))
                }
                Cells::Text(cells) => {
                    return Err(Error::data(
                        path,
                        format!("row 1, column '{name}'"),
                        format!(
                            "non-numeric value '{}': a string column holds class labels, \
                             which only the categorical family takes",
                            cells.first().map_or("", |c| c.as_str())
                        ),
                    ))
                }
            };
            Dataset {
                values,
                labels,
                path: path.to_path_buf(),
                column: name,
                kind: FileKind::Parquet,
            }
        }
        FileFormat::Csv => {
            let (values, labels, column) = csv_file::parse(path, column, allow_labels)?;
            Dataset {
                values,
                labels,
                path: path.to_path_buf(),
                column,
                kind: FileKind::Csv,
            }
        }
    };
    if dataset.values.is_empty() {
        return Err(Error::data(
            path,
            "",
            "no data rows: the file holds no observations",
        ));
    }
    if let Some(i) = dataset.values.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            path,
            dataset.location(i),
            format!(
                "value {} is not finite (NaN and infinities are not observations)",
                dataset.values[i]
            ),
        ));
    }
    Ok(dataset)
}
