//! Inference and the study through the command line: the JSON contract and bad options.

mod common;

use common::cli::{likely, model_fit, ok_json};

use serde_json::Value;

fn temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("likely-inference-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

const KEYS: [&str; 9] = [
    "std_errors",
    "ci_low",
    "ci_high",
    "z",
    "p_values",
    "llf",
    "aic",
    "bic",
    "cov_type",
];

#[test]
fn family_fit_reports_uncertainty_keyed_like_params() {
    let data = temp("g.csv", "x\n1.5\n2.5\n4\n3.1\n2.2\n");
    for cov in ["hessian", "opg", "robust"] {
        let j = ok_json(&[
            "fit",
            "--family",
            "gaussian",
            "--data",
            &data,
            "--backend",
            "cpu",
            "--json",
            "--cov",
            cov,
        ]);
        for key in KEYS {
            assert!(j.get(key).is_some(), "{cov}: missing {key}");
        }
        assert_eq!(j["cov_type"], cov);
        for key in ["std_errors", "ci_low", "ci_high", "z", "p_values"] {
            assert!(
                j[key]["mu"].is_number() && j[key]["sigma"].is_number(),
                "{key}: {}",
                j[key]
            );
        }
        assert!(j["ci_low"]["sigma"].as_f64().unwrap() > 0.0);
    }
    let j = ok_json(&[
        "fit",
        "--family",
        "gaussian",
        "--data",
        &data,
        "--backend",
        "cpu",
        "--json",
        "--ci",
        "profile",
        "--alpha",
        "0.1",
    ]);
    assert_eq!(j["alpha"], 0.1);
    let j = ok_json(&[
        "fit",
        "--family",
        "categorical",
        "--data",
        &temp("c.csv", "x\na\nb\nb\nc\nc\nc\n"),
        "--backend",
        "cpu",
        "--json",
    ]);
    assert_eq!(j["std_errors"]["probs"].as_array().unwrap().len(), 3);
    assert_eq!(j["k"], 2);
}

#[test]
fn linear_model_reports_uncertainty_keyed_like_coefficients_and_mlp_says_none() {
    let mut text = String::from("a,b,y\n");
    for i in 0..60 {
        let a = (i as f64 * 0.37).sin();
        let b = (i as f64 * 0.11).cos();
        let y = ((a - b + 0.3 * (i as f64 * 1.7).sin()) > 0.0) as u8;
        text += &format!("{a},{b},{y}\n");
    }
    let data = temp("lin.csv", &text);
    let j = ok_json(&model_fit(
        "linear",
        "bernoulli",
        &data,
        "y",
        &["--backend", "cpu", "--json"],
    ));
    for key in KEYS {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    for key in ["std_errors", "ci_low", "ci_high", "z", "p_values"] {
        for coef in ["a", "b", "intercept"] {
            assert!(j[key][coef].is_number(), "{key}.{coef}: {j}");
        }
    }
    let no_intercept = ok_json(&model_fit(
        "linear",
        "bernoulli",
        &data,
        "y",
        &["--backend", "cpu", "--json", "--no-intercept"],
    ));
    assert!(no_intercept["std_errors"].get("intercept").is_none());
    let mlp = ok_json(&model_fit(
        "mlp",
        "bernoulli",
        &data,
        "y",
        &["--backend", "cpu", "--json", "--epochs", "2"],
    ));
    assert!(mlp["std_errors"].is_null());
    assert!(mlp["inference"]
        .as_str()
        .unwrap()
        .contains("not reported for MLPs"));
    let sep = temp("sep.csv", "x,y\n1,0\n2,0\n3,1\n4,1\n");
    let out = likely(&model_fit(
        "linear",
        "bernoulli",
        &sep,
        "y",
        &["--backend", "cpu", "--json"],
    ));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(j["separation"][0].as_str().unwrap().contains("'x'"), "{j}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("complete separation"));
}

#[test]
fn study_json_plot_and_bad_options() {
    let svg = std::env::temp_dir().join(format!("likely-study-{}.svg", std::process::id()));
    let j = ok_json(&[
        "study",
        "--family",
        "poisson",
        "--params",
        "lambda=3",
        "--n",
        "50,500",
        "--reps",
        "40",
        "--seed",
        "1",
        "--backend",
        "cpu",
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let results = j["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        for key in [
            "n", "param", "true", "bias", "rmse", "crlb_sd", "mean_se", "sd", "coverage",
        ] {
            assert!(r.get(key).is_some(), "missing {key}: {r}");
        }
        assert_eq!(r["param"], "lambda");
        assert!((r["crlb_sd"].as_f64().unwrap() - 3f64.sqrt()).abs() < 1e-12);
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("<circle") && text.contains("<line"));
    let png = svg.with_extension("png");
    ok_json(&[
        "study",
        "--family",
        "bernoulli",
        "--params",
        "p=0.3",
        "--n",
        "40,400",
        "--reps",
        "20",
        "--backend",
        "cpu",
        "--json",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&png)
        .unwrap()
        .starts_with(b"\x89PNG\r\n\x1a\n"));
    for (args, needle) in [
        (
            vec!["study", "--family", "gaussian", "--params", "mu=1"],
            "--params needs mu, sigma",
        ),
        (
            vec![
                "study",
                "--family",
                "gaussian",
                "--params",
                "mu=1,sigma=1",
                "--reps",
                "1",
            ],
            "--reps must be at least 2",
        ),
        (
            vec![
                "study",
                "--family",
                "gaussian",
                "--params",
                "mu=1,sigma=1",
                "--plot",
                "x.jpg",
            ],
            "must end in .svg or .png",
        ),
        (
            vec![
                "fit", "--family", "gaussian", "--data", "x.csv", "--alpha", "1.5",
            ],
            "--alpha must be in (0, 1)",
        ),
    ] {
        let out = likely(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
}
