//! Likelihood families.
//!
//! Each family is defined in one place: a Rust file with the f64 math and a WGSL snippet with
//! the same per-sample math behind a fixed interface. The GPU and CPU engines share one
//! decomposition of the negative log-likelihood (NLL):
//!
//! ```text
//! NLL(theta) = finish(n, sum_i terms(x_i; kernel_params(theta)), theta) + sum_i constant(x_i)
//! ```
//!
//! * `terms` are the per-sample quantities the kernels reduce (`accumulate` in WGSL, and
//!   [`Family::terms`] / [`Family::accumulate`] in f64). They are chosen so that they stay
//!   well inside f32 range for any parameter: the parameter-only factors (1/sigma^2, softplus
//!   of a logit, exp of a log rate) are applied by `finish` in f64 on the host, which is why
//!   sigma = 1e-20 or a logit of 1e4 give finite, accurate results on an f32 GPU.
//! * `finish` is affine in the term sums for fixed theta. The conformance check uses that to
//!   turn the term sums' rounding error into an error bound for every output.
//! * `log_density` is the textbook per-sample log-density, written independently of the
//!   decomposition; tests check that both agree and that the gradient matches finite
//!   differences of it.

mod bernoulli;
mod categorical;
mod exponential;
mod gaussian;
mod laplace;
mod poisson;

pub use bernoulli::Bernoulli;
pub use categorical::Categorical;
pub use exponential::Exponential;
pub use gaussian::Gaussian;
pub use laplace::Laplace;
pub use poisson::Poisson;

use rand::rngs::StdRng;
use serde_json::Value;

/// A parameter on the natural scale, as reported to users.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Scalar(f64),
    Vector(Vec<f64>),
}

impl ParamValue {
    pub fn to_json(&self) -> Value {
        match self {
            ParamValue::Scalar(v) => crate::util::json_f64(*v),
            ParamValue::Vector(v) => {
                Value::Array(v.iter().map(|x| crate::util::json_f64(*x)).collect())
            }
        }
    }

    /// The values as a flat slice-like vector (a scalar is one value).
    pub fn values(&self) -> Vec<f64> {
        match self {
            ParamValue::Scalar(v) => vec![*v],
            ParamValue::Vector(v) => v.clone(),
        }
    }
}

/// A named natural-scale parameter (`p`, `mu`, `sigma`, `probs`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedParam {
    pub name: &'static str,
    pub value: ParamValue,
}

/// The scale on which a natural parameter's interval is symmetric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Unbounded parameters (mu).
    Identity,
    /// Positive parameters (sigma, b, lambda, rate).
    Log,
    /// Probabilities (p, probs).
    Logit,
}

impl Link {
    pub fn forward(self, v: f64) -> f64 {
        match self {
            Link::Identity => v,
            Link::Log => v.ln(),
            Link::Logit => (v / (1.0 - v)).ln(),
        }
    }
    pub fn inverse(self, g: f64) -> f64 {
        match self {
            Link::Identity => g,
            Link::Log => g.exp(),
            Link::Logit => sigmoid(g),
        }
    }
    /// d link / d v.
    pub fn derivative(self, v: f64) -> f64 {
        match self {
            Link::Identity => 1.0,
            Link::Log => 1.0 / v,
            Link::Logit => 1.0 / (v * (1.0 - v)),
        }
    }
}

/// Data for which maximum likelihood has no finite answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Degenerate {
    /// The likelihood grows without bound: there is no MLE (a prior gives a MAP estimate).
    Unbounded(String),
    /// The MLE lies on the boundary (e.g. p = 1); the fit approaches it but cannot reach it.
    Boundary(String),
}

/// Cheap facts about a dataset used to pick a starting point that is not the answer.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(xs: &[f64]) -> Summary {
        let (min, max) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        Summary {
            n: xs.len(),
            min,
            max,
        }
    }

    /// A scale for the data that is positive even for constant data.
    pub fn spread(&self) -> f64 {
        let s = (self.max - self.min) / 4.0;
        if s.is_finite() && s > 0.0 {
            s
        } else {
            1.0
        }
    }
}

/// One likelihood family: f64 math, WGSL snippet and sampler in one definition point.
pub trait Family: Send + Sync + std::fmt::Debug {
    /// The name used on the command line and in JSON (`bernoulli`, `gaussian`, ...).
    fn name(&self) -> &'static str;
    /// Number of unconstrained parameters theta.
    fn n_params(&self) -> usize;
    /// Names of the unconstrained parameters (`logit_p`, `mu`, `log_sigma`, ...).
    fn theta_names(&self) -> Vec<String>;
    /// Number of per-sample terms the kernels reduce.
    fn n_terms(&self) -> usize;
    /// Parameters the per-sample terms depend on (e.g. mu); the GPU gets them as f32 hi/lo pairs.
    fn kernel_params(&self, _theta: &[f64]) -> Vec<f64> {
        Vec::new()
    }
    /// Why `x` is outside the family's support, or `None` when it is a valid observation.
    fn support_error(&self, x: f64) -> Option<String>;
    /// The per-sample terms of one observation, in f64 (the twin of the WGSL `accumulate`).
    fn terms(&self, x: f64, kernel_params: &[f64], out: &mut [f64]);
    /// Adds the terms of every sample in `xs` into `acc` (a fast loop over [`Family::terms`]).
    fn accumulate(&self, xs: &[f64], kernel_params: &[f64], acc: &mut [f64]);
    /// NLL (without the constant) and its gradient in theta, from the term sums. Affine in `sums`.
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>);
    /// Observed information: the Hessian of the NLL in theta (row-major), from the same term
    /// sums as `finish` (so any engine reduces it). The Laplace family, whose NLL has no second
    /// derivative in mu, uses the expected information n / b^2 for mu.
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64>;
    /// How each natural parameter maps to an unbounded scale, for intervals that respect its
    /// support.
    fn links(&self) -> Vec<Link>;
    /// Cramer-Rao bound: the asymptotic standard deviation of sqrt(n) (estimate - truth) for
    /// each natural parameter (flattened), from the per-sample Fisher information at theta.
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64>;
    /// The parameter-free part of one sample's NLL (e.g. log x! for Poisson).
    fn constant(&self, _x: f64) -> f64 {
        0.0
    }
    /// log p(x | theta), written directly from the textbook density.
    fn log_density(&self, x: f64, theta: &[f64]) -> f64;
    /// The WGSL definition of `accumulate(x, acc)` for this family.
    fn wgsl(&self) -> &'static str;
    /// A starting point for the optimiser, deliberately not the closed-form answer.
    fn initial_theta(&self, summary: &Summary) -> Vec<f64>;
    /// Unconstrained theta mapped to the natural parameters users see.
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam>;
    /// The closed-form maximum-likelihood estimate (unconstrained scale) for tests and demos.
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64>;
    /// Draws `n` observations from the family at `theta`.
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64>;
    /// Extreme but valid parameters (logits of +-1e4, sigma of 1e-20 and 1e20, ...): results
    /// must stay finite and agree between engines.
    fn extreme_thetas(&self) -> Vec<Vec<f64>>;
    /// Whether data with this summary has no MLE (the likelihood is unbounded) or an MLE on the
    /// boundary of the parameter space (an infinite unconstrained parameter).
    fn degenerate(&self, _s: &Summary) -> Option<Degenerate> {
        None
    }
    /// A boxed copy (families are small values).
    fn clone_box(&self) -> Box<dyn Family>;
    /// A plausible random parameter vector, for conformance checks.
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64>;
}

/// The families likely knows, by command-line name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FamilyName {
    Bernoulli,
    Gaussian,
    Categorical,
    Laplace,
    Poisson,
    Exponential,
}

impl FamilyName {
    pub const ALL: [FamilyName; 6] = [
        FamilyName::Bernoulli,
        FamilyName::Gaussian,
        FamilyName::Categorical,
        FamilyName::Laplace,
        FamilyName::Poisson,
        FamilyName::Exponential,
    ];

    /// Builds the family; `classes` is K for the categorical family and ignored otherwise.
    pub fn build(self, classes: usize) -> Box<dyn Family> {
        match self {
            FamilyName::Bernoulli => Box::new(Bernoulli),
            FamilyName::Gaussian => Box::new(Gaussian),
            FamilyName::Categorical => Box::new(Categorical::new(classes)),
            FamilyName::Laplace => Box::new(Laplace),
            FamilyName::Poisson => Box::new(Poisson),
            FamilyName::Exponential => Box::new(Exponential),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FamilyName::Bernoulli => "bernoulli",
            FamilyName::Gaussian => "gaussian",
            FamilyName::Categorical => "categorical",
            FamilyName::Laplace => "laplace",
            FamilyName::Poisson => "poisson",
            FamilyName::Exponential => "exponential",
        }
    }
}

/// Runs `$body` once per family, with `$name` bound to a [`FamilyName`] and the test function
/// named after the family: `for_each_family!(check_fd, |name| { ... });` generates
/// `check_fd::bernoulli`, `check_fd::gaussian`, ... A family missing here fails to compile in
/// [`FamilyName::ALL`]'s exhaustive `match`es, and a family added to the enum but not here
/// fails `every_family_is_tested` in tests/families.rs.
#[macro_export]
macro_rules! for_each_family {
    ($module:ident, |$name:ident| $body:block) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn bernoulli() {
                let $name = $crate::family::FamilyName::Bernoulli;
                $body
            }
            #[test]
            fn gaussian() {
                let $name = $crate::family::FamilyName::Gaussian;
                $body
            }
            #[test]
            fn categorical() {
                let $name = $crate::family::FamilyName::Categorical;
                $body
            }
            #[test]
            fn laplace() {
                let $name = $crate::family::FamilyName::Laplace;
                $body
            }
            #[test]
            fn poisson() {
                let $name = $crate::family::FamilyName::Poisson;
                $body
            }
            #[test]
            fn exponential() {
                let $name = $crate::family::FamilyName::Exponential;
                $body
            }
        }
    };
}

/// Number of families the test macro covers; tests compare it with [`FamilyName::ALL`].
pub const FAMILIES_IN_TEST_MACRO: usize = 6;

/// A boxed copy of `family`.
pub fn rebuild(family: &dyn Family) -> Box<dyn Family> {
    family.clone_box()
}

/// The kernel-facing methods of a family whose only sample-dependent NLL part is sum x_i
/// (its sufficient statistic): one term, x, reduced by `shaders/family/sum_x.wgsl`.
macro_rules! sum_of_x_terms {
    () => {
        fn n_terms(&self) -> usize {
            1
        }
        fn terms(&self, x: f64, _kp: &[f64], out: &mut [f64]) {
            out[0] = x;
        }
        fn accumulate(&self, xs: &[f64], _kp: &[f64], acc: &mut [f64]) {
            sum_terms(xs, acc, |x| [x]);
        }
        fn wgsl(&self) -> &'static str {
            include_str!("../../shaders/family/sum_x.wgsl")
        }
    };
}
use sum_of_x_terms;

// ---- shared numerics -------------------------------------------------------------------

/// log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|).
pub fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// (softplus(z), sigmoid(z)) from one exponential, e^-|z|; the same values as the two
/// functions give separately.
pub fn softplus_and_sigmoid(z: f64) -> (f64, f64) {
    let e = (-z.abs()).exp();
    let sigmoid = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (z.max(0.0) + e.ln_1p(), sigmoid)
}

/// 1 / (1 + e^-z), evaluated on the side that cannot overflow.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log sum_k e^{z_k}, shifted by the maximum.
pub fn log_sum_exp(z: &[f64]) -> f64 {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// sign(d) with sign(0) = 0, matching WGSL's `sign` (Rust's `signum(0.0)` is 1).
pub fn sign0(d: f64) -> f64 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// 0.5 * ln(2 pi).
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Adds `f(x)` for every x into `acc`, with four independent accumulators so the loop
/// pipelines (and vectorises) without reassociating any single sum.
pub(crate) fn sum_terms<const T: usize>(xs: &[f64], acc: &mut [f64], f: impl Fn(f64) -> [f64; T]) {
    let mut lanes = [[0.0f64; T]; 4];
    let chunks = xs.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (lane, &x) in lanes.iter_mut().zip(c) {
            let t = f(x);
            for k in 0..T {
                lane[k] += t[k];
            }
        }
    }
    for &x in rest {
        let t = f(x);
        for k in 0..T {
            lanes[0][k] += t[k];
        }
    }
    for k in 0..T {
        acc[k] += (lanes[0][k] + lanes[1][k]) + (lanes[2][k] + lanes[3][k]);
    }
}

/// Checks that x is a whole number in [lo, hi] (inclusive); the message names the support.
pub(crate) fn integer_in(x: f64, lo: f64, hi: f64, support: &str) -> Option<String> {
    if x.fract() != 0.0 || x < lo || x > hi {
        Some(format!("value {x} is outside the support ({support})"))
    } else {
        None
    }
}
