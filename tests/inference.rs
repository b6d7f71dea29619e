//! Standard errors, intervals, information criteria and diagnostics against formulas and an
//! independent implementation; the coverage of a seeded simulation study.
#![allow(clippy::needless_range_loop)] // matrix code reads best with indices

mod common;

use likely::engine::{CpuEngine, Engine, GpuEngine};
use likely::family::FamilyName;
use likely::fit::{fit, FitOptions};
use likely::inference::{for_family, for_linear_model, CovType, Inference};
use likely::model::{Model, ModelKind, ModelOptimizer, Network, TrainOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use std::sync::Arc;

fn engines(name: FamilyName, classes: usize, data: &[f64]) -> Vec<Box<dyn Engine>> {
    let mut v: Vec<Box<dyn Engine>> = vec![Box::new(CpuEngine::new(
        name.build(classes),
        Arc::from(data),
    ))];
    if let Some(ctx) = common::gpu() {
        v.push(Box::new(
            GpuEngine::new(ctx, name.build(classes), data).unwrap(),
        ));
    }
    v
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn gaussian_standard_errors_are_sigma_over_root_n_and_root_2n() {
    let mut rng = StdRng::seed_from_u64(1);
    let data: Vec<f64> = FamilyName::Gaussian
        .build(1)
        .sample(&[3.0, 0.5], 2000, &mut rng)
        .into_iter()
        .map(|x| x as f32 as f64)
        .collect();
    let n = data.len() as f64;
    for mut engine in engines(FamilyName::Gaussian, 1, &data) {
        let r = fit(engine.as_mut(), &FitOptions::default()).unwrap();
        let sigma = r.theta[1].exp();
        for cov in [CovType::Hessian, CovType::Opg, CovType::Robust] {
            let inf = for_family(
                engine.as_mut(),
                &r.theta,
                r.nll,
                &data,
                None,
                cov,
                0.05,
                &[],
            )
            .unwrap();
            if cov != CovType::Hessian {
                // In closed form from the per-sample scores in (mu, log sigma), s_mu =
                // (x - mu) / sigma^2 and s_log_sigma = (x - mu)^2 / sigma^2 - 1, whose outer
                // products sum to B; the Hessian at the MLE is diag(n / sigma^2, 2n). Robust:
                // H^-1 B H^-1 (its mu element is sigma^2 / n exactly); OPG: B^-1. The natural
                // sigma's error is sigma times log sigma's.
                let mu = r.theta[0];
                let (mut b_mm, mut b_ms, mut b_ss) = (0.0, 0.0, 0.0);
                for &x in &data {
                    let s_m = (x - mu) / (sigma * sigma);
                    let s_s = (x - mu).powi(2) / (sigma * sigma) - 1.0;
                    b_mm += s_m * s_m;
                    b_ms += s_m * s_s;
                    b_ss += s_s * s_s;
                }
                let (var_mu, var_log_sigma) = match cov {
                    CovType::Robust => {
                        let h_mm = n / (sigma * sigma);
                        (b_mm / (h_mm * h_mm), b_ss / (4.0 * n * n))
                    }
                    _ => {
                        let det = b_mm * b_ss - b_ms * b_ms;
                        (b_ss / det, b_mm / det)
                    }
                };
                let want = [var_mu.sqrt(), sigma * var_log_sigma.sqrt()];
                assert_eq!(inf.estimates.len(), 2);
                for (e, want) in inf.estimates.iter().zip(want) {
                    assert!(
                        rel(e.se, want) <= 1e-8,
                        "{} {cov:?}: {e:?}, closed form {want}",
                        engine.name()
                    );
                }
                if cov == CovType::Robust {
                    assert!(rel(want[0], sigma / n.sqrt()) <= 1e-12);
                }
                continue;
            }
            assert!(
                rel(inf.estimates[0].se, sigma / n.sqrt()) <= 1e-4,
                "{} mu: {:?}",
                engine.name(),
                inf.estimates[0]
            );
            {
                assert!(
                    rel(inf.estimates[1].se, sigma / (2.0 * n).sqrt()) <= 1e-4,
                    "{} sigma: {:?}",
                    engine.name(),
                    inf.estimates[1]
                );
                // The interval for sigma is built on log sigma: asymmetric and positive.
                let e = &inf.estimates[1];
                assert!(e.ci_low > 0.0 && (e.ci_high - e.estimate) > (e.estimate - e.ci_low));
                assert!(
                    (inf.aic - (4.0 + 2.0 * r.nll)).abs() < 1e-9
                        && (inf.bic - (2.0 * n.ln() + 2.0 * r.nll)).abs() < 1e-9
                );
            }
        }
    }
}

#[test]
fn categorical_probabilities_have_multinomial_standard_errors() {
    let mut rng = StdRng::seed_from_u64(2);
    let data = FamilyName::Categorical
        .build(4)
        .sample(&[0.0, 0.5, -0.5, 1.0], 3000, &mut rng);
    let n = data.len() as f64;
    for mut engine in engines(FamilyName::Categorical, 4, &data) {
        let r = fit(engine.as_mut(), &FitOptions::default()).unwrap();
        let inf = for_family(
            engine.as_mut(),
            &r.theta,
            r.nll,
            &data,
            None,
            CovType::Hessian,
            0.05,
            &[],
        )
        .unwrap();
        assert!(
            inf.warnings.is_empty(),
            "the logits' common shift is not a problem: {:?}",
            inf.warnings
        );
        assert_eq!(inf.k, 3, "K - 1 identified parameters");
        for e in &inf.estimates {
            let want = (e.estimate * (1.0 - e.estimate) / n).sqrt();
            assert!(
                rel(e.se, want) <= 1e-4,
                "{}: {e:?} vs {want}",
                engine.name()
            );
            assert!(e.ci_low > 0.0 && e.ci_high < 1.0);
        }
    }
}

/// statsmodels' formulas, independently: IRLS to the MLE, then cov = (X^T W X)^-1.
fn glm_reference(x: &[f64], y: &[f64], d: usize, poisson: bool) -> (Vec<f64>, Vec<f64>, f64) {
    let n = y.len();
    let p = d + 1;
    let row = |i: usize| -> Vec<f64> {
        std::iter::once(1.0)
            .chain(x[i * d..(i + 1) * d].iter().copied())
            .collect()
    };
    let mut beta = vec![0.0; p];
    let mut info = vec![vec![0.0; p]; p];
    for _ in 0..100 {
        info = vec![vec![0.0; p]; p];
        let mut score = vec![0.0; p];
        for i in 0..n {
            let r = row(i);
            let eta: f64 = r.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let (mu, w) = if poisson {
                (eta.exp(), eta.exp())
            } else {
                let m = 1.0 / (1.0 + (-eta).exp());
                (m, m * (1.0 - m))
            };
            for a in 0..p {
                score[a] += (y[i] - mu) * r[a];
                for b in 0..p {
                    info[a][b] += w * r[a] * r[b];
                }
            }
        }
        let step = common::gauss_solve(info.clone(), score);
        beta.iter_mut().zip(&step).for_each(|(b, s)| *b += s);
        if step.iter().all(|s| s.abs() < 1e-13) {
            break;
        }
    }
    // Invert the information column by column.
    let mut se = vec![0.0; p];
    for c in 0..p {
        let mut e = vec![0.0; p];
        e[c] = 1.0;
        se[c] = common::gauss_solve(info.clone(), e)[c].sqrt();
    }
    let llf: f64 = (0..n)
        .map(|i| {
            let eta: f64 = row(i).iter().zip(&beta).map(|(a, b)| a * b).sum();
            if poisson {
                y[i] * eta - eta.exp() - libm::lgamma(y[i] + 1.0)
            } else {
                y[i] * eta - (1.0 + eta.exp()).ln()
            }
        })
        .sum();
    (beta, se, llf)
}

fn linear_model(family: FamilyName, x: &[f64], y: &[f64], d: usize) -> Model {
    let network = Network::linear(d, family, 1);
    let mut params = network.init(0, y);
    let options = TrainOptions::new(ModelOptimizer::Newton, network.param_count());
    likely::model::train(&network, &mut params, x, y, &options, |_| {}).unwrap();
    Model {
        kind: ModelKind::Linear,
        network,
        params,
        features: (0..d).map(|j| format!("x{j}")).collect(),
        target: "y".into(),
        labels: None,
        string_labels: false,
        intercept: true,
        offset: None,
        training: serde_json::Value::Null,
    }
}

/// Inference on a fitted linear model from its exact Hessian: nothing frozen, no prior,
/// observed information, 95% intervals.
fn hessian_inference(model: &Model, x: &[f64], y: &[f64]) -> Inference {
    let hessian = likely::model::newton::derivatives(&model.network, &model.params, x, y)
        .unwrap()
        .2;
    let nll = model.evaluate(x, y).nll;
    for_linear_model(
        model,
        x,
        y,
        Some(hessian),
        nll,
        &[],
        None,
        CovType::Hessian,
        0.05,
    )
}

#[test]
fn logistic_and_poisson_regression_match_statsmodels_formulas() {
    let (n, d) = (800, 3);
    let mut rng = StdRng::seed_from_u64(3);
    let x: Vec<f64> = (0..n * d)
        .map(|_| <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng))
        .collect();
    for poisson in [false, true] {
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let eta = 0.3 + 0.5 * x[i * d] - 0.4 * x[i * d + 1];
                if poisson {
                    rand_distr::Poisson::new(eta.exp())
                        .unwrap()
                        .sample(&mut rng)
                } else {
                    (rng.random::<f64>() < 1.0 / (1.0 + (-eta).exp())) as u8 as f64
                }
            })
            .collect();
        let family = if poisson {
            FamilyName::Poisson
        } else {
            FamilyName::Bernoulli
        };
        let model = linear_model(family, &x, &y, d);
        let inf = hessian_inference(&model, &x, &y);
        let (beta, se, llf) = glm_reference(&x, &y, d, poisson);
        // Our order: weights x0..x2, then the intercept; the reference: intercept first.
        let ours: Vec<(f64, f64)> = inf.estimates.iter().map(|e| (e.estimate, e.se)).collect();
        for j in 0..d {
            assert!(rel(ours[j].0, beta[j + 1]) <= 1e-5, "{family:?} coef {j}");
            assert!(
                rel(ours[j].1, se[j + 1]) <= 1e-4,
                "{family:?} se {j}: {} vs {}",
                ours[j].1,
                se[j + 1]
            );
        }
        assert!(rel(ours[d].1, se[0]) <= 1e-4, "{family:?} intercept se");
        assert!(rel(inf.llf, llf) <= 1e-8);
        let k = (d + 1) as f64;
        assert!(rel(inf.aic, 2.0 * k - 2.0 * llf) <= 1e-8);
        assert!(rel(inf.bic, k * (n as f64).ln() - 2.0 * llf) <= 1e-8);
        // z and p from the estimate and its se.
        let e = &inf.estimates[0];
        assert!((e.z - e.estimate / e.se).abs() < 1e-12);
        assert!((e.p_value - libm::erfc(e.z.abs() / 2f64.sqrt())).abs() < 1e-15);
    }
}

#[test]
fn collinear_features_give_a_named_warning_and_nan_standard_errors() {
    let (n, d) = (200, 3);
    let mut rng = StdRng::seed_from_u64(4);
    let mut x = vec![0.0; n * d];
    for i in 0..n {
        x[i * d] = rng.random_range(-1.0..1.0);
        x[i * d + 1] = 2.0 * x[i * d]; // collinear with x0
        x[i * d + 2] = rng.random_range(-1.0..1.0);
    }
    let y: Vec<f64> = (0..n)
        .map(|i| 1.0 + x[i * d] + x[i * d + 2] + 0.1 * rng.random::<f64>())
        .collect();
    let model = linear_model(FamilyName::Gaussian, &x, &y, d);
    let inf = hessian_inference(&model, &x, &y);
    assert_eq!(inf.warnings.len(), 1, "{:?}", inf.warnings);
    assert!(
        inf.warnings[0].contains("x0")
            && inf.warnings[0].contains("x1")
            && !inf.warnings[0].contains("x2"),
        "{:?}",
        inf.warnings
    );
    assert!(inf.estimates[0].se.is_nan() && inf.estimates[1].se.is_nan());
    assert!(
        inf.estimates[2].se.is_finite(),
        "the unaffected coefficient keeps its standard error"
    );
}

#[test]
fn separation_is_detected_and_named() {
    let x = vec![1.0, 0.3, 2.0, -0.5, 3.0, 0.1, 4.0, 0.9];
    let y = vec![0.0, 0.0, 1.0, 1.0];
    let model = Model {
        kind: ModelKind::Linear,
        network: Network::linear(2, FamilyName::Bernoulli, 1),
        params: vec![0.0; 3],
        features: vec!["dose".into(), "noise".into()],
        target: "y".into(),
        labels: None,
        string_labels: false,
        intercept: true,
        offset: None,
        training: serde_json::Value::Null,
    };
    let found = model.separation(&x, &y);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("complete separation") && found[0].contains("'dose'"),
        "{found:?}"
    );
    // Overlapping classes: nothing to report.
    assert!(model.separation(&x, &[0.0, 1.0, 0.0, 1.0]).is_empty());
}

#[test]
fn profile_interval_of_a_proportion_is_the_likelihood_ratio_interval() {
    // 7 heads in 10: the LR interval solves 2 (l(0.7) - l(p)) = z^2 for p.
    let data = [1., 1., 0., 1., 1., 0., 1., 0., 1., 1.];
    let loglik = |p: f64| 7.0 * p.ln() + 3.0 * (1.0 - p).ln();
    let z = likely::inference::normal_quantile_two_sided(0.05);
    let inside = |p: f64| 2.0 * (loglik(0.7) - loglik(p)) < z * z;
    // Bisection between a point inside the interval and one outside it.
    let root = |mut inner: f64, mut outer: f64| {
        for _ in 0..200 {
            let mid = 0.5 * (inner + outer);
            if inside(mid) {
                inner = mid;
            } else {
                outer = mid;
            }
        }
        0.5 * (inner + outer)
    };
    let (want_lo, want_hi) = (root(0.7, 1e-9), root(0.7, 1.0 - 1e-9));
    for mut engine in engines(FamilyName::Bernoulli, 1, &data) {
        let options = FitOptions::default();
        let r = fit(engine.as_mut(), &options).unwrap();
        let mut inf = for_family(
            engine.as_mut(),
            &r.theta,
            r.nll,
            &data[..],
            None,
            CovType::Hessian,
            0.05,
            &[],
        )
        .unwrap();
        let wald = (inf.estimates[0].ci_low, inf.estimates[0].ci_high);
        likely::inference::profile_family(engine.as_mut(), &r, &options, 0.05, &mut inf).unwrap();
        let e = &inf.estimates[0];
        assert!(
            rel(e.ci_low, want_lo) <= 1e-6 && rel(e.ci_high, want_hi) <= 1e-6,
            "{}: {e:?} vs ({want_lo}, {want_hi})",
            engine.name()
        );
        assert!(
            e.ci_low != wald.0,
            "profile and Wald intervals differ at n = 10"
        );
    }
}

#[test]
fn study_coverage_at_n_1000_is_nominal() {
    let family = FamilyName::Gaussian.build(1);
    let theta = likely::study::parse_params(family.as_ref(), "mu=5,sigma=2").unwrap();
    let rows = likely::study::run(
        family.as_ref(),
        &theta,
        &[1000],
        400,
        11,
        0.05,
        likely::engine::Backend::Cpu,
        &Default::default(),
        |_, _| {},
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.reps, 400);
        assert!(
            (0.93..=0.97).contains(&r.coverage),
            "{} coverage {}",
            r.param,
            r.coverage
        );
        // Efficiency: sqrt(n) rmse near the bound; reported se near the empirical sd.
        assert!(rel(r.sqrt_n_rmse, r.crlb_sd) < 0.15, "{r:?}");
        assert!(rel(r.mean_se, r.sd) < 0.15, "{r:?}");
    }
}

#[test]
fn study_parameters_are_checked() {
    let family = FamilyName::Gaussian.build(1);
    assert!(likely::study::parse_params(family.as_ref(), "mu=5").is_err());
    assert!(likely::study::parse_params(family.as_ref(), "mu=5,sigma=-1").is_err());
    assert!(likely::study::parse_params(family.as_ref(), "mu=5,sigma=1,nu=3").is_err());
    let cat = FamilyName::Categorical.build(3);
    assert!(likely::study::parse_params(cat.as_ref(), "probs=0.2:0.3:0.6").is_err());
    assert!(likely::study::parse_params(cat.as_ref(), "probs=0.2:0.3:0.5").is_ok());
}

#[test]
fn profile_interval_of_a_one_parameter_logistic_regression() {
    // y ~ Bernoulli(sigmoid(b x)) without an intercept: the profile is the likelihood itself.
    let n = 80;
    let x: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin()).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| ((x[i] + 0.8 * ((i as f64) * 1.3).cos()) > 0.0) as u8 as f64)
        .collect();
    let network = Network::linear(1, FamilyName::Bernoulli, 1);
    let frozen = vec![false, true];
    let mut params = vec![0.0, 0.0];
    let options = TrainOptions {
        frozen: frozen.clone(),
        ..TrainOptions::new(ModelOptimizer::Lbfgs, 2)
    };
    likely::model::train(&network, &mut params, &x, &y, &options, |_| {}).unwrap();
    let model = Model {
        kind: ModelKind::Linear,
        network,
        params: params.clone(),
        features: vec!["x".into()],
        target: "y".into(),
        labels: None,
        string_labels: false,
        intercept: false,
        offset: None,
        training: serde_json::Value::Null,
    };
    let nll = |b: f64| -> f64 {
        (0..n)
            .map(|i| (1.0 + (b * x[i]).exp()).ln() - y[i] * b * x[i])
            .sum()
    };
    let hessian = likely::model::newton::derivatives(&model.network, &model.params, &x, &y)
        .unwrap()
        .2;
    let mut inf = for_linear_model(
        &model,
        &x,
        &y,
        Some(hessian),
        nll(params[0]),
        &frozen,
        None,
        CovType::Hessian,
        0.05,
    );
    likely::inference::profile_linear_model(
        &model,
        &x,
        &y,
        &frozen,
        None,
        nll(params[0]),
        0.05,
        &mut inf,
    )
    .unwrap();
    let z = likely::inference::normal_quantile_two_sided(0.05);
    let crossing = |mut inner: f64, mut outer: f64| {
        for _ in 0..200 {
            let mid = 0.5 * (inner + outer);
            if 2.0 * (nll(mid) - nll(params[0])) < z * z {
                inner = mid;
            } else {
                outer = mid;
            }
        }
        inner
    };
    let (lo, hi) = (
        crossing(params[0], params[0] - 50.0),
        crossing(params[0], params[0] + 50.0),
    );
    assert_eq!(inf.estimates.len(), 1);
    assert!(
        rel(inf.estimates[0].ci_low, lo) <= 1e-6 && rel(inf.estimates[0].ci_high, hi) <= 1e-6,
        "{:?} vs ({lo}, {hi})",
        inf.estimates[0]
    );
}

/// A Gaussian linear model's standard errors on (x, y) and on the same data in other units.
fn gaussian_ses(x: &[f64], y: &[f64], d: usize) -> (Vec<f64>, Vec<String>) {
    let inf = hessian_inference(&linear_model(FamilyName::Gaussian, x, y, d), x, y);
    (inf.estimates.iter().map(|e| e.se).collect(), inf.warnings)
}

#[test]
fn standard_errors_do_not_depend_on_the_units() {
    // price = 50000 + 150 sqft - 1000 age + noise: in dollars the information matrix spans
    // many orders of magnitude, which must not read as singular. Rescaling y and a feature
    // rescales the matching standard errors exactly (the fit is equivariant).
    let (n, d) = (2000, 2);
    let mut rng = StdRng::seed_from_u64(21);
    let mut x = vec![0.0; n * d];
    let mut y = vec![0.0; n];
    for i in 0..n {
        x[i * d] = rng.random_range(500.0..4000.0);
        x[i * d + 1] = rng.random_range(0.0..80.0);
        let noise: f64 = StandardNormal.sample(&mut rng);
        y[i] = 50_000.0 + 150.0 * x[i * d] - 1000.0 * x[i * d + 1] + 50_000.0 * noise;
    }
    let (dollars, warnings) = gaussian_ses(&x, &y, d);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        dollars.iter().all(|s| s.is_finite() && *s > 0.0),
        "{dollars:?}"
    );
    let y_k: Vec<f64> = y.iter().map(|v| v / 1000.0).collect();
    let x_k: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(k, v)| if k % d == 0 { v / 1000.0 } else { *v })
        .collect();
    let (thousands, _) = gaussian_ses(&x_k, &y_k, d);
    // Coefficients: sqft's scales by 1/1000 * 1000, age's and the intercept's by 1/1000;
    // sigma's (the last estimate) by 1/1000.
    let expected = [
        dollars[0],
        dollars[1] / 1000.0,
        dollars[2] / 1000.0,
        dollars[3] / 1000.0,
    ];
    for (k, (a, b)) in thousands.iter().zip(expected).enumerate() {
        assert!(rel(*a, b) < 1e-6, "estimate {k}: {a} vs {b}");
    }
}

#[test]
fn pseudo_inverse_inverts_badly_scaled_matrices_and_names_true_null_directions() {
    use likely::linalg::{matmul, pseudo_inverse};
    let n = 4;
    let mut rng = StdRng::seed_from_u64(5);
    // B B^T + I is well conditioned; D (B B^T + I) D with D spanning 1e-6..1e6 is not, in
    // plain eigenvalues, yet every direction is determined.
    let b: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut a = matmul(&b, &transpose(&b, n), n);
    (0..n).for_each(|i| a[i * n + i] += 1.0);
    let scale = [1e-6, 1.0, 1e3, 1e6];
    let scaled: Vec<f64> = (0..n * n)
        .map(|k| a[k] * scale[k / n] * scale[k % n])
        .collect();
    let (inv, dropped) = pseudo_inverse(&scaled, n, 1e-10);
    assert!(dropped.is_empty());
    let product = matmul(&scaled, &inv, n);
    for i in 0..n {
        for j in 0..n {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!(
                (product[i * n + j] - want).abs() < 1e-8,
                "{i},{j}: {}",
                product[i * n + j]
            );
        }
    }
    // A rank-deficient matrix: its null direction is found, in the original coordinates.
    let v = [1.0, -2.0, 0.0, 0.5];
    let singular: Vec<f64> = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            // Project a out of v's direction: P a P with P = I - v v^T / |v|^2.
            let vv: f64 = v.iter().map(|x| x * x).sum();
            let p = |r: usize, c: usize| (if r == c { 1.0 } else { 0.0 }) - v[r] * v[c] / vv;
            (0..n)
                .flat_map(|r| (0..n).map(move |c| (r, c)))
                .map(|(r, c)| p(i, r) * a[r * n + c] * p(c, j))
                .sum()
        })
        .collect();
    let (_, dropped) = pseudo_inverse(&singular, n, 1e-10);
    assert_eq!(dropped.len(), 1);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let cos: f64 = dropped[0].iter().zip(&v).map(|(a, b)| a * b / norm).sum();
    assert!(
        (cos.abs() - 1.0).abs() < 1e-8,
        "null direction {:?}",
        dropped[0]
    );
}

fn transpose(a: &[f64], n: usize) -> Vec<f64> {
    (0..n * n).map(|k| a[(k % n) * n + k / n]).collect()
}

#[test]
fn a_rare_event_is_not_taken_for_a_boundary_estimate() {
    // One success in 2e9 trials: p = 5e-10 is an estimate like any other (its expected count
    // is one sample), not a probability on the boundary of [0, 1].
    use likely::family::Link;
    use likely::inference::{infer, FitSummary};
    let n = 2_000_000_000usize;
    let p = 1.0 / n as f64;
    let logit = (p / (1.0 - p)).ln();
    let natural = |t: &[f64]| vec![1.0 / (1.0 + (-t[0]).exp())];
    let inf = infer(
        &FitSummary {
            theta: &[logit],
            theta_names: vec!["logit".into()],
            hessian: vec![n as f64 * p * (1.0 - p)],
            outer: None,
            natural: &natural,
            jacobian: None,
            natural_names: vec!["p".into()],
            links: vec![Link::Logit],
            on_boundary: Vec::new(),
            fixed: Vec::new(),
            nll: 1.0,
            n: n as f64,
        },
        CovType::Hessian,
        0.05,
    );
    assert!(inf.warnings.is_empty(), "{:?}", inf.warnings);
    assert!(inf.estimates[0].se.is_finite() && inf.estimates[0].se > 0.0);
    assert_eq!(inf.k, 1);
}
