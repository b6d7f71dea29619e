//! Bernoulli(p), optimised as eta = logit p.
//!
//! NLL_i = softplus(eta) - x_i eta, so the only sample-dependent term is x_i:
//! NLL = n softplus(eta) - eta S,  dNLL/deta = n sigmoid(eta) - S,  S = sum x_i.

use super::link::MeanLink;
use super::*;
use rand::Rng;

#[derive(Clone, Copy, Debug)]
pub struct Bernoulli;

impl Family for Bernoulli {
    fn name(&self) -> &'static str {
        "bernoulli"
    }
    fn n_params(&self) -> usize {
        1
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["logit_p".into()]
    }
    sum_of_x_terms!();
    fn support_error(&self, x: f64) -> Option<String> {
        (x != 0.0 && x != 1.0).then(|| format!("value {x} is outside the support (0 or 1)"))
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let eta = theta[0];
        let nll = n * softplus(eta) - eta * sums[0];
        (nll, vec![n * sigmoid(eta) - sums[0]])
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let p = sigmoid(theta[0]);
        let _ = sums;
        vec![n * p * (1.0 - p)]
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Logit]
    }
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        let p = sigmoid(theta[0]);
        vec![(p * (1.0 - p)).sqrt()]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        // log p = x log sigmoid(eta) + (1 - x) log sigmoid(-eta)
        let eta = theta[0];
        -(x * softplus(-eta) + (1.0 - x) * softplus(eta))
    }
    fn initial_theta(&self, _s: &Summary) -> Vec<f64> {
        vec![0.0]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![NamedParam::scalar("p", sigmoid(theta[0]))]
    }
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        let p = xs.iter().sum::<f64>() / xs.len() as f64;
        vec![(p / (1.0 - p)).ln()]
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let p = sigmoid(theta[0]);
        (0..n)
            .map(|_| if rng.random::<f64>() < p { 1.0 } else { 0.0 })
            .collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![vec![1e4], vec![-1e4]]
    }
    /// All 0 or all 1: the logit goes to -/+ infinity.
    fn boundary_point(&self, n: f64, sums: &[f64], theta: &[f64]) -> Option<Vec<f64>> {
        let depth = boundary_depth(n);
        if sums[0] == 0.0 {
            Some(vec![theta[0].min(-depth)])
        } else if sums[0] == n {
            Some(vec![theta[0].max(depth)])
        } else {
            None
        }
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        (s.min == s.max).then(|| {
            Degenerate::Boundary(format!(
                "every observation is {}: the MLE is p = {} (logit infinite)",
                s.min, s.min
            ))
        })
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-3.0..3.0)]
    }
}

/// The logistic head: eta = logit p.
impl Conditional for Bernoulli {
    /// Eta is the logit of P(y = 1); probit and cloglog as binomial GLMs take them.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Logit, MeanLink::Probit, MeanLink::Cloglog]
    }

    fn is_classifier(&self) -> bool {
        true
    }
    fn nll(
        &self,
        _: &Head,
        eta: &[f64],
        _: &[f64],
        y: f64,
        d_eta: &mut [f64],
        _: &mut [f64],
    ) -> f64 {
        let (softplus, sigmoid) = softplus_and_sigmoid(eta[0]);
        d_eta[0] = sigmoid - y;
        softplus - y * eta[0]
    }
    fn hessian(
        &self,
        _: &Head,
        eta: &[f64],
        _: &[f64],
        _: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        let p = sigmoid(eta[0]);
        h[0] = p * (1.0 - p);
        Ok(())
    }
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![sigmoid(eta[0])]
    }
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        let mean = head::mean(y);
        if mean > 0.0 && mean < 1.0 {
            vec![(mean / (1.0 - mean)).ln()]
        } else {
            vec![0.0]
        }
    }
    /// -2 (y ln mu + (1 - y) ln(1 - mu)): the saturated model's log-likelihood is 0.
    fn unit_deviance(&self, _: &Head, mean: &[f64], y: f64) -> Option<f64> {
        Some(2.0 * (head::x_log_x_over(y, mean[0]) + head::x_log_x_over(1.0 - y, 1.0 - mean[0])))
    }
    fn variance(&self, mean: f64) -> Option<f64> {
        Some(mean * (1.0 - mean))
    }
    /// [rows, ones].
    fn null_part(&self, _: &Head, y: &[f64]) -> Option<Vec<f64>> {
        Some(vec![y.len() as f64, y.iter().sum()])
    }
    /// p = ones / n: ones ln p + zeros ln(1 - p); the deviance is -2 times it.
    fn null_model(&self, _: &Head, part: &[f64]) -> NullModel {
        let (n, ones) = (part[0], part[1]);
        let loglik = head::x_log_x_over(ones, n) + head::x_log_x_over(n - ones, n);
        NullModel {
            loglik,
            deviance: Some(-2.0 * loglik),
        }
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(0..2) as f64
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/bernoulli.wgsl"))
    }
    fn head64_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head64/bernoulli.wgsl"))
    }
}
