//! Right-censored samples (`--censored`): a censored row contributes ln S(x) = ln P(X > x).
//! Each censorable family's -ln S is held to its own density (the hazard d(-ln S)/dx equals
//! p(x) / S(x), and S is 1 at the bottom of the support, which together define S), its
//! gradient and Hessian to finite differences; fits with no row censored equal plain fits,
//! weights combine with censoring as the expanded table, and the sandwich is checked in
//! closed form. The real-data anchors (lifelines, scipy) are in tests/real_data.rs.

mod common;

use common::{close, numbers};

use common::cli::{fails_with, ok_json};
use likely::family::{Censored, Family, FamilyName};
use likely::for_each_family;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

/// -ln S at (x, theta), its gradient and Hessian.
fn survival(f: &dyn Family, x: f64, theta: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let p = theta.len();
    let mut out = vec![0.0; 1 + p + p * p];
    f.censored_nll(x, theta, &mut out);
    (out[0], out[1..=p].to_vec(), out[1 + p..].to_vec())
}

/// The bottom of the support: 0 for the positive families, far below mu for the Gaussian.
fn support_floor(f: &dyn Family) -> f64 {
    if f.support_error(-1.0).is_some() {
        1e-300
    } else {
        -1e300
    }
}

for_each_family!(minus_log_survival_matches_the_density, |name| {
    let f = name.build(3);
    if !f.censorable() {
        // Censoring a family without a survival function is refused, naming those that have one.
        let refused = Censored::new(f.clone_box()).unwrap_err().to_string();
        assert!(refused.contains("weibull"), "{refused}");
        let p = f.n_params();
        let mut out = vec![0.0; 1 + p * (1 + p)];
        f.censored_nll(1.0, &vec![0.0; p], &mut out);
        assert!(out[0].is_nan());
        return;
    }
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..4 {
        let theta = f.random_theta(&mut rng);
        let floor = survival(f.as_ref(), support_floor(f.as_ref()), &theta).0;
        assert!(
            floor.abs() < 1e-12,
            "{name:?}: -ln S at the floor is {floor}"
        );
        for x in f.sample(&theta, 6, &mut rng) {
            let (c, g, h) = survival(f.as_ref(), x, &theta);
            let p = theta.len();
            // The hazard: d(-ln S)/dx = p(x) / S(x) = exp(ln p(x) - ln S(x)).
            let step = 1e-5 * x.abs().max(1e-3);
            let slope = (survival(f.as_ref(), x + step, &theta).0
                - survival(f.as_ref(), x - step, &theta).0)
                / (2.0 * step);
            let hazard = (f.log_density(x, &theta) + c).exp();
            close(slope, hazard, 1e-6, &format!("{name:?} hazard at x = {x}"));
            // The gradient and the Hessian by central differences in theta.
            for j in 0..p {
                let e = 1e-5 * theta[j].abs().max(1.0);
                let (mut up, mut down) = (theta.clone(), theta.clone());
                up[j] += e;
                down[j] -= e;
                let (cu, gu, _) = survival(f.as_ref(), x, &up);
                let (cd, gd, _) = survival(f.as_ref(), x, &down);
                let scale = g[j].abs().max(c.abs()).max(1e-3);
                assert!(
                    ((cu - cd) / (2.0 * e) - g[j]).abs() <= 1e-6 * scale,
                    "{name:?} gradient {j} at x = {x}: {} vs {}",
                    (cu - cd) / (2.0 * e),
                    g[j]
                );
                for k in 0..p {
                    let fd = (gu[k] - gd[k]) / (2.0 * e);
                    let scale = h[j * p + k].abs().max(c.abs()).max(1e-3);
                    assert!(
                        (fd - h[j * p + k]).abs() <= 1e-6 * scale,
                        "{name:?} Hessian ({j}, {k}) at x = {x}: {fd} vs {}",
                        h[j * p + k]
                    );
                }
            }
        }
    }
});

fn family_fit(family: &str, data: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "fit", "--family", family, "--data", data, "--column", "x", "--json",
    ];
    args.extend_from_slice(extra);
    ok_json(&args)
}

fn same(a: &Value, b: &Value, what: &str) {
    assert_eq!(a["converged"], true, "{what}");
    assert_eq!(b["converged"], true, "{what}");
    assert_eq!(a["n"], b["n"], "{what}");
    for key in ["params", "std_errors"] {
        let (x, y) = (numbers(&a[key]), numbers(&b[key]));
        assert_eq!(x.len(), y.len(), "{what}: {key}");
        for (u, v) in x.iter().zip(&y) {
            close(*u, *v, 1e-7, &format!("{what}: {key}"));
        }
    }
    for key in ["nll", "aic", "bic"] {
        close(
            a[key].as_f64().unwrap(),
            b[key].as_f64().unwrap(),
            1e-10,
            &format!("{what}: {key}"),
        );
    }
}

fn censorable() -> Vec<FamilyName> {
    FamilyName::ALL
        .into_iter()
        .filter(|f| f.build(1).censorable())
        .collect()
}

#[test]
fn no_row_censored_is_the_plain_fit_and_weights_expand_censored_rows() {
    let mut rng = StdRng::seed_from_u64(20261204);
    for family in censorable() {
        let f = family.build(1);
        let theta = f.random_theta(&mut rng);
        let xs = f.sample(&theta, 120, &mut rng);
        let label = family.as_str();
        // Flags all 0: the censored engine's fit is the plain one.
        let zeros = vec![0.0; xs.len()];
        let path = common::temp_path("censoring", &format!("{label}-none.csv"));
        let path = common::csv_table(&path, &["x", "c"], &[xs.clone(), zeros]);
        let plain = family_fit(label, &path, &["--backend", "cpu"]);
        let flagged = family_fit(label, &path, &["--censored", "c"]);
        assert_eq!(flagged["censored_rows"], 0);
        same(&flagged, &plain, &format!("{label}: no row censored"));
        // A third of the rows censored at 0.8 of their value, with weights 0..3: the same
        // fit as the table with each row repeated its weight's times.
        let cut: Vec<f64> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| if i % 3 == 0 { x * 0.8 } else { x })
            .collect();
        let flags: Vec<f64> = (0..xs.len()).map(|i| (i % 3 == 0) as u8 as f64).collect();
        let ws: Vec<f64> = (0..xs.len()).map(|i| ((i * 7) % 4) as f64).collect();
        let repeat = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .zip(&ws)
                .flat_map(|(&x, &w)| std::iter::repeat_n(x, w as usize))
                .collect()
        };
        let wpath = common::temp_path("censoring", &format!("{label}-weighted.csv"));
        let wpath = common::csv_table(
            &wpath,
            &["x", "c", "w"],
            &[cut.clone(), flags.clone(), ws.clone()],
        );
        let epath = common::temp_path("censoring", &format!("{label}-expanded.csv"));
        let epath = common::csv_table(&epath, &["x", "c"], &[repeat(&cut), repeat(&flags)]);
        for cov in ["hessian", "robust"] {
            let weighted = family_fit(
                label,
                &wpath,
                &["--censored", "c", "--weights", "w", "--cov", cov],
            );
            let expanded = family_fit(label, &epath, &["--censored", "c", "--cov", cov]);
            assert_eq!(
                expanded["censored_rows"],
                repeat(&flags).iter().filter(|&&c| c == 1.0).count()
            );
            same(
                &weighted,
                &expanded,
                &format!("{label}: weighted, --cov {cov}"),
            );
        }
    }
}

#[test]
fn a_censored_exponential_fit_has_its_closed_forms() {
    // rate = d / sum x with d rows observed; the observed information is d / rate^2; a row's
    // score in log rate is rate x - 1 if observed, rate x if censored, so the outer product
    // of the scores gives Var(log rate) = 1 / sum s_i^2.
    let xs: Vec<f64> = (0..57)
        .map(|i| 0.3 + 1.7 * ((i * 13) % 19) as f64)
        .collect();
    let flags: Vec<f64> = (0..xs.len()).map(|i| (i % 4 == 1) as u8 as f64).collect();
    let path = common::temp_path("censoring", "exponential.csv");
    let path = common::csv_table(&path, &["x", "c"], &[xs.clone(), flags.clone()]);
    let d = flags.iter().filter(|&&c| c == 0.0).count() as f64;
    let rate = d / xs.iter().sum::<f64>();
    let hessian = family_fit("exponential", &path, &["--censored", "c"]);
    close(
        hessian["params"]["rate"].as_f64().unwrap(),
        rate,
        1e-10,
        "rate",
    );
    close(
        hessian["std_errors"]["rate"].as_f64().unwrap(),
        rate / d.sqrt(),
        1e-8,
        "se(rate), observed information",
    );
    let scores: f64 = xs
        .iter()
        .zip(&flags)
        .map(|(&x, &c)| (rate * x - (c == 0.0) as u8 as f64).powi(2))
        .sum();
    let opg = family_fit("exponential", &path, &["--censored", "c", "--cov", "opg"]);
    close(
        opg["std_errors"]["rate"].as_f64().unwrap(),
        rate / scores.sqrt(),
        1e-8,
        "se(rate), outer product of the scores",
    );
    let text = common::cli::likely(&[
        "fit",
        "--family",
        "exponential",
        "--data",
        &path,
        "--column",
        "x",
        "--censored",
        "c",
    ]);
    let report = String::from_utf8_lossy(&text.stdout);
    let censored = flags.iter().filter(|&&c| c == 1.0).count();
    assert!(
        report.contains(&format!("{censored} rows right-censored (flagged in c)")),
        "{report}"
    );
}

#[test]
fn bad_censoring_is_refused_with_a_reason() {
    let p = |name: &str, text: &str| {
        let path = common::temp_path("censoring", name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let good = p("good.csv", "x,c\n1,0\n2,1\n3,0\n");
    let fit = |path: &str, family: &str, extra: &[&str], needle: &str| {
        let mut args = vec![
            "fit",
            "--family",
            family,
            "--data",
            path,
            "--column",
            "x",
            "--censored",
            "c",
        ];
        args.extend_from_slice(extra);
        fails_with(&args, needle);
    };
    fit(
        &p("two.csv", "x,c\n1,0\n2,2\n"),
        "weibull",
        &[],
        "row 2 (line 3), column 'c': censoring flag 2 is neither 0 nor 1",
    );
    fit(
        &p("half.csv", "x,c\n1,0\n2,0.5\n"),
        "weibull",
        &[],
        "censoring flag 0.5 is neither 0 nor 1",
    );
    fit(
        &p("nan.csv", "x,c\n1,0\n2,nan\n"),
        "weibull",
        &[],
        "row 2 (line 3), column 'c': value NaN is not finite",
    );
    fit(
        &p("all.csv", "x,c\n1,1\n2,1\n"),
        "exponential",
        &[],
        "every sample is censored",
    );
    // One lifetime observed, the others censored below it: sigma -> 0 (the shape -> inf)
    // without bound. A censored row above it bounds the likelihood.
    let below = p("below.csv", "x,c\n5,0\n1,1\n2,1\n3,1\n");
    for family in ["gaussian", "lognormal", "weibull"] {
        fit(&below, family, &[], "no censored row lies above them");
    }
    let above = p("above.csv", "x,c\n5,0\n1,1\n2,1\n7,1\n");
    for family in ["gaussian", "lognormal", "weibull", "exponential"] {
        let fitted = family_fit(family, &above, &["--censored", "c"]);
        assert_eq!(fitted["converged"], true, "{family}: {fitted}");
    }
    fit(
        &good,
        "gamma",
        &[],
        "the gamma family takes no censored rows yet",
    );
    fit(
        &good,
        "poisson",
        &[],
        "censoring applies to gaussian, exponential",
    );
    fit(
        &good,
        "weibull",
        &["--backend", "gpu"],
        "--censored runs on the CPU engine",
    );
    fit(&good, "weibull", &["--stream"], "it does not stream");
    fit(&p("nocol.csv", "x,d\n1,0\n"), "weibull", &[], "'c'");
    fails_with(
        &[
            "fit",
            "--model",
            "linear",
            "--family",
            "weibull",
            "--data",
            &good,
            "--target",
            "x",
            "--censored",
            "c",
        ],
        "--censored applies to family fits so far",
    );
}
