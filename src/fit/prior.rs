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

    /// The L1 weight lambda = 1/scale (handled by the orthant-wise optimiser), if any.
    pub(crate) fn l1_weight(&self) -> Option<f64> {
        match *self {
            Prior::L1 { scale } => Some(1.0 / scale),
            Prior::L2 { .. } => None,
        }
    }

    /// Adds the smooth part of -log p (L2 only) and its gradient to (f, g).
    pub(crate) fn add_smooth(&self, theta: &[f64], mask: &[bool], f: &mut f64, g: &mut [f64]) {
        if let Prior::L2 { scale } = *self {
            let w = 1.0 / (scale * scale);
            for ((gi, t), _) in g.iter_mut().zip(theta).zip(mask).filter(|(_, &m)| m) {
                *f += 0.5 * w * t * t;
                *gi += w * t;
            }
        }
    }
}
