//! Memory stays bounded by default: f32 data is held at 4 bytes a sample (one copy), a
//! streamed fit stays within its budget, and whether data is held or streamed follows the
//! memory actually available (MemAvailable within a cgroup limit). Bounds are on the kernel's
//! resident-memory reading (peak_rss_bytes), never on time.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("likely-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One step of a xorshift generator (the tests' data need no more than a fixed sequence).
fn xorshift(state: &mut u64) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
}

/// The magic, version 1.0 and header of a 1-D `.npy` of `n` values of type `descr`.
fn npy_header(descr: &str, n: usize) -> Vec<u8> {
    common::npy_bytes(&format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({n},), }}"
    ))
}

/// A 1-D little-endian `.npy` of `n` values of N(3, 2)-like spread, as f4 or f8.
fn npy(name: &str, n: usize, f32_data: bool) -> PathBuf {
    let (descr, width) = if f32_data { ("<f4", 4) } else { ("<f8", 8) };
    let mut bytes = npy_header(descr, n);
    bytes.reserve(n * width);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..n {
        xorshift(&mut state);
        // A value exactly representable in f32: 3 + k / 1024 for k in [-4096, 4096).
        let v = 3.0 + ((state % 8192) as f64 - 4096.0) / 1024.0;
        if f32_data {
            bytes.extend_from_slice(&(v as f32).to_le_bytes());
        } else {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let path = dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs `command` (a likely command with --json), which must succeed; its JSON.
fn json_of(command: &mut std::process::Command) -> Value {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fit(path: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Value {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_likely"));
    command.args([
        "fit",
        "--family",
        "gaussian",
        "--data",
        path.to_str().unwrap(),
        "--json",
    ]);
    command.args(extra);
    for (k, v) in env {
        command.env(k, v);
    }
    json_of(&mut command)
}

fn peak(v: &Value) -> f64 {
    v["peak_rss_bytes"]
        .as_f64()
        .expect("peak_rss_bytes where /proc is readable")
}

const MIB: f64 = (1 << 20) as f64;

/// The process's resident memory without data to speak of.
/// Measured once per test binary: tests running in parallel would otherwise rewrite the
/// tiny file while another's fit reads it.
fn baseline() -> f64 {
    static BASELINE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *BASELINE.get_or_init(|| {
        let tiny = npy("tiny.npy", 1000, true);
        peak(&fit(&tiny, &["--backend", "cpu"], &[]))
    })
}

#[test]
fn an_in_memory_f32_fit_holds_one_copy_of_the_data() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc");
        return;
    }
    let n = 16 << 20; // 64 MiB of f32
    let path = npy("one-copy.npy", n, true);
    let file = (n * 4) as f64;
    let v = fit(&path, &["--backend", "cpu"], &[]);
    assert_eq!(v["streamed"], false);
    let held = peak(&v) - baseline();
    // One copy (64 MiB) and the engine's per-block buffers; before, the f64 copy and its
    // clone made four copies' worth.
    assert!(
        held <= 1.25 * file,
        "held {:.1} MiB for a {:.0} MiB file",
        held / MIB,
        file / MIB
    );
    assert!(v["read_seconds"].as_f64().is_some() && v["fit_seconds"].as_f64().is_some());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_streamed_fit_stays_within_its_budget() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc");
        return;
    }
    let n = 16 << 20;
    let path = npy("streamed.npy", n, true);
    let v = fit(&path, &["--backend", "cpu", "--host-memory", "16MiB"], &[]);
    assert_eq!(v["streamed"], true);
    let held = peak(&v) - baseline();
    assert!(
        held <= 24.0 * MIB,
        "held {:.1} MiB with --host-memory 16MiB",
        held / MIB
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn the_default_decision_follows_the_memory_available() {
    let n = 4 << 20; // 16 MiB of f32
    let path = npy("decision.npy", n, true);
    let meminfo = dir().join("meminfo");
    // Plenty available: held in memory.
    std::fs::write(
        &meminfo,
        "MemTotal: 100000000 kB\nMemAvailable: 50000000 kB\n",
    )
    .unwrap();
    let v = fit(
        &path,
        &["--backend", "cpu"],
        &[("LIKELY_MEMINFO", &meminfo)],
    );
    assert_eq!(v["streamed"], false);
    // 20 MiB available (a budget of half of it): the 16 MiB of samples are streamed.
    std::fs::write(&meminfo, "MemTotal: 100000000 kB\nMemAvailable: 20480 kB\n").unwrap();
    let v = fit(
        &path,
        &["--backend", "cpu"],
        &[("LIKELY_MEMINFO", &meminfo)],
    );
    assert_eq!(v["streamed"], true);
    // The machine has memory, but the cgroup (a container limited to 1 GiB, 1000 MiB used)
    // does not: streamed.
    std::fs::write(
        &meminfo,
        "MemTotal: 100000000 kB\nMemAvailable: 50000000 kB\n",
    )
    .unwrap();
    let cgroup = dir().join("cgroup");
    std::fs::create_dir_all(&cgroup).unwrap();
    std::fs::write(cgroup.join("memory.max"), format!("{}\n", 1u64 << 30)).unwrap();
    std::fs::write(
        cgroup.join("memory.current"),
        format!("{}\n", 1000u64 << 20),
    )
    .unwrap();
    let env = [
        ("LIKELY_MEMINFO", meminfo.as_path()),
        ("LIKELY_CGROUP", cgroup.as_path()),
    ];
    let v = fit(&path, &["--backend", "cpu"], &env);
    assert_eq!(v["streamed"], true);
    // No limit ("max"): held.
    std::fs::write(cgroup.join("memory.max"), "max\n").unwrap();
    let v = fit(&path, &["--backend", "cpu"], &env);
    assert_eq!(v["streamed"], false);
    // cgroup v1's files, limited.
    let v1 = dir().join("cgroup-v1");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(
        v1.join("memory.limit_in_bytes"),
        format!("{}\n", 8u64 << 20),
    )
    .unwrap();
    std::fs::write(v1.join("memory.usage_in_bytes"), "0\n").unwrap();
    let env = [
        ("LIKELY_MEMINFO", meminfo.as_path()),
        ("LIKELY_CGROUP", v1.as_path()),
    ];
    let v = fit(&path, &["--backend", "cpu"], &env);
    assert_eq!(v["streamed"], true);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn f32_stored_data_gives_the_results_of_f64_stored_data() {
    // The same f32-representable values stored as f4 and as f8: the CPU engine forms each
    // term in f64 from either, so the fits are identical to the last bit.
    let n = 300_001;
    let narrow = npy("same-f4.npy", n, true);
    let wide = npy("same-f8.npy", n, false);
    for extra in [
        &["--backend", "cpu"][..],
        &["--backend", "cpu", "--cov", "robust"],
    ] {
        let a = fit(&narrow, extra, &[]);
        let b = fit(&wide, extra, &[]);
        for key in ["params", "nll", "std_errors", "iterations"] {
            assert_eq!(a[key], b[key], "{key}: f4 {} vs f8 {}", a[key], b[key]);
        }
    }
    std::fs::remove_file(&narrow).unwrap();
    std::fs::remove_file(&wide).unwrap();
}

/// A 1-D `.npy` of f4 counts 0..8 (Poisson-like data), and the counts' sum.
fn npy_counts(name: &str, n: usize) -> (PathBuf, u64) {
    let mut bytes = npy_header("<f4", n);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut sum = 0;
    for _ in 0..n {
        xorshift(&mut state);
        let count = state % 7 + state % 3;
        sum += count;
        bytes.extend_from_slice(&(count as f32).to_le_bytes());
    }
    let path = dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    (path, sum)
}

#[test]
fn a_gpu_fit_of_f32_data_reads_it_straight_onto_the_device() {
    // The device holds the samples exactly and makes the f64 sums from them: the host holds
    // no copy at all (on lavapipe the device's memory is the host's, so the one copy shows in
    // the resident memory), and the fit equals the CPU engine's. For a family whose samples
    // need no re-expression (poisson) and for location families, whose kernels then read the
    // samples as they are (gaussian, laplace).
    if !Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc");
        return;
    }
    let ctx = gpu_or_skip!();
    if !ctx.adapter().shader_f64 {
        eprintln!("SKIPPED: the adapter has no SHADER_F64 (the f64 sums need a host copy)");
        return;
    }
    let n = 16 << 20; // 64 MiB of f32
    let (path, sum) = npy_counts("counts.npy", n);
    let (few, _) = npy_counts("few-counts.npy", 1000);
    let file = (n * 4) as f64;
    let run = |family: &str, backend: &str, path: &Path| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_likely"));
        command.args(["fit", "--family", family, "--data"]);
        command.arg(path);
        command.args(["--json", "--backend", backend]);
        // Every run compiles its shaders itself (Mesa would otherwise serve a later run from
        // its disk cache, with less memory than the first run's compiler took).
        command.env("MESA_SHADER_CACHE_DISABLE", "true");
        json_of(&mut command)
    };
    let mean = sum as f64 / n as f64;
    for family in ["poisson", "gaussian", "laplace"] {
        let gpu = run(family, "gpu", &path);
        let cpu = run(family, "cpu", &path);
        // The GPU process's own resident memory (the adapter's compiler, its threads).
        let gpu_baseline = peak(&run(family, "gpu", &few));
        assert_eq!(gpu["streamed"], false);
        assert_eq!(gpu["f64_engine"], "gpu", "{gpu}");
        assert_eq!(gpu["converged"], true, "{family}: {gpu}");
        let held = peak(&gpu) - gpu_baseline;
        // On a CPU adapter the device's copy is host memory; on a hardware GPU the host holds
        // nothing of the data beyond its read pieces.
        let allowed = if ctx.adapter().software { 1.35 } else { 0.35 };
        assert!(
            held <= allowed * file,
            "{family}: held {:.1} MiB for a {:.0} MiB file",
            held / MIB,
            file / MIB
        );
        // The Poisson MLE and the Gaussian mu are the sample mean, exactly here in integers.
        let location = match family {
            "poisson" => Some("lambda"),
            "gaussian" => Some("mu"),
            _ => None,
        };
        for engine in [&gpu, &cpu] {
            if let Some(name) = location {
                let estimate = engine["params"][name].as_f64().unwrap();
                assert!(
                    (estimate - mean).abs() <= 1e-12 * mean,
                    "{family}: {estimate} vs {mean}"
                );
            }
        }
        for (name, value) in gpu["params"].as_object().unwrap() {
            let (a, b) = (
                value.as_f64().unwrap(),
                cpu["params"][name].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-12 * b.abs(),
                "{family} {name}: {a} vs {b}"
            );
        }
        let (a, b) = (gpu["nll"].as_f64().unwrap(), cpu["nll"].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-12 * b.abs(), "{family}: {a} vs {b}");
    }
    for file in [&path, &few] {
        std::fs::remove_file(file).unwrap();
    }
}

#[test]
fn f64_values_read_into_memory_are_held_once() {
    // A CSV column of f64 values (not exact in f32), read by the parallel parser in pieces
    // and by the one-pass reader: the values are moved into their shared buffer without a
    // second full-size copy.
    if !Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc");
        return;
    }
    let n = 4 << 20; // 32 MiB of f64
    let mut text = String::with_capacity(n * 22 + 4);
    text.push_str("x\n");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..n {
        xorshift(&mut state);
        let v = 3.0 + (state >> 11) as f64 / (1u64 << 53) as f64 / 3.0;
        text += &format!("{v}\n");
    }
    let path = dir().join("f64-values.csv");
    std::fs::write(&path, text).unwrap();
    let values = (n * 8) as f64;
    let v = fit(&path, &["--backend", "cpu"], &[]);
    assert_eq!(v["streamed"], false);
    let held = peak(&v) - baseline();
    assert!(
        held <= 1.35 * values,
        "held {:.1} MiB for {:.0} MiB of values",
        held / MIB,
        values / MIB
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_table_fit_is_held_or_streamed_by_its_footprint() {
    // A model fit holds its table (f64 features and target) with what a fit keeps beside it
    // when that fits the budget, and streams it otherwise; held, its resident memory stays
    // near that footprint (the f64 table, Newton's warm start on every 8th row, a pass's
    // per-row values: about 1.3x the table's 8 bytes a cell here).
    if !Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc");
        return;
    }
    let (n, d) = (1usize << 20, 7);
    let mut values = Vec::with_capacity(n * (d + 1));
    let mut state = 0x1234_5678_9abc_def1u64;
    for _ in 0..n {
        let mut y = 1.0;
        for j in 0..d {
            xorshift(&mut state);
            let x = (state % 4096) as f64 / 1024.0 - 2.0;
            y += 0.5 * j as f64 * x;
            values.push(x);
        }
        y += ((state >> 20) % 1024) as f64 / 1024.0 - 0.5;
        values.push(y);
    }
    let path = dir().join("table.npy");
    likely::data::write_npy_f64_table(&path, &values, Some(d + 1)).unwrap();
    let table = (n * (d + 1) * 8) as f64;
    let run = |meminfo: Option<&Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_likely"));
        command.args(["fit", "--model", "linear", "--family", "gaussian", "--data"]);
        command.arg(&path);
        command.args(["--target", "7", "--json", "--backend", "cpu"]);
        if let Some(m) = meminfo {
            command.env("LIKELY_MEMINFO", m);
        }
        json_of(&mut command)
    };
    let held = run(None);
    assert_eq!(held["streamed"], false, "{held}");
    let above = peak(&held) - baseline();
    assert!(
        above <= 1.45 * table,
        "held {:.1} MiB for a {:.0} MiB table",
        above / MIB,
        table / MIB
    );
    // 150 MiB available, a budget of 75: the 64 MiB table alone would fit, with what the
    // fit keeps beside it (88 MiB) it does not, and it is streamed, to the same estimates.
    let meminfo = dir().join("meminfo-table");
    std::fs::write(
        &meminfo,
        "MemTotal: 100000000 kB\nMemAvailable: 153600 kB\n",
    )
    .unwrap();
    let streamed = run(Some(&meminfo));
    assert_eq!(streamed["streamed"], true, "{streamed}");
    for (name, value) in held["coefficients"].as_object().unwrap() {
        let (a, b) = (
            value.as_f64().unwrap(),
            streamed["coefficients"][name].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(1.0),
            "{name}: {a} vs {b}"
        );
    }
    std::fs::remove_file(&path).unwrap();
}

/// A 1-D f4 `.npy` of `values` (each an f32 exactly).
fn npy_f32(name: &str, values: &[f64]) -> PathBuf {
    let mut bytes = npy_header("<f4", values.len());
    for &v in values {
        assert_eq!(v as f32 as f64, v, "{name}: {v} is not an f32");
        bytes.extend_from_slice(&(v as f32).to_le_bytes());
    }
    let path = dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_device_reads_what_f32_kernels_hold_and_the_rest_is_re_expressed() {
    // Which f32 samples a GPU fit reads straight onto the device (its kernels then read
    // them as they are), and which it re-expresses in memory first: either way the fit
    // equals the CPU engine's.
    let ctx = gpu_or_skip!();
    if !ctx.adapter().shader_f64 {
        eprintln!("SKIPPED: the adapter has no SHADER_F64");
        return;
    }
    let n = 5000;
    let wave = |i: usize| ((i * 7919) % 61) as f64;
    let cases: Vec<(&str, Vec<f64>, &[&str], bool)> = vec![
        // A rate family.
        (
            "exponential",
            (0..n).map(|i| 1.0 + wave(i)).collect(),
            &[],
            true,
        ),
        // Far from the origin, as f32 holds it (f32 steps by 1 at 1e7).
        (
            "gaussian",
            (0..n).map(|i| 1e7 + wave(i)).collect(),
            &[],
            true,
        ),
        (
            "laplace",
            (0..n).map(|i| 1e7 + wave(i)).collect(),
            &[],
            true,
        ),
        // A range below 2^-20: re-expressed (the kernel's squares would near f32's floor).
        (
            "gaussian",
            (0..n)
                .map(|i| 2f64.powi(-10) + wave(i) * 2f64.powi(-30))
                .collect(),
            &[],
            false,
        ),
        // Beyond 2^50 of the origin: re-expressed.
        (
            "gaussian",
            (0..n)
                .map(|i| 2f64.powi(60) * (1.0 + wave(i) / 64.0))
                .collect(),
            &[],
            false,
        ),
        // Categorical labels: the classes counted as they are read (or given).
        (
            "categorical",
            (0..n).map(|i| wave(i) % 5.0).collect(),
            &[],
            true,
        ),
        // Two classes never observed.
        (
            "categorical",
            (0..n).map(|i| wave(i) % 5.0).collect(),
            &["--classes", "7"],
            true,
        ),
        // An L1 prior runs in the re-expressed coordinates.
        (
            "gaussian",
            (0..n).map(|i| 3.0 + wave(i) / 8.0).collect(),
            &["--prior", "l1:10"],
            false,
        ),
    ];
    for (k, (family, values, extra, direct)) in cases.iter().enumerate() {
        let path = npy_f32(&format!("direct-{k}.npy"), values);
        let run = |backend: &str| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_likely"));
            command.args(["fit", "--family", family, "--data"]);
            command.arg(&path);
            command.args(["--json", "--backend", backend]);
            command.args(*extra);
            json_of(&mut command)
        };
        let (gpu, cpu) = (run("gpu"), run("cpu"));
        assert_eq!(gpu["read_onto_device"], *direct, "case {k} {family}: {gpu}");
        assert_eq!(cpu["read_onto_device"], false);
        assert_eq!(gpu["converged"], true, "case {k} {family}: {gpu}");
        assert_eq!(gpu["k"], cpu["k"], "case {k} {family}");
        for (name, value) in gpu["params"].as_object().unwrap() {
            // A number, or a list of them (the categorical probabilities).
            let numbers = |v: &Value| -> Vec<f64> {
                match v.as_array() {
                    Some(list) => list.iter().map(|x| x.as_f64().unwrap()).collect(),
                    None => vec![v.as_f64().unwrap()],
                }
            };
            let (a, b) = (numbers(value), numbers(&cpu["params"][name]));
            assert_eq!(a.len(), b.len(), "case {k} {family} {name}");
            for (a, b) in a.iter().zip(&b) {
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs(),
                    "case {k} {family} {name}: {a} vs {b}"
                );
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
