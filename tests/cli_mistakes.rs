//! Inputs a user can get wrong, found by an adversarial sweep of the CLI: each gives a clear
//! error and a non-zero exit (or, where the input is legitimate, a correct answer in bounded
//! time and memory), never a panic, an abort or a hang.

mod common;

use common::cli::{fails_with, likely, model_fit, ok_json};
use std::path::PathBuf;

/// `fit --family FAMILY --data DATA` followed by `extra`.
fn family_fit<'a>(family: &'a str, data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["fit", "--family", family, "--data", data];
    args.extend_from_slice(extra);
    args
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("likely-mistakes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn absurd_sample_sizes_are_usage_errors_not_allocation_failures() {
    let huge = "100000000000000";
    for args in [
        vec![
            "study",
            "--family",
            "gaussian",
            "--params",
            "mu=5,sigma=2",
            "--n",
            huge,
        ],
        vec![
            "bench",
            "--job",
            "gauss-eval",
            "--engine",
            "cpu",
            "--n",
            huge,
        ],
        vec!["check", "--sizes", huge, "--no-large"],
    ] {
        fails_with(&args, "memory available");
    }
}

#[test]
fn networks_too_large_for_host_memory_are_refused() {
    let data = temp_file("m.csv", "a,b,c,yb\n1,2,3,0\n2,3,1,1\n3,1,2,0\n");
    let data = data.to_str().unwrap();
    for hidden in ["10000000000000000000", "10000000"] {
        fails_with(
            &model_fit(
                "mlp",
                "bernoulli",
                data,
                "yb",
                &["--hidden", hidden, "--backend", "cpu"],
            ),
            "parameters",
        );
    }
}

#[test]
fn an_id_like_categorical_target_is_refused() {
    // Numeric labels name classes 0..=max: 300 rows labelled up to 60000 are not classes.
    let mut text = String::from("a,b,y\n");
    for i in 0..300u64 {
        text += &format!("{},{},{}\n", i % 7, i % 5, (i * 7919) % 60_000);
    }
    let data = temp_file("ids.csv", &text);
    fails_with(
        &model_fit(
            "linear",
            "categorical",
            data.to_str().unwrap(),
            "y",
            &["--backend", "cpu"],
        ),
        "classes",
    );
}

#[test]
fn many_declared_classes_fit_quickly_without_standard_errors() {
    // 70000 classes on three rows: the fit's memory is linear in the classes (no p x p
    // directions or covariance), and the standard errors are skipped with a warning.
    let data = temp_file("c013.csv", "x\n0\n1\n3\n");
    let fit = ok_json(&family_fit(
        "categorical",
        data.to_str().unwrap(),
        &["--classes", "70000", "--backend", "cpu", "--json"],
    ));
    let probs = fit["params"]["probs"].as_array().unwrap();
    assert_eq!(probs.len(), 70000);
    for (k, want) in [(0, 1.0 / 3.0), (1, 1.0 / 3.0), (3, 1.0 / 3.0), (2, 0.0)] {
        let p = probs[k].as_f64().unwrap();
        assert!((p - want).abs() < 1e-6, "probs[{k}] = {p}");
    }
    let warnings = fit["inference_warnings"].to_string();
    assert!(warnings.contains("at most 2048"), "{warnings}");
}

#[test]
fn classes_beyond_the_text_labels_are_printed_unnamed() {
    let data = temp_file("text.csv", "x\na\nb\na\n");
    let out = likely(&family_fit(
        "categorical",
        data.to_str().unwrap(),
        &["--classes", "4", "--backend", "cpu"],
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("probs[a]") && stdout.contains("probs[3, no label]"),
        "{stdout}"
    );
    // The unseen classes' probabilities are on the boundary: no standard error, a warning.
    assert!(stdout.contains("at the boundary"), "{stdout}");
}

#[test]
fn a_gaussian_in_large_units_is_fitted_to_its_mean() {
    // N(1e10, 1e9): the stopping rule is in units of each parameter's curvature, so mu lands
    // on the sample mean (the closed form), and its standard error is sigma / sqrt(n).
    let values: Vec<f64> = (0..1000)
        .map(|i| 1e10 + 1e9 * ((i as f64 * 0.618_033_988_7).fract() - 0.5) * 3.4)
        .collect();
    let text = std::iter::once("x".to_string())
        .chain(values.iter().map(|v| format!("{v:?}")))
        .collect::<Vec<_>>()
        .join("\n");
    let data = temp_file("big.csv", &text);
    let fit = ok_json(&family_fit(
        "gaussian",
        data.to_str().unwrap(),
        &["--backend", "cpu", "--json"],
    ));
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let mu = fit["params"]["mu"].as_f64().unwrap();
    let se = fit["std_errors"]["mu"].as_f64().unwrap();
    assert!(
        (mu - mean).abs() < 1e-6 * sd / n.sqrt(),
        "mu {mu} vs mean {mean}"
    );
    assert!((se / (sd / n.sqrt()) - 1.0).abs() < 1e-6, "se {se}");
}

#[test]
fn duplicate_column_names_are_ambiguous() {
    let twice = temp_file("dup.csv", "a,a,y\n1,2,0\n2,1,1\n3,3,0\n4,1,1\n");
    let twice = twice.to_str().unwrap();
    let fit = |extra: &[&'static str]| {
        let mut args = model_fit("linear", "bernoulli", twice, "y", &["--backend", "cpu"]);
        args.extend_from_slice(extra);
        args
    };
    fails_with(&fit(&[]), "names column 'a' 2 times");
    let x = temp_file("dupx.csv", "x,x\n1,2\n3,4\n");
    fails_with(
        &family_fit("gaussian", x.to_str().unwrap(), &["--column", "x"]),
        "names column 'x' 2 times",
    );
    let once = temp_file("once.csv", "a,b,y\n1,2,0\n2,1,1\n3,3,0\n4,1,1\n");
    fails_with(
        &model_fit(
            "linear",
            "bernoulli",
            once.to_str().unwrap(),
            "y",
            &["--features", "a,b,a", "--backend", "cpu"],
        ),
        "feature 'a' is listed twice",
    );
}

#[test]
fn a_linear_scale_model_needs_more_rows_than_coefficients() {
    // Five features and an intercept on five rows: the fit interpolates, sigma's MLE is 0.
    let data = temp_file(
        "wide.csv",
        "a,b,c,d,e,y\n1,2,3,4,5,1\n2,1,3,5,4,2\n3,3,1,2,2,7\n5,1,1,0,2,3\n0,2,4,1,1,1\n",
    );
    for family in ["gaussian", "laplace"] {
        fails_with(
            &model_fit(
                "linear",
                family,
                data.to_str().unwrap(),
                "y",
                &["--backend", "cpu"],
            ),
            "more rows than coefficients",
        );
    }
}

#[test]
fn a_study_whose_samples_all_fail_is_an_error() {
    // One observation per sample: a Gaussian MLE needs two distinct values.
    fails_with(
        &[
            "study",
            "--family",
            "gaussian",
            "--params",
            "mu=5,sigma=2",
            "--n",
            "1",
            "--reps",
            "5",
        ],
        "too few estimates",
    );
}

#[test]
fn flags_that_would_be_ignored_are_refused() {
    let table = temp_file(
        "flags.csv",
        "a,b,y\n1,2,0\n2,1,1\n3,3,0\n4,1,1\n5,0,0\n0,5,1\n",
    );
    let table = table.to_str().unwrap();
    let column = temp_file("col.csv", "x\n1\n2\n4\n");
    let column = column.to_str().unwrap();
    let model = |extra: &[&'static str]| {
        let mut args = model_fit("linear", "bernoulli", table, "y", &["--backend", "cpu"]);
        args.extend_from_slice(extra);
        args
    };
    fails_with(
        &model(&["--lr", "0.1"]),
        "--lr applies to sgd, adam and adamw",
    );
    fails_with(
        &model(&["--optimizer", "adam", "--patience", "3"]),
        "needs --validation",
    );
    let mut mlp = model(&["--cov", "robust"]);
    mlp[2] = "mlp";
    fails_with(&mlp, "MLPs get no standard errors");
    let family = |extra: &[&'static str]| family_fit("gaussian", column, extra);
    fails_with(
        &family(&["--lr", "0.1"]),
        "--lr applies to --optimizer adam",
    );
    // GPU flags with --backend cpu: a warning (scripts pass the same flags to both backends).
    let out = likely(&family(&["--backend", "cpu", "--gpu-memory", "1GiB"]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--gpu-memory has no effect"));
    // Negative values reach the flag's own check (not "unexpected argument").
    fails_with(
        &family(&["--optimizer", "adam", "--lr", "-1"]),
        "--lr must be positive",
    );
    fails_with(&family(&["--alpha", "-0.1"]), "--alpha must be in (0, 1)");
}

#[test]
fn hand_edited_model_files_are_checked() {
    let table = temp_file(
        "edit.csv",
        "a,b,y\n1,2,0\n2,1,1\n3,3,0\n4,1,1\n5,0,0\n0,5,1\n",
    );
    let table = table.to_str().unwrap();
    let saved = table.replace("edit.csv", "edit.json");
    ok_json(&model_fit(
        "linear",
        "bernoulli",
        table,
        "y",
        &["--backend", "cpu", "--save", &saved, "--json"],
    ));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    ok_json(&["eval", "--model", &saved, "--data", table, "--json"]);
    let edited = |key: &str, value: serde_json::Value| {
        let mut m = model.clone();
        m[key] = value;
        let path = saved.replace("edit.json", &format!("edit-{key}.json"));
        std::fs::write(&path, m.to_string()).unwrap();
        path
    };
    for (key, value, needle) in [
        ("version", serde_json::json!(99), "version 99"),
        (
            "intercept",
            serde_json::json!(false),
            "intercepts in params are not 0",
        ),
        ("features", serde_json::json!(["a", "a"]), "listed twice"),
        ("classes", serde_json::json!(5), "inconsistent shape"),
    ] {
        fails_with(
            &["eval", "--model", &edited(key, value), "--data", table],
            needle,
        );
    }
}

use common::write_npy;

#[test]
fn bench_data_files_are_checked() {
    let dir = std::env::temp_dir().join(format!("likely-mistakes-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let bench = |job: &'static str| ["bench", "--job", job, "--engine", "cpu", "--data", d];
    // gauss-eval takes a 1-D array; a (10, 3) one is not 30 samples.
    write_npy(&dir.join("gauss-eval.x.npy"), &[10, 3], &[1.0; 30]);
    fails_with(&bench("gauss-eval"), "reads 1 column(s)");
    let mut samples = vec![1.0; 10];
    samples[4] = f64::NAN;
    write_npy(&dir.join("gauss-eval.x.npy"), &[10], &samples);
    fails_with(&bench("gauss-eval"), "value 4 is NaN");
    // logreg-fit's targets are 0/1.
    write_npy(&dir.join("logreg-fit.x.npy"), &[4, 2], &[0.5; 8]);
    write_npy(&dir.join("logreg-fit.y.npy"), &[4], &[0.0, 1.0, 7.0, 1.0]);
    fails_with(&bench("logreg-fit"), "target 2 is 7");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn clearer_messages_for_common_slips() {
    // A semicolon-separated file: the hint names the delimiter.
    let semi = temp_file("semi.csv", "a;b;y\n1;2;0\n2;1;1\n");
    fails_with(
        &model_fit(
            "linear",
            "bernoulli",
            semi.to_str().unwrap(),
            "y",
            &["--backend", "cpu"],
        ),
        "separated by ';'",
    );
    // Values whose squares overflow are refused before they make a NaN likelihood.
    let huge = temp_file("huge.csv", "x\n1e300\n-1e300\n1e300\n");
    fails_with(
        &family_fit("gaussian", huge.to_str().unwrap(), &["--backend", "cpu"]),
        "rescale the data",
    );
    // Each out-of-range flag is named alone; sizes take TiB and say what a size must be.
    let table = temp_file("slips.csv", "a,y\n1,0\n2,1\n3,0\n4,1\n");
    let table = table.to_str().unwrap();
    let model = |extra: &[&'static str]| {
        let mut args = model_fit("mlp", "bernoulli", table, "y", &["--backend", "cpu"]);
        args.extend_from_slice(extra);
        args
    };
    fails_with(
        &model(&["--optimizer", "sgd", "--momentum", "2"]),
        "--momentum must be in [0, 1)",
    );
    fails_with(&model(&["--host-memory", "0"]), "at least 1 byte");
    fails_with(&model(&["--host-memory", "1PiB"]), "TiB");
}

#[test]
fn a_linear_model_that_says_it_converged_is_at_its_optimum() {
    // Prices against floor area and age, in dollars and in units 1e5 times smaller. A
    // Gaussian linear model's MLE is least squares; a fit that reports convergence must be
    // there. (In the small units the gradient shrinks with the target's scale, and the
    // optimiser used to stop thousands of standard errors short while reporting convergence;
    // its gradient test is now in units of the target's scale.)
    let mut state = 12345u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let rows: Vec<[f64; 3]> = (0..2000)
        .map(|_| {
            let (sqft, age) = (500.0 + 3500.0 * uniform(), 80.0 * uniform());
            let noise = (uniform() + uniform() + uniform() - 1.5) * 100_000.0;
            [sqft, age, 50_000.0 + 150.0 * sqft - 1000.0 * age + noise]
        })
        .collect();
    // Least squares by the normal equations (intercept, sqft, age), for reference.
    let ols = |scale: f64| {
        let mut a = vec![vec![0.0; 3]; 3];
        let mut b = vec![0.0; 3];
        for r in &rows {
            let x = [1.0, r[0], r[1]];
            for i in 0..3 {
                b[i] += x[i] * r[2] * scale;
                for j in 0..3 {
                    a[i][j] += x[i] * x[j];
                }
            }
        }
        common::gauss_solve(a, b)
    };
    for scale in [1.0, 1e5] {
        let text: String = std::iter::once("sqft,age,price\n".to_string())
            .chain(
                rows.iter()
                    .map(|r| format!("{:?},{:?},{:?}\n", r[0], r[1], r[2] * scale)),
            )
            .collect();
        let path = temp_file(&format!("prices-{scale}.csv"), &text);
        let mut args = model_fit("linear", "gaussian", path.to_str().unwrap(), "price", &[]);
        args.extend(["--backend", "cpu", "--json"]);
        let fit = ok_json(&args);
        let reference = ols(scale);
        if scale == 1.0 {
            assert_eq!(fit["converged"], true, "{}", fit["reason"]);
        }
        if fit["converged"] == true {
            for (k, key) in ["intercept", "sqft", "age"].into_iter().enumerate() {
                let got = fit["coefficients"][key].as_f64().unwrap();
                let want = reference[k];
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs(),
                    "scale {scale}, {key}: {got} vs least squares {want}"
                );
            }
        }
    }
}

#[test]
fn a_huge_numeric_class_label_is_named_not_allocated() {
    // max label + 1 classes would be 1e20 (or overflow): the classes are capped, and the
    // label beyond them is reported with its line.
    let data = temp_file("huge_label.csv", "y\n0\n1\n1e20\n2\n");
    fails_with(
        &[
            "fit",
            "--family",
            "categorical",
            "--data",
            data.to_str().unwrap(),
        ],
        "line 4",
    );
}

#[test]
fn csv_errors_name_the_true_line_past_blank_lines() {
    // The CSV reader places a record before the blank lines it skipped; the line named must
    // be the record's own, for a bad cell, a non-finite value, a family's support, a model's
    // feature and a short row, on the one-pass reader and on the parallel one (files of 8
    // MiB and more).
    let fit = |name: &str, text: &str, family: &str, line: &str| {
        let data = temp_file(name, text);
        fails_with(
            &[
                "fit",
                "--family",
                family,
                "--data",
                data.to_str().unwrap(),
                "--column",
                "y",
            ],
            line,
        );
        std::fs::remove_file(data).unwrap();
    };
    fit(
        "blank_text.csv",
        "a,y\n1,2\n\n3,x\n4,5\n",
        "gaussian",
        "row 2 (line 4)",
    );
    fit(
        "blank_nan.csv",
        "a,y\n1,2\n\n\n3,nan\n",
        "gaussian",
        "row 2 (line 5)",
    );
    fit(
        "blank_support.csv",
        "a,y\n1,2\n\r\n3,-1\n",
        "poisson",
        "row 2 (line 4)",
    );
    let mut big = String::from("a,y\n");
    for _ in 0..1_500_000 {
        big += "1,2.5\n";
    }
    assert!(big.len() > 8 << 20, "parsed in parallel");
    big += "\n\n1,x\n";
    fit(
        "blank_big.csv",
        &big,
        "gaussian",
        "row 1500001 (line 1500004)",
    );
    for (name, text, line) in [
        (
            "blank_feature.csv",
            "x,y\n1,2\n\n2,inf\n3,1\n",
            "row 2 (line 4)",
        ),
        ("blank_short.csv", "x,y\n1,2\n\n3\n", "line 4"),
    ] {
        let data = temp_file(name, text);
        fails_with(
            &model_fit(
                "linear",
                "gaussian",
                data.to_str().unwrap(),
                "y",
                &["--backend", "cpu"],
            ),
            line,
        );
        std::fs::remove_file(data).unwrap();
    }
}

/// The positive families (gamma, lognormal, Weibull) refuse a target of 0, a negative one and
/// a NaN (not finite, before any family sees it), as family fits and as model targets, naming the row and the column.
#[test]
fn positive_families_refuse_targets_outside_their_support() {
    for (value, shown) in [
        ("0", "value 0"),
        ("-1.5", "value -1.5"),
        ("nan", "value NaN"),
    ] {
        let path = temp_file(
            &format!("positive-{value}.csv"),
            &format!("x,y\n1,2\n2,{value}\n3,1.5\n"),
        );
        let data = path.to_str().unwrap();
        for family in ["gamma", "lognormal", "weibull"] {
            let want = format!("row 2 (line 3), column 'y': {shown}");
            fails_with(&family_fit(family, data, &["--column", "y"]), &want);
            fails_with(
                &[
                    "fit",
                    "--model",
                    "linear",
                    "--family",
                    family,
                    "--data",
                    data,
                    "--target",
                    "y",
                    "--features",
                    "x",
                ],
                &want,
            );
        }
    }
}
