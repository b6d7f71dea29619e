//! Gamma(shape k, rate beta), optimised as (log k, log beta).
//!
//! log p(x) = k ln beta + (k - 1) ln x - beta x - ln Gamma(k). With L = sum ln x_i and
//! S = sum x_i (the sufficient statistics, the kernel's two terms):
//! NLL = n (ln Gamma(k) - k ln beta) - (k - 1) L + beta S,
//! dNLL/dlog k = k (n (digamma(k) - ln beta) - L),   dNLL/dlog beta = beta S - n k,
//! where digamma(k) - ln beta = (digamma(k) - ln k) + (log k - log beta) keeps its digits at
//! large shapes (digamma(k) - ln k ~ -1/(2k)). The sum of ln x stays in the terms, not in the
//! samples' parameter-free constant: the engines' re-expression x' = x s (see
//! [`SampleMap`]) changes it, and the constant is summed over the samples as they are.
//!
//! As a model head (log link): eta = ln mu, mu = k / beta the mean, the shape a global. With
//! t = ln y - eta (so y / mu = e^t):
//! NLL = [ln Gamma(k) - k ln k + k] + k (e^t - 1 - t) + ln y,
//! both brackets written without their large cancelling parts ([`special::gamma_normaliser`],
//! and e^t - 1 - t from expm1 and `log1pmx`), so that a row's NLL and its derivative in the
//! shape keep their digits at shapes of 1e6 (a residual of a part in 1e3).

use super::link::MeanLink;
use super::*;
use crate::special;
use rand::Rng;
use rand_distr::{Distribution, Gamma as GammaDistribution};

#[derive(Clone, Copy, Debug)]
pub struct Gamma;

/// e^t - 1 - t without cancellation at small t: with u = e^t - 1 (expm1),
/// u - ln(1 + u) = -log1pmx(u), accurate relative to itself (~t^2 / 2).
pub(crate) fn expm1_minus(t: f64) -> f64 {
    let u = t.exp_m1();
    if u.is_infinite() {
        return u;
    }
    -special::log1pmx(u)
}

/// The maximum-likelihood shape of positive data with n values, sum `total` and sum of logs
/// `sum_log`: ln k - digamma(k) = ln(mean) - mean(ln x).
fn shape_mle(n: f64, total: f64, sum_log: f64) -> f64 {
    let log_ratio = ((total / n).ln() - sum_log / n).max(0.0);
    special::gamma_shape_from_log_ratio(log_ratio)
}

impl Family for Gamma {
    fn name(&self) -> &'static str {
        "gamma"
    }
    fn n_params(&self) -> usize {
        2
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["log_shape".into(), "log_rate".into()]
    }
    fn n_terms(&self) -> usize {
        2
    }
    fn support_error(&self, x: f64) -> Option<String> {
        positive_support_error(x)
    }
    fn terms(&self, x: f64, _kp: &[f64], out: &mut [f64]) {
        out[0] = x.ln();
        out[1] = x;
    }
    fn accumulate(&self, xs: &[f64], _kp: &[f64], acc: &mut [f64]) {
        sum_terms(xs, acc, |x| [x.ln(), x]);
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let (k, rate) = (theta[0].exp(), theta[1].exp());
        let (sum_log, total) = (sums[0], sums[1]);
        let nll = n * (special::ln_gamma(k) - k * theta[1]) - (k - 1.0) * sum_log + rate * total;
        let digamma_less_log_rate = special::digamma_minus_ln(k) + (theta[0] - theta[1]);
        let d_shape = k * (n * digamma_less_log_rate - sum_log);
        (nll, vec![d_shape, rate * total - n * k])
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let (k, rate) = (theta[0].exp(), theta[1].exp());
        let digamma_less_log_rate = special::digamma_minus_ln(k) + (theta[0] - theta[1]);
        let d_shape = k * (n * digamma_less_log_rate - sums[0]);
        let shape_shape = d_shape + n * k * k * special::trigamma(k);
        vec![shape_shape, -n * k, -n * k, rate * sums[1]]
    }
    fn rescaling(&self) -> Rescaling {
        Rescaling::Rate
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Log, Link::Log]
    }
    /// The per-sample information in (log k, log beta) is [[k^2 trigamma(k), -k], [-k, k]];
    /// its inverse, mapped to (k, beta), has variances 1 / (k (k trigamma(k) - 1)) k^2 and
    /// trigamma(k) / (k trigamma(k) - 1) beta^2.
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        let (k, rate) = (theta[0].exp(), theta[1].exp());
        let excess = k * special::trigamma(k) - 1.0;
        vec![
            k * (1.0 / (k * excess)).sqrt(),
            rate * (special::trigamma(k) / excess).sqrt(),
        ]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        let (k, rate) = (theta[0].exp(), theta[1].exp());
        k * theta[1] + (k - 1.0) * x.ln() - rate * x - special::ln_gamma(k)
    }
    /// Shape 1 and the rate of the midrange: the data's units, not the answer.
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        vec![0.0, log_rate_of_midrange(s)]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![
            NamedParam::scalar("shape", theta[0].exp()),
            NamedParam::scalar("rate", theta[1].exp()),
        ]
    }
    /// The shape from its one-dimensional equation (to rounding), the rate k / mean.
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        let n = xs.len() as f64;
        let total: f64 = xs.iter().sum();
        let sum_log: f64 = xs.iter().map(|x| x.ln()).sum();
        let k = shape_mle(n, total, sum_log);
        vec![k.ln(), k.ln() - (total / n).ln()]
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let dist = GammaDistribution::new(theta[0].exp(), (-theta[1]).exp())
            .expect("positive shape and scale");
        (0..n).map(|_| dist.sample(rng)).collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![
            vec![-7.0, 40.0],
            vec![14.0, -40.0],
            vec![18.0, 0.0],
            vec![-7.0, -40.0],
        ]
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        unbounded_if_constant(s, "the shape grows")
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-0.7..3.0), rng.random_range(-2.0..2.0)]
    }
    fn wgsl(&self) -> &'static str {
        include_str!("../../shaders/family/gamma.wgsl")
    }
}

/// The head of a gamma regression with a log link: eta = ln mu, global s = ln k.
impl Conditional for Gamma {
    /// Eta is the log mean; the inverse is the canonical link of GLMs.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Log, MeanLink::Inverse, MeanLink::Identity]
    }

    fn global_names(&self) -> &'static [&'static str] {
        &["shape"]
    }
    fn nll(
        &self,
        _: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        d_eta: &mut [f64],
        d_globals: &mut [f64],
    ) -> f64 {
        let k = globals[0].exp();
        let ln_y = y.ln();
        let t = ln_y - eta[0];
        let excess = expm1_minus(t);
        d_eta[0] = -k * t.exp_m1();
        d_globals[0] += k * (special::digamma_minus_ln(k) + excess);
        special::gamma_normaliser(k) + k * excess + ln_y
    }
    fn hessian(
        &self,
        _: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        let k = globals[0].exp();
        let t = y.ln() - eta[0];
        let ratio = t.exp();
        let d_shape = k * (special::digamma_minus_ln(k) + expm1_minus(t));
        h[0] = k * ratio;
        h[1] = -k * t.exp_m1();
        h[2] = h[1];
        h[3] = d_shape + k * (k * special::trigamma(k) - 1.0);
        Ok(())
    }
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![eta[0].exp()]
    }
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![head::finite_or_zero(head::mean(y).ln())]
    }
    /// The intercept-only model's shape (its MLE for these targets), or 1 where the targets
    /// are all equal.
    fn initial_globals(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        let n = y.len() as f64;
        let k = shape_mle(n, y.iter().sum(), y.iter().map(|v| v.ln()).sum());
        vec![if k.is_finite() && k > 0.0 {
            k.ln()
        } else {
            0.0
        }]
    }
    /// 2 ((y - mu) / mu - ln(y / mu)), as statsmodels' Gamma GLM (at scale 1).
    fn unit_deviance(&self, _: &Head, mean: &[f64], y: f64) -> Option<f64> {
        let mu = mean[0];
        Some(2.0 * ((y - mu) / mu - (y / mu).ln()))
    }
    fn variance(&self, mean: f64) -> Option<f64> {
        Some(mean * mean)
    }
    /// [rows, sum y, sum ln y].
    fn null_part(&self, _: &Head, y: &[f64]) -> Option<Vec<f64>> {
        Some(vec![
            y.len() as f64,
            y.iter().sum(),
            y.iter().map(|v| v.ln()).sum(),
        ])
    }
    /// mu = the mean m and the shape's MLE k: the log-likelihood
    /// -(n [ln Gamma(k) - k ln k + k] + n k ln m - (k - 1) sum ln y); the deviance, free of k,
    /// 2 (n ln m - sum ln y).
    fn null_model(&self, _: &Head, part: &[f64]) -> NullModel {
        let (n, total, sum_log) = (part[0], part[1], part[2]);
        let log_mean = (total / n).ln();
        let k = shape_mle(n, total, sum_log);
        let loglik = if k.is_finite() {
            -(n * special::gamma_normaliser(k) + k * (n * log_mean - sum_log) + sum_log)
        } else {
            f64::INFINITY
        };
        NullModel {
            loglik,
            deviance: Some(2.0 * (n * log_mean - sum_log)),
        }
    }
    /// mu = the mean m (its MLE at any shape) at the held shape k: the log-likelihood as in
    /// [`Conditional::null_model`], the deviance the same.
    fn null_model_at(&self, _: &Head, part: &[f64], globals: &[f64]) -> Option<NullModel> {
        let (n, total, sum_log) = (part[0], part[1], part[2]);
        let log_mean = (total / n).ln();
        let k = globals[0].exp();
        Some(NullModel {
            loglik: -(n * special::gamma_normaliser(k) + k * (n * log_mean - sum_log) + sum_log),
            deviance: Some(2.0 * (n * log_mean - sum_log)),
        })
    }
    /// (log k, log beta) with beta = k / mu.
    fn family_theta(&self, _: &Head, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        vec![globals[0], globals[0] - eta[0]]
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(0.1..3.0)
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/gamma.wgsl"))
    }
}
