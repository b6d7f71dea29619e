//! NumPy `.npy` (format versions 1-3): f32, f64, signed/unsigned integers and bool, either
//! byte order, C order; 1-D arrays, or 2-D with a column chosen by index.

use crate::error::{Error, Result};
use std::path::Path;

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
        let mut bytes = vec![0u8; header_len.min(file_len as usize)];
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

    /// Reads rows `start..start + out.len()` into `out`.
    pub fn read(&mut self, start: usize, out: &mut [f64]) -> Result<()> {
        self.load_rows(start, out.len())?;
        let l = &self.layout;
        for (r, v) in out.iter_mut().enumerate() {
            *v = l.value(&self.buffer, r);
        }
        Ok(())
    }

    /// Reads rows `start..` of every column, row-major (`out.len()` a multiple of
    /// [`NpyReader::columns`]), in one read.
    pub fn read_rows(&mut self, start: usize, out: &mut [f64]) -> Result<()> {
        let cols = self.layout.cols;
        self.load_rows(start, out.len() / cols)?;
        let l = &self.layout;
        for (i, v) in out.iter_mut().enumerate() {
            let at = i * l.width;
            *v = decode(&self.buffer[at..at + l.width], l.scalar, l.big_endian);
        }
        Ok(())
    }

    /// Reads the bytes of `rows` whole rows from row `start` into the buffer.
    fn load_rows(&mut self, start: usize, rows: usize) -> Result<()> {
        use std::io::{Read, Seek};
        let l = &self.layout;
        let row_bytes = l.cols * l.width;
        self.buffer.resize(rows * row_bytes, 0);
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        self.file
            .seek(std::io::SeekFrom::Start(
                l.data_offset + (start * row_bytes) as u64,
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
    let end = start + header_len;
    let text = bytes
        .get(start..end)
        .ok_or_else(|| bad(path, "truncated .npy header"))?;
    let text = std::str::from_utf8(text).map_err(|_| bad(path, "the .npy header is not text"))?;
    let header = parse_header(path, text)?;

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
    Ok(Layout {
        data_offset: end as u64,
        rows,
        cols,
        col,
        label,
        width: header.width,
        scalar: header.scalar,
        big_endian: header.big_endian,
    })
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

/// Parses the header dict, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }`.
fn parse_header(path: &Path, text: &str) -> Result<Header> {
    let field = |key: &str| -> Result<&str> {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(path, format!("the .npy header has no '{key}'")))?;
        let rest = &text[at + key.len() + 2..];
        let colon = rest
            .find(':')
            .ok_or_else(|| bad(path, "malformed .npy header"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| {
            bad(
                path,
                "unsupported .npy dtype (structured arrays are not supported)",
            )
        })?;
    let (order, code) = descr.split_at(1.min(descr.len()));
    let big_endian = match order {
        "<" | "|" | "=" => cfg!(target_endian = "big") && order == "=",
        ">" => true,
        _ => return Err(bad(path, format!("unsupported .npy dtype '{descr}'"))),
    };
    let (scalar, width) = match code {
        "f4" => (Scalar::Float, 4),
        "f8" => (Scalar::Float, 8),
        "i1" | "i2" | "i4" | "i8" => (Scalar::Signed, code[1..].parse().unwrap_or(8)),
        "u1" | "u2" | "u4" | "u8" => (Scalar::Unsigned, code[1..].parse().unwrap_or(8)),
        "b1" => (Scalar::Bool, 1),
        _ => {
            return Err(bad(
                path,
                format!("unsupported .npy dtype '{descr}' (supported: f4, f8, i1-i8, u1-u8, b1)"),
            ))
        }
    };
    if field("fortran_order")?.starts_with("True") {
        return Err(bad(
            path,
            "Fortran-order .npy arrays are not supported: save with C order",
        ));
    }
    let shape = field("shape")?;
    let close = shape
        .find(')')
        .ok_or_else(|| bad(path, "malformed .npy shape"))?;
    let shape: Vec<usize> = shape[1.min(close)..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse()
                .map_err(|_| bad(path, format!("malformed .npy shape entry '{s}'")))
        })
        .collect::<Result<_>>()?;
    Ok(Header {
        scalar,
        width,
        big_endian,
        shape,
    })
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
