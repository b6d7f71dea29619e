//! No input makes a reader panic: every file of the corpus (tests/fixtures/corpus/, the seeds
//! the fuzz targets in fuzz/ start from, and any crash they found) and thousands of
//! deterministic mutations of each are read as the commands read them. A reader may refuse an
//! input with an error; a panic fails the test and names the input that caused it.

use likely::data::fuzz::{read_bytes, Reader};
use std::path::PathBuf;

fn corpus(reader: Reader) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus")
        .join(match reader {
            Reader::Csv => "csv",
            Reader::Npy => "npy",
            Reader::Parquet => "parquet",
            Reader::Model => "model",
        });
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

/// xorshift64*: mutations reproducible from the seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that make parsers take unusual paths.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b",",
    b"\"",
    b"\xef\xbb\xbf",
    b"NaN",
    b"inf",
    b"-1",
    b"1e999",
    b"",
    b"True",
    b"Tru",
    b"False",
    b"'shape': (",
    b"(18446744073709551615,)",
    b"'fortran_order': ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"null",
    b"\"params\": [",
    b"99999999999",
    b"\x00",
    b"PAR1",
];

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = [0u8, 0xff, 0x7f, 0x80, b'9', b' '][rng.below(6)];
            }
            2 => bytes.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let (a, b) = (rng.below(len), rng.below(len));
                let (a, b) = (a.min(b), a.max(b).min(a + 64));
                let piece = bytes[a..b].to_vec();
                let at = rng.below(len);
                bytes.splice(at..at, piece);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                bytes.splice(at..at, token.iter().copied());
            }
            5 if len > 0 => {
                let (a, b) = (rng.below(len), rng.below(len));
                bytes.drain(a.min(b)..a.max(b).min(a.min(b) + 16));
            }
            _ if len >= 8 => {
                // A little-endian integer (a length or an offset) set to an extreme.
                let i = rng.below(len - 4);
                let v = [0u32, 1, u32::MAX, i32::MAX as u32, 1 << 31][rng.below(5)];
                bytes[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    bytes
}

fn survives(reader: Reader, name: &str, bytes: &[u8]) -> Option<String> {
    let outcome = std::panic::catch_unwind(|| read_bytes(reader, bytes));
    outcome.err().map(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let kept = std::env::temp_dir().join(format!(
            "likely-crash-{}-{}.{}",
            std::process::id(),
            name.rsplit('/').next().unwrap_or("input"),
            reader.extension()
        ));
        let _ = std::fs::write(&kept, bytes);
        format!(
            "{name}: panicked ({why}); the input is kept at {}",
            kept.display()
        )
    })
}

/// `LIKELY_CORPUS_MUTATIONS` asks for a deeper run than CI's.
fn run(reader: Reader, mutations: usize) {
    let mutations = std::env::var("LIKELY_CORPUS_MUTATIONS")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(mutations);
    let mut failures = Vec::new();
    for (name, seed) in corpus(reader) {
        if let Some(f) = survives(reader, &name, &seed) {
            failures.push(f);
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.len() as u64);
        for m in 0..mutations {
            let bytes = mutate(&seed, &mut rng);
            if let Some(f) = survives(reader, &format!("{name} mutation {m}"), &bytes) {
                failures.push(f);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} inputs made the {reader:?} reader panic:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

#[test]
fn no_csv_input_panics() {
    run(Reader::Csv, 400);
}

#[test]
fn no_npy_input_panics() {
    run(Reader::Npy, 400);
}

#[test]
fn no_parquet_input_panics() {
    run(Reader::Parquet, 400);
}

#[test]
fn no_model_file_panics() {
    run(Reader::Model, 400);
}

#[test]
fn the_seeds_are_valid_files() {
    // Mutations of valid files reach deep into the readers; a seed that does not read would
    // test only the first check. Seeds named crash-* are inputs that once made a reader
    // panic, and bad-* ones are invalid on purpose: they must fail with an error.
    use likely::family::FamilyName;
    for reader in Reader::ALL {
        for (name, _) in corpus(reader) {
            let path = std::path::Path::new(&name);
            let read = match reader {
                Reader::Model => likely::model::Model::load(path).map(drop),
                _ => likely::data::load(path, Some("y"), FamilyName::Categorical)
                    .or_else(|_| likely::data::load(path, Some("y"), FamilyName::Gaussian))
                    .or_else(|_| likely::data::load(path, None, FamilyName::Gaussian))
                    .or_else(|_| likely::data::load(path, Some("0"), FamilyName::Gaussian))
                    .map(drop),
            };
            let file = name.rsplit('/').next().unwrap();
            let crash = file.starts_with("crash-") || file.starts_with("bad-");
            assert_eq!(read.is_ok(), !crash, "{name}: {read:?}");
        }
    }
}
