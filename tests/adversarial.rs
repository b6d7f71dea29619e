//! What an adversarial sweep of default-flag fits found, kept as tests: a saturated or
//! runaway minibatch result must not pass the optimality test, an MLE that does not exist is
//! not "converged", a kinked head with a prior is reported not converged instead of refused,
//! standard errors far from the origin are exact, a constant feature separates nothing,
//! f64 sums that are small differences of large ones still converge, LAD on tied and repeated
//! rows reaches (and certifies) its optimum, and linear models of targets of 1e300 and 1e-300
//! converge to the same slopes.

mod common;

use common::cli::{likely, model_fit};
use common::write_npy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Normal, Poisson};
use serde_json::Value;
use std::path::PathBuf;

/// `n` standard normal draws.
fn normals(rng: &mut StdRng, n: usize) -> Vec<f64> {
    let normal = Normal::new(0.0, 1.0).unwrap();
    (0..n).map(|_| normal.sample(rng)).collect()
}

fn temp(name: &str) -> PathBuf {
    common::temp_path("adversarial", name)
}

/// A CSV of `columns` under `header`, in this suite's temporary folder.
fn table(name: &str, header: &[&str], columns: &[Vec<f64>]) -> String {
    common::csv_table(&temp(name), header, columns)
}

/// Runs a fit printing JSON; returns (exit status, JSON, stderr). Never a panic; exit 0
/// exactly when converged (minibatch runs aside, which exit 0 unless they diverged).
fn run(args: &[&str]) -> (i32, Value, String) {
    let out = likely(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    let code = out.status.code().expect("an exit status");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: exit {code}: {e}: {stderr}"));
    common::audit::audit_fit(args, &json);
    (code, json, stderr)
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

fn logistic_table(name: &str) -> String {
    let mut rng = StdRng::seed_from_u64(1);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let (mut a, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..500 {
        let (xa, xb): (f64, f64) = (normal.sample(&mut rng), normal.sample(&mut rng));
        let u: f64 = rng.random::<f64>().clamp(1e-12, 1.0 - 1e-12);
        let noise = (u / (1.0 - u)).ln();
        a.push(xa);
        b.push(xb);
        y.push((xa - 2.0 * xb + 0.3 + noise > 0.0) as u8 as f64);
    }
    table(name, &["a", "b", "y"], &[a, b, y])
}

#[test]
fn a_runaway_minibatch_fit_is_reported_diverged_and_never_passes_the_test() {
    let data = logistic_table("runaway.csv");
    for backend in common::backends() {
        for (optimizer, lr) in [("adamw", "1000"), ("sgd", "1e6")] {
            let args = model_fit(
                "linear",
                "bernoulli",
                &data,
                "y",
                &[
                    "--optimizer",
                    optimizer,
                    "--lr",
                    lr,
                    "--backend",
                    backend,
                    "--json",
                ],
            );
            let (code, json, stderr) = run(&args);
            assert_eq!(json["converged"], false, "{args:?}: {json}");
            assert_eq!(code, 3, "{args:?}: a diverged run exits 3");
            let reason = json["reason"].as_str().unwrap();
            assert!(reason.contains("diverged"), "{args:?}: {reason}");
            assert!(stderr.contains("warning: diverged"), "{args:?}: {stderr}");
            // A saturated logit has curvature ~1e-308: its decrement is not 0.
            let decrement = number(&json["decrement"]);
            assert!(
                decrement.is_nan() || decrement > likely::fit::DECREMENT_TOLERANCE,
                "{args:?}: decrement {decrement}"
            );
        }
    }
}

#[test]
fn a_poisson_mle_that_does_not_exist_is_not_converged() {
    // Every count 0 but one, at the row with the largest x0: the likelihood rises without
    // bound as the other rows' means go to 0 along x0 (and with every count 0, always).
    let mut rng = StdRng::seed_from_u64(1);
    let x0: Vec<f64> = normals(&mut rng, 100);
    let x1: Vec<f64> = normals(&mut rng, 100);
    let top = (0..100).max_by(|&a, &b| x0[a].total_cmp(&x0[b])).unwrap();
    let mut y = vec![0.0; 100];
    y[top] = 3.0;
    let vertex = table(
        "poisson_vertex.csv",
        &["x0", "x1", "y"],
        &[x0.clone(), x1.clone(), y],
    );
    let zeros = table(
        "poisson_zeros.csv",
        &["x0", "x1", "y"],
        &[x0, x1, vec![0.0; 100]],
    );
    for data in [&vertex, &zeros] {
        for family in ["poisson", "exponential"] {
            if family == "exponential" && data == &vertex {
                continue;
            }
            for backend in common::backends() {
                let args = model_fit(
                    "linear",
                    family,
                    data,
                    "y",
                    &["--backend", backend, "--json"],
                );
                let (code, json, stderr) = run(&args);
                assert_eq!(json["converged"], false, "{args:?}: {json}");
                assert_eq!(code, 3, "{args:?}");
                assert!(
                    stderr.contains("the MLE does not exist"),
                    "{args:?}: {stderr}"
                );
                assert!(!json["separation"].as_array().unwrap().is_empty());
            }
        }
    }
}

#[test]
fn a_laplace_head_with_a_prior_is_reported_not_converged_rather_than_refused() {
    let mut rng = StdRng::seed_from_u64(11);
    let exp = Exp::new(1.0).unwrap();
    let x0: Vec<f64> = normals(&mut rng, 200);
    let x1: Vec<f64> = normals(&mut rng, 200);
    let y: Vec<f64> = (0..200)
        .map(|i| x0[i] - 0.5 * x1[i] + exp.sample(&mut rng) - exp.sample(&mut rng))
        .collect();
    let data = table("laplace_prior.csv", &["x0", "x1", "y"], &[x0, x1, y]);
    for backend in common::backends() {
        for prior in ["l1:1", "l2:1"] {
            let args = model_fit(
                "linear",
                "laplace",
                &data,
                "y",
                &["--prior", prior, "--backend", backend, "--json"],
            );
            let (code, json, _) = run(&args);
            assert_eq!(code, 3, "{args:?}: {json}");
            assert_eq!(json["converged"], false);
            assert!(json["reason"].as_str().unwrap().contains("kink"));
        }
    }
}

#[test]
fn standard_errors_far_from_the_origin_are_exact() {
    // 1e8 + N(0, 1): se(mu) = sigma_hat / sqrt(n), se(sigma) = sigma_hat / sqrt(2 n), from
    // the data in double-double so the check is independent of the engines' sums.
    let mut rng = StdRng::seed_from_u64(5);
    let n = 100_000;
    let deviations: Vec<f64> = normals(&mut rng, n);
    let data: Vec<f64> = deviations.iter().map(|d| 1e8 + d).collect();
    let path = temp("far.npy");
    write_npy(&path, &[n], &data);
    // The mean and the spread, from the stored values minus 1e8 (exact: each is within a
    // factor of two of 1e8, so its difference from 1e8 is representable).
    let offsets: Vec<f64> = data.iter().map(|v| v - 1e8).collect();
    let mean = offsets.iter().sum::<f64>() / n as f64;
    let sigma = (offsets.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    for backend in common::backends() {
        let args = [
            "fit",
            "--family",
            "gaussian",
            "--data",
            path.to_str().unwrap(),
            "--backend",
            backend,
            "--json",
        ];
        let (code, json, _) = run(&args);
        assert_eq!(code, 0, "{args:?}: {json}");
        let se_mu = number(&json["std_errors"]["mu"]);
        let se_sigma = number(&json["std_errors"]["sigma"]);
        let want_mu = sigma / (n as f64).sqrt();
        let want_sigma = sigma / (2.0 * n as f64).sqrt();
        assert!(
            ((se_mu - want_mu) / want_mu).abs() < 1e-7,
            "{backend}: se(mu) {se_mu} vs {want_mu}"
        );
        assert!(
            ((se_sigma - want_sigma) / want_sigma).abs() < 1e-7,
            "{backend}: se(sigma) {se_sigma} vs {want_sigma}"
        );
    }
}

#[test]
fn a_constant_feature_separates_nothing() {
    let mut rng = StdRng::seed_from_u64(21);
    let x0: Vec<f64> = normals(&mut rng, 300);
    let y: Vec<f64> = x0
        .iter()
        .map(|x| (rng.random::<f64>() < 1.0 / (1.0 + (-(0.3 + 0.5 * x)).exp())) as u8 as f64)
        .collect();
    let data = table("constant.csv", &["x0", "x1", "y"], &[x0, vec![3.0; 300], y]);
    for backend in common::backends() {
        let args = model_fit(
            "linear",
            "bernoulli",
            &data,
            "y",
            &["--backend", backend, "--json"],
        );
        let (_, json, stderr) = run(&args);
        assert!(
            json["separation"].as_array().unwrap().is_empty(),
            "{backend}: {json}"
        );
        assert!(!stderr.contains("separation"), "{backend}: {stderr}");
    }
}

#[test]
fn a_poisson_mean_of_a_million_converges_on_both_engines() {
    // The NLL is a difference of sums of 1e13: its last digits are noise far above the
    // decrease Newton's last step makes, which the gradient must decide. (Seeds where the
    // f32 passes leave the f64 finish in that regime: the GPU fit stopped at the noise floor
    // on each before Newton trusted the gradient there.)
    for seed in [1, 10, 11] {
        poisson_mean_of_a_million(seed);
    }
}

fn poisson_mean_of_a_million(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let poisson = Poisson::new(1e6).unwrap();
    let n = 2_000_000;
    let data: Vec<f64> = (0..n).map(|_| poisson.sample(&mut rng)).collect();
    let mean = data.iter().sum::<f64>() / n as f64;
    let path = temp(&format!("poisson_1e6_{seed}.npy"));
    write_npy(&path, &[n], &data);
    for backend in common::backends() {
        let args = [
            "fit",
            "--family",
            "poisson",
            "--data",
            path.to_str().unwrap(),
            "--backend",
            backend,
            "--json",
        ];
        let (code, json, _) = run(&args);
        assert_eq!(code, 0, "{args:?}: {json}");
        let lambda = number(&json["params"]["lambda"]);
        assert!(
            ((lambda - mean) / mean).abs() < 1e-12,
            "{backend}: lambda {lambda} vs the mean {mean}"
        );
    }
}

/// sum |y - X b| at the best vertex: every choice of k distinct rows (of `rows`, each with its
/// multiplicity) whose b passes through them exactly; the LAD optimum is at one of them.
fn lad_by_enumeration(rows: &[(Vec<f64>, f64)]) -> f64 {
    let mut distinct: Vec<(Vec<f64>, f64, f64)> = Vec::new();
    for (x, y) in rows {
        match distinct.iter_mut().find(|(dx, dy, _)| dx == x && dy == y) {
            Some(entry) => entry.2 += 1.0,
            None => distinct.push((x.clone(), *y, 1.0)),
        }
    }
    let k = rows[0].0.len();
    assert_eq!(k, 3, "three coefficients");
    let m = distinct.len();
    let mut best = f64::INFINITY;
    for a in 0..m {
        for b in a + 1..m {
            for c in b + 1..m {
                let picked = [a, b, c];
                let matrix: Vec<Vec<f64>> = picked.iter().map(|&i| distinct[i].0.clone()).collect();
                let det = |m: &[Vec<f64>]| {
                    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
                };
                if det(&matrix).abs() < 1e-9 {
                    continue;
                }
                let rhs: Vec<f64> = picked.iter().map(|&i| distinct[i].1).collect();
                let beta = common::gauss_solve(matrix, rhs);
                let sad: f64 = distinct
                    .iter()
                    .map(|(x, y, w)| {
                        w * (y - x.iter().zip(&beta).map(|(a, b)| a * b).sum::<f64>()).abs()
                    })
                    .sum();
                best = best.min(sad);
            }
        }
    }
    best
}

#[test]
fn lad_on_tied_and_repeated_rows_reaches_its_certified_optimum() {
    let mut rng = StdRng::seed_from_u64(13);
    let exp = Exp::new(1.0).unwrap();
    let normal = Normal::new(0.0, 1.0).unwrap();
    // Integer features and targets: many rows lie exactly on the optimal plane.
    let n = 120;
    let x0: Vec<f64> = (0..n).map(|_| rng.random_range(0..3) as f64).collect();
    let x1: Vec<f64> = (0..n).map(|_| rng.random_range(0..3) as f64).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| (x0[i] + x1[i] + exp.sample(&mut rng) - exp.sample(&mut rng)).round())
        .collect();
    let ties = table(
        "lad_ties.csv",
        &["x0", "x1", "y"],
        &[x0.clone(), x1.clone(), y.clone()],
    );
    let tie_rows: Vec<(Vec<f64>, f64)> = (0..n).map(|i| (vec![x0[i], x1[i], 1.0], y[i])).collect();
    // 20 distinct rows, each 15 times.
    let (mut r0, mut r1, mut ry) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..20 {
        let (a, b, c): (f64, f64, f64) = (
            normal.sample(&mut rng),
            normal.sample(&mut rng),
            normal.sample(&mut rng),
        );
        for _ in 0..15 {
            r0.push(a);
            r1.push(b);
            ry.push(c);
        }
    }
    let repeated = table(
        "lad_repeated.csv",
        &["x0", "x1", "y"],
        &[r0.clone(), r1.clone(), ry.clone()],
    );
    let repeated_rows: Vec<(Vec<f64>, f64)> = (0..r0.len())
        .map(|i| (vec![r0[i], r1[i], 1.0], ry[i]))
        .collect();
    // Binary features and a target of three values over 30 000 rows: nearly every row is
    // tied at the optimum (twelve distinct rows in all).
    let n_binary = 30_000;
    let b0: Vec<f64> = (0..n_binary)
        .map(|_| rng.random_range(0..2) as f64)
        .collect();
    let b1: Vec<f64> = (0..n_binary)
        .map(|_| rng.random_range(0..2) as f64)
        .collect();
    let by: Vec<f64> = (0..n_binary)
        .map(|i| (b0[i] + b1[i] + rng.random_range(-1..2) as f64).clamp(0.0, 2.0))
        .collect();
    let binary = table(
        "lad_binary.csv",
        &["x0", "x1", "y"],
        &[b0.clone(), b1.clone(), by.clone()],
    );
    let binary_rows: Vec<(Vec<f64>, f64)> = (0..n_binary)
        .map(|i| (vec![b0[i], b1[i], 1.0], by[i]))
        .collect();
    for (data, rows) in [
        (&ties, &tie_rows),
        (&repeated, &repeated_rows),
        (&binary, &binary_rows),
    ] {
        let want = lad_by_enumeration(rows);
        let n = rows.len() as f64;
        for backend in common::backends() {
            let args = model_fit(
                "linear",
                "laplace",
                data,
                "y",
                &["--backend", backend, "--json"],
            );
            let (code, json, _) = run(&args);
            assert_eq!(code, 0, "{args:?}: {json}");
            // NLL = n (ln 2 + ln b + 1) with b = SAD / n.
            let sad = n * ((-number(&json["llf"]) / n) - 1.0 - std::f64::consts::LN_2).exp();
            assert!(
                (sad - want).abs() <= 1e-9 * want,
                "{data}: SAD {sad} vs the best vertex's {want}"
            );
        }
    }
}

#[test]
fn exponential_regressions_of_huge_and_tiny_targets_converge_to_the_same_slopes() {
    let mut rng = StdRng::seed_from_u64(3);
    let exp = Exp::new(1.0).unwrap();
    let n = 200;
    let x0: Vec<f64> = normals(&mut rng, n);
    let x1: Vec<f64> = normals(&mut rng, n);
    let base: Vec<f64> = (0..n)
        .map(|i| exp.sample(&mut rng) * (0.3 * x0[i] - 0.2 * x1[i]).exp())
        .collect();
    let mut slopes = Vec::new();
    for scale in [1.0, 1e300, 1e-300] {
        let y: Vec<f64> = base.iter().map(|v| v * scale).collect();
        let data = table(
            &format!("exp_{scale:e}.csv"),
            &["x0", "x1", "y"],
            &[x0.clone(), x1.clone(), y],
        );
        for backend in common::backends() {
            let args = model_fit(
                "linear",
                "exponential",
                &data,
                "y",
                &["--backend", backend, "--json"],
            );
            let (code, json, _) = run(&args);
            assert_eq!(code, 0, "{args:?}: {json}");
            slopes.push((
                number(&json["coefficients"]["x0"]),
                number(&json["coefficients"]["x1"]),
            ));
        }
    }
    let (a0, a1) = slopes[0];
    for (b0, b1) in &slopes {
        assert!((a0 - b0).abs() <= 1e-9 * a0.abs() && (a1 - b1).abs() <= 1e-9 * a1.abs());
    }
}

#[test]
fn a_lad_fit_exact_to_rounding_has_no_mle() {
    // y = X [1, 2, 3] + 4 computed in floating point: every residual at the optimum is 0 or
    // rounding, b's MLE is 0; a tiny b said converged would be a number with no meaning.
    let mut rng = StdRng::seed_from_u64(9);
    let n = 300;
    let cols: Vec<Vec<f64>> = (0..3).map(|_| normals(&mut rng, n)).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| cols[0][i] + 2.0 * cols[1][i] + 3.0 * cols[2][i] + 4.0)
        .collect();
    let data = table(
        "lad_exact.csv",
        &["x0", "x1", "x2", "y"],
        &[cols[0].clone(), cols[1].clone(), cols[2].clone(), y],
    );
    for backend in common::backends() {
        common::cli::fails_with(
            &common::cli::model_fit("linear", "laplace", &data, "y", &["--backend", backend]),
            "every row lies on the LAD fit",
        );
    }
}
