//! The output head of a conditional model: how the network's outputs eta parameterise the
//! family for one sample, its NLL, and the NLL's derivatives with respect to eta and to the
//! head's global parameters (log sigma for the Gaussian, log b for the Laplace).

use crate::family::{log_sum_exp, sigmoid, FamilyName, HALF_LN_2PI};

/// A family as the output of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub family: FamilyName,
    /// K for the categorical family, 1 otherwise.
    pub classes: usize,
    /// Categorical only: the first class's logit is fixed at 0 (as in statsmodels' MNLogit),
    /// so a linear model is identified; otherwise all K logits are outputs (softmax over K).
    pub reference: bool,
}

impl Head {
    /// Each row's parameter-free NLL part for target `y` (e.g. ln y! for Poisson), which the
    /// GPU kernels add to the row's loss.
    pub fn row_constants(&self, y: &[f64]) -> Vec<f64> {
        let family = self.family.build(self.classes);
        y.iter().map(|&v| family.constant(v)).collect()
    }

    /// Width of the network's output layer.
    pub fn outputs(&self) -> usize {
        match self.family {
            FamilyName::Categorical if self.reference => self.classes - 1,
            FamilyName::Categorical => self.classes,
            _ => 1,
        }
    }

    /// Parameters of the head not produced by the network (log sigma, log b).
    pub fn globals(&self) -> usize {
        match self.family {
            FamilyName::Gaussian | FamilyName::Laplace => 1,
            _ => 0,
        }
    }

    pub fn global_name(&self) -> Option<&'static str> {
        match self.family {
            FamilyName::Gaussian => Some("sigma"),
            FamilyName::Laplace => Some("b"),
            _ => None,
        }
    }

    /// Whether the model is a classifier (accuracy is reported).
    pub fn is_classifier(&self) -> bool {
        matches!(self.family, FamilyName::Categorical | FamilyName::Bernoulli)
    }

    /// The K logits, with the reference class's 0 prepended when there is one.
    fn logits(&self, eta: &[f64]) -> Vec<f64> {
        if self.reference {
            std::iter::once(0.0).chain(eta.iter().copied()).collect()
        } else {
            eta.to_vec()
        }
    }

    /// NLL of target `y` given outputs `eta` and globals; writes dNLL/deta into `d_eta` and
    /// adds dNLL/dglobals into `d_globals`.
    pub fn nll(
        &self,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        d_eta: &mut [f64],
        d_globals: &mut [f64],
    ) -> f64 {
        match self.family {
            FamilyName::Bernoulli => {
                let (softplus, sigmoid) = crate::family::softplus_and_sigmoid(eta[0]);
                d_eta[0] = sigmoid - y;
                softplus - y * eta[0]
            }
            FamilyName::Gaussian => {
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
            FamilyName::Laplace => {
                // NLL = ln 2 + log b + |y - mu| / b
                let inv_b = (-globals[0]).exp();
                let r = y - eta[0];
                d_eta[0] = -crate::family::sign0(r) * inv_b;
                d_globals[0] += 1.0 - r.abs() * inv_b;
                std::f64::consts::LN_2 + globals[0] + r.abs() * inv_b
            }
            FamilyName::Poisson => {
                let rate = eta[0].exp();
                d_eta[0] = rate - y;
                rate - y * eta[0] + libm::lgamma(y + 1.0)
            }
            FamilyName::Exponential => {
                // eta = log rate: NLL = rate y - eta
                let rate = eta[0].exp();
                d_eta[0] = rate * y - 1.0;
                rate * y - eta[0]
            }
            FamilyName::Categorical => {
                // Softmax over the logits z (the reference class's fixed at 0), shifted by the
                // largest: p_k = e_k / sum e, e_k = exp(z_k - max z); NLL = log sum exp z - z_y,
                // dNLL/dz_k = p_k - [k = y]. One exp per class and one log, in place.
                let skip = self.reference as usize;
                let reference = self.reference.then_some(0.0);
                let max = eta
                    .iter()
                    .copied()
                    .chain(reference)
                    .fold(f64::NEG_INFINITY, f64::max);
                let mut sum = reference.map_or(0.0, |z| (z - max).exp());
                for (d, &z) in d_eta.iter_mut().zip(eta) {
                    *d = (z - max).exp();
                    sum += *d;
                }
                d_eta.iter_mut().for_each(|d| *d /= sum);
                let class = y as usize;
                let z_y = if class < skip {
                    0.0
                } else {
                    d_eta[class - skip] -= 1.0;
                    eta[class - skip]
                };
                max + sum.ln() - z_y
            }
        }
    }

    /// What `predict` reports: class probabilities (K), P(y = 1), or the mean of y.
    pub fn predict(&self, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        let _ = globals;
        match self.family {
            FamilyName::Categorical => {
                let z = self.logits(eta);
                let lse = log_sum_exp(&z);
                z.iter().map(|v| (v - lse).exp()).collect()
            }
            FamilyName::Bernoulli => vec![sigmoid(eta[0])],
            FamilyName::Gaussian | FamilyName::Laplace => vec![eta[0]],
            FamilyName::Poisson => vec![eta[0].exp()],
            FamilyName::Exponential => vec![(-eta[0]).exp()],
        }
    }

    /// The predicted class (classifiers only).
    pub fn predicted_class(&self, eta: &[f64]) -> f64 {
        match self.family {
            FamilyName::Bernoulli => (eta[0] > 0.0) as u8 as f64,
            _ => {
                let z = self.logits(eta);
                let mut best = 0;
                for (k, v) in z.iter().enumerate() {
                    if *v > z[best] {
                        best = k;
                    }
                }
                best as f64
            }
        }
    }

    /// The outputs eta of the intercept-only MLE of targets `y` (where it exists; a class or
    /// count with no rows gets the nearest finite value): a linear model's starting
    /// intercepts. Starting at eta = 0 instead puts an exponential regression on y of 1e300
    /// 690 nats from its optimum, where a Newton step overshoots to overflow.
    pub fn intercept_only_eta(&self, y: &[f64]) -> Vec<f64> {
        let n = y.len().max(1) as f64;
        let mean = y.iter().sum::<f64>() / n;
        let finite_or_zero = |v: f64| if v.is_finite() { v } else { 0.0 };
        match self.family {
            FamilyName::Gaussian => vec![finite_or_zero(mean)],
            FamilyName::Laplace => {
                let mut sorted: Vec<f64> = y.to_vec();
                sorted.sort_by(f64::total_cmp);
                vec![sorted
                    .get(sorted.len() / 2)
                    .copied()
                    .map_or(0.0, finite_or_zero)]
            }
            FamilyName::Bernoulli if mean > 0.0 && mean < 1.0 => vec![(mean / (1.0 - mean)).ln()],
            FamilyName::Bernoulli => vec![0.0],
            FamilyName::Poisson => vec![finite_or_zero(mean.ln())],
            FamilyName::Exponential => vec![finite_or_zero(-mean.ln())],
            FamilyName::Categorical => {
                // log p_k up to the common shift (less the reference class's when it is pinned
                // at 0); half a row for an empty class keeps the start finite.
                let mut counts = vec![0.5f64; self.classes];
                for &v in y {
                    if let Some(c) = counts.get_mut(v as usize) {
                        *c += 1.0;
                    }
                }
                let base = if self.reference { counts[0].ln() } else { 0.0 };
                let skip = self.reference as usize;
                counts[skip..].iter().map(|c| c.ln() - base).collect()
            }
        }
    }

    /// Starting values of the globals from the targets: log of their spread.
    pub fn initial_globals(&self, y: &[f64]) -> Vec<f64> {
        if self.globals() == 0 {
            return Vec::new();
        }
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let spread = (y.iter().map(|v| (v - mean).abs()).sum::<f64>() / n).max(1e-8);
        vec![spread.ln()]
    }
}
