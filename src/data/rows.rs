//! Tables read in chunks of rows, from a CSV file, a Parquet file, a 2-D `.npy` array or
//! memory. Streamed model fits, `eval` and `predict` pass over a table chunk by chunk, so
//! host memory holds a few chunks whatever the file's size; [`super::load_table`] collects
//! the chunks of one pass.
//!
//! Every cell is checked as it is read (a number, finite, a known class label), and errors
//! name the file, row and column.

use super::csv_file;
use super::csv_rows::{self, Columns, CsvRows};
use super::npy::NpyReader;
use super::parquet_file::ParquetColumn;
use super::table::{select_columns, Table, TargetSpec};
use super::{FileFormat, MAX_CLASSES};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Consecutive rows of a table.
#[derive(Clone, Debug, Default)]
pub struct RowChunk {
    /// Index of the chunk's first row in the table.
    pub first: usize,
    /// Rows in the chunk.
    pub rows: usize,
    /// Features, `rows x d` row-major.
    pub x: Vec<f64>,
    /// Targets: numbers or class indices (empty when the target is not read, or read as text).
    pub y: Vec<f64>,
    /// Target cells as text, when their encoding is decided once the whole column is read.
    pub cells: Vec<String>,
}

impl RowChunk {
    pub(super) fn clear(&mut self, first: usize) {
        self.first = first;
        self.rows = 0;
        self.x.clear();
        self.y.clear();
        self.cells.clear();
    }
}

/// How target cells become numbers.
#[derive(Clone, Debug)]
pub(super) enum TargetCodec {
    /// The target is not read.
    Absent,
    /// Numbers; anything else is an error.
    Numeric,
    /// Class labels, sorted: a cell's value is its index.
    Labels(Arc<Vec<String>>),
    /// Text cells are kept in [`RowChunk::cells`] (numbers go to `y`), to be encoded once the
    /// whole column is known.
    Deferred,
}

impl TargetCodec {
    /// The encoding a spec asks for, with training labels learnt beforehand (`None`).
    pub(super) fn for_spec(spec: &TargetSpec<'_>) -> TargetCodec {
        match spec {
            TargetSpec::Train { .. } | TargetSpec::Known { labels: None, .. } => {
                TargetCodec::Numeric
            }
            TargetSpec::Known {
                labels: Some(l), ..
            } => TargetCodec::Labels(Arc::new(l.to_vec())),
            TargetSpec::Ignore => TargetCodec::Absent,
        }
    }

    /// Appends a numeric cell (Parquet, .npy); the error is what is wrong with the cell.
    fn number(&self, v: f64, chunk: &mut RowChunk) -> std::result::Result<(), String> {
        match self {
            TargetCodec::Absent => Ok(()),
            TargetCodec::Numeric | TargetCodec::Deferred if v.is_finite() => {
                chunk.y.push(v);
                Ok(())
            }
            TargetCodec::Numeric | TargetCodec::Deferred => Err(format!("value {v} is not finite")),
            // Numbers matched against class labels as text.
            TargetCodec::Labels(_) => self.text(&v.to_string(), chunk),
        }
    }

    /// Appends a text cell (CSV, Parquet strings).
    pub(super) fn text(&self, cell: &str, chunk: &mut RowChunk) -> std::result::Result<(), String> {
        match self {
            TargetCodec::Absent => Ok(()),
            TargetCodec::Numeric => match cell.parse::<f64>() {
                Ok(v) => self.number(v, chunk),
                Err(_) => Err(format!("non-numeric target value '{cell}'")),
            },
            TargetCodec::Labels(labels) => {
                match labels.binary_search_by(|l| l.as_str().cmp(cell)) {
                    Ok(k) => {
                        chunk.y.push(k as f64);
                        Ok(())
                    }
                    Err(_) => Err(format!(
                        "class '{cell}' was not seen in training (classes: {})",
                        labels.join(", ")
                    )),
                }
            }
            TargetCodec::Deferred => {
                chunk.cells.push(cell.to_string());
                Ok(())
            }
        }
    }
}

/// Where a CSV cell is: the data row and its file line (read from the file: blank lines and
/// quoted line breaks move it), for error messages.
pub(super) fn csv_location(path: &Path, row: usize, column: &str) -> String {
    match csv_file::line_of_row(path, row) {
        Some(line) => format!("row {} (line {line}), column '{column}'", row + 1),
        None => format!("row {}, column '{column}'", row + 1),
    }
}

/// Where a Parquet or .npy cell is.
pub(super) fn row_location(row: usize, column: &str) -> String {
    format!("row {}, column '{column}'", row + 1)
}

/// Where a cell of the file at `path` in `format` is (a table in memory, `None`, as .npy).
pub fn cell_location(format: Option<FileFormat>, path: &Path, row: usize, column: &str) -> String {
    match format {
        Some(FileFormat::Csv) => csv_location(path, row, column),
        _ => row_location(row, column),
    }
}

/// A feature cell that is not a finite number.
pub(super) fn not_finite(v: f64) -> String {
    format!("value {v} is not finite")
}

/// A source of rows, read in order.
pub(super) trait RowReader: Send {
    /// Appends up to `max_rows` rows to `chunk`; returns how many (0 at the end).
    fn read(&mut self, max_rows: usize, chunk: &mut RowChunk) -> Result<usize>;
    /// Starts again from the first row.
    fn rewind(&mut self) -> Result<()>;
}

struct ParquetRows {
    path: PathBuf,
    features: Vec<ParquetColumn>,
    target: Option<ParquetColumn>,
    codec: TargetCodec,
    row: usize,
    numbers: Vec<f64>,
    text: Vec<String>,
}

impl RowReader for ParquetRows {
    fn read(&mut self, max_rows: usize, chunk: &mut RowChunk) -> Result<usize> {
        let d = self.features.len();
        let base = chunk.x.len();
        let mut got = None;
        let mismatch = |path: &Path, name: &str| {
            Error::data(
                path,
                format!("column '{name}'"),
                "has a different number of rows from the other columns",
            )
        };
        for (c, column) in self.features.iter_mut().enumerate() {
            column.set_batch_rows(max_rows);
            self.numbers.clear();
            let rows = column.read_next(max_rows, &mut self.numbers, &mut self.text)?;
            let rows = match got {
                None => {
                    chunk.x.resize(base + rows * d, 0.0);
                    *got.insert(rows)
                }
                Some(g) if g == rows => g,
                Some(_) => return Err(mismatch(&self.path, column.column_label())),
            };
            for (i, &v) in self.numbers[..rows].iter().enumerate() {
                if !v.is_finite() {
                    return Err(Error::data(
                        &self.path,
                        row_location(self.row + i, column.column_label()),
                        not_finite(v),
                    ));
                }
                chunk.x[base + i * d + c] = v;
            }
        }
        if let Some(column) = &mut self.target {
            column.set_batch_rows(max_rows);
            self.numbers.clear();
            self.text.clear();
            let rows = column.read_next(max_rows, &mut self.numbers, &mut self.text)?;
            if got.is_some_and(|g| g != rows) {
                return Err(mismatch(&self.path, column.column_label()));
            }
            got = Some(rows);
            let name = column.column_label();
            for i in 0..rows {
                let checked = if column.is_text() {
                    self.codec.text(&self.text[i], chunk)
                } else {
                    self.codec.number(self.numbers[i], chunk)
                };
                checked
                    .map_err(|m| Error::data(&self.path, row_location(self.row + i, name), m))?;
            }
        }
        let rows = got.unwrap_or(0);
        self.row += rows;
        chunk.rows += rows;
        Ok(rows)
    }

    fn rewind(&mut self) -> Result<()> {
        self.features.iter_mut().for_each(ParquetColumn::rewind);
        if let Some(t) = &mut self.target {
            t.rewind();
        }
        self.row = 0;
        Ok(())
    }
}

struct NpyRows {
    path: PathBuf,
    reader: NpyReader,
    features: Vec<(usize, String)>,
    target: Option<(usize, String)>,
    codec: TargetCodec,
    row: usize,
    buffer: Vec<f64>,
}

impl RowReader for NpyRows {
    fn read(&mut self, max_rows: usize, chunk: &mut RowChunk) -> Result<usize> {
        let cols = self.reader.columns();
        let rows = max_rows.min(self.reader.len() - self.row);
        self.buffer.resize(rows * cols, 0.0);
        self.reader.read_rows(self.row, &mut self.buffer)?;
        for (i, values) in self.buffer.chunks_exact(cols).enumerate() {
            for (c, name) in &self.features {
                let v = values[*c];
                if !v.is_finite() {
                    return Err(Error::data(
                        &self.path,
                        row_location(self.row + i, name),
                        not_finite(v),
                    ));
                }
                chunk.x.push(v);
            }
            if let Some((t, name)) = &self.target {
                self.codec
                    .number(values[*t], chunk)
                    .map_err(|m| Error::data(&self.path, row_location(self.row + i, name), m))?;
            }
        }
        self.row += rows;
        chunk.rows += rows;
        Ok(rows)
    }

    fn rewind(&mut self) -> Result<()> {
        self.row = 0;
        Ok(())
    }
}

/// Rows of a table already in memory (streamed through a GPU whose memory it exceeds).
struct MemoryRows {
    table: Arc<Table>,
    row: usize,
}

impl RowReader for MemoryRows {
    fn read(&mut self, max_rows: usize, chunk: &mut RowChunk) -> Result<usize> {
        let t = &self.table;
        let d = t.features.len();
        let rows = max_rows.min(t.n - self.row);
        let range = self.row..self.row + rows;
        chunk
            .x
            .extend_from_slice(&t.x[range.start * d..range.end * d]);
        if let Some(y) = &t.y {
            chunk.y.extend_from_slice(&y[range]);
        }
        self.row += rows;
        chunk.rows += rows;
        Ok(rows)
    }

    fn rewind(&mut self) -> Result<()> {
        self.row = 0;
        Ok(())
    }
}

/// Rows per chunk unless set: 64 Ki.
const DEFAULT_CHUNK_ROWS: usize = 1 << 16;

/// A table read chunk by chunk: its columns, the target's class labels, and passes over its
/// rows.
pub struct TableStream {
    pub path: PathBuf,
    pub features: Vec<String>,
    pub target: String,
    /// Class labels of a string target, sorted (class k is `labels[k]`).
    pub labels: Option<Vec<String>>,
    /// Whether the target is read.
    pub has_target: bool,
    /// The file's format (`None` for a table in memory).
    format: Option<FileFormat>,
    reader: Box<dyn RowReader>,
    chunk_rows: usize,
    /// Rows in the table: known up front for Parquet, .npy and memory, and after a pass for CSV.
    rows: Option<usize>,
    /// A feature read as its logarithm (an exposure, whose log is a model's offset): its
    /// index among `features`; every value must be positive.
    log_feature: Option<usize>,
}

impl TableStream {
    /// Opens `target` and `features` (default: every other column) of a CSV, Parquet or 2-D
    /// `.npy` table (whose columns are named by index: "0", "1", ...). String targets for
    /// training (`allow_labels`) are read once here to learn the class labels.
    pub fn open(
        path: &Path,
        target: &str,
        features: Option<&[String]>,
        spec: TargetSpec<'_>,
    ) -> Result<TableStream> {
        let mut stream = match spec {
            // Only text can hold labels: a .npy array or a numeric Parquet column is read as
            // numbers without a pass over it.
            TargetSpec::Train { allow_labels: true } if !Self::may_hold_text(path, target)? => {
                Self::open_with(path, target, features, &spec, TargetCodec::Numeric)?
            }
            TargetSpec::Train { allow_labels: true } => {
                let mut scan =
                    Self::open_with(path, target, Some(&[]), &spec, TargetCodec::Deferred)?;
                let labels = scan.class_labels()?;
                let codec = match &labels {
                    Some(l) => TargetCodec::Labels(Arc::new(l.clone())),
                    None => TargetCodec::Numeric,
                };
                let mut stream = Self::open_with(path, target, features, &spec, codec)?;
                stream.labels = labels;
                stream.rows = scan.rows;
                stream
            }
            _ => Self::open_with(path, target, features, &spec, TargetCodec::for_spec(&spec))?,
        };
        if let TargetSpec::Known {
            labels: Some(l), ..
        } = spec
        {
            stream.labels = Some(l.to_vec());
        }
        Ok(stream)
    }

    /// Whether column `target` of the file may hold text: CSV cells may, a .npy array's may
    /// not, a Parquet column's by its type (a missing column is reported when it is read).
    fn may_hold_text(path: &Path, target: &str) -> Result<bool> {
        Ok(match FileFormat::of(path)? {
            FileFormat::Csv => true,
            FileFormat::Npy => false,
            FileFormat::Parquet => {
                ParquetColumn::open(path, Some(target)).map_or(true, |c| c.is_text())
            }
        })
    }

    /// The columns and a reader; `features` `Some(&[])` reads the target alone.
    pub(super) fn open_with(
        path: &Path,
        target: &str,
        features: Option<&[String]>,
        spec: &TargetSpec<'_>,
        codec: TargetCodec,
    ) -> Result<TableStream> {
        let format = FileFormat::of(path)?;
        let target_only = features.is_some_and(|f| f.is_empty());
        let (headers, npy) = match format {
            FileFormat::Csv => {
                let mut reader = csv_file::open(path)?;
                (csv_file::headers(path, &mut reader)?, None)
            }
            FileFormat::Parquet => (super::parquet_file::column_names(path)?, None),
            FileFormat::Npy => {
                let reader = NpyReader::open_table(path)?;
                (
                    (0..reader.columns()).map(|c| c.to_string()).collect(),
                    Some(reader),
                )
            }
        };
        let (target_index, feature_names, feature_index) =
            select_columns(path, &headers, target, features, spec, target_only)?;
        let codec = if target_index.is_some() {
            codec
        } else {
            TargetCodec::Absent
        };
        let named = |indices: &[usize], names: &[String]| -> Vec<(usize, String)> {
            indices.iter().copied().zip(names.iter().cloned()).collect()
        };
        let target_column = target_index.map(|t| (t, headers[t].clone()));
        let (reader, rows): (Box<dyn RowReader>, Option<usize>) = match (format, npy) {
            (FileFormat::Npy, Some(reader)) => {
                let rows = reader.len();
                (
                    Box::new(NpyRows {
                        path: path.to_path_buf(),
                        reader,
                        features: named(&feature_index, &feature_names),
                        target: target_column,
                        codec,
                        row: 0,
                        buffer: Vec::new(),
                    }),
                    Some(rows),
                )
            }
            (FileFormat::Parquet, _) => {
                let file = ParquetColumn::open_file(path)?;
                let open = |name: &str| ParquetColumn::open_in(file.clone(), path, Some(name));
                let columns = feature_names
                    .iter()
                    .map(|name| {
                        let column = open(name)?;
                        if column.is_text() {
                            return Err(Error::data(
                                path,
                                row_location(0, name),
                                "non-numeric feature value: the column holds strings \
                                 (features must be numbers)",
                            ));
                        }
                        Ok(column)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let target_reader = target_column.as_ref().map(|(_, t)| open(t)).transpose()?;
                let rows = target_reader
                    .as_ref()
                    .or(columns.first())
                    .map(ParquetColumn::len);
                (
                    Box::new(ParquetRows {
                        path: path.to_path_buf(),
                        features: columns,
                        target: target_reader,
                        codec,
                        row: 0,
                        numbers: Vec::new(),
                        text: Vec::new(),
                    }),
                    rows,
                )
            }
            _ => {
                let columns = Columns {
                    width: headers.len(),
                    features: named(&feature_index, &feature_names),
                    target: target_column,
                    codec,
                };
                let split = csv_rows::split_for_this_machine();
                (Box::new(CsvRows::open(path, columns, split)?), None)
            }
        };
        Ok(TableStream {
            path: path.to_path_buf(),
            features: feature_names,
            target: target.to_string(),
            labels: None,
            has_target: target_index.is_some(),
            format: Some(format),
            reader,
            chunk_rows: DEFAULT_CHUNK_ROWS,
            rows,
            log_feature: None,
        })
    }

    /// A table already in memory, passed over in chunks (to stream it through a GPU).
    pub fn memory(table: Arc<Table>) -> TableStream {
        TableStream {
            path: table.path.clone(),
            features: table.features.clone(),
            target: table.target.clone(),
            labels: table.labels.clone(),
            has_target: table.y.is_some(),
            format: None,
            rows: Some(table.n),
            reader: Box::new(MemoryRows { table, row: 0 }),
            chunk_rows: DEFAULT_CHUNK_ROWS,
            log_feature: None,
        }
    }

    /// Reads feature `name` as its natural logarithm from now on (`--exposure`: the offset
    /// of a rate model is ln(exposure)); a value that is not positive is an error naming its
    /// row and column.
    pub fn set_log_feature(&mut self, name: &str) -> Result<()> {
        let j = self
            .features
            .iter()
            .position(|f| f == name)
            .ok_or_else(|| {
                Error::data(&self.path, "", format!("no feature column named '{name}'"))
            })?;
        self.log_feature = Some(j);
        Ok(())
    }

    /// Reads the target alone: class labels (sorted) when any cell is not a number, `None`
    /// when all are numbers.
    fn class_labels(&mut self) -> Result<Option<Vec<String>>> {
        let (path, target) = (self.path.clone(), self.target.clone());
        let mut distinct = std::collections::BTreeSet::new();
        let (mut numeric, mut overflow) = (true, false);
        let mut numbers_only = true;
        self.for_each_chunk(|chunk| {
            if !chunk.cells.is_empty() {
                numbers_only = false;
            }
            for cell in &chunk.cells {
                numeric &= cell.parse::<f64>().is_ok();
                if !overflow && !distinct.contains(cell.as_str()) {
                    distinct.insert(cell.clone());
                    overflow = distinct.len() > MAX_CLASSES;
                }
                if overflow && !numeric {
                    return Err(Error::data(
                        &path,
                        format!("column '{target}'"),
                        format!("more than {MAX_CLASSES} distinct text values: not class labels"),
                    ));
                }
            }
            Ok(true)
        })?;
        Ok((!numbers_only && !numeric).then(|| distinct.into_iter().collect()))
    }

    /// Rows per chunk of later passes (at least 1).
    pub fn set_chunk_rows(&mut self, rows: usize) {
        self.chunk_rows = rows.max(1);
    }

    pub fn chunk_rows(&self) -> usize {
        self.chunk_rows
    }

    /// Rows in the table, once known (after the first pass over a CSV file).
    pub fn rows(&self) -> Option<usize> {
        self.rows
    }

    /// Rows in the table, or an estimate for a CSV file not yet read: its size over the mean
    /// length of its first lines.
    pub fn estimated_rows(&self) -> Result<usize> {
        if let Some(rows) = self.rows {
            return Ok(rows);
        }
        use std::io::Read;
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = std::fs::File::open(&self.path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut head = Vec::new();
        (&mut file)
            .take(1 << 20)
            .read_to_end(&mut head)
            .map_err(io)?;
        let lines = head.iter().filter(|&&b| b == b'\n').count().max(1);
        Ok((size as f64 / (head.len() as f64 / lines as f64)).ceil() as usize)
    }

    /// Where a cell is, for error messages.
    pub fn location(&self, row: usize, column: &str) -> String {
        cell_location(self.format, &self.path, row, column)
    }

    /// One pass over the rows, in order, chunk by chunk, until `f` returns false: a reader
    /// thread reads and checks the next chunk while `f` works on this one. Returns the number
    /// of rows passed to `f`; a table without rows is an error.
    pub fn for_each_chunk(
        &mut self,
        mut f: impl FnMut(&mut RowChunk) -> Result<bool>,
    ) -> Result<usize> {
        let chunk_rows = self.chunk_rows;
        let (d, log_feature) = (self.features.len(), self.log_feature);
        let (path, format) = (self.path.clone(), self.format);
        let name = log_feature.map(|j| self.features[j].clone());
        // The logarithm of one feature, checked, as each chunk is read.
        let take_logs = move |chunk: &mut RowChunk| -> Result<()> {
            let (Some(j), Some(name)) = (log_feature, name.as_deref()) else {
                return Ok(());
            };
            for i in 0..chunk.rows {
                let v = &mut chunk.x[i * d + j];
                if v.is_nan() || *v <= 0.0 {
                    return Err(Error::data(
                        &path,
                        cell_location(format, &path, chunk.first + i, name),
                        format!(
                            "exposure {v} is not positive: an exposure is a time, an area or \
                             a count at risk, and its logarithm is the offset"
                        ),
                    ));
                }
                *v = v.ln();
            }
            Ok(())
        };
        let reader = &mut self.reader;
        reader.rewind()?;
        let (rows, complete) = std::thread::scope(|scope| -> Result<(usize, bool)> {
            // One chunk in flight while `f` holds another; used chunks go back for reuse.
            let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<RowChunk>>(1);
            let (empty_tx, empty_rx) = std::sync::mpsc::channel::<RowChunk>();
            scope.spawn(move || {
                let mut first = 0;
                loop {
                    let mut chunk = empty_rx.try_recv().unwrap_or_default();
                    chunk.clear(first);
                    let read = reader
                        .read(chunk_rows, &mut chunk)
                        .and_then(|rows| take_logs(&mut chunk).map(|_| rows));
                    let done = !matches!(read, Ok(rows) if rows > 0);
                    if let Ok(rows) = read {
                        first += rows;
                    }
                    let sent = match read {
                        Ok(0) => Ok(()),
                        Ok(_) => full_tx.send(Ok(chunk)),
                        Err(e) => full_tx.send(Err(e)),
                    };
                    if done || sent.is_err() {
                        break;
                    }
                }
            });
            let (mut rows, mut complete) = (0, true);
            for chunk in full_rx {
                let mut chunk = chunk?;
                rows += chunk.rows;
                if !f(&mut chunk)? {
                    complete = false;
                    break;
                }
                let _ = empty_tx.send(chunk);
            }
            Ok((rows, complete))
        })?;
        if complete {
            self.rows = Some(rows);
        }
        if rows == 0 {
            return Err(Error::data(
                &self.path,
                "",
                "no data rows: the file holds no observations",
            ));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_any_size_give_the_same_rows() {
        let dir = std::env::temp_dir().join(format!("likely-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        let mut text = String::from("a, y ,b\n");
        for r in 0..1000 {
            text += &format!(
                "{},{},{}\n",
                r as f64 * 0.5,
                ["u", "v", "w"][r % 3],
                -(r as f64)
            );
        }
        std::fs::write(&path, text).unwrap();
        let whole =
            super::super::load_table(&path, "y", None, TargetSpec::Train { allow_labels: true })
                .unwrap();
        assert_eq!(whole.features, ["a", "b"]);
        assert_eq!(
            whole.labels.as_deref(),
            Some(&["u".into(), "v".into(), "w".into()][..])
        );
        for chunk_rows in [1, 7, 999, 1000, 4096] {
            let mut stream =
                TableStream::open(&path, "y", None, TargetSpec::Train { allow_labels: true })
                    .unwrap();
            assert_eq!(stream.labels, whole.labels);
            stream.set_chunk_rows(chunk_rows);
            let (mut x, mut y, mut firsts) = (Vec::new(), Vec::new(), Vec::new());
            // Twice: a second pass starts again from the first row.
            for _ in 0..2 {
                x.clear();
                y.clear();
                firsts.clear();
                let rows = stream
                    .for_each_chunk(|chunk| {
                        assert!(chunk.rows <= chunk_rows);
                        firsts.push(chunk.first);
                        x.extend_from_slice(&chunk.x);
                        y.extend_from_slice(&chunk.y);
                        Ok(true)
                    })
                    .unwrap();
                assert_eq!(rows, 1000);
            }
            assert_eq!(firsts, (0..1000).step_by(chunk_rows).collect::<Vec<_>>());
            assert_eq!(x, whole.x);
            assert_eq!(Some(&y), whole.y.as_ref());
            // Stopping early reads no further.
            let mut seen = 0;
            stream
                .for_each_chunk(|chunk| {
                    seen += chunk.rows;
                    Ok(false)
                })
                .unwrap();
            assert_eq!(seen, chunk_rows.min(1000));
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
