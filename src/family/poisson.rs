//! Poisson(lambda), optimised as eta = log lambda.
//!
//! NLL_i = lambda - x_i eta + log x_i!, so with S = sum x_i:
//! NLL = n lambda - eta S + sum log x_i!,  dNLL/deta = n lambda - S.
//! The log x_i! are parameter-free: summed once in f64 (the engine's constant).

use super::link::MeanLink;
use super::*;
use rand::Rng;
use rand_distr::{Distribution, Poisson as PoissonDist};

#[derive(Clone, Copy, Debug)]
pub struct Poisson;

/// Largest count accepted: f32 represents every integer up to 2^24 exactly.
const MAX_COUNT: f64 = 16_777_216.0;

impl Family for Poisson {
    fn name(&self) -> &'static str {
        "poisson"
    }
    fn n_params(&self) -> usize {
        1
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["log_lambda".into()]
    }
    sum_of_x_terms!();
    fn support_error(&self, x: f64) -> Option<String> {
        integer_in(x, 0.0, MAX_COUNT, "counts 0, 1, 2, ... up to 2^24")
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let eta = theta[0];
        let lambda = eta.exp();
        (n * lambda - eta * sums[0], vec![n * lambda - sums[0]])
    }
    fn constant(&self, x: f64) -> f64 {
        libm::lgamma(x + 1.0)
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let _ = sums;
        vec![n * theta[0].exp()]
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Log]
    }
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        vec![theta[0].exp().sqrt()]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        x * theta[0] - theta[0].exp() - libm::lgamma(x + 1.0)
    }
    /// The log of the midrange (at least 1/2): the data's scale, not the answer (log mean).
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        vec![(0.5 * s.min + 0.5 * s.max).max(0.5).ln()]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![NamedParam::scalar("lambda", theta[0].exp())]
    }
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        vec![(xs.iter().sum::<f64>() / xs.len() as f64).ln()]
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let dist = PoissonDist::new(theta[0].exp()).expect("positive rate");
        (0..n).map(|_| dist.sample(rng)).collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![vec![40.0], vec![-40.0]]
    }
    /// All counts 0: log lambda goes to -infinity.
    fn boundary_point(&self, n: f64, sums: &[f64], theta: &[f64]) -> Option<Vec<f64>> {
        (sums[0] == 0.0).then(|| vec![theta[0].min(-boundary_depth(n))])
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        (s.max == 0.0).then(|| {
            Degenerate::Boundary(
                "every count is 0: the MLE is lambda = 0 (log lambda infinite)".into(),
            )
        })
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-1.0..3.0)]
    }
}

/// The log-linear head: eta = log rate.
impl Conditional for Poisson {
    /// Eta is the log mean.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Log, MeanLink::Identity]
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
        let rate = eta[0].exp();
        d_eta[0] = rate - y;
        rate - y * eta[0] + libm::lgamma(y + 1.0)
    }
    fn hessian(
        &self,
        _: &Head,
        eta: &[f64],
        _: &[f64],
        _: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        h[0] = eta[0].exp();
        Ok(())
    }
    /// e^eta, which the slope e^eta - y already holds.
    fn curvature(&self, _: &Head, _: f64, y: f64, slope: f64) -> Result<f64, String> {
        Ok(slope + y)
    }
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![eta[0].exp()]
    }
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![head::finite_or_zero(head::mean(y).ln())]
    }
    /// 2 (y ln(y / mu) - (y - mu)).
    fn unit_deviance(&self, _: &Head, mean: &[f64], y: f64) -> Option<f64> {
        Some(2.0 * (head::x_log_x_over(y, mean[0]) - (y - mean[0])))
    }
    fn variance(&self, mean: f64) -> Option<f64> {
        Some(mean)
    }
    /// [rows, sum y, sum ln y!, sum y ln y].
    fn null_part(&self, _: &Head, y: &[f64]) -> Option<Vec<f64>> {
        let mut part = vec![y.len() as f64, 0.0, 0.0, 0.0];
        for &v in y {
            part[1] += v;
            part[2] += libm::lgamma(v + 1.0);
            part[3] += head::x_log_x_over(v, 1.0);
        }
        Some(part)
    }
    /// lambda = the mean: sum y ln lambda - n lambda - sum ln y! (sum y ln lambda is 0 where
    /// every count is); the deviance 2 sum (y ln(y / lambda) - (y - lambda)).
    fn null_model(&self, _: &Head, part: &[f64]) -> NullModel {
        let (n, total, log_factorials, y_log_y) = (part[0], part[1], part[2], part[3]);
        let total_log_lambda = head::x_log_x_over(total, n);
        NullModel {
            loglik: total_log_lambda - total - log_factorials,
            deviance: Some(2.0 * (y_log_y - total_log_lambda)),
        }
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(0..6) as f64
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/poisson.wgsl"))
    }
    fn head64_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head64/poisson.wgsl"))
    }
}
