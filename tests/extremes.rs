//! Data far from the origin and at extreme scales, for every family on both engines, and
//! badly scaled linear models: each fit gives the closed form (or the least-squares answer)
//! to 1e-9 relative, or an error, never a wrong number called converged (every converged fit
//! here is also audited independently, see common/audit.rs). And what a non-converged fit
//! looks like from the shell: its report, a warning first, and exit status 3.

mod common;

use common::cli::likely;
use common::write_npy;
use likely::family::FamilyName;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp, Normal};
use serde_json::Value;
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    common::temp_path("extremes", name)
}

/// Runs a fit; returns its JSON, or None when it was refused with an error (exit 1).
fn run(args: &[&str]) -> Option<Value> {
    let out = likely(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    match out.status.code() {
        Some(1) => {
            assert!(stderr.contains("error:"), "{args:?}: {stderr}");
            None
        }
        Some(0) | Some(3) => {
            let json: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{args:?}: {e}: {stderr}"));
            assert_eq!(
                out.status.code() == Some(0),
                json["converged"] == true,
                "{args:?}: exit status and convergence disagree: {json}"
            );
            common::audit::audit_fit(args, &json);
            Some(json)
        }
        code => panic!("{args:?}: exit {code:?}: {stderr}"),
    }
}

fn relative(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs()
    }
}

/// The closed-form MLE's natural parameters, computed on the data scaled by a power of two
/// (exact) so that its sums neither overflow nor underflow, then scaled back.
fn closed_form(family: FamilyName, data: &[f64]) -> Vec<(&'static str, f64)> {
    let largest = data.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let scale = if largest > 0.0 {
        2f64.powi(-(largest.log2().ceil() as i32))
    } else {
        1.0
    };
    let scaled: Vec<f64> = if family == FamilyName::Gaussian
        || family == FamilyName::Laplace
        || family == FamilyName::Exponential
    {
        data.iter().map(|x| x * scale).collect()
    } else {
        data.to_vec()
    };
    let scale = if scaled.as_ptr() == data.as_ptr() || scaled == data {
        1.0
    } else {
        scale
    };
    let f = family.build(1);
    let theta = if family == FamilyName::Gaussian {
        // The mean as x0 + sum (x - x0) / n: the deviations are exact (Sterbenz) and small,
        // where a plain sum of values near 1e8 loses digits of it.
        // The variance about the mean of the deviations, not about the mean rounded to the
        // data's grid (at 1e15 that rounding is 0.06 and would inflate sigma).
        let n = scaled.len() as f64;
        let x0 = scaled[0];
        let d: Vec<f64> = scaled.iter().map(|x| x - x0).collect();
        let mean_d = d.iter().sum::<f64>() / n;
        let mean = x0 + mean_d;
        let var = d.iter().map(|v| (v - mean_d).powi(2)).sum::<f64>() / n;
        vec![mean, 0.5 * var.ln()]
    } else {
        f.closed_form_mle(&scaled)
    };
    f.natural(&theta)
        .into_iter()
        .map(|p| {
            let v = p.value.values()[0];
            let v = match p.name {
                "mu" | "sigma" | "b" => v / scale,
                "rate" => v * scale,
                _ => v,
            };
            (p.name, v)
        })
        .collect()
}

/// Fits `family` to `data` on every engine: a converged fit must equal the closed form, to
/// 1e-9 relative (a location to 1e-6 of its standard error, or 4 ulps where its f64 cannot
/// do better).
fn closed_form_or_honest(family: FamilyName, data: &[f64], what: &str) {
    let path = temp(&format!("{what}.npy"));
    write_npy(&path, &[data.len()], data);
    let want = closed_form(family, data);
    let spread = want
        .iter()
        .find(|(name, _)| matches!(*name, "sigma" | "b"))
        .map(|(_, v)| *v);
    let se = spread.map(|s| s / (data.len() as f64).sqrt());
    let mut fitted = 0;
    for backend in common::backends() {
        let args = [
            "fit",
            "--family",
            family.as_str(),
            "--data",
            path.to_str().unwrap(),
            "--backend",
            backend,
            "--json",
        ];
        let Some(got) = run(&args) else {
            eprintln!("{what} on {backend}: refused with an error");
            continue;
        };
        fitted += 1;
        assert_eq!(got["converged"], true, "{what} on {backend}: {got}");
        for (name, expected) in &want {
            let have = got["params"][*name].as_f64().unwrap();
            let allowed = match (*name, se) {
                // Where f64 cannot resolve a millionth of a standard error (at 1e15 it steps
                // by 0.125), two of its steps at the mean.
                ("mu", Some(se)) => {
                    let ulp = f64::from_bits(expected.abs().to_bits() + 1) - expected.abs();
                    1e-6 * se + 2.0 * ulp
                }
                _ => 1e-9 * expected.abs(),
            };
            assert!(
                (have - expected).abs() <= allowed,
                "{what} on {backend}: {name} = {have:e}, closed form {expected:e}"
            );
        }
    }
    // An honest refusal on one engine is allowed; on every engine the case tests nothing.
    assert!(fitted > 0, "{what}: refused on every engine");
}

fn gaussian(n: usize, mu: f64, sigma: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0, 1.0).unwrap();
    (0..n)
        .map(|_| mu + sigma * normal.sample(&mut rng))
        .collect()
}

#[test]
fn gaussian_far_from_the_origin_keeps_its_unit_spread() {
    // f32 resolves 8 at 1e8: rounded before the shift, these samples lose their spread.
    closed_form_or_honest(
        FamilyName::Gaussian,
        &gaussian(100_000, 1e8, 1.0, 1),
        "gaussian_1e8",
    );
}

#[test]
fn gaussian_far_beyond_f64s_resolution_of_its_mean() {
    // At 1e15 f64 steps by 0.125, so mu cannot be closer than that to the mean; sigma must
    // still be the MLE (an unshifted fit, its mu stuck on that grid, stopped with sigma 2e-4
    // off and said converged).
    for seed in [2, 4, 5, 6] {
        closed_form_or_honest(
            FamilyName::Gaussian,
            &gaussian(1000, 1e15, 1.0, seed),
            &format!("gaussian_1e15_{seed}"),
        );
    }
    closed_form_or_honest(
        FamilyName::Gaussian,
        &gaussian(1000, 1e8, 1e-6, 9),
        "gaussian_1e8_sd_1e-6",
    );
}

#[test]
fn gaussian_at_extreme_scales() {
    closed_form_or_honest(
        FamilyName::Gaussian,
        &gaussian(100_000, 0.0, 1e50, 2),
        "gaussian_1e50",
    );
    closed_form_or_honest(
        FamilyName::Gaussian,
        &gaussian(50_000, 0.0, 1e-30, 3),
        "gaussian_1e-30",
    );
    // Squares of values near 1e-300 underflow f64: the CPU engine scales them too.
    closed_form_or_honest(
        FamilyName::Gaussian,
        &gaussian(50_000, 3e-300, 1e-300, 4),
        "gaussian_1e-300",
    );
}

#[test]
fn laplace_far_from_the_origin_and_at_extreme_scales() {
    let mut rng = StdRng::seed_from_u64(5);
    let draw = |mu: f64, b: f64, n: usize, rng: &mut StdRng| -> Vec<f64> {
        let exp = Exp::new(1.0).unwrap();
        (0..n)
            .map(|i| {
                let e: f64 = exp.sample(rng);
                mu + if i % 2 == 0 { b * e } else { -b * e }
            })
            .collect()
    };
    closed_form_or_honest(
        FamilyName::Laplace,
        &draw(1e8, 1.0, 20_001, &mut rng),
        "laplace_1e8",
    );
    // A scale 67 times the data's quantum at 1e8 (1.5e-8): samples tie, and a location a
    // fraction of an ulp from the median sample would make b, optimal there, wrong by 1e-4.
    for seed in 0..3 {
        let mut rng = StdRng::seed_from_u64(100 + seed);
        closed_form_or_honest(
            FamilyName::Laplace,
            &draw(1e8, 1e-6, 1001, &mut rng),
            &format!("laplace_1e8_quantised_{seed}"),
        );
    }
    closed_form_or_honest(
        FamilyName::Laplace,
        &draw(0.0, 1e-300, 20_001, &mut rng),
        "laplace_1e-300",
    );
    closed_form_or_honest(
        FamilyName::Laplace,
        &draw(-1e50, 1e49, 20_001, &mut rng),
        "laplace_1e50",
    );
}

#[test]
fn exponential_at_extreme_means() {
    for (mean, what) in [
        (1e20, "exponential_1e20"),
        (1e-30, "exponential_1e-30"),
        (1e-300, "exponential_1e-300"),
        (1e300, "exponential_1e300"),
    ] {
        let mut rng = StdRng::seed_from_u64(6);
        let exp = Exp::new(1.0).unwrap();
        let data: Vec<f64> = (0..50_000).map(|_| mean * exp.sample(&mut rng)).collect();
        closed_form_or_honest(FamilyName::Exponential, &data, what);
    }
}

#[test]
fn counts_and_binary_data_at_their_extremes() {
    // Counts up to the largest the Poisson family takes exactly (2^24), and rare events.
    let counts: Vec<f64> = (0..10_000).map(|i| (16_000_000 + i % 777) as f64).collect();
    closed_form_or_honest(FamilyName::Poisson, &counts, "poisson_large");
    let rare: Vec<f64> = (0..100_000)
        .map(|i| (i % 50_000 == 7) as u8 as f64)
        .collect();
    closed_form_or_honest(FamilyName::Bernoulli, &rare, "bernoulli_rare");
    closed_form_or_honest(FamilyName::Poisson, &rare, "poisson_rare");
}

/// A CSV table of the given columns.
/// A CSV of `columns` under `header`, in this suite's temporary folder.
fn table(name: &str, header: &[&str], columns: &[Vec<f64>]) -> String {
    common::csv_table(&temp(name), header, columns)
}

/// Least squares of y on one feature, in closed form (centred sums, f64).
fn simple_regression(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let slope = sxy / sxx;
    (my - slope * mx, slope)
}

fn model_fit(
    data: &str,
    family: &str,
    target: &str,
    backend: &str,
    extra: &[&str],
) -> Option<Value> {
    let mut args = common::cli::model_fit(
        "linear",
        family,
        data,
        target,
        &["--backend", backend, "--json"],
    );
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_linear_target_far_from_the_origin_is_the_least_squares_answer() {
    // y = 1e8 + 2 x + N(0, 1): Newton on raw data once returned intercept -5.5e7 and slope -1.1
    // and called it converged.
    let x: Vec<f64> = (0..2000).map(|i| i as f64 / 10.0).collect();
    let noise = gaussian(2000, 0.0, 1.0, 7);
    let y: Vec<f64> = x
        .iter()
        .zip(&noise)
        .map(|(x, e)| 1e8 + 2.0 * x + e)
        .collect();
    let data = table("far_target.csv", &["x", "y"], &[x.clone(), y.clone()]);
    let (b0, b1) = simple_regression(&x, &y);
    for backend in common::backends() {
        for optimizer in ["newton", "lbfgs"] {
            let got = model_fit(&data, "gaussian", "y", backend, &["--optimizer", optimizer])
                .expect("a least-squares problem has an answer");
            let what = format!("{backend} {optimizer}");
            assert_eq!(got["converged"], true, "{what}: {got}");
            let c = &got["coefficients"];
            assert!(
                relative(c["intercept"].as_f64().unwrap(), b0) <= 1e-12,
                "{what}: {c}"
            );
            assert!(
                relative(c["x"].as_f64().unwrap(), b1) <= 1e-9,
                "{what}: {c} vs {b1}"
            );
        }
    }
}

/// Values of `v` keyed like `coefficients`, as f64s.
fn keyed(v: &Value) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| (k.clone(), x.as_f64().unwrap_or(f64::NAN)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn badly_scaled_data_give_identical_answers_up_to_units() {
    // Prices in dollars (near 1e9) against features in the thousands, and the same table in
    // millions of dollars and single units: the coefficients scale exactly, and the standard
    // errors with them.
    let n = 3000;
    let mut rng = StdRng::seed_from_u64(8);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let area: Vec<f64> = (0..n)
        .map(|_| 2000.0 + 500.0 * normal.sample(&mut rng))
        .collect();
    let rooms: Vec<f64> = (0..n)
        .map(|_| 4000.0 + 800.0 * normal.sample(&mut rng))
        .collect();
    let price: Vec<f64> = area
        .iter()
        .zip(&rooms)
        .map(|(a, r)| 1e9 + 3e5 * a + 1e5 * r + 5e7 * normal.sample(&mut rng))
        .collect();
    let dollars = table(
        "dollars.csv",
        &["area", "rooms", "price"],
        &[area.clone(), rooms.clone(), price.clone()],
    );
    let millions = table(
        "millions.csv",
        &["area", "rooms", "price"],
        &[
            area.iter().map(|a| a / 1000.0).collect(),
            rooms.iter().map(|r| r / 1000.0).collect(),
            price.iter().map(|p| p / 1e6).collect(),
        ],
    );
    // A classifier on the same features: the coefficients scale with the features alone.
    let expensive: Vec<f64> = price
        .iter()
        .map(|&p| (p > 2.0e9 + 5e7 * normal.sample(&mut rng)) as u8 as f64)
        .collect();
    let raw_class = table(
        "class.csv",
        &["area", "rooms", "expensive"],
        &[area.clone(), rooms.clone(), expensive.clone()],
    );
    let scaled_class = table(
        "class_scaled.csv",
        &["area", "rooms", "expensive"],
        &[
            area.iter().map(|a| a / 1000.0).collect(),
            rooms.iter().map(|r| r / 1000.0).collect(),
            expensive,
        ],
    );
    for backend in common::backends() {
        for (family, a, b, target, y_scale) in [
            ("gaussian", &dollars, &millions, "price", 1e6),
            ("laplace", &dollars, &millions, "price", 1e6),
            ("bernoulli", &raw_class, &scaled_class, "expensive", 1.0),
        ] {
            let what = format!("{family} on {backend}");
            let big = model_fit(a, family, target, backend, &[]).unwrap();
            let small = model_fit(b, family, target, backend, &[]).unwrap();
            assert_eq!(big["converged"], true, "{what}: {big}");
            assert_eq!(small["converged"], true, "{what}: {small}");
            let pairs = keyed(&big["coefficients"])
                .into_iter()
                .zip(keyed(&small["coefficients"]));
            for ((name, v_big), (_, v_small)) in pairs {
                // A feature's coefficient: per thousand units in the small table.
                let unit = if name == "intercept" { 1.0 } else { 1000.0 };
                let want = v_big * unit / y_scale;
                assert!(
                    relative(v_small, want) <= 1e-9,
                    "{what}: {name} = {v_small} in the small units, {want} from the large"
                );
            }
            if family != "laplace" {
                let pairs = keyed(&big["std_errors"])
                    .into_iter()
                    .zip(keyed(&small["std_errors"]));
                for ((name, s_big), (_, s_small)) in pairs {
                    let unit = match name.as_str() {
                        "intercept" | "sigma" => 1.0,
                        _ => 1000.0,
                    };
                    let want = s_big * unit / y_scale;
                    assert!(
                        relative(s_small, want) <= 1e-7,
                        "{what}: se({name}) = {s_small}, {want} from the large units"
                    );
                }
            }
        }
    }
}

#[test]
fn a_fit_that_does_not_converge_says_so_first_and_exits_3() {
    let data = gaussian(1000, 5.0, 2.0, 9);
    let path = temp("unconverged.npy");
    write_npy(&path, &[data.len()], &data);
    let path = path.to_str().unwrap();
    for json in [true, false] {
        let mut args = vec![
            "fit",
            "--family",
            "gaussian",
            "--data",
            path,
            "--backend",
            "cpu",
            "--max-iter",
            "1",
        ];
        if json {
            args.push("--json");
        }
        let out = likely(&args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("warning: the fit did not converge"),
            "{stderr}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        if json {
            let v: Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["converged"], false);
            assert_eq!(v["reason"], "max_iterations");
        } else {
            // The table is there, after the line that says it is not of an optimum.
            let first = stdout.lines().nth(1).unwrap_or("");
            assert!(first.starts_with("NOT CONVERGED"), "{stdout}");
            assert!(stdout.contains("std err"), "{stdout}");
        }
    }
    // A model fit too.
    let x: Vec<f64> = (0..200).map(|i| i as f64).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| ((v * 0.37).sin() > 0.0) as u8 as f64)
        .collect();
    let table = table("unconverged.csv", &["x", "y"], &[x, y]);
    let out = likely(&[
        "fit",
        "--model",
        "linear",
        "--family",
        "bernoulli",
        "--data",
        &table,
        "--target",
        "y",
        "--max-iter",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["converged"], false);
}

#[test]
fn demo_without_a_runtime_dir_prints_nothing_on_stderr() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_likely"))
        .arg("demo")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "demo wrote to stderr"
    );
}
