//! A family as the head of a model: how a row's outputs eta (the linear predictor, or the
//! logits) and the family's global parameters (log sigma, log b) parameterise it for one row,
//! the row's NLL and its derivatives in (eta, globals), the mean `predict` reports, a linear
//! model's intercept-only start, and the WGSL of the same row for the GPU network kernels.
//!
//! Each family implements [`Conditional`] in its own file, beside its [`super::Family`]
//! (the intercept-only fit's sufficient statistics); [`FamilyName::conditional`] is the one
//! exhaustive list, so a family without a head does not compile.

use super::link::MeanLink;
use super::FamilyName;
use rand::rngs::StdRng;

/// A family as the output of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub family: FamilyName,
    /// K for the categorical family, 1 otherwise.
    pub classes: usize,
    /// Categorical only: the first class's logit is fixed at 0 (as in statsmodels' MNLogit),
    /// so a linear model is identified; otherwise all K logits are outputs (softmax over K).
    pub reference: bool,
    /// How the output eta maps to the family's mean: one of the family's
    /// [`Conditional::mean_links`], the first of which (its native parameter) is the default.
    pub link: MeanLink,
}

/// The row likelihood of a family given its outputs: one definition serving the CPU network,
/// Newton's method, `predict` and, through [`Conditional::head_wgsl`], the GPU kernels.
pub trait Conditional: Sync {
    /// Width of the network's output layer.
    fn outputs(&self, head: &Head) -> usize {
        let _ = head;
        1
    }

    /// The natural names of the head's global parameters (those the network does not
    /// produce), each optimised as its logarithm: `sigma` for the Gaussian, `b` for the
    /// Laplace.
    fn global_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the model is a classifier (accuracy is reported).
    fn is_classifier(&self) -> bool {
        false
    }

    /// The links the head takes, its native one first: the link under which `eta` is the
    /// parameter every other method is written in (the logit for the Bernoulli, the log mean
    /// for the Poisson). Any other is composed with it by [`MeanLink::to_native`].
    fn mean_links(&self) -> &'static [MeanLink];

    /// NLL of target `y` given outputs `eta` and `globals`; writes dNLL/deta into `d_eta` and
    /// adds dNLL/dglobals into `d_globals`.
    fn nll(
        &self,
        head: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        d_eta: &mut [f64],
        d_globals: &mut [f64],
    ) -> f64;

    /// The observed second derivatives d^2 NLL / d(eta, globals)^2 of one row into `h`
    /// (row-major m x m, m = outputs + globals, zero on entry), or why the NLL has none.
    fn hessian(
        &self,
        head: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        h: &mut [f64],
    ) -> Result<(), String>;

    /// d^2 NLL / deta^2 of a one-output head without globals, given the row's dNLL/deta
    /// (`slope`): what the Newton pass's blocks need per row, where a family has it cheaply.
    fn curvature(&self, head: &Head, eta: f64, y: f64, slope: f64) -> Result<f64, String> {
        let _ = slope;
        let mut h = [0.0];
        self.hessian(head, &[eta], &[], y, &mut h)?;
        Ok(h[0])
    }

    /// What `predict` reports: class probabilities (K), P(y = 1), or the mean of y.
    fn predict(&self, head: &Head, eta: &[f64], globals: &[f64]) -> Vec<f64>;

    /// The outputs eta of the intercept-only MLE of targets `y` (where it exists; a class or
    /// count with no rows gets the nearest finite value): a linear model's starting
    /// intercepts. Starting at eta = 0 instead puts an exponential regression on y of 1e300
    /// 690 nats from its optimum, where a Newton step overshoots to overflow.
    fn intercept_only_eta(&self, head: &Head, y: &[f64]) -> Vec<f64>;

    /// Starting values of the globals (as optimised: their logarithms) from the targets: by
    /// default the log of their mean absolute deviation, a scale of y (the Gaussian's sigma,
    /// the Laplace's b).
    fn initial_globals(&self, head: &Head, y: &[f64]) -> Vec<f64> {
        let globals = self.global_names().len();
        let _ = head;
        if globals == 0 {
            return Vec::new();
        }
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let spread = (y.iter().map(|v| (v - mean).abs()).sum::<f64>() / n).max(1e-8);
        vec![spread.ln(); globals]
    }

    /// The family's own parameters theta (those of [`super::Family::log_density`]) at the
    /// head's outputs and globals: by default (eta, globals) as they are; the gamma head's
    /// (log mean, log shape) is the family's (log shape, log shape - log mean).
    fn family_theta(&self, head: &Head, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        let _ = head;
        eta.iter().chain(globals).copied().collect()
    }

    /// A target in the family's support, for tests of every head.
    fn random_target(&self, head: &Head, rng: &mut StdRng) -> f64;

    /// The unit deviance d(y, mu) = 2 (log p(y | mu = y) - log p(y | mu)) at the mean `mean`
    /// (what `predict` reports), as statsmodels' GLM sums it into `deviance`; the Gaussian's
    /// is (y - mu)^2, free of sigma. `None`: the family has no deviance (Laplace).
    fn unit_deviance(&self, head: &Head, mean: &[f64], y: f64) -> Option<f64> {
        let _ = (head, mean, y);
        None
    }

    /// The variance function V(mu) of Pearson's chi^2, sum (y - mu)^2 / V(mu); `None` where
    /// the family has none (categorical, Laplace).
    fn variance(&self, mean: f64) -> Option<f64> {
        let _ = mean;
        None
    }

    /// Statistics of a slice of targets from which the null model (the intercept-only model
    /// at its MLE, the reference of `llr` and `pseudo_r2`) follows: one slice's, merged in
    /// row order by [`Conditional::merge_null_parts`]. `None`: slices cannot give it (the
    /// Laplace's median needs every target at once).
    fn null_part(&self, head: &Head, y: &[f64]) -> Option<Vec<f64>>;

    /// Adds the statistics of later rows to `into`: their sum, unless the family's are not
    /// sums.
    fn merge_null_parts(&self, into: &mut Vec<f64>, later: &[f64]) {
        into.iter_mut().zip(later).for_each(|(a, b)| *a += b);
    }

    /// The null model from the statistics of every row. Classes or counts that never occur
    /// sit on their boundary (p = 0, lambda = 0), where the log-likelihood is the limit. Not
    /// reached for a family whose [`Conditional::null_part`] is `None` (the default: NaN).
    fn null_model(&self, head: &Head, part: &[f64]) -> NullModel {
        let _ = (head, part);
        NullModel {
            loglik: f64::NAN,
            deviance: None,
        }
    }

    /// The null model with the globals held at `globals` (as optimised: their logarithms),
    /// the reference of a fit whose globals `--fix` holds: only the intercept is estimated.
    /// `None` where the family has no such form.
    fn null_model_at(&self, head: &Head, part: &[f64], globals: &[f64]) -> Option<NullModel> {
        let _ = (head, part, globals);
        None
    }

    /// WGSL for the f32 network kernels (`shaders/mlp.wgsl`): `head_eval(eta, y, s) ->
    /// HeadRow` (the row's NLL less its constant part, dNLL/deta and dNLL/ds for the global
    /// s) and `head_hessian_at(z, h, y)`, which writes the row's m x m second derivatives
    /// at `work[h]` from its outputs at `work[z]`. `None`: the network kernels cannot carry
    /// this head (they hold one global per head; the t has two).
    fn head_wgsl(&self) -> Option<&'static str>;

    /// WGSL for the f64 per-row pass of linear models (`shaders/linear64.wgsl`):
    /// `head_row(eta, y, constant, at)` writes the NLL, the M slopes and the upper triangle
    /// of the M x M curvatures at `per_row[at]`. `None`: the GPU does not sum this head's
    /// derivatives in f64 (the Gaussian and Laplace linear models are solved exactly on the
    /// CPU instead).
    fn head64_wgsl(&self) -> Option<&'static str> {
        None
    }
}

impl FamilyName {
    /// The link a head of this family takes by default: its native parameter's.
    pub fn native_link(self) -> MeanLink {
        self.conditional().mean_links()[0]
    }

    /// The links a head of this family takes, the default first.
    pub fn mean_links(self) -> &'static [MeanLink] {
        self.conditional().mean_links()
    }

    /// The family's head: the one place that lists every family's [`Conditional`].
    pub fn conditional(self) -> &'static dyn Conditional {
        match self {
            FamilyName::Bernoulli => &super::Bernoulli,
            FamilyName::Gaussian => &super::Gaussian,
            FamilyName::Categorical => &super::categorical::AS_HEAD,
            FamilyName::Laplace => &super::Laplace,
            FamilyName::Poisson => &super::Poisson,
            FamilyName::Exponential => &super::Exponential,
            FamilyName::Gamma => &super::Gamma,
            FamilyName::Lognormal => &super::Lognormal,
            FamilyName::Weibull => &super::Weibull,
            FamilyName::NegativeBinomial => &super::NegativeBinomial,
            FamilyName::Beta => &super::Beta,
            FamilyName::StudentT => &super::StudentT,
        }
    }
}

impl Head {
    /// The family's head at its native link.
    pub fn new(family: FamilyName, classes: usize, reference: bool) -> Head {
        Head {
            family,
            classes,
            reference,
            link: family.native_link(),
        }
    }

    /// The same head under `link`, or why the family does not take it.
    pub fn with_link(self, link: MeanLink) -> Result<Head, String> {
        let links = self.family.mean_links();
        if links.contains(&link) {
            Ok(Head { link, ..self })
        } else {
            Err(format!(
                "the {} family takes the link{} {} (default {}), not {}",
                self.family.as_str(),
                if links.len() > 1 { "s" } else { "" },
                links
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                links[0].as_str(),
                link.as_str()
            ))
        }
    }

    /// Whether the head is at its family's native link (every method is then the family's
    /// own, and the GPU kernels apply).
    pub fn has_native_link(&self) -> bool {
        self.link == self.family.native_link()
    }

    fn definition(&self) -> &'static dyn Conditional {
        self.family.conditional()
    }

    /// (t, t', t'') of the native parameter at output `eta` ([`MeanLink::to_native`]); `None`
    /// outside the link's domain.
    fn native(&self, eta: f64) -> Option<[f64; 3]> {
        self.link.to_native(self.family.native_link(), eta).ok()
    }

    /// Each row's parameter-free NLL part for target `y` (e.g. ln y! for Poisson), which the
    /// GPU kernels add to the row's loss.
    pub fn row_constants(&self, y: &[f64]) -> Vec<f64> {
        let family = self.family.build(self.classes);
        y.iter().map(|&v| family.constant(v)).collect()
    }

    /// Width of the network's output layer.
    pub fn outputs(&self) -> usize {
        self.definition().outputs(self)
    }

    /// Parameters of the head not produced by the network (log sigma, log b).
    pub fn globals(&self) -> usize {
        self.definition().global_names().len()
    }

    /// The natural names of the global parameters.
    pub fn global_names(&self) -> &'static [&'static str] {
        self.definition().global_names()
    }

    /// The natural name of the (first) global parameter, where the head has one.
    pub fn global_name(&self) -> Option<&'static str> {
        self.definition().global_names().first().copied()
    }

    /// Whether the model is a classifier (accuracy is reported).
    pub fn is_classifier(&self) -> bool {
        self.definition().is_classifier()
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
        if self.has_native_link() {
            return self
                .definition()
                .nll(self, eta, globals, y, d_eta, d_globals);
        }
        // Under another link: the native NLL at t(eta), its slope times t'. Outside the
        // link's domain the row has no likelihood: +inf, and no direction to follow.
        let Some([t, t1, _]) = self.native(eta[0]) else {
            d_eta.fill(0.0);
            return f64::INFINITY;
        };
        let f = self
            .definition()
            .nll(self, &[t], globals, y, d_eta, d_globals);
        d_eta[0] *= t1;
        f
    }

    /// d^2 NLL / d(eta, globals)^2 for one row, row-major m x m with m = outputs + globals.
    pub fn hessian(&self, eta: &[f64], globals: &[f64], y: f64) -> Result<Vec<f64>, String> {
        let m = self.outputs() + self.globals();
        let mut h = vec![0.0; m * m];
        if self.has_native_link() {
            self.definition().hessian(self, eta, globals, y, &mut h)?;
            return Ok(h);
        }
        let Some([t, t1, t2]) = self.native(eta[0]) else {
            return Ok(h);
        };
        self.definition().hessian(self, &[t], globals, y, &mut h)?;
        let (mut slope, mut scratch) = ([0.0], vec![0.0; self.globals()]);
        self.definition()
            .nll(self, &[t], globals, y, &mut slope, &mut scratch);
        // d^2/deta^2 = f''(t) t'^2 + f'(t) t''; the cross terms with the globals gain t'.
        h[0] = h[0] * t1 * t1 + slope[0] * t2;
        for j in 1..m {
            h[j] *= t1;
            h[j * m] *= t1;
        }
        Ok(h)
    }

    /// d^2 NLL / deta^2 of a one-output head without globals, given dNLL/deta.
    pub fn curvature(&self, eta: f64, y: f64, slope: f64) -> Result<f64, String> {
        if self.has_native_link() {
            return self.definition().curvature(self, eta, y, slope);
        }
        Ok(self.hessian(&[eta], &[], y)?[0])
    }

    /// What `predict` reports: class probabilities (K), P(y = 1), or the mean of y (NaN
    /// where eta is outside the link's domain).
    pub fn predict(&self, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        if self.has_native_link() {
            return self.definition().predict(self, eta, globals);
        }
        match self.native(eta[0]) {
            Some([t, _, _]) => self.definition().predict(self, &[t], globals),
            None => vec![f64::NAN; self.outputs()],
        }
    }

    /// The K logits, with the reference class's 0 prepended when there is one.
    pub fn logits(&self, eta: &[f64]) -> Vec<f64> {
        if self.reference {
            std::iter::once(0.0).chain(eta.iter().copied()).collect()
        } else {
            eta.to_vec()
        }
    }

    /// The predicted class (classifiers only).
    pub fn predicted_class(&self, eta: &[f64]) -> f64 {
        if self.family == FamilyName::Bernoulli {
            return (eta[0] > 0.0) as u8 as f64;
        }
        let z = self.logits(eta);
        let mut best = 0;
        for (k, v) in z.iter().enumerate() {
            if *v > z[best] {
                best = k;
            }
        }
        best as f64
    }

    /// A linear model's starting intercepts: see [`Conditional::intercept_only_eta`]; under
    /// another link, that model's mean through the link.
    pub fn intercept_only_eta(&self, y: &[f64]) -> Vec<f64> {
        let native = self.definition().intercept_only_eta(self, y);
        if self.has_native_link() {
            return native;
        }
        let globals = self.initial_globals(y);
        let mean = self.definition().predict(self, &native, &globals)[0];
        vec![self.link.of_mean(mean)]
    }

    /// Starting values of the globals from the targets ([`Conditional::initial_globals`]).
    pub fn initial_globals(&self, y: &[f64]) -> Vec<f64> {
        self.definition().initial_globals(self, y)
    }

    /// See [`Conditional::unit_deviance`].
    pub fn unit_deviance(&self, mean: &[f64], y: f64) -> Option<f64> {
        self.definition().unit_deviance(self, mean, y)
    }

    /// See [`Conditional::variance`].
    pub fn variance(&self, mean: f64) -> Option<f64> {
        self.definition().variance(mean)
    }

    /// The null model's statistics of the targets `y` ([`Conditional::null_part`]).
    pub fn null_part(&self, y: &[f64]) -> Option<Vec<f64>> {
        self.definition().null_part(self, y)
    }

    /// Adds the statistics of later rows to `into` ([`Conditional::merge_null_parts`]).
    pub fn merge_null_part(&self, into: &mut Vec<f64>, later: &[f64]) {
        self.definition().merge_null_parts(into, later)
    }

    /// The null model from merged statistics ([`Conditional::null_model`]).
    pub fn null_model_of(&self, part: &[f64]) -> NullModel {
        self.definition().null_model(self, part)
    }

    /// The null model at held globals ([`Conditional::null_model_at`]).
    pub fn null_model_at(&self, part: &[f64], globals: &[f64]) -> Option<NullModel> {
        self.definition().null_model_at(self, part, globals)
    }

    /// The family's theta at these outputs and globals ([`Conditional::family_theta`]).
    pub fn family_theta(&self, eta: &[f64], globals: &[f64]) -> Vec<f64> {
        if self.has_native_link() {
            return self.definition().family_theta(self, eta, globals);
        }
        let t = self.native(eta[0]).map_or(f64::NAN, |[t, _, _]| t);
        self.definition().family_theta(self, &[t], globals)
    }

    /// A target in the head's support.
    pub fn random_target(&self, rng: &mut StdRng) -> f64 {
        self.definition().random_target(self, rng)
    }

    /// The head's WGSL for the f32 network kernels ([`Conditional::head_wgsl`]).
    pub fn wgsl(&self) -> Option<&'static str> {
        self.definition().head_wgsl()
    }

    /// The head's WGSL for the f64 linear-model pass ([`Conditional::head64_wgsl`]).
    pub fn wgsl64(&self) -> Option<&'static str> {
        self.definition().head64_wgsl()
    }
}

/// The finite value of `v`, or 0.
pub(super) fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// The intercept-only model at its MLE.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct NullModel {
    /// Its log-likelihood, `llnull`.
    pub loglik: f64,
    /// Its deviance, `null_deviance`, where the family has one.
    pub deviance: Option<f64>,
}

/// x ln(x / m), 0 at x = 0 (its limit): the saturated model's part of a deviance.
pub(super) fn x_log_x_over(x: f64, m: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x * (x / m).ln()
    }
}

/// The mean of `y` (of at least one row).
pub(super) fn mean(y: &[f64]) -> f64 {
    y.iter().sum::<f64>() / y.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every head's derivatives against central differences of its own NLL, its Hessian
    /// against differences of its gradient, and the Newton blocks' curvature shortcut
    /// against its Hessian, at random outputs, globals and targets, under every link the
    /// family takes (outputs drawn inside the link's domain).
    #[test]
    fn every_head_is_differentiated_as_its_nll() {
        let mut rng = StdRng::seed_from_u64(11);
        for family in FamilyName::ALL {
            for (reference, &link) in [false, true]
                .into_iter()
                .flat_map(|r| family.mean_links().iter().map(move |l| (r, l)))
            {
                let classes = if family == FamilyName::Categorical {
                    4
                } else {
                    1
                };
                let head = Head::new(
                    family,
                    classes,
                    reference && family == FamilyName::Categorical,
                )
                .with_link(link)
                .unwrap();
                let (o, g) = (head.outputs(), head.globals());
                for _ in 0..20 {
                    let range = if head.native(-1.0).is_some() {
                        -2.0..2.0
                    } else {
                        0.2..3.0
                    };
                    let eta: Vec<f64> = (0..o).map(|_| rng.random_range(range.clone())).collect();
                    let globals: Vec<f64> = (0..g).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let y = head.random_target(&mut rng);
                    // The gradient of (eta, globals) as one vector.
                    let gradient = |v: &[f64]| {
                        let (mut d_eta, mut d_globals) = (vec![0.0; o], vec![0.0; g]);
                        let f = head.nll(&v[..o], &v[o..], y, &mut d_eta, &mut d_globals);
                        (f, [d_eta, d_globals].concat())
                    };
                    let at = [eta.clone(), globals.clone()].concat();
                    let (_, grad) = gradient(&at);
                    let h = 1e-5;
                    let hessian = head.hessian(&eta, &globals, y);
                    for j in 0..o + g {
                        let (mut up, mut down) = (at.clone(), at.clone());
                        up[j] += h;
                        down[j] -= h;
                        let ((f_up, g_up), (f_down, g_down)) = (gradient(&up), gradient(&down));
                        let fd = (f_up - f_down) / (2.0 * h);
                        // Laplace's |y - mu| has a kink: a target within h of mu is skipped.
                        if family == FamilyName::Laplace && (y - eta[0]).abs() < 2.0 * h {
                            continue;
                        }
                        // Central differences err by h^2 f''' / 6, which grows with the NLL's
                        // size (a Weibull row far from its scale adds e^(k t) in the
                        // thousands): the bounds are relative to the derivative beyond 1.
                        assert!(
                            (fd - grad[j]).abs() < 1e-7 * grad[j].abs().max(1.0),
                            "{head:?} d{j}: {} vs {fd}",
                            grad[j]
                        );
                        let Ok(hess) = &hessian else { continue };
                        for k in 0..o + g {
                            let fd2 = (g_up[k] - g_down[k]) / (2.0 * h);
                            let exact = hess[k * (o + g) + j];
                            assert!(
                                (fd2 - exact).abs() < 1e-6 * exact.abs().max(1.0),
                                "{head:?} h{k}{j}: {exact} vs {fd2}"
                            );
                        }
                    }
                    assert_eq!(hessian.is_err(), family == FamilyName::Laplace, "{head:?}");
                    if o == 1 && g == 0 {
                        let shortcut = head.curvature(eta[0], y, grad[0]).unwrap();
                        let exact = hessian.as_ref().unwrap()[0];
                        assert!((shortcut - exact).abs() <= 1e-14 * exact.abs(), "{head:?}");
                    }
                }
            }
        }
    }

    /// The family's head without a reference class; `classes` for the categorical.
    fn plain_head(family: FamilyName, classes: usize) -> Head {
        Head::new(
            family,
            if family == FamilyName::Categorical {
                classes
            } else {
                1
            },
            false,
        )
    }

    /// A head without a reference class is its family at the family's theta for (eta,
    /// globals) (mostly (eta, globals) themselves), so one row's NLL is minus the family's
    /// textbook log-density there (written separately, in the family's `log_density`).
    #[test]
    fn every_head_is_its_family_at_theta_eta_and_globals() {
        let mut rng = StdRng::seed_from_u64(12);
        for (family, &link) in FamilyName::ALL
            .into_iter()
            .flat_map(|f| f.mean_links().iter().map(move |l| (f, l)))
        {
            let head = plain_head(family, 3).with_link(link).unwrap();
            let classes = head.classes;
            let definition = family.build(classes);
            // Inside the link's domain (a positive mean for an identity-link Poisson).
            let low = if head.native(-2.0).is_some() {
                -2.0
            } else {
                0.2
            };
            for _ in 0..50 {
                let theta: Vec<f64> = (0..head.outputs() + head.globals())
                    .map(|_| rng.random_range(low..2.0))
                    .collect();
                let y = head.random_target(&mut rng);
                let (o, g) = (head.outputs(), head.globals());
                let nll = head.nll(
                    &theta[..o],
                    &theta[o..],
                    y,
                    &mut vec![0.0; o],
                    &mut vec![0.0; g],
                );
                let want = -definition.log_density(y, &head.family_theta(&theta[..o], &theta[o..]));
                assert!(
                    (nll - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{head:?} y {y}: {nll} vs {want}"
                );
            }
        }
    }

    /// The null model from merged slices equals the whole's (Gaussian targets far from 0
    /// included, where the squares about a wrong mean would cancel), its log-likelihood is
    /// the rows' at the intercept-only MLE, and no other intercept-only point beats it.
    #[test]
    fn every_null_model_is_the_intercept_only_mle_of_its_rows() {
        let mut rng = StdRng::seed_from_u64(13);
        for family in FamilyName::ALL {
            for offset in [0.0, 1e9] {
                let head = plain_head(family, 4);
                let classes = head.classes;
                let shift = if family == FamilyName::Gaussian {
                    offset
                } else {
                    0.0
                };
                let y: Vec<f64> = (0..3000)
                    .map(|_| head.random_target(&mut rng) + shift)
                    .collect();
                let Some(whole) = head.null_part(&y) else {
                    assert!(matches!(
                        family,
                        FamilyName::Laplace | FamilyName::Weibull | FamilyName::StudentT
                    ));
                    continue;
                };
                let mut merged = head.null_part(&[]).unwrap();
                let mut at = 0;
                while at < y.len() {
                    let end = (at + rng.random_range(1..700)).min(y.len());
                    head.merge_null_part(&mut merged, &head.null_part(&y[at..end]).unwrap());
                    at = end;
                }
                let (a, b) = (head.null_model_of(&whole), head.null_model_of(&merged));
                let close = |u: f64, v: f64| (u - v).abs() <= 1e-12 * u.abs().max(1.0);
                assert!(close(a.loglik, b.loglik), "{head:?}: {a:?} vs {b:?}");
                // The lognormal has no deviance (not an exponential-dispersion family of y).
                match (a.deviance, b.deviance) {
                    (Some(u), Some(v)) => assert!(close(u, v), "{head:?}"),
                    (None, None) => assert!(matches!(
                        family,
                        FamilyName::Lognormal | FamilyName::NegativeBinomial | FamilyName::Beta
                    )),
                    other => panic!("{head:?}: {other:?}"),
                }
                // The MLE: intercept_only_eta (exact here: a positive mean occurs), the log
                // class counts for the categorical (intercept_only_eta adds half a row to
                // each), and for the Gaussian sigma^2 = the mean squared deviation.
                let eta = match family {
                    FamilyName::Categorical => (0..classes)
                        .map(|k| (y.iter().filter(|&&v| v == k as f64).count() as f64).ln())
                        .collect(),
                    _ => head.intercept_only_eta(&y),
                };
                let mean = mean(&y);
                let msd = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64;
                // The globals' MLE: sigma^2 = the mean squared deviation for the Gaussian,
                // the shape's own equation for the gamma and alpha's for the negative
                // binomial (solved by initial_globals; the random counts are overdispersed).
                let globals = match family {
                    FamilyName::Gamma
                    | FamilyName::Lognormal
                    | FamilyName::NegativeBinomial
                    | FamilyName::Beta => head.initial_globals(&y),
                    _ => vec![0.5 * msd.ln(); head.globals()],
                };
                let loglik = |eta: &[f64], globals: &[f64]| -> f64 {
                    let (mut d_eta, mut d_globals) =
                        (vec![0.0; eta.len()], vec![0.0; globals.len()]);
                    -y.iter()
                        .map(|&v| head.nll(eta, globals, v, &mut d_eta, &mut d_globals))
                        .sum::<f64>()
                };
                let at_mle = loglik(&eta, &globals);
                assert!(
                    (at_mle - a.loglik).abs() <= 1e-10 * at_mle.abs(),
                    "{head:?}: {at_mle} vs {}",
                    a.loglik
                );
                for _ in 0..20 {
                    let e: Vec<f64> = eta
                        .iter()
                        .map(|v| v + rng.random_range(-0.1..0.1))
                        .collect();
                    let g: Vec<f64> = globals
                        .iter()
                        .map(|v| v + rng.random_range(-0.1..0.1))
                        .collect();
                    assert!(loglik(&e, &g) <= a.loglik, "{head:?}");
                }
            }
        }
    }
}
