//! A censorable family over samples of which some are right-censored (`--censored`).
//!
//! An observed sample contributes -ln p(x), a censored one -ln S(x) (S(x) = P(X > x), the
//! lifetime still running at x). The term sums keep both: for an observed sample a 1 (the
//! count of observed samples, the n of the family's `finish`) and the family's own terms;
//! for a censored one its -ln S with its gradient and Hessian in theta
//! ([`Family::censored_nll`]), which enter the NLL, gradient and Hessian as they are. So the
//! NLL stays affine in the sums, every engine-side reduction applies unchanged, and the
//! fit, Newton's method and the information matrix see one family.

use super::*;

/// `inner` with right-censored samples. The kernel parameters are theta followed by the
/// inner family's, so that a censored sample's terms are evaluated at theta itself.
#[derive(Debug)]
pub struct Censored {
    inner: Box<dyn Family>,
    /// The observed samples' range and the largest censored one, where known: see
    /// [`Family::degenerate`] below.
    observed: Option<(Summary, f64)>,
}

impl Censored {
    /// `inner` must be [`Family::censorable`].
    pub fn new(inner: Box<dyn Family>) -> crate::Result<Self> {
        if !inner.censorable() {
            return Err(crate::Error::Usage(format!(
                "the {} family takes no censored samples (censoring applies to {})",
                inner.name(),
                censorable_names().join(", ")
            )));
        }
        Ok(Censored {
            inner,
            observed: None,
        })
    }

    /// Tells the family the summary of the observed samples and the largest censored one.
    pub fn with_samples(mut self, observed: Summary, censored_max: f64) -> Self {
        self.observed = Some((observed, censored_max));
        self
    }

    /// The family the samples follow.
    pub fn inner(&self) -> &dyn Family {
        self.inner.as_ref()
    }

    fn p(&self) -> usize {
        self.inner.n_params()
    }

    /// Where the censored samples' part starts in the term sums: after the observed count
    /// and the inner family's terms.
    fn censored_start(&self) -> usize {
        1 + self.inner.n_terms()
    }

    /// The terms of a sample right-censored at `x`.
    pub fn censored_terms(&self, x: f64, kernel_params: &[f64], out: &mut [f64]) {
        let start = self.censored_start();
        out[..start].fill(0.0);
        self.inner
            .censored_nll(x, &kernel_params[..self.p()], &mut out[start..]);
    }

    /// The count of observed samples and the inner family's sums.
    fn observed<'a>(&self, sums: &'a [f64]) -> (f64, &'a [f64]) {
        (sums[0], &sums[1..self.censored_start()])
    }
}

/// The names of the families that take censored samples.
pub fn censorable_names() -> Vec<&'static str> {
    FamilyName::ALL
        .iter()
        .map(|f| f.build(1))
        .filter(|f| f.censorable())
        .map(|f| f.name())
        .collect()
}

impl Family for Censored {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn n_params(&self) -> usize {
        self.p()
    }
    fn theta_names(&self) -> Vec<String> {
        self.inner.theta_names()
    }
    fn n_terms(&self) -> usize {
        let p = self.p();
        self.censored_start() + 1 + p + p * p
    }
    fn kernel_params(&self, theta: &[f64]) -> Vec<f64> {
        let mut kp = theta.to_vec();
        kp.extend(self.inner.kernel_params(theta));
        kp
    }
    fn support_error(&self, x: f64) -> Option<String> {
        self.inner.support_error(x)
    }
    /// The terms of an observed sample.
    fn terms(&self, x: f64, kernel_params: &[f64], out: &mut [f64]) {
        let start = self.censored_start();
        out[0] = 1.0;
        self.inner
            .terms(x, &kernel_params[self.p()..], &mut out[1..start]);
        out[start..].fill(0.0);
    }
    fn accumulate(&self, xs: &[f64], kernel_params: &[f64], acc: &mut [f64]) {
        let mut t = vec![0.0; self.n_terms()];
        for &x in xs {
            self.terms(x, kernel_params, &mut t);
            acc.iter_mut().zip(&t).for_each(|(a, v)| *a += v);
        }
    }
    fn finish(&self, _n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let (observed, inner_sums) = self.observed(sums);
        let (nll, mut grad) = self.inner.finish(observed, inner_sums, theta);
        let censored = &sums[self.censored_start()..];
        grad.iter_mut()
            .zip(&censored[1..=self.p()])
            .for_each(|(g, c)| *g += c);
        (nll + censored[0], grad)
    }
    fn hessian(&self, _n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let (observed, inner_sums) = self.observed(sums);
        let mut h = self.inner.hessian(observed, inner_sums, theta);
        let censored = &sums[self.censored_start() + 1 + self.p()..];
        h.iter_mut().zip(censored).for_each(|(h, c)| *h += c);
        h
    }
    fn links(&self) -> Vec<Link> {
        self.inner.links()
    }
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        self.inner.crlb_sd(theta)
    }
    fn constant(&self, x: f64) -> f64 {
        self.inner.constant(x)
    }
    /// The density of an observed sample.
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        self.inner.log_density(x, theta)
    }
    /// Censored samples are evaluated on the CPU engine only: no kernel has their terms.
    fn wgsl(&self) -> &'static str {
        ""
    }
    fn initial_theta(&self, summary: &Summary) -> Vec<f64> {
        self.inner.initial_theta(summary)
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        self.inner.natural(theta)
    }
    /// The MLE of uncensored samples (censored ones have none in closed form).
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        self.inner.closed_form_mle(xs)
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        self.inner.sample(theta, n, rng)
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        self.inner.extreme_thetas()
    }
    /// A censored sample above every observed one bounds the likelihood: it makes the
    /// distribution spread at least that far (observed samples all equal to v would
    /// otherwise send a Gaussian's or lognormal's sigma to 0 and a Weibull's shape to
    /// infinity). Censored samples at or below the observed ones do not, and then the
    /// observed samples decide as in the uncensored family.
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        match self.observed {
            Some((observed, censored_max)) if censored_max > observed.max => None,
            Some((observed, _)) => match self.inner.degenerate(&observed)? {
                Degenerate::Unbounded(why) => Some(Degenerate::Unbounded(format!(
                    "{why} (the observed rows; no censored row lies above them)"
                ))),
                Degenerate::Boundary(why) => Some(Degenerate::Boundary(format!(
                    "{why} (the observed rows; no censored row lies above them)"
                ))),
            },
            None => self.inner.degenerate(s),
        }
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(Censored {
            inner: self.inner.clone_box(),
            observed: self.observed,
        })
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        self.inner.random_theta(rng)
    }
    fn exact_hessian(&self) -> bool {
        self.inner.exact_hessian()
    }
    fn censorable(&self) -> bool {
        true
    }
    fn censored_nll(&self, x: f64, theta: &[f64], out: &mut [f64]) {
        self.inner.censored_nll(x, theta, out)
    }
}
