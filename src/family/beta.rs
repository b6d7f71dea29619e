//! Beta(alpha a, beta b) on 0 < x < 1, optimised as (log a, log b).
//!
//! log p(x) = (a - 1) ln x + (b - 1) ln(1 - x) - ln B(a, b). With L = sum ln x_i and
//! M = sum ln(1 - x_i) (the sufficient statistics, the kernel's two terms) and c = a + b:
//! NLL = n ln B(a, b) - (a - 1) L - (b - 1) M,
//! dNLL/dlog a = a (n (digamma(a) - digamma(c)) - L),  likewise for b with M,
//! d2/dlog a2 = dNLL/dlog a + a^2 n (trigamma(a) - trigamma(c)),
//! d2/dlog a dlog b = -a b n trigamma(c).
//! ln B is [`special::ln_beta`], without the cancelling terms of size c ln c at large a, b.
//!
//! As a model head (beta regression, as R's betareg and statsmodels' BetaModel): the mean
//! mu = 1 / (1 + e^-eta) (logit link) and a global precision phi, a = mu phi and
//! b = (1 - mu) phi. With G(k) = ln Gamma(k) - k ln k + k ([`special::gamma_normaliser`]),
//! D(k) = digamma(k) - ln k and y* = ln(y / (1 - y)):
//! NLL = G(a) + G(b) - G(phi) - a ln(y / mu) - b ln((1 - y) / (1 - mu)) + ln y + ln(1 - y),
//! dNLL/deta = mu (1 - mu) phi (D(a) - D(b) + eta - y*),
//! dNLL/dlog phi = phi (D(a) mu + D(b) (1 - mu) - D(phi) - mu ln(y / mu)
//!                 - (1 - mu) ln((1 - y) / (1 - mu))),
//! written so that no term of size phi ln phi appears (they cancel algebraically).

use super::link::MeanLink;
use super::*;
use crate::special;
use rand::Rng;
use rand_distr::{Beta as BetaDistribution, Distribution};

#[derive(Clone, Copy, Debug)]
pub struct Beta;

/// ln(1 - x) for x < 1, accurate for x near 0.
fn log_complement(x: f64) -> f64 {
    (-x).ln_1p()
}

/// The maximum-likelihood (a, b) of data with n values, sum ln x = `l` and sum ln(1 - x) =
/// `m` (Newton in (a, b) on the convex NLL, halving steps that would leave a, b > 0 or raise
/// the NLL; from the method of moments' (a, b) at mean and variance from the logs' means).
/// `None` where the NLL has no minimum (the data all equal: Jensen's inequality is tight).
fn mle(n: f64, l: f64, m: f64) -> Option<(f64, f64)> {
    // Geometric means g1 = e^(l/n), g2 = e^(m/n), g1 + g2 <= 1 with equality only for
    // constant data.
    let (g1, g2) = ((l / n).exp(), (m / n).exp());
    let slack = 1.0 - g1 - g2;
    if slack.is_nan() || slack <= 0.0 {
        return None;
    }
    // A start from the approximation digamma(k) ~ ln(k - 1/2): a ~ 1/2 + g1 / (2 slack)
    // (Johnson, Kotz and Balakrishnan's approximate MLE).
    let mut a = 0.5 + 0.5 * g1 / slack;
    let mut b = 0.5 + 0.5 * g2 / slack;
    let nll = |a: f64, b: f64| n * special::ln_beta(a, b) - (a - 1.0) * l - (b - 1.0) * m;
    let mut f = nll(a, b);
    for _ in 0..200 {
        let c = a + b;
        let (dc, tc) = (special::digamma(c), special::trigamma(c));
        let ga = n * (special::digamma(a) - dc) - l;
        let gb = n * (special::digamma(b) - dc) - m;
        let (haa, hbb, hab) = (
            n * (special::trigamma(a) - tc),
            n * (special::trigamma(b) - tc),
            -n * tc,
        );
        let det = haa * hbb - hab * hab;
        if det.is_nan() || det <= 0.0 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        let mut step = 1.0;
        let mut moved = false;
        for _ in 0..60 {
            let (na, nb) = (a - step * da, b - step * db);
            if na > 0.0 && nb > 0.0 {
                let fnew = nll(na, nb);
                if fnew <= f {
                    let done = (na - a).abs() <= 1e-15 * a && (nb - b).abs() <= 1e-15 * b;
                    (a, b, f) = (na, nb, fnew);
                    moved = !done;
                    break;
                }
            }
            step *= 0.5;
        }
        if !moved {
            break;
        }
    }
    Some((a, b))
}

impl Family for Beta {
    fn name(&self) -> &'static str {
        "beta"
    }
    fn n_params(&self) -> usize {
        2
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["log_alpha".into(), "log_beta".into()]
    }
    fn n_terms(&self) -> usize {
        2
    }
    fn support_error(&self, x: f64) -> Option<String> {
        (!(x > 0.0 && x < 1.0)).then(|| format!("value {x} is outside the support (0 < x < 1)"))
    }
    fn terms(&self, x: f64, _kp: &[f64], out: &mut [f64]) {
        out[0] = x.ln();
        out[1] = log_complement(x);
    }
    fn accumulate(&self, xs: &[f64], _kp: &[f64], acc: &mut [f64]) {
        sum_terms(xs, acc, |x| [x.ln(), log_complement(x)]);
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let (a, b) = (theta[0].exp(), theta[1].exp());
        let (l, m) = (sums[0], sums[1]);
        let nll = n * special::ln_beta(a, b) - (a - 1.0) * l - (b - 1.0) * m;
        let dc = special::digamma(a + b);
        (
            nll,
            vec![
                a * (n * (special::digamma(a) - dc) - l),
                b * (n * (special::digamma(b) - dc) - m),
            ],
        )
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let (a, b) = (theta[0].exp(), theta[1].exp());
        let (_, g) = self.finish(n, sums, theta);
        let tc = special::trigamma(a + b);
        let cross = -a * b * n * tc;
        vec![
            g[0] + a * a * n * (special::trigamma(a) - tc),
            cross,
            cross,
            g[1] + b * b * n * (special::trigamma(b) - tc),
        ]
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Log, Link::Log]
    }
    /// The per-sample information in (a, b), [[trigamma(a) - t, -t], [-t, trigamma(b) - t]]
    /// with t = trigamma(a + b), inverted.
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        let (a, b) = (theta[0].exp(), theta[1].exp());
        let t = special::trigamma(a + b);
        let (ia, ib) = (special::trigamma(a) - t, special::trigamma(b) - t);
        let det = ia * ib - t * t;
        vec![(ib / det).sqrt(), (ia / det).sqrt()]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        let (a, b) = (theta[0].exp(), theta[1].exp());
        special::ln_gamma(a + b) - special::ln_gamma(a) - special::ln_gamma(b)
            + (a - 1.0) * x.ln()
            + (b - 1.0) * (1.0 - x).ln()
    }
    fn wgsl(&self) -> &'static str {
        include_str!("../../shaders/family/beta.wgsl")
    }
    /// a = b = 1, the uniform: the support's own scale, not the answer.
    fn initial_theta(&self, _s: &Summary) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![
            NamedParam::scalar("alpha", theta[0].exp()),
            NamedParam::scalar("beta", theta[1].exp()),
        ]
    }
    /// Newton on the two likelihood equations ([`mle`]).
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        match null_mle(xs) {
            Some((a, b)) => vec![a.ln(), b.ln()],
            None => vec![f64::INFINITY, f64::INFINITY],
        }
    }
    /// Draws held inside (0, 1) as f32 represents it (2^-126 to 1 - 2^-24), so that the
    /// f32 kernels see every draw in the support.
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let dist = BetaDistribution::new(theta[0].exp(), theta[1].exp()).expect("positive a, b");
        let (low, high) = (f32::MIN_POSITIVE as f64, 1.0 - f32::EPSILON as f64 / 2.0);
        (0..n).map(|_| dist.sample(rng).clamp(low, high)).collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![
            vec![9.0, 9.0],
            vec![-3.0, -3.0],
            vec![7.0, -2.0],
            vec![-2.0, 7.0],
        ]
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        unbounded_if_constant(s, "alpha and beta grow")
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-1.0..2.5), rng.random_range(-1.0..2.5)]
    }
}

/// ln mu and ln(1 - mu) at mu = 1 / (1 + e^-eta), without overflow or cancellation.
fn log_mean_parts(eta: f64) -> (f64, f64) {
    (-softplus(-eta), -softplus(eta))
}

/// One row of a beta regression at eta and s = ln phi, the parts its NLL and derivatives
/// share (see the module's comment).
struct BetaRow {
    mu: f64,
    phi: f64,
    a: f64,
    b: f64,
    /// ln(y / mu) and ln((1 - y) / (1 - mu)).
    log_ratio: f64,
    log_ratio_other: f64,
    ln_y: f64,
    ln_z: f64,
    /// dNLL/dmu / phi = digamma(a) - digamma(b) - ln(y / (1 - y)).
    residual: f64,
    /// dNLL/dlog phi.
    d_phi: f64,
}

impl BetaRow {
    fn new(eta: f64, s: f64, y: f64) -> BetaRow {
        let phi = s.exp();
        let mu = sigmoid(eta);
        let (a, b) = (mu * phi, (1.0 - mu) * phi);
        let (ln_mu, ln_one_less) = log_mean_parts(eta);
        let (ln_y, ln_z) = (y.ln(), log_complement(y));
        let (log_ratio, log_ratio_other) = (ln_y - ln_mu, ln_z - ln_one_less);
        let (da, db) = (special::digamma_minus_ln(a), special::digamma_minus_ln(b));
        let d_phi = phi
            * (mu * da + (1.0 - mu) * db
                - special::digamma_minus_ln(phi)
                - mu * log_ratio
                - (1.0 - mu) * log_ratio_other);
        BetaRow {
            mu,
            phi,
            a,
            b,
            log_ratio,
            log_ratio_other,
            ln_y,
            ln_z,
            residual: da - db + eta - (ln_y - ln_z),
            d_phi,
        }
    }
}

/// The head of a beta regression: eta = logit mu, global s = ln phi.
impl Conditional for Beta {
    /// Eta is the logit of the mean, as in betareg.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Logit]
    }

    fn global_names(&self) -> &'static [&'static str] {
        &["phi"]
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
        let r = BetaRow::new(eta[0], globals[0], y);
        d_eta[0] = r.mu * (1.0 - r.mu) * r.phi * r.residual;
        d_globals[0] += r.d_phi;
        special::gamma_normaliser(r.a) + special::gamma_normaliser(r.b)
            - special::gamma_normaliser(r.phi)
            - r.a * r.log_ratio
            - r.b * r.log_ratio_other
            + r.ln_y
            + r.ln_z
    }
    fn hessian(
        &self,
        _: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        let BetaRow {
            mu,
            phi,
            a,
            b,
            residual,
            d_phi,
            ..
        } = BetaRow::new(eta[0], globals[0], y);
        let (ta, tb) = (special::trigamma(a), special::trigamma(b));
        let w = mu * (1.0 - mu);
        h[0] = w * (1.0 - 2.0 * mu) * phi * residual + w * w * phi * phi * (ta + tb);
        let cross = w * (phi * residual + phi * phi * (mu * ta - (1.0 - mu) * tb));
        h[1] = cross;
        h[2] = cross;
        h[3] = d_phi
            + phi * phi * (mu * mu * ta + (1.0 - mu) * (1.0 - mu) * tb - special::trigamma(phi));
        Ok(())
    }
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![sigmoid(eta[0])]
    }
    /// logit of the intercept-only MLE's mean a / (a + b), or of the targets' mean where
    /// they are all equal.
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        let mean = match null_mle(y) {
            Some((a, b)) => a / (a + b),
            None => head::mean(y),
        };
        vec![head::finite_or_zero((mean / (1.0 - mean)).ln())]
    }
    /// ln phi = ln(a + b) of the intercept-only MLE, or ln 1 where the targets are all equal.
    fn initial_globals(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![null_mle(y).map_or(0.0, |(a, b)| (a + b).ln())]
    }
    /// [rows, sum ln y, sum ln(1 - y)].
    fn null_part(&self, _: &Head, y: &[f64]) -> Option<Vec<f64>> {
        Some(vec![
            y.len() as f64,
            y.iter().map(|v| v.ln()).sum(),
            y.iter().map(|&v| log_complement(v)).sum(),
        ])
    }
    /// The beta family's MLE of the targets; no deviance (statsmodels' BetaModel reports
    /// none).
    fn null_model(&self, _: &Head, part: &[f64]) -> NullModel {
        let (n, l, m) = (part[0], part[1], part[2]);
        let loglik = match mle(n, l, m) {
            Some((a, b)) => -(n * special::ln_beta(a, b) - (a - 1.0) * l - (b - 1.0) * m),
            None => f64::INFINITY,
        };
        NullModel {
            loglik,
            deviance: None,
        }
    }
    /// (log a, log b) = (ln mu + ln phi, ln(1 - mu) + ln phi).
    fn family_theta(&self, _: &Head, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        let (ln_mu, ln_one_less) = log_mean_parts(eta[0]);
        vec![ln_mu + globals[0], ln_one_less + globals[0]]
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(0.02..0.98)
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/beta.wgsl"))
    }
}

/// The beta family's MLE (a, b) of targets `y`.
fn null_mle(y: &[f64]) -> Option<(f64, f64)> {
    mle(
        y.len() as f64,
        y.iter().map(|v| v.ln()).sum(),
        y.iter().map(|&v| log_complement(v)).sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MLE solves both likelihood equations to rounding, from data drawn far from the
    /// uniform (a, b of 0.3 and of 300).
    #[test]
    fn the_mle_solves_its_likelihood_equations() {
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(5);
        for theta in [[0.3f64.ln(), 0.6f64.ln()], [300f64.ln(), 120f64.ln()]] {
            let xs = Beta.sample(&theta, 4000, &mut rng);
            let t = Beta.closed_form_mle(&xs);
            let n = xs.len() as f64;
            let sums = [
                xs.iter().map(|x| x.ln()).sum::<f64>(),
                xs.iter().map(|&x| log_complement(x)).sum::<f64>(),
            ];
            let (_, g) = Beta.finish(n, &sums, &t);
            let scale = t[0].exp() * sums[0].abs() + t[1].exp() * sums[1].abs();
            assert!(
                g.iter().all(|v| v.abs() <= 1e-12 * scale),
                "{theta:?}: {t:?} {g:?}"
            );
        }
        assert!(mle(3.0, 3.0 * 0.2f64.ln(), 3.0 * 0.8f64.ln()).is_none());
    }
}
