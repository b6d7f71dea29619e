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
mod beta;
pub mod categorical;
pub mod censored;
mod exponential;
mod gamma;
mod gaussian;
pub mod head;
mod laplace;
pub mod link;
mod lognormal;
mod negative_binomial;
mod poisson;
mod student_t;
mod weibull;

pub use bernoulli::Bernoulli;
pub use beta::Beta;
pub use categorical::Categorical;
pub use censored::Censored;
pub use exponential::Exponential;
pub use gamma::Gamma;
pub use gaussian::Gaussian;
pub use head::{Conditional, Head, NullModel};
pub use laplace::Laplace;
pub use link::MeanLink;
pub use lognormal::Lognormal;
pub use negative_binomial::NegativeBinomial;
pub use poisson::Poisson;
pub use student_t::StudentT;
pub use weibull::Weibull;

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

impl NamedParam {
    /// A scalar parameter.
    pub fn scalar(name: &'static str, value: f64) -> Self {
        NamedParam {
            name,
            value: ParamValue::Scalar(value),
        }
    }
}

/// The message of a family whose likelihood is unbounded on constant data (`parameter` -> 0
/// or grows without bound, as `limit` says), or None where the data vary.
pub(crate) fn unbounded_if_constant(s: &Summary, limit: &str) -> Option<Degenerate> {
    (s.min == s.max).then(|| {
        Degenerate::Unbounded(format!(
            "all {} values equal {}: the likelihood grows without bound as {limit}",
            s.n, s.min
        ))
    })
}

/// The support check of the families on x > 0 (gamma, lognormal, Weibull).
pub(crate) fn positive_support_error(x: f64) -> Option<String> {
    (!(x > 0.0 && x.is_finite())).then(|| format!("value {x} is outside the support (x > 0)"))
}

/// A rate family's start: the log rate of the samples' midrange (their units, not the
/// answer), 0 where that is not positive and finite.
pub(crate) fn log_rate_of_midrange(s: &Summary) -> f64 {
    let mid = 0.5 * s.min + 0.5 * s.max;
    if mid > 0.0 && mid.is_finite() {
        -mid.ln()
    } else {
        0.0
    }
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
    /// An upper bound on the loop iterations [`Family::wgsl`]'s `accumulate` runs for one
    /// sample (0: it has no loops). A software adapter ends an invocation's loops after a
    /// fixed number of iterations in all ([`crate::gpu::shader::SOFTWARE_LOOP_LIMIT`]), so
    /// its kernels give each invocation few enough samples of a family with loops.
    fn kernel_loop_iterations(&self) -> u32 {
        0
    }
    /// For the f32 reduction only: `accumulate` and `add_run(acc, run)` where the family packs
    /// a run's terms into fewer f32s (counts of at most `gpu::shader::RUN` samples as 5-bit
    /// digits of exact integers) and `add_run` splits them into its terms; `None`: the run
    /// holds the terms of [`Family::wgsl`] as they are. The f64 kernel always sums `wgsl`.
    fn packed_run_wgsl(&self) -> Option<String> {
        None
    }
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
    /// Whether [`Family::hessian`] is the NLL's exact Hessian, so Newton's method applies (the
    /// Laplace family's is the expected information for mu, where the NLL has kinks).
    fn exact_hessian(&self) -> bool {
        true
    }
    /// The diagonal of [`Family::hessian`] (families with many parameters compute it without
    /// the dense matrix).
    fn hessian_diagonal(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let p = theta.len();
        let h = self.hessian(n, sums, theta);
        (0..p).map(|j| h[j * p + j]).collect()
    }
    /// For families whose NLL has kinks: per coordinate, the NLL's derivatives from the left
    /// and from the right (equal where it is smooth). `None` for smooth families.
    fn derivative_intervals(
        &self,
        _n: f64,
        _sums: &[f64],
        _theta: &[f64],
    ) -> Option<Vec<(f64, f64)>> {
        None
    }
    /// Where the MLE of some coordinates is infinite (a probability or rate of 0 or 1 that the
    /// data put on the boundary), theta with those coordinates moved far enough out that the
    /// NLL is within (DECREMENT_TOLERANCE)^2 / 2 of its infimum along them; `None` when no
    /// coordinate is on the boundary. Optimisers approach such a limit only linearly.
    fn boundary_point(&self, _n: f64, _sums: &[f64], _theta: &[f64]) -> Option<Vec<f64>> {
        None
    }
    /// The coordinates at theta that lie on the boundary as [`Family::boundary_point`]
    /// places them (their MLE infinite, theta within one unit of log-odds of its depth or
    /// beyond): the NLL along them is within a few times (DECREMENT_TOLERANCE)^2 / 2 of its
    /// infimum, so the optimality test holds them where they are, as an L1 prior's zeros.
    /// (Their curvature, about 1e-23 of a sample's, would otherwise make the Newton
    /// decrement of the rest a ratio of rounding errors.)
    fn on_boundary(&self, _n: f64, _sums: &[f64], theta: &[f64]) -> Vec<bool> {
        vec![false; theta.len()]
    }
    /// What a user should know where [`Family::boundary_point`] moved the estimate for a
    /// reason the data's range does not show ([`Family::degenerate`] reports the others): the
    /// negative binomial's counts that are not overdispersed.
    fn boundary_warning(&self, _n: f64, _sums: &[f64]) -> Option<String> {
        None
    }
    /// A direction along which the NLL is exactly constant (the categorical logits' common
    /// shift), or `None`. Newton's method and the optimality test add curvature along it, so
    /// that rounding noise in the gradient does not move the estimate along it or dominate the
    /// decrement; inference still sees it as the harmless null direction it is.
    fn invariant_direction(&self) -> Option<Vec<f64>> {
        None
    }
    /// Whether the NLL has kinks along coordinate `j` (the Laplace's mu): the optimality test
    /// there is the subgradient condition, from [`Family::derivative_intervals`].
    fn kinked(&self, _j: usize) -> bool {
        false
    }
    /// Whether an observation right-censored at x (the event not seen by x: X > x, a
    /// lifetime still running when observation ended) has a likelihood in this family, the
    /// survival function S(x) = P(X > x) of [`Family::censored_nll`].
    fn censorable(&self) -> bool {
        false
    }
    /// -ln S(x | theta), the NLL of an observation right-censored at x, into `out[0]`; its
    /// gradient in theta into `out[1..=p]`; its Hessian in theta (row-major) into the p^2
    /// after. `out` holds 1 + p + p^2 values. Families that are not
    /// [`Family::censorable`] write NaN.
    fn censored_nll(&self, _x: f64, _theta: &[f64], out: &mut [f64]) {
        out.fill(f64::NAN);
    }
    /// How the samples may be re-expressed before they are rounded to f32 (see [`SampleMap`]).
    fn rescaling(&self) -> Rescaling {
        Rescaling::None
    }
}

/// How a family's parameters follow an affine re-expression of its samples,
/// x' = (x - shift) * inv_scale with inv_scale a power of two: a fit on x' estimates the
/// parameters of x' (theta'), which map back exactly to those of x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rescaling {
    /// Samples are used as they are (0/1, class indices, counts: exact in f32).
    None,
    /// theta = (..., log rate), the log rate last (the exponential's only parameter, the
    /// gamma's after its log shape, which does not change): x' = x * inv_scale (no shift: the
    /// support starts at 0) has rate' = rate / inv_scale.
    Rate,
    /// theta = (location, log scale): x' = (x - shift) * inv_scale has
    /// location' = (location - shift) * inv_scale and scale' = scale * inv_scale.
    Location,
    /// theta = (..., log scale), the log scale last (the Weibull's, after its log shape):
    /// x' = x * inv_scale has scale' = scale * inv_scale.
    Scale,
    /// theta = (mu, log sigma) of ln x (the lognormal): x' = x * inv_scale (no shift: the
    /// support starts at 0) has mu' = mu + ln inv_scale.
    LogLocation,
}

/// The re-expression x' = (x - shift) * inv_scale of a family's samples under which an engine
/// evaluates them. The GPU engines use it so that f32 keeps what the data carry: 1e8 + N(0, 1)
/// is shifted by its midrange in f64 before it is rounded (f32 resolves 8 at 1e8, so the
/// unshifted samples lose their spread), and a power-of-two scale (exact) keeps samples near
/// 1e-30 from squaring into underflow and samples near 1e50 out of f32 overflow. The CPU
/// engine (f64) shifts samples far from the origin (see [`SampleMap::for_f64`]) and scales
/// only data beyond 2^+-400 (squares of values near 1e-300 underflow f64). Fits run on theta'
/// (well scaled whatever the data's units) and map back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleMap {
    pub shift: f64,
    pub inv_scale: f64,
    rescaling: Rescaling,
}

/// 2^-e for the exponent e of v (v = m 2^e, 0.5 <= m < 1), kept within f64's range.
fn inverse_power_of_two(v: f64) -> f64 {
    if !(v > 0.0 && v.is_finite()) {
        return 1.0;
    }
    let e = v.log2().floor() as i32 + 1;
    2f64.powi(-e.clamp(-1000, 1000))
}

impl SampleMap {
    /// No re-expression.
    pub fn identity() -> Self {
        SampleMap {
            shift: 0.0,
            inv_scale: 1.0,
            rescaling: Rescaling::None,
        }
    }

    /// The map for samples in [min, max] on an f32 engine: shifted by the midrange (location
    /// families) and scaled into [-1, 1].
    pub fn for_f32(family: &dyn Family, min: f64, max: f64) -> Self {
        match family.rescaling() {
            Rescaling::None => Self::identity(),
            rescaling @ (Rescaling::Rate | Rescaling::Scale | Rescaling::LogLocation) => {
                SampleMap {
                    shift: 0.0,
                    inv_scale: inverse_power_of_two(min.abs().max(max.abs())),
                    rescaling,
                }
            }
            Rescaling::Location => {
                let shift = 0.5 * min + 0.5 * max;
                let half = 0.5 * max - 0.5 * min;
                let inv_scale = if half > 0.0 {
                    inverse_power_of_two(half)
                } else {
                    inverse_power_of_two(shift.abs())
                };
                SampleMap {
                    shift,
                    inv_scale,
                    rescaling: Rescaling::Location,
                }
            }
        }
    }

    /// The map for an f64 engine: a location family's samples far from the origin (their
    /// midrange beyond their half-range) are shifted by the midrange, so that the location
    /// parameter is resolved to the data's own precision (at 1e15, f64 steps by 0.125: an
    /// unshifted mu could not come within 0.02 of the mean of 1e15 + N(0, 1)); and a
    /// power-of-two scale where the samples' magnitude or spread is beyond 2^+-400.
    pub fn for_f64(family: &dyn Family, min: f64, max: f64) -> Self {
        let rescaling = family.rescaling();
        let midrange = 0.5 * min + 0.5 * max;
        let spread = 0.5 * max - 0.5 * min;
        let shift = if rescaling == Rescaling::Location && midrange.abs() > spread {
            midrange
        } else {
            0.0
        };
        let largest = (min - shift).abs().max((max - shift).abs());
        let tiny = spread > 0.0 && spread < 2f64.powi(-400);
        let inv_scale = if rescaling != Rescaling::None && (largest > 2f64.powi(400) || tiny) {
            inverse_power_of_two(if tiny { spread } else { largest })
        } else {
            1.0
        };
        if rescaling == Rescaling::None || (shift == 0.0 && inv_scale == 1.0) {
            return Self::identity();
        }
        SampleMap {
            shift,
            inv_scale,
            rescaling,
        }
    }

    /// Whether an f32 kernel may read f32 samples in [min, max] as they are (no
    /// re-expression): its per-sample terms and their workgroup sums then stay well inside
    /// f32's normal range. A location family's terms are d = x - mu and d^2; with mu within
    /// 2^50 of the origin (the samples are), |d| <= 2^51 and a workgroup's 2^19 squares sum
    /// below 2^121. The range is held to [2^-20, 2^40]: at least as wide as the re-expressed
    /// samples' [-1, 1] scaled up by 2^20, so that a square underflows only where the bulk is
    /// 2^-43 of the range or less (the re-expression scales a range below 1 up, and the
    /// samples' own spread then needs less). A rate family's term is x, held to a largest
    /// sample in [2^-60, 2^60]. Data outside these bounds are re-expressed in memory instead
    /// ([`SampleMap::for_f32`]).
    pub fn f32_samples_as_they_are(family: &dyn Family, min: f64, max: f64) -> bool {
        match family.rescaling() {
            Rescaling::None => true,
            Rescaling::Rate | Rescaling::Scale | Rescaling::LogLocation => {
                let largest = min.abs().max(max.abs());
                (2f64.powi(-60)..=2f64.powi(60)).contains(&largest)
            }
            Rescaling::Location => {
                let largest = min.abs().max(max.abs());
                largest <= 2f64.powi(50) && (2f64.powi(-20)..=2f64.powi(40)).contains(&(max - min))
            }
        }
    }

    pub fn is_identity(&self) -> bool {
        self.rescaling == Rescaling::None || (self.shift == 0.0 && self.inv_scale == 1.0)
    }

    /// x' for one sample.
    #[inline]
    pub fn apply(&self, x: f64) -> f64 {
        (x - self.shift) * self.inv_scale
    }

    /// theta' from theta.
    pub fn to_mapped(&self, theta: &[f64]) -> Vec<f64> {
        let mut t = theta.to_vec();
        match self.rescaling {
            Rescaling::None => {}
            Rescaling::Rate => {
                if let Some(log_rate) = t.last_mut() {
                    *log_rate -= self.inv_scale.ln();
                }
            }
            Rescaling::Location => {
                t[0] = (t[0] - self.shift) * self.inv_scale;
                t[1] += self.inv_scale.ln();
            }
            Rescaling::LogLocation => t[0] += self.inv_scale.ln(),
            Rescaling::Scale => {
                if let Some(log_scale) = t.last_mut() {
                    *log_scale += self.inv_scale.ln();
                }
            }
        }
        t
    }

    /// theta from theta'.
    pub fn from_mapped(&self, mapped: &[f64]) -> Vec<f64> {
        let mut t = mapped.to_vec();
        match self.rescaling {
            Rescaling::None => {}
            Rescaling::Rate => {
                if let Some(log_rate) = t.last_mut() {
                    *log_rate += self.inv_scale.ln();
                }
            }
            Rescaling::Location => {
                t[0] = t[0] / self.inv_scale + self.shift;
                t[1] -= self.inv_scale.ln();
            }
            Rescaling::LogLocation => t[0] -= self.inv_scale.ln(),
            Rescaling::Scale => {
                if let Some(log_scale) = t.last_mut() {
                    *log_scale -= self.inv_scale.ln();
                }
            }
        }
        t
    }

    /// theta' = a theta + b per coordinate: the factors a (powers of two) and offsets b.
    pub fn coordinate_affine(&self, p: usize) -> (Vec<f64>, Vec<f64>) {
        let (mut a, mut b) = (vec![1.0; p], vec![0.0; p]);
        match self.rescaling {
            Rescaling::None => {}
            Rescaling::Rate if p > 0 => b[p - 1] = -self.inv_scale.ln(),
            Rescaling::Rate => {}
            Rescaling::Location => {
                a[0] = self.inv_scale;
                b[0] = -self.shift * self.inv_scale;
                b[1] = self.inv_scale.ln();
            }
            Rescaling::LogLocation => b[0] = self.inv_scale.ln(),
            Rescaling::Scale if p > 0 => b[p - 1] = self.inv_scale.ln(),
            Rescaling::Scale => {}
        }
        (a, b)
    }

    /// x from x'.
    pub fn unapply(&self, mapped: f64) -> f64 {
        mapped / self.inv_scale + self.shift
    }

    /// The summary of the samples from that of x'.
    pub fn unmap_summary(&self, s: Summary) -> Summary {
        Summary {
            n: s.n,
            min: self.unapply(s.min),
            max: self.unapply(s.max),
        }
    }

    /// The NLL of the samples from the NLL of x' over `n` samples: a density of x' is the
    /// density of x divided by inv_scale.
    pub fn nll_from_mapped(&self, nll: f64, n: f64) -> f64 {
        match self.rescaling {
            Rescaling::None => nll,
            _ => nll - n * self.inv_scale.ln(),
        }
    }
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
    Gamma,
    Lognormal,
    Weibull,
    NegativeBinomial,
    Beta,
    StudentT,
}

impl FamilyName {
    pub const ALL: [FamilyName; 12] = [
        FamilyName::Bernoulli,
        FamilyName::Gaussian,
        FamilyName::Categorical,
        FamilyName::Laplace,
        FamilyName::Poisson,
        FamilyName::Exponential,
        FamilyName::Gamma,
        FamilyName::Lognormal,
        FamilyName::Weibull,
        FamilyName::NegativeBinomial,
        FamilyName::Beta,
        FamilyName::StudentT,
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
            FamilyName::Gamma => Box::new(Gamma),
            FamilyName::Lognormal => Box::new(Lognormal),
            FamilyName::Weibull => Box::new(Weibull),
            FamilyName::NegativeBinomial => Box::new(NegativeBinomial),
            FamilyName::Beta => Box::new(Beta),
            FamilyName::StudentT => Box::new(StudentT),
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
            FamilyName::Gamma => "gamma",
            FamilyName::Lognormal => "lognormal",
            FamilyName::Weibull => "weibull",
            FamilyName::NegativeBinomial => "negative-binomial",
            FamilyName::Beta => "beta",
            FamilyName::StudentT => "student-t",
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
            #[test]
            fn gamma() {
                let $name = $crate::family::FamilyName::Gamma;
                $body
            }
            #[test]
            fn lognormal() {
                let $name = $crate::family::FamilyName::Lognormal;
                $body
            }
            #[test]
            fn weibull() {
                let $name = $crate::family::FamilyName::Weibull;
                $body
            }
            #[test]
            fn negative_binomial() {
                let $name = $crate::family::FamilyName::NegativeBinomial;
                $body
            }
            #[test]
            fn beta() {
                let $name = $crate::family::FamilyName::Beta;
                $body
            }
            #[test]
            fn student_t() {
                let $name = $crate::family::FamilyName::StudentT;
                $body
            }
        }
    };
}

/// Number of families the test macro covers; tests compare it with [`FamilyName::ALL`].
pub const FAMILIES_IN_TEST_MACRO: usize = 12;

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

/// How far out (in log units) a coordinate whose MLE is infinite is placed over `n` samples:
/// its remaining decrease n e^-BOUNDARY_DEPTH is below half the squared decrement tolerance.
pub(crate) fn boundary_depth(n: f64) -> f64 {
    n.max(1.0).ln() + 2.0 * (1.0 / crate::fit::DECREMENT_TOLERANCE).ln() + 2.0
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
