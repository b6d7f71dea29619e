//! Parquet columns (numeric and string), read one row group and one batch at a time, so a
//! streamed fit holds only a batch of the file in memory.

use crate::error::{Error, Result};
use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The four bytes a Parquet file starts (and ends) with.
pub(super) const MAGIC: &[u8] = b"PAR1";

/// Rows decoded per call into the column reader.
const BATCH: usize = 1 << 16;

/// A column's values: numbers (floats, integers, booleans as 0/1) or strings.
pub enum Cells {
    Numbers(Vec<f64>),
    Text(Vec<String>),
}

/// One column of a Parquet file with a cursor over its rows.
pub struct ParquetColumn {
    path: PathBuf,
    /// The file and its parsed footer, shared by the columns of one table.
    file: Arc<SerializedFileReader<File>>,
    index: usize,
    name: String,
    text: bool,
    /// Integers stored in signed types but annotated as unsigned (UINT_32, UINT_64).
    unsigned: bool,
    /// Definition level of a present value (0 for a required column).
    max_def: i16,
    len: usize,
    next_row_group: usize,
    /// The row group after the last one read (all of them, but for one group's worker).
    end_row_group: usize,
    reader: Option<ColumnReader>,
    /// Rows delivered so far.
    position: usize,
    /// Decoded rows not yet delivered: numbers, or strings for a text column.
    pending: Vec<f64>,
    pending_text: Vec<String>,
    pending_at: usize,
    /// Rows decoded at a time (at most [`BATCH`]).
    batch_rows: usize,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::data(path, "", message)
}

/// The column names of a Parquet file (top-level, non-repeated leaf columns).
pub fn column_names(path: &Path) -> Result<Vec<String>> {
    let file = open_file(path)?;
    Ok(file
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.path().string())
        .collect())
}

fn open_file(path: &Path) -> Result<SerializedFileReader<File>> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    guarded(path, || {
        SerializedFileReader::new(file)
            .map_err(|e| bad(path, format!("not a readable Parquet file: {e}")))
    })
}

/// Runs a call into the Parquet decoder, whose panics on corrupt files (it asserts on
/// metadata it trusts) become an error naming the file.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    crate::util::guarded(f, |why| {
        bad(
            path,
            format!("corrupt Parquet file: the decoder failed ({why})"),
        )
    })
}

impl ParquetColumn {
    /// Opens `column` (required when the file has more than one column).
    pub fn open(path: &Path, column: Option<&str>) -> Result<ParquetColumn> {
        Self::open_in(Arc::new(open_file(path)?), path, column)
    }

    /// Opens the file once for several columns (one file handle and one parsed footer).
    pub fn open_file(path: &Path) -> Result<Arc<SerializedFileReader<File>>> {
        Ok(Arc::new(open_file(path)?))
    }

    /// [`ParquetColumn::open`] on a file opened with [`ParquetColumn::open_file`].
    pub fn open_in(
        file: Arc<SerializedFileReader<File>>,
        path: &Path,
        column: Option<&str>,
    ) -> Result<ParquetColumn> {
        guarded(path, || Self::open_column(file, path, column))
    }

    fn open_column(
        file: Arc<SerializedFileReader<File>>,
        path: &Path,
        column: Option<&str>,
    ) -> Result<ParquetColumn> {
        let meta = file.metadata();
        let schema = meta.file_metadata().schema_descr();
        let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
        if let Some(why) = column.and_then(|c| super::duplicate_column(&names, c)) {
            return Err(bad(path, why));
        }
        let index = match column {
            Some(c) => names.iter().position(|n| n == c).ok_or_else(|| {
                let nested = names.iter().any(|n| n.starts_with(&format!("{c}.")));
                let why = if nested {
                    format!("column '{c}' is nested (a list or struct); likely reads flat columns")
                } else {
                    format!("no column named '{c}'; columns are: {}", names.join(", "))
                };
                bad(path, why)
            })?,
            None if names.len() == 1 => 0,
            None => {
                return Err(bad(
                    path,
                    format!(
                        "{} columns ({}): choose one with --column NAME",
                        names.len(),
                        names.join(", ")
                    ),
                ))
            }
        };
        let desc = schema.column(index);
        let name = names[index].clone();
        if desc.max_rep_level() > 0 {
            return Err(bad(
                path,
                format!("column '{name}' is a list; likely reads one value per row"),
            ));
        }
        let text = match desc.physical_type() {
            PhysicalType::BYTE_ARRAY => true,
            PhysicalType::BOOLEAN
            | PhysicalType::INT32
            | PhysicalType::INT64
            | PhysicalType::FLOAT
            | PhysicalType::DOUBLE => false,
            other => {
                return Err(bad(
                    path,
                    format!(
                        "column '{name}' has Parquet type {other}; likely reads numbers \
                         (boolean, int32, int64, float, double) and strings"
                    ),
                ))
            }
        };
        // Integers annotated as unsigned, or as dates, times and decimals.
        let unsigned = matches!(
            desc.converted_type(),
            ConvertedType::UINT_8
                | ConvertedType::UINT_16
                | ConvertedType::UINT_32
                | ConvertedType::UINT_64
        );
        let with_unit = matches!(
            desc.logical_type_ref(),
            Some(
                LogicalType::Decimal(_)
                    | LogicalType::Date
                    | LogicalType::Time(_)
                    | LogicalType::Timestamp(_)
            )
        );
        if with_unit
            || matches!(
                desc.converted_type(),
                ConvertedType::DECIMAL
                    | ConvertedType::DATE
                    | ConvertedType::TIME_MILLIS
                    | ConvertedType::TIME_MICROS
                    | ConvertedType::TIMESTAMP_MILLIS
                    | ConvertedType::TIMESTAMP_MICROS
                    | ConvertedType::INTERVAL
            )
        {
            return Err(bad(
                path,
                format!(
                    "column '{name}' holds {} values (integers with a unit or a scale); \
                     likely reads plain numbers: cast the column to a number first",
                    desc.logical_type_ref().map_or_else(
                        || format!("{:?}", desc.converted_type()),
                        |t| format!("{t:?}")
                    )
                ),
            ));
        }
        let len = meta.file_metadata().num_rows().max(0) as usize;
        Ok(ParquetColumn {
            unsigned,
            path: path.to_path_buf(),
            file,
            index,
            name,
            text,
            max_def: desc.max_def_level(),
            len,
            next_row_group: 0,
            end_row_group: usize::MAX,
            reader: None,
            position: 0,
            pending: Vec::new(),
            pending_text: Vec::new(),
            pending_at: 0,
            batch_rows: BATCH,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn column_label(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the column holds strings.
    pub fn is_text(&self) -> bool {
        self.text
    }

    fn location(&self, row: usize) -> String {
        format!("row {}, column '{}'", row + 1, self.name)
    }

    fn restart(&mut self) {
        self.next_row_group = 0;
        self.reader = None;
        self.position = 0;
        self.pending.clear();
        self.pending_text.clear();
        self.pending_at = 0;
    }

    /// The reader of the current row group, moving to the next when it is exhausted
    /// (`None` after the last).
    fn current_reader(&mut self) -> Result<Option<&mut ColumnReader>> {
        if self.reader.is_none() {
            if self.next_row_group >= self.file.num_row_groups().min(self.end_row_group) {
                return Ok(None);
            }
            let group = self.file.get_row_group(self.next_row_group).map_err(|e| {
                bad(
                    &self.path,
                    format!("row group {}: {e}", self.next_row_group),
                )
            })?;
            let reader = group
                .get_column_reader(self.index)
                .map_err(|e| bad(&self.path, format!("column '{}': {e}", self.name)))?;
            self.next_row_group += 1;
            self.reader = Some(reader);
        }
        Ok(self.reader.as_mut())
    }

    /// Decodes up to `batch_rows` more rows, appending numbers to `numbers` or strings to `text`
    /// (both empty or holding only this call's earlier rows). Returns the rows decoded (0 at
    /// the end of the file). A null is an error naming its row.
    fn decode(&mut self, numbers: &mut Vec<f64>, text: &mut Vec<String>) -> Result<usize> {
        let path = self.path.clone();
        guarded(&path, || self.decode_unguarded(numbers, text))
    }

    fn decode_unguarded(
        &mut self,
        numbers: &mut Vec<f64>,
        text: &mut Vec<String>,
    ) -> Result<usize> {
        loop {
            let first_row = self.position + numbers.len() + text.len();
            let (max_def, rows, unsigned) = (self.max_def, self.batch_rows, self.unsigned);
            let Some(reader) = self.current_reader()? else {
                return Ok(0);
            };
            let mut levels = Vec::new();
            let mut bytes = Vec::new();
            let counts = match reader {
                ColumnReader::BoolColumnReader(r) => {
                    batch(r, rows, &mut levels, numbers, |v| *v as u8 as f64)
                }
                ColumnReader::Int32ColumnReader(r) if unsigned => {
                    batch(r, rows, &mut levels, numbers, |v| *v as u32 as f64)
                }
                ColumnReader::Int32ColumnReader(r) => {
                    batch(r, rows, &mut levels, numbers, |v| *v as f64)
                }
                ColumnReader::Int64ColumnReader(r) if unsigned => {
                    batch(r, rows, &mut levels, numbers, |v| *v as u64 as f64)
                }
                ColumnReader::Int64ColumnReader(r) => {
                    batch(r, rows, &mut levels, numbers, |v| *v as f64)
                }
                ColumnReader::FloatColumnReader(r) => {
                    batch(r, rows, &mut levels, numbers, |v| *v as f64)
                }
                ColumnReader::DoubleColumnReader(r) => batch(r, rows, &mut levels, numbers, |v| *v),
                ColumnReader::ByteArrayColumnReader(r) => read(r, rows, &mut levels, &mut bytes),
                _ => unreachable!("types are checked when the column is opened"),
            };
            let (rows, values) =
                counts.map_err(|e| bad(&self.path, format!("column '{}': {e}", self.name)))?;
            if values < rows {
                // A definition level below the column's maximum marks a null.
                let null = levels.iter().position(|&l| l < max_def).unwrap_or(0);
                return Err(Error::data(
                    &self.path,
                    self.location(first_row + null),
                    "missing value (null)",
                ));
            }
            for (i, v) in bytes.iter().enumerate() {
                let s = v.as_utf8().map_err(|_| {
                    Error::data(&self.path, self.location(first_row + i), "not UTF-8 text")
                })?;
                text.push(s.to_string());
            }
            if rows == 0 {
                self.reader = None;
                continue;
            }
            return Ok(rows);
        }
    }

    /// Every value of the column, from the start.
    pub fn read_all(&mut self) -> Result<Cells> {
        let groups = self.file.num_row_groups();
        if !self.text && groups > 1 && rayon::current_num_threads() > 1 {
            return self.read_all_parallel().map(Cells::Numbers);
        }
        self.restart();
        let mut numbers = Vec::with_capacity(if self.text { 0 } else { self.len });
        let mut text = Vec::with_capacity(if self.text { self.len } else { 0 });
        while self.decode(&mut numbers, &mut text)? > 0 {}
        self.position = self.len;
        Ok(if self.text {
            Cells::Text(text)
        } else {
            Cells::Numbers(numbers)
        })
    }

    /// Every value of a numeric column, its row groups decoded on all cores, each copied into
    /// its own stretch of the result (a row group's worth of buffer per core on top); errors
    /// name the row in the file, the first in the file where several groups have one.
    fn read_all_parallel(&mut self) -> Result<Vec<f64>> {
        use rayon::prelude::*;
        let meta = self.file.metadata();
        let rows: Vec<usize> = (0..self.file.num_row_groups())
            .map(|g| meta.row_group(g).num_rows().max(0) as usize)
            .collect();
        let total: usize = rows.iter().sum();
        if total != self.len {
            return Err(bad(
                &self.path,
                format!(
                    "corrupt Parquet file: its row groups hold {total} rows, its footer says {}",
                    self.len
                ),
            ));
        }
        let mut values = vec![0.0; total];
        let mut stretches = Vec::with_capacity(rows.len());
        let (mut rest, mut first) = (values.as_mut_slice(), 0usize);
        for (g, &n) in rows.iter().enumerate() {
            let (this, after) = rest.split_at_mut(n);
            stretches.push((g, first, this));
            rest = after;
            first += n;
        }
        // Runs of at least a quarter of each thread's share of the groups: the handle below
        // is opened once per run (rayon calls `map_init`'s init per split, not per thread),
        // while the runs stay small enough to balance uneven groups.
        let min_run = stretches
            .len()
            .div_ceil(4 * rayon::current_num_threads())
            .max(1);
        stretches
            .into_par_iter()
            .with_min_len(min_run)
            // A file handle per run of groups: handles cloned from one share their offset,
            // so readers on two threads would read each other's bytes.
            .map_init(
                || open_file(&self.path).map(Arc::new),
                |file, (g, first, out)| {
                    let file = match file {
                        Ok(file) => file.clone(),
                        // The error names the file already.
                        Err(e) => return Err(Error::InvalidData(e.to_string())),
                    };
                    let mut worker = ParquetColumn {
                        path: self.path.clone(),
                        file,
                        index: self.index,
                        name: self.name.clone(),
                        text: false,
                        unsigned: self.unsigned,
                        max_def: self.max_def,
                        len: self.len,
                        next_row_group: g,
                        end_row_group: g + 1,
                        reader: None,
                        position: first,
                        pending: Vec::new(),
                        pending_text: Vec::new(),
                        pending_at: 0,
                        batch_rows: self.batch_rows,
                    };
                    let mut numbers = Vec::with_capacity(out.len());
                    let mut text = Vec::new();
                    while worker.decode(&mut numbers, &mut text)? > 0 {
                        if numbers.len() > out.len() {
                            break;
                        }
                    }
                    if numbers.len() != out.len() {
                        return Err(bad(
                            &self.path,
                            format!(
                                "corrupt Parquet file: row group {g} holds {} values of column \
                             '{}', its metadata says {}",
                                numbers.len(),
                                self.name,
                                out.len()
                            ),
                        ));
                    }
                    out.copy_from_slice(&numbers);
                    Ok(())
                },
            )
            .collect::<Vec<Result<()>>>()
            // The first failure in file order, whichever worker met it first in time.
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
        self.position = self.len;
        Ok(values)
    }

    /// Reads rows `start..start + out.len()` of a numeric column. Sequential reads continue
    /// where the last ended; a read before the cursor starts again from the first row group.
    pub fn read(&mut self, start: usize, out: &mut [f64]) -> Result<()> {
        if self.text {
            return Err(Error::data(
                &self.path,
                format!("column '{}'", self.name),
                "a string column cannot be streamed; string labels need the data in memory",
            ));
        }
        if start + out.len() > self.len {
            return Err(bad(&self.path, "read past the last row"));
        }
        if start < self.position {
            self.restart();
        }
        let (mut unused, mut discard) = (Vec::new(), Vec::new());
        while self.position < start {
            let skip = (start - self.position).min(BATCH);
            discard.clear();
            if self.read_next(skip, &mut discard, &mut unused)? == 0 {
                return Err(bad(
                    &self.path,
                    format!("the file ended at row {}", self.position),
                ));
            }
        }
        let mut values = Vec::with_capacity(out.len());
        if self.read_next(out.len(), &mut values, &mut unused)? < out.len() {
            return Err(bad(
                &self.path,
                format!("the file ended at row {}", self.position),
            ));
        }
        out.copy_from_slice(&values);
        Ok(())
    }

    /// Decodes at most `rows` rows at a time (default and at most 65536), which bounds the
    /// decoded rows a column holds ahead of its reads.
    pub fn set_batch_rows(&mut self, rows: usize) {
        self.batch_rows = rows.clamp(1, BATCH);
    }

    /// Starts reading again from the first row.
    pub fn rewind(&mut self) {
        self.restart();
    }

    /// Appends the next `count` rows (fewer at the end of the file) to `numbers` (numeric
    /// columns) or `text` (string columns); returns how many were read.
    pub fn read_next(
        &mut self,
        count: usize,
        numbers: &mut Vec<f64>,
        text: &mut Vec<String>,
    ) -> Result<usize> {
        let mut filled = 0;
        while filled < count {
            if self.pending_at == self.pending_len() {
                self.pending.clear();
                self.pending_text.clear();
                self.pending_at = 0;
                let (mut fresh, mut fresh_text) = (
                    std::mem::take(&mut self.pending),
                    std::mem::take(&mut self.pending_text),
                );
                let rows = self.decode(&mut fresh, &mut fresh_text)?;
                self.pending = fresh;
                self.pending_text = fresh_text;
                if rows == 0 {
                    break;
                }
            }
            let take = (self.pending_len() - self.pending_at).min(count - filled);
            let range = self.pending_at..self.pending_at + take;
            if self.text {
                text.extend(self.pending_text[range].iter_mut().map(std::mem::take));
            } else {
                numbers.extend_from_slice(&self.pending[range]);
            }
            filled += take;
            self.pending_at += take;
            self.position += take;
        }
        Ok(filled)
    }

    fn pending_len(&self) -> usize {
        if self.text {
            self.pending_text.len()
        } else {
            self.pending.len()
        }
    }
}

/// One batch of a typed column: `(rows, values)`; values are appended to `values`.
fn read<T: DataType>(
    reader: &mut ColumnReaderImpl<T>,
    rows: usize,
    levels: &mut Vec<i16>,
    values: &mut Vec<T::T>,
) -> parquet::errors::Result<(usize, usize)> {
    let (rows, read, _) = reader.read_records(rows, Some(levels), None, values)?;
    Ok((rows, read))
}

/// As [`read`], converting the values to f64 into `numbers`.
fn batch<T: DataType>(
    reader: &mut ColumnReaderImpl<T>,
    rows: usize,
    levels: &mut Vec<i16>,
    numbers: &mut Vec<f64>,
    convert: impl Fn(&T::T) -> f64,
) -> parquet::errors::Result<(usize, usize)> {
    let mut values = Vec::new();
    let (rows, read) = read(reader, rows, levels, &mut values)?;
    numbers.extend(values.iter().map(convert));
    Ok((rows, read))
}
