//! Gaussian(mu, sigma), optimised as (mu, log sigma).
//!
//! With d_i = x_i - mu, S1 = sum d_i, S2 = sum d_i^2:
//! NLL = n (log sigma + ln(2 pi)/2) + S2 / (2 sigma^2)
//! dNLL/dmu = -S1 / sigma^2,   dNLL/dlog sigma = n - S2 / sigma^2.
//! The kernel reduces (d, d^2), never d / sigma, so sigma = 1e-20 cannot overflow f32.

use super::link::MeanLink;
use super::*;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// The largest |x| the Gaussian takes: n x^2 stays far inside f64 for any n.
const MAX_MAGNITUDE: f64 = 1e100;

#[derive(Clone, Copy, Debug)]
pub struct Gaussian;

/// -ln S(x) = -ln Phi(-z) at z = (x - mu) / sigma, in theta = (mu, log sigma), with its
/// gradient and Hessian: f(z) = -ln Phi(-z) has f' = m = phi(z) / Phi(-z) (the inverse Mills
/// ratio at -z) and f'' = m (m - z); dz/dmu = -1/sigma, dz/dlog sigma = -z, and z's second
/// derivatives are 0 (mu twice), 1/sigma (mu, log sigma) and z (log sigma twice). (Far
/// above mu, m - z ~ 1/z cancels: at z = 1e4 the curvature keeps 8 digits.)
pub(crate) fn normal_censored_nll(x: f64, theta: &[f64], out: &mut [f64]) {
    let inv_sigma = (-theta[1]).exp();
    let z = (x - theta[0]) * inv_sigma;
    let m = crate::special::normal_mills_ratio(-z);
    let curvature = m * (m - z);
    let cross = curvature * z + m;
    out[0] = -crate::special::ln_normal_cdf(-z);
    out[1] = -m * inv_sigma;
    out[2] = -m * z;
    out[3] = curvature * inv_sigma * inv_sigma;
    out[4] = cross * inv_sigma;
    out[5] = cross * inv_sigma;
    out[6] = z * cross;
}

impl Family for Gaussian {
    fn name(&self) -> &'static str {
        "gaussian"
    }
    fn n_params(&self) -> usize {
        2
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["mu".into(), "log_sigma".into()]
    }
    fn n_terms(&self) -> usize {
        2
    }
    fn kernel_params(&self, theta: &[f64]) -> Vec<f64> {
        vec![theta[0]]
    }
    fn support_error(&self, x: f64) -> Option<String> {
        // Squares of larger values, summed, can overflow f64 (NaN likelihoods): rescale.
        (x.abs() > MAX_MAGNITUDE).then(|| {
            format!("value {x:e} is beyond {MAX_MAGNITUDE:e} (sums of squares would overflow: rescale the data), outside the range")
        })
    }
    fn terms(&self, x: f64, kp: &[f64], out: &mut [f64]) {
        let d = x - kp[0];
        out[0] = d;
        out[1] = d * d;
    }
    fn accumulate(&self, xs: &[f64], kp: &[f64], acc: &mut [f64]) {
        let mu = kp[0];
        sum_terms(xs, acc, |x| {
            let d = x - mu;
            [d, d * d]
        });
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let log_sigma = theta[1];
        let inv_var = (-2.0 * log_sigma).exp();
        let nll = n * (log_sigma + HALF_LN_2PI) + 0.5 * sums[1] * inv_var;
        (nll, vec![-sums[0] * inv_var, n - sums[1] * inv_var])
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let w = (-2.0 * theta[1]).exp();
        vec![
            n * w,
            2.0 * sums[0] * w,
            2.0 * sums[0] * w,
            2.0 * sums[1] * w,
        ]
    }
    fn censorable(&self) -> bool {
        true
    }
    fn censored_nll(&self, x: f64, theta: &[f64], out: &mut [f64]) {
        normal_censored_nll(x, theta, out);
    }
    fn rescaling(&self) -> Rescaling {
        Rescaling::Location
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Identity, Link::Log]
    }
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        let sigma = theta[1].exp();
        vec![sigma, sigma / 2f64.sqrt()]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        let z = (x - theta[0]) * (-theta[1]).exp();
        -theta[1] - HALF_LN_2PI - 0.5 * z * z
    }
    fn wgsl(&self) -> &'static str {
        include_str!("../../shaders/family/gaussian.wgsl")
    }
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        vec![0.5 * (s.min + s.max), s.spread().ln()]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![
            NamedParam::scalar("mu", theta[0]),
            NamedParam::scalar("sigma", theta[1].exp()),
        ]
    }
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        vec![mean, 0.5 * var.ln()]
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let dist = Normal::new(theta[0], theta[1].exp()).expect("finite sigma");
        (0..n).map(|_| dist.sample(rng)).collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![
            vec![3.0, (1e-20f64).ln()],
            vec![-3.0, (1e20f64).ln()],
            vec![1e4, 0.0],
        ]
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        unbounded_if_constant(s, "sigma -> 0")
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-10.0..10.0), rng.random_range(-1.0..2.0)]
    }
}

/// The head of a least-squares model: eta = mu, the global log sigma.
impl Conditional for Gaussian {
    /// Eta is the mean.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Identity, MeanLink::Log]
    }

    fn global_names(&self) -> &'static [&'static str] {
        &["sigma"]
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
        // NLL = log sigma + ln(2 pi)/2 + (y - mu)^2 / (2 sigma^2)
        let inv_var = (-2.0 * globals[0]).exp();
        let r = y - eta[0];
        // sigma = 0 (an exact fit): a row on the fit adds log sigma only.
        let (scaled, square) = if r == 0.0 {
            (0.0, 0.0)
        } else {
            (r * inv_var, r * r * inv_var)
        };
        d_eta[0] = -scaled;
        d_globals[0] += 1.0 - square;
        globals[0] + HALF_LN_2PI + 0.5 * square
    }
    fn hessian(
        &self,
        _: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        // NLL = s + (y - mu)^2 e^{-2s} / 2 + const, with r = y - mu.
        let w = (-2.0 * globals[0]).exp();
        let r = y - eta[0];
        h[0] = w;
        h[1] = 2.0 * r * w;
        h[2] = 2.0 * r * w;
        h[3] = 2.0 * r * r * w;
        Ok(())
    }
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![eta[0]]
    }
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![head::finite_or_zero(head::mean(y))]
    }
    /// (y - mu)^2, as statsmodels' GLM: the deviance is the residual sum of squares.
    fn unit_deviance(&self, _: &Head, mean: &[f64], y: f64) -> Option<f64> {
        Some((y - mean[0]).powi(2))
    }
    fn variance(&self, _: f64) -> Option<f64> {
        Some(1.0)
    }
    /// [rows, mean as hi + lo, sum of squared deviations from it]: each slice's from its own
    /// mean (two passes, no cancellation however large the mean), the mean carried in two
    /// doubles so that the difference of two slices' means, which the merge squares, keeps
    /// its digits where the means are far larger than the spread.
    fn null_part(&self, _: &Head, y: &[f64]) -> Option<Vec<f64>> {
        let hi = head::mean(y);
        let lo = y.iter().map(|v| v - hi).sum::<f64>() / y.len().max(1) as f64;
        let squares = y.iter().map(|v| ((v - hi) - lo).powi(2)).sum();
        Some(vec![y.len() as f64, hi, lo, squares])
    }
    /// Chan, Golub and LeVeque's update: the squares about the merged mean.
    fn merge_null_parts(&self, into: &mut Vec<f64>, later: &[f64]) {
        let (n_a, n_b) = (into[0], later[0]);
        let n = n_a + n_b;
        if n_b == 0.0 {
            return;
        }
        if n_a == 0.0 {
            // As they are: hi + lo rounded to one double would lose lo.
            into.copy_from_slice(later);
            return;
        }
        // The means' difference: hi - hi is exact for close means (Sterbenz).
        let delta = (later[1] - into[1]) + (later[2] - into[2]);
        let step = delta * (n_b / n);
        // hi + step as a sum of two doubles (Knuth's two-sum), its error added to lo.
        let hi = into[1] + step;
        let back = hi - into[1];
        let error = (into[1] - (hi - back)) + (step - back);
        into[1] = hi;
        into[2] += error;
        into[3] += later[3] + delta * delta * (n_a * n_b / n);
        into[0] = n;
    }
    /// mu = the mean, sigma^2 = the mean squared deviation: -n (ln(2 pi sigma^2) + 1) / 2;
    /// the deviance (as statsmodels' GLM) the sum of squares.
    fn null_model(&self, _: &Head, part: &[f64]) -> NullModel {
        let (n, squares) = (part[0], part[3]);
        NullModel {
            loglik: -n * (HALF_LN_2PI + 0.5 * (squares / n).ln() + 0.5),
            deviance: Some(squares),
        }
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(-2.0..2.0)
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/gaussian.wgsl"))
    }
}
