//! Lognormal(mu, sigma): ln x ~ N(mu, sigma^2), optimised as (mu, log sigma).
//!
//! log p(x) = -ln x - ln sigma - ln(2 pi)/2 - (ln x - mu)^2 / (2 sigma^2). With l = ln x,
//! d = l - mu, L = sum l, S1 = sum d, S2 = sum d^2 (the kernel's three terms):
//! NLL = L + n (log sigma + ln(2 pi)/2) + S2 / (2 sigma^2),
//! dNLL/dmu = -S1 / sigma^2,   dNLL/dlog sigma = n - S2 / sigma^2,
//! the Gaussian's on ln x plus the Jacobian L. L stays in the terms, not in the samples'
//! parameter-free constant: the engines' re-expression x' = x s (see [`SampleMap`]) changes
//! it, and the constant is summed over the samples as they are.
//!
//! As a model head: eta = mu (the mean of ln y), the global log sigma; `predict` reports the
//! mean of y, e^(mu + sigma^2 / 2).

use super::gaussian::Gaussian;
use super::link::MeanLink;
use super::*;
use rand::Rng;
use rand_distr::{Distribution, LogNormal as LogNormalDistribution};

#[derive(Clone, Copy, Debug)]
pub struct Lognormal;

/// The logs of positive targets.
fn logs(y: &[f64]) -> Vec<f64> {
    y.iter().map(|v| v.ln()).collect()
}

impl Family for Lognormal {
    fn name(&self) -> &'static str {
        "lognormal"
    }
    fn n_params(&self) -> usize {
        2
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["mu".into(), "log_sigma".into()]
    }
    fn n_terms(&self) -> usize {
        3
    }
    fn kernel_params(&self, theta: &[f64]) -> Vec<f64> {
        vec![theta[0]]
    }
    fn support_error(&self, x: f64) -> Option<String> {
        positive_support_error(x)
    }
    fn terms(&self, x: f64, kp: &[f64], out: &mut [f64]) {
        let l = x.ln();
        let d = l - kp[0];
        out[0] = l;
        out[1] = d;
        out[2] = d * d;
    }
    fn accumulate(&self, xs: &[f64], kp: &[f64], acc: &mut [f64]) {
        let mu = kp[0];
        sum_terms(xs, acc, |x| {
            let l = x.ln();
            let d = l - mu;
            [l, d, d * d]
        });
    }
    /// The Gaussian's of (d, d^2), plus the Jacobian's L.
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let (nll, grad) = Gaussian.finish(n, &sums[1..], theta);
        (nll + sums[0], grad)
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        Family::hessian(&Gaussian, n, &sums[1..], theta)
    }
    fn censorable(&self) -> bool {
        true
    }
    /// The Gaussian's of ln x: S(x) = P(ln X > ln x).
    fn censored_nll(&self, x: f64, theta: &[f64], out: &mut [f64]) {
        super::gaussian::normal_censored_nll(x.ln(), theta, out);
    }
    fn rescaling(&self) -> Rescaling {
        Rescaling::LogLocation
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Identity, Link::Log]
    }
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        Gaussian.crlb_sd(theta)
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        let l = x.ln();
        let z = (l - theta[0]) * (-theta[1]).exp();
        -l - theta[1] - HALF_LN_2PI - 0.5 * z * z
    }
    fn wgsl(&self) -> &'static str {
        include_str!("../../shaders/family/lognormal.wgsl")
    }
    /// The log midrange and half the log range: the data's units, not the answer.
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        let (low, high) = (s.min.ln(), s.max.ln());
        let half = 0.5 * (high - low);
        vec![
            head::finite_or_zero(0.5 * low + 0.5 * high),
            if half > 0.0 && half.is_finite() {
                half.ln()
            } else {
                0.0
            },
        ]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![
            NamedParam::scalar("mu", theta[0]),
            NamedParam::scalar("sigma", theta[1].exp()),
        ]
    }
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        Gaussian.closed_form_mle(&logs(xs))
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let dist = LogNormalDistribution::new(theta[0], theta[1].exp()).expect("finite sigma");
        (0..n).map(|_| dist.sample(rng)).collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![
            vec![3.0, (1e-20f64).ln()],
            vec![-3.0, (1e20f64).ln()],
            vec![600.0, 0.0],
            vec![-600.0, 3.0],
        ]
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        unbounded_if_constant(s, "sigma -> 0")
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-5.0..5.0), rng.random_range(-2.0..1.0)]
    }
}

/// The head of a lognormal regression: eta = mu, the mean of ln y; the global log sigma. A
/// row's NLL is the Gaussian head's at ln y plus ln y.
impl Conditional for Lognormal {
    /// Eta is the mean of ln y.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Identity]
    }

    fn global_names(&self) -> &'static [&'static str] {
        &["sigma"]
    }
    fn nll(
        &self,
        head: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        d_eta: &mut [f64],
        d_globals: &mut [f64],
    ) -> f64 {
        let l = y.ln();
        Conditional::nll(&Gaussian, head, eta, globals, l, d_eta, d_globals) + l
    }
    fn hessian(
        &self,
        head: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        Conditional::hessian(&Gaussian, head, eta, globals, y.ln(), h)
    }
    /// The mean of y, e^(mu + sigma^2 / 2).
    fn predict(&self, _: &Head, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        vec![(eta[0] + 0.5 * (2.0 * globals[0]).exp()).exp()]
    }
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![head::finite_or_zero(head::mean(&logs(y)))]
    }
    /// The intercept-only model's log sigma: half the log of the mean squared deviation of
    /// ln y (its MLE), or 0 where the targets are all equal.
    fn initial_globals(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        let l = logs(y);
        let m = head::mean(&l);
        let msd = l.iter().map(|v| (v - m).powi(2)).sum::<f64>() / l.len().max(1) as f64;
        vec![if msd > 0.0 && msd.is_finite() {
            0.5 * msd.ln()
        } else {
            0.0
        }]
    }
    /// None: the lognormal is not an exponential-dispersion family of y (statsmodels' GLM has
    /// no lognormal); the Gaussian's deviance of ln y is a least-squares fit of the logs.
    fn unit_deviance(&self, _: &Head, _: &[f64], _: f64) -> Option<f64> {
        None
    }
    fn variance(&self, _: f64) -> Option<f64> {
        None
    }
    /// The Gaussian's statistics of ln y, then sum ln y.
    fn null_part(&self, head: &Head, y: &[f64]) -> Option<Vec<f64>> {
        let l = logs(y);
        let mut part = Conditional::null_part(&Gaussian, head, &l)?;
        part.push(l.iter().sum());
        Some(part)
    }
    fn merge_null_parts(&self, into: &mut Vec<f64>, later: &[f64]) {
        let last = into.len() - 1;
        let log_total = into[last] + later[last];
        into.truncate(last);
        Gaussian.merge_null_parts(into, &later[..last]);
        into.push(log_total);
    }
    /// The Gaussian null model of ln y, less sum ln y (the Jacobian); no deviance.
    fn null_model(&self, head: &Head, part: &[f64]) -> NullModel {
        let last = part.len() - 1;
        let gaussian = Conditional::null_model(&Gaussian, head, &part[..last]);
        NullModel {
            loglik: gaussian.loglik - part[last],
            deviance: None,
        }
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(0.1..5.0)
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/lognormal.wgsl"))
    }
}
