//! Shared test helpers: one GPU context per test binary, and the skip/require policy.
#![allow(dead_code)]

pub mod audit;
pub mod cli;

use likely::gpu::{AdapterSelector, GpuContext};
use serde_json::Value;
use std::sync::OnceLock;

/// Asserts |a - b| <= rel max(|a|, |b|), naming `what` and the relative difference.
pub fn close(a: f64, b: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300),
        "{what}: {a} vs {b} (relative {:.2e})",
        (a - b).abs() / a.abs().max(b.abs())
    );
}

/// Every number in a JSON value (arrays and objects flattened, in order).
pub fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Object(map) => map.values().flat_map(numbers).collect(),
        Value::Number(x) => vec![x.as_f64().unwrap()],
        _ => vec![],
    }
}

/// The GPU context for this test binary, or `None` (with a loud message) when there is no
/// adapter. With `LIKELY_REQUIRE_GPU=1` (CI) a missing adapter fails the test instead.
pub fn gpu() -> Option<&'static GpuContext> {
    static CONTEXT: OnceLock<Option<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| match GpuContext::new(&AdapterSelector::default()) {
            Ok(ctx) => Some(ctx),
            Err(e) => {
                if std::env::var("LIKELY_REQUIRE_GPU").as_deref() == Ok("1") {
                    panic!("LIKELY_REQUIRE_GPU=1 but no GPU adapter is usable: {e}");
                }
                eprintln!("\n!!!!!!!! SKIPPING GPU TESTS: no GPU adapter ({e}) !!!!!!!!\n");
                None
            }
        })
        .as_ref()
}

/// The engines a test runs on: the CPU, and the GPU where there is an adapter.
pub fn backends() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if gpu().is_some() {
        v.push("gpu");
    }
    v
}

/// `name` in this test binary's own temporary folder (`likely-SUITE-PID`, made if need be).
pub fn temp_path(suite: &str, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("likely-{suite}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes a CSV with a header row at `path`, every value exactly (the shortest form that
/// reads back as the same f64), and returns the path as text.
pub fn csv_table(path: &std::path::Path, header: &[&str], columns: &[Vec<f64>]) -> String {
    let mut text = header.join(",") + "\n";
    for i in 0..columns[0].len() {
        let row: Vec<String> = columns.iter().map(|c| format!("{:e}", c[i])).collect();
        text += &(row.join(",") + "\n");
    }
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Unwraps the GPU context or returns from the test after the skip message.
#[macro_export]
macro_rules! gpu_or_skip {
    () => {
        match common::gpu() {
            Some(ctx) => ctx,
            None => {
                eprintln!("SKIPPED: {} needs a GPU adapter", module_path!());
                return;
            }
        }
    };
}

/// Solves a x = b by Gaussian elimination with partial pivoting: an independent reference for
/// the tests' textbook estimators (IRLS, least squares), not the library's own solver.
#[allow(clippy::needless_range_loop)] // row operations read best with indices
pub fn gauss_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let p = b.len();
    for c in 0..p {
        let piv = (c..p)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        a.swap(c, piv);
        b.swap(c, piv);
        for r in c + 1..p {
            let f = a[r][c] / a[c][c];
            for k in c..p {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; p];
    for r in (0..p).rev() {
        x[r] = (b[r] - (r + 1..p).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
    }
    x
}

/// A little-endian f64 .npy file of `shape` (C order).
pub fn write_npy(path: &std::path::Path, shape: &[usize], values: &[f64]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut bytes = npy_bytes(&format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    ));
    values.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

/// The start of a version 1.0 `.npy` file with header dict `dict` (as numpy pads it: the data
/// start on a 64-byte boundary); the caller appends the data.
pub fn npy_bytes(dict: &str) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes
}
