//! Priors on the unconstrained parameters, for MAP estimation.

use crate::error::{Error, Result};

/// `--prior l2:SCALE` or `--prior l1:SCALE`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Prior {
    /// Independent N(0, scale^2) on every unconstrained parameter (ridge / L2).
    L2 { scale: f64 },
    /// Independent Laplace(0, scale) on every unconstrained parameter (lasso / L1).
    L1 { scale: f64 },
}

impl std::str::FromStr for Prior {
    type Err = Error;
    fn from_str(s: &str) -> Result<Prior> {
        let bad = || {
            Error::Usage(format!(
                "invalid prior '{s}': expected l2:SCALE or l1:SCALE with SCALE > 0"
            ))
        };
        let (kind, scale) = s.split_once(':').ok_or_else(bad)?;
        let scale: f64 = scale.trim().parse().map_err(|_| bad())?;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(bad());
        }
        match kind.trim().to_ascii_lowercase().as_str() {
            "l2" | "gaussian" | "normal" => Ok(Prior::L2 { scale }),
            "l1" | "laplace" => Ok(Prior::L1 { scale }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Prior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prior::L2 { scale } => write!(f, "l2:{scale}"),
            Prior::L1 { scale } => write!(f, "l1:{scale}"),
        }
    }
}

impl Prior {
    /// log p(theta) over the coordinates where `mask` is true, normalising constants included.
    pub fn log_density(&self, theta: &[f64], mask: &[bool]) -> f64 {
        let theta = theta.iter().zip(mask).filter(|(_, &m)| m).map(|(t, _)| t);
        match *self {
            Prior::L2 { scale } => theta
                .map(|t| -0.5 * (t / scale).powi(2) - scale.ln() - crate::family::HALF_LN_2PI)
                .sum(),
            Prior::L1 { scale } => theta.map(|t| -t.abs() / scale - (2.0 * scale).ln()).sum(),
        }
    }
}

/// A prior spread over an optimiser's coordinates: the user's prior with a scale factor per
/// coordinate (0 where the prior does not apply: intercepts, biases, a head's globals) and a
/// centre. A fit in standardized coordinates states the user's prior on an original
/// coefficient as the matching prior on the scaled one: beta = beta' t / s makes N(0, S^2) on
/// beta the prior N(0, (S s / t)^2) on beta', so the factor is s / t; a coordinate shifted by
/// the fit (theta' = a theta + b) has its centre at b.
#[derive(Clone, Debug, PartialEq)]
pub struct PriorLayout {
    pub prior: Prior,
    pub factors: Vec<f64>,
    /// Where each coordinate's prior is centred (0 for an unshifted coordinate). The
    /// orthant-wise L-BFGS needs an L1 prior centred at 0.
    pub centers: Vec<f64>,
}

impl PriorLayout {
    /// The prior on the coordinates `mask` marks, with factor 1, centred at 0.
    pub fn masked(prior: Prior, mask: &[bool]) -> Self {
        Self::scaled(
            prior,
            mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect(),
        )
    }

    /// The prior with per-coordinate factors, centred at 0.
    pub fn scaled(prior: Prior, factors: Vec<f64>) -> Self {
        let centers = vec![0.0; factors.len()];
        PriorLayout {
            prior,
            factors,
            centers,
        }
    }

    /// The L2 precision 1 / (S f_j)^2 of each coordinate (0 without a factor or for L1).
    pub fn l2_precisions(&self) -> Vec<f64> {
        self.factors
            .iter()
            .map(|&f| match self.prior {
                Prior::L2 { scale } if f > 0.0 => 1.0 / (scale * f).powi(2),
                _ => 0.0,
            })
            .collect()
    }

    /// The L1 weights 1 / (S f_j) (None for an L2 prior).
    pub fn l1_weights(&self) -> Option<Vec<f64>> {
        match self.prior {
            Prior::L1 { scale } => Some(
                self.factors
                    .iter()
                    .map(|&f| if f > 0.0 { 1.0 / (scale * f) } else { 0.0 })
                    .collect(),
            ),
            Prior::L2 { .. } => None,
        }
    }

    /// Adds the smooth part of -log p (the L2 penalty) and its gradient to (f, g).
    pub fn add_smooth(&self, theta: &[f64], f: &mut f64, g: &mut [f64]) {
        for (((gi, t), w), c) in g
            .iter_mut()
            .zip(theta)
            .zip(self.l2_precisions())
            .zip(&self.centers)
        {
            if w > 0.0 {
                let d = t - c;
                *f += 0.5 * w * d * d;
                *gi += w * d;
            }
        }
    }

    /// Adds the L2 penalty's curvature to a row-major Hessian.
    pub fn add_curvature(&self, h: &mut [f64]) {
        let p = self.factors.len();
        for (j, w) in self.l2_precisions().into_iter().enumerate() {
            h[j * p + j] += w;
        }
    }

    /// log p(theta) in these coordinates, normalising constants included.
    pub fn log_density(&self, theta: &[f64]) -> f64 {
        theta
            .iter()
            .zip(&self.factors)
            .zip(&self.centers)
            .filter(|((_, &f), _)| f > 0.0)
            .map(|((t, &f), c)| {
                let s = match self.prior {
                    Prior::L2 { scale } | Prior::L1 { scale } => scale * f,
                };
                match self.prior {
                    Prior::L2 { .. } => {
                        -0.5 * ((t - c) / s).powi(2) - s.ln() - crate::family::HALF_LN_2PI
                    }
                    Prior::L1 { .. } => -(t - c).abs() / s - (2.0 * s).ln(),
                }
            })
            .sum()
    }
}
