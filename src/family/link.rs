//! MeanLink functions of generalized linear models: the map g from a family's mean mu to the
//! linear predictor eta = g(mu) = x b.
//!
//! Each family's head is written once, in its own parameter t (its *native* link: the logit
//! for the Bernoulli, the log mean for the Poisson, the mean for the Gaussian). Any other link
//! the family allows is the composition t(eta) = g_native(g^-1(eta)): the row's NLL is the
//! native NLL at t(eta), its slope the native slope times t', and its curvature the native
//! curvature times t'^2 plus the native slope times t''. [`MeanLink::to_native`] gives
//! (t, t', t'') for each (link, native) pair in a form accurate in both tails (the probit's
//! t = ln Phi(eta) - ln Phi(-eta) through ln Phi, never through Phi rounded near 1), so a
//! head's NLL stays as accurate under a link as at its native one.

use crate::special::{ln_normal_cdf, normal_mills_ratio, normal_quantile};

/// A link function g: eta = g(mu).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum MeanLink {
    /// ln(mu / (1 - mu)).
    Logit,
    /// Phi^-1(mu), the standard normal quantile.
    Probit,
    /// ln(-ln(1 - mu)), the complementary log-log.
    Cloglog,
    /// ln mu.
    Log,
    /// mu.
    Identity,
    /// 1 / mu (the gamma family's canonical link).
    Inverse,
}

/// A linear predictor outside the link's domain (an identity-link Poisson mean below 0):
/// the row has no likelihood there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutsideDomain;

impl MeanLink {
    pub const ALL: [MeanLink; 6] = [
        MeanLink::Logit,
        MeanLink::Probit,
        MeanLink::Cloglog,
        MeanLink::Log,
        MeanLink::Identity,
        MeanLink::Inverse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MeanLink::Logit => "logit",
            MeanLink::Probit => "probit",
            MeanLink::Cloglog => "cloglog",
            MeanLink::Log => "log",
            MeanLink::Identity => "identity",
            MeanLink::Inverse => "inverse",
        }
    }

    /// The link named `name` (as the CLI and saved models spell it).
    pub fn parse(name: &str) -> Option<MeanLink> {
        MeanLink::ALL.into_iter().find(|l| l.as_str() == name)
    }

    /// eta = g(mu) for a mean inside the link's domain (a linear model's intercept-only start).
    pub fn of_mean(self, mu: f64) -> f64 {
        match self {
            MeanLink::Logit => (mu / (1.0 - mu)).ln(),
            MeanLink::Probit => normal_quantile(mu),
            MeanLink::Cloglog => (-(-mu).ln_1p()).ln(),
            MeanLink::Log => mu.ln(),
            MeanLink::Identity => mu,
            MeanLink::Inverse => 1.0 / mu,
        }
    }

    /// (t, dt/deta, d^2t/deta^2) with t = native(g^-1(eta)): the head's native parameter at
    /// the linear predictor eta of this link. Only the pairs [`super::Conditional::links`]
    /// offers exist; `Err` where eta is outside the link's domain for this native parameter
    /// (a mean at or below 0 for a log-native family under the identity or inverse link).
    pub fn to_native(self, native: MeanLink, eta: f64) -> Result<[f64; 3], OutsideDomain> {
        if self == native {
            return Ok([eta, 1.0, 0.0]);
        }
        let value = match (native, self) {
            (MeanLink::Logit, MeanLink::Probit) => probit_as_logit(eta),
            (MeanLink::Logit, MeanLink::Cloglog) => cloglog_as_logit(eta),
            // t = ln mu with mu = eta (identity) or 1 / eta (inverse): a mean > 0 only.
            (MeanLink::Log, MeanLink::Identity) if eta > 0.0 => {
                [eta.ln(), 1.0 / eta, -1.0 / (eta * eta)]
            }
            (MeanLink::Log, MeanLink::Inverse) if eta > 0.0 => {
                [-eta.ln(), -1.0 / eta, 1.0 / (eta * eta)]
            }
            (MeanLink::Log, MeanLink::Identity | MeanLink::Inverse) => return Err(OutsideDomain),
            // t = mu = e^eta.
            (MeanLink::Identity, MeanLink::Log) => {
                let mu = eta.exp();
                [mu, mu, mu]
            }
            (native, link) => unreachable!(
                "no {} link for a head whose native link is {}",
                link.as_str(),
                native.as_str()
            ),
        };
        if value.iter().all(|v| v.is_finite()) {
            Ok(value)
        } else {
            Err(OutsideDomain)
        }
    }
}

/// The probit's logit: t = ln Phi(eta) - ln Phi(-eta), t' = R(eta) + R(-eta) with R the
/// inverse Mills ratio phi / Phi, and t'' = R'(eta) - R'(-eta), R'(x) = -R(x) (x + R(x)).
/// Each term is accurate in both tails (ln Phi and R never pass through Phi near 1).
fn probit_as_logit(eta: f64) -> [f64; 3] {
    let (up, down) = (normal_mills_ratio(eta), normal_mills_ratio(-eta));
    let slope_of = |x: f64, r: f64| -r * (x + r);
    [
        ln_normal_cdf(eta) - ln_normal_cdf(-eta),
        up + down,
        slope_of(eta, up) - slope_of(-eta, down),
    ]
}

/// q(u) = u / (1 - e^-u) and q'(u), by their series below u = 0.05 (where 1 - e^-u - u e^-u,
/// about u^2 / 2, would cancel): q = 1 + u/2 + u^2/12 - u^4/720 + u^6/30240 - u^8/1209600,
/// the generating function of the Bernoulli numbers, truncated after the u^8 term (the next
/// is below 1e-17 there).
fn cloglog_q(u: f64) -> (f64, f64) {
    if u < 0.05 {
        let u2 = u * u;
        let q = 1.0 + u / 2.0 + u2 / 12.0 - u2 * u2 / 720.0 + u2 * u2 * u2 / 30240.0
            - u2 * u2 * u2 * u2 / 1_209_600.0;
        let dq =
            0.5 + u / 6.0 - u * u2 / 180.0 + u * u2 * u2 / 5040.0 - u * u2 * u2 * u2 / 151_200.0;
        return (q, dq);
    }
    let tail = -(-u).exp_m1(); // 1 - e^-u
    let q = u / tail;
    let dq = (tail - u * (-u).exp()) / (tail * tail);
    (q, dq)
}

/// The complementary log-log's logit: with u = e^eta and mu = 1 - e^-u,
/// t = ln mu - ln(1 - mu) = ln(1 - e^-u) + u = eta - ln q(u) + u, t' = q(u), t'' = u q'(u).
/// The form eta - ln q(u) keeps t exact where u underflows (eta below -745, t = eta).
fn cloglog_as_logit(eta: f64) -> [f64; 3] {
    let u = eta.exp();
    let (q, dq) = cloglog_q(u);
    [eta - q.ln() + u, q, u * dq]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pairs a head offers, each with eta inside its domain.
    const PAIRS: [(MeanLink, MeanLink, f64, f64); 5] = [
        (MeanLink::Logit, MeanLink::Probit, -30.0, 30.0),
        (MeanLink::Logit, MeanLink::Cloglog, -30.0, 5.0),
        (MeanLink::Log, MeanLink::Identity, 1e-3, 50.0),
        (MeanLink::Log, MeanLink::Inverse, 1e-3, 50.0),
        (MeanLink::Identity, MeanLink::Log, -20.0, 20.0),
    ];

    /// g^-1 by the textbook formula, where it is representable.
    fn mean(link: MeanLink, eta: f64) -> f64 {
        match link {
            MeanLink::Logit => 1.0 / (1.0 + (-eta).exp()),
            MeanLink::Probit => 0.5 * libm::erfc(-eta / std::f64::consts::SQRT_2),
            MeanLink::Cloglog => 1.0 - (-eta.exp()).exp(),
            MeanLink::Log => eta.exp(),
            MeanLink::Identity => eta,
            MeanLink::Inverse => 1.0 / eta,
        }
    }

    /// t is native(g^-1(eta)) where the textbook composition is accurate (means away from 0
    /// and 1), and t', t'' are its derivatives by central differences, across each domain.
    #[test]
    fn every_link_maps_to_its_native_parameter_with_its_derivatives() {
        for (native, link, lo, hi) in PAIRS {
            for i in 0..=200 {
                let eta = lo + (hi - lo) * i as f64 / 200.0;
                let [t, t1, t2] = link.to_native(native, eta).unwrap();
                let mu = mean(link, eta);
                if mu > 1e-6 && (native != MeanLink::Logit || mu < 1.0 - 1e-6) {
                    let want = native.of_mean(mu);
                    assert!(
                        (t - want).abs() <= 1e-9 * want.abs().max(1.0),
                        "{link:?}->{native:?} at {eta}: t {t} vs {want}"
                    );
                }
                let h = 1e-5 * eta.abs().max(1e-2);
                let at = |e: f64| link.to_native(native, e).unwrap();
                let (up, down) = (at(eta + h), at(eta - h));
                let fd1 = (up[0] - down[0]) / (2.0 * h);
                let fd2 = (up[1] - down[1]) / (2.0 * h);
                assert!(
                    (fd1 - t1).abs() <= 1e-6 * t1.abs().max(1.0),
                    "{link:?}->{native:?} at {eta}: t' {t1} vs {fd1}"
                );
                assert!(
                    (fd2 - t2).abs() <= 1e-5 * t2.abs().max(1.0),
                    "{link:?}->{native:?} at {eta}: t'' {t2} vs {fd2}"
                );
            }
        }
    }

    /// In the tails, where the textbook composition rounds to 0 or 1: the probit's logit
    /// against its asymptotic form -ln Phi(-eta) ~ eta^2 / 2 + ln(eta sqrt(2 pi)), the
    /// complementary log-log's against t = eta + u / 2 (u = e^eta tiny) and t = u (u large).
    #[test]
    fn links_stay_accurate_where_the_mean_rounds_to_its_bounds() {
        let [t, _, _] = MeanLink::Probit.to_native(MeanLink::Logit, -40.0).unwrap();
        let asymptotic = -(800.0 + (40.0 * (2.0 * std::f64::consts::PI).sqrt()).ln())
            + (1.0 - 1.0 / 1600.0 + 3.0 / 1600.0f64.powi(2)).ln();
        assert!(
            (t - asymptotic).abs() < 1e-9 * t.abs(),
            "{t} vs {asymptotic}"
        );
        let [t, t1, _] = MeanLink::Probit.to_native(MeanLink::Logit, 40.0).unwrap();
        assert!(
            (t + asymptotic).abs() < 1e-9 * t.abs() && t1 > 40.0,
            "{t} {t1}"
        );
        let [t, t1, t2] = MeanLink::Cloglog
            .to_native(MeanLink::Logit, -800.0)
            .unwrap();
        assert_eq!((t, t1, t2), (-800.0, 1.0, 0.0));
        let [t, _, _] = MeanLink::Cloglog.to_native(MeanLink::Logit, -30.0).unwrap();
        let u = (-30.0f64).exp();
        assert!((t - (-30.0 + u / 2.0)).abs() <= 1e-15 * 30.0, "{t}");
        let [t, t1, _] = MeanLink::Cloglog.to_native(MeanLink::Logit, 6.0).unwrap();
        assert!((t - 6.0f64.exp()).abs() <= 1e-13 * t && (t1 - t).abs() <= 1e-13 * t);
    }

    #[test]
    fn means_outside_a_link_s_domain_are_refused() {
        for eta in [0.0, -1.0, f64::NAN] {
            assert_eq!(
                MeanLink::Identity.to_native(MeanLink::Log, eta),
                Err(OutsideDomain)
            );
            assert_eq!(
                MeanLink::Inverse.to_native(MeanLink::Log, eta),
                Err(OutsideDomain)
            );
        }
        assert_eq!(
            MeanLink::Log.to_native(MeanLink::Identity, 1000.0),
            Err(OutsideDomain)
        );
    }

    #[test]
    fn link_names_round_trip() {
        for link in MeanLink::ALL {
            assert_eq!(MeanLink::parse(link.as_str()), Some(link));
            let mu = 0.3;
            let eta = link.of_mean(mu);
            assert!((mean(link, eta) - mu).abs() < 1e-15, "{link:?}");
        }
    }
}
