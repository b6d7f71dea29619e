//! NumPy `.npy` (format versions 1-3): f32, f64, signed/unsigned integers and bool, either
//! byte order, C or Fortran order; 1-D arrays, or 2-D with a column chosen by index. The
//! header is parsed as numpy parses it, and a file must hold exactly the data it describes.

use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;

pub(super) const MAGIC: &[u8] = b"\x93NUMPY";

#[derive(Clone, Copy, Debug)]
enum Scalar {
    Float,
    Signed,
    Unsigned,
    Bool,
}

struct Header {
    scalar: Scalar,
    width: usize,
    big_endian: bool,
    shape: Vec<usize>,
    /// Column-major (numpy's fortran_order): each column of a 2-D array is contiguous.
    fortran: bool,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::data(path, "", message)
}

/// One column of a .npy file: where it is and how to decode it.
#[derive(Clone, Debug)]
struct Layout {
    data_offset: u64,
    rows: usize,
    cols: usize,
    col: usize,
    label: String,
    width: usize,
    scalar: Scalar,
    big_endian: bool,
    fortran: bool,
}

impl Layout {
    /// Row `r`'s value, from `data` holding rows starting at row 0 of `data`.
    fn value(&self, data: &[u8], r: usize) -> f64 {
        let at = (r * self.cols + self.col) * self.width;
        decode(&data[at..at + self.width], self.scalar, self.big_endian)
    }
}

/// A .npy file read in chunks with positioned reads, so memory stays bounded however large
/// the file is (no mapping whose pages would count as resident).
#[derive(Debug)]
pub struct NpyReader {
    path: std::path::PathBuf,
    file: std::fs::File,
    layout: Layout,
    buffer: Vec<u8>,
}

impl NpyReader {
    pub fn open(path: &Path, column: Option<&str>) -> Result<NpyReader> {
        use std::io::Read;
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut head = vec![0u8; 12];
        let got = file.read(&mut head).map_err(io)?;
        head.truncate(got);
        let header_len = match head.get(6) {
            Some(1) if head.len() >= 10 => 10 + u16::from_le_bytes([head[8], head[9]]) as usize,
            Some(2 | 3) if head.len() >= 12 => {
                12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize
            }
            _ => head.len().max(10),
        };
        // At most numpy's header limit (and a byte more, so a longer header is still seen
        // as such): a v2/v3 length field can claim up to 4 GiB.
        let mut bytes = vec![0u8; header_len.min(file_len as usize).min(12 + 10_001)];
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
        file.read_exact(&mut bytes).map_err(io)?;
        let layout = layout(path, &bytes, column, file_len)?;
        Ok(NpyReader {
            path: path.to_path_buf(),
            file,
            layout,
            buffer: Vec::new(),
        })
    }

    /// A 2-D array as a table: every column, read whole rows at a time.
    pub fn open_table(path: &Path) -> Result<NpyReader> {
        let reader = NpyReader::open(path, Some("0")).map_err(|e| match e {
            Error::Data { ref message, .. } if message.contains("the array is 1-D") => bad(
                path,
                "a 1-D array is one column: a table needs a 2-D array (rows x columns, \
                 the columns named by index: --target 0)",
            ),
            other => other,
        })?;
        Ok(reader)
    }

    /// Columns of a 2-D array (1 for 1-D).
    pub fn columns(&self) -> usize {
        self.layout.cols
    }

    pub fn len(&self) -> usize {
        self.layout.rows
    }

    pub fn is_empty(&self) -> bool {
        self.layout.rows == 0
    }

    pub fn column_label(&self) -> &str {
        &self.layout.label
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether every value of the column is exactly an f32 (f4, and integers and booleans of
    /// at most 16 bits), so that it can be held in 4 bytes a sample.
    pub fn exact_in_f32(&self) -> bool {
        let l = &self.layout;
        matches!(
            (l.scalar, l.width),
            (Scalar::Float, 4) | (Scalar::Signed | Scalar::Unsigned, 1 | 2) | (Scalar::Bool, _)
        )
    }

    /// The whole column in memory at its stored width: f32 where [`NpyReader::exact_in_f32`],
    /// else f64; read in pieces, so no second full-size copy is ever held.
    pub fn read_samples(&mut self) -> Result<super::Samples> {
        const PIECE: usize = 1 << 20;
        let n = self.len();
        // Allocated once at full size and filled in place (a Vec turned into an Arc would be
        // copied: two full-size copies at the peak).
        let samples = if self.exact_in_f32() {
            let mut values: Arc<[f32]> = std::iter::repeat_n(0.0f32, n).collect();
            let out = Arc::get_mut(&mut values).expect("not shared yet");
            let mut piece = vec![0.0f64; PIECE.min(n)];
            for start in (0..n).step_by(PIECE) {
                let len = PIECE.min(n - start);
                self.read(start, &mut piece[..len])?;
                for (o, &v) in out[start..start + len].iter_mut().zip(&piece[..len]) {
                    *o = v as f32;
                }
            }
            super::Samples::F32(values)
        } else {
            let mut values: Arc<[f64]> = std::iter::repeat_n(0.0f64, n).collect();
            let out = Arc::get_mut(&mut values).expect("not shared yet");
            for start in (0..n).step_by(PIECE) {
                let len = PIECE.min(n - start);
                self.read(start, &mut out[start..start + len])?;
            }
            super::Samples::F64(values)
        };
        self.buffer = Vec::new();
        Ok(samples)
    }

    /// Reads rows `start..start + out.len()` into `out`.
    pub fn read(&mut self, start: usize, out: &mut [f64]) -> Result<()> {
        let l = &self.layout;
        let contiguous = l.fortran || l.cols == 1;
        if contiguous {
            // The column's values are adjacent: one read of just them.
            let at = (l.col * l.rows + start) * l.width;
            self.load_bytes(at, out.len() * l.width)?;
            decode_all(&self.buffer, &self.layout, out);
            return Ok(());
        }
        self.load_rows(start, out.len())?;
        let l = &self.layout;
        for (r, v) in out.iter_mut().enumerate() {
            *v = l.value(&self.buffer, r);
        }
        Ok(())
    }

    /// Reads rows `start..` of every column, row-major (`out.len()` a multiple of
    /// [`NpyReader::columns`]): one read, or one a column for a column-major array.
    pub fn read_rows(&mut self, start: usize, out: &mut [f64]) -> Result<()> {
        let cols = self.layout.cols;
        let rows = out.len() / cols;
        if self.layout.fortran {
            for c in 0..cols {
                let (width, total) = (self.layout.width, self.layout.rows);
                self.load_bytes((c * total + start) * width, rows * width)?;
                let l = &self.layout;
                for r in 0..rows {
                    out[r * cols + c] = decode(
                        &self.buffer[r * width..(r + 1) * width],
                        l.scalar,
                        l.big_endian,
                    );
                }
            }
            return Ok(());
        }
        self.load_rows(start, rows)?;
        let l = &self.layout;
        for (i, v) in out.iter_mut().enumerate() {
            let at = i * l.width;
            *v = decode(&self.buffer[at..at + l.width], l.scalar, l.big_endian);
        }
        Ok(())
    }

    /// Reads the bytes of `rows` whole rows from row `start` into the buffer.
    fn load_rows(&mut self, start: usize, rows: usize) -> Result<()> {
        let row_bytes = self.layout.cols * self.layout.width;
        self.load_bytes(start * row_bytes, rows * row_bytes)
    }

    /// Reads `len` bytes of the data from byte `at` of the data into the buffer.
    fn load_bytes(&mut self, at: usize, len: usize) -> Result<()> {
        use std::io::{Read, Seek};
        self.buffer.resize(len, 0);
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        self.file
            .seek(std::io::SeekFrom::Start(
                self.layout.data_offset + at as u64,
            ))
            .map_err(io)?;
        self.file.read_exact(&mut self.buffer).map_err(io)
    }
}

/// Where one column's values sit in a .npy file, from its first bytes (the header).
fn layout(path: &Path, bytes: &[u8], column: Option<&str>, file_len: u64) -> Result<Layout> {
    if !bytes.starts_with(MAGIC) {
        return Err(bad(path, "not a .npy file (missing \\x93NUMPY magic)"));
    }
    if bytes.len() < 10 {
        return Err(bad(path, "truncated .npy header"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err(bad(path, "truncated .npy header")),
        v => return Err(bad(path, format!("unsupported .npy format version {v}"))),
    };
    // numpy refuses a minor version other than 0, and headers past 10 000 bytes (its
    // safety limit against headers that would take long to parse).
    if bytes[7] != 0 {
        return Err(bad(
            path,
            format!("unsupported .npy format version {}.{}", bytes[6], bytes[7]),
        ));
    }
    // As numpy: a file shorter than its header is truncated; a longer header is refused
    // (only the first 10 001 bytes of it were read).
    if (start + header_len) as u64 > file_len {
        return Err(bad(path, "truncated .npy header"));
    }
    if header_len > 10_000 {
        return Err(bad(
            path,
            format!("the .npy header is {header_len} bytes, more than numpy's limit of 10000"),
        ));
    }
    let end = start + header_len;
    let text = bytes
        .get(start..end)
        .ok_or_else(|| bad(path, "truncated .npy header"))?;
    let text = std::str::from_utf8(text).map_err(|_| bad(path, "the .npy header is not text"))?;
    let header = parse_header(path, text, bytes[6] < 3)?;

    let rows = header.shape.first().copied().unwrap_or(1);
    let cols = match header.shape.len() {
        0 | 1 => 1,
        2 => header.shape[1],
        d => {
            return Err(bad(
                path,
                format!("{d}-dimensional array: expected 1-D, or 2-D with --column INDEX"),
            ))
        }
    };
    let (col, label) = match (header.shape.len(), column) {
        (2, Some(c)) => {
            let i: usize = c.parse().map_err(|_| {
                bad(
                    path,
                    format!(
                        "--column '{c}': a .npy array's columns are numbered 0..{}",
                        cols.saturating_sub(1)
                    ),
                )
            })?;
            if i >= cols {
                return Err(bad(
                    path,
                    format!("--column {i} is out of range: the array has {cols} columns"),
                ));
            }
            (i, i.to_string())
        }
        (2, None) if cols == 1 => (0, String::new()),
        (2, None) => {
            return Err(bad(
                path,
                format!("2-D array with {cols} columns: choose one with --column INDEX"),
            ))
        }
        (_, Some(c)) => {
            return Err(bad(
                path,
                format!("--column '{c}' given but the array is 1-D"),
            ))
        }
        (_, None) => (0, String::new()),
    };
    let count = rows
        .checked_mul(cols)
        .and_then(|c| c.checked_mul(header.width))
        .ok_or_else(|| bad(path, "array shape overflows"))?;
    let held = file_len.saturating_sub(end as u64);
    if held < count as u64 {
        return Err(bad(
            path,
            format!("truncated .npy data: header promises {count} bytes, file holds {held}"),
        ));
    }
    if held > count as u64 {
        return Err(bad(
            path,
            format!(
                "{} bytes after the data that the header does not describe (it promises \
                 {count} bytes of data): the file is not one .npy array",
                held - count as u64
            ),
        ));
    }
    Ok(Layout {
        data_offset: end as u64,
        rows,
        cols,
        col,
        label,
        width: header.width,
        scalar: header.scalar,
        big_endian: header.big_endian,
        fortran: header.fortran,
    })
}

/// Decodes adjacent values of the layout's type from `bytes` into `out`: the common
/// little-endian floats in a loop the compiler vectorises, anything else value by value.
fn decode_all(bytes: &[u8], l: &Layout, out: &mut [f64]) {
    match (l.scalar, l.width, l.big_endian) {
        (Scalar::Float, 4, false) => {
            for (v, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64;
            }
        }
        (Scalar::Float, 8, false) => {
            for (v, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *v = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            }
        }
        _ => {
            for (v, b) in out.iter_mut().zip(bytes.chunks_exact(l.width)) {
                *v = decode(b, l.scalar, l.big_endian);
            }
        }
    }
}

fn decode(b: &[u8], scalar: Scalar, big_endian: bool) -> f64 {
    let mut buf = [0u8; 8];
    let w = b.len();
    if big_endian {
        for (i, &x) in b.iter().rev().enumerate() {
            buf[i] = x;
        }
    } else {
        buf[..w].copy_from_slice(b);
    }
    match (scalar, w) {
        (Scalar::Float, 4) => f32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
        (Scalar::Float, 8) => f64::from_le_bytes(buf),
        (Scalar::Bool, _) => (buf[0] != 0) as u8 as f64,
        (Scalar::Unsigned, _) => u64::from_le_bytes(buf) as f64,
        (Scalar::Signed, _) => {
            // Sign-extend from w bytes.
            let shift = 64 - 8 * w as u32;
            ((i64::from_le_bytes(buf) << shift) >> shift) as f64
        }
        _ => f64::NAN,
    }
}

/// A value of the header's Python literal.
#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Str(String),
    Bool(bool),
    Int(u128),
    Tuple(Vec<Literal>),
    /// A list, a dict, None or a negative number: literals the header may not use here.
    Other(&'static str),
}

/// Parses the header as numpy does (`ast.literal_eval` of a dict, then its checks): exactly
/// the keys 'descr', 'fortran_order' and 'shape' (a key given twice takes its last value, as
/// in Python), fortran_order a bool, shape a tuple of non-negative integers. Anything numpy
/// would refuse is an error here too.
fn parse_header(path: &Path, text: &str, python2_longs: bool) -> Result<Header> {
    let malformed = |why: String| bad(path, format!("malformed .npy header: {why}"));
    let dict = PyLiteral::parse_dict(text, python2_longs).map_err(malformed)?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, value) in dict {
        match key.as_str() {
            "descr" => descr = Some(value),
            "fortran_order" => fortran = Some(value),
            "shape" => shape = Some(value),
            other => {
                return Err(malformed(format!(
                    "unexpected key '{other}' (a .npy header holds 'descr', 'fortran_order' \
                     and 'shape')"
                )))
            }
        }
    }
    let missing = |k: &str| bad(path, format!("the .npy header has no '{k}'"));
    let descr = match descr.ok_or_else(|| missing("descr"))? {
        Literal::Str(d) => d,
        _ => {
            return Err(bad(
                path,
                "unsupported .npy dtype (structured arrays are not supported)",
            ))
        }
    };
    let fortran = match fortran.ok_or_else(|| missing("fortran_order"))? {
        Literal::Bool(b) => b,
        other => {
            return Err(malformed(format!(
                "'fortran_order' is {}, not True or False",
                describe(&other)
            )))
        }
    };
    let shape: Vec<usize> = match shape.ok_or_else(|| missing("shape"))? {
        Literal::Tuple(items) => items
            .iter()
            .map(|item| match item {
                Literal::Int(v) => usize::try_from(*v)
                    .map_err(|_| malformed(format!("shape entry {v} is too large"))),
                other => Err(malformed(format!(
                    "a shape entry is {}, not a non-negative integer",
                    describe(other)
                ))),
            })
            .collect::<Result<_>>()?,
        other => {
            return Err(malformed(format!(
                "'shape' is {}, not a tuple of integers",
                describe(&other)
            )))
        }
    };
    let descr = spelled_out(&descr);
    let (order, code) = descr.split_at(if descr.is_char_boundary(1) { 1 } else { 0 });
    let big_endian = match order {
        "<" | "|" | "=" => cfg!(target_endian = "big") && order == "=",
        ">" => true,
        _ => return Err(bad(path, format!("unsupported .npy dtype '{descr}'"))),
    };
    let (scalar, width) = match code {
        "f4" => (Scalar::Float, 4),
        "f8" => (Scalar::Float, 8),
        "i1" => (Scalar::Signed, 1),
        "i2" => (Scalar::Signed, 2),
        "i4" => (Scalar::Signed, 4),
        "i8" => (Scalar::Signed, 8),
        "u1" => (Scalar::Unsigned, 1),
        "u2" => (Scalar::Unsigned, 2),
        "u4" => (Scalar::Unsigned, 4),
        "u8" => (Scalar::Unsigned, 8),
        "b1" => (Scalar::Bool, 1),
        _ => {
            return Err(bad(
                path,
                format!("unsupported .npy dtype '{descr}' (supported: f4, f8, i1-i8, u1-u8, b1)"),
            ))
        }
    };
    Ok(Header {
        scalar,
        width,
        big_endian,
        shape,
        fortran,
    })
}

/// numpy's other spellings of the dtypes read here, as byte order and code: no byte order
/// (native), one-letter codes ('d', '<f', '?'), and names ('float64', 'int16').
fn spelled_out(descr: &str) -> String {
    const NAMES: [(&str, &str); 13] = [
        ("float32", "f4"),
        ("float64", "f8"),
        ("float", "f8"),
        ("int8", "i1"),
        ("uint8", "u1"),
        ("int16", "i2"),
        ("uint16", "u2"),
        ("int32", "i4"),
        ("uint32", "u4"),
        ("int64", "i8"),
        ("int", "i8"),
        ("uint64", "u8"),
        ("bool", "b1"),
    ];
    if let Some((_, code)) = NAMES.iter().find(|(name, _)| *name == descr) {
        return format!("={code}");
    }
    let (order, rest) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let code = match rest {
        "f" => "f4",
        "d" => "f8",
        "b" => "i1",
        "B" => "u1",
        "h" => "i2",
        "H" => "u2",
        "i" => "i4",
        "I" => "u4",
        "l" | "q" => "i8",
        "L" | "Q" => "u8",
        "?" => "b1",
        other => other,
    };
    format!("{order}{code}")
}

fn describe(v: &Literal) -> String {
    match v {
        Literal::Str(s) => format!("the string '{s}'"),
        Literal::Bool(b) => if *b { "True" } else { "False" }.into(),
        Literal::Int(i) => i.to_string(),
        Literal::Tuple(_) => "a tuple".into(),
        Literal::Other(what) => (*what).into(),
    }
}

/// The subset of Python's literal syntax a .npy header uses: a dict of string keys whose
/// values are strings, True/False, integers and tuples; lists, dicts, None and signed
/// numbers are recognised only to be refused.
struct PyLiteral<'a> {
    text: &'a [u8],
    at: usize,
    /// Whether integers may end in Python 2's `L` (format versions 1 and 2 only).
    longs: bool,
}

impl<'a> PyLiteral<'a> {
    fn parse_dict(
        text: &'a str,
        longs: bool,
    ) -> std::result::Result<Vec<(String, Literal)>, String> {
        let mut p = PyLiteral {
            text: text.as_bytes(),
            at: 0,
            longs,
        };
        p.expect(b'{')?;
        let mut items = Vec::new();
        loop {
            if p.peek() == Some(b'}') {
                p.at += 1;
                break;
            }
            let key = match p.value(0)? {
                Literal::Str(k) => k,
                other => return Err(format!("a key is {}, not a string", describe(&other))),
            };
            p.expect(b':')?;
            let value = p.value(0)?;
            items.push((key, value));
            match p.peek() {
                Some(b',') => p.at += 1,
                Some(b'}') => {}
                _ => return Err(p.unexpected("',' or '}'")),
            }
        }
        // Python ignores trailing whitespace (the padding and the newline), nothing else.
        if p.peek().is_some() {
            return Err(p.unexpected("the end of the header"));
        }
        Ok(items)
    }

    fn peek(&mut self) -> Option<u8> {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
        self.text.get(self.at).copied()
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{}'", c as char)))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        let rest = String::from_utf8_lossy(&self.text[self.at.min(self.text.len())..]);
        let rest: String = rest.chars().take(20).collect();
        if rest.is_empty() {
            format!("expected {wanted}, found the end")
        } else {
            format!("expected {wanted} at '{rest}'")
        }
    }

    fn value(&mut self, depth: usize) -> std::result::Result<Literal, String> {
        if depth > 8 {
            return Err("nested too deeply".into());
        }
        // A string prefix (u'...', r'...'): the same string for the plain characters the
        // header's strings hold.
        if let (Some(b'u' | b'U' | b'r' | b'R'), Some(b'\'' | b'"')) =
            (self.peek(), self.text.get(self.at + 1).copied())
        {
            self.at += 1;
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.at += 1;
                let start = self.at;
                while self.at < self.text.len() && self.text[self.at] != q {
                    if self.text[self.at] == b'\\' || self.text[self.at] == b'\n' {
                        return Err("escapes and line breaks in strings are not supported".into());
                    }
                    self.at += 1;
                }
                if self.at >= self.text.len() {
                    return Err("unterminated string".into());
                }
                let s = std::str::from_utf8(&self.text[start..self.at])
                    .map_err(|_| "a string is not UTF-8".to_string())?
                    .to_string();
                self.at += 1;
                Ok(Literal::Str(s))
            }
            Some(b'(') => {
                self.at += 1;
                let mut items = Vec::new();
                let mut comma = false;
                loop {
                    if self.peek() == Some(b')') {
                        self.at += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => {
                            self.at += 1;
                            comma = true;
                        }
                        Some(b')') => {}
                        _ => return Err(self.unexpected("',' or ')'")),
                    }
                }
                // `(7)` is the integer 7 in Python, not a tuple.
                if items.len() == 1 && !comma {
                    return Ok(items
                        .pop()
                        .unwrap_or(Literal::Other("a parenthesised value")));
                }
                Ok(Literal::Tuple(items))
            }
            Some(b'[') | Some(b'{') => {
                // Skip the bracketed value (structured dtypes are lists of tuples).
                let (open, close) = if self.peek() == Some(b'[') {
                    (b'[', b']')
                } else {
                    (b'{', b'}')
                };
                let mut level = 0usize;
                while self.at < self.text.len() {
                    let c = self.text[self.at];
                    self.at += 1;
                    if c == open {
                        level += 1;
                    } else if c == close {
                        level -= 1;
                        if level == 0 {
                            return Ok(Literal::Other(if open == b'[' {
                                "a list"
                            } else {
                                "a dict"
                            }));
                        }
                    }
                }
                Err("unbalanced brackets".into())
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.at;
                while self.at < self.text.len()
                    && (self.text[self.at].is_ascii_alphanumeric() || self.text[self.at] == b'_')
                {
                    self.at += 1;
                }
                let word = std::str::from_utf8(&self.text[start..self.at]).unwrap_or("");
                // Python 2 wrote long integers with an L, which numpy still reads in format
                // versions 1 and 2.
                let digits = if self.longs {
                    word.strip_suffix('L').unwrap_or(word)
                } else {
                    word
                };
                let valid_underscores =
                    !digits.starts_with('_') && !digits.ends_with('_') && !digits.contains("__");
                let plain: String = digits.chars().filter(|&c| c != '_').collect();
                if !valid_underscores
                    || !plain.bytes().all(|b| b.is_ascii_digit())
                    || (plain.len() > 1
                        && plain.starts_with('0')
                        && plain.bytes().any(|b| b != b'0'))
                {
                    return Err(format!("'{word}' is not an integer"));
                }
                plain
                    .parse::<u128>()
                    .map(Literal::Int)
                    .map_err(|_| format!("'{word}' is too large"))
            }
            Some(b'-') | Some(b'+') => {
                self.at += 1;
                match self.value(depth + 1)? {
                    Literal::Int(_) => Ok(Literal::Other("a signed number")),
                    other => Err(format!("a sign before {}", describe(&other))),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.at;
                while self.at < self.text.len()
                    && (self.text[self.at].is_ascii_alphanumeric() || self.text[self.at] == b'_')
                {
                    self.at += 1;
                }
                match &self.text[start..self.at] {
                    b"True" => Ok(Literal::Bool(true)),
                    b"False" => Ok(Literal::Bool(false)),
                    b"None" => Ok(Literal::Other("None")),
                    word => Err(format!(
                        "'{}' is not a Python literal",
                        String::from_utf8_lossy(word)
                    )),
                }
            }
            _ => Err(self.unexpected("a value")),
        }
    }
}

/// Writes a 1-D little-endian f64 `.npy` (used by tests and demos to make data files).
pub fn write_npy_f64(path: &Path, values: &[f64]) -> Result<()> {
    write_npy_f64_table(path, values, None)
}

/// As [`write_npy_f64`], as a row-major 2-D array of `columns` columns when given.
pub fn write_npy_f64_table(path: &Path, values: &[f64], columns: Option<usize>) -> Result<()> {
    let shape = match columns {
        Some(c) => format!("({}, {c})", values.len() / c.max(1)),
        None => format!("({},)", values.len()),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so that magic + version + length + header is a multiple of 64, ending in '\n'.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + values.len() * 8);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
