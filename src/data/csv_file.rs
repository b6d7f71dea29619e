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
    let headers = reader
        .headers()
        .map_err(|e| Error::data(path, "header", e.to_string()))?
        .clone();
    if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
        return Err(Error::data(
            path,
            "",
            "empty file: expected a header row naming the columns",
        ));
    }
    let names: Vec<&str> = headers.iter().collect();
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

    let mut cells: Vec<String> = Vec::new();
    let mut numbers: Vec<f64> = Vec::new();
    let mut numeric = true;
    let mut first_text: Option<(usize, String)> = None;
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            Error::data(
                path,
                format!("row {} (line {})", row + 1, row + 2),
                e.to_string(),
            )
        })?;
        let cell = record.get(index).unwrap_or("");
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
            Err(_) => {
                if first_text.is_none() {
                    first_text = Some((row, cell.to_string()));
                }
                numeric = false;
            }
        }
        if allow_labels {
            cells.push(cell.to_string());
        }
    }
    if numeric {
        return Ok((numbers, None, name));
    }
    let (row, text) = first_text.expect("a non-numeric cell was seen");
    if !allow_labels {
        return Err(Error::data(
            path,
            format!("row {} (line {}), column '{name}'", row + 1, row + 2),
            format!("non-numeric value '{text}'"),
        ));
    }
    let (values, labels) = super::classes_of(&cells);
    Ok((values, Some(labels), name))
}

/// A CSV reader over the file through a buffer: records are parsed as they are read.
pub(super) fn open(path: &Path) -> Result<csv::Reader<std::io::BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file)))
}
