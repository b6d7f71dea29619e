//! Statistical inference at the optimum: covariance of the estimates (observed information,
//! outer product of gradients, or the sandwich), standard errors on the natural scale by the
//! delta method, Wald z and p-values, confidence intervals built on each parameter's link
//! scale (so they respect its support), log-likelihood, AIC and BIC, and diagnostics for
//! singular information.

use crate::family::Link;
use crate::linalg::{matmul, pseudo_inverse};

/// `--cov`: how the covariance of the estimates is estimated (as statsmodels' cov_type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CovType {
    /// Inverse of the observed information (the NLL's Hessian).
    #[default]
    Hessian,
    /// Inverse of the outer product of per-sample gradients.
    Opg,
    /// The sandwich H^-1 G H^-1, robust to misspecification.
    Robust,
}

/// One parameter's estimate with its uncertainty.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Estimate {
    pub name: String,
    pub estimate: f64,
    pub se: f64,
    pub z: f64,
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The inputs inference needs about a fit, in the unconstrained parameters theta.
pub struct FitSummary<'a> {
    pub theta: &'a [f64],
    /// Names of theta's coordinates (for diagnostics).
    pub theta_names: Vec<String>,
    /// Hessian of the objective at theta (row-major).
    pub hessian: Vec<f64>,
    /// Sum of outer products of per-sample gradients, when OPG or robust is asked for.
    pub outer: Option<Vec<f64>>,
    /// Natural parameters as a function of theta (flattened), with names and links.
    pub natural: &'a dyn Fn(&[f64]) -> Vec<f64>,
    /// d natural / d theta (rows: natural parameters), where known exactly; central
    /// differences of `natural` otherwise.
    pub jacobian: Option<Vec<Vec<f64>>>,
    pub natural_names: Vec<String>,
    pub links: Vec<Link>,
    /// Coordinates of theta held on the boundary of the parameter space, their MLE infinite
    /// ([`crate::family::Family::on_boundary`]); empty where none are.
    pub on_boundary: Vec<bool>,
    /// Coordinates of theta held at a value (`--fix`): not estimated, so without standard
    /// errors, not counted in k, and out of the others' covariance. Empty where none are.
    pub fixed: Vec<bool>,
    pub nll: f64,
    /// The observations counted: rows, or the sum of their frequency weights.
    pub n: f64,
}

/// Everything `--json` reports about uncertainty.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inference {
    pub cov_type: CovType,
    pub alpha: f64,
    pub estimates: Vec<Estimate>,
    pub llf: f64,
    /// Number of identified parameters (the rank of the information).
    pub k: usize,
    /// The observations counted (BIC's n): rows, or the sum of their frequency weights.
    pub n: f64,
    pub aic: f64,
    pub bic: f64,
    pub warnings: Vec<String>,
}

/// Most free parameters inference computes standard errors for: the covariance is a dense
/// p x p matrix (p^2 f64s, O(p^3) to invert). Larger fits report their estimates, likelihood
/// and information criteria, with NaN uncertainty and a warning.
pub const MAX_INFERENCE_PARAMS: usize = 2048;

/// Estimates without uncertainty, for fits of more than [`MAX_INFERENCE_PARAMS`] free
/// parameters; the information criteria count all `p` of them.
fn without_standard_errors(
    estimates: Vec<(String, f64)>,
    p: usize,
    nll: f64,
    n: f64,
    cov_type: CovType,
    alpha: f64,
) -> Inference {
    let llf = -nll;
    Inference {
        cov_type,
        alpha,
        estimates: estimates
            .into_iter()
            .map(|(name, estimate)| Estimate {
                name,
                estimate,
                se: f64::NAN,
                z: f64::NAN,
                p_value: f64::NAN,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
            })
            .collect(),
        llf,
        k: p,
        n,
        aic: 2.0 * p as f64 - 2.0 * llf,
        bic: p as f64 * n.ln() - 2.0 * llf,
        warnings: vec![format!(
            "{p} free parameters: standard errors are computed for at most \
             {MAX_INFERENCE_PARAMS} (their covariance is a dense {p} x {p} matrix), so they are NaN"
        )],
    }
}

/// P(|Z| > |z|) for a standard normal Z.
pub fn two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// The z with P(|Z| > z) = alpha (bisection on erfc, to f64 precision).
pub fn normal_quantile_two_sided(alpha: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if two_sided_p(mid) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Central-difference Jacobian of `f` at `x` (rows: outputs, columns: inputs).
fn jacobian(f: &dyn Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    let m = f(x).len();
    let mut jac = vec![vec![0.0; x.len()]; m];
    for j in 0..x.len() {
        let h = 1e-6 * x[j].abs().max(1.0);
        let (mut up, mut down) = (x.to_vec(), x.to_vec());
        up[j] += h;
        down[j] -= h;
        let (fu, fd) = (f(&up), f(&down));
        for i in 0..m {
            jac[i][j] = (fu[i] - fd[i]) / (2.0 * h);
        }
    }
    jac
}

/// Computes standard errors, tests, intervals and information criteria.
pub fn infer(fit: &FitSummary<'_>, cov_type: CovType, alpha: f64) -> Inference {
    let p = fit.theta.len();
    let mut warnings = Vec::new();
    // Held coordinates decoupled from the others (their rows and columns a unit's): the free
    // coordinates' covariance is then the inverse of their own block.
    let is_fixed = |j: usize| fit.fixed.get(j).copied().unwrap_or(false);
    let decouple = |m: &[f64]| -> Vec<f64> {
        let mut m = m.to_vec();
        for a in 0..p {
            for b in 0..p {
                if is_fixed(a) || is_fixed(b) {
                    m[a * p + b] = if a == b { 1.0 } else { 0.0 };
                }
            }
        }
        m
    };
    let (h_inv, null) = pseudo_inverse(&decouple(&fit.hessian), p, 1e-10);
    let cov = match (cov_type, &fit.outer) {
        (CovType::Hessian, _) | (_, None) => h_inv.clone(),
        (CovType::Opg, Some(g)) => pseudo_inverse(&decouple(g), p, 1e-10).0,
        (CovType::Robust, Some(g)) => matmul(&matmul(&h_inv, &decouple(g), p), &h_inv, p),
    };
    let values = (fit.natural)(fit.theta);
    let jac = fit
        .jacobian
        .clone()
        .unwrap_or_else(|| jacobian(fit.natural, fit.theta));
    // A direction the data does not determine is harmless when no natural parameter moves
    // along it (the categorical logits' common shift); otherwise those parameters have no
    // standard error.
    let mut undetermined = vec![false; values.len()];
    for v in &null {
        let moved: Vec<usize> = (0..values.len())
            .filter(|&i| {
                let along: f64 = jac[i].iter().zip(v).map(|(a, b)| a * b).sum();
                let size = jac[i].iter().map(|a| a * a).sum::<f64>().sqrt();
                along.abs() > 1e-6 * size.max(1e-300)
            })
            .collect();
        if !moved.is_empty() {
            let involved: Vec<&str> = v
                .iter()
                .enumerate()
                .filter(|(_, c)| c.abs() > 0.1)
                .map(|(i, _)| fit.theta_names[i].as_str())
                .collect();
            warnings.push(format!(
                "the information matrix is singular (not positive definite) along {}: the data do not determine them; \
                 their standard errors are NaN",
                involved.join(", ")
            ));
            moved.iter().for_each(|&i| undetermined[i] = true);
        }
    }
    // A probability whose MLE is 0 or 1 (a class that never occurs) sits on the boundary of
    // its range, with its logit at infinity: the curvature there says nothing about its
    // uncertainty, however the information matrix is scaled.
    // "At 0" means an expected count n p far below one sample, whatever n is.
    let negligible = 1e-3 / fit.n.max(1.0);
    let on_boundary: Vec<usize> = (0..values.len())
        .filter(|&i| {
            fit.links[i] == Link::Logit && !(values[i] > negligible && values[i] < 1.0 - negligible)
        })
        .collect();
    // Those not already undetermined by a null direction of the information (counted there).
    let newly_undetermined = on_boundary.iter().filter(|&&i| !undetermined[i]).count();
    if !on_boundary.is_empty() {
        let names: Vec<&str> = on_boundary
            .iter()
            .map(|&i| fit.natural_names[i].as_str())
            .collect();
        warnings.push(format!(
            "{} at the boundary of [0, 1] (the MLE of a probability is 0 or 1): their standard \
             errors are NaN",
            names.join(", ")
        ));
        on_boundary.iter().for_each(|&i| undetermined[i] = true);
    }
    // A positive parameter whose log is held on the boundary (the negative binomial's alpha
    // of counts that are not overdispersed) has its MLE at 0: no standard error either.
    let at_zero: Vec<usize> = (0..values.len())
        .filter(|&i| {
            !undetermined[i]
                && fit.links[i] == Link::Log
                && fit
                    .on_boundary
                    .iter()
                    .enumerate()
                    .any(|(j, &held)| held && jac[i][j] != 0.0)
        })
        .collect();
    if !at_zero.is_empty() {
        let names: Vec<&str> = at_zero
            .iter()
            .map(|&i| fit.natural_names[i].as_str())
            .collect();
        warnings.push(format!(
            "{} at the boundary of (0, inf) (the MLE is 0): their standard errors are NaN",
            names.join(", ")
        ));
        at_zero.iter().for_each(|&i| undetermined[i] = true);
    }
    // Natural parameters of held coordinates alone: fixed, not estimated.
    let fixed_count = (0..p).filter(|&j| is_fixed(j)).count();
    if fixed_count > 0 {
        for (i, row) in jac.iter().enumerate() {
            if row
                .iter()
                .enumerate()
                .all(|(j, &d)| d == 0.0 || is_fixed(j))
            {
                undetermined[i] = true;
            }
        }
    }
    let z_crit = normal_quantile_two_sided(alpha);
    let estimates = values
        .iter()
        .enumerate()
        .map(|(i, &estimate)| {
            let var: f64 = (0..p)
                .map(|a| {
                    (0..p)
                        .map(|b| jac[i][a] * cov[a * p + b] * jac[i][b])
                        .sum::<f64>()
                })
                .sum();
            let se = if undetermined[i] || var.is_nan() || var < 0.0 {
                f64::NAN
            } else {
                var.sqrt()
            };
            let link = fit.links[i];
            let g = link.forward(estimate);
            let se_g = se * link.derivative(estimate);
            let (ci_low, ci_high) = (
                link.inverse(g - z_crit * se_g),
                link.inverse(g + z_crit * se_g),
            );
            let z = estimate / se;
            Estimate {
                name: fit.natural_names[i].clone(),
                estimate,
                se,
                z,
                p_value: two_sided_p(z),
                ci_low,
                ci_high,
            }
        })
        .collect();
    let k = (p - null.len())
        .saturating_sub(newly_undetermined)
        .saturating_sub(fixed_count);
    let llf = -fit.nll;
    let n = fit.n;
    Inference {
        cov_type,
        alpha,
        estimates,
        llf,
        k,
        n: fit.n,
        aic: 2.0 * k as f64 - 2.0 * llf,
        bic: k as f64 * n.ln() - 2.0 * llf,
        warnings,
    }
}

/// Sum over samples of g_i g_i^T, given each sample's gradient.
pub fn outer_sum(gradients: impl Iterator<Item = Vec<f64>>, p: usize) -> Vec<f64> {
    let mut g = vec![0.0; p * p];
    for gi in gradients {
        for a in 0..p {
            if gi[a] != 0.0 {
                for b in 0..p {
                    g[a * p + b] += gi[a] * gi[b];
                }
            }
        }
    }
    g
}

/// The names of a family's natural parameters (one per component of a vector) and their
/// links.
fn natural_names(family: &dyn crate::family::Family, theta: &[f64]) -> (Vec<String>, Vec<Link>) {
    let mut names = Vec::new();
    let mut links = Vec::new();
    for (param, link) in family.natural(theta).iter().zip(family.links()) {
        match &param.value {
            crate::family::ParamValue::Scalar(_) => names.push(param.name.to_string()),
            crate::family::ParamValue::Vector(v) => {
                names.extend((0..v.len()).map(|k| format!("{}[{k}]", param.name)))
            }
        }
        links.extend(std::iter::repeat_n(link, param.value.values().len()));
    }
    (names, links)
}

/// Inference for a family fitted on an engine: the Hessian from the engine's term sums (its
/// f64 sums where it has them) in the coordinates the fit ran in (phi = a theta, see
/// [`crate::fit::fit`]), the outer product of per-sample gradients in f64 on the host, and the
/// prior's curvature for an L2 MAP fit. `theta` and `nll` are the samples' own.
#[allow(clippy::too_many_arguments)]
pub fn for_family(
    engine: &mut dyn crate::engine::Engine,
    theta: &[f64],
    nll: f64,
    data: &(impl crate::data::SampleValues + ?Sized),
    prior: Option<crate::fit::Prior>,
    cov_type: CovType,
    alpha: f64,
    fixed: &[bool],
) -> crate::Result<Inference> {
    let (p, n) = (theta.len(), engine.count());
    if p > MAX_INFERENCE_PARAMS {
        let (names, _) = natural_names(engine.family(), theta);
        let values = engine.family().natural(theta);
        let values = values.iter().flat_map(|p| p.value.values());
        let estimates = names.into_iter().zip(values).collect();
        return Ok(without_standard_errors(
            estimates, p, nll, n, cov_type, alpha,
        ));
    }
    let map = engine.sample_map();
    let coordinates = crate::fit::FitCoordinates::new(engine, prior);
    let phi = coordinates.to_psi(theta);
    let at: Vec<f64> = phi
        .iter()
        .zip(&coordinates.offset)
        .map(|(v, o)| v + o)
        .collect();
    let sums = match engine.exact_term_sums(&at)? {
        Some(sums) => sums,
        None => engine.term_sums(&at)?,
    };
    let family = crate::family::rebuild(engine.family());
    let (names, links) = natural_names(family.as_ref(), theta);
    let mut hessian = family.hessian(n, &sums, &at);
    if let Some(prior) = prior {
        coordinates.prior(prior).add_curvature(&mut hessian);
    }
    let outer = (cov_type != CovType::Hessian).then(|| {
        let mut t = vec![0.0; family.n_terms()];
        let kp = family.kernel_params(&at);
        // A row of frequency weight w is w rows with one score g: w g g^T, the outer
        // product of sqrt(w) g.
        let weights = data.sample_weights();
        // A right-censored sample's score is that of its -ln S (the map is the identity).
        let censored = data.sample_censored();
        let mut survival = vec![0.0; 1 + at.len() * (at.len() + 1)];
        outer_sum(
            data.sample_values().enumerate().map(|(i, x)| {
                let mut g = if censored.is_some_and(|flags| flags[i]) {
                    family.censored_nll(x, &at, &mut survival);
                    survival[1..=at.len()].to_vec()
                } else {
                    family.terms(map.apply(x), &kp, &mut t);
                    family.finish(1.0, &t, &at).1
                };
                if let Some(w) = weights {
                    let root = w[i].sqrt();
                    g.iter_mut().for_each(|v| *v *= root);
                }
                g
            }),
            p,
        )
    });
    let natural = |v: &[f64]| {
        let theta = coordinates.to_theta(v);
        family
            .natural(&theta)
            .iter()
            .flat_map(|p| p.value.values())
            .collect::<Vec<f64>>()
    };
    // d natural / d phi by the chain rule through the exact affine map theta = (phi + offset
    // - b) / a: differences taken in phi would round away in theta where the offset is large
    // (a mean of 1e8 has an ulp of 1.5e-8), so the Jacobian is differenced in theta.
    let natural_of_theta = |t: &[f64]| {
        family
            .natural(t)
            .iter()
            .flat_map(|p| p.value.values())
            .collect::<Vec<f64>>()
    };
    let jacobian = jacobian(&natural_of_theta, theta)
        .into_iter()
        .map(|row| {
            row.iter()
                .zip(&coordinates.scale)
                .map(|(d, a)| d / a)
                .collect()
        })
        .collect();
    let mut result = infer(
        &FitSummary {
            theta: &phi,
            theta_names: family.theta_names(),
            hessian,
            outer,
            natural: &natural,
            jacobian: Some(jacobian),
            natural_names: names,
            links,
            on_boundary: family.on_boundary(n, &sums, &at),
            fixed: fixed.to_vec(),
            nll,
            n,
        },
        cov_type,
        alpha,
    );
    if matches!(prior, Some(crate::fit::Prior::L1 { .. })) {
        result.warnings.push("standard errors ignore the L1 prior (its curvature is zero away from 0 and undefined at 0)".into());
    }
    Ok(result)
}

/// A problem with coordinate `j` held at `value`: the profile likelihood's inner fit.
struct Fixed<'a> {
    inner: &'a mut dyn crate::fit::Differentiable,
    full: Vec<f64>,
    j: usize,
}

impl Fixed<'_> {
    fn expand(&self, reduced: &[f64]) -> Vec<f64> {
        let mut full = self.full.clone();
        let mut it = reduced.iter();
        for (i, v) in full.iter_mut().enumerate() {
            if i != self.j {
                *v = *it.next().expect("reduced has p - 1 values");
            }
        }
        full
    }
}

impl crate::fit::Differentiable for Fixed<'_> {
    fn n(&self) -> usize {
        self.inner.n()
    }
    fn unit_roundoff(&self) -> f64 {
        self.inner.unit_roundoff()
    }
    fn nll_and_grad(&mut self, reduced: &[f64]) -> crate::Result<(f64, Vec<f64>)> {
        let full = self.expand(reduced);
        let (f, g) = self.inner.nll_and_grad(&full)?;
        Ok((
            f,
            g.iter()
                .enumerate()
                .filter(|(i, _)| *i != self.j)
                .map(|(_, v)| *v)
                .collect(),
        ))
    }
}

/// The profile objective at theta_j = t: the NLL minimised over the other coordinates
/// (with the prior as in the original fit).
fn profile_nll(
    problem: &mut dyn crate::fit::Differentiable,
    theta_hat: &[f64],
    j: usize,
    t: f64,
    prior: Option<&crate::fit::PriorLayout>,
    options: &crate::fit::FitOptions,
) -> crate::Result<f64> {
    let mut full = theta_hat.to_vec();
    full[j] = t;
    let prior_at = |theta: &[f64]| prior.map_or(0.0, |p| -p.log_density(theta));
    if theta_hat.len() == 1 {
        return Ok(problem.nll_and_grad(&full)?.0 + prior_at(&full));
    }
    let without_j = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .enumerate()
            .filter(|(i, _)| *i != j)
            .map(|(_, f)| *f)
            .collect()
    };
    let reduced = prior.map(|p| crate::fit::PriorLayout {
        prior: p.prior,
        factors: without_j(&p.factors),
        centers: without_j(&p.centers),
    });
    let start: Vec<f64> = full
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != j)
        .map(|(_, v)| *v)
        .collect();
    let mut fixed = Fixed {
        inner: problem,
        full: full.clone(),
        j,
    };
    let options = crate::fit::FitOptions {
        optimizer: crate::fit::Optimizer::Lbfgs,
        ..options.clone()
    };
    let result = crate::fit::minimize(&mut fixed, start, reduced, &options)?;
    let full = fixed.expand(&result.theta);
    Ok(result.nll + prior_at(&full))
}

/// The two values of theta_j where the profile objective rises by z^2 / 2 above its minimum
/// (the likelihood-ratio interval), found by bracketing outwards from the Wald step and
/// bisecting; `None` on a side where no crossing exists within 2^20 Wald steps.
#[allow(clippy::too_many_arguments)]
pub fn profile_interval(
    problem: &mut dyn crate::fit::Differentiable,
    theta_hat: &[f64],
    objective_hat: f64,
    j: usize,
    se_j: f64,
    z_crit: f64,
    prior: Option<&crate::fit::PriorLayout>,
    options: &crate::fit::FitOptions,
) -> crate::Result<(Option<f64>, Option<f64>)> {
    let target = objective_hat + 0.5 * z_crit * z_crit;
    let step = if se_j.is_finite() && se_j > 0.0 {
        se_j * z_crit
    } else {
        0.1 * theta_hat[j].abs().max(1.0)
    };
    let mut ends = [None, None];
    for (side, sign) in [(0, -1.0), (1, 1.0)] {
        let (mut inside, mut width) = (theta_hat[j], step);
        let mut outside = None;
        for _ in 0..20 {
            let t = theta_hat[j] + sign * width;
            if profile_nll(problem, theta_hat, j, t, prior, options)? >= target {
                outside = Some(t);
                break;
            }
            inside = t;
            width *= 2.0;
        }
        let Some(mut out) = outside else { continue };
        for _ in 0..60 {
            let mid = 0.5 * (inside + out);
            if profile_nll(problem, theta_hat, j, mid, prior, options)? >= target {
                out = mid;
            } else {
                inside = mid;
            }
            if (out - inside).abs() <= 1e-10 * (1.0 + out.abs()) {
                break;
            }
        }
        ends[side] = Some(0.5 * (inside + out));
    }
    Ok((ends[0], ends[1]))
}

/// Replaces the Wald intervals of a family's scalar natural parameters by profile-likelihood
/// intervals (natural parameter i is a monotone function of theta_i for those families), in the
/// coordinates the fit ran in, from the engine's f64 sums where it has them.
pub fn profile_family(
    engine: &mut dyn crate::engine::Engine,
    result: &crate::fit::FitResult,
    options: &crate::fit::FitOptions,
    alpha: f64,
    inference: &mut Inference,
) -> crate::Result<()> {
    let family = crate::family::rebuild(engine.family());
    if family.name() == "categorical" {
        inference.warnings.push("profile intervals are not computed for categorical probabilities: they are Wald intervals on the logit scale".into());
        return Ok(());
    }
    let z_crit = normal_quantile_two_sided(alpha);
    let p = result.theta.len();
    let coordinates = crate::fit::FitCoordinates::new(engine, options.prior);
    let phi = coordinates.to_psi(&result.theta);
    let prior = options.prior.map(|prior| coordinates.prior(prior));
    let mut problem = crate::fit::EngineProblem {
        engine,
        offset: coordinates.offset.clone(),
        exact: true,
        pin_invariant: false,
        held: Vec::new(),
    };
    use crate::fit::Differentiable;
    let nll_phi = problem.nll_and_grad(&phi)?.0;
    let objective_hat = nll_phi - prior.as_ref().map_or(0.0, |p| p.log_density(&phi));
    for j in 0..p {
        // For these families theta_j = link(natural_j), so se on theta's scale is the delta method.
        let (estimate, se, name) = {
            let e = &inference.estimates[j];
            (e.estimate, e.se, e.name.clone())
        };
        let se_phi = se * family.links()[j].derivative(estimate) * coordinates.scale[j];
        let (lo, hi) = profile_interval(
            &mut problem,
            &phi,
            objective_hat,
            j,
            se_phi,
            z_crit,
            prior.as_ref(),
            options,
        )?;
        let at = |t: f64| {
            let mut psi = phi.clone();
            psi[j] = t;
            family.natural(&coordinates.to_theta(&psi))[j]
                .value
                .values()[0]
        };
        let (a, b) = (lo.map_or(f64::NAN, at), hi.map_or(f64::NAN, at));
        inference.estimates[j].ci_low = a.min(b);
        inference.estimates[j].ci_high = a.max(b);
        if lo.is_none() || hi.is_none() {
            inference.warnings.push(format!("the profile likelihood of {name} does not cross the interval's level on one side: the interval is unbounded there (NaN)"));
        }
    }
    Ok(())
}

/// Inference for a linear model. `hessian` is the NLL's Hessian over all rows (from the CPU
/// or the GPU reduction), or `None` where the head has none (Laplace). Parameters held fixed
/// (a dropped intercept) are left out; an L2 prior's curvature is added on the weights.
#[allow(clippy::too_many_arguments)]
pub fn for_linear_model(
    model: &crate::model::Model,
    x: &[f64],
    y: &[f64],
    hessian: Option<Vec<f64>>,
    nll: f64,
    frozen: &[bool],
    prior: Option<crate::fit::Prior>,
    cov_type: CovType,
    alpha: f64,
) -> Inference {
    let outer = (cov_type != CovType::Hessian).then(|| {
        let mut sum = vec![0.0; model.network.param_count().pow(2)];
        add_score_outer(&model.network, &model.params, x, y, None, &mut sum);
        sum
    });
    for_linear_model_sums(
        model,
        &LinearSums {
            n: y.len(),
            nll,
            hessian,
            outer,
            conditioned: None,
        },
        frozen,
        prior,
        cov_type,
        alpha,
    )
}

/// Adds sum_i g_i g_i^T over rows (x row-major, y, as `cond` re-expresses them) to `sum`
/// (P x P): the outer product of the rows' NLL gradients at `params` (conditioned
/// coordinates), for `--cov opg` and `robust`.
pub fn add_score_outer(
    net: &crate::model::Network,
    params: &[f64],
    x: &[f64],
    y: &[f64],
    cond: Option<&crate::model::Conditioning>,
    sum: &mut [f64],
) {
    let d = net.inputs;
    let mut row = vec![0.0; d];
    let part = outer_sum(
        (0..y.len()).map(|r| {
            let raw = &x[r * d..(r + 1) * d];
            match cond {
                Some(c) => {
                    c.row_into(raw, &mut row);
                    net.row_gradient(params, &row, c.target(y[r]))
                }
                None => net.row_gradient(params, raw, y[r]),
            }
        }),
        net.param_count(),
    );
    sum.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
}

/// What inference on a linear model takes from the data: sums over all rows, from a table in
/// memory or a streamed pass.
pub struct LinearSums {
    pub n: usize,
    /// The NLL at the estimate.
    pub nll: f64,
    /// The NLL's Hessian (P x P), or `None` where the head has none (Laplace).
    pub hessian: Option<Vec<f64>>,
    /// sum_i g_i g_i^T of the rows' gradients, needed by `--cov opg` and `robust`.
    pub outer: Option<Vec<f64>>,
    /// Where the model was fitted on conditioned rows: the conditioning and the conditioned
    /// parameters, in whose coordinates `hessian` and `outer` are (the covariance maps back
    /// through the conditioning's exact Jacobian).
    pub conditioned: Option<(crate::model::Conditioning, Vec<f64>)>,
}

/// [`for_linear_model`] from sums over the rows.
pub fn for_linear_model_sums(
    model: &crate::model::Model,
    sums: &LinearSums,
    frozen: &[bool],
    prior: Option<crate::fit::Prior>,
    cov_type: CovType,
    alpha: f64,
) -> Inference {
    let (nll, hessian) = (sums.nll, &sums.hessian);
    let net = &model.network;
    let p_all = net.param_count();
    let keep: Vec<usize> = (0..p_all)
        .filter(|&j| !frozen.get(j).copied().unwrap_or(false))
        .collect();
    let p = keep.len();
    let keys = model.param_keys();
    let names: Vec<String> = keep
        .iter()
        .map(|&j| match &keys[j] {
            (Some(c), name) => format!("{c}:{name}"),
            (None, name) => name.clone(),
        })
        .collect();
    let g_at = net.globals_offset();
    if p > MAX_INFERENCE_PARAMS {
        let values = keep.iter().map(|&j| {
            let v = model.params[j];
            if j >= g_at {
                v.exp()
            } else {
                v
            }
        });
        let estimates = names.into_iter().zip(values).collect();
        return without_standard_errors(estimates, p, nll, sums.n as f64, cov_type, alpha);
    }
    let reduce = |m: &[f64]| -> Vec<f64> {
        keep.iter()
            .flat_map(|&a| keep.iter().map(move |&b| m[a * p_all + b]))
            .collect()
    };
    let mut warnings = Vec::new();
    let mut h = match hessian {
        Some(full) => reduce(full),
        None => {
            warnings.push("the Laplace NLL (absolute error) has no Hessian: standard errors from the observed information are NaN (use --cov opg)".into());
            vec![0.0; p * p]
        }
    };
    // The coordinates the sums are in: conditioned (with the map back to the model's), or the
    // model's own.
    let (theta_full, factors, jac_full) = match &sums.conditioned {
        Some((cond, conditioned)) => (
            conditioned.clone(),
            cond.prior_factors(net),
            Some(cond.jacobian(net)),
        ),
        None => (
            model.params.clone(),
            net.weight_mask()
                .iter()
                .map(|&m| if m { 1.0 } else { 0.0 })
                .collect(),
            None,
        ),
    };
    if let Some(crate::fit::Prior::L2 { scale }) = prior {
        for (i, &j) in keep.iter().enumerate() {
            if factors[j] > 0.0 {
                h[i * p + i] += 1.0 / (scale * factors[j]).powi(2);
            }
        }
    }
    let outer = match (cov_type, &sums.outer) {
        (CovType::Hessian, _) => None,
        (_, Some(full)) => Some(reduce(full)),
        (_, None) => Some(vec![f64::NAN; p * p]),
    };
    let theta: Vec<f64> = keep.iter().map(|&j| theta_full[j]).collect();
    let to_model = |t: &[f64]| -> Vec<f64> {
        let mut full = theta_full.clone();
        keep.iter().zip(t).for_each(|(&j, &v)| full[j] = v);
        match &sums.conditioned {
            Some((cond, _)) => cond.to_original(net, &full),
            None => full,
        }
    };
    let natural = |t: &[f64]| -> Vec<f64> {
        let params = to_model(t);
        keep.iter()
            .map(|&j| {
                if j >= g_at {
                    params[j].exp()
                } else {
                    params[j]
                }
            })
            .collect()
    };
    // d natural / d theta exactly: the conditioning's Jacobian, times e^theta for the globals.
    let jacobian = jac_full.map(|jac| {
        let params = to_model(&theta);
        keep.iter()
            .map(|&a| {
                let chain = if a >= g_at { params[a].exp() } else { 1.0 };
                keep.iter().map(|&b| chain * jac[a * p_all + b]).collect()
            })
            .collect()
    });
    let links = keep
        .iter()
        .map(|&j| if j >= g_at { Link::Log } else { Link::Identity })
        .collect();
    let mut result = infer(
        &FitSummary {
            theta: &theta,
            theta_names: names.clone(),
            hessian: h,
            outer,
            natural: &natural,
            jacobian,
            natural_names: names,
            links,
            on_boundary: Vec::new(),
            fixed: Vec::new(),
            nll,
            n: sums.n as f64,
        },
        cov_type,
        alpha,
    );
    if hessian.is_none() && cov_type != CovType::Opg {
        result.estimates.iter_mut().for_each(|e| {
            e.se = f64::NAN;
            e.z = f64::NAN;
            e.p_value = f64::NAN;
            e.ci_low = f64::NAN;
            e.ci_high = f64::NAN;
        });
        result.warnings.retain(|w| !w.contains("singular"));
    }
    if hessian.is_none() {
        result.k = p;
        result.aic = 2.0 * p as f64 - 2.0 * result.llf;
        result.bic = p as f64 * (sums.n as f64).ln() - 2.0 * result.llf;
    }
    warnings.append(&mut result.warnings);
    result.warnings = warnings;
    result
}

/// Profile-likelihood intervals for a linear model's parameters (CPU engine re-fits): for
/// coefficients on their own scale, for sigma or b on the log scale.
#[allow(clippy::too_many_arguments)]
pub fn profile_linear_model(
    model: &crate::model::Model,
    x: &[f64],
    y: &[f64],
    frozen: &[bool],
    prior: Option<crate::fit::Prior>,
    objective_hat: f64,
    alpha: f64,
    inference: &mut Inference,
) -> crate::Result<()> {
    let mut problem = crate::model::train::FullBatch {
        net: &model.network,
        x,
        y,
        rows: (0..y.len()).collect(),
        frozen,
        cond: None,
    };
    profile_linear_model_on(
        &mut problem,
        model,
        frozen,
        prior,
        objective_hat,
        alpha,
        inference,
    )
}

/// [`profile_linear_model`] on any full-batch problem over the rows (in memory or streamed).
pub fn profile_linear_model_on(
    problem: &mut dyn crate::fit::Differentiable,
    model: &crate::model::Model,
    frozen: &[bool],
    prior: Option<crate::fit::Prior>,
    objective_hat: f64,
    alpha: f64,
    inference: &mut Inference,
) -> crate::Result<()> {
    const MAX_PROFILED: usize = 50;
    let net = &model.network;
    let keep: Vec<usize> = (0..net.param_count())
        .filter(|&j| !frozen.get(j).copied().unwrap_or(false))
        .collect();
    if keep.len() > MAX_PROFILED {
        return Err(crate::Error::Usage(format!(
            "--ci profile re-fits the model twice per parameter; {} parameters is too many (at most {MAX_PROFILED}): use --ci wald",
            keep.len()
        )));
    }
    let options = crate::fit::FitOptions {
        prior,
        ..crate::fit::FitOptions::default()
    };
    let mask = net.weight_mask();
    let layout = prior.map(|prior| crate::fit::PriorLayout::masked(prior, &mask));
    let z_crit = normal_quantile_two_sided(alpha);
    let g_at = net.globals_offset();
    for (i, &j) in keep.iter().enumerate() {
        let (estimate, se) = (inference.estimates[i].estimate, inference.estimates[i].se);
        let se_theta = if j >= g_at { se / estimate } else { se };
        let (lo, hi) = profile_interval(
            problem,
            &model.params,
            objective_hat,
            j,
            se_theta,
            z_crit,
            layout.as_ref(),
            &options,
        )?;
        let natural = |t: f64| if j >= g_at { t.exp() } else { t };
        inference.estimates[i].ci_low = lo.map_or(f64::NAN, natural);
        inference.estimates[i].ci_high = hi.map_or(f64::NAN, natural);
        if lo.is_none() || hi.is_none() {
            let name = inference.estimates[i].name.clone();
            inference.warnings.push(format!("the profile likelihood of {name} does not cross the interval's level on one side: the interval is unbounded there (NaN)"));
        }
    }
    Ok(())
}

/// A conditioned linear model's problem in coordinates omega: the conditioned parameters with
/// each output's intercept replaced by the intercept in the data's units,
/// b = t (b' - sum_j W'_j c_j / s_j) + m, so that profiling an omega coordinate is profiling
/// one of the model's own parameters (a weight is W = t W' / s and log sigma = log sigma' +
/// ln t, both monotone in one coordinate). The profile re-fits then run on conditioned rows.
struct OriginalIntercepts<'a> {
    inner: &'a mut dyn crate::fit::Differentiable,
    net: crate::model::Network,
    cond: crate::model::Conditioning,
}

impl OriginalIntercepts<'_> {
    /// sum_j W'_jo c_j / s_j for output o.
    fn shift(&self, params: &[f64], o: usize) -> f64 {
        let layer = self.net.layers()[0];
        (0..layer.fan_in)
            .map(|j| {
                params[layer.weights + j * layer.fan_out + o]
                    * self.cond.center[j]
                    * self.cond.inv_scale[j]
            })
            .sum()
    }

    fn to_conditioned(&self, omega: &[f64]) -> Vec<f64> {
        let layer = self.net.layers()[0];
        let (t, m) = (self.cond.target_scale(), self.cond.target_center);
        let mut theta = omega.to_vec();
        for o in 0..layer.fan_out {
            theta[layer.bias + o] = (omega[layer.bias + o] - m) / t + self.shift(omega, o);
        }
        theta
    }

    fn omega_of(&self, theta: &[f64]) -> Vec<f64> {
        let layer = self.net.layers()[0];
        let (t, m) = (self.cond.target_scale(), self.cond.target_center);
        let mut omega = theta.to_vec();
        for o in 0..layer.fan_out {
            omega[layer.bias + o] = t * (theta[layer.bias + o] - self.shift(theta, o)) + m;
        }
        omega
    }
}

impl crate::fit::Differentiable for OriginalIntercepts<'_> {
    fn n(&self) -> usize {
        self.inner.n()
    }
    fn unit_roundoff(&self) -> f64 {
        self.inner.unit_roundoff()
    }
    fn nll_and_grad(&mut self, omega: &[f64]) -> crate::Result<(f64, Vec<f64>)> {
        let theta = self.to_conditioned(omega);
        let (f, g) = self.inner.nll_and_grad(&theta)?;
        // d theta / d omega: b'_o depends on omega_b / t and on every W'_jo.
        let layer = self.net.layers()[0];
        let t = self.cond.target_scale();
        let mut out = g.clone();
        for o in 0..layer.fan_out {
            let gb = g[layer.bias + o];
            out[layer.bias + o] = gb / t;
            for j in 0..layer.fan_in {
                out[layer.weights + j * layer.fan_out + o] +=
                    gb * self.cond.center[j] * self.cond.inv_scale[j];
            }
        }
        Ok((f, out))
    }
}

/// [`profile_linear_model_on`] for a model fitted on conditioned rows: `problem` is the
/// conditioned rows' full-batch problem and `conditioned` the fit's conditioned parameters.
#[allow(clippy::too_many_arguments)]
pub fn profile_conditioned_linear_model(
    problem: &mut dyn crate::fit::Differentiable,
    model: &crate::model::Model,
    cond: &crate::model::Conditioning,
    conditioned: &[f64],
    frozen: &[bool],
    prior: Option<crate::fit::Prior>,
    alpha: f64,
    inference: &mut Inference,
) -> crate::Result<()> {
    const MAX_PROFILED: usize = 50;
    let net = model.network.clone();
    let keep: Vec<usize> = (0..net.param_count())
        .filter(|&j| !frozen.get(j).copied().unwrap_or(false))
        .collect();
    if keep.len() > MAX_PROFILED {
        return Err(crate::Error::Usage(format!(
            "--ci profile re-fits the model twice per parameter; {} parameters is too many (at most {MAX_PROFILED}): use --ci wald",
            keep.len()
        )));
    }
    let options = crate::fit::FitOptions {
        prior,
        ..crate::fit::FitOptions::default()
    };
    let layout =
        prior.map(|prior| crate::fit::PriorLayout::scaled(prior, cond.prior_factors(&net)));
    let z_crit = normal_quantile_two_sided(alpha);
    let g_at = net.globals_offset();
    let layer = net.layers()[0];
    let t = cond.target_scale();
    let mut omega_problem = OriginalIntercepts {
        inner: problem,
        net: net.clone(),
        cond: cond.clone(),
    };
    let omega_hat = omega_problem.omega_of(conditioned);
    use crate::fit::Differentiable;
    let objective_hat = omega_problem.nll_and_grad(&omega_hat)?.0
        - layout.as_ref().map_or(0.0, |l| l.log_density(&omega_hat));
    // omega_j in the model's units: a weight's factor t / s_j, an intercept as it is, log
    // sigma shifted by ln t.
    let weight_factor = |j: usize| -> Option<f64> {
        (j >= layer.weights && j < layer.bias)
            .then(|| t * cond.inv_scale[(j - layer.weights) / layer.fan_out])
    };
    for (i, &j) in keep.iter().enumerate() {
        let (estimate, se) = (inference.estimates[i].estimate, inference.estimates[i].se);
        let se_omega = if j >= g_at {
            se / estimate
        } else {
            weight_factor(j).map_or(se, |f| se / f)
        };
        let (lo, hi) = profile_interval(
            &mut omega_problem,
            &omega_hat,
            objective_hat,
            j,
            se_omega,
            z_crit,
            layout.as_ref(),
            &options,
        )?;
        let natural = |w: f64| {
            if j >= g_at {
                (w + t.ln()).exp()
            } else {
                weight_factor(j).map_or(w, |f| w * f)
            }
        };
        let (a, b) = (lo.map_or(f64::NAN, natural), hi.map_or(f64::NAN, natural));
        inference.estimates[i].ci_low = a.min(b);
        inference.estimates[i].ci_high = a.max(b);
        if lo.is_none() || hi.is_none() {
            let name = inference.estimates[i].name.clone();
            inference.warnings.push(format!("the profile likelihood of {name} does not cross the interval's level on one side: the interval is unbounded there (NaN)"));
        }
    }
    Ok(())
}

/// A fitted model against its null model (the intercept-only model of the same targets, at
/// its MLE): the likelihood-ratio statistic and McFadden's pseudo R^2, as statsmodels' Logit,
/// MNLogit and GLM report them (`llnull`, `llr`, `llr_pvalue`, `prsquared`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NullComparison {
    pub llnull: f64,
    /// The null model's deviance, where the family has one.
    pub null_deviance: Option<f64>,
    /// 2 (llf - llnull).
    pub llr: f64,
    /// Degrees of freedom of the comparison: the fitted parameters less the null model's
    /// (the intercepts, where the model has them, and the globals).
    pub df_model: usize,
    /// P(chi^2(df_model) >= llr); `None` for networks with hidden layers, whose parameters
    /// are not identified (the chi^2 limit does not hold).
    pub llr_pvalue: Option<f64>,
    /// McFadden's 1 - llf / llnull.
    pub pseudo_r2: f64,
}

impl NullComparison {
    /// The comparison of a model of log-likelihood `llf` with `fitted` free parameters (those
    /// not frozen) and its null model; `intercept`: whether the model has intercepts (the null
    /// model always has); `held_globals`: globals held at a value in both (`--fix`).
    pub fn new(
        llf: f64,
        null: crate::family::NullModel,
        head: &crate::family::Head,
        fitted: usize,
        intercept: bool,
        identified: bool,
        held_globals: usize,
    ) -> NullComparison {
        let null_params =
            intercept as usize * head.outputs() + head.globals().saturating_sub(held_globals);
        let df_model = fitted.saturating_sub(null_params);
        let llr = 2.0 * (llf - null.loglik);
        NullComparison {
            llnull: null.loglik,
            null_deviance: null.deviance,
            llr,
            df_model,
            llr_pvalue: identified.then(|| chi2_survival(llr.max(0.0), df_model as f64)),
            pseudo_r2: 1.0 - llf / null.loglik,
        }
    }
}

/// P(chi^2(df) >= x), the regularised upper incomplete gamma function Q(df / 2, x / 2); 1
/// at df = 0 (no parameters compared).
pub fn chi2_survival(x: f64, df: f64) -> f64 {
    if df == 0.0 {
        return 1.0;
    }
    crate::special::gamma_q(0.5 * df, 0.5 * x)
}

/// P(|T| >= t) for Student's t with `df` degrees of freedom: I_x(df / 2, 1 / 2) at
/// x = df / (df + t^2), the regularised incomplete beta function.
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    let x = df / (df + t * t);
    crate::special::beta_i(0.5 * df, 0.5, x)
}

/// The t with P(|T| >= t) = alpha (the two-sided critical value at level 1 - alpha): x in
/// I_x(df / 2, 1 / 2) = alpha by bisection (the function rises from 0 to 1 in x), to
/// rounding, then t = sqrt(df (1 - x) / x).
pub fn student_t_quantile_two_sided(alpha: f64, df: f64) -> f64 {
    let (mut low, mut high) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if mid <= low || mid >= high {
            break;
        }
        if crate::special::beta_i(0.5 * df, 0.5, mid) < alpha {
            low = mid;
        } else {
            high = mid;
        }
    }
    let x = 0.5 * (low + high);
    (df * (1.0 - x) / x).sqrt()
}

/// P(F >= f) for the F distribution with (d1, d2) degrees of freedom:
/// I_x(d2 / 2, d1 / 2) at x = d2 / (d2 + d1 f).
pub fn f_survival(f: f64, d1: f64, d2: f64) -> f64 {
    if f.is_nan() {
        return f64::NAN;
    }
    if f <= 0.0 {
        return 1.0;
    }
    if f.is_infinite() {
        return 0.0;
    }
    crate::special::beta_i(0.5 * d2, 0.5 * d1, d2 / (d2 + d1 * f))
}

/// What statsmodels' OLS reports for a Gaussian linear model fitted by maximum likelihood:
/// the unbiased scale RSS / (n - p), the coefficients' standard errors at it, t statistics
/// with n - p degrees of freedom (p-values and intervals from Student's t), R^2 and its
/// adjusted form, and the F test of every coefficient but the intercept.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OlsReport {
    pub scale: f64,
    pub df_resid: usize,
    pub df_model: usize,
    pub rsquared: f64,
    pub rsquared_adj: f64,
    pub fvalue: f64,
    pub f_pvalue: f64,
}

/// The OLS report from the maximum-likelihood inference `mle` of a Gaussian linear model
/// (its first `coefficients` estimates the coefficients, then sigma), the MLE sigma, the
/// targets' total sum of squares about their mean `tss` and n. The coefficients' estimates in `mle` are rewritten in place: at the MLE
/// the information is block diagonal and its coefficient block sigma^2 (X^T X)^-1, so the OLS
/// standard errors are the MLE's times sqrt(n / (n - p)); sigma's own row has no OLS
/// counterpart and is left without a standard error (the report has `scale` instead).
pub fn ols_report(
    mle: &mut Inference,
    coefficients: usize,
    intercept: bool,
    sigma: f64,
    tss: f64,
    n: usize,
) -> crate::Result<OlsReport> {
    let p = coefficients;
    if n <= p {
        return Err(crate::Error::Usage(format!(
            "the OLS report needs more rows than coefficients ({n} rows, {p} coefficients)"
        )));
    }
    if mle.cov_type != CovType::Hessian || mle.estimates.len() != p + 1 {
        return Err(crate::Error::Usage(
            "the OLS report is of an unpenalised Gaussian linear model with --cov hessian".into(),
        ));
    }
    let df_resid = n - p;
    let df_model = p - intercept as usize;
    let rss = n as f64 * sigma * sigma;
    let scale = rss / df_resid as f64;
    let factor = (n as f64 / df_resid as f64).sqrt();
    let critical = student_t_quantile_two_sided(mle.alpha, df_resid as f64);
    for e in &mut mle.estimates[..p] {
        e.se *= factor;
        e.z = e.estimate / e.se;
        e.p_value = student_t_two_sided(e.z, df_resid as f64);
        e.ci_low = e.estimate - critical * e.se;
        e.ci_high = e.estimate + critical * e.se;
    }
    let s = &mut mle.estimates[p];
    (s.se, s.z, s.p_value, s.ci_low, s.ci_high) =
        (f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    let rsquared = 1.0 - rss / tss;
    let k_constant = intercept as usize;
    let rsquared_adj = 1.0 - (n - k_constant) as f64 / df_resid as f64 * (1.0 - rsquared);
    let fvalue = ((tss - rss) / df_model as f64) / scale;
    Ok(OlsReport {
        scale,
        df_resid,
        df_model,
        rsquared,
        rsquared_adj,
        fvalue,
        f_pvalue: f_survival(fvalue, df_model as f64, df_resid as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Student's t and F tails and quantiles against scipy.stats 1.17 (t.ppf, t.sf, f.sf).
    #[test]
    fn t_and_f_distributions_match_scipy() {
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-12 * want.abs();
        let q = student_t_quantile_two_sided(0.05, 10.0);
        assert!(close(q, 2.228138851986274), "{q}");
        let q = student_t_quantile_two_sided(0.005, 3.0);
        assert!(close(q, 7.453318505150679), "{q}");
        let p = student_t_two_sided(2.0, 5.0);
        assert!(close(p, 0.10193947882985835), "{p}");
        let p = student_t_two_sided(-40.0, 9.0);
        assert!(close(p, 1.8982998449339822e-11), "{p}");
        let p = f_survival(3.0, 4.0, 20.0);
        assert!(close(p, 0.04320099833421409), "{p}");
        let p = f_survival(250.0, 6.0, 9.0);
        assert!(close(p, 1.7297653557587893e-09), "{p}");
        assert_eq!(f_survival(0.0, 2.0, 3.0), 1.0);
        assert_eq!(student_t_two_sided(f64::INFINITY, 3.0), 0.0);
    }
}
