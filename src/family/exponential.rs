//! Exponential(rate), optimised as eta = log rate.
//!
//! NLL_i = rate x_i - eta, so with S = sum x_i:
//! NLL = e^eta S - n eta,  dNLL/deta = e^eta S - n.

use super::gamma::Gamma;
use super::link::MeanLink;
use super::*;
use rand::Rng;
use rand_distr::{Distribution, Exp};

#[derive(Clone, Copy, Debug)]
pub struct Exponential;

impl Family for Exponential {
    fn name(&self) -> &'static str {
        "exponential"
    }
    fn n_params(&self) -> usize {
        1
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["log_rate".into()]
    }
    sum_of_x_terms!();
    fn support_error(&self, x: f64) -> Option<String> {
        (x < 0.0).then(|| format!("value {x} is outside the support (x >= 0)"))
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let rate = theta[0].exp();
        (rate * sums[0] - n * theta[0], vec![rate * sums[0] - n])
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let _ = n;
        vec![theta[0].exp() * sums[0]]
    }
    fn censorable(&self) -> bool {
        true
    }
    /// S(x) = e^(-rate x): -ln S = e^eta x, and so are its derivatives in eta.
    fn censored_nll(&self, x: f64, theta: &[f64], out: &mut [f64]) {
        out.fill(theta[0].exp() * x);
    }
    fn rescaling(&self) -> Rescaling {
        Rescaling::Rate
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Log]
    }
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        vec![theta[0].exp()]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        theta[0] - theta[0].exp() * x
    }
    /// The rate of the midrange: the data's units, not the answer (1 / mean).
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        let mid = 0.5 * s.min + 0.5 * s.max;
        vec![if mid > 0.0 && mid.is_finite() {
            -mid.ln()
        } else {
            0.0
        }]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![NamedParam::scalar("rate", theta[0].exp())]
    }
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        vec![(xs.len() as f64 / xs.iter().sum::<f64>()).ln()]
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let dist = Exp::new(theta[0].exp()).expect("positive rate");
        (0..n).map(|_| dist.sample(rng)).collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![vec![40.0], vec![-40.0]]
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        (s.max == 0.0).then(|| {
            Degenerate::Unbounded(
                "every value is 0: the likelihood grows without bound as the rate grows".into(),
            )
        })
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-2.0..2.0)]
    }
}

/// The head of an exponential regression: eta = log rate, NLL = rate y - eta.
impl Conditional for Exponential {
    /// Eta is the log rate (minus the log mean).
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Log]
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
        d_eta[0] = rate * y - 1.0;
        rate * y - eta[0]
    }
    fn hessian(
        &self,
        _: &Head,
        eta: &[f64],
        _: &[f64],
        y: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        h[0] = eta[0].exp() * y;
        Ok(())
    }
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![(-eta[0]).exp()]
    }
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![head::finite_or_zero(-head::mean(y).ln())]
    }
    /// The gamma family's, 2 ((y - mu) / mu - ln(y / mu)), as an exponential model is a gamma
    /// GLM of shape 1.
    fn unit_deviance(&self, head: &Head, mean: &[f64], y: f64) -> Option<f64> {
        Gamma.unit_deviance(head, mean, y)
    }
    fn variance(&self, mean: f64) -> Option<f64> {
        Gamma.variance(mean)
    }
    /// The gamma's: [rows, sum y, sum ln y].
    fn null_part(&self, head: &Head, y: &[f64]) -> Option<Vec<f64>> {
        Conditional::null_part(&Gamma, head, y)
    }
    /// rate = 1 / mean: -n (ln mean + 1); the deviance 2 sum ((y - mean) / mean - ln(y / mean))
    /// = 2 (n ln mean - sum ln y).
    fn null_model(&self, _: &Head, part: &[f64]) -> NullModel {
        let (n, total, sum_log) = (part[0], part[1], part[2]);
        let log_mean = (total / n).ln();
        NullModel {
            loglik: -n * (log_mean + 1.0),
            deviance: Some(2.0 * (n * log_mean - sum_log)),
        }
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(0.1..3.0)
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/exponential.wgsl"))
    }
    fn head64_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head64/exponential.wgsl"))
    }
}
