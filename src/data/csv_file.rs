//! CSV with a header row; one column is read.

use crate::error::{Error, Result};
use std::path::Path;

/// Returns the column's values, its class labels if they were strings, and its name.
pub(super) fn parse(
    path: &Path,
    bytes: &[u8],
    column: Option<&str>,
    allow_labels: bool,
) -> Result<(Vec<f64>, Option<Vec<String>>, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
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
    // String class labels: classes are the distinct labels in sorted order.
    let mut labels: Vec<String> = cells.clone();
    labels.sort();
    labels.dedup();
    let values = cells
        .iter()
        .map(|c| labels.binary_search(c).expect("label is in the set") as f64)
        .collect();
    Ok((values, Some(labels), name))
}
