//! Frequency weights (`--weights`): a row of weight w counts as w rows, so a weighted fit is
//! the fit of the expanded table (each row repeated w times): estimates, NLL, standard errors
//! (Hessian and sandwich), AIC and BIC with n the weights' sum. Checked for every family
//! against the expanded table, which the unweighted engine fits independently.

mod common;

use common::{close, numbers};

use common::cli::{fails_with, ok_json};
use likely::family::FamilyName;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Compares a weighted fit with the fit of its expanded table.
fn same_fit(weighted: &Value, expanded: &Value, what: &str) {
    assert_eq!(weighted["n"], expanded["n"], "{what}: n");
    assert_eq!(weighted["converged"], true, "{what}");
    assert_eq!(expanded["converged"], true, "{what}");
    let (pw, pe) = (numbers(&weighted["params"]), numbers(&expanded["params"]));
    assert_eq!(pw.len(), pe.len());
    for (a, b) in pw.iter().zip(&pe) {
        close(*a, *b, 1e-8, &format!("{what}: params"));
    }
    for key in ["nll", "aic", "bic"] {
        close(
            weighted[key].as_f64().unwrap(),
            expanded[key].as_f64().unwrap(),
            1e-10,
            &format!("{what}: {key}"),
        );
    }
    let (sw, se) = (
        numbers(&weighted["std_errors"]),
        numbers(&expanded["std_errors"]),
    );
    assert_eq!(sw.len(), se.len(), "{what}: std_errors");
    for (a, b) in sw.iter().zip(&se) {
        close(*a, *b, 1e-6, &format!("{what}: std_errors"));
    }
}

#[test]
fn a_weighted_fit_is_the_fit_of_its_expanded_table_for_every_family() {
    let mut rng = StdRng::seed_from_u64(20261204);
    for family in FamilyName::ALL {
        let built = family.build(3);
        let theta = built.random_theta(&mut rng);
        let xs = built.sample(&theta, 150, &mut rng);
        let ws: Vec<f64> = (0..xs.len())
            .map(|_| rng.random_range(0..4) as f64)
            .collect();
        let expanded: Vec<f64> = xs
            .iter()
            .zip(&ws)
            .flat_map(|(&x, &w)| std::iter::repeat_n(x, w as usize))
            .collect();
        let label = family.as_str();
        let wpath = common::temp_path("weights", &format!("{label}-weighted.csv"));
        let epath = common::temp_path("weights", &format!("{label}-expanded.csv"));
        let wpath = common::csv_table(&wpath, &["x", "w"], &[xs.clone(), ws.clone()]);
        let epath = common::csv_table(&epath, &["x"], std::slice::from_ref(&expanded));
        for cov in ["hessian", "robust"] {
            let fit = |data: &str, extra: &[&str]| {
                let mut args = vec![
                    "fit",
                    "--family",
                    label,
                    "--data",
                    data,
                    "--column",
                    "x",
                    "--backend",
                    "cpu",
                    "--json",
                    "--cov",
                    cov,
                ];
                if family == FamilyName::Categorical {
                    args.extend_from_slice(&["--classes", "3"]);
                }
                args.extend_from_slice(extra);
                ok_json(&args)
            };
            let weighted = fit(&wpath, &["--weights", "w"]);
            let plain = fit(&epath, &[]);
            assert_eq!(weighted["rows"], xs.len());
            assert_eq!(weighted["weights"], "w");
            assert_eq!(plain["rows"], expanded.len());
            same_fit(&weighted, &plain, &format!("{label}, --cov {cov}"));
        }
    }
}

#[test]
fn fractional_weights_scale_the_likelihood() {
    // Every row at weight 1/2: the same estimates, half the NLL, n the weights' sum (not an
    // integer, so a number), standard errors sqrt(2) times larger.
    let xs: Vec<f64> = (0..41)
        .map(|i| 1.0 + 0.37 * i as f64 + (i % 3) as f64)
        .collect();
    let halves = vec![0.5; xs.len()];
    let path = common::temp_path("weights", "halves.csv");
    let path = common::csv_table(&path, &["x", "w"], &[xs.clone(), halves]);
    let fit = |extra: &[&str]| {
        let mut args = vec![
            "fit",
            "--family",
            "gamma",
            "--data",
            &path,
            "--column",
            "x",
            "--backend",
            "cpu",
            "--json",
        ];
        args.extend_from_slice(extra);
        ok_json(&args)
    };
    let half = fit(&["--weights", "w"]);
    let whole = fit(&[]);
    assert_eq!(half["n"].as_f64(), Some(20.5));
    assert_eq!(whole["n"], 41);
    for (a, b) in numbers(&half["params"])
        .iter()
        .zip(numbers(&whole["params"]))
    {
        close(*a, b, 1e-9, "params");
    }
    close(
        half["nll"].as_f64().unwrap() * 2.0,
        whole["nll"].as_f64().unwrap(),
        1e-12,
        "nll",
    );
    for (a, b) in numbers(&half["std_errors"])
        .iter()
        .zip(numbers(&whole["std_errors"]))
    {
        close(*a, b * 2f64.sqrt(), 1e-6, "std_errors");
    }
    let bic = |j: &Value| j["bic"].as_f64().unwrap();
    let k = 2.0;
    close(
        bic(&half),
        k * 20.5f64.ln() + half["nll"].as_f64().unwrap() * 2.0,
        1e-12,
        "bic's n is the weights' sum",
    );
    close(
        bic(&whole),
        k * 41f64.ln() + whole["nll"].as_f64().unwrap() * 2.0,
        1e-12,
        "bic",
    );
}

#[test]
fn bad_weights_are_named_by_row_and_column() {
    let p = |name: &str, text: &str| {
        let path = common::temp_path("weights", name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let fit = |path: &str, extra: &[&str], needle: &str| {
        let mut args = vec![
            "fit",
            "--family",
            "poisson",
            "--data",
            path,
            "--column",
            "x",
            "--weights",
            "w",
        ];
        args.extend_from_slice(extra);
        fails_with(&args, needle);
    };
    fit(
        &p("negative.csv", "x,w\n1,1\n2,-1\n"),
        &[],
        "row 2 (line 3), column 'w': weight -1 is negative",
    );
    fit(
        &p("nan.csv", "x,w\n1,1\n2,NaN\n"),
        &[],
        "row 2 (line 3), column 'w': value NaN is not finite",
    );
    fit(
        &p("text.csv", "x,w\n1,1\n2,two\n"),
        &[],
        "row 2 (line 3), column 'w': non-numeric value 'two'",
    );
    fit(&p("zeros.csv", "x,w\n1,0\n2,0\n"), &[], "every weight is 0");
    fit(&p("missing.csv", "x,v\n1,1\n"), &[], "no column named 'w'");
    let good = p("good.csv", "x,w\n1,1\n2,3\n");
    fit(
        &good,
        &["--backend", "gpu"],
        "--weights runs on the CPU engine",
    );
    fit(&good, &["--stream"], "does not stream");
    fails_with(
        &[
            "fit",
            "--model",
            "linear",
            "--family",
            "poisson",
            "--data",
            &good,
            "--target",
            "x",
            "--weights",
            "w",
        ],
        "--weights applies to family fits so far",
    );
    // The samples' own support still holds on rows of weight 0.
    fit(
        &p("support.csv", "x,w\n1,1\n-2,0\n"),
        &[],
        "row 2 (line 3), column 'x': value -2 is outside the support",
    );
}
