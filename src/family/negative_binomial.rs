//! Negative binomial NB2(mean mu, dispersion alpha), Var = mu + alpha mu^2, optimised as
//! (m, a) = (log mu, log alpha), as R's glm.nb and statsmodels' NegativeBinomial (whose theta is
//! our 1/alpha). With r = 1/alpha and q = alpha mu:
//! log p(y) = ln Gamma(y + r) - ln Gamma(r) - ln y! + r ln(r / (r + mu)) + y ln(mu / (r + mu))
//!          = L(y, alpha) + y (m - ln(1 + q)) - r ln(1 + q) - ln y!,
//! L = ln Gamma(y + r) - ln Gamma(r) - y ln r = sum_{j<y} ln(1 + j alpha)
//! ([`special::rising_log_terms`], with its derivatives L', L'' in a). The family has no
//! sufficient statistics: its terms (y, y^2, L, L', L'') are taken at the kernel parameter
//! alpha. With Y, Y2 and SL, SL', SL'' their sums and s = q / (1 + q):
//! NLL = -SL - Y m + (Y + n r) ln(1 + q),
//! dNLL/dm = (n mu - Y) / (1 + q),   dNLL/da = -SL' + Y s - n r (ln(1 + q) - s),
//! d2/dm2 = (n mu + Y q) / (1 + q)^2,   d2/dm da = q (Y - n mu) / (1 + q)^2,
//! d2/da2 = -SL'' + n r (ln(1 + q) - s) + q (Y - n mu) / (1 + q)^2,
//! with ln(1 + q) - s = log1pmx(q) + q^2 / (1 + q), which keeps its digits as alpha goes to 0
//! (where it is ~q^2 / 2 and the family tends to the Poisson). The mean's MLE is the sample
//! mean whatever alpha (the cross derivative vanishes there); alpha's MLE is positive exactly
//! when the counts are overdispersed, their variance (divisor n) above their mean (Aragon,
//! Eberly and Eberly, 1992), and 0, the Poisson, otherwise.
//!
//! As a model head (log link): eta = ln mu, alpha a global, the same row likelihood.

use super::link::MeanLink;
use super::*;
use crate::special::{self, log1pmx, rising_log_terms};
use rand::Rng;
use rand_distr::{Distribution, Gamma as GammaDistribution, Poisson as PoissonDistribution};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
pub struct NegativeBinomial;

/// Largest count accepted: f32 represents every integer up to 2^24 exactly.
const MAX_COUNT: f64 = 16_777_216.0;

/// ln(1 + q) - q / (1 + q) for q >= 0, from its cancellation-free forms on either side of 1.
fn log1p_less_share(q: f64) -> f64 {
    if q < 1.0 {
        log1pmx(q) + q * q / (1.0 + q)
    } else {
        q.ln_1p() - q / (1.0 + q)
    }
}

/// The counts' variance (divisor n) exceeds their mean: alpha's MLE is positive.
fn overdispersed(n: f64, total: f64, total_squares: f64) -> bool {
    // n sum y^2 - (sum y)^2 > n sum y, in f64 (exact for the integer sums of up to 2^53).
    n * total_squares - total * total > n * total
}

/// The log-likelihood of counts at mu = their mean and log alpha `a`; `None`: alpha = 0, the
/// Poisson's at the mean (the limit).
fn null_loglik(counts: &BTreeMap<u64, f64>, a: Option<f64>) -> f64 {
    let (n, total, _) = moments(counts);
    let log_factorials: f64 = counts
        .iter()
        .map(|(&c, &f)| f * libm::lgamma(c as f64 + 1.0))
        .sum();
    match a {
        Some(a) => -(profile_in_log_alpha(counts, n, total, a)[0] + log_factorials),
        None => {
            let log_mean_part = if total > 0.0 {
                total * (total / n).ln()
            } else {
                0.0
            };
            log_mean_part - total - log_factorials
        }
    }
}

/// The (count, frequency) pairs of a null part back as a histogram.
fn pairs(part: &[f64]) -> BTreeMap<u64, f64> {
    part.chunks_exact(2).map(|p| (p[0] as u64, p[1])).collect()
}

/// The NLL of a sample of counts in a = log alpha at mu = the mean, and its first two
/// derivatives, from the counts' frequencies (one evaluation per distinct count).
fn profile_in_log_alpha(counts: &BTreeMap<u64, f64>, n: f64, total: f64, a: f64) -> [f64; 3] {
    let alpha = a.exp();
    let mu = total / n;
    let q = alpha * mu;
    let (mut sl, mut sl1, mut sl2) = (0.0, 0.0, 0.0);
    for (&y, &f) in counts {
        let [l, l1, l2] = rising_log_terms(y as f64, alpha);
        sl += f * l;
        sl1 += f * l1;
        sl2 += f * l2;
    }
    let share = q / (1.0 + q);
    let nll = -sl - total * mu.ln() + (total + n / alpha) * q.ln_1p();
    let grad = -sl1 + total * share - n / alpha * log1p_less_share(q);
    let curvature = -sl2 + n / alpha * log1p_less_share(q);
    [nll, grad, curvature]
}

/// log alpha's MLE for counts `ys` (mu at their mean), or `None` where the counts are not
/// overdispersed (the MLE is alpha = 0). The profile NLL in a falls to its one minimum and
/// then rises, so Newton in a, safeguarded by bisection once the minimum is bracketed, finds
/// it to rounding.
pub(crate) fn log_alpha_mle(ys: &[f64]) -> Option<f64> {
    log_alpha_mle_of(&histogram(ys))
}

/// The frequency of each count in `ys`.
fn histogram(ys: &[f64]) -> BTreeMap<u64, f64> {
    let mut counts: BTreeMap<u64, f64> = BTreeMap::new();
    for &y in ys {
        *counts.entry(y as u64).or_default() += 1.0;
    }
    counts
}

/// Rows, sum y and sum y^2 of a histogram of counts.
fn moments(counts: &BTreeMap<u64, f64>) -> (f64, f64, f64) {
    counts.iter().fold((0.0, 0.0, 0.0), |(n, t, s), (&y, &f)| {
        let y = y as f64;
        (n + f, t + f * y, s + f * y * y)
    })
}

/// [`log_alpha_mle`] from the counts' frequencies.
fn log_alpha_mle_of(counts: &BTreeMap<u64, f64>) -> Option<f64> {
    let (n, total, total_squares) = moments(counts);
    if !overdispersed(n, total, total_squares) {
        return None;
    }
    // The method of moments' alpha starts Newton.
    let mean = total / n;
    let variance = total_squares / n - mean * mean;
    let mut a = ((variance - mean) / (mean * mean)).ln();
    let (mut low, mut high) = (f64::NEG_INFINITY, f64::INFINITY);
    for _ in 0..200 {
        let [_, g, h] = profile_in_log_alpha(counts, n, total, a);
        if g == 0.0 {
            break;
        }
        if g < 0.0 {
            low = a;
        } else {
            high = a;
        }
        let mut next = if h > 0.0 { a - g / h } else { f64::NAN };
        if !(next > low && next < high) {
            next = match (low.is_finite(), high.is_finite()) {
                (true, true) => 0.5 * (low + high),
                (true, false) => low + 1.0,
                _ => high - 1.0,
            };
        }
        let done = (next - a).abs() <= 1e-15 * a.abs().max(1.0);
        a = next;
        if done {
            break;
        }
    }
    Some(a)
}

impl Family for NegativeBinomial {
    fn name(&self) -> &'static str {
        "negative-binomial"
    }
    fn n_params(&self) -> usize {
        2
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["log_mu".into(), "log_alpha".into()]
    }
    fn n_terms(&self) -> usize {
        5
    }
    /// alpha, at which the count-dispersion parts are taken.
    fn kernel_params(&self, theta: &[f64]) -> Vec<f64> {
        vec![theta[1].exp()]
    }
    fn support_error(&self, x: f64) -> Option<String> {
        integer_in(x, 0.0, MAX_COUNT, "counts 0, 1, 2, ... up to 2^24")
    }
    fn terms(&self, x: f64, kp: &[f64], out: &mut [f64]) {
        let [l, l1, l2] = rising_log_terms(x, kp[0]);
        out.copy_from_slice(&[x, x * x, l, l1, l2]);
    }
    fn accumulate(&self, xs: &[f64], kp: &[f64], acc: &mut [f64]) {
        let alpha = kp[0];
        sum_terms(xs, acc, |x| {
            let [l, l1, l2] = rising_log_terms(x, alpha);
            [x, x * x, l, l1, l2]
        });
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let (mu, r, q) = (
            theta[0].exp(),
            (-theta[1]).exp(),
            (theta[0] + theta[1]).exp(),
        );
        let (total, sl, sl1) = (sums[0], sums[2], sums[3]);
        let share = q / (1.0 + q);
        let nll = -sl - total * theta[0] + (total + n * r) * q.ln_1p();
        let d_mean = (n * mu - total) / (1.0 + q);
        let d_alpha = -sl1 + total * share - n * r * log1p_less_share(q);
        (nll, vec![d_mean, d_alpha])
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let (mu, r, q) = (
            theta[0].exp(),
            (-theta[1]).exp(),
            (theta[0] + theta[1]).exp(),
        );
        let (total, sl2) = (sums[0], sums[4]);
        let square = (1.0 + q) * (1.0 + q);
        let cross = q * (total - n * mu) / square;
        vec![
            (n * mu + total * q) / square,
            cross,
            cross,
            -sl2 + n * r * log1p_less_share(q) + cross,
        ]
    }
    fn constant(&self, x: f64) -> f64 {
        libm::lgamma(x + 1.0)
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Log, Link::Log]
    }
    /// mu and alpha are orthogonal: sqrt(mu + alpha mu^2) for mu, and alpha / sqrt(I_aa) with
    /// I_aa = r (ln(1 + q) - s) - E[L''(y)], the expectation summed over the pmf (its terms
    /// P(y) by the ratio of successive probabilities) until the tail holds under 1e-17.
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        let (mu, alpha) = (theta[0].exp(), theta[1].exp());
        let (r, q) = (1.0 / alpha, alpha * mu);
        let mut p = (-r * q.ln_1p()).exp(); // P(0) = (r / (r + mu))^r
        let mut mass = 0.0;
        let mut expected = 0.0;
        let mut y = 0.0;
        while 1.0 - mass > 1e-17 && y < 1e8 {
            mass += p;
            expected += p * rising_log_terms(y, alpha)[2];
            // P(y + 1) / P(y) = (y + r) / (y + 1) * mu / (r + mu).
            p *= (y + r) / (y + 1.0) * (q / (1.0 + q));
            y += 1.0;
            if p == 0.0 && y > mu {
                break;
            }
        }
        let information = r * log1p_less_share(q) - expected;
        vec![(mu + alpha * mu * mu).sqrt(), alpha / information.sqrt()]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        let (mu, r) = (theta[0].exp(), (-theta[1]).exp());
        special::ln_gamma(x + r) - special::ln_gamma(r) - libm::lgamma(x + 1.0)
            + r * (r / (r + mu)).ln()
            + x * (mu / (r + mu)).ln()
    }
    /// The direct sums' 63 iterations, or above them the recurrence's 10, ln(1 + u) - u's
    /// series' 29 and Stirling's 10 (shaders/family/negative_binomial_parts.wgsl).
    fn kernel_loop_iterations(&self) -> u32 {
        64
    }
    fn wgsl(&self) -> &'static str {
        concat!(
            include_str!("../../shaders/family/negative_binomial_parts.wgsl"),
            include_str!("../../shaders/family/negative_binomial.wgsl")
        )
    }
    /// The log of the midrange (at least 1/2) and alpha = 1: the data's scale, not the answer.
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        vec![(0.5 * s.min + 0.5 * s.max).max(0.5).ln(), 0.0]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![
            NamedParam::scalar("mu", theta[0].exp()),
            NamedParam::scalar("alpha", theta[1].exp()),
        ]
    }
    /// The mean, and alpha from its profile equation (-infinity where the counts are not
    /// overdispersed).
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        vec![mean.ln(), log_alpha_mle(xs).unwrap_or(f64::NEG_INFINITY)]
    }
    /// The gamma-Poisson mixture: lambda ~ Gamma(r, mu / r), y ~ Poisson(lambda).
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let (mu, r) = (theta[0].exp(), (-theta[1]).exp());
        let rates = GammaDistribution::new(r, mu / r).expect("positive shape and scale");
        (0..n)
            .map(|_| {
                let lambda = rates.sample(rng);
                if lambda > 0.0 {
                    PoissonDistribution::new(lambda)
                        .map(|d| d.sample(rng).min(MAX_COUNT))
                        .unwrap_or(MAX_COUNT)
                } else {
                    0.0
                }
            })
            .collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![
            vec![12.0, -16.0],
            vec![-12.0, 6.0],
            vec![8.0, 4.0],
            vec![-8.0, -16.0],
        ]
    }
    /// All counts equal: not overdispersed, so alpha's MLE is 0 (and mu's is 0 too where the
    /// counts are all 0).
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        (s.min == s.max).then(|| {
            Degenerate::Boundary(format!(
                "every count is {}: the counts are not overdispersed, so the MLE is alpha = 0 (the Poisson; log alpha infinite)",
                s.min
            ))
        })
    }
    /// log alpha far out where the counts are not overdispersed (the NLL then rises from
    /// alpha = 0 with slope at most n mu / 2, so the depth grows by ln mu), and log mu where
    /// every count is 0.
    fn boundary_point(&self, n: f64, sums: &[f64], theta: &[f64]) -> Option<Vec<f64>> {
        let (total, squares) = (sums[0], sums[1]);
        if overdispersed(n, total, squares) {
            return None;
        }
        let depth = boundary_depth(n);
        let mean = total / n;
        let log_mu = if total == 0.0 {
            theta[0].min(-depth)
        } else {
            theta[0]
        };
        Some(vec![log_mu, theta[1].min(-depth - mean.max(1.0).ln())])
    }
    fn on_boundary(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<bool> {
        let (total, squares) = (sums[0], sums[1]);
        let flat = !overdispersed(n, total, squares);
        let depth = boundary_depth(n) - 1.0;
        vec![
            total == 0.0 && theta[0] <= -depth,
            flat && theta[1] <= -depth,
        ]
    }
    fn boundary_warning(&self, n: f64, sums: &[f64]) -> Option<String> {
        (!overdispersed(n, sums[0], sums[1])).then(|| {
            "the counts are not overdispersed (their variance is at most their mean): alpha's MLE is 0, the Poisson; alpha is reported at a negligible value, without a standard error (fit --family poisson)".to_string()
        })
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-1.0..4.0), rng.random_range(-3.0..1.5)]
    }
}

/// The head of a negative-binomial regression with a log link: eta = ln mu, global a = ln alpha.
impl Conditional for NegativeBinomial {
    /// Eta is the log mean.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Log]
    }

    fn global_names(&self) -> &'static [&'static str] {
        &["alpha"]
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
        let (alpha, mu, q) = (globals[0].exp(), eta[0].exp(), (eta[0] + globals[0]).exp());
        let [l, l1, _] = rising_log_terms(y, alpha);
        let log1p_q = q.ln_1p();
        let share = q / (1.0 + q);
        d_eta[0] = (mu - y) / (1.0 + q);
        d_globals[0] += -l1 + y * share - log1p_less_share(q) / alpha;
        -l - y * (eta[0] - log1p_q) + log1p_q / alpha + libm::lgamma(y + 1.0)
    }
    fn hessian(
        &self,
        _: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        let (alpha, mu, q) = (globals[0].exp(), eta[0].exp(), (eta[0] + globals[0]).exp());
        let l2 = rising_log_terms(y, alpha)[2];
        let square = (1.0 + q) * (1.0 + q);
        let cross = q * (y - mu) / square;
        h[0] = (mu + y * q) / square;
        h[1] = cross;
        h[2] = cross;
        h[3] = -l2 + log1p_less_share(q) / alpha + cross;
        Ok(())
    }
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![eta[0].exp()]
    }
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![head::finite_or_zero(head::mean(y).ln())]
    }
    /// The intercept-only model's log alpha (its MLE for these targets), or that of
    /// alpha = 0.01 where the targets are not overdispersed.
    fn initial_globals(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        vec![log_alpha_mle(y)
            .filter(|a| a.is_finite())
            .unwrap_or(0.01f64.ln())]
    }
    /// The null model's alpha solves an equation in every count: the statistics are the
    /// counts' frequencies, as (count, frequency) pairs in increasing count.
    fn null_part(&self, _: &Head, y: &[f64]) -> Option<Vec<f64>> {
        Some(
            histogram(y)
                .into_iter()
                .flat_map(|(c, f)| [c as f64, f])
                .collect(),
        )
    }
    fn merge_null_parts(&self, into: &mut Vec<f64>, later: &[f64]) {
        let mut counts = pairs(into);
        for (c, f) in pairs(later) {
            *counts.entry(c).or_default() += f;
        }
        *into = counts
            .into_iter()
            .flat_map(|(c, f)| [c as f64, f])
            .collect();
    }
    /// mu = the mean and alpha its MLE; where the counts are not overdispersed, alpha's MLE
    /// is 0 and the log-likelihood the Poisson's at the mean (the limit). No deviance:
    /// statsmodels' NegativeBinomial, the reference, reports none either.
    fn null_model(&self, _: &Head, part: &[f64]) -> NullModel {
        let counts = pairs(part);
        NullModel {
            loglik: null_loglik(&counts, log_alpha_mle_of(&counts)),
            deviance: None,
        }
    }
    /// mu = the mean (its MLE at any alpha) at the held alpha; no deviance.
    fn null_model_at(&self, _: &Head, part: &[f64], globals: &[f64]) -> Option<NullModel> {
        Some(NullModel {
            loglik: null_loglik(&pairs(part), Some(globals[0])),
            deviance: None,
        })
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        // Counts past the direct sums' end (64) as well.
        if rng.random_bool(0.2) {
            rng.random_range(60..200) as f64
        } else {
            rng.random_range(0..8) as f64
        }
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(concat!(
            include_str!("../../shaders/family/negative_binomial_parts.wgsl"),
            include_str!("../../shaders/family/head/negative_binomial.wgsl")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts that are not overdispersed: the null model is the Poisson's at the mean (the
    /// limit alpha -> 0); overdispersed ones: alpha's MLE beats the Poisson's limit.
    #[test]
    fn null_model_tends_to_the_poisson_without_overdispersion() {
        let head = Head::new(FamilyName::NegativeBinomial, 1, false);
        let poisson = Head {
            family: FamilyName::Poisson,
            ..head
        };
        let even = [2.0, 3.0, 2.0, 3.0, 2.0, 3.0, 4.0];
        let nb = head.null_model_of(&head.null_part(&even).unwrap()).loglik;
        let limit = poisson
            .null_model_of(&poisson.null_part(&even).unwrap())
            .loglik;
        assert!((nb - limit).abs() <= 1e-13 * limit.abs(), "{nb} vs {limit}");
        let spread = [0.0, 0.0, 0.0, 1.0, 9.0, 14.0, 0.0, 2.0];
        let nb = head.null_model_of(&head.null_part(&spread).unwrap()).loglik;
        let limit = poisson
            .null_model_of(&poisson.null_part(&spread).unwrap())
            .loglik;
        assert!(nb > limit + 1.0, "{nb} vs {limit}");
    }
}
