//! Reading observations from CSV and NumPy `.npy` files, with errors that name the file,
//! row and column, and checks against the family's support.

mod csv_file;
mod npy;
mod table;

pub use npy::{write_npy_f64, NpyReader};
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
}

impl Dataset {
    /// A dataset that is streamed from `path` rather than held in memory (no values).
    pub fn streamed(path: &Path, column: &str) -> Dataset {
        Dataset {
            values: Vec::new(),
            labels: None,
            path: path.to_path_buf(),
            column: column.to_string(),
            kind: FileKind::Npy,
        }
    }

    /// Where sample `i` sits in the file, for error messages.
    pub fn location(&self, i: usize) -> String {
        match self.kind {
            FileKind::Csv => format!("row {} (line {}), column '{}'", i + 1, i + 2, self.column),
            FileKind::Npy => format!("element {i}{}", self.column_suffix()),
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

/// Loads one column for `family`: `.npy` by extension (or magic), anything else as CSV.
/// String labels are accepted for the categorical family only.
pub fn load(path: &Path, column: Option<&str>, family: FamilyName) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
        || bytes.starts_with(npy::MAGIC);
    let dataset = if is_npy {
        let (values, column) = npy::parse(path, &bytes, column)?;
        Dataset {
            values,
            labels: None,
            path: path.to_path_buf(),
            column,
            kind: FileKind::Npy,
        }
    } else {
        let allow_labels = family == FamilyName::Categorical;
        let (values, labels, column) = csv_file::parse(path, &bytes, column, allow_labels)?;
        Dataset {
            values,
            labels,
            path: path.to_path_buf(),
            column,
            kind: FileKind::Csv,
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
