//! CSV with a header row; one column is read, streamed from the file record by record (the
//! file is never held in memory as one string).

use crate::error::{Error, Result};
use std::path::Path;

/// Returns the column's values, its class labels if they were strings, and its name.
pub(super) fn parse(
    path: &Path,
    column: Option<&str>,
    allow_labels: bool,
) -> Result<(Vec<f64>, Option<Vec<String>>, String)> {
    let mut reader = open(path)?;
    let headers = headers(path, &mut reader)?;
    if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
        return Err(Error::data(
            path,
            "",
            "empty file: expected a header row naming the columns",
        ));
    }
    let names: Vec<&str> = headers.iter().map(String::as_str).collect();
    if let Some(why) = column.and_then(|c| super::duplicate_column(&names, c)) {
        return Err(Error::data(path, "", why));
    }
    let index = match column {
        Some(c) => names.iter().position(|h| *h == c).ok_or_else(|| {
            Error::data(
                path,
                "",
                format!("no column named '{c}'; columns are: {}", names.join(", ")),
            )
        })?,
        None if names.len() == 1 => 0,
        None => {
            return Err(Error::data(
                path,
                "",
                format!(
                    "{} columns ({}): choose one with --column NAME",
                    names.len(),
                    names.join(", ")
                ),
            ))
        }
    };
    let name = names[index].to_string();

    let mut labels = super::LabelEncoder::default();
    let mut numbers: Vec<f64> = Vec::new();
    let mut numeric = true;
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
        let cell = record.get(index).unwrap_or("").trim();
        if cell.is_empty() {
            return Err(Error::data(
                path,
                format!("row {} (line {}), column '{name}'", row + 1, row + 2),
                "empty cell",
            ));
        }
        match cell.parse::<f64>() {
            Ok(v) if numeric => numbers.push(v),
            Ok(_) => {}
            Err(_) if !allow_labels => {
                return Err(Error::data(
                    path,
                    format!("row {} (line {}), column '{name}'", row + 1, row + 2),
                    format!("non-numeric value '{cell}'"),
                ));
            }
            Err(_) => {
                numeric = false;
                numbers = Vec::new();
            }
        }
        if allow_labels {
            labels.push(cell);
        }
    }
    if numeric {
        return Ok((numbers, None, name));
    }
    let (values, labels) = labels
        .finish()
        .map_err(|e| Error::data(path, format!("column '{name}'"), e))?;
    Ok((values, Some(labels), name))
}

/// The header row's names, without surrounding whitespace.
pub(super) fn headers(path: &Path, reader: &mut CsvReader) -> Result<Vec<String>> {
    Ok(reader
        .headers()
        .map_err(|e| Error::data(path, "header", e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect())
}

pub(super) type CsvReader = csv::Reader<std::io::BufReader<std::fs::File>>;

/// A CSV reader over the file through a buffer: records are parsed as they are read. Cells
/// are trimmed by the callers, only those they use (the reader's own trimming copies every
/// record).
pub(super) fn open(path: &Path) -> Result<CsvReader> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file)))
}
