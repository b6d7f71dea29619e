//! Fits against closed forms, on the CPU engine and on the GPU engine, to 1e-6 relative.

mod common;

use likely::engine::{CpuEngine, Engine, GpuEngine};
use likely::family::{Family, FamilyName};
use likely::fit::{fit, FitOptions, Optimizer, Prior, StopReason};
use likely::for_each_family;
use likely::model::{train, ModelOptimizer, Network, TrainOptions};
use likely::tolerance::{relative_error, CLOSED_FORM};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;

/// Data rounded to f32, so the GPU sees exactly what the closed form is computed on.
fn draw(name: FamilyName, classes: usize, theta: &[f64], n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    name.build(classes)
        .sample(theta, n, &mut rng)
        .into_iter()
        .map(|x| x as f32 as f64)
        .collect()
}

/// Engines to run on: the CPU engine always, the GPU engine when there is an adapter.
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

fn assert_natural(family: &dyn Family, got: &[f64], want: &[f64], tol: f64, what: &str) {
    for (g, w) in family.natural(got).iter().zip(family.natural(want)) {
        for (a, b) in g.value.values().iter().zip(w.value.values()) {
            let err = relative_error(*a, b);
            assert!(
                err <= tol,
                "{what}: {} = {a}, expected {b} (rel. err {err:.2e})",
                g.name
            );
        }
    }
}

fn check_closed_form(name: FamilyName, classes: usize, data: &[f64]) {
    let family = name.build(classes);
    let want = family.closed_form_mle(data);
    for mut engine in engines(name, classes, data) {
        let result = fit(engine.as_mut(), &FitOptions::default()).unwrap();
        let what = format!("{} on {}", family.name(), engine.name());
        assert!(result.converged, "{what}: {:?}", result.reason);
        assert_natural(family.as_ref(), &result.theta, &want, CLOSED_FORM, &what);
    }
}

#[test]
fn bernoulli_seven_heads_in_ten() {
    let tosses = [1., 1., 0., 1., 1., 0., 1., 0., 1., 1.];
    for mut engine in engines(FamilyName::Bernoulli, 1, &tosses) {
        let r = fit(engine.as_mut(), &FitOptions::default()).unwrap();
        let p = likely::family::sigmoid(r.theta[0]);
        assert!(
            relative_error(p, 0.7) <= CLOSED_FORM,
            "{}: p = {p}",
            engine.name()
        );
    }
}

#[test]
fn gaussian_mean_and_biased_variance() {
    let data = draw(FamilyName::Gaussian, 1, &[5.0, 2f64.ln()], 1000, 1);
    let n = data.len() as f64;
    let mean = data.iter().sum::<f64>() / n;
    let var = data.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    for mut engine in engines(FamilyName::Gaussian, 1, &data) {
        let r = fit(engine.as_mut(), &FitOptions::default()).unwrap();
        assert!(
            relative_error(r.theta[0], mean) <= CLOSED_FORM,
            "{} mu",
            engine.name()
        );
        assert!(
            relative_error((2.0 * r.theta[1]).exp(), var) <= CLOSED_FORM,
            "{} sigma^2",
            engine.name()
        );
    }
}

#[test]
fn gaussian_far_from_zero_and_large_n() {
    // mu / sigma = 1e4 and n = 1e6: the hi/lo parameter split keeps the GPU accurate.
    check_closed_form(
        FamilyName::Gaussian,
        1,
        &draw(FamilyName::Gaussian, 1, &[1e4, 0.0], 1_000_000, 2),
    );
}

#[test]
fn laplace_median_and_mean_absolute_deviation() {
    check_closed_form(
        FamilyName::Laplace,
        1,
        &draw(FamilyName::Laplace, 1, &[-1.0, 0.5f64.ln()], 1001, 3),
    );
}

#[test]
fn laplace_even_n_gives_a_median() {
    // Any mu between the two middle order statistics is an MLE; b is the same for all of them.
    let data = draw(FamilyName::Laplace, 1, &[2.0, 0.0], 1000, 4);
    let mut sorted = data.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (sorted[499], sorted[500]);
    let family = FamilyName::Laplace.build(1);
    let b = family.closed_form_mle(&data)[1].exp();
    for mut engine in engines(FamilyName::Laplace, 1, &data) {
        let r = fit(engine.as_mut(), &FitOptions::default()).unwrap();
        let tol = CLOSED_FORM * lo.abs();
        assert!(
            r.theta[0] >= lo - tol && r.theta[0] <= hi + tol,
            "{}: mu {} not in [{lo}, {hi}]",
            engine.name(),
            r.theta[0]
        );
        assert!(
            relative_error(r.theta[1].exp(), b) <= CLOSED_FORM,
            "{}: b",
            engine.name()
        );
    }
}

#[test]
fn categorical_class_frequencies() {
    check_closed_form(
        FamilyName::Categorical,
        5,
        &draw(
            FamilyName::Categorical,
            5,
            &[0.0, 1.0, -1.0, 0.5, 0.2],
            5000,
            5,
        ),
    );
}

#[test]
fn poisson_mean() {
    check_closed_form(
        FamilyName::Poisson,
        1,
        &draw(FamilyName::Poisson, 1, &[3.0f64.ln()], 2000, 6),
    );
}

#[test]
fn exponential_reciprocal_mean() {
    check_closed_form(
        FamilyName::Exponential,
        1,
        &draw(FamilyName::Exponential, 1, &[0.1f64.ln()], 2000, 7),
    );
}

#[test]
fn gamma_shape_from_its_equation_and_rate_shape_over_mean() {
    check_closed_form(
        FamilyName::Gamma,
        1,
        &draw(FamilyName::Gamma, 1, &[2.5f64.ln(), 0.3f64.ln()], 2000, 8),
    );
}

#[test]
fn lognormal_mean_and_biased_variance_of_the_logs() {
    check_closed_form(
        FamilyName::Lognormal,
        1,
        &draw(FamilyName::Lognormal, 1, &[4.0, 0.5f64.ln()], 2000, 9),
    );
}

#[test]
fn weibull_shape_from_its_profile_equation() {
    check_closed_form(
        FamilyName::Weibull,
        1,
        &draw(
            FamilyName::Weibull,
            1,
            &[1.7f64.ln(), 0.02f64.ln()],
            2000,
            10,
        ),
    );
}

// The intercept-only linear model (no features) and the family fit are the same model: the
// same NLL at the optimum (1e-9 relative), and the head's (eta, globals) mapped onto the
// family's parameters are the family fit's (closed-form tolerance), on every engine.
for_each_family!(intercept_only_model_equals_the_family_fit, |name| {
    let classes = 4;
    let family = name.build(classes);
    let mut rng = StdRng::seed_from_u64(31);
    let theta = family.random_theta(&mut rng);
    let y = draw(name, classes, &theta, 500, 32);
    let net = Network::linear(0, name, classes);
    let mut params = net.init(0, &y);
    if name == FamilyName::Laplace {
        // No smooth optimiser certifies the median's kink (linear models solve LAD by the
        // simplex, through the CLI's placement): the model's NLL is held to the family's at
        // the family's optimum (theta = (mu, log b) = (eta, global)) instead.
        let mut engine = CpuEngine::new(name.build(classes), Arc::from(y.as_slice()));
        params = fit(&mut engine, &FitOptions::default()).unwrap().theta;
    } else {
        let options = TrainOptions::new(ModelOptimizer::Newton, net.param_count());
        let report = train(&net, &mut params, &[], &y, &options, |_| {}).unwrap();
        assert!(report.converged, "{name:?}: {report:?}");
    }
    let rows: Vec<usize> = (0..y.len()).collect();
    let (model_nll, _) = net.nll_and_grad(&params, &[], &y, &rows);
    let g = net.globals_offset();
    let outputs = g;
    let model_theta = net.head.family_theta(&params[..outputs], &params[g..]);
    for mut engine in engines(name, classes, &y) {
        let result = fit(engine.as_mut(), &FitOptions::default()).unwrap();
        let what = format!("{name:?} on {}", engine.name());
        assert!(result.converged, "{what}: {:?}", result.reason);
        assert!(
            relative_error(result.nll, model_nll) <= 1e-9,
            "{what}: family NLL {} vs the intercept-only model's {model_nll}",
            result.nll
        );
        if name == FamilyName::Categorical {
            // The family's K logits against the model's K - 1 (the first class at 0): compare
            // the probabilities.
            let softmax = |t: &[f64]| -> Vec<f64> {
                let m = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = t.iter().map(|v| (v - m).exp()).collect();
                let z: f64 = e.iter().sum();
                e.into_iter().map(|v| v / z).collect()
            };
            let mut logits = model_theta.clone();
            if logits.len() < classes {
                logits.insert(0, 0.0);
            }
            for (a, b) in softmax(&result.theta).iter().zip(softmax(&logits)) {
                assert!(relative_error(*a, b) <= CLOSED_FORM, "{what}: {a} vs {b}");
            }
        } else {
            assert_natural(
                family.as_ref(),
                &result.theta,
                &model_theta,
                CLOSED_FORM,
                &what,
            );
        }
    }
});

#[test]
fn gaussian_mean_with_l2_prior_is_the_posterior_mode() {
    // With an N(0, s^2) prior on mu (and on log sigma), the mode satisfies, at the fitted sigma,
    // mu = (sum x / sigma^2) / (n / sigma^2 + 1 / s^2): the conjugate posterior mean of mu.
    let data = draw(FamilyName::Gaussian, 1, &[3.0, 1.5f64.ln()], 20, 8);
    let s = 0.5;
    let n = data.len() as f64;
    let sum: f64 = data.iter().sum();
    for mut engine in engines(FamilyName::Gaussian, 1, &data) {
        let options = FitOptions {
            prior: Some(Prior::L2 { scale: s }),
            ..FitOptions::default()
        };
        let r = fit(engine.as_mut(), &options).unwrap();
        let var = (2.0 * r.theta[1]).exp();
        let mode = (sum / var) / (n / var + 1.0 / (s * s));
        assert!(r.converged, "{}", engine.name());
        assert!(
            relative_error(r.theta[0], mode) <= CLOSED_FORM,
            "{}: mu {} vs {mode}",
            engine.name(),
            r.theta[0]
        );
        // log sigma's stationarity: n - S2 / sigma^2 + log sigma / s^2 = 0.
        let s2: f64 = data.iter().map(|x| (x - r.theta[0]).powi(2)).sum();
        let stationarity = n - s2 / var + r.theta[1] / (s * s);
        assert!(
            stationarity.abs() <= 1e-6 * n,
            "{}: {stationarity}",
            engine.name()
        );
        let lp = r.log_prior.unwrap();
        assert!((r.log_posterior().unwrap() - (lp - r.nll)).abs() < 1e-12);
    }
}

#[test]
fn l1_prior_gives_exact_zeros() {
    // Bernoulli with p close to 1/2 and a strong Laplace prior: the MAP logit is exactly 0
    // (the subgradient condition |n sigmoid(0) - S| <= 1/scale holds).
    let data: Vec<f64> = (0..101).map(|i| (i % 2) as f64).collect(); // 50 ones of 101
    for mut engine in engines(FamilyName::Bernoulli, 1, &data) {
        let options = FitOptions {
            prior: Some(Prior::L1 { scale: 0.5 }),
            ..FitOptions::default()
        };
        let r = fit(engine.as_mut(), &options).unwrap();
        assert_eq!(r.theta[0], 0.0, "{}: {:?}", engine.name(), r);
        assert!(r.converged);
    }
    // A weaker prior leaves a non-zero logit, shrunk towards zero: n sigmoid(eta) - S = -1/scale.
    let data: Vec<f64> = (0..100).map(|i| (i % 4 != 0) as u8 as f64).collect(); // 75 of 100
    let mut engine = CpuEngine::new(FamilyName::Bernoulli.build(1), Arc::from(data));
    let options = FitOptions {
        prior: Some(Prior::L1 { scale: 1.0 }),
        ..FitOptions::default()
    };
    let r = fit(&mut engine, &options).unwrap();
    let p = likely::family::sigmoid(r.theta[0]);
    assert!(relative_error(p, 0.74) <= CLOSED_FORM, "p = {p}");
}

#[test]
fn l1_prior_fits_converge_where_the_last_decrease_is_below_rounding() {
    // Away from 0 an L1 prior's objective is smooth; at n in the thousands its last needed
    // decrease (the decrement squared, 1e-17 at 5e-9 standard errors) lies far below the
    // NLL's rounding, so L-BFGS's line search cannot see it: the fit must still reach the
    // optimality test (it stopped at 5e-9 standard errors, converged false, on the CPU
    // engine), and the engines agree.
    for (name, theta) in [
        (FamilyName::Gaussian, vec![6.75, 0.79]),
        (FamilyName::Poisson, vec![1.2]),
        (FamilyName::Exponential, vec![-0.4]),
        (FamilyName::Bernoulli, vec![0.8]),
    ] {
        for n in [5000, 200_000] {
            let data = draw(name, 1, &theta, n, 21);
            let mut estimates = Vec::new();
            for mut engine in engines(name, 1, &data) {
                let options = FitOptions {
                    prior: Some(Prior::L1 { scale: 10.0 }),
                    ..FitOptions::default()
                };
                let r = fit(engine.as_mut(), &options).unwrap();
                assert!(r.converged, "{name:?} n {n} on {}: {r:?}", engine.name());
                // The MAP's stationarity, from the data directly (not the engines' sums): with
                // lambda = 1 / scale and the signs of the estimate, the closed forms
                // mu = mean - lambda sigma^2 sign(mu) / n, sigma^2 = S / (n + lambda sign(log
                // sigma)); Poisson lambda = (sum - lambda sign) / n; exponential rate = (n -
                // lambda sign) / sum; Bernoulli p = (sum - lambda sign) / n.
                let (count, sum) = (n as f64, data.iter().sum::<f64>());
                let l = 1.0 / 10.0;
                let t = &r.theta;
                let close = |got: f64, want: f64, what: &str| {
                    assert!(
                        (got - want).abs() <= 1e-9 * want.abs(),
                        "{name:?} n {n} on {}: {what} {got} vs {want}",
                        engine.name()
                    );
                };
                match name {
                    FamilyName::Gaussian => {
                        let sigma2 = (2.0 * t[1]).exp();
                        close(t[0], sum / count - l * sigma2 * t[0].signum() / count, "mu");
                        let squares: f64 = data.iter().map(|x| (x - t[0]).powi(2)).sum();
                        close(sigma2, squares / (count + l * t[1].signum()), "sigma^2");
                    }
                    FamilyName::Poisson => {
                        close(t[0].exp(), (sum - l * t[0].signum()) / count, "lambda")
                    }
                    FamilyName::Exponential => {
                        close(t[0].exp(), (count - l * t[0].signum()) / sum, "rate")
                    }
                    _ => close(
                        likely::family::sigmoid(t[0]),
                        (sum - l * t[0].signum()) / count,
                        "p",
                    ),
                }
                estimates.push(r.theta);
            }
            for other in &estimates[1..] {
                for (a, b) in other.iter().zip(&estimates[0]) {
                    assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "{name:?} n {n}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn classes_never_observed_do_not_stall_the_optimality_test() {
    // Two of seven classes never observed: their logits are placed far out, where their
    // curvature is about 1e-23 of a sample's; the test holds them there instead of solving
    // with them (a ratio of rounding errors: the CPU engine stopped at its noise floor,
    // 1e-6 standard errors, at n = 5000, and converged at 1000 and 20000).
    for n in [1000usize, 5000, 20_000, 100_000] {
        let data: Vec<f64> = (0..n).map(|i| ((i * 7919) % 61 % 5) as f64).collect();
        let mut probabilities = Vec::new();
        for mut engine in engines(FamilyName::Categorical, 7, &data) {
            let r = fit(engine.as_mut(), &FitOptions::default()).unwrap();
            assert!(r.converged, "n {n} on {}: {r:?}", engine.name());
            // The class probabilities: the softmax of the logits.
            let top = r.theta.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = r.theta.iter().map(|t| (t - top).exp()).collect();
            let total: f64 = weights.iter().sum();
            probabilities.push(weights.iter().map(|w| w / total).collect::<Vec<f64>>());
        }
        for other in &probabilities[1..] {
            for (a, b) in other.iter().zip(&probabilities[0]) {
                assert!((a - b).abs() <= 1e-12, "n {n}: {a} vs {b}");
            }
        }
        // The observed classes' frequencies, the others 0 (to within the boundary's 1e-18).
        for (k, p) in probabilities[0].iter().enumerate() {
            let count = data.iter().filter(|&&x| x == k as f64).count() as f64;
            assert!((p - count / n as f64).abs() <= 1e-12, "n {n}: class {k}");
        }
    }
}

#[test]
fn adam_gets_close() {
    let data = draw(FamilyName::Gaussian, 1, &[5.0, 2f64.ln()], 1000, 9);
    let want = FamilyName::Gaussian.build(1).closed_form_mle(&data);
    let mut engine = CpuEngine::new(FamilyName::Gaussian.build(1), Arc::from(data));
    let options = FitOptions {
        optimizer: Optimizer::Adam,
        max_iter: 5000,
        gtol: 1e-8,
        ..FitOptions::default()
    };
    let r = fit(&mut engine, &options).unwrap();
    assert!(relative_error(r.theta[0], want[0]) <= 1e-4, "{r:?}");
    assert!(
        relative_error(r.theta[1].exp(), want[1].exp()) <= 1e-4,
        "{r:?}"
    );
}

#[test]
fn a_missing_mle_is_an_error_not_a_number() {
    // One Gaussian sample: the likelihood grows without bound as sigma -> 0.
    let mut engine = CpuEngine::new(FamilyName::Gaussian.build(1), Arc::from(vec![1.0]));
    let err = fit(&mut engine, &FitOptions::default()).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    // With a prior the MAP estimate exists.
    let options = FitOptions {
        prior: Some(Prior::L2 { scale: 1.0 }),
        ..FitOptions::default()
    };
    let r = fit(&mut engine, &options).unwrap();
    assert!(
        r.converged && r.theta.iter().all(|t| t.is_finite()),
        "{r:?}"
    );
}

#[test]
fn an_mle_on_the_boundary_warns() {
    let mut engine = CpuEngine::new(FamilyName::Bernoulli.build(1), Arc::from(vec![1.0; 3]));
    let r = fit(&mut engine, &FitOptions::default()).unwrap();
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    assert!(likely::family::sigmoid(r.theta[0]) > 0.999_999);
}

#[test]
fn data_outside_f32_range_are_rescaled_for_the_gpu() {
    // 1e39 is beyond f32 (3.4e38): the GPU engine shifts and scales the samples by a power of
    // two in f64 before rounding them, and the fit reaches the closed form.
    let Some(ctx) = common::gpu() else { return };
    let data: Vec<f64> = (0..1000)
        .map(|i| 1e39 * (1.0 + (i as f64 * 0.37).sin()))
        .collect();
    let family = FamilyName::Gaussian.build(1);
    let want = family.closed_form_mle(&data);
    let mut engine = GpuEngine::new(ctx, FamilyName::Gaussian.build(1), &data).unwrap();
    let result = fit(&mut engine, &FitOptions::default()).unwrap();
    assert!(result.converged, "{result:?}");
    assert_natural(
        family.as_ref(),
        &result.theta,
        &want,
        CLOSED_FORM,
        "gaussian near 1e39",
    );
}

/// Negative-binomial counts near 1e6 (alpha 0.01; tests/fixtures/synthetic): each row's NLL is
/// a difference of terms of 1e7, so f32 sums cannot resolve it. The GPU's f32 phase gets a
/// bounded share of the iterations and the f64 finish reaches the exact MLE (the f32 phase had
/// spent all 500 iterations wandering in its noise, 232 s, and stopped at alpha 0.010402).
/// Both engines converge or stop at f64's own noise floor, never by the iteration limit.
#[test]
fn negative_binomial_counts_near_a_million_reach_the_f64_finish() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/synthetic/negative_binomial_large_counts.csv");
    let data: Vec<f64> = likely::data::load(&path, Some("y"), FamilyName::NegativeBinomial)
        .unwrap()
        .values
        .iter()
        .collect();
    // mpmath's MLE (the fixture's README).
    let exact_alpha = 0.0100568467922;
    for mut engine in engines(FamilyName::NegativeBinomial, 1, &data) {
        let r = fit(engine.as_mut(), &FitOptions::default()).unwrap();
        let what = engine.name();
        assert!(
            matches!(r.reason, StopReason::Optimal | StopReason::NoiseFloor),
            "{what}: {r:?}"
        );
        assert!(r.iterations < 200, "{what}: {} iterations", r.iterations);
        let alpha = r.theta[1].exp();
        assert!(
            (alpha - exact_alpha).abs() <= 1e-8 * exact_alpha,
            "{what}: alpha {alpha}, exactly {exact_alpha}"
        );
    }
}
