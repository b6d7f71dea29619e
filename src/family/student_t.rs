//! Student's t(mu, sigma, df nu), optimised as (mu, s, v) = (mu, log sigma, log nu).
//!
//! log p(x) = ln Gamma((nu + 1)/2) - ln Gamma(nu/2) - ln(nu pi)/2 - ln sigma
//!            - (nu + 1)/2 ln(1 + r^2 / nu),   r = (x - mu) / sigma.
//! The t has no sufficient statistics: its terms depend on the kernel parameters (mu,
//! 1/sigma, 1/nu). With a = r^2 / nu, b = 1 / (1 + a), c = nu + 1 and the sums
//! T = (sum ln(1 + a), sum r b, sum a b, sum b^2, sum a b^2, sum r b^2, sum r a b^2, and sum r,
//! sum r^2 for the Gaussian limit):
//! NLL = n (s + ln(nu)/2 + ln B(nu/2, 1/2)) - n ln(pi)/2 ... (the constant n ln(pi)/2 aside)
//!       + (c/2) T0, with ln Gamma(nu/2) - ln Gamma((nu+1)/2) = ln B(nu/2, 1/2) - ln(pi)/2;
//! dNLL/dmu = -c T1 / (sigma nu),   dNLL/ds = n - c T2,
//! dNLL/dv = n (1/2 + (nu/2) (psi(nu/2) - psi((nu+1)/2))) + (nu/2) T0 - (c/2) T2,
//! and the Hessian from the same sums (with db/dv = a b^2 and d(a b)/ds = -2 a b^2):
//! H_mumu = c (T3 - T4) / (sigma^2 nu),   H_mus = 2 c T5 / (sigma nu),   H_ss = 2 c T4,
//! H_muv = (T1 - c T6) / (sigma nu),   H_sv = -nu T2 + c T4,
//! H_vv = n ((nu/2) dpsi + (nu^2/4) dpsi') + (nu/2) T0 - nu T2 + (c/2) T4,
//! dpsi = psi(nu/2) - psi((nu+1)/2), dpsi' its trigamma twin. Where nu is large both
//! differences are written so that the terms of size ln nu cancel algebraically (ln B for
//! the log-gammas, digamma minus its logarithm for dpsi), so the NLL stays accurate as nu
//! grows towards the Gaussian limit.
//!
//! As a model head: eta = mu (the location; its mean where nu > 1), with sigma and nu as two
//! globals, the row NLL the same finish over one row's terms.

use super::link::MeanLink;
use super::*;
use crate::special;
use rand::Rng;
use rand_distr::{Distribution, StudentT as StudentTDistribution};

/// The largest |x| the family takes: r^2 stays far inside f64.
const MAX_MAGNITUDE: f64 = 1e100;

/// ln(pi) / 2, each sample's constant part.
const HALF_LN_PI: f64 = 0.572_364_942_924_700_1;

#[derive(Clone, Copy, Debug)]
pub struct StudentT;

/// psi(nu/2) - psi((nu+1)/2) without the cancellation of the two digammas (each about
/// ln(nu/2) for large nu): their parts beyond the logarithm, and ln(nu / (nu + 1)) exactly.
fn digamma_gap(nu: f64) -> f64 {
    special::digamma_minus_ln(0.5 * nu)
        - special::digamma_minus_ln(0.5 * (nu + 1.0))
        - (1.0 / nu).ln_1p()
}

/// trigamma(nu/2) - trigamma((nu+1)/2).
fn trigamma_gap(nu: f64) -> f64 {
    special::trigamma(0.5 * nu) - special::trigamma(0.5 * (nu + 1.0))
}

/// One sample's terms at (mu, 1/sigma, 1/nu): the seven of the NLL and its derivatives, then
/// r and r^2, from which the Gaussian limit's (mu, sigma) follow (see
/// [`Family::boundary_point`]).
#[inline]
fn sample_terms(x: f64, mu: f64, inv_sigma: f64, inv_nu: f64) -> [f64; 9] {
    let r = (x - mu) * inv_sigma;
    let a = r * r * inv_nu;
    let b = 1.0 / (1.0 + a);
    let (ab, bb) = (a * b, b * b);
    [
        a.ln_1p(),
        r * b,
        ab,
        bb,
        ab * b,
        r * bb,
        r * ab * b,
        r,
        r * r,
    ]
}

/// Beyond this df the fit is taken to be heading for the Gaussian limit when the NLL still
/// falls as df grows: a df of 1e5 differs from the Gaussian by 1e-5 nats a sample in its
/// fourth-moment term, which only ~1e10 samples could tell from 0.
const TOWARDS_GAUSSIAN_DF: f64 = 1e5;

/// Whether a fit at theta is heading for the Gaussian limit: df beyond
/// [`TOWARDS_GAUSSIAN_DF`] and the NLL still falling as it grows (its slope in ln df below 0).
fn towards_gaussian(n: f64, sums: &[f64], theta: &[f64]) -> bool {
    theta[2].exp() > TOWARDS_GAUSSIAN_DF && StudentT.finish(n, sums, theta).1[2] < 0.0
}

/// The maximum-likelihood (mu, sigma, nu) of `xs` by the ECME algorithm (Liu and Rubin): mu
/// and sigma^2 as the weighted mean and variance with weights w = (nu + 1) / (nu + r^2), then
/// nu by bisection on its own likelihood equation at them; written apart from the family's
/// term sums, so that tests compare the two.
fn ecme(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let mut mu = xs.iter().sum::<f64>() / n;
    let mut var = xs.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / n;
    let mut nu = 5.0f64;
    for _ in 0..20_000 {
        let weights: Vec<f64> = xs
            .iter()
            .map(|x| (nu + 1.0) / (nu + (x - mu).powi(2) / var))
            .collect();
        let total: f64 = weights.iter().sum();
        let next_mu = xs.iter().zip(&weights).map(|(x, w)| w * x).sum::<f64>() / total;
        let next_var = xs
            .iter()
            .zip(&weights)
            .map(|(x, w)| w * (x - next_mu).powi(2))
            .sum::<f64>()
            / n;
        // The nu-equation at (mu, sigma): d/dnu of the log-likelihood, decreasing in nu.
        let score = |nu: f64| -> f64 {
            let mut s = 0.0;
            for x in xs {
                let q = (x - next_mu).powi(2) / (next_var * nu);
                s += (nu + 1.0) * q / (nu * (1.0 + q)) - q.ln_1p();
            }
            n * (-digamma_gap(nu) - 1.0 / nu) + s
        };
        let (mut lo, mut hi) = (1e-3f64.ln(), 1e8f64.ln());
        let next_nu = if score(hi.exp()) > 0.0 {
            hi.exp()
        } else {
            // 64 halvings of a bracket 25 wide in ln nu: to below 1e-17.
            for _ in 0..64 {
                let mid = 0.5 * (lo + hi);
                if score(mid.exp()) > 0.0 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            (0.5 * (lo + hi)).exp()
        };
        // Steps at the rounding of the sums (a few 1e-15) end it.
        let done = (next_mu - mu).abs() <= 2e-14 * (mu.abs() + var.sqrt())
            && (next_var / var - 1.0).abs() <= 2e-14
            && (next_nu / nu - 1.0).abs() <= 1e-12;
        (mu, var, nu) = (next_mu, next_var, next_nu);
        if done {
            break;
        }
    }
    (mu, var.sqrt(), nu)
}

impl Family for StudentT {
    fn name(&self) -> &'static str {
        "student-t"
    }
    fn n_params(&self) -> usize {
        3
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["mu".into(), "log_sigma".into(), "log_df".into()]
    }
    fn n_terms(&self) -> usize {
        9
    }
    /// (mu, 1/sigma, 1/nu): r = (x - mu) / sigma is `centred` times the second.
    fn kernel_params(&self, theta: &[f64]) -> Vec<f64> {
        vec![theta[0], (-theta[1]).exp(), (-theta[2]).exp()]
    }
    fn support_error(&self, x: f64) -> Option<String> {
        (x.abs() > MAX_MAGNITUDE).then(|| {
            format!("value {x:e} is beyond {MAX_MAGNITUDE:e} (rescale the data), outside the range")
        })
    }
    fn terms(&self, x: f64, kp: &[f64], out: &mut [f64]) {
        out.copy_from_slice(&sample_terms(x, kp[0], kp[1], kp[2]));
    }
    fn accumulate(&self, xs: &[f64], kp: &[f64], acc: &mut [f64]) {
        let (mu, inv_sigma, inv_nu) = (kp[0], kp[1], kp[2]);
        sum_terms(xs, acc, |x| sample_terms(x, mu, inv_sigma, inv_nu));
    }
    fn constant(&self, _x: f64) -> f64 {
        HALF_LN_PI
    }
    fn finish(&self, n: f64, t: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let (s, v) = (theta[1], theta[2]);
        let (sigma, nu) = (s.exp(), v.exp());
        let c = nu + 1.0;
        // ln Gamma(nu/2) - ln Gamma((nu+1)/2) + ln(nu pi)/2, less the constant ln(pi)/2.
        let normaliser = special::ln_beta(0.5 * nu, 0.5) - HALF_LN_PI + 0.5 * v;
        let nll = n * (s + normaliser) + 0.5 * c * t[0];
        let gradient = vec![
            -c * t[1] / (sigma * nu),
            n - c * t[2],
            n * (0.5 + 0.5 * nu * digamma_gap(nu)) + 0.5 * nu * t[0] - 0.5 * c * t[2],
        ];
        (nll, gradient)
    }
    fn hessian(&self, n: f64, t: &[f64], theta: &[f64]) -> Vec<f64> {
        let (sigma, nu) = (theta[1].exp(), theta[2].exp());
        let c = nu + 1.0;
        let mm = c * (t[3] - t[4]) / (sigma * sigma * nu);
        let ms = 2.0 * c * t[5] / (sigma * nu);
        let ss = 2.0 * c * t[4];
        let mv = (t[1] - c * t[6]) / (sigma * nu);
        let sv = -nu * t[2] + c * t[4];
        let vv = n * (0.5 * nu * digamma_gap(nu) + 0.25 * nu * nu * trigamma_gap(nu))
            + 0.5 * nu * t[0]
            - nu * t[2]
            + 0.5 * c * t[4];
        vec![mm, ms, mv, ms, ss, sv, mv, sv, vv]
    }
    fn rescaling(&self) -> Rescaling {
        Rescaling::Location
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Identity, Link::Log, Link::Log]
    }
    /// The per-sample Fisher information of (mu, sigma, nu) (Lange, Little and Taylor 1989):
    /// I_mumu = (nu + 1) / ((nu + 3) sigma^2), mu apart from the others;
    /// I_sigmasigma = 2 nu / ((nu + 3) sigma^2), I_sigmanu = -2 / (sigma (nu + 1) (nu + 3)),
    /// I_nunu = dpsi' / 4 - (nu + 5) / (2 nu (nu + 1) (nu + 3)).
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        let (sigma, nu) = (theta[1].exp(), theta[2].exp());
        let mm = (nu + 1.0) / ((nu + 3.0) * sigma * sigma);
        let ss = 2.0 * nu / ((nu + 3.0) * sigma * sigma);
        let sn = -2.0 / (sigma * (nu + 1.0) * (nu + 3.0));
        let nn = 0.25 * trigamma_gap(nu) - (nu + 5.0) / (2.0 * nu * (nu + 1.0) * (nu + 3.0));
        let det = ss * nn - sn * sn;
        vec![(1.0 / mm).sqrt(), (nn / det).sqrt(), (ss / det).sqrt()]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        let (sigma, nu) = (theta[1].exp(), theta[2].exp());
        let r = (x - theta[0]) / sigma;
        special::ln_gamma(0.5 * (nu + 1.0))
            - special::ln_gamma(0.5 * nu)
            - 0.5 * (nu * std::f64::consts::PI).ln()
            - sigma.ln()
            - 0.5 * (nu + 1.0) * (r * r / nu).ln_1p()
    }
    fn wgsl(&self) -> &'static str {
        include_str!("../../shaders/family/student_t.wgsl")
    }
    /// The midrange, a quarter of the range, and 4 degrees of freedom: the data's units, not
    /// the answer.
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        vec![0.5 * (s.min + s.max), s.spread().ln(), 4f64.ln()]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![
            NamedParam::scalar("mu", theta[0]),
            NamedParam::scalar("sigma", theta[1].exp()),
            NamedParam::scalar("df", theta[2].exp()),
        ]
    }
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        let (mu, sigma, nu) = ecme(xs);
        vec![mu, sigma.ln(), nu.ln()]
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let dist = StudentTDistribution::new(theta[2].exp()).expect("positive df");
        let (mu, sigma) = (theta[0], theta[1].exp());
        (0..n).map(|_| mu + sigma * dist.sample(rng)).collect()
    }
    /// Far from the samples' own parameters but where r^2 = ((x - mu) / sigma)^2 stays inside
    /// f32 for the samples [`Family::random_theta`] draws (sigma of 1e-20 would put it at
    /// 1e40; unlike the Gaussian's d^2, the t's ln(1 + r^2 / nu) cannot take 1 / sigma^2 out
    /// of the sum to apply in f64).
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![
            vec![3.0, (1e-8f64).ln(), 3f64.ln()],
            vec![-3.0, (1e8f64).ln(), 30f64.ln()],
            vec![1e4, 0.0, 0.7f64.ln()],
        ]
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        unbounded_if_constant(s, "sigma -> 0")
    }
    /// Data no heavier-tailed than a Gaussian's put df's MLE at infinity (the Gaussian, the
    /// t's limit): where the fit has taken df past [`TOWARDS_GAUSSIAN_DF`] and the NLL still
    /// falls as it grows, df goes to the boundary depth (the NLL's remaining fall there, about
    /// n |kurtosis - 3| / (4 df), is below the test's tolerance) and (mu, sigma) to the
    /// Gaussian MLE, the mean and the deviation about it from the sums of r and r^2.
    fn boundary_point(&self, n: f64, sums: &[f64], theta: &[f64]) -> Option<Vec<f64>> {
        if !towards_gaussian(n, sums, theta) {
            return None;
        }
        let sigma = theta[1].exp();
        let (mean_r, mean_rr) = (sums[7] / n, sums[8] / n);
        let spread = (mean_rr - mean_r * mean_r).max(0.0).sqrt() * sigma;
        (spread > 0.0).then(|| {
            vec![
                theta[0] + sigma * mean_r,
                spread.ln(),
                theta[2].max(boundary_depth(n)),
            ]
        })
    }
    fn on_boundary(&self, n: f64, _sums: &[f64], theta: &[f64]) -> Vec<bool> {
        vec![false, false, theta[2] >= boundary_depth(n) - 1.0]
    }
    fn boundary_warning(&self, n: f64, sums: &[f64]) -> Option<String> {
        let _ = (n, sums);
        Some(
            "the data are no heavier-tailed than a Gaussian's: df's MLE is infinite (the \
             Gaussian is the t's limit); df is reported at a negligible distance from that \
             limit, without a standard error, and mu and sigma are the Gaussian's MLE (fit \
             --family gaussian)"
                .to_string(),
        )
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    /// df up to 4: beyond, 200k draws pin df down to no better than 1% (its information
    /// falls like 1/df^4), which the sampler's test could not tell from a bias.
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![
            rng.random_range(-10.0..10.0),
            rng.random_range(-1.0..2.0),
            rng.random_range(0.5f64.ln()..4f64.ln()),
        ]
    }
}

/// The head of a t regression: eta = mu, globals (log sigma, log nu).
impl Conditional for StudentT {
    /// Eta is the location mu.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Identity]
    }
    fn global_names(&self) -> &'static [&'static str] {
        &["sigma", "df"]
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
        let theta = [eta[0], globals[0], globals[1]];
        let t = sample_terms(y, eta[0], (-globals[0]).exp(), (-globals[1]).exp());
        let (nll, g) = self.finish(1.0, &t, &theta);
        d_eta[0] = g[0];
        d_globals[0] += g[1];
        d_globals[1] += g[2];
        nll + HALF_LN_PI
    }
    fn hessian(
        &self,
        _: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        let theta = [eta[0], globals[0], globals[1]];
        let t = sample_terms(y, eta[0], (-globals[0]).exp(), (-globals[1]).exp());
        h.copy_from_slice(&Family::hessian(self, 1.0, &t, &theta));
        Ok(())
    }
    /// The location mu (the mean where df > 1, the median always).
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![eta[0]]
    }
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![head::mean(y)]
    }
    /// The log mean absolute deviation for sigma, 4 degrees of freedom.
    fn initial_globals(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        let mean = head::mean(y);
        let spread = y.iter().map(|v| (v - mean).abs()).sum::<f64>() / y.len().max(1) as f64;
        vec![spread.max(1e-8).ln(), 4f64.ln()]
    }
    /// None: the null model's (mu, sigma, nu) solve equations in every target.
    fn null_part(&self, _: &Head, _: &[f64]) -> Option<Vec<f64>> {
        None
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(-3.0..3.0)
    }
    /// None: the GPU network kernels carry one global per head, the t has two.
    fn head_wgsl(&self) -> Option<&'static str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The ECME optimum (written apart from the term sums) zeroes the family's gradient from
    /// the sums, and the NLL from the sums is minus the textbook log-density's sum.
    #[test]
    fn the_ecme_optimum_zeroes_the_gradient_of_the_sums() {
        let mut rng = StdRng::seed_from_u64(5);
        for theta in [
            [1.0, 0.5, 3f64.ln()],
            [-20.0, -2.0, 1.5f64.ln()],
            [0.0, 1.0, 12f64.ln()],
        ] {
            let xs = StudentT.sample(&theta, 4000, &mut rng);
            let mle = StudentT.closed_form_mle(&xs);
            let mut sums = vec![0.0; 9];
            StudentT.accumulate(&xs, &StudentT.kernel_params(&mle), &mut sums);
            let (nll, g) = StudentT.finish(xs.len() as f64, &sums, &mle);
            let scale = xs.len() as f64;
            for (j, gj) in g.iter().enumerate() {
                assert!(gj.abs() < 1e-7 * scale, "{theta:?}: gradient {j} {gj}");
            }
            let textbook: f64 = xs.iter().map(|&x| -StudentT.log_density(x, &mle)).sum();
            let total = nll + scale * HALF_LN_PI;

            assert!(
                (total - textbook).abs() < 1e-10 * textbook.abs(),
                "{total} vs {textbook}"
            );
        }
    }

    /// Far in the Gaussian limit the NLL's normaliser keeps its digits: with its constant it
    /// is the Gaussian's ln(2 pi)/2 up to 1/(4 nu) + O(1/nu^2).
    #[test]
    fn the_normaliser_is_accurate_in_the_gaussian_limit() {
        for nu in [1e8f64, 1e12, 1e15] {
            let (nll, _) = StudentT.finish(1.0, &[0.0; 9], &[0.0, 0.0, nu.ln()]);
            let want = 0.5 * (2.0 * std::f64::consts::PI).ln() + 0.25 / nu;
            let have = nll + HALF_LN_PI;
            assert!((have - want).abs() < 1e-15, "nu {nu}: {have} vs {want}");
        }
    }
}
