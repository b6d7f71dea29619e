//! CSV with a header row; one column is read, streamed from the file record by record (the
//! file is never held in memory as one string).

use crate::error::{Error, Result};
use std::path::Path;

/// A parsed column: its values (in pieces, in order), its class labels if they were strings,
/// and its name.
pub(super) type Parsed = (Vec<Vec<f64>>, Option<Vec<String>>, String);

/// Parses one column (see [`Parsed`]).
pub(super) fn parse(path: &Path, column: Option<&str>, allow_labels: bool) -> Result<Parsed> {
    parse_split(path, column, allow_labels, Split::for_this_machine())
}

/// How a file is cut for parsing on all cores: files of at least `min_bytes`, in pieces of
/// about `piece_bytes`, at most `max_pieces` of them (for a table, at most `max_pieces` are
/// read at a time).
#[derive(Clone, Copy, Debug)]
pub(super) struct Split {
    pub min_bytes: u64,
    pub piece_bytes: u64,
    pub max_pieces: usize,
}

impl Split {
    /// Pieces of 1 MiB, four per core, for files of 8 MiB or more; `None` on one core.
    pub fn for_this_machine() -> Option<Split> {
        let threads = rayon::current_num_threads();
        (threads > 1).then_some(Split {
            min_bytes: PARALLEL_BYTES,
            piece_bytes: 1 << 20,
            max_pieces: 4 * threads,
        })
    }
}

/// [`parse`], cut as `split` says (`None`: one pass on one thread).
fn parse_split(
    path: &Path,
    column: Option<&str>,
    allow_labels: bool,
    split: Option<Split>,
) -> Result<Parsed> {
    // Flexible: rows of another length than the header are reported here, in the same words
    // as the parallel reader's.
    let mut reader = open_with(path, true)?;
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
    let body = reader.position().clone();
    let file_len = std::fs::metadata(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if let Some(split) = split.filter(|s| file_len >= s.min_bytes) {
        let width = headers.len();
        if let Some(values) = parse_parallel(
            path,
            index,
            &name,
            width,
            &body,
            file_len,
            split,
            allow_labels,
        )? {
            return Ok((values, None, name));
        }
        // Text cells (class labels) or quoted fields: read in one pass below.
    }
    let mut labels = super::LabelEncoder::default();
    let mut numbers: Vec<f64> = Vec::new();
    let mut numeric = true;
    // One record buffer reused for every row.
    let mut record = csv::StringRecord::new();
    let width = headers.len();
    for row in 0.. {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| record_error(path, row, &e))?;
        if !more {
            break;
        }
        let byte = record.position().map_or(0, |p| p.byte());
        if record.len() != width {
            return Err(Error::data(
                path,
                format!("row {} (line {})", row + 1, line_at(path, byte)?),
                unequal(record.len(), width),
            ));
        }
        match parse_cell(&record, index, allow_labels) {
            Ok(v) if numeric => numbers.push(v),
            Ok(_) => {}
            Err(CellError::Text) => {
                numeric = false;
                numbers = Vec::new();
            }
            Err(CellError::Bad(why)) => {
                let line = line_at(path, byte)?;
                return Err(Error::data(
                    path,
                    format!("row {} (line {line}), column '{name}'", row + 1),
                    why,
                ));
            }
        }
        if allow_labels {
            labels.push(record.get(index).unwrap_or("").trim());
        }
    }
    if numeric {
        return Ok((vec![numbers], None, name));
    }
    let (values, labels) = labels
        .finish()
        .map_err(|e| Error::data(path, format!("column '{name}'"), e))?;
    Ok((vec![values], Some(labels), name))
}

/// Files at least this large are parsed by all cores (smaller ones are not worth the split).
pub(super) const PARALLEL_BYTES: u64 = 8 << 20;

enum CellError {
    /// Not a number, where labels are allowed: the column may be class labels.
    Text,
    /// Why the cell is not a number.
    Bad(String),
}

/// The number in column `index`, or why there is none.
fn parse_cell(
    record: &csv::StringRecord,
    index: usize,
    allow_labels: bool,
) -> std::result::Result<f64, CellError> {
    let cell = record.get(index).unwrap_or("").trim();
    if cell.is_empty() {
        return Err(CellError::Bad("empty cell".into()));
    }
    match cell.parse::<f64>() {
        Ok(v) => Ok(v),
        Err(_) if allow_labels => Err(CellError::Text),
        Err(_) => Err(CellError::Bad(format!("non-numeric value '{cell}'"))),
    }
}

/// A record the CSV reader could not parse (invalid UTF-8, a read failure), at its line.
fn record_error(path: &Path, row: usize, e: &csv::Error) -> Error {
    let at = match e.position().and_then(|p| line_at(path, p.byte()).ok()) {
        Some(line) => format!("row {} (line {line})", row + 1),
        None => format!("row {}", row + 1),
    };
    Error::data(path, at, describe(e))
}

/// The line of the record the reader placed at byte `at`: 1 + the line ends before its first
/// byte, counted as text editors count them (`\n`, `\r\n`, and a lone `\r`), whatever the
/// reader's own count. The reader places a record where it began looking for it, before any
/// blank lines it skipped, so the line ends from `at` on up to the record's first byte count
/// too. Called for an error only: it reads the file up to the record.
pub(super) fn line_at(path: &Path, at: u64) -> Result<u64> {
    let (mut count, mut after_cr, mut position) = (0u64, false, 0u64);
    each_piece(path, 0, u64::MAX, |piece| {
        for &b in piece {
            let line_end = b == b'\n' || b == b'\r';
            if position >= at && !line_end {
                return false;
            }
            if after_cr && b != b'\n' {
                count += 1;
            }
            if b == b'\n' {
                count += 1;
            }
            after_cr = b == b'\r';
            position += 1;
        }
        true
    })?;
    Ok(1 + count + after_cr as u64)
}

/// The file line of data row `row` (0-based, after the header), counted as [`line_at`]
/// counts (blank lines and quoted line breaks included); `None` where the file cannot say.
/// For error messages only: it reads the file up to that row.
pub(super) fn line_of_row(path: &Path, row: usize) -> Option<u64> {
    let mut reader = open_with(path, true).ok()?;
    let mut record = csv::ByteRecord::new();
    for _ in 0..=row {
        if !reader.read_byte_record(&mut record).ok()? {
            return None;
        }
    }
    line_at(path, record.position()?.byte()).ok()
}

/// A reader's error without its byte offsets (which differ between a whole-file reader and a
/// piece's), so that every reader says the same.
pub(super) fn describe(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8 (after {} valid bytes)",
            err.field() + 1,
            err.valid_up_to()
        ),
        _ => e.to_string(),
    }
}

pub(super) fn unequal(found: usize, header: usize) -> String {
    format!("the row has {found} fields, but the header has {header}")
}

/// What one piece of the file held: its values, its records, and its first error (record
/// index within the piece, and the error with the line within the piece).
struct Piece {
    values: Vec<f64>,
    records: usize,
    failure: Option<(usize, PieceError)>,
    /// Whether a quote was among the bytes read (or a byte-order mark began them).
    one_pass: bool,
}

enum PieceError {
    /// The cell or record error: its message and where its record starts (a byte of the
    /// file); `text` for a non-numeric cell (class labels, where they are allowed).
    At {
        byte: u64,
        message: String,
        cell: bool,
        text: bool,
    },
}

/// Parses the data rows after the header on all cores: the body is cut into pieces at line
/// terminators, each piece parsed by its own reader, and the values joined in order; a body
/// with a quote anywhere (a cut could fall inside a quoted field) is left to one pass. Row and line numbers in errors are those of the whole file, and the error reported
/// is the first in the file. `None` where a cell is text (the caller reads labels in one
/// pass).
#[allow(clippy::too_many_arguments)]
fn parse_parallel(
    path: &Path,
    index: usize,
    name: &str,
    width: usize,
    body: &csv::Position,
    file_len: u64,
    split: Split,
    allow_labels: bool,
) -> Result<Option<Vec<Vec<f64>>>> {
    use rayon::prelude::*;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let start = body.byte();
    let span = file_len - start;
    let pieces = ((span / split.piece_bytes.max(1)).max(1) as usize).min(split.max_pieces);
    let cuts: Vec<u64> = (0..pieces as u64)
        .map(|i| start + span * i / pieces as u64)
        .collect();
    let mut starts = vec![start];
    for &cut in &cuts[1..] {
        if let Some(at) = record_start_after(path, cut, file_len).map_err(io)? {
            if at > *starts.last().expect("the first start") && at < file_len {
                starts.push(at);
            }
        }
    }
    let ends: Vec<u64> = starts
        .iter()
        .skip(1)
        .copied()
        .chain(std::iter::once(file_len))
        .collect();
    let parsed: Vec<Piece> = starts
        .par_iter()
        .zip(&ends)
        .map(|(&from, &to)| parse_piece(path, index, width, from, to, allow_labels))
        .collect::<Result<_>>()?;
    // A quote in what the pieces read: a cut could fall inside a quoted field, and quotes
    // inside unquoted fields are literal, so their parity alone cannot place cuts. Such files
    // (and a piece that starts with a byte-order mark) are read in one pass. (A piece stops at its first failure; the failure reported is then
    // the first piece's, whose bytes up to it, and all before it, were watched.)
    if parsed.iter().any(|piece| piece.one_pass) {
        return Ok(None);
    }
    // The first failure in file order, with the rows of the pieces before it.
    let mut rows_before = 0usize;
    for piece in &parsed {
        if let Some((record, failure)) = &piece.failure {
            let row = rows_before + record;
            return match failure {
                PieceError::At { text: true, .. } => Ok(None),
                PieceError::At {
                    byte,
                    message,
                    cell,
                    ..
                } => {
                    let line = line_at(path, *byte)?;
                    let location = if *cell {
                        format!("row {} (line {line}), column '{name}'", row + 1)
                    } else {
                        format!("row {} (line {line})", row + 1)
                    };
                    Err(Error::data(path, location, message.clone()))
                }
            };
        }
        rows_before += piece.records;
    }
    // The pieces' values as they are, in order: joined once, into their final width, by
    // the caller (no concatenated f64 copy beside them).
    Ok(Some(parsed.into_iter().map(|piece| piece.values).collect()))
}

/// Occurrences of `byte` in bytes `from..to` of the file, read in 1 MiB pieces.
/// A reader that notes whether any byte it passed on was a quote, or its first bytes a UTF-8
/// byte-order mark (which a reader drops at its start: inside a file it is a cell's text).
struct QuoteWatch<R> {
    inner: R,
    one_pass: bool,
    started: bool,
}

impl<R: std::io::Read> std::io::Read for QuoteWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.one_pass |= buf[..got].contains(&b'"');
        if !self.started && got > 0 {
            self.started = true;
            self.one_pass |= buf[..got].starts_with(&[0xEF, 0xBB, 0xBF][..got.min(3)]);
        }
        Ok(got)
    }
}

/// Calls `f` on bytes `from..to` of the file, a 1 MiB piece at a time, until it returns false.
fn each_piece(path: &Path, from: u64, to: u64, mut f: impl FnMut(&[u8]) -> bool) -> Result<()> {
    use std::io::{Read, Seek};
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    file.seek(std::io::SeekFrom::Start(from)).map_err(io)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = to.saturating_sub(from);
    while left > 0 {
        let want = buffer.len().min(left as usize);
        let got = file.read(&mut buffer[..want]).map_err(io)?;
        if got == 0 || !f(&buffer[..got]) {
            break;
        }
        left -= got as u64;
    }
    Ok(())
}

/// The byte after the first line feed at or after `at`, where a record starts (the body has
/// no quotes); `None` if there is none.
fn record_start_after(path: &Path, at: u64, file_len: u64) -> std::io::Result<Option<u64>> {
    let mut position = at;
    let mut found = None;
    let scanned = each_piece(path, at, file_len, |piece| {
        match piece.iter().position(|&b| b == b'\n') {
            Some(i) => {
                found = Some(position + i as u64 + 1);
                false
            }
            None => {
                position += piece.len() as u64;
                true
            }
        }
    });
    match scanned {
        Ok(()) => Ok(found),
        Err(Error::Io { source, .. }) => Err(source),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Parses bytes `from..to` (whole records) as data rows.
fn parse_piece(
    path: &Path,
    index: usize,
    width: usize,
    from: u64,
    to: u64,
    allow_labels: bool,
) -> Result<Piece> {
    use std::io::{Read, Seek};
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    file.seek(std::io::SeekFrom::Start(from)).map_err(io)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(
            1 << 20,
            QuoteWatch {
                inner: file.take(to - from),
                one_pass: false,
                started: false,
            },
        ));
    let mut values = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut records = 0usize;
    let mut failure = None;
    let at = |local: u64, message: String, cell: bool, text: bool| PieceError::At {
        byte: from + local,
        message,
        cell,
        text,
    };
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let local = e.position().map_or(0, |p| p.byte());
                failure = Some((records, at(local, describe(&e), false, false)));
                break;
            }
        }
        let local = record.position().map_or(0, |p| p.byte());
        if record.len() != width {
            failure = Some((
                records,
                at(local, unequal(record.len(), width), false, false),
            ));
            break;
        }
        match parse_cell(&record, index, allow_labels) {
            Ok(v) => values.push(v),
            Err(CellError::Bad(why)) => {
                failure = Some((records, at(local, why, true, false)));
                break;
            }
            Err(CellError::Text) => {
                failure = Some((records, at(local, String::new(), true, true)));
                break;
            }
        }
        records += 1;
    }
    Ok(Piece {
        values,
        records,
        failure,
        one_pass: reader.into_inner().into_inner().one_pass,
    })
}

/// The header row's names, without surrounding whitespace. A header whose every name is a
/// number other than a column index ("0", "1": what pandas writes for unnamed columns) is
/// the first row of data in a file without a header: read as names, it would silently drop
/// one sample, so it is refused.
pub(super) fn headers(path: &Path, reader: &mut CsvReader) -> Result<Vec<String>> {
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| Error::data(path, "header", e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let is_data = |h: &String| h.parse::<f64>().is_ok() && h.parse::<u32>().is_err();
    if !names.is_empty() && names.iter().all(is_data) {
        return Err(Error::data(
            path,
            "header",
            format!(
                "the first row ({}) is numbers, not column names: a CSV file starts with a \
                 header row naming its columns (add one, e.g. 'x'), or else its first row \
                 would be lost",
                names.join(",")
            ),
        ));
    }
    Ok(names)
}

pub(super) type CsvReader = csv::Reader<std::io::BufReader<std::fs::File>>;

/// A CSV reader over the file through a buffer: records are parsed as they are read. Cells
/// are trimmed by the callers, only those they use (the reader's own trimming copies every
/// record).
pub(super) fn open(path: &Path) -> Result<CsvReader> {
    open_with(path, false)
}

pub(super) fn open_with(path: &Path, flexible: bool) -> Result<CsvReader> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(flexible)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("likely-csv-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The outcome as comparable text: the values' bits, or the error message.
    fn outcome(path: &Path, column: Option<&str>, labels: bool, split: Option<Split>) -> String {
        match parse_split(path, column, labels, split) {
            Ok((values, labels, name)) => format!(
                "{name} {labels:?} {:?}",
                values
                    .concat()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            ),
            Err(e) => format!("error: {e}"),
        }
    }

    /// Every cut the parallel reader could make, from pieces of 1 byte up: the same rows,
    /// values and error positions as one pass.
    fn same_as_one_pass(name: &str, text: &[u8], column: Option<&str>, labels: bool) -> String {
        let path = temp(name, text);
        let one = outcome(&path, column, labels, None);
        for piece_bytes in [1, 2, 3, 5, 8, 13, 40, 1000] {
            let split = Split {
                min_bytes: 0,
                piece_bytes,
                max_pieces: 10_000,
            };
            let cut = outcome(&path, column, labels, Some(split));
            assert_eq!(cut, one, "{name}, pieces of {piece_bytes} bytes");
        }
        one
    }

    #[test]
    fn parallel_parsing_gives_the_rows_values_and_errors_of_one_pass() {
        let mut big = String::from("a,y\n");
        for i in 0..2000 {
            big += &format!("{i},{}\n", i as f64 * 0.37 - 11.0);
        }
        let ok = same_as_one_pass("plain.csv", big.as_bytes(), Some("y"), false);
        assert!(ok.starts_with("y None") && !ok.contains("error"), "{ok}");
        // CRLF, a BOM, blank lines (they count as lines, not rows).
        let crlf = same_as_one_pass(
            "crlf.csv",
            b"\xef\xbb\xbfa,y\r\n1,2\r\n\r\n3,4.5\r\n\n5,6\r\n",
            Some("y"),
            false,
        );
        assert!(!crlf.contains("error"), "{crlf}");
        // Lone carriage returns end lines too; and a bad cell after CRLF lines.
        let cr = same_as_one_pass("cr.csv", b"a,y\r1,2\r3,4\r5,x\r", Some("y"), false);
        assert!(
            cr.contains("row 3 (line 4)") && cr.contains("non-numeric value 'x'"),
            "{cr}"
        );
        let crlf_bad = same_as_one_pass("crlf_bad.csv", b"u,v\r\n1,2\r\n1,x\r\n", Some("v"), false);
        assert!(crlf_bad.contains("row 2 (line 3)"), "{crlf_bad}");
        let mixed = same_as_one_pass("mixed.csv", b"u,v\n1,2\r\n\r\n1,3\r4,\n", Some("v"), false);
        assert!(
            mixed.contains("row 3 (line 5)") && mixed.contains("empty cell"),
            "{mixed}"
        );
        // A bad cell in each piece: the first in the file is reported, at its row and line.
        let mut bad = String::from("a,y\n");
        for i in 0..300 {
            bad += &format!(
                "{i},{}\n",
                if i % 50 == 49 {
                    "oops".into()
                } else {
                    i.to_string()
                }
            );
            if i % 7 == 0 {
                bad += "\n";
            }
        }
        let first = same_as_one_pass("bad.csv", bad.as_bytes(), Some("y"), false);
        assert!(
            first.contains("row 50 (line 58)") && first.contains("'oops'"),
            "{first}"
        );
        // An empty cell, a short row, a long row.
        for (name, text, needle) in [
            (
                "empty.csv",
                &b"a,y\n1,2\n3,\n5,6\n"[..],
                "row 2 (line 3), column 'y': empty cell",
            ),
            (
                "short.csv",
                b"a,y\n1,2\n3\n5,6\n",
                "row 2 (line 3): the row has 1 fields, but the header has 2",
            ),
            (
                "long.csv",
                b"a,y\n1,2\n3,4,5\n",
                "row 2 (line 3): the row has 3 fields",
            ),
        ] {
            let e = same_as_one_pass(name, text, Some("y"), false);
            assert!(e.contains(needle), "{name}: {e}");
        }
        // Quoted fields, with a line break inside one: one pass (cuts by quote parity are not
        // safe), the same rows either way, and the line of a later error counts the break.
        let quoted = same_as_one_pass(
            "quoted.csv",
            b"a,y\n\"x\ny\",1\n\"p,q\",2\n\"r\",bad\n",
            Some("y"),
            false,
        );
        assert!(quoted.contains("row 3 (line 5)"), "{quoted}");
        // A byte-order mark inside the file is a cell's text (a reader drops one only at its
        // own start, which a cut can fall on); and blank lines before a bad row count.
        let bom = same_as_one_pass("bom.csv", b"y,a\n1,2\n\xef\xbb\xbf3,4\n", Some("y"), false);
        assert!(bom.contains("row 2 (line 3)"), "{bom}");
        let blank = same_as_one_pass("blank.csv", b"a,y\n1,2\n\n\r\n3,x\n", Some("y"), false);
        assert!(blank.contains("row 2 (line 5)"), "{blank}");
        // Labels: text cells make the column class labels, found the same way.
        let labels = same_as_one_pass(
            "labels.csv",
            b"a,y\n1,red\n2,blue\n3,red\n",
            Some("y"),
            true,
        );
        assert!(labels.contains("[\"blue\", \"red\"]"), "{labels}");
        // Invalid UTF-8 in a row.
        let utf8 = same_as_one_pass("utf8.csv", b"a,y\n1,2\n3,\xff\n", Some("y"), false);
        assert!(
            utf8.contains("row 2 (line 3)") && utf8.contains("UTF-8"),
            "{utf8}"
        );
    }
}
