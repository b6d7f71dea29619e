//! Reading observations from CSV, NumPy `.npy` and Parquet files, with errors that name the file,
//! row and column, and checks against the family's support.

mod csv_file;
mod csv_rows;
pub mod fuzz;
mod npy;
mod parquet_file;
mod rows;
mod samples;
mod table;

pub use npy::{write_npy_f64, write_npy_f64_table, NpyReader};
pub use parquet_file::{Cells, ParquetColumn};
pub use rows::{cell_location, RowChunk, TableStream};
pub use samples::{SampleValues, Samples, Weighted};
pub use table::{load_table, load_table_with_log, Table, TargetSpec};

use crate::error::{Error, Result};
use crate::family::{Family, FamilyName};
use std::path::{Path, PathBuf};

/// One column of observations as loaded from a file.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The samples at the width they were stored in (f32 where that is exact).
    pub values: Samples,
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

/// Distinct target values beyond which a text column is not taken for class labels.
pub const MAX_CLASSES: usize = 1 << 16;

/// Class labels read cell by cell. Each row keeps the index of its label among the distinct
/// labels seen so far, so a column costs four bytes per row and its distinct labels rather than
/// a string per row; past [`MAX_CLASSES`] distinct values it stops keeping them (the column is
/// then numbers, or not class labels).
#[derive(Default)]
pub(crate) struct LabelEncoder {
    ids: Vec<u32>,
    distinct: std::collections::HashMap<String, u32>,
    overflow: bool,
}

impl LabelEncoder {
    pub(crate) fn push(&mut self, cell: &str) {
        if self.overflow {
            return;
        }
        let next = self.distinct.len() as u32;
        let id = match self.distinct.get(cell) {
            Some(&id) => id,
            None => {
                self.distinct.insert(cell.to_string(), next);
                next
            }
        };
        self.ids.push(id);
        if self.distinct.len() > MAX_CLASSES {
            self.overflow = true;
            self.ids = Vec::new();
            self.distinct = Default::default();
        }
    }

    /// Class indices (the classes are the distinct labels in sorted order) and the labels;
    /// the error says why the column is not class labels.
    pub(crate) fn finish(self) -> std::result::Result<(Vec<f64>, Vec<String>), String> {
        if self.overflow {
            return Err(format!(
                "more than {MAX_CLASSES} distinct text values: not class labels"
            ));
        }
        let mut labels: Vec<(String, u32)> = self.distinct.into_iter().collect();
        labels.sort_unstable();
        let mut rank = vec![0u32; labels.len()];
        for (k, (_, id)) in labels.iter().enumerate() {
            rank[*id as usize] = k as u32;
        }
        let values = self
            .ids
            .iter()
            .map(|&id| rank[id as usize] as f64)
            .collect();
        Ok((values, labels.into_iter().map(|(label, _)| label).collect()))
    }
}

/// The first name that occurs again in `names`, if any.
pub fn first_repeated(names: &[String]) -> Option<&str> {
    names
        .iter()
        .enumerate()
        .find(|(i, n)| names[..*i].contains(n))
        .map(|(_, n)| n.as_str())
}

/// The message for a column name the header holds more than once, where a reader is asked
/// for it: which of them is meant is ambiguous.
pub(crate) fn duplicate_column(names: &[impl AsRef<str>], name: &str) -> Option<String> {
    let count = names.iter().filter(|n| n.as_ref() == name).count();
    (count > 1).then(|| {
        format!("the header names column '{name}' {count} times: give each column its own name")
    })
}

/// String class labels as class indices: the classes are the distinct labels in sorted order.
pub(crate) fn classes_of(cells: &[String]) -> std::result::Result<(Vec<f64>, Vec<String>), String> {
    let mut encoder = LabelEncoder::default();
    cells.iter().for_each(|c| encoder.push(c));
    encoder.finish()
}

impl Dataset {
    /// A dataset that is streamed from `path` rather than held in memory (no values).
    pub fn streamed(path: &Path, column: &str, format: FileFormat) -> Dataset {
        Dataset {
            values: Samples::empty(),
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
            FileKind::Csv => rows::csv_location(&self.path, i, &self.column),
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
            // Capped at MAX_CLASSES: a larger label is then named, with its row, by the
            // support check, instead of sizing a family of that many classes.
            None => {
                self.values
                    .summary()
                    .max
                    .clamp(0.0, (MAX_CLASSES - 1) as f64) as usize
                    + 1
            }
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

    /// Checks a column of frequency weights (`--weights`): every weight finite and at least
    /// 0 (a row of weight w counts as w rows), and their sum positive. The error names file,
    /// row and column.
    pub fn check_weights(&self) -> Result<()> {
        let bad = |w: f64| !(w.is_finite() && w >= 0.0);
        if let Some(i) = self.values.position(bad) {
            let w = self.values.get(i);
            let why = if w.is_finite() {
                format!(
                    "weight {w} is negative: a frequency weight counts its row w times (w >= 0)"
                )
            } else {
                format!("weight {w} is not finite")
            };
            return Err(Error::data(&self.path, self.location(i), why));
        }
        if self.values.position(|w| w > 0.0).is_none() {
            return Err(Error::data(
                &self.path,
                format!("column '{}'", self.column),
                "every weight is 0: a weighted fit needs at least one row of positive weight",
            ));
        }
        Ok(())
    }

    /// The values as right-censoring flags (`--censored`): 1 (the row's lifetime was still
    /// running at its value) or 0 (it ended there); anything else is an error naming file,
    /// row and column.
    pub fn censoring_flags(&self) -> Result<std::sync::Arc<[bool]>> {
        if let Some(i) = self.values.position(|f| f != 0.0 && f != 1.0) {
            let why = format!(
                "censoring flag {} is neither 0 nor 1 (1: the lifetime was still running at \
                 the row's value, right-censored; 0: it ended there, observed)",
                self.values.get(i)
            );
            return Err(Error::data(&self.path, self.location(i), why));
        }
        Ok(self.values.iter().map(|f| f == 1.0).collect())
    }

    /// Checks every value against the family's support; the error names file, row and column.
    pub fn check_support(&self, family: &dyn Family) -> Result<()> {
        if let Some(i) = self.values.position(|x| family.support_error(x).is_some()) {
            let why = invalid_sample(family, self.values.get(i)).unwrap_or_default();
            return Err(Error::data(&self.path, self.location(i), why));
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
            Dataset {
                values: reader.read_samples()?,
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
                Cells::Numbers(values) => (Samples::narrowest(values), None),
                Cells::Text(cells) if allow_labels => {
                    let (values, labels) = classes_of(&cells)
                        .map_err(|e| Error::data(path, format!("column '{name}'"), e))?;
                    (Samples::narrowest(values), Some(labels))
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
                values: Samples::narrowest_pieces(values),
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
    // The first value that is not finite or not in the family's support (with as many
    // classes as a categorical target may have: fewer given by --classes are checked later),
    // as a streamed read finds it.
    let checked = family.build(MAX_CLASSES);
    if let Some(i) = dataset
        .values
        .position(|v| !v.is_finite() || checked.support_error(v).is_some())
    {
        let why = invalid_sample(checked.as_ref(), dataset.values.get(i)).unwrap_or_default();
        return Err(Error::data(path, dataset.location(i), why));
    }
    Ok(dataset)
}

/// What is wrong with sample `x` for `family` (not finite, or outside the support), in the
/// words every reader uses, held or streamed; `None` for a valid sample.
pub(crate) fn invalid_sample(family: &dyn Family, x: f64) -> Option<String> {
    if !x.is_finite() {
        return Some(format!(
            "value {x} is not finite (NaN and infinities are not observations)"
        ));
    }
    family
        .support_error(x)
        .map(|why| format!("{why} of the {} family", family.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_numbered_in_sorted_order() {
        let cells = ["red", "blue", "red", "green", "blue", "10", "9"].map(String::from);
        let (values, labels) = classes_of(&cells).unwrap();
        assert_eq!(labels, ["10", "9", "blue", "green", "red"]);
        assert_eq!(values, [4.0, 2.0, 4.0, 3.0, 2.0, 0.0, 1.0]);
    }

    #[test]
    fn more_distinct_values_than_classes_are_not_labels() {
        let mut encoder = LabelEncoder::default();
        for i in 0..=MAX_CLASSES {
            encoder.push(&format!("c{i}"));
        }
        // Past the limit the encoder keeps nothing per row.
        assert!(encoder.ids.is_empty() && encoder.distinct.is_empty());
        encoder.push("c0");
        let err = encoder.finish().unwrap_err();
        assert!(err.contains("not class labels"), "{err}");
        let mut encoder = LabelEncoder::default();
        for i in 0..MAX_CLASSES {
            encoder.push(&format!("c{i:05}"));
        }
        let (values, labels) = encoder.finish().unwrap();
        assert_eq!(labels.len(), MAX_CLASSES);
        assert_eq!(values[MAX_CLASSES - 1], (MAX_CLASSES - 1) as f64);
    }

    #[test]
    fn an_in_memory_text_target_is_numbers_or_labels_as_a_whole() {
        let dir = std::env::temp_dir().join(format!("likely-text-target-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = || TargetSpec::Train { allow_labels: true };
        // Every cell a number: the target is numeric, however many distinct values it has.
        let path = dir.join("numbers.csv");
        let mut text = String::from("a,y\n");
        for r in 0..(MAX_CLASSES + 10) {
            text += &format!("{r},{}\n", r as f64 * 0.25);
        }
        std::fs::write(&path, &text).unwrap();
        let table = load_table(&path, "y", None, spec()).unwrap();
        assert!(table.labels.is_none());
        assert_eq!(
            table.y.as_ref().unwrap()[MAX_CLASSES + 9],
            (MAX_CLASSES + 9) as f64 * 0.25
        );
        // A number among labels is one more label.
        let path = dir.join("labels.csv");
        std::fs::write(&path, "a,y\n1,cat\n2,7\n3,dog\n4,cat\n").unwrap();
        let table = load_table(&path, "y", None, spec()).unwrap();
        assert_eq!(table.labels.unwrap(), ["7", "cat", "dog"]);
        assert_eq!(table.y.unwrap(), [1.0, 0.0, 2.0, 1.0]);
        // A non-finite number in a numeric column is an error naming its row.
        let path = dir.join("inf.csv");
        std::fs::write(&path, "a,y\n1,0.5\n2,inf\n").unwrap();
        let err = load_table(&path, "y", None, spec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not finite") && err.contains("row 2"), "{err}");
        // Too many distinct labels: not a categorical target.
        let path = dir.join("many.csv");
        let mut text = String::from("a,y\n");
        for r in 0..=MAX_CLASSES {
            text += &format!("{r},k{r}\n");
        }
        std::fs::write(&path, &text).unwrap();
        let err = load_table(&path, "y", None, spec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not class labels"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
