#![allow(clippy::needless_range_loop)] // matrix code reads best with indices
//! Conditional models on the CPU reference: finite-difference gradients for every head and
//! activation, logistic regression against an independent Newton (IRLS) implementation, the
//! linear Gaussian model against least squares, L1 zeros on weights only, save/load.

mod common;

use likely::family::FamilyName;
use likely::fit::Prior;
use likely::model::{train, Activation, Head, ModelOptimizer, Network, TrainOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

fn features(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * d)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

fn targets(family: FamilyName, classes: usize, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| match family {
            FamilyName::Bernoulli => rng.random_range(0..2) as f64,
            FamilyName::Categorical => rng.random_range(0..classes) as f64,
            FamilyName::Poisson | FamilyName::NegativeBinomial => rng.random_range(0..6) as f64,
            FamilyName::Exponential
            | FamilyName::Gamma
            | FamilyName::Lognormal
            | FamilyName::Weibull => rng.random_range(0.1..3.0),
            FamilyName::Gaussian | FamilyName::Laplace | FamilyName::StudentT => {
                rng.random_range(-2.0..2.0)
            }
            FamilyName::Beta => rng.random_range(0.05..0.95),
        })
        .collect()
}

fn options(optimizer: ModelOptimizer, p: usize) -> TrainOptions {
    TrainOptions::new(optimizer, p)
}

#[test]
fn gradients_match_finite_differences_for_every_head_and_activation() {
    for family in FamilyName::ALL {
        for (hidden, activation) in [
            (vec![], Activation::Relu),
            (vec![5], Activation::Tanh),
            (vec![4, 3], Activation::Gelu),
            (vec![6], Activation::Relu),
        ] {
            let reference = hidden.is_empty();
            let net = Network {
                inputs: 3,
                hidden,
                activation,
                head: Head::new(family, 4, reference),
            };
            let (n, d) = (40, 3);
            let x = features(n, d, 1);
            let y = targets(family, 4, n, 2);
            let mut rng = StdRng::seed_from_u64(3);
            let params: Vec<f64> = (0..net.param_count())
                .map(|_| rng.random_range(-0.5..0.5))
                .collect();
            let rows: Vec<usize> = (0..n).collect();
            let (f0, grad) = net.nll_and_grad(&params, &x, &y, &rows);
            let gmax = grad.iter().fold(1.0f64, |m, g| m.max(g.abs()));
            for j in 0..params.len() {
                let h = 1e-6;
                let (mut up, mut down) = (params.clone(), params.clone());
                up[j] += h;
                down[j] -= h;
                let fd = (net.nll_and_grad(&up, &x, &y, &rows).0
                    - net.nll_and_grad(&down, &x, &y, &rows).0)
                    / (2.0 * h);
                // ReLU kinks are measure-zero; a tolerance relative to the largest component.
                assert!(
                    (fd - grad[j]).abs() <= 1e-6 * gmax + 1e-9 * f0.abs() / h,
                    "{family:?} {activation:?} {:?} param {j}: analytic {} vs fd {fd}",
                    net.hidden,
                    grad[j]
                );
            }
        }
    }
}

/// Independent logistic regression: Newton-Raphson (IRLS) with its own Gaussian elimination.
fn irls_logistic(x: &[f64], y: &[f64], d: usize) -> Vec<f64> {
    let n = y.len();
    let p = d + 1;
    let mut beta = vec![0.0; p];
    let row = |i: usize| -> Vec<f64> {
        std::iter::once(1.0)
            .chain(x[i * d..(i + 1) * d].iter().copied())
            .collect()
    };
    for _ in 0..50 {
        let mut h = vec![vec![0.0; p]; p];
        let mut g = vec![0.0; p];
        for i in 0..n {
            let r = row(i);
            let eta: f64 = r.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let mu = 1.0 / (1.0 + (-eta).exp());
            let w = mu * (1.0 - mu);
            for a in 0..p {
                g[a] += (y[i] - mu) * r[a];
                for b in 0..p {
                    h[a][b] += w * r[a] * r[b];
                }
            }
        }
        let step = common::gauss_solve(h, g);
        beta.iter_mut().zip(&step).for_each(|(b, s)| *b += s);
        if step.iter().all(|s| s.abs() < 1e-14) {
            break;
        }
    }
    beta
}

fn linear_fit(
    family: FamilyName,
    x: &[f64],
    y: &[f64],
    d: usize,
    prior: Option<Prior>,
) -> (Network, Vec<f64>) {
    let net = Network::linear(d, family, 1);
    let mut params = net.init(0, y);
    let mut opts = options(ModelOptimizer::Lbfgs, net.param_count());
    opts.prior = prior;
    let report = train(&net, &mut params, x, y, &opts, |_| {}).unwrap();
    assert!(report.converged, "{report:?}");
    (net, params)
}

#[test]
fn logistic_regression_matches_irls() {
    let (n, d) = (400, 4);
    let x = features(n, d, 5);
    let truth = [0.8, -0.5, 0.3, 0.0];
    let mut rng = StdRng::seed_from_u64(6);
    let y: Vec<f64> = (0..n)
        .map(|i| {
            let eta: f64 = 0.2
                + x[i * d..(i + 1) * d]
                    .iter()
                    .zip(&truth)
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
            (rng.random::<f64>() < 1.0 / (1.0 + (-eta).exp())) as u8 as f64
        })
        .collect();
    let want = irls_logistic(&x, &y, d);
    let (net, params) = linear_fit(FamilyName::Bernoulli, &x, &y, d, None);
    let l = net.layers()[0];
    assert!(
        (params[l.bias] - want[0]).abs() <= 1e-5 * want[0].abs(),
        "intercept {} vs {}",
        params[l.bias],
        want[0]
    );
    for j in 0..d {
        assert!(
            (params[l.weights + j] - want[j + 1]).abs() <= 1e-5 * want[j + 1].abs(),
            "coef {j}: {} vs {}",
            params[l.weights + j],
            want[j + 1]
        );
    }
}

#[test]
fn linear_gaussian_matches_least_squares() {
    let (n, d) = (300, 3);
    let x = features(n, d, 7);
    let mut rng = StdRng::seed_from_u64(8);
    let y: Vec<f64> = (0..n)
        .map(|i| {
            1.5 + 2.0 * x[i * d] - x[i * d + 1]
                + 0.5 * x[i * d + 2]
                + 0.3 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
        })
        .collect();
    // Normal equations with an intercept column.
    let p = d + 1;
    let mut a = vec![vec![0.0; p]; p];
    let mut b = vec![0.0; p];
    for i in 0..n {
        let r: Vec<f64> = std::iter::once(1.0)
            .chain(x[i * d..(i + 1) * d].iter().copied())
            .collect();
        for u in 0..p {
            b[u] += r[u] * y[i];
            for v in 0..p {
                a[u][v] += r[u] * r[v];
            }
        }
    }
    let beta = common::gauss_solve(a, b);
    let (net, params) = linear_fit(FamilyName::Gaussian, &x, &y, d, None);
    let l = net.layers()[0];
    assert!((params[l.bias] - beta[0]).abs() <= 1e-6 * beta[0].abs());
    for j in 0..d {
        assert!((params[l.weights + j] - beta[j + 1]).abs() <= 1e-6 * beta[j + 1].abs());
    }
    // sigma^2 is the mean squared residual.
    let rss: f64 = (0..n)
        .map(|i| {
            let fit = beta[0] + (0..d).map(|j| beta[j + 1] * x[i * d + j]).sum::<f64>();
            (y[i] - fit).powi(2)
        })
        .sum();
    let sigma = params[net.globals_offset()].exp();
    assert!((sigma * sigma - rss / n as f64).abs() <= 1e-6 * rss / n as f64);
}

#[test]
fn l1_prior_zeros_weights_but_not_the_intercept() {
    let (n, d) = (300, 4);
    let x = features(n, d, 9);
    let mut rng = StdRng::seed_from_u64(10);
    // Only the first feature matters; the intercept is large.
    let y: Vec<f64> = (0..n)
        .map(|i| {
            let eta = 2.0 + 1.5 * x[i * d];
            (rng.random::<f64>() < 1.0 / (1.0 + (-eta).exp())) as u8 as f64
        })
        .collect();
    let (net, params) = linear_fit(
        FamilyName::Bernoulli,
        &x,
        &y,
        d,
        Some(Prior::L1 { scale: 0.1 }),
    );
    let l = net.layers()[0];
    assert!(
        params[l.weights] > 0.3,
        "the real effect survives: {params:?}"
    );
    let zeros = (1..d).filter(|&j| params[l.weights + j] == 0.0).count();
    assert!(zeros >= 2, "noise features are exactly zero: {params:?}");
    assert!(
        params[l.bias] > 1.0,
        "the intercept is not penalised: {params:?}"
    );
}

#[test]
fn adamw_step_is_decoupled_weight_decay() {
    // One AdamW step from p0 with gradient g: p1 = p0 (1 - lr wd) - lr * sign(g) (Adam's first
    // step is lr * g / |g|), as torch.optim.AdamW computes it.
    let net = Network::linear(1, FamilyName::Gaussian, 1);
    let x = vec![1.0, 2.0];
    let y = vec![1.0, 3.0];
    let mut params = vec![0.7, -0.2, 0.0];
    let rows = [0usize, 1];
    let (_, g) = net.nll_and_grad(&params, &x, &y, &rows);
    let mut opts = options(ModelOptimizer::Adamw, 3);
    opts.lr = 0.1;
    opts.weight_decay = 0.5;
    opts.batch_size = Some(2);
    let before = params.clone();
    train(&net, &mut params, &x, &y, &opts, |_| {}).unwrap();
    for j in 0..3 {
        let want = before[j] * (1.0 - 0.1 * 0.5)
            - 0.1 * g[j].signum() * (g[j].abs() / 2.0) / (g[j].abs() / 2.0 + 1e-8);
        assert!(
            (params[j] - want).abs() < 1e-9,
            "param {j}: {} vs {want}",
            params[j]
        );
    }
}

#[test]
fn divergence_keeps_the_last_finite_parameters() {
    let net = Network {
        inputs: 2,
        hidden: vec![8],
        activation: Activation::Relu,
        head: Head::new(FamilyName::Poisson, 1, false),
    };
    let x = features(64, 2, 11)
        .iter()
        .map(|v| v * 100.0)
        .collect::<Vec<_>>();
    let y = targets(FamilyName::Poisson, 1, 64, 12);
    let mut params = net.init(1, &y);
    let mut opts = options(ModelOptimizer::Sgd, net.param_count());
    opts.lr = 1e3;
    opts.epochs = 50;
    opts.batch_size = Some(16);
    let report = train(&net, &mut params, &x, &y, &opts, |_| {}).unwrap();
    assert!(
        !report.converged && report.reason.contains("diverged"),
        "{report:?}"
    );
    assert!(params.iter().all(|p| p.is_finite()));
}

fn fit_with(
    family: FamilyName,
    classes: usize,
    x: &[f64],
    y: &[f64],
    d: usize,
    optimizer: ModelOptimizer,
) -> (Network, Vec<f64>, usize) {
    let net = Network::linear(d, family, classes);
    let mut params = net.init(0, y);
    let report = train(
        &net,
        &mut params,
        x,
        y,
        &options(optimizer, net.param_count()),
        |_| {},
    )
    .unwrap();
    assert!(report.converged, "{family:?} {optimizer:?}: {report:?}");
    (net, params, report.steps)
}

#[test]
fn newton_agrees_with_irls_and_lbfgs_in_a_handful_of_steps() {
    let (n, d) = (500, 3);
    let x = features(n, d, 20);
    let mut rng = StdRng::seed_from_u64(21);
    let logistic: Vec<f64> = (0..n)
        .map(|i| {
            let eta = 0.4 + x[i * d] - 0.5 * x[i * d + 2];
            (rng.random::<f64>() < 1.0 / (1.0 + (-eta).exp())) as u8 as f64
        })
        .collect();
    let (net, params, steps) = fit_with(
        FamilyName::Bernoulli,
        1,
        &x,
        &logistic,
        d,
        ModelOptimizer::Newton,
    );
    let want = irls_logistic(&x, &logistic, d);
    let l = net.layers()[0];
    assert!((params[l.bias] - want[0]).abs() <= 1e-8 * want[0].abs());
    for j in 0..d {
        assert!((params[l.weights + j] - want[j + 1]).abs() <= 1e-8 * want[j + 1].abs().max(1e-3));
    }
    assert!(
        steps <= 10,
        "Newton converges in a handful of steps: {steps}"
    );

    let counts: Vec<f64> = (0..n)
        .map(|i| {
            rand_distr::Poisson::new((0.5 + 0.3 * x[i * d]).exp())
                .unwrap()
                .sample(&mut rng)
        })
        .collect();
    // Noisy thresholds, so no class is separable and the MLE exists.
    let classes: Vec<f64> = (0..n)
        .map(|i| {
            let (u, v): (f64, f64) = (rng.random_range(-1.5..1.5), rng.random_range(-1.5..1.5));
            if x[i * d] + u > 0.3 {
                2.0
            } else if x[i * d + 1] + v > 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let gaussian: Vec<f64> = (0..n)
        .map(|i| 1.0 + x[i * d] + 0.1 * rng.random::<f64>())
        .collect();
    for (family, k, y) in [
        (FamilyName::Poisson, 1, &counts),
        (FamilyName::Categorical, 3, &classes),
        (FamilyName::Gaussian, 1, &gaussian),
    ] {
        let (_, newton, steps) = fit_with(family, k, &x, y, d, ModelOptimizer::Newton);
        let (_, lbfgs, _) = fit_with(family, k, &x, y, d, ModelOptimizer::Lbfgs);
        let scale = lbfgs.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (a, b) in newton.iter().zip(&lbfgs) {
            assert!(
                (a - b).abs() <= 1e-5 * scale,
                "{family:?}: newton {a} vs lbfgs {b}"
            );
        }
        assert!(steps <= 25, "{family:?}: {steps} Newton steps");
    }
}

/// The one-output Newton derivatives (blocked, vectorised accumulation) against the network's
/// own NLL and gradient, and the Hessian against finite differences of that gradient, at row
/// counts on either side of the 128-row blocks and with parameter counts below, at and above
/// the four-wide Hessian kernel.
#[test]
fn newton_derivatives_match_the_gradient_and_its_finite_differences() {
    let mut rng = StdRng::seed_from_u64(17);
    for family in [
        FamilyName::Bernoulli,
        FamilyName::Poisson,
        FamilyName::Exponential,
    ] {
        for d in [2, 3, 6] {
            for n in [1, 127, 128, 129, 4097] {
                let net = Network::linear(d, family, 1);
                let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>() - 0.5).collect();
                let y: Vec<f64> = (0..n)
                    .map(|_| match family {
                        FamilyName::Bernoulli => rng.random_range(0..2) as f64,
                        FamilyName::Poisson => rng.random_range(0..5) as f64,
                        _ => rng.random::<f64>() + 0.1,
                    })
                    .collect();
                let params: Vec<f64> = (0..d + 1)
                    .map(|_| 0.5 * rng.random::<f64>() - 0.25)
                    .collect();
                let rows: Vec<usize> = (0..n).collect();
                let (f, g, h) = likely::model::newton::derivatives(&net, &params, &x, &y).unwrap();
                let (f0, g0) = net.nll_and_grad(&params, &x, &y, &rows);
                let scale = f0.abs().max(1.0);
                assert!(
                    (f - f0).abs() <= 1e-12 * scale,
                    "{family:?} d={d} n={n}: {f} vs {f0}"
                );
                for j in 0..=d {
                    assert!(
                        (g[j] - g0[j]).abs() <= 1e-12 * scale,
                        "{family:?} d={d} n={n} g{j}"
                    );
                }
                // H[j][k] = d g_k / d theta_j by central differences.
                let step = 1e-5;
                for j in 0..=d {
                    let mut up = params.clone();
                    up[j] += step;
                    let mut down = params.clone();
                    down[j] -= step;
                    let gu = net.nll_and_grad(&up, &x, &y, &rows).1;
                    let gd = net.nll_and_grad(&down, &x, &y, &rows).1;
                    for k in 0..=d {
                        let fd = (gu[k] - gd[k]) / (2.0 * step);
                        assert!(
                            (h[j * (d + 1) + k] - fd).abs()
                                <= likely::tolerance::FINITE_DIFFERENCE * scale,
                            "{family:?} d={d} n={n} H[{j}][{k}] = {} vs {fd}",
                            h[j * (d + 1) + k]
                        );
                    }
                }
            }
        }
    }
}
