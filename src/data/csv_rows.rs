//! A table's rows from a CSV file, parsed on all cores where that is safe.
//!
//! The body (after the header) is read a batch of bytes at a time. A batch ends at its last line
//! feed, is cut into pieces at line feeds, and the pieces are parsed side by side, each by its
//! own reader; their rows are handed out in file order, in chunks of exactly the rows asked
//! for. A cut at a line feed is a record boundary unless it falls inside a quoted field, and
//! quotes inside unquoted fields are literal, so quote parity cannot place cuts: a batch with a
//! quote in it, or a piece that begins with a byte-order mark (a reader drops one at its own
//! start; inside a file it is a cell's text), ends the parallel reading, and the rest of the
//! file (and every later pass) is read by one reader, record by record. Errors are the same
//! either way: the first in the file, at its row and line.

use super::csv_file::{self, CsvReader, Split};
use super::rows::{csv_location, not_finite, RowChunk, RowReader, TargetCodec};
use crate::error::{Error, Result};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

/// The columns a table reads from each record.
pub(super) struct Columns {
    /// Fields in the header: every record must have as many.
    pub width: usize,
    /// Feature columns: their index in the record and their name.
    pub features: Vec<(usize, String)>,
    pub target: Option<(usize, String)>,
    pub codec: TargetCodec,
}

/// What is wrong with a record, before its row is known.
enum Fault {
    /// A record the reader could not take (invalid UTF-8, a read failure) or with the wrong
    /// number of fields; `byte` is where the reader placed it, in the bytes it read.
    Record { byte: u64, message: String },
    /// A cell of the named column.
    Cell { column: String, message: String },
}

impl Fault {
    /// The error, for the record at data row `row` (0-based), whose reader began at byte
    /// `base` of the file.
    fn at(self, path: &Path, row: usize, base: u64) -> Error {
        match self {
            Fault::Cell { column, message } => {
                Error::data(path, csv_location(path, row, &column), message)
            }
            Fault::Record { byte, message } => {
                let at = match csv_file::line_at(path, base + byte) {
                    Ok(line) => format!("row {} (line {line})", row + 1),
                    Err(_) => format!("row {}", row + 1),
                };
                Error::data(path, at, message)
            }
        }
    }
}

impl Columns {
    /// Appends the record's row to `chunk` (its features to `x`, its target as the codec
    /// says), or nothing and why not.
    fn push(&self, record: &csv::StringRecord, chunk: &mut RowChunk) -> Result<(), Fault> {
        if record.len() != self.width {
            return Err(Fault::Record {
                byte: record.position().map_or(0, |p| p.byte()),
                message: csv_file::unequal(record.len(), self.width),
            });
        }
        let (x, y, cells) = (chunk.x.len(), chunk.y.len(), chunk.cells.len());
        let pushed = self.push_cells(record, chunk);
        if pushed.is_err() {
            chunk.x.truncate(x);
            chunk.y.truncate(y);
            chunk.cells.truncate(cells);
        }
        pushed
    }

    fn push_cells(&self, record: &csv::StringRecord, chunk: &mut RowChunk) -> Result<(), Fault> {
        let fault = |column: &str, message: String| Fault::Cell {
            column: column.to_string(),
            message,
        };
        for (i, name) in &self.features {
            // Cells are trimmed here, only those used.
            let cell = record.get(*i).unwrap_or("").trim();
            let v: f64 = cell.parse().map_err(|_| {
                let what = if cell.is_empty() {
                    "empty cell".to_string()
                } else {
                    format!("non-numeric feature value '{cell}'")
                };
                fault(name, what)
            })?;
            if !v.is_finite() {
                return Err(fault(name, not_finite(v)));
            }
            chunk.x.push(v);
        }
        if let Some((t, name)) = &self.target {
            let cell = record.get(*t).unwrap_or("").trim();
            let checked = if cell.is_empty() {
                Err("empty cell".to_string())
            } else {
                self.codec.text(cell, chunk)
            };
            checked.map_err(|m| fault(name, m))?;
        }
        Ok(())
    }
}

/// How a table's CSV body is cut on this machine: batches of 1 MiB pieces, two per core (a
/// batch and its parsed rows are what the reader holds beside the chunks), for bodies of
/// 8 MiB or more; `None` on one core.
pub(super) fn split_for_this_machine() -> Option<Split> {
    let threads = rayon::current_num_threads();
    (threads > 1).then_some(Split {
        min_bytes: csv_file::PARALLEL_BYTES,
        piece_bytes: 1 << 20,
        max_pieces: 2 * threads,
    })
}

pub(super) struct CsvRows {
    path: PathBuf,
    columns: Columns,
    /// How the body is cut (`None`: always one reader).
    split: Option<Split>,
    /// Where the body starts: the byte after the header.
    body: u64,
    /// Rows handed out in this pass.
    row: usize,
    source: Source,
    /// A pass met a quote or a byte-order mark: every later pass reads in one pass.
    one_pass: bool,
    /// Whether the source has been read since it was made (a rewind then makes it anew).
    read_from: bool,
}

enum Source {
    /// One reader over the whole file, record by record.
    Records {
        reader: CsvReader,
        record: csv::StringRecord,
    },
    Batches(Batches),
}

/// The parallel reading: the next batch's place, and the rows of the last batch not yet
/// handed out.
struct Batches {
    file: std::fs::File,
    /// The byte where the next batch starts (a record's start).
    next: u64,
    file_len: u64,
    /// A batch is `piece_bytes` x `max_pieces` bytes, cut into at most `max_pieces` pieces.
    split: Split,
    buffer: Vec<u8>,
    /// The parsed pieces, in file order (the first partly handed out).
    pending: std::collections::VecDeque<RowChunk>,
    /// Rows of the first pending piece handed out.
    taken: usize,
    /// The error at the row after the pending ones.
    fault: Option<Error>,
}

impl CsvRows {
    /// The rows after the header of the CSV file at `path`, cut as `split` says.
    pub(super) fn open(path: &Path, columns: Columns, split: Option<Split>) -> Result<CsvRows> {
        let mut reader = csv_file::open_with(path, true)?;
        csv_file::headers(path, &mut reader)?;
        let body = reader.position().byte();
        let mut rows = CsvRows {
            path: path.to_path_buf(),
            columns,
            split,
            body,
            row: 0,
            source: Source::Records {
                reader,
                record: csv::StringRecord::new(),
            },
            one_pass: false,
            read_from: false,
        };
        // The reader past the header serves the first pass unless the body is cut.
        if let Some(batches) = rows.batches()? {
            rows.source = batches;
        }
        Ok(rows)
    }

    /// A source at the first row: batches where the body is large enough to cut.
    fn first_source(&self) -> Result<Source> {
        match self.batches()? {
            Some(batches) => Ok(batches),
            None => self.records_after(0),
        }
    }

    /// Batches from the first row, where the body is large enough to cut (and no earlier
    /// pass met a quote).
    fn batches(&self) -> Result<Option<Source>> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let Some(split) = self.split.filter(|_| !self.one_pass) else {
            return Ok(None);
        };
        let file_len = std::fs::metadata(&self.path).map_err(io)?.len();
        if file_len.saturating_sub(self.body) < split.min_bytes {
            return Ok(None);
        }
        Ok(Some(Source::Batches(Batches {
            file: std::fs::File::open(&self.path).map_err(io)?,
            next: self.body,
            file_len,
            split,
            buffer: Vec::new(),
            pending: Default::default(),
            taken: 0,
            fault: None,
        })))
    }

    /// One reader over the whole file, past the header and `rows` data rows.
    fn records_after(&self, rows: usize) -> Result<Source> {
        let mut reader = csv_file::open_with(&self.path, true)?;
        csv_file::headers(&self.path, &mut reader)?;
        let mut skipped = csv::ByteRecord::new();
        for row in 0..rows {
            let more = reader
                .read_byte_record(&mut skipped)
                .map_err(|e| record_fault(&e).at(&self.path, row, 0))?;
            if !more {
                return Err(Error::data(
                    &self.path,
                    format!("row {}", row + 1),
                    "the file changed while it was read",
                ));
            }
        }
        Ok(Source::Records {
            reader,
            record: csv::StringRecord::new(),
        })
    }

    /// Up to `max_rows` rows from the one reader.
    fn read_records(&mut self, max_rows: usize, chunk: &mut RowChunk) -> Result<usize> {
        let Source::Records { reader, record } = &mut self.source else {
            unreachable!("read_records is called on the one reader")
        };
        let mut got = 0;
        while got < max_rows {
            let row = self.row;
            let more = reader
                .read_record(record)
                .map_err(|e| record_fault(&e).at(&self.path, row, 0))?;
            if !more {
                break;
            }
            self.columns
                .push(record, chunk)
                .map_err(|f| f.at(&self.path, row, 0))?;
            self.row += 1;
            got += 1;
        }
        Ok(got)
    }
}

/// A reader's error as a fault at the place it gives.
fn record_fault(e: &csv::Error) -> Fault {
    Fault::Record {
        byte: e.position().map_or(0, |p| p.byte()),
        message: csv_file::describe(e),
    }
}

impl RowReader for CsvRows {
    fn read(&mut self, max_rows: usize, chunk: &mut RowChunk) -> Result<usize> {
        self.read_from = true;
        let mut got = 0;
        while got < max_rows {
            let Source::Batches(batches) = &mut self.source else {
                got += self.read_records(max_rows - got, chunk)?;
                break;
            };
            if batches.pending.is_empty() {
                if let Some(e) = batches.fault.take() {
                    return Err(e);
                }
                if batches.next >= batches.file_len {
                    break;
                }
                let parallel = batches.refill(&self.path, &self.columns, self.row)?;
                if !parallel {
                    self.one_pass = true;
                    self.source = self.records_after(self.row)?;
                }
                continue;
            }
            let take = batches.hand_out(max_rows - got, self.columns.features.len(), chunk);
            self.row += take;
            got += take;
        }
        chunk.rows += got;
        Ok(got)
    }

    fn rewind(&mut self) -> Result<()> {
        if self.read_from {
            self.source = self.first_source()?;
            self.row = 0;
            self.read_from = false;
        }
        Ok(())
    }
}

/// The 3 bytes of a UTF-8 byte-order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// One piece's rows, and its first fault with the record it stopped at.
struct Piece {
    rows: RowChunk,
    fault: Option<Fault>,
}

impl Batches {
    /// Reads and parses the next batch into `pending` (the rows before its first fault, if
    /// any); `first_row` is the data row the batch starts at. False where the batch cannot be
    /// cut (a quote, a byte-order mark at a cut, a line longer than the batch): nothing is
    /// consumed, and the caller reads on in one pass.
    fn refill(&mut self, path: &Path, columns: &Columns, first_row: usize) -> Result<bool> {
        use rayon::prelude::*;
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let split = self.split;
        let start = self.next;
        let want =
            (split.piece_bytes.max(1) * split.max_pieces.max(1) as u64).min(self.file_len - start);
        self.buffer.clear();
        self.file
            .seek(std::io::SeekFrom::Start(start))
            .map_err(io)?;
        (&mut self.file)
            .take(want)
            .read_to_end(&mut self.buffer)
            .map_err(io)?;
        if self.buffer.is_empty() {
            // The file shrank: what the one reader finds is reported.
            return Ok(false);
        }
        let at_end = start + self.buffer.len() as u64 >= self.file_len;
        // Whole records only: up to the last line feed, or the file's end.
        let Some(cut) = (if at_end {
            Some(self.buffer.len())
        } else {
            self.buffer.iter().rposition(|&b| b == b'\n').map(|i| i + 1)
        }) else {
            return Ok(false);
        };
        let body = &self.buffer[..cut];
        if body.contains(&b'"') {
            return Ok(false);
        }
        let pieces = piece_bounds(body, split.piece_bytes, split.max_pieces);
        if pieces
            .iter()
            .any(|&(from, _)| body[from..].starts_with(BOM))
        {
            return Ok(false);
        }
        let parsed: Vec<Piece> = pieces
            .par_iter()
            .map(|&(from, to)| parse_piece(&body[from..to], columns))
            .collect();
        self.taken = 0;
        self.fault = None;
        let mut rows = first_row;
        for (piece, &(from, _)) in parsed.into_iter().zip(&pieces) {
            rows += piece.rows.rows;
            if piece.rows.rows > 0 {
                self.pending.push_back(piece.rows);
            }
            if let Some(fault) = piece.fault {
                self.fault = Some(fault.at(path, rows, start + from as u64));
                break;
            }
        }
        self.next = start + cut as u64;
        Ok(true)
    }

    /// Moves up to `rows` rows (of `d` features each) of the first pending piece to `chunk`;
    /// returns how many.
    fn hand_out(&mut self, rows: usize, d: usize, chunk: &mut RowChunk) -> usize {
        let piece = self.pending.front_mut().expect("a pending piece");
        let (from, to) = (self.taken, piece.rows.min(self.taken + rows));
        chunk.x.extend_from_slice(&piece.x[from * d..to * d]);
        if !piece.y.is_empty() {
            chunk.y.extend_from_slice(&piece.y[from..to]);
        }
        if !piece.cells.is_empty() {
            chunk
                .cells
                .extend(piece.cells[from..to].iter_mut().map(std::mem::take));
        }
        self.taken = to;
        if to == piece.rows {
            self.pending.pop_front();
            self.taken = 0;
        }
        to - from
    }
}

/// Pieces of `body` (whole records) of about `piece_bytes`, at most `max_pieces`, each
/// starting after a line feed.
fn piece_bounds(body: &[u8], piece_bytes: u64, max_pieces: usize) -> Vec<(usize, usize)> {
    let pieces = body
        .len()
        .div_ceil(piece_bytes.max(1) as usize)
        .clamp(1, max_pieces.max(1));
    let mut starts = vec![0usize];
    for i in 1..pieces {
        let target = body.len() * i / pieces;
        let last = *starts.last().expect("the first start");
        if target < last {
            continue;
        }
        if let Some(lf) = body[target..].iter().position(|&b| b == b'\n') {
            let at = target + lf + 1;
            if at > last && at < body.len() {
                starts.push(at);
            }
        }
    }
    let ends = starts.iter().skip(1).copied().chain([body.len()]);
    starts.iter().copied().zip(ends).collect()
}

/// The rows of `bytes` (whole records), up to the first fault.
fn parse_piece(bytes: &[u8], columns: &Columns) -> Piece {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = RowChunk::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Piece {
                    rows,
                    fault: Some(record_fault(&e)),
                }
            }
        }
        if let Err(fault) = columns.push(&record, &mut rows) {
            return Piece {
                rows,
                fault: Some(fault),
            };
        }
        rows.rows += 1;
    }
    Piece { rows, fault: None }
}

/// Two passes over the table in chunks of `chunk_rows`, as comparable text: each chunk's first
/// row and rows, the values' bits and the cells, or the error where a pass stops. (For tests
/// and fuzzing: the reader must give the same text however it cuts.)
fn passes(path: &Path, columns: Columns, split: Option<Split>, chunk_rows: usize) -> String {
    let mut rows = match CsvRows::open(path, columns, split) {
        Ok(rows) => rows,
        Err(e) => return format!("error: {e}"),
    };
    let mut out = String::new();
    for pass in 0..2 {
        if let Err(e) = rows.rewind() {
            return out + &format!("error: {e}");
        }
        out += &format!("pass {pass}:");
        let mut first = 0;
        loop {
            let mut chunk = RowChunk::default();
            chunk.clear(first);
            match rows.read(chunk_rows, &mut chunk) {
                Ok(0) => break,
                Ok(got) => {
                    assert_eq!(got, chunk.rows, "rows read are the chunk's rows");
                    assert_eq!(chunk.x.len(), got * rows.columns.features.len());
                    out += &format!(
                        " [{first}+{got} {:?} {:?} {:?}]",
                        chunk.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        chunk.y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        chunk.cells
                    );
                    first += got;
                }
                Err(e) => {
                    out += &format!(" error: {e}");
                    break;
                }
            }
        }
        out += "\n";
    }
    out
}

/// For fuzzing: reads the CSV table at `path` (its first column the target, kept as text, the
/// others features) with one reader, and cut into pieces of a few bytes; panics where they
/// differ.
pub(super) fn compare_cuts(path: &Path) {
    let Ok(mut reader) = csv_file::open_with(path, true) else {
        return;
    };
    let Ok(headers) = csv_file::headers(path, &mut reader) else {
        return;
    };
    if headers.is_empty() {
        return;
    }
    let columns = || Columns {
        width: headers.len(),
        features: (1..headers.len())
            .map(|i| (i, headers[i].clone()))
            .collect(),
        target: Some((0, headers[0].clone())),
        codec: TargetCodec::Deferred,
    };
    let split = Split {
        min_bytes: 0,
        piece_bytes: 7,
        max_pieces: 3,
    };
    let (one, cut) = (
        passes(path, columns(), None, 5),
        passes(path, columns(), Some(split), 5),
    );
    assert_eq!(one, cut, "the parallel CSV reader differs from one reader");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn temp(name: &str, text: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("likely-csv-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Features "a" and "b" (columns 0 and 2) and target "y" (column 1), as `codec` says.
    fn columns(codec: &TargetCodec) -> Columns {
        Columns {
            width: 3,
            features: vec![(0, "a".into()), (2, "b".into())],
            target: Some((1, "y".into())),
            codec: codec.clone(),
        }
    }

    /// Every cut the parallel reader could make, from pieces of 1 byte up and batches of one
    /// piece up, in chunks of 1 row up: the same rows, values and errors as one reader.
    fn same_as_one_pass(name: &str, text: &[u8], codec: &TargetCodec) -> String {
        let path = temp(name, text);
        let mut one = String::new();
        for chunk_rows in [1, 2, 7, 1000] {
            let whole = passes(&path, columns(codec), None, chunk_rows);
            for piece_bytes in [1, 2, 3, 5, 8, 13, 40, 1000] {
                for max_pieces in [1, 3, 10_000] {
                    let split = Split {
                        min_bytes: 0,
                        piece_bytes,
                        max_pieces,
                    };
                    let cut = passes(&path, columns(codec), Some(split), chunk_rows);
                    assert_eq!(
                        cut, whole,
                        "{name}: pieces of {piece_bytes} bytes, {max_pieces} a batch, chunks of {chunk_rows} rows"
                    );
                }
            }
            if chunk_rows == 1000 {
                one = whole;
            }
        }
        one
    }

    #[test]
    fn parallel_parsing_gives_the_rows_values_and_errors_of_one_reader() {
        let numbers = TargetCodec::Numeric;
        let mut big = String::from("a,y,b\n");
        for i in 0..600 {
            big += &format!("{i},{},{}\n", i % 2, i as f64 * 0.37 - 11.0);
        }
        let ok = same_as_one_pass("plain.csv", big.as_bytes(), &numbers);
        assert!(ok.contains("[0+600 ") && !ok.contains("error"), "{ok}");
        // CRLF, a BOM, blank lines (they count as lines, not rows).
        let crlf = same_as_one_pass(
            "crlf.csv",
            b"\xef\xbb\xbfa,y,b\r\n1,2,3\r\n\r\n3,4.5,6\r\n\n5,6,7\r\n",
            &numbers,
        );
        assert!(crlf.contains("[0+3 ") && !crlf.contains("error"), "{crlf}");
        // Lone carriage returns end lines too.
        let cr = same_as_one_pass("cr.csv", b"a,y,b\r1,2,0\r3,4,0\r5,x,0\r", &numbers);
        assert!(
            cr.contains("row 3 (line 4), column 'y'") && cr.contains("'x'"),
            "{cr}"
        );
        let mixed = same_as_one_pass("mixed.csv", b"a,y,b\n1,2,0\r\n\r\n1,3,0\r4,,0\n", &numbers);
        assert!(
            mixed.contains("row 3 (line 5), column 'y': empty cell"),
            "{mixed}"
        );
        // A bad cell in many pieces: the first in the file is reported, at its row and line,
        // after the rows before it.
        let mut bad = String::from("a,y,b\n");
        for i in 0..200 {
            let b = if i % 40 == 39 {
                "oops".into()
            } else {
                i.to_string()
            };
            bad += &format!("{i},1,{b}\n");
            if i % 7 == 0 {
                bad += "\n";
            }
        }
        let first = same_as_one_pass("bad.csv", bad.as_bytes(), &numbers);
        assert!(
            first.contains("row 40 (line 47), column 'b'") && first.contains("'oops'"),
            "{first}"
        );
        // A non-finite feature, a short row, a long row, invalid UTF-8.
        for (name, text, needle) in [
            (
                "inf.csv",
                &b"a,y,b\n1,2,3\ninf,1,1\n"[..],
                "row 2 (line 3), column 'a': value inf is not finite",
            ),
            (
                "short.csv",
                b"a,y,b\n1,2,3\n3,4\n5,6,7\n",
                "row 2 (line 3): the row has 2 fields, but the header has 3",
            ),
            (
                "long.csv",
                b"a,y,b\n1,2,3\n3,4,5,6\n",
                "row 2 (line 3): the row has 4 fields",
            ),
            ("utf8.csv", b"a,y,b\n1,2,3\n3,\xff,1\n", "row 2 (line 3)"),
        ] {
            let e = same_as_one_pass(name, text, &numbers);
            assert!(e.contains(needle), "{name}: {e}");
        }
        // Quoted fields, a line break inside one, after rows read in parallel: the rest is read
        // in one pass (cuts by quote parity are not safe), with the same rows either way, and
        // the line of a later error counts the break.
        let mut quoted = big.clone();
        quoted += "\"1\",\"0\",\"2\"\n\"3\n\",1,4\n5,1,6\n7,bad,8\n";
        let q = same_as_one_pass("quoted.csv", quoted.as_bytes(), &numbers);
        assert!(q.contains("row 604 (line 606), column 'y'"), "{q}");
        // A byte-order mark inside the file is a cell's text (a reader drops one only at its
        // own start, which a cut can fall on).
        let bom = same_as_one_pass("bom.csv", b"a,y,b\n1,2,3\n\xef\xbb\xbf3,4,5\n", &numbers);
        assert!(bom.contains("row 2 (line 3), column 'a'"), "{bom}");
        // Class labels, known or kept as text for later.
        let labels = TargetCodec::Labels(Arc::new(vec!["blue".into(), "red".into()]));
        let text = b"a,y,b\n1,red,1\n2,blue,2\n3,red,3\n4,green,4\n";
        let known = same_as_one_pass("labels.csv", text, &labels);
        assert!(known.contains("class 'green' was not seen"), "{known}");
        let deferred = same_as_one_pass("deferred.csv", text, &TargetCodec::Deferred);
        assert!(deferred.contains("\"green\""), "{deferred}");
    }

    /// Random files over the bytes that matter to a CSV reader (separators, line ends,
    /// quotes, a byte-order mark, invalid UTF-8, numbers): every cut gives one reader's text.
    #[test]
    fn random_files_read_the_same_however_they_are_cut() {
        const ALPHABET: &[&[u8]] = &[
            b"1",
            b"2.5",
            b"-3e2",
            b",",
            b",",
            b"\n",
            b"\n",
            b"\r\n",
            b"\r",
            b"\"",
            b" ",
            b"x",
            b"\xef\xbb\xbf",
            b"\xff",
            b"inf",
            b"",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let dir = std::env::temp_dir().join(format!("likely-csv-random-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.csv");
        for case in 0..2000 {
            // A header of three columns, then random bytes; most rows well formed.
            let mut text = b"y,a,b\n".to_vec();
            for _ in 0..(next() % 40) {
                if next() % 3 == 0 {
                    text.extend_from_slice(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
                } else {
                    text.extend_from_slice(
                        format!("{},{},{}\n", next() % 3, next() % 100, case).as_bytes(),
                    );
                }
            }
            std::fs::write(&path, &text).unwrap();
            for piece_bytes in [1, 4, 9] {
                let split = Split {
                    min_bytes: 0,
                    piece_bytes,
                    max_pieces: 1 + (next() % 4) as usize,
                };
                let columns = || Columns {
                    width: 3,
                    features: vec![(1, "a".into()), (2, "b".into())],
                    target: Some((0, "y".into())),
                    codec: TargetCodec::Deferred,
                };
                let chunk_rows = 1 + (next() % 6) as usize;
                assert_eq!(
                    passes(&path, columns(), Some(split), chunk_rows),
                    passes(&path, columns(), None, chunk_rows),
                    "{:?} cut as {split:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
