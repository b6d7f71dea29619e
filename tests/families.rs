//! Per-family CPU checks: the decomposition against the textbook density, gradients against
//! finite differences, closed-form anchors. Generated for every family by `for_each_family!`.

use likely::engine::{CpuEngine, Engine};
use likely::family::{FamilyName, FAMILIES_IN_TEST_MACRO};
use likely::for_each_family;
use likely::tolerance::{DECOMPOSITION, FINITE_DIFFERENCE};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;

#[test]
fn every_family_is_tested() {
    assert_eq!(FamilyName::ALL.len(), FAMILIES_IN_TEST_MACRO);
}

fn data_and_theta(
    name: FamilyName,
    n: usize,
    seed: u64,
) -> (Box<dyn likely::family::Family>, Vec<f64>, Vec<f64>) {
    let family = name.build(5);
    let mut rng = StdRng::seed_from_u64(seed);
    let truth = family.random_theta(&mut rng);
    let data = family.sample(&truth, n, &mut rng);
    // Evaluate away from the truth so gradients are not near zero.
    let theta = family.random_theta(&mut rng);
    (family, data, theta)
}

fn direct_nll(family: &dyn likely::family::Family, data: &[f64], theta: &[f64]) -> f64 {
    -data
        .iter()
        .map(|&x| family.log_density(x, theta))
        .sum::<f64>()
}

for_each_family!(decomposition_matches_density, |name| {
    for seed in 0..5 {
        let (family, data, theta) = data_and_theta(name, 257, seed);
        let direct = direct_nll(family.as_ref(), &data, &theta);
        let scale: f64 = data
            .iter()
            .map(|&x| family.log_density(x, &theta).abs())
            .sum();
        let mut engine = CpuEngine::as_given(family, data.into());
        let (nll, _) = engine.nll_and_grad(&theta).unwrap();
        assert!(
            (nll - direct).abs() <= DECOMPOSITION * scale,
            "{name:?}: engine {nll} vs direct {direct}"
        );
    }
});

for_each_family!(gradient_matches_finite_differences, |name| {
    for seed in 0..5 {
        let (family, data, theta) = data_and_theta(name, 50, seed);
        let f = |t: &[f64]| direct_nll(family.as_ref(), &data, t);
        let mut engine = CpuEngine::as_given(name.build(5), data.clone().into());
        let (nll, grad) = engine.nll_and_grad(&theta).unwrap();
        let gmax = grad.iter().fold(1.0f64, |m, g| m.max(g.abs()));
        for j in 0..theta.len() {
            let h = 1e-6 * theta[j].abs().max(1.0);
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (f(&up) - f(&down)) / (2.0 * h);
            let tol = FINITE_DIFFERENCE * gmax + 1e-9 * nll.abs() / h;
            assert!(
                (fd - grad[j]).abs() <= tol,
                "{name:?} seed {seed} d/dtheta[{j}]: analytic {} vs fd {fd}",
                grad[j]
            );
        }
    }
});

for_each_family!(extreme_parameters_are_finite, |name| {
    let (family, data, _) = data_and_theta(name, 100, 3);
    let extremes = family.extreme_thetas();
    assert!(!extremes.is_empty());
    let mut engine = CpuEngine::as_given(family, data.into());
    for theta in extremes {
        let (nll, grad) = engine.nll_and_grad(&theta).unwrap();
        assert!(
            nll.is_finite() && grad.iter().all(|g| g.is_finite()),
            "{name:?} at {theta:?}: {nll} {grad:?}"
        );
    }
});

for_each_family!(sampler_matches_closed_form_mle, |name| {
    // The sampler and the closed form agree on the parameters (a seeded statistical test:
    // 200k draws put the estimate within a few standard errors of the truth).
    let family = name.build(4);
    let mut rng = StdRng::seed_from_u64(11);
    let truth = family.random_theta(&mut rng);
    let data = family.sample(&truth, 200_000, &mut rng);
    let est = family.natural(&family.closed_form_mle(&data));
    for (e, t) in est.iter().zip(family.natural(&truth)) {
        for (a, b) in e.value.values().iter().zip(t.value.values()) {
            assert!(
                (a - b).abs() <= 0.02 * b.abs().max(0.1),
                "{name:?} {}: {a} vs {b}",
                e.name
            );
        }
    }
});

/// Textbook values at special points: log p(x | theta) for one x.
fn anchors() -> Vec<(FamilyName, usize, f64, Vec<f64>, f64)> {
    let (sigma, b, lambda, rate) = (1.7f64, 0.3f64, 2.5f64, 4.0f64);
    vec![
        (
            FamilyName::Bernoulli,
            1,
            1.0,
            vec![0.0],
            -std::f64::consts::LN_2,
        ),
        (
            FamilyName::Gaussian,
            1,
            2.5,
            vec![2.5, sigma.ln()],
            -sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln(),
        ),
        (FamilyName::Categorical, 4, 2.0, vec![0.3; 4], -(4f64).ln()),
        (
            FamilyName::Laplace,
            1,
            -1.0,
            vec![-1.0, b.ln()],
            -(2.0 * b).ln(),
        ),
        (FamilyName::Poisson, 1, 0.0, vec![lambda.ln()], -lambda),
        (FamilyName::Exponential, 1, 0.0, vec![rate.ln()], rate.ln()),
        // k ln beta + (k - 1) ln x - beta x - ln Gamma(k) at k = 3, beta = 2, x = 1.5:
        // 3 ln 2 + 2 ln 1.5 - 3 - ln 2 = 2 ln 3 - 3.
        (
            FamilyName::Gamma,
            1,
            1.5,
            vec![3f64.ln(), 2f64.ln()],
            2.0 * 3f64.ln() - 3.0,
        ),
        // At x = lambda: ln k - ln lambda - 1, at k = 2, lambda = 3.
        (
            FamilyName::Weibull,
            1,
            3.0,
            vec![2f64.ln(), 3f64.ln()],
            2f64.ln() - 3f64.ln() - 1.0,
        ),
        // At x = e^mu: -mu - ln sigma - ln(2 pi)/2.
        (
            FamilyName::Lognormal,
            1,
            2f64.exp(),
            vec![2.0, sigma.ln()],
            -2.0 - sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln(),
        ),
    ]
}

#[test]
fn log_density_anchors_on_the_cpu_engine() {
    for (name, classes, x, theta, want) in anchors() {
        let mut engine = CpuEngine::as_given(name.build(classes), Arc::from(vec![x]));
        let (nll, _) = engine.nll_and_grad(&theta).unwrap();
        assert!(
            (-nll - want).abs() <= 1e-14 * want.abs().max(1.0),
            "{name:?}: {} vs {want}",
            -nll
        );
    }
}

#[test]
fn gpu_log_density_anchors() {
    #[path = "common/mod.rs"]
    mod common;
    let Some(ctx) = common::gpu() else { return };
    for (name, classes, x, theta, want) in anchors() {
        let mut engine = likely::engine::GpuEngine::new(ctx, name.build(classes), &[x]).unwrap();
        // The engine evaluates re-expressed samples; nll_at takes and gives the samples' own.
        let nll = engine.nll_at(&theta).unwrap();
        assert!(
            (-nll - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{name:?}: {} vs {want}",
            -nll
        );
    }
}

// `study --params` reads natural parameters back into theta through the family's links: the
// natural parameters of the theta it reads are the ones given (a family whose theta is not
// its links' image of the natural parameters, as a log rate reported as a scale, fails).
for_each_family!(natural_parameters_read_back_through_their_links, |name| {
    let family = name.build(3);
    let mut rng = StdRng::seed_from_u64(41);
    for _ in 0..5 {
        let theta = family.random_theta(&mut rng);
        let natural = family.natural(&theta);
        let text: Vec<String> = natural
            .iter()
            .map(|p| {
                let values: Vec<String> =
                    p.value.values().iter().map(|v| format!("{v:e}")).collect();
                format!("{}={}", p.name, values.join(":"))
            })
            .collect();
        let read = likely::study::parse_params(family.as_ref(), &text.join(",")).unwrap();
        for (given, back) in natural.iter().zip(family.natural(&read)) {
            for (a, b) in given.value.values().iter().zip(back.value.values()) {
                assert!(
                    (a - b).abs() <= 1e-12 * a.abs().max(1e-300),
                    "{name:?} {}: {a} given, {b} read back",
                    given.name
                );
            }
        }
    }
});
