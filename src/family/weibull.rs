//! Weibull(shape k, scale lambda), optimised as (a, c) = (log k, log lambda) (the engines'
//! re-expression x' = x s then shifts c by ln s: see [`Rescaling::Scale`]).
//!
//! log p(x) = ln k - k ln lambda + (k - 1) ln x - (x / lambda)^k. The Weibull has no
//! sufficient statistics: its terms depend on (k, lambda), the kernel parameters. With
//! u = ln(x / lambda) and z = e^(k u) = (x / lambda)^k per sample, and the sums U, Z, ZU, ZUU
//! of u, z, z u, z u^2:
//! NLL = -n (a - c) - (k - 1) U + Z,
//! dNLL/da = -n - k U + k ZU,   dNLL/dc = k (n - Z),
//! d2/da2 = -k U + k ZU + k^2 ZUU,   d2/da dc = k (n - Z) - k^2 ZU,   d2/dc2 = k^2 Z.
//!
//! As a model head (the scale through a log link, as an accelerated-failure-time model):
//! eta = ln lambda, the shape a global, t = ln y - eta and z = e^(k t):
//! NLL = -ln k - k t + ln y + z; `predict` reports the mean lambda Gamma(1 + 1/k).

use super::link::MeanLink;
use super::*;
use crate::special;
use rand::Rng;
use rand_distr::{Distribution, Weibull as WeibullDistribution};

#[derive(Clone, Copy, Debug)]
pub struct Weibull;

/// The maximum-likelihood shape and rate of positive samples: k solves the profile equation
/// g(k) = sum z ln x / sum z - 1/k - mean(ln x) = 0 (z = x^k; g increases from -inf to
/// max ln x - mean(ln x) > 0, so the root is unique for data not all equal), by Newton in
/// ln k safeguarded by bisection; then beta = (n / sum x^k)^(1/k). The samples are divided
/// by their largest first, so that x^k cannot overflow.
fn shape_and_rate_mle(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let top = xs.iter().cloned().fold(0.0, f64::max);
    let logs: Vec<f64> = xs.iter().map(|x| (x / top).ln()).collect();
    let mean_log = logs.iter().sum::<f64>() / n;
    // g(k) and k g'(k) (the derivative in ln k).
    let equation = |k: f64| -> (f64, f64) {
        let (mut z, mut zl, mut zll) = (0.0, 0.0, 0.0);
        for &l in &logs {
            let w = (k * l).exp();
            z += w;
            zl += w * l;
            zll += w * l * l;
        }
        let ratio = zl / z;
        let g = ratio - 1.0 / k - mean_log;
        (g, k * (1.0 / (k * k) + zll / z - ratio * ratio))
    };
    let (mut low, mut high) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut log_k = 0.0f64;
    for _ in 0..200 {
        let k = log_k.exp();
        let (g, slope) = equation(k);
        if g == 0.0 {
            break;
        }
        if g < 0.0 {
            low = log_k;
        } else {
            high = log_k;
        }
        let mut next = log_k - g / slope;
        if !(next > low && next < high && next.is_finite()) {
            next = match (low.is_finite(), high.is_finite()) {
                (true, true) => 0.5 * (low + high),
                (true, false) => low + 1.0,
                _ => high - 1.0,
            };
        }
        if (next - log_k).abs() <= 1e-15 * log_k.abs().max(1.0) {
            log_k = next;
            break;
        }
        log_k = next;
    }
    let k = log_k.exp();
    let z: f64 = logs.iter().map(|l| (k * l).exp()).sum();
    // beta x_max = (n / z)^(1/k).
    let log_rate = (n.ln() - z.ln()) / k - top.ln();
    (k, log_rate)
}

impl Family for Weibull {
    fn name(&self) -> &'static str {
        "weibull"
    }
    fn n_params(&self) -> usize {
        2
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["log_shape".into(), "log_scale".into()]
    }
    fn n_terms(&self) -> usize {
        4
    }
    /// (k, log lambda): u = ln x - log lambda is then the snippets' `centred`.
    fn kernel_params(&self, theta: &[f64]) -> Vec<f64> {
        vec![theta[0].exp(), theta[1]]
    }
    fn support_error(&self, x: f64) -> Option<String> {
        positive_support_error(x)
    }
    fn terms(&self, x: f64, kp: &[f64], out: &mut [f64]) {
        let u = x.ln() - kp[1];
        let z = (kp[0] * u).exp();
        out[0] = u;
        out[1] = z;
        out[2] = z * u;
        out[3] = z * u * u;
    }
    fn accumulate(&self, xs: &[f64], kp: &[f64], acc: &mut [f64]) {
        let (k, shift) = (kp[0], kp[1]);
        sum_terms(xs, acc, |x| {
            let u = x.ln() - shift;
            let z = (k * u).exp();
            [u, z, z * u, z * u * u]
        });
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let k = theta[0].exp();
        let (u, z, zu) = (sums[0], sums[1], sums[2]);
        let nll = -n * (theta[0] - theta[1]) - (k - 1.0) * u + z;
        (nll, vec![-n - k * u + k * zu, k * (n - z)])
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let k = theta[0].exp();
        let (u, z, zu, zuu) = (sums[0], sums[1], sums[2], sums[3]);
        let cross = k * (n - z) - k * k * zu;
        vec![-k * u + k * zu + k * k * zuu, cross, cross, k * k * z]
    }
    fn censorable(&self) -> bool {
        true
    }
    /// S(x) = e^(-z), z = (x / lambda)^k = e^(k u), u = ln x - c: -ln S = z, with
    /// dz/da = k u z, dz/dc = -k z, d2z/da2 = k u z + k^2 u^2 z, d2z/da dc = -k z - k^2 u z,
    /// d2z/dc2 = k^2 z (the z parts of the observed sums' formulas above).
    fn censored_nll(&self, x: f64, theta: &[f64], out: &mut [f64]) {
        let k = theta[0].exp();
        let u = x.ln() - theta[1];
        let z = (k * u).exp();
        let cross = -k * z - k * k * u * z;
        out[0] = z;
        out[1] = k * u * z;
        out[2] = -k * z;
        out[3] = k * u * z + k * k * u * u * z;
        out[4] = cross;
        out[5] = cross;
        out[6] = k * k * z;
    }
    fn rescaling(&self) -> Rescaling {
        Rescaling::Scale
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Log, Link::Log]
    }
    /// The per-sample information in (a, c) = (log k, log lambda): with v = ln z (z =
    /// (x / lambda)^k is Exp(1)), E[z v] = psi(2) and E[z v^2] = psi'(2) + psi(2)^2, so
    /// I = [[1 + psi'(2) + psi(2)^2, -k psi(2)], [-k psi(2), k^2]]; its inverse gives the
    /// bounds of log k and log lambda.
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        let k = theta[0].exp();
        let psi2 = 1.0 - 0.577_215_664_901_532_9;
        let trigamma2 = std::f64::consts::PI.powi(2) / 6.0 - 1.0;
        let (aa, ac, cc) = (1.0 + trigamma2 + psi2 * psi2, -k * psi2, k * k);
        let det = aa * cc - ac * ac;
        let lambda = theta[1].exp();
        vec![k * (cc / det).sqrt(), lambda * (aa / det).sqrt()]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        let k = theta[0].exp();
        let u = x.ln() - theta[1];
        theta[0] - theta[1] + (k - 1.0) * u - (k * u).exp()
    }
    fn wgsl(&self) -> &'static str {
        include_str!("../../shaders/family/weibull.wgsl")
    }
    /// Shape 1 (the exponential) and the scale of the midrange: the data's units, not the
    /// answer.
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        vec![0.0, -log_rate_of_midrange(s)]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![
            NamedParam::scalar("shape", theta[0].exp()),
            NamedParam::scalar("scale", theta[1].exp()),
        ]
    }
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        let (k, log_rate) = shape_and_rate_mle(xs);
        vec![k.ln(), -log_rate]
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let dist = WeibullDistribution::new(theta[1].exp(), theta[0].exp())
            .expect("positive scale and shape");
        (0..n).map(|_| dist.sample(rng)).collect()
    }
    /// Far from the samples' own parameters but where (x / lambda)^k stays inside f32 for the
    /// samples [`Family::random_theta`] draws: the f32 kernel's z = e^(k u) overflows past
    /// e^88 (the CPU's f64 past e^709).
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![
            vec![(0.02f64).ln(), -30.0],
            vec![(20.0f64).ln(), 8.0],
            vec![(0.01f64).ln(), 30.0],
        ]
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        unbounded_if_constant(s, "the shape grows")
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-0.5..1.5), rng.random_range(-2.0..2.0)]
    }
}

/// The head of a Weibull regression: eta = ln lambda (the log scale), global s = ln k.
impl Conditional for Weibull {
    /// Eta is the log scale, as in survreg.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Log]
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
        let z = (k * t).exp();
        d_eta[0] = k * (1.0 - z);
        d_globals[0] += -1.0 + k * t * (z - 1.0);
        -globals[0] - k * t + ln_y + z
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
        let z = (k * t).exp();
        h[0] = k * k * z;
        h[1] = k * (1.0 - z) - k * k * t * z;
        h[2] = h[1];
        h[3] = k * t * (z - 1.0) + k * k * t * t * z;
        Ok(())
    }
    /// The mean lambda Gamma(1 + 1/k).
    fn predict(&self, _: &Head, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        let k = globals[0].exp();
        vec![(eta[0] + special::ln_gamma(1.0 + 1.0 / k)).exp()]
    }
    /// The log mean: the scale at shape 1.
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![head::finite_or_zero(head::mean(y).ln())]
    }
    /// Shape 1 (the exponential).
    fn initial_globals(&self, _: &Head, _: &[f64]) -> Vec<f64> {
        vec![0.0]
    }
    /// None: the null model's shape solves an equation in sum y^k, which no fixed statistics
    /// of slices give.
    fn null_part(&self, _: &Head, _: &[f64]) -> Option<Vec<f64>> {
        None
    }
    /// (log k, log lambda).
    fn family_theta(&self, _: &Head, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        vec![globals[0], eta[0]]
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(0.1..3.0)
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/weibull.wgsl"))
    }
}
