//! The user's data is sacred: no command replaces one of its inputs, a replaced output keeps
//! its permissions and its symlink, an interrupted write leaves no temporary file, a full
//! standard output is an error (exit 1) rather than a panic, .npy headers are read as numpy
//! reads them, and model files that could only give nonsense are refused.

mod common;

use common::cli::{fails_with, family_fit, likely, model_fit};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("likely-safety-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const TABLE: &str = "x,y\n1,0\n2,1\n3,0\n4,1\n0.5,1\n2.5,0\n";

/// `fit --model linear --family FAMILY --data DATA --target y --save SAVE`.
fn save_fit<'a>(family: &'a str, data: &'a Path, save: &'a Path) -> Vec<&'a str> {
    model_fit("linear", family, s(data), "y", &["--save", s(save)])
}

/// `predict --model MODEL --data DATA --output OUTPUT`.
fn predict_args<'a>(model: &'a Path, data: &'a Path, output: &'a str) -> Vec<&'a str> {
    vec![
        "predict",
        "--model",
        s(model),
        "--data",
        s(data),
        "--output",
        output,
    ]
}

/// [`predict_args`], run.
fn predict_to(model: &Path, data: &Path, output: &str) -> std::process::Output {
    likely(&predict_args(model, data, output))
}

/// A saved logistic model of TABLE, at `name`.
fn saved_model(name: &str) -> PathBuf {
    let data = file(&format!("{name}.train.csv"), TABLE);
    let model = dir().join(name);
    let out = likely(&save_fit("bernoulli", &data, &model));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    model
}

#[test]
fn no_output_may_be_one_of_the_inputs() {
    let data = file("in.csv", TABLE);
    let model = saved_model("m.json");
    let model_text = std::fs::read(&model).unwrap();
    let symlink = dir().join("link.csv");
    let hard = dir().join("hard.csv");
    let _ = std::fs::remove_file(&symlink);
    let _ = std::fs::remove_file(&hard);
    std::os::unix::fs::symlink(&data, &symlink).unwrap();
    std::fs::hard_link(&data, &hard).unwrap();
    for output in [&data, &symlink, &hard] {
        fails_with(
            &predict_args(&model, &data, s(output)),
            "would destroy the input",
        );
        fails_with(
            &save_fit("bernoulli", &data, output),
            "would destroy the input",
        );
    }
    fails_with(
        &predict_args(&model, &data, s(&model)),
        "is the --model file",
    );
    assert_eq!(std::fs::read_to_string(&data).unwrap(), TABLE);
    assert_eq!(std::fs::read(&model).unwrap(), model_text);
    // Another file is written as asked.
    let out = dir().join("predictions.csv");
    let run = predict_to(&model, &data, s(&out));
    assert!(run.status.success());
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("prob_1\n"));
}

#[test]
fn a_replaced_file_keeps_its_mode_and_its_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let data = file("perm-in.csv", TABLE);
    let model = saved_model("perm-m.json");
    let target = file("perm-out.csv", "old\n");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir().join("perm-link.csv");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let run = predict_to(&model, &data, s(&link));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink(), "the link became a file");
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(written.starts_with("prob_1\n"), "{written}");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    // The same for a model saved over an existing one.
    let saved = file("perm-model.json", "{}");
    std::fs::set_permissions(&saved, std::fs::Permissions::from_mode(0o640)).unwrap();
    let run = likely(&save_fit("bernoulli", &data, &saved));
    assert!(run.status.success());
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "mode {mode:o}");
}

/// Temporary files of this process's children left in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
fn an_interrupted_write_leaves_no_temporary_file() {
    let work = dir().join("signals");
    std::fs::create_dir_all(&work).unwrap();
    let model = saved_model("sig-m.json");
    // Enough rows that predicting them takes a while.
    let mut text = String::from("x,y\n");
    for i in 0..1_500_000 {
        text += &format!("{},{}\n", i % 1000, i % 2);
    }
    let data = work.join("big.csv");
    std::fs::write(&data, text).unwrap();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let out = work.join(format!("pred-{signal}.csv"));
        let mut seen = false;
        let mut tries = Vec::new();
        // Interrupt while the temporary file is being written. The child is stopped (SIGSTOP)
        // while the directory is looked at and continued between looks, so that a write
        // shorter than the scheduler's delays on a loaded machine is still caught; retried if
        // the child still finished first (each try is described if none catches it).
        for _ in 0..5 {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_likely"));
            command
                .args([
                    "predict",
                    "--model",
                    s(&model),
                    "--data",
                    s(&data),
                    "--output",
                    s(&out),
                ])
                .stderr(std::process::Stdio::piped());
            // The child's dispositions of the signals as a terminal's would be: a test run
            // started in the background of a non-interactive shell inherits SIGINT ignored,
            // which likely rightly keeps (it then finished every write, and the test failed).
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                use std::os::unix::process::CommandExt;
                command.pre_exec(|| {
                    libc::signal(libc::SIGINT, libc::SIG_DFL);
                    libc::signal(libc::SIGTERM, libc::SIG_DFL);
                    Ok(())
                });
            }
            let mut child = command.spawn().unwrap();
            let pid = child.id() as i32;
            let started = std::time::Instant::now();
            let mut writing = false;
            while started.elapsed() < std::time::Duration::from_secs(60)
                && child.try_wait().unwrap().is_none()
            {
                // SAFETY: signalling our own child by its pid.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(std::time::Duration::from_millis(1));
                writing = !temporaries(&work).is_empty();
                if writing {
                    break;
                }
                unsafe { libc::kill(pid, libc::SIGCONT) };
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // The signal stays pending while the child is stopped and acts once it runs.
            unsafe {
                libc::kill(pid, signal);
                libc::kill(pid, libc::SIGCONT);
            }
            let output = child.wait_with_output().unwrap();
            let status = output.status;
            tries.push(format!(
                "writing {writing}, {status:?}, after {:?}: {}",
                started.elapsed(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
            if writing && !status.success() {
                seen = true;
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(status.signal(), Some(signal), "ended by the signal");
                break;
            }
            let _ = std::fs::remove_file(&out);
        }
        assert!(seen, "the write was never caught in progress: {tries:#?}");
        assert_eq!(temporaries(&work), Vec::<String>::new(), "signal {signal}");
        assert!(!out.exists(), "a half-written output appeared");
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn a_full_standard_output_is_an_error_not_a_panic() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIP: no /dev/full");
        return;
    }
    let data = file("full.csv", TABLE);
    let model = saved_model("full-m.json");
    for args in [
        family_fit("gaussian", s(&data), &["--column", "x", "--json"]),
        family_fit("gaussian", s(&data), &["--column", "x"]),
        vec!["eval", "--model", s(&model), "--data", s(&data), "--json"],
        vec!["predict", "--model", s(&model), "--data", s(&data)],
        vec!["devices"],
        vec![
            "study",
            "--family",
            "gaussian",
            "--params",
            "mu=0,sigma=1",
            "--n",
            "20",
            "--reps",
            "3",
        ],
        vec!["--help"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_likely"))
            .args(&args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("No space left"), "{args:?}: {stderr}");
    }
}

/// A .npy file of six f64s 0..6 with the given header dict, and `extra` bytes after the data.
fn npy(name: &str, header: &str, extra: &[u8]) -> PathBuf {
    npy_of(name, header, &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], extra)
}

fn npy_of(name: &str, header: &str, values: &[f64], extra: &[u8]) -> PathBuf {
    let mut bytes = common::npy_bytes(header);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(extra);
    let path = dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn npy_headers_are_read_as_numpy_reads_them() {
    let fit = |p: &Path| likely(&["fit", "--family", "gaussian", "--data", s(p), "--json"]);
    let mean = |p: &Path| {
        let out = fit(p);
        assert!(
            out.status.success(),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["n"].as_u64().unwrap(),
            v["params"]["mu"].as_f64().unwrap(),
        )
    };
    // What numpy 2 reads (checked with numpy.load): six values of mean 2.5.
    for (name, header) in [
        (
            "ok",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }",
        ),
        (
            "dquote",
            "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (6,)}",
        ),
        (
            "long",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (6L,), }",
        ),
        // A key given twice takes its last value, as in a Python dict.
        (
            "dup",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), 'shape': (6,)}",
        ),
        // Fortran order of a 1-D array is C order.
        (
            "f1d",
            "{'descr': '<f8', 'fortran_order': True, 'shape': (6,), }",
        ),
    ] {
        assert_eq!(
            mean(&npy(&format!("{name}.npy"), header, b"")),
            (6, 2.5),
            "{name}"
        );
    }
    // What numpy refuses, refused with a message.
    for (name, header, extra, needle) in [
        (
            "tru",
            "{'descr': '<f8', 'fortran_order': Tru, 'shape': (6,), }",
            &b""[..],
            "'Tru' is not",
        ),
        (
            "strtrue",
            "{'descr': '<f8', 'fortran_order': 'True', 'shape': (6,), }",
            b"",
            "not True or False",
        ),
        (
            "upper",
            "{'descr': '<f8', 'fortran_order': TRUE, 'shape': (6,), }",
            b"",
            "'TRUE' is not",
        ),
        (
            "one",
            "{'descr': '<f8', 'fortran_order': 1, 'shape': (6,), }",
            b"",
            "not True or False",
        ),
        (
            "notuple",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (6)}",
            b"",
            "not a tuple",
        ),
        (
            "extra_key",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), 'x': 1}",
            b"",
            "unexpected key 'x'",
        ),
        (
            "missing",
            "{'descr': '<f8', 'shape': (6,), }",
            b"",
            "no 'fortran_order'",
        ),
        (
            "negative",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-6,), }",
            b"",
            "signed number",
        ),
        (
            "after",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), } x",
            b"",
            "end of the header",
        ),
        (
            "trailing",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }",
            b"\0\0\0\0\0\0\0\0",
            "8 bytes after the data",
        ),
    ] {
        let path = npy(&format!("{name}.npy"), header, extra);
        fails_with(&["fit", "--family", "gaussian", "--data", s(&path)], needle);
    }
    // A column-major 2-D array: its columns are contiguous, [0, 1, 2] and [3, 4, 5].
    let fortran = npy(
        "f2d.npy",
        "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }",
        b"",
    );
    for (column, mu) in [("0", 1.0), ("1", 4.0)] {
        let out = likely(&[
            "fit",
            "--family",
            "gaussian",
            "--data",
            s(&fortran),
            "--column",
            column,
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (v["n"].as_u64(), v["params"]["mu"].as_f64()),
            (Some(3), Some(mu))
        );
    }
    // As a table, the same rows as the C-order array of the same matrix.
    let rows = [[1.0, 2.0], [2.0, 2.5], [3.0, 4.5], [4.0, 4.0], [5.0, 6.5]];
    let column_major: Vec<f64> = (0..2)
        .flat_map(|c| rows.iter().map(move |r| r[c]))
        .collect();
    let fortran = npy_of(
        "f2d-table.npy",
        "{'descr': '<f8', 'fortran_order': True, 'shape': (5, 2), }",
        &column_major,
        b"",
    );
    let c_order = dir().join("c2d.npy");
    common::write_npy(&c_order, &[5, 2], &rows.concat());
    let fit = |p: &Path| {
        let out = likely(&model_fit("linear", "gaussian", s(p), "1", &["--json"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["n"], 5);
        assert!(v["coefficients"].is_object(), "{v}");
        v["coefficients"].clone()
    };
    assert_eq!(fit(&fortran), fit(&c_order));
}

#[test]
fn model_files_that_can_only_give_nonsense_are_refused() {
    let data = file("nonsense.csv", TABLE);
    let model = saved_model("nonsense-m.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    // Parameters that overflow f64 when evaluated: eval is an error, not "NaN" and exit 0.
    json["params"] = serde_json::json!([1.7e308, 1.7e308]);
    let huge = file("huge.json", &json.to_string());
    fails_with(
        &["eval", "--model", s(&huge), "--data", s(&data)],
        "overflow f64",
    );
    // Not a finite number at all.
    json["params"] = serde_json::json!(["HUGE", 0.5]);
    let text = json.to_string().replace("\"HUGE\"", "1e999");
    let infinite = file("inf.json", &text);
    fails_with(
        &["eval", "--model", s(&infinite), "--data", s(&data)],
        "not a valid likely model file",
    );
    // Class labels that repeat.
    let cat = file("cat.csv", "x,y\n1,a\n2,b\n3,a\n4,b\n0.5,b\n");
    let saved = dir().join("cat-m.json");
    let out = likely(&save_fit("categorical", &cat, &saved));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    json["labels"] = serde_json::json!(["a", "a"]);
    let twice = file("twice.json", &json.to_string());
    fails_with(
        &["eval", "--model", s(&twice), "--data", s(&cat)],
        "listed twice",
    );
}

#[test]
fn a_corrupt_parquet_file_is_an_error_not_a_panic() {
    let crash = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus/parquet/crash-negative-column-start.parquet");
    fails_with(
        &["fit", "--family", "gaussian", "--data", s(&crash)],
        "corrupt Parquet file",
    );
}

#[test]
fn outputs_that_are_not_regular_files_are_written_into_not_replaced() {
    let data = file("special-in.csv", TABLE);
    let model = saved_model("special-m.json");
    // A FIFO: read by a thread while likely writes; it must stay a FIFO.
    let fifo = dir().join("predictions.fifo");
    let _ = std::fs::remove_file(&fifo);
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let run = predict_to(&model, &data, s(&fifo));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(reader.join().unwrap().starts_with("prob_1\n"));
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO became a file"
    );
    // /dev/null stays a device (as root a rename would replace it).
    if Path::new("/dev/null").exists() {
        let run = predict_to(&model, &data, "/dev/null");
        assert!(run.status.success());
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }
    // A dangling symlink is refused, not followed into a new file.
    let dangling = dir().join("dangling.csv");
    let _ = std::fs::remove_file(&dangling);
    std::os::unix::fs::symlink(dir().join("nowhere.csv"), &dangling).unwrap();
    fails_with(&predict_args(&model, &data, s(&dangling)), "does not exist");
}

#[test]
fn a_full_standard_error_does_not_panic() {
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIP: no /dev/full");
        return;
    }
    let data = file("stderr.csv", TABLE);
    for (args, code) in [
        (
            vec!["fit", "--family", "gaussian", "--data", "/nonexistent.npy"],
            1,
        ),
        (
            vec![
                "fit",
                "--family",
                "gaussian",
                "--data",
                s(&data),
                "--column",
                "x",
                "--backend",
                "cpu",
                "--adapter",
                "x",
            ],
            0,
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_likely"))
            .args(&args)
            .stderr(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

#[test]
fn npy_spellings_numpy_reads_are_read_and_versions_it_refuses_are_refused() {
    for (name, header) in [
        (
            "u_prefix",
            "{u'descr': u'<f8', u'fortran_order': False, u'shape': (6,), }",
        ),
        (
            "descr_d",
            "{'descr': 'd', 'fortran_order': False, 'shape': (6,), }",
        ),
        (
            "descr_name",
            "{'descr': 'float64', 'fortran_order': False, 'shape': (6,), }",
        ),
        (
            "descr_lt_d",
            "{'descr': '<d', 'fortran_order': False, 'shape': (6,), }",
        ),
    ] {
        let out = likely(&[
            "fit",
            "--family",
            "gaussian",
            "--data",
            s(&npy(&format!("{name}.npy"), header, b"")),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Minor version 5: numpy refuses it.
    let path = npy(
        "minor.npy",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }",
        b"",
    );
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[7] = 5;
    std::fs::write(&path, &bytes).unwrap();
    fails_with(
        &["fit", "--family", "gaussian", "--data", s(&path)],
        "version 1.5",
    );
    // A v2 length field claiming 4 GiB in a 16-byte file is a truncated header (not a 4 GiB
    // read), and a real header of 10 001 bytes is past numpy's limit.
    let mut claim = b"\x93NUMPY\x02\x00".to_vec();
    claim.extend_from_slice(&u32::MAX.to_le_bytes());
    claim.extend_from_slice(b"{}  ");
    let path = dir().join("huge_claim.npy");
    std::fs::write(&path, &claim).unwrap();
    fails_with(
        &["fit", "--family", "gaussian", "--data", s(&path)],
        "truncated .npy header",
    );
    let mut long = b"\x93NUMPY\x02\x00".to_vec();
    long.extend_from_slice(&10_001u32.to_le_bytes());
    let mut header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }".to_string();
    while header.len() < 10_000 {
        header.push(' ');
    }
    header.push('\n');
    long.extend_from_slice(header.as_bytes());
    long.extend_from_slice(&1.0f64.to_le_bytes());
    let path = dir().join("long_header.npy");
    std::fs::write(&path, &long).unwrap();
    fails_with(
        &["fit", "--family", "gaussian", "--data", s(&path)],
        "the .npy header is 10001 bytes",
    );
}

#[test]
fn streamed_and_in_memory_reads_report_bad_data_in_the_same_words() {
    let nan = npy_of(
        "nan.npy",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }",
        &[1.0, 2.0, f64::NAN, 4.0, 5.0, 6.0],
        b"",
    );
    let negative = npy_of(
        "negative_value.npy",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }",
        &[1.0, 2.0, 3.0, -4.0, 5.0, 6.0],
        b"",
    );
    let empty = npy_of(
        "empty.npy",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }",
        &[],
        b"",
    );
    // Bad values in blocks after the first (the survey checks blocks on all cores): the first
    // in the file is reported.
    let mut values = vec![1.5; 200_000];
    values[190_000] = f64::NAN;
    values[150_000] = -4.0;
    let deep = npy_of(
        "deep_negative.npy",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (200000,), }",
        &values,
        b"",
    );
    for (path, family, needle) in [
        (&nan, "gaussian", "element 2: value NaN is not finite"),
        (&negative, "exponential", "element 3: "),
        (&empty, "gaussian", "no data rows"),
        (&deep, "exponential", "element 150000: "),
        (&deep, "gaussian", "element 190000: value NaN is not finite"),
    ] {
        let stderr = |extra: &[&str]| {
            let mut args = vec![
                "fit",
                "--family",
                family,
                "--data",
                s(path),
                "--backend",
                "cpu",
            ];
            args.extend_from_slice(extra);
            let out = likely(&args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            String::from_utf8_lossy(&out.stderr).into_owned()
        };
        let (held, streamed) = (stderr(&[]), stderr(&["--stream"]));
        assert_eq!(held, streamed, "{}", path.display());
        assert!(held.contains(needle) && held.contains(s(path)), "{held}");
    }
}
