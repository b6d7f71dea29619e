//! Entry points for fuzzing the readers: each writes the bytes to a private temporary file
//! (the readers take paths, as users give them) and reads it to the end as the commands do.
//! A reader may return any error; it must never panic, hang or allocate without bound. The
//! cargo-fuzz targets in `fuzz/` and the corpus test (`tests/corpus.rs`) call these.

use super::{load, TableStream, TargetSpec};
use crate::error::Result;
use crate::family::FamilyName;
use std::path::{Path, PathBuf};

/// The formats a fuzz input is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    Csv,
    Npy,
    Parquet,
    Model,
}

impl Reader {
    pub const ALL: [Reader; 4] = [Reader::Csv, Reader::Npy, Reader::Parquet, Reader::Model];

    /// The file extension that selects this reader.
    pub fn extension(self) -> &'static str {
        match self {
            Reader::Csv => "csv",
            Reader::Npy => "npy",
            Reader::Parquet => "parquet",
            Reader::Model => "json",
        }
    }
}

/// Reads `bytes` as `reader` would a file: a column for a family fit (every family that
/// takes the values), then a table with its first column as the target; a model file is
/// loaded. The results are dropped: only panics matter here.
pub fn read_bytes(reader: Reader, bytes: &[u8]) {
    /// Removes the scratch file however the read ends: a panic (what fuzzing looks for)
    /// unwinds through it too.
    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let scratch = Scratch(scratch_path(reader));
    if std::fs::write(&scratch.0, bytes).is_err() {
        return;
    }
    let _ = read_file(reader, &scratch.0);
}

fn read_file(reader: Reader, path: &Path) -> Result<()> {
    if reader == Reader::Model {
        return crate::model::Model::load(path).map(drop);
    }
    for family in [FamilyName::Gaussian, FamilyName::Categorical] {
        let _ = load(path, None, family);
    }
    let _ = load(path, Some("0"), FamilyName::Gaussian);
    let target = match reader {
        Reader::Npy => "0".to_string(),
        Reader::Parquet => super::parquet_file::column_names(path)?
            .into_iter()
            .next()
            .unwrap_or_default(),
        _ => {
            let text = std::fs::read(path).unwrap_or_default();
            let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
            String::from_utf8_lossy(line)
                .split(',')
                .next()
                .unwrap_or_default()
                .trim_start_matches('\u{feff}')
                .trim()
                .to_string()
        }
    };
    if reader == Reader::Csv {
        super::csv_rows::compare_cuts(path);
    }
    for spec in [
        TargetSpec::Train { allow_labels: true },
        TargetSpec::Train {
            allow_labels: false,
        },
        TargetSpec::Ignore,
    ] {
        if let Ok(mut table) = TableStream::open(path, &target, None, spec) {
            let _ = table.for_each_chunk(|_| Ok(true));
        }
    }
    Ok(())
}

/// A file name of this process and thread, so parallel fuzzing threads do not collide.
fn scratch_path(reader: Reader) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "likely-fuzz-{}-{id}.{}",
        std::process::id(),
        reader.extension()
    ))
}
