//! Categorical over K classes, optimised as K logits z with probs = softmax(z).
//!
//! NLL_i = logsumexp(z) - z_{y_i}, so with class counts c_k:
//! NLL = n logsumexp(z) - sum_k c_k z_k,  dNLL/dz_k = n softmax(z)_k - c_k.
//! (This is the cross-entropy loss summed over samples.) The logits are identified only up to
//! a common shift; the probabilities are unique.

use super::link::MeanLink;
use super::*;
use rand::Rng;

#[derive(Clone, Copy, Debug)]
pub struct Categorical {
    classes: usize,
}

impl Categorical {
    pub fn new(classes: usize) -> Self {
        Categorical {
            classes: classes.max(1),
        }
    }
    pub fn classes(&self) -> usize {
        self.classes
    }
    fn softmax(z: &[f64]) -> Vec<f64> {
        let lse = log_sum_exp(z);
        z.iter().map(|v| (v - lse).exp()).collect()
    }
}

impl Family for Categorical {
    fn name(&self) -> &'static str {
        "categorical"
    }
    fn n_params(&self) -> usize {
        self.classes
    }
    fn theta_names(&self) -> Vec<String> {
        (0..self.classes).map(|k| format!("logit[{k}]")).collect()
    }
    fn n_terms(&self) -> usize {
        self.classes
    }
    fn support_error(&self, x: f64) -> Option<String> {
        let k = self.classes;
        integer_in(
            x,
            0.0,
            (k - 1) as f64,
            &format!("class labels 0..{}", k - 1),
        )
    }
    fn terms(&self, x: f64, _kp: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        out[x as usize] = 1.0;
    }
    fn accumulate(&self, xs: &[f64], _kp: &[f64], acc: &mut [f64]) {
        for &x in xs {
            acc[x as usize] += 1.0;
        }
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let lse = log_sum_exp(theta);
        let nll = n * lse - sums.iter().zip(theta).map(|(c, z)| c * z).sum::<f64>();
        let grad = Self::softmax(theta)
            .iter()
            .zip(sums)
            .map(|(p, c)| n * p - c)
            .collect();
        (nll, grad)
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let _ = sums;
        let p = Self::softmax(theta);
        let k = self.classes;
        let mut h = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                h[i * k + j] = n * p[i] * ((i == j) as u8 as f64 - p[j]);
            }
        }
        h
    }
    /// Classes with no observation have probability 0: their logits go to -infinity.
    fn boundary_point(&self, n: f64, sums: &[f64], theta: &[f64]) -> Option<Vec<f64>> {
        let observed_max = (0..self.classes)
            .filter(|&k| sums[k] > 0.0)
            .map(|k| theta[k])
            .fold(f64::NEG_INFINITY, f64::max);
        if !observed_max.is_finite() || sums.iter().all(|&c| c > 0.0) {
            return None;
        }
        let floor = observed_max - boundary_depth(n);
        let mut out = theta.to_vec();
        for k in 0..self.classes {
            if sums[k] == 0.0 {
                out[k] = out[k].min(floor);
            }
        }
        Some(out)
    }
    fn on_boundary(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<bool> {
        let observed_max = (0..self.classes)
            .filter(|&k| sums[k] > 0.0)
            .map(|k| theta[k])
            .fold(f64::NEG_INFINITY, f64::max);
        let floor = observed_max - boundary_depth(n) + 1.0;
        (0..self.classes)
            .map(|k| observed_max.is_finite() && sums[k] == 0.0 && theta[k] <= floor)
            .collect()
    }
    fn invariant_direction(&self) -> Option<Vec<f64>> {
        Some(vec![1.0; self.classes])
    }
    fn hessian_diagonal(&self, n: f64, _sums: &[f64], theta: &[f64]) -> Vec<f64> {
        Self::softmax(theta)
            .iter()
            .map(|p| n * p * (1.0 - p))
            .collect()
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Logit]
    }
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        Self::softmax(theta)
            .iter()
            .map(|p| (p * (1.0 - p)).sqrt())
            .collect()
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        theta[x as usize] - log_sum_exp(theta)
    }
    fn wgsl(&self) -> &'static str {
        include_str!("../../shaders/family/categorical.wgsl")
    }
    fn packed_run_wgsl(&self) -> Option<String> {
        (self.classes <= PACKED_CLASSES).then(|| packed_counts(self.classes))
    }
    fn initial_theta(&self, _s: &Summary) -> Vec<f64> {
        vec![0.0; self.classes]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![NamedParam {
            name: "probs",
            value: ParamValue::Vector(Self::softmax(theta)),
        }]
    }
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        let mut counts = vec![0.0; self.classes];
        self.accumulate(xs, &[], &mut counts);
        counts.iter().map(|c| (c / xs.len() as f64).ln()).collect()
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        let probs = Self::softmax(theta);
        (0..n)
            .map(|_| {
                let mut u: f64 = rng.random();
                for (k, p) in probs.iter().enumerate() {
                    if u < *p {
                        return k as f64;
                    }
                    u -= p;
                }
                (self.classes - 1) as f64
            })
            .collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        (0..2)
            .map(|s| {
                (0..self.classes)
                    .map(|k| if (k + s) % 2 == 0 { 1e4 } else { -1e4 })
                    .collect()
            })
            .collect()
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        (0..self.classes)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect()
    }
}

/// Categorical families of at most this many classes count a run's classes in one f32 on the
/// GPU: class k adds 2^(5k), so that a run's count of each class (at most RUN = 16 < 32) is a
/// 5-bit digit of the sum, every partial sum an integer of at most 2^24 (16 samples of class
/// 4), exact in f32; `add_run` splits the digits into the counts once per run. A sample costs
/// one add where counting costs a compare and an add per class (README: eval-categorical).
pub const PACKED_CLASSES: usize = 5;

/// `accumulate` and `add_run` of the packed counts of `classes` classes (see
/// [`PACKED_CLASSES`]).
fn packed_counts(classes: usize) -> String {
    assert!(classes <= PACKED_CLASSES, "packed counts need 5-bit digits");
    let digits: String = (0..classes)
        .map(|t| {
            format!(
                "    (*acc)[{t}] = (*acc)[{t}] + f32((packed >> {}u) & 31u);\n",
                5 * t
            )
        })
        .collect();
    // 2^(5k) from its exponent bits, (127 + 5k) << 23: exact, where exp2 need not be.
    format!(
        "// Categorical, {classes} classes counted in one f32 per run.\n\
         fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {{\n    \
         (*acc)[0] = (*acc)[0] + bitcast<f32>(1065353216u + u32(x) * 41943040u);\n}}\n\
         fn add_run(acc: ptr<function, array<f32, N_TERMS>>, \
         run: ptr<function, array<f32, N_TERMS>>) {{\n    \
         let packed = u32((*run)[0]);\n{digits}}}\n"
    )
}

/// The categorical family as a head: its classes and reference are the head's, not this
/// value's.
pub(super) static AS_HEAD: Categorical = Categorical { classes: 1 };

/// The softmax head: the outputs are the logits (the reference class's fixed at 0 when the
/// head has one).
impl Conditional for Categorical {
    /// The multinomial logit: eta are the log odds against the reference class.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Logit]
    }

    fn outputs(&self, head: &Head) -> usize {
        head.classes - head.reference as usize
    }
    fn is_classifier(&self) -> bool {
        true
    }
    fn nll(
        &self,
        head: &Head,
        eta: &[f64],
        _: &[f64],
        y: f64,
        d_eta: &mut [f64],
        _: &mut [f64],
    ) -> f64 {
        // Softmax over the logits z (the reference class's fixed at 0), shifted by the
        // largest: p_k = e_k / sum e, e_k = exp(z_k - max z); NLL = log sum exp z - z_y,
        // dNLL/dz_k = p_k - [k = y]. One exp per class and one log, in place.
        let skip = head.reference as usize;
        let reference = head.reference.then_some(0.0);
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
    fn hessian(
        &self,
        head: &Head,
        eta: &[f64],
        _: &[f64],
        _: f64,
        h: &mut [f64],
    ) -> Result<(), String> {
        // The softmax's Jacobian p_a ([a = b] - p_b) over the outputs.
        let skip = head.reference as usize;
        let z = head.logits(eta);
        let lse = log_sum_exp(&z);
        let p: Vec<f64> = z.iter().map(|v| (v - lse).exp()).collect();
        // No globals: the rows of h are the outputs'.
        let o = eta.len();
        for a in 0..o {
            for b in 0..o {
                h[a * o + b] = p[a + skip] * ((a == b) as u8 as f64 - p[b + skip]);
            }
        }
        Ok(())
    }
    fn predict(&self, head: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        let z = head.logits(eta);
        let lse = log_sum_exp(&z);
        z.iter().map(|v| (v - lse).exp()).collect()
    }
    /// log p_k up to the common shift (less the reference class's when it is pinned at 0);
    /// half a row for an empty class keeps the start finite.
    fn intercept_only_eta(&self, head: &Head, y: &[f64]) -> Vec<f64> {
        let mut counts = vec![0.5f64; head.classes];
        for &v in y {
            if let Some(c) = counts.get_mut(v as usize) {
                *c += 1.0;
            }
        }
        let base = if head.reference { counts[0].ln() } else { 0.0 };
        let skip = head.reference as usize;
        counts[skip..].iter().map(|c| c.ln() - base).collect()
    }
    /// -2 ln p_y: the saturated model's log-likelihood is 0.
    fn unit_deviance(&self, _: &Head, mean: &[f64], y: f64) -> Option<f64> {
        Some(-2.0 * mean.get(y as usize)?.ln())
    }
    /// [rows, count of each class].
    fn null_part(&self, head: &Head, y: &[f64]) -> Option<Vec<f64>> {
        let mut part = vec![0.0f64; head.classes + 1];
        part[0] = y.len() as f64;
        for &v in y {
            if let Some(c) = part[1..].get_mut(v as usize) {
                *c += 1.0;
            }
        }
        Some(part)
    }
    /// p_k = c_k / n: sum_k c_k ln p_k; the deviance is -2 times it.
    fn null_model(&self, _: &Head, part: &[f64]) -> NullModel {
        let n = part[0];
        let loglik = part[1..].iter().map(|&c| head::x_log_x_over(c, n)).sum();
        NullModel {
            loglik,
            deviance: Some(-2.0 * loglik),
        }
    }
    fn random_target(&self, head: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(0..head.classes) as f64
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/categorical.wgsl"))
    }
    fn head64_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head64/categorical.wgsl"))
    }
}
