//! Real data against independent implementations, on both engines with default flags: the
//! public datasets statsmodels and scikit-learn ship, with reference fits computed by
//! tests/fixtures/make_references.py (statsmodels, scikit-learn, scipy) and stored in
//! tests/fixtures/real/references.json; and NIST StRD linear least squares, whose certified
//! values are in the .dat files under tests/fixtures/nist/.
//!
//! The covariances --cov robust and opg are held to statsmodels' HC0 sandwich and to the
//! inverse outer product of its per-row scores.
//!
//! Targets: coefficients within 1e-8 relative or 1e-6 of a standard error (whichever is
//! larger), standard errors within 1e-6 relative, the NLL within 1e-10 relative; NIST: at least
//! 10 correct digits (LRE) on the CPU engine, 7 on the GPU, Filip reported as it is.

mod common;

use common::cli::likely;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs a fit and returns its JSON and exit status (0 converged, 3 not).
fn fit(args: &[&str]) -> (Value, i32) {
    let out = likely(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 3,
        "{args:?}: exit {code}, stderr {stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}; stderr {stderr}"));
    common::audit::audit_fit(args, &json);
    (json, code)
}

fn number(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {v}"))
}

/// The reference suite's fits, one at a time, on every engine.
fn check_reference(name: &str) {
    let text = std::fs::read_to_string(fixtures().join("real/references.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let r = &all["fits"][name];
    assert!(r.is_object(), "no reference named {name}");
    let data = fixtures().join("real").join(r["data"].as_str().unwrap());
    let data = data.to_str().unwrap();
    let features: Vec<&str> = r["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let features = features.join(",");
    for backend in common::backends() {
        let mut args = vec![
            "fit",
            "--model",
            "linear",
            "--family",
            r["family"].as_str().unwrap(),
            "--data",
            data,
            "--target",
            r["target"].as_str().unwrap(),
            "--features",
            &features,
            "--backend",
            backend,
            "--json",
        ];
        if let Some(prior) = r["prior"].as_str() {
            args.extend_from_slice(&["--prior", prior]);
        }
        if let Some(cov) = r["cov"].as_str() {
            args.extend_from_slice(&["--cov", cov]);
        }
        if let Some(fix) = r["fix"].as_str() {
            args.extend_from_slice(&["--fix", fix]);
        }
        for key in ["offset", "exposure"] {
            if let Some(column) = r[key].as_str() {
                args.extend_from_slice(&[
                    if key == "offset" {
                        "--offset"
                    } else {
                        "--exposure"
                    },
                    column,
                ]);
            }
        }
        if let Some(link) = r["link"].as_str() {
            args.extend_from_slice(&["--link", link]);
        }
        if r["intercept"] == false {
            args.push("--no-intercept");
        }
        // The GPU network kernels carry heads at their native links with one global.
        // Asked for, the GPU refuses with a usage error that names the way out.
        if (r.get("link").is_some() || r["family"] == "student-t") && backend == "gpu" {
            let out = likely(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
            assert!(stderr.contains("--backend cpu"), "{name}: {stderr}");
            continue;
        }
        let saved = std::env::temp_dir().join(format!(
            "likely-real-{}-{name}-{backend}.json",
            std::process::id()
        ));
        let saved = saved.to_str().unwrap().to_string();
        let means = r.get("means_of_first_rows").and_then(Value::as_array);
        if means.is_some() {
            args.extend_from_slice(&["--save", &saved]);
        }
        let (got, code) = fit(&args);
        let what = format!("{name} on {backend}");
        assert_eq!(code, 0, "{what}: {got}");
        assert_eq!(got["converged"], true, "{what}: {got}");
        assert_eq!(got["n"], r["n"], "{what}");
        let nll = number(&got["nll"], "nll");
        let want = number(&r["nll"], "reference nll");
        assert!(
            (nll - want).abs() <= 1e-10 * want.abs().max(1.0),
            "{what}: NLL {nll} vs {want}"
        );
        // Coefficients (per class for a multinomial model) and their standard errors, as
        // (key, class, name).
        let keys: Vec<(String, Option<String>, String)> = match r["family"].as_str() {
            Some("categorical") => r["coefficients"]
                .as_object()
                .unwrap()
                .iter()
                .flat_map(|(class, coefs)| {
                    coefs
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(move |k| (format!("{class}:{k}"), Some(class.clone()), k.clone()))
                })
                .collect(),
            _ => r["coefficients"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| (k.clone(), None, k.clone()))
                .collect(),
        };
        let at = |v: &Value, class: &Option<String>, k: &str| -> Value {
            match class {
                Some(c) => v[c][k].clone(),
                None => v[k].clone(),
            }
        };
        let pairs: Vec<(String, Value, Value, Option<Value>)> = keys
            .iter()
            .map(|(key, class, k)| {
                (
                    key.clone(),
                    at(&r["coefficients"], class, k),
                    at(&got["coefficients"], class, k),
                    r.get("std_errors").map(|s| at(s, class, k)),
                )
            })
            .collect();
        let std_errors: Vec<Value> = keys
            .iter()
            .map(|(_, class, k)| at(&got["std_errors"], class, k))
            .collect();
        for ((key, want, have, se), se_have) in pairs.into_iter().zip(&std_errors) {
            let (want, have) = (number(&want, &key), number(&have, &key));
            let se_want = se.map(|s| number(&s, &key));
            let allowed = (1e-8 * want.abs()).max(se_want.map_or(1e-10, |s| 1e-6 * s));
            assert!(
                (have - want).abs() <= allowed,
                "{what}: {key} = {have}, reference {want} (allowed {allowed:.1e}, off by {:.2e})",
                (have - want).abs()
            );
            if let Some(se_want) = se_want {
                let se_have = number(se_have, &key);
                assert!(
                    (se_have - se_want).abs() <= 1e-6 * se_want,
                    "{what}: se({key}) = {se_have}, reference {se_want}"
                );
            }
        }
        // Deviance, Pearson's chi^2 and the null model, against statsmodels' (see
        // make_references.py): p-values relative, or below the smallest double where
        // statsmodels' underflowed to 0.
        if let Some(glm) = r.get("glm").and_then(Value::as_object) {
            for (key, want) in glm {
                let (have, want) = (number(&got[key], key), number(want, key));
                let allowed = if key == "llr_pvalue" {
                    1e-9 * want + 1e-300
                } else {
                    1e-9 * want.abs().max(1.0)
                };
                assert!(
                    (have - want).abs() <= allowed,
                    "{what}: {key} = {have}, reference {want}"
                );
            }
        }
        // predict on the saved model: the family's mean at each row (e^eta for the gamma,
        // e^(eta + sigma^2/2) for the lognormal, lambda Gamma(1 + 1/k) for the Weibull, e^eta
        // for the negative binomial, 1 / (1 + e^-eta) for the beta)
        // against scipy's distribution means at the reference fit.
        if let Some(means) = means {
            let output = format!("{saved}.csv");
            let out = likely(&[
                "predict", "--model", &saved, "--data", data, "--output", &output,
            ]);
            assert!(out.status.success(), "{what}: predict: {out:?}");
            let text = std::fs::read_to_string(&output).unwrap();
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some("mean"), "{what}");
            let rows: Vec<&str> = lines.take(means.len()).collect();
            assert_eq!(
                rows.len(),
                means.len(),
                "{what}: predict wrote too few rows"
            );
            for (i, (line, want)) in rows.into_iter().zip(means).enumerate() {
                let have: f64 = line.parse().unwrap();
                let want = number(want, "mean");
                assert!(
                    (have - want).abs() <= 1e-8 * want.abs(),
                    "{what}: predicted mean of row {i} {have}, scipy's {want}"
                );
            }
            let _ = std::fs::remove_file(&saved);
            let _ = std::fs::remove_file(&output);
        }
        for global in ["sigma", "b", "shape", "alpha", "phi", "df"] {
            if let Some(want) = r.get(global) {
                let (have, want) = (number(&got[global], global), number(want, global));
                assert!(
                    (have - want).abs() <= 1e-9 * want,
                    "{what}: {global} = {have}, reference {want}"
                );
            }
            if let Some(want) = r.get("std_errors").and_then(|s| s.get(global)) {
                let have = number(&got["std_errors"][global], global);
                let want = number(want, global);
                assert!(
                    (have - want).abs() <= 1e-6 * want,
                    "{what}: se({global}) = {have}, reference {want}"
                );
            }
        }
    }
}

#[test]
fn logistic_regression_on_spector_matches_statsmodels() {
    check_reference("spector_logit");
}

#[test]
fn poisson_regression_on_randhie_matches_statsmodels() {
    check_reference("randhie_poisson");
}

#[test]
fn multinomial_logit_on_anes96_in_raw_units_matches_statsmodels() {
    check_reference("anes96_mnlogit");
}

#[test]
fn least_squares_on_longley_matches_statsmodels() {
    check_reference("longley_ols");
}

#[test]
fn least_squares_on_diabetes_matches_statsmodels() {
    check_reference("diabetes_ols");
}

#[test]
fn least_squares_through_the_origin_on_engel_matches_statsmodels() {
    check_reference("engel_ols_noconst");
}

/// `--report ols` on longley (ill-conditioned), diabetes and engel without a constant (the
/// uncentred R^2 and the F test against the zero model): everything statsmodels' OLS
/// reports, from the same maximum-likelihood fit, on both engines.
#[test]
fn the_ols_report_matches_statsmodels_ols() {
    let text = std::fs::read_to_string(fixtures().join("real/references.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    for name in ["longley_ols", "diabetes_ols", "engel_ols_noconst"] {
        let r = &all["fits"][name];
        let ols = &r["ols"];
        let data = fixtures().join("real").join(r["data"].as_str().unwrap());
        let features: Vec<&str> = r["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let features = features.join(",");
        for backend in common::backends() {
            let mut args = vec![
                "fit",
                "--model",
                "linear",
                "--family",
                "gaussian",
                "--data",
                data.to_str().unwrap(),
                "--target",
                r["target"].as_str().unwrap(),
                "--features",
                &features,
                "--report",
                "ols",
                "--backend",
                backend,
                "--json",
            ];
            if r["intercept"] == false {
                args.push("--no-intercept");
            }
            let (got, code) = fit(&args);
            let what = format!("{name} on {backend}");
            assert_eq!(code, 0, "{what}: {got}");
            assert_eq!(got["report"], "ols", "{what}");
            assert!(got.get("z").is_none(), "{what}: z beside t");
            let close = |have: f64, want: f64, tol: f64, key: &str| {
                assert!(
                    (have - want).abs() <= tol * want.abs() + 1e-300,
                    "{what}: {key} = {have}, statsmodels {want}"
                );
            };
            for key in ["scale", "rsquared", "rsquared_adj", "fvalue"] {
                close(number(&got[key], key), number(&ols[key], key), 1e-9, key);
            }
            close(
                number(&got["f_pvalue"], "f_pvalue"),
                number(&ols["f_pvalue"], "f_pvalue"),
                1e-7,
                "f_pvalue",
            );
            assert_eq!(got["df_resid"], ols["df_resid"], "{what}");
            assert_eq!(got["df_model"], ols["df_model"], "{what}");
            for (key, tol) in [
                ("std_errors", 1e-8),
                ("t", 1e-7),
                ("p_values", 1e-6),
                ("ci_low", 1e-8),
                ("ci_high", 1e-8),
            ] {
                for (k, want) in ols[key].as_object().unwrap() {
                    let have = number(&got[key][k], k);
                    close(have, number(want, k), tol, &format!("{key}[{k}]"));
                }
            }
        }
    }
}

#[test]
fn lad_on_stackloss_reaches_the_linear_programming_optimum() {
    check_reference("stackloss_lad");
}

#[test]
fn lad_on_engel_reaches_the_linear_programming_optimum() {
    check_reference("engel_lad");
}

#[test]
fn exponential_regression_on_scotland_matches_statsmodels() {
    check_reference("scotland_exponential");
}

#[test]
fn gamma_regression_on_scotland_matches_statsmodels_with_the_shape_by_maximum_likelihood() {
    check_reference("scotland_gamma");
}

/// Links other than each family's default (`--link`), against statsmodels with standard
/// errors from the observed information (make_references.py).
#[test]
fn probit_and_cloglog_models_of_spector_match_statsmodels() {
    check_reference("spector_probit");
    check_reference("spector_cloglog");
}

#[test]
fn gamma_models_of_scotland_at_the_inverse_and_identity_links_match_statsmodels() {
    check_reference("scotland_gamma_inverse");
    check_reference("scotland_gamma_identity");
}

#[test]
fn a_gaussian_model_with_a_log_mean_matches_statsmodels() {
    check_reference("stackloss_gaussian_log");
}

#[test]
fn an_identity_link_poisson_model_of_randhie_matches_statsmodels() {
    check_reference("randhie_poisson_identity");
}

/// A Poisson rate model: the population at risk as `--exposure`, and its logarithm as
/// `--offset`, against statsmodels' GLM with exposure= and offset= (one optimum).
#[test]
fn poisson_rate_models_with_an_exposure_or_an_offset_match_statsmodels() {
    check_reference("countycancer_poisson_exposure");
    check_reference("countycancer_poisson_offset");
}

/// Student's t errors, df and scale estimated, against statsmodels' TLinearModel polished.
#[test]
fn a_t_regression_on_engel_matches_statsmodels_tlinearmodel() {
    check_reference("engel_student_t");
}

#[test]
fn a_t_regression_with_df_held_matches_statsmodels_tlinearmodel_fix_df() {
    check_reference("engel_student_t_df5");
}

#[test]
fn negative_binomial_regression_on_randhie_matches_statsmodels_with_alpha_by_maximum_likelihood() {
    check_reference("randhie_negbin");
}

#[test]
fn negative_binomial_regression_with_alpha_held_matches_statsmodels_glm() {
    check_reference("randhie_negbin_fixed");
}

#[test]
fn beta_regression_on_food_expenditure_matches_statsmodels_and_betareg() {
    check_reference("foodexpenditure_beta");
}

#[test]
fn lognormal_regression_on_engel_matches_least_squares_on_the_logs() {
    check_reference("engel_lognormal");
}

#[test]
fn weibull_regression_on_engel_matches_scipy_s_likelihood_optimum() {
    check_reference("engel_weibull");
}

/// `fit --family F --column C` against scipy.stats' maximum-likelihood fits, on every engine:
/// parameters within 1e-9 relative, standard errors 1e-6, the NLL 1e-11.
#[test]
fn family_fits_on_real_columns_match_scipy() {
    let text = std::fs::read_to_string(fixtures().join("real/references.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let fits = all["family_fits"].as_object().expect("family_fits");
    assert!(!fits.is_empty());
    for (name, r) in fits {
        let data = fixtures().join("real").join(r["data"].as_str().unwrap());
        for backend in common::backends() {
            let mut args = vec![
                "fit",
                "--family",
                r["family"].as_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--column",
                r["column"].as_str().unwrap(),
                "--backend",
                backend,
                "--json",
            ];
            // A parameter held (scipy's f0, floc): reported under `fixed`, exactly as given.
            if let Some(fix) = r["fix"].as_str() {
                args.extend_from_slice(&["--fix", fix]);
            }
            let (got, code) = fit(&args);
            let what = format!("{name} on {backend}");
            assert_eq!(code, 0, "{what}: {got}");
            assert_eq!(got["converged"], true, "{what}: {got}");
            matches_family_reference(&got, r, &what);
            if let Some(fix) = r["fix"].as_str() {
                let (name, value) = fix.split_once('=').unwrap();
                let value: f64 = value.parse().unwrap();
                assert_eq!(got["fixed"][name], value, "{what}");
                assert_eq!(got["params"][name], value, "{what}");
                assert_eq!(got["std_errors"][name], "NaN", "{what}");
                assert_eq!(got["k"], 1, "{what}");
            }
        }
    }
}

/// A family fit's NLL (1e-11), parameters (1e-9) and standard errors (1e-6), relative,
/// against its reference.
fn matches_family_reference(got: &Value, r: &Value, what: &str) {
    let (nll, want) = (number(&got["nll"], "nll"), number(&r["nll"], "nll"));
    assert!(
        (nll - want).abs() <= 1e-11 * want.abs().max(1.0),
        "{what}: NLL {nll} vs {want}"
    );
    for (key, want) in r["params"].as_object().unwrap() {
        let (have, want) = (number(&got["params"][key], key), number(want, key));
        assert!(
            (have - want).abs() <= 1e-9 * want.abs(),
            "{what}: {key} = {have}, reference {want}"
        );
    }
    for (key, want) in r["std_errors"].as_object().unwrap() {
        let (have, want) = (number(&got["std_errors"][key], key), number(want, key));
        assert!(
            (have - want).abs() <= 1e-6 * want.abs(),
            "{what}: se({key}) = {have}, reference {want}"
        );
    }
}

/// Right-censored lifetimes (Rossi's recidivism data, weeks to re-arrest, 318 of 432 censored
/// at 52): exponential, Weibull, lognormal and Gaussian fits against the score equations
/// solved from scipy.stats' logpdf and logsf, with which lifelines' fitters agree.
#[test]
fn censored_fits_on_rossi_match_lifelines_and_scipy() {
    let text = std::fs::read_to_string(fixtures().join("real/references.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let fits = all["censored_fits"].as_object().expect("censored_fits");
    assert_eq!(fits.len(), 4);
    for (name, r) in fits {
        let data = fixtures().join("real").join(r["data"].as_str().unwrap());
        let args = [
            "fit",
            "--family",
            r["family"].as_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--column",
            r["column"].as_str().unwrap(),
            "--censored",
            r["censored"].as_str().unwrap(),
            "--json",
        ];
        let (got, code) = fit(&args);
        assert_eq!(code, 0, "{name}: {got}");
        assert_eq!(got["converged"], true, "{name}: {got}");
        assert_eq!(got["censored_rows"], r["censored_rows"], "{name}");
        assert_eq!(got["n"], 432, "{name}");
        matches_family_reference(&got, r, name);
    }
}

#[test]
fn l2_penalised_logistic_regression_on_breast_cancer_matches_the_optimum() {
    check_reference("cancer_logit_l2");
}

#[test]
fn l1_penalised_logistic_regression_on_spector_matches_statsmodels() {
    check_reference("spector_logit_l1");
}

#[test]
fn sandwich_standard_errors_match_statsmodels_hc0() {
    check_reference("spector_logit_robust");
    check_reference("randhie_poisson_robust");
}

#[test]
fn outer_product_standard_errors_match_statsmodels_scores() {
    check_reference("spector_logit_opg");
    check_reference("randhie_poisson_opg");
}

/// A NIST StRD linear least-squares problem: data, certified coefficients and residual SD.
struct Nist {
    y: Vec<f64>,
    /// Predictor columns (x1..x6 for Longley; x for the others, raised to the model's powers).
    x: Vec<Vec<f64>>,
    certified: Vec<f64>,
    certified_sd: Vec<f64>,
    residual_sd: f64,
    intercept: bool,
}

fn nist(name: &str) -> Nist {
    let text = std::fs::read_to_string(fixtures().join(format!("nist/{name}.dat"))).unwrap();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let (mut certified, mut certified_sd) = (Vec::new(), Vec::new());
    for line in &lines {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() == 3 && t[0].starts_with('B') && t[0][1..].parse::<usize>().is_ok() {
            certified.push(t[1].parse::<f64>().unwrap());
            certified_sd.push(t[2].parse::<f64>().unwrap());
        }
    }
    // "Standard Deviation  <value>" under "Residual" (the table's header has no value).
    let residual_sd = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("Standard Deviation"))
        .find_map(|l| l.split_whitespace().nth(2))
        .unwrap()
        .parse()
        .unwrap();
    let start = lines.iter().rposition(|l| l.starts_with("Data:")).unwrap() + 1;
    let rows: Vec<Vec<f64>> = lines[start..]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    let y: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    let intercept = !name.starts_with("NoInt");
    let x = if rows[0].len() > 2 {
        (1..rows[0].len())
            .map(|j| rows.iter().map(|r| r[j]).collect())
            .collect()
    } else {
        let degree = certified.len() - intercept as usize;
        (1..=degree)
            .map(|k| rows.iter().map(|r| r[1].powi(k as i32)).collect())
            .collect()
    };
    Nist {
        y,
        x,
        certified,
        certified_sd,
        residual_sd,
        intercept,
    }
}

/// Log relative error: the number of correct significant digits (15 when exact).
fn lre(estimate: f64, certified: f64) -> f64 {
    let err = if certified == 0.0 {
        estimate.abs()
    } else {
        (estimate - certified).abs() / certified.abs()
    };
    if err == 0.0 {
        15.0
    } else {
        (-err.log10()).min(15.0)
    }
}

/// Fits a NIST problem on `backend`; returns the smallest coefficient LRE and whether the fit
/// said it converged.
fn nist_fit(name: &str, backend: &str) -> (f64, bool) {
    let problem = nist(name);
    let path = common::temp_path("nist", &format!("{name}.csv"));
    let names: Vec<String> = std::iter::once("y".to_string())
        .chain((1..=problem.x.len()).map(|j| format!("x{j}")))
        .collect();
    let header: Vec<&str> = names.iter().map(String::as_str).collect();
    let columns: Vec<Vec<f64>> = std::iter::once(problem.y.clone())
        .chain(problem.x.iter().cloned())
        .collect();
    let path = common::csv_table(&path, &header, &columns);
    let mut args = common::cli::model_fit(
        "linear",
        "gaussian",
        &path,
        "y",
        &["--backend", backend, "--json"],
    );
    if !problem.intercept {
        args.push("--no-intercept");
    }
    let (got, _) = fit(&args);
    let coefficient = |j: usize| -> f64 {
        // B0 is the intercept, B1.. the predictors.
        let key = if problem.intercept && j == 0 {
            "intercept".to_string()
        } else {
            format!("x{}", j + 1 - problem.intercept as usize)
        };
        number(&got["coefficients"][&key], &key)
    };
    let digits = (0..problem.certified.len())
        .map(|j| lre(coefficient(j), problem.certified[j]))
        .fold(f64::INFINITY, f64::min);
    // Wampler1 and 2 lie on their polynomials: Wampler1 exactly (its integers leave residuals
    // of exactly 0: sigma's MLE is 0, no MLE exists, and the fit says so instead of claiming
    // convergence), Wampler2 to the rounding of its decimal data (the fit says it is exact).
    if problem.residual_sd == 0.0 {
        let warnings = got["warnings"].to_string();
        let exact = warnings.contains("lie exactly on the fit");
        assert!(
            (exact && got["converged"] == false) || warnings.contains("the fit is exact"),
            "{name} on {backend}: {got}"
        );
        eprintln!("{name} on {backend}: coefficient LRE {digits:.2} (an exact fit)");
        return (digits, true);
    }
    // The residual SD: the certified s = sqrt(RSS / (n - p)), likely's sigma the MLE
    // sqrt(RSS / n). And the certified standard deviations of the estimates use s too.
    let (n, p) = (problem.y.len() as f64, problem.certified.len() as f64);
    let sigma = number(&got["sigma"], "sigma");
    let s = sigma * (n / (n - p)).sqrt();
    eprintln!(
        "{name} on {backend}: coefficient LRE {digits:.2}, residual SD LRE {:.2}, converged {}",
        lre(s, problem.residual_sd),
        got["converged"]
    );
    if problem.residual_sd > 0.0 && got["converged"] == true {
        assert!(
            lre(s, problem.residual_sd) >= 7.0,
            "{name} on {backend}: s = {s}, certified {}",
            problem.residual_sd
        );
        for j in 0..problem.certified.len() {
            let key = if problem.intercept && j == 0 {
                "intercept".to_string()
            } else {
                format!("x{}", j + 1 - problem.intercept as usize)
            };
            let se = number(&got["std_errors"][&key], &key) * (n / (n - p)).sqrt();
            assert!(
                lre(se, problem.certified_sd[j]) >= 6.0,
                "{name} on {backend}: sd({key}) = {se}, certified {}",
                problem.certified_sd[j]
            );
        }
    }
    (digits, got["converged"] == true)
}

#[test]
fn nist_linear_least_squares_to_ten_digits_on_the_cpu_and_seven_on_the_gpu() {
    for name in [
        "Norris", "Pontius", "NoInt1", "NoInt2", "Longley", "Wampler1", "Wampler2", "Wampler3",
        "Wampler4", "Wampler5",
    ] {
        for backend in common::backends() {
            let (digits, converged) = nist_fit(name, backend);
            let want = if backend == "cpu" { 10.0 } else { 7.0 };
            assert!(converged, "{name} on {backend}: not converged");
            assert!(
                digits >= want,
                "{name} on {backend}: {digits:.2} correct digits, want {want}"
            );
        }
    }
}

#[test]
fn nist_filip_is_reported_as_it_is() {
    // Filip's design (degree-10 polynomial) has a condition number near 1e10 even after
    // conditioning: f64 least squares keeps about 7 digits of it. The fit must not claim more
    // than it has: converged only with at least 7 correct digits.
    for backend in common::backends() {
        let (digits, converged) = nist_fit("Filip", backend);
        assert!(
            !converged || digits >= 7.0,
            "Filip on {backend}: converged with {digits:.2} correct digits"
        );
    }
}

#[test]
fn the_audit_catches_a_convergence_claim_off_the_optimum() {
    // The audit is what holds every converged fit in the suite to its optimum: it must fail
    // on a claim a little off it (the errors the issue saw were 0.05% to 2%), and pass on the
    // real one.
    let data = fixtures().join("real/randhie.csv");
    let data = data.to_str().unwrap();
    let args = [
        "fit",
        "--model",
        "linear",
        "--family",
        "poisson",
        "--data",
        data,
        "--target",
        "mdvis",
        "--backend",
        "cpu",
        "--json",
    ];
    let (json, _) = fit(&args);
    for (key, factor) in [("lncoins", 1.001), ("intercept", 1.0005), ("physlm", 0.999)] {
        let mut off = json.clone();
        let v = off["coefficients"][key].as_f64().unwrap();
        off["coefficients"][key] = serde_json::json!(v * factor);
        let caught = std::panic::catch_unwind(|| common::audit::audit_fit(&args, &off));
        assert!(caught.is_err(), "the audit passed {key} scaled by {factor}");
    }
}

#[test]
fn profile_intervals_on_longley_match_an_independent_profile() {
    // Longley's design is the ill-conditioned one: the profile re-fits run on its conditioned
    // rows, and each interval end matches numpy's least squares on the profiled problem.
    let text = std::fs::read_to_string(fixtures().join("real/references.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let r = &all["fits"]["longley_ols"];
    let data = fixtures().join("real/longley.csv");
    for backend in common::backends() {
        let (got, code) = fit(&[
            "fit",
            "--model",
            "linear",
            "--family",
            "gaussian",
            "--data",
            data.to_str().unwrap(),
            "--target",
            "TOTEMP",
            "--ci",
            "profile",
            "--backend",
            backend,
            "--json",
        ]);
        assert_eq!(code, 0, "{got}");
        for (name, ends) in r["profile_intervals"].as_object().unwrap() {
            let want = [number(&ends[0], name), number(&ends[1], name)];
            let have = [
                number(&got["ci_low"][name], name),
                number(&got["ci_high"][name], name),
            ];
            for (h, w) in have.iter().zip(want) {
                assert!(
                    (h - w).abs() <= 1e-7 * w.abs(),
                    "{backend}: {name} interval end {h}, reference {w}"
                );
            }
        }
    }
}
