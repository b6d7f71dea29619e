//! The command line: successful fits with the JSON contract, and every bad input giving a
//! clear message and a non-zero exit (never a panic).

mod common;

use common::cli::{fails_with, likely, model_fit, ok_json};

use serde_json::Value;
use std::path::PathBuf;

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("likely-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn npy(name: &str, descr: &str, shape: &str, fortran: bool, data: &[u8]) -> PathBuf {
    let mut bytes = common::npy_bytes(&format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    ));
    bytes.extend_from_slice(data);
    temp(name, &bytes)
}

/// Runs a fit that must succeed and returns its JSON.
fn fit_json(args: &[&str]) -> Value {
    let mut all = vec!["fit", "--backend", "cpu", "--json"];
    all.extend_from_slice(args);
    let out = likely(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Runs a command that must fail with exit code 1 (or 2 for usage errors) and a message.

#[test]
fn json_contract_for_every_family() {
    let cases: [(&str, &str, &[&str]); 6] = [
        ("bernoulli", "x\n1\n0\n1\n1\n", &["p"]),
        ("gaussian", "x\n1.5\n2.5\n4\n", &["mu", "sigma"]),
        ("categorical", "x\n0\n1\n2\n2\n", &["probs"]),
        ("laplace", "x\n1\n2\n7\n", &["mu", "b"]),
        ("poisson", "x\n0\n3\n4\n", &["lambda"]),
        ("exponential", "x\n0.5\n2\n", &["rate"]),
    ];
    for (family, csv, names) in cases {
        let path = temp(&format!("{family}.csv"), csv.as_bytes());
        let j = fit_json(&["--family", family, "--data", path.to_str().unwrap()]);
        for key in [
            "family",
            "n",
            "params",
            "nll",
            "converged",
            "iterations",
            "evaluations",
            "engine",
            "adapter",
        ] {
            assert!(j.get(key).is_some(), "{family}: missing {key} in {j}");
        }
        assert_eq!(j["family"], family);
        assert_eq!(j["engine"], "cpu");
        assert_eq!(j["converged"], true, "{j}");
        assert!(j.get("log_prior").is_none());
        for name in names {
            assert!(
                j["params"].get(*name).is_some(),
                "{family}: params lacks {name}: {j}"
            );
        }
    }
}

#[test]
fn coin_and_prior_through_the_cli() {
    let path = temp("coin.csv", b"toss\n1\n1\n0\n1\n1\n0\n1\n0\n1\n1\n");
    let j = fit_json(&["--family", "bernoulli", "--data", path.to_str().unwrap()]);
    assert!((j["params"]["p"].as_f64().unwrap() - 0.7).abs() < 1e-9);
    assert_eq!(j["n"], 10);
    let j = fit_json(&[
        "--family",
        "bernoulli",
        "--data",
        path.to_str().unwrap(),
        "--prior",
        "l2:1",
    ]);
    let p = j["params"]["p"].as_f64().unwrap();
    assert!(
        p < 0.7 && p > 0.5,
        "the prior shrinks the logit towards 0: {p}"
    );
    let (lp, ll, lpost) = (
        j["log_prior"].as_f64().unwrap(),
        j["loglik"].as_f64().unwrap(),
        j["log_posterior"].as_f64().unwrap(),
    );
    assert!((lp + ll - lpost).abs() < 1e-12);
    let j = fit_json(&[
        "--family",
        "bernoulli",
        "--data",
        path.to_str().unwrap(),
        "--optimizer",
        "adam",
        "--max-iter",
        "3000",
    ]);
    assert!(
        (j["params"]["p"].as_f64().unwrap() - 0.7).abs() < 1e-4,
        "{j}"
    );
}

#[test]
fn string_labels_and_columns() {
    let path = temp("labels.csv", b"id,colour\n1,red\n2,blue\n3,red\n4,green\n");
    let j = fit_json(&[
        "--family",
        "categorical",
        "--data",
        path.to_str().unwrap(),
        "--column",
        "colour",
    ]);
    assert_eq!(j["labels"], serde_json::json!(["blue", "green", "red"]));
    let probs: Vec<f64> = j["params"]["probs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (p, want) in probs.iter().zip([0.25, 0.25, 0.5]) {
        assert!((p - want).abs() < 1e-8, "{probs:?}");
    }
    let j = fit_json(&[
        "--family",
        "categorical",
        "--data",
        path.to_str().unwrap(),
        "--column",
        "colour",
        "--classes",
        "4",
    ]);
    assert_eq!(j["params"]["probs"].as_array().unwrap().len(), 4);
}

#[test]
fn npy_dtypes() {
    let f32s: Vec<u8> = [1.0f32, 2.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let i64s: Vec<u8> = [1i64, 2, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let be: Vec<u8> = [1.0f64, 2.0, 4.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let u8s = vec![1u8, 2, 4];
    let i16s: Vec<u8> = [-1i16, 2, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    for (name, descr, data, mean) in [
        ("f4.npy", "<f4", f32s, 7.0 / 3.0),
        ("i8.npy", "<i8", i64s, 7.0 / 3.0),
        ("be.npy", ">f8", be, 7.0 / 3.0),
        ("u1.npy", "|u1", u8s, 7.0 / 3.0),
        ("i2.npy", "<i2", i16s, 5.0 / 3.0),
    ] {
        let path = npy(name, descr, "(3,)", false, &data);
        let j = fit_json(&["--family", "gaussian", "--data", path.to_str().unwrap()]);
        assert!(
            (j["params"]["mu"].as_f64().unwrap() - mean).abs() < 1e-9,
            "{name}: {j}"
        );
    }
    let bools = npy("b1.npy", "|b1", "(4,)", false, &[1, 0, 1, 1]);
    let j = fit_json(&["--family", "bernoulli", "--data", bools.to_str().unwrap()]);
    assert!((j["params"]["p"].as_f64().unwrap() - 0.75).abs() < 1e-9);
    // 2-D, column chosen by index.
    let grid: Vec<u8> = [1.0f64, 10.0, 2.0, 20.0, 3.0, 30.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let path = npy("grid.npy", "<f8", "(3, 2)", false, &grid);
    let j = fit_json(&[
        "--family",
        "gaussian",
        "--data",
        path.to_str().unwrap(),
        "--column",
        "1",
    ]);
    assert!((j["params"]["mu"].as_f64().unwrap() - 20.0).abs() < 1e-9);
    fails_with(
        &[
            "fit",
            "--family",
            "gaussian",
            "--data",
            path.to_str().unwrap(),
        ],
        "choose one with --column",
    );
}

#[test]
fn bad_csv_inputs() {
    let p = |name: &str, text: &str| temp(name, text.as_bytes()).to_str().unwrap().to_string();
    let fit = |path: &str, family: &str, extra: &[&str], needle: &str| {
        let mut args = vec![
            "fit",
            "--family",
            family,
            "--data",
            path,
            "--backend",
            "cpu",
        ];
        args.extend_from_slice(extra);
        fails_with(&args, needle);
    };
    fit(
        "/nonexistent/data.csv",
        "gaussian",
        &[],
        "/nonexistent/data.csv",
    );
    let two = p("two.csv", "a,b\n1,2\n");
    fit(
        &two,
        "gaussian",
        &["--column", "c"],
        "no column named 'c'; columns are: a, b",
    );
    fit(&two, "gaussian", &[], "choose one with --column NAME");
    fit(
        &p("text.csv", "x\n1\nabc\n"),
        "gaussian",
        &[],
        "row 2 (line 3), column 'x': non-numeric value 'abc'",
    );
    fit(
        &p("nan.csv", "x\n1\nNaN\n"),
        "gaussian",
        &[],
        "row 2 (line 3), column 'x': value NaN is not finite",
    );
    fit(
        &p("inf.csv", "x\ninf\n"),
        "gaussian",
        &[],
        "value inf is not finite",
    );
    fit(
        &p("blank.csv", "x\n1\n\"\"\n"),
        "gaussian",
        &[],
        "empty cell",
    );
    fit(&p("header.csv", "x\n"), "gaussian", &[], "no data rows");
    // A file without a header row would lose its first sample if that row were read as names.
    fit(
        &p("headerless.csv", "7.2e-10\n1.5\n3\n"),
        "gaussian",
        &[],
        "the first row (7.2e-10) is numbers, not column names",
    );
    fit(
        &p("headerless2.csv", "1.5,-2\n1,2\n"),
        "gaussian",
        &["--column", "1.5"],
        "is numbers, not column names",
    );
    // pandas names unnamed columns 0, 1, ...: those are names.
    let indexed = p("indexed.csv", "0\n1.5\n2.5\n4\n");
    let j = fit_json(&["--family", "gaussian", "--data", &indexed]);
    assert_eq!(j["n"], 3);
    fit(&p("empty.csv", ""), "gaussian", &[], "empty file");
    fit(
        &p("ragged.csv", "a,b\n1,2\n3\n"),
        "gaussian",
        &["--column", "a"],
        "row 2",
    );
    fit(
        &p("two_heads.csv", "x\n1\n0\n2\n"),
        "bernoulli",
        &[],
        "row 3 (line 4), column 'x': value 2 is outside the support (0 or 1)",
    );
    fit(
        &p("neg.csv", "x\n3\n-1\n"),
        "poisson",
        &[],
        "row 2 (line 3), column 'x': value -1 is outside the support",
    );
    fit(
        &p("frac.csv", "x\n1.5\n"),
        "poisson",
        &[],
        "outside the support",
    );
    fit(
        &p("negexp.csv", "x\n1\n-0.5\n"),
        "exponential",
        &[],
        "outside the support (x >= 0)",
    );
    // --fix for a family fit: a parameter it has, in its range, where Newton runs.
    let positive = p("positive.csv", "x\n1.5\n2.5\n4.0\n0.5\n");
    for (family, extra, needle) in [
        (
            "gamma",
            vec!["--fix", "scale=2"],
            "the gamma family's parameters are shape, rate",
        ),
        (
            "gamma",
            vec!["--fix", "shape=-2"],
            "--fix shape=-2: outside the parameter's range (a positive number)",
        ),
        (
            "gamma",
            vec!["--fix", "shape=inf"],
            "outside the parameter's range",
        ),
        (
            "gamma",
            vec!["--fix", "shape=5e-324"],
            "outside the parameter's range",
        ),
        (
            "gamma",
            vec!["--fix", "shape"],
            "--fix takes NAME=VALUE (e.g. shape=1)",
        ),
        (
            "gaussian",
            vec!["--fix", "mu=nan"],
            "outside the parameter's range (a finite number)",
        ),
        (
            "gamma",
            vec!["--fix", "shape=2", "--optimizer", "lbfgs"],
            "--fix holds parameters in Newton's method",
        ),
        (
            "gamma",
            vec!["--fix", "shape=2", "--ci", "profile"],
            "with --fix use the Wald intervals",
        ),
        (
            "laplace",
            vec!["--fix", "b=1"],
            "--fix holds parameters in Newton's method",
        ),
    ] {
        fit(&positive, family, &extra, needle);
    }
    fit(
        &p("labels.csv", "x\n0\n1\n2\n1\n"),
        "categorical",
        &["--fix", "probs=0.5"],
        "--fix holds a scalar parameter",
    );
    fit(
        &p("beta_one.csv", "x\n0.5\n0.25\n1\n"),
        "beta",
        &[],
        "row 3 (line 4), column 'x': value 1 is outside the support (0 < x < 1)",
    );
    fit(
        &p("beta_zero.csv", "x\n0\n0.5\n"),
        "beta",
        &[],
        "row 1 (line 2), column 'x': value 0 is outside the support (0 < x < 1)",
    );
    fit(
        &p("nb_frac.csv", "x\n3\n2.5\n"),
        "negative-binomial",
        &[],
        "row 2 (line 3), column 'x': value 2.5 is outside the support (counts",
    );
    fit(
        &p("class.csv", "x\n0\n1\n5\n"),
        "categorical",
        &["--classes", "3"],
        "row 3 (line 4), column 'x': value 5 is outside the support (class labels 0..2)",
    );
    fit(
        &p("bernoulli_text.csv", "x\nyes\n"),
        "bernoulli",
        &[],
        "non-numeric value 'yes'",
    );
    fit(
        &p("const.csv", "x\n2\n2\n"),
        "gaussian",
        &[],
        "does not exist",
    );
    fit(
        &two,
        "gaussian",
        &["--column", "a", "--classes", "3"],
        "--classes applies to the categorical family only",
    );
}

#[test]
fn bad_npy_inputs() {
    let full: Vec<u8> = [1.0f64, 2.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let truncated = npy("short.npy", "<f8", "(3,)", false, &full[..20]);
    let complex = npy("complex.npy", "<c16", "(3,)", false, &full);
    let fortran = npy("fortran.npy", "<f8", "(3,)", true, &full);
    let cube = npy("cube.npy", "<f8", "(1, 1, 3)", false, &full);
    let garbage = temp("garbage.npy", b"\x93NUMPY\x01\x00\xff\xff{");
    let not_npy = temp("plain.npy", b"hello");
    for (path, needle) in [
        (&truncated, "truncated .npy data"),
        (&complex, "unsupported .npy dtype '<c16'"),
        (&cube, "3-dimensional array"),
        (&garbage, "truncated .npy header"),
        (&not_npy, "missing \\x93NUMPY magic"),
    ] {
        fails_with(
            &[
                "fit",
                "--family",
                "gaussian",
                "--data",
                path.to_str().unwrap(),
                "--backend",
                "cpu",
            ],
            needle,
        );
    }
    // Fortran order of a 1-D array is its C order: numpy reads it, and so does likely.
    let fitted = ok_json(&[
        "fit",
        "--family",
        "gaussian",
        "--data",
        fortran.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
    ]);
    assert_eq!(fitted["params"]["mu"], 2.0);
}

#[test]
fn bad_options() {
    let path = temp("ok.csv", b"x\n1\n2\n");
    let data = path.to_str().unwrap();
    fails_with(
        &[
            "fit", "--family", "gaussian", "--data", data, "--prior", "l3:1",
        ],
        "invalid prior 'l3:1'",
    );
    fails_with(
        &[
            "fit", "--family", "gaussian", "--data", data, "--prior", "l2:-1",
        ],
        "SCALE > 0",
    );
    fails_with(
        &[
            "fit",
            "--family",
            "gaussian",
            "--data",
            data,
            "--max-iter",
            "0",
        ],
        "--max-iter must be at least 1",
    );
    fails_with(
        &["fit", "--family", "gaussian", "--data", data, "--lr", "0"],
        "--lr must be positive",
    );
    fails_with(
        &["fit", "--family", "zipf", "--data", data],
        "invalid value 'zipf'",
    );
    fails_with(
        &[
            "fit",
            "--family",
            "gaussian",
            "--data",
            data,
            "--backend",
            "gpu",
            "--adapter",
            "no-such-adapter-xyz",
        ],
        "no usable GPU adapter",
    );
    fails_with(&["check", "--backend", "cpu"], "needs --backend gpu");
}

#[test]
fn human_output_names_engine_and_adapter() {
    let path = temp("human.csv", b"x\n1\n2\n4\n");
    let out = likely(&[
        "fit",
        "--family",
        "gaussian",
        "--data",
        path.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("engine: cpu on host CPU"), "{text}");
    assert!(
        text.contains("mu") && text.contains("sigma") && text.contains("converged"),
        "{text}"
    );
}

#[test]
fn devices_lists_adapters_as_json() {
    let out = likely(&["devices", "--json"]);
    assert!(out.status.success());
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    for a in j["adapters"].as_array().unwrap() {
        for key in [
            "name",
            "backend",
            "device_type",
            "driver",
            "max_storage_binding",
            "max_buffer",
            "subgroup",
            "shader_f64",
            "timestamp_query",
        ] {
            assert!(a.get(key).is_some(), "missing {key}: {a}");
        }
    }
    if std::env::var("LIKELY_REQUIRE_GPU").as_deref() == Ok("1") {
        assert!(
            !j["adapters"].as_array().unwrap().is_empty(),
            "CI requires an adapter"
        );
    }
}

#[test]
fn demo_agrees_with_closed_forms_on_the_cpu() {
    let out = likely(&["demo", "--backend", "cpu"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("7 heads in 10 tosses") && text.contains("every estimate agrees"),
        "{text}"
    );
}

#[test]
fn gpu_demo_and_quick_check() {
    if likely::gpu::list_adapters().is_empty() {
        assert_ne!(
            std::env::var("LIKELY_REQUIRE_GPU").as_deref(),
            Ok("1"),
            "CI requires an adapter"
        );
        eprintln!("!!!!!!!! SKIPPING GPU CLI TESTS: no GPU adapter !!!!!!!!");
        return;
    }
    let out = likely(&["demo", "--backend", "gpu"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("engine gpu on"), "{text}");
    let out = likely(&[
        "check",
        "--backend",
        "gpu",
        "--sizes",
        "1,257",
        "--no-large",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["failed"], 0);
    assert!(j["passed"].as_u64().unwrap() >= 14);
}

/// Output piped into a reader that has gone away (`likely ... | head -c 10`) ends the process
/// quietly, as Unix tools do: no panic message.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::process::Stdio;
    let dir = std::env::temp_dir().join(format!("likely-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("x.csv");
    std::fs::write(&table, "x\n1.5\n2.5\n4.0\n").unwrap();
    for args in [
        vec!["fit", "--family", "gaussian", "--backend", "cpu", "--json"],
        vec!["fit", "--family", "gaussian", "--backend", "cpu"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_likely"))
            .args(&args)
            .args(["--data", table.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the command writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Whitespace around header names and cells is not part of them (CSV from hand-aligned
/// editors), in family fits and in model tables.
#[test]
fn csv_whitespace_around_names_and_cells_is_ignored() {
    let plain = temp("plain.csv", b"x,y\n1.5,0\n2.5,1\n4.0,1\n3.0,0\n");
    let padded = temp(
        "padded.csv",
        b" x , y \n 1.5 ,0\n2.5 , 1\n  4.0,1 \n3.0,0\n",
    );
    let (plain, padded) = (plain.to_str().unwrap(), padded.to_str().unwrap());
    let fit = |path: &str| {
        common::cli::ok_json(&[
            "fit",
            "--family",
            "gaussian",
            "--data",
            path,
            "--column",
            "x",
            "--backend",
            "cpu",
            "--json",
        ])
    };
    assert_eq!(fit(plain)["params"], fit(padded)["params"]);
    let model = |path: &str| {
        common::cli::ok_json(&model_fit(
            "linear",
            "gaussian",
            path,
            "x",
            &["--backend", "cpu", "--json"],
        ))
    };
    assert_eq!(model(plain)["coefficients"], model(padded)["coefficients"]);
}

/// Counts that are not overdispersed: the negative binomial's alpha has its MLE at 0 (the
/// Poisson). The fit says so, holds alpha at a negligible value, reports no standard error
/// for it (NaN) and the Poisson's mean and log-likelihood on both engines.
#[test]
fn negative_binomial_without_overdispersion_reports_alpha_at_its_boundary() {
    let counts = "y\n2\n3\n2\n3\n2\n3\n4\n3\n2\n3\n";
    let data = temp("underdispersed.csv", counts.as_bytes());
    let data = data.to_str().unwrap();
    let poisson = fit_json(&["--family", "poisson", "--data", data]);
    for backend in common::backends() {
        let out = likely(&[
            "fit",
            "--family",
            "negative-binomial",
            "--data",
            data,
            "--backend",
            backend,
            "--json",
        ]);
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "{backend}: {j}");
        assert_eq!(j["converged"], true, "{backend}: {j}");
        let alpha = j["params"]["alpha"].as_f64().unwrap();
        assert!(alpha < 1e-15, "{backend}: alpha {alpha}");
        assert_eq!(j["std_errors"]["alpha"], "NaN", "{backend}: {j}");
        let mu = j["params"]["mu"].as_f64().unwrap();
        assert!((mu - 2.7).abs() <= 1e-12, "{backend}: mu {mu}");
        assert!(
            j["std_errors"]["mu"].as_f64().unwrap() > 0.0,
            "{backend}: {j}"
        );
        let nll = j["nll"].as_f64().unwrap();
        let want = poisson["nll"].as_f64().unwrap();
        assert!(
            (nll - want).abs() <= 1e-12 * want,
            "{backend}: {nll} vs {want}"
        );
        let warnings = j["warnings"].to_string();
        assert!(
            warnings.contains("not overdispersed"),
            "{backend}: {warnings}"
        );
        let warnings = j["inference_warnings"].to_string();
        assert!(
            warnings.contains("alpha at the boundary"),
            "{backend}: {warnings}"
        );
    }
}

/// Student's t on data no heavier-tailed than a Gaussian's (sample kurtosis below 3): df's MLE
/// is infinite, so the fit settles df on the boundary (the Gaussian limit), says so, reports
/// no standard error for df, and mu and sigma are the Gaussian's MLE (the mean and the
/// deviation about it), on both engines; a heavy-tailed sample keeps a finite df with its
/// standard error.
#[test]
fn a_t_fit_of_gaussian_data_settles_on_the_gaussian_limit() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let normal: Vec<f64> = (0..3000)
        .map(|_| {
            // Box-Muller: Gaussian draws, their kurtosis near 3.
            let (u, v): (f64, f64) = (rng.random(), rng.random());
            3.0 + 2.0 * (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect();
    // Uniform draws are lighter-tailed still (kurtosis 1.8).
    let uniform: Vec<f64> = (0..3000).map(|_| rng.random_range(-1.0..1.0)).collect();
    for (name, data) in [("normal", normal), ("uniform", uniform)] {
        let text = std::iter::once("x".to_string())
            .chain(data.iter().map(|v| format!("{v:?}")))
            .collect::<Vec<_>>()
            .join("\n");
        let path = temp(&format!("t-{name}.csv"), text.as_bytes());
        let path = path.to_str().unwrap();
        let n = data.len() as f64;
        let mean = data.iter().sum::<f64>() / n;
        let sd = (data.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        // The t's df-slope at the Gaussian limit is n (kurtosis - 3) / 4: these samples are
        // below 3 (a Gaussian sample is, about half the time; this seed's is).
        let kurtosis = data.iter().map(|v| ((v - mean) / sd).powi(4)).sum::<f64>() / n;
        assert!(kurtosis < 3.0, "{name}: kurtosis {kurtosis}");
        for backend in common::backends() {
            let args = [
                "fit",
                "--family",
                "student-t",
                "--data",
                path,
                "--column",
                "x",
                "--backend",
                backend,
                "--json",
            ];
            let out = likely(&args);
            assert!(out.status.success(), "{name} {backend}: {out:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("df's MLE is infinite"), "{name}: {stderr}");
            let json: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["converged"], true, "{name} {backend}: {json}");
            assert!(json["params"]["df"].as_f64().unwrap() > 1e20, "{json}");
            assert_eq!(json["std_errors"]["df"], "NaN", "{json}");
            let (mu, sigma) = (
                json["params"]["mu"].as_f64().unwrap(),
                json["params"]["sigma"].as_f64().unwrap(),
            );
            assert!(
                (mu - mean).abs() <= 1e-12 * sd,
                "{name} {backend}: mu {mu} vs {mean}"
            );
            assert!(
                (sigma - sd).abs() <= 1e-12 * sd,
                "{name} {backend}: sigma {sigma} vs {sd}"
            );
        }
    }
    // Heavy tails: a finite df, estimated with a standard error.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    let growth = fixtures.join("gdpgrowth.csv");
    let json = ok_json(&[
        "fit",
        "--family",
        "student-t",
        "--data",
        growth.to_str().unwrap(),
        "--column",
        "growth",
        "--json",
    ]);
    let df = json["params"]["df"].as_f64().unwrap();
    assert!(df > 2.0 && df < 10.0, "{json}");
    assert!(json["std_errors"]["df"].as_f64().unwrap() > 0.0, "{json}");
}
