//! Laplace(mu, b), optimised as (mu, log b); its NLL is the mean absolute error's.
//!
//! With d_i = x_i - mu, A = sum |d_i|, G = sum sign(d_i), Z = #{i: d_i = 0}:
//! NLL = n (ln 2 + log b) + A / b,  dNLL/dmu = -G / b,  dNLL/dlog b = n - A / b.
//! The NLL is not differentiable at mu = x_i: its derivatives in mu from the left and the
//! right are -(G + Z) / b and (Z - G) / b (sign(0) = 0 gives their midpoint), and mu is
//! optimal where the left one is <= 0 <= the right one, which Z decides.

use super::link::MeanLink;
use super::*;
use rand::Rng;

#[derive(Clone, Copy, Debug)]
pub struct Laplace;

impl Family for Laplace {
    fn name(&self) -> &'static str {
        "laplace"
    }
    fn n_params(&self) -> usize {
        2
    }
    fn theta_names(&self) -> Vec<String> {
        vec!["mu".into(), "log_b".into()]
    }
    fn n_terms(&self) -> usize {
        3
    }
    fn kernel_params(&self, theta: &[f64]) -> Vec<f64> {
        vec![theta[0]]
    }
    fn support_error(&self, _x: f64) -> Option<String> {
        None
    }
    fn terms(&self, x: f64, kp: &[f64], out: &mut [f64]) {
        let d = x - kp[0];
        out[0] = d.abs();
        out[1] = sign0(d);
        out[2] = (d == 0.0) as u8 as f64;
    }
    fn accumulate(&self, xs: &[f64], kp: &[f64], acc: &mut [f64]) {
        let mu = kp[0];
        sum_terms(xs, acc, |x| {
            let d = x - mu;
            [d.abs(), sign0(d), (d == 0.0) as u8 as f64]
        });
    }
    fn finish(&self, n: f64, sums: &[f64], theta: &[f64]) -> (f64, Vec<f64>) {
        let log_b = theta[1];
        let inv_b = (-log_b).exp();
        let nll = n * (std::f64::consts::LN_2 + log_b) + sums[0] * inv_b;
        (nll, vec![-sums[1] * inv_b, n - sums[0] * inv_b])
    }
    fn hessian(&self, n: f64, sums: &[f64], theta: &[f64]) -> Vec<f64> {
        let inv_b = (-theta[1]).exp();
        vec![
            n * inv_b * inv_b,
            sums[1] * inv_b,
            sums[1] * inv_b,
            sums[0] * inv_b,
        ]
    }
    fn exact_hessian(&self) -> bool {
        false
    }
    fn kinked(&self, j: usize) -> bool {
        j == 0
    }
    fn rescaling(&self) -> Rescaling {
        Rescaling::Location
    }
    fn derivative_intervals(
        &self,
        _n: f64,
        sums: &[f64],
        theta: &[f64],
    ) -> Option<Vec<(f64, f64)>> {
        let inv_b = (-theta[1]).exp();
        let (g, z) = (sums[1], sums[2]);
        let smooth = self.finish(_n, sums, theta).1[1];
        Some(vec![(-(g + z) * inv_b, (z - g) * inv_b), (smooth, smooth)])
    }
    fn links(&self) -> Vec<Link> {
        vec![Link::Identity, Link::Log]
    }
    fn crlb_sd(&self, theta: &[f64]) -> Vec<f64> {
        let b = theta[1].exp();
        vec![b, b]
    }
    fn log_density(&self, x: f64, theta: &[f64]) -> f64 {
        -std::f64::consts::LN_2 - theta[1] - (x - theta[0]).abs() * (-theta[1]).exp()
    }
    fn wgsl(&self) -> &'static str {
        include_str!("../../shaders/family/laplace.wgsl")
    }
    fn packed_run_wgsl(&self) -> Option<String> {
        Some(include_str!("../../shaders/family/laplace_packed.wgsl").to_string())
    }
    fn initial_theta(&self, s: &Summary) -> Vec<f64> {
        vec![0.5 * (s.min + s.max), s.spread().ln()]
    }
    fn natural(&self, theta: &[f64]) -> Vec<NamedParam> {
        vec![
            NamedParam::scalar("mu", theta[0]),
            NamedParam::scalar("b", theta[1].exp()),
        ]
    }
    /// mu = the median (for even n, the midpoint of the two middle values; every point between
    /// them is an MLE with the same b), b = mean absolute deviation from it.
    fn closed_form_mle(&self, xs: &[f64]) -> Vec<f64> {
        let mut sorted = xs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let m = sorted.len();
        let median = if m % 2 == 1 {
            sorted[m / 2]
        } else {
            0.5 * (sorted[m / 2 - 1] + sorted[m / 2])
        };
        let b = xs.iter().map(|x| (x - median).abs()).sum::<f64>() / m as f64;
        vec![median, b.ln()]
    }
    fn sample(&self, theta: &[f64], n: usize, rng: &mut StdRng) -> Vec<f64> {
        // Inverse CDF: x = mu - b sign(u) ln(1 - 2|u|), u ~ U(-1/2, 1/2).
        let b = theta[1].exp();
        (0..n)
            .map(|_| {
                let u: f64 = rng.random::<f64>() - 0.5;
                theta[0] - b * u.signum() * (-2.0 * u.abs()).ln_1p()
            })
            .collect()
    }
    fn extreme_thetas(&self) -> Vec<Vec<f64>> {
        vec![
            vec![3.0, (1e-20f64).ln()],
            vec![-3.0, (1e20f64).ln()],
            vec![1e4, 0.0],
        ]
    }
    fn degenerate(&self, s: &Summary) -> Option<Degenerate> {
        unbounded_if_constant(s, "b -> 0")
    }
    fn clone_box(&self) -> Box<dyn Family> {
        Box::new(*self)
    }
    fn random_theta(&self, rng: &mut StdRng) -> Vec<f64> {
        vec![rng.random_range(-10.0..10.0), rng.random_range(-1.0..2.0)]
    }
}

/// The head of a least-absolute-deviations model: eta = mu, the global log b.
impl Conditional for Laplace {
    /// Eta is the median.
    fn mean_links(&self) -> &'static [MeanLink] {
        &[MeanLink::Identity]
    }

    fn global_names(&self) -> &'static [&'static str] {
        &["b"]
    }
    fn nll(
        &self,
        _: &Head,
        eta: &[f64],
        globals: &[f64],
        y: f64,
        d_eta: &mut [f64],
        d_globals: &mut [f64],
    ) -> f64 {
        // NLL = ln 2 + log b + |y - mu| / b
        let inv_b = (-globals[0]).exp();
        let r = y - eta[0];
        d_eta[0] = -sign0(r) * inv_b;
        d_globals[0] += 1.0 - r.abs() * inv_b;
        std::f64::consts::LN_2 + globals[0] + r.abs() * inv_b
    }
    fn hessian(&self, _: &Head, _: &[f64], _: &[f64], _: f64, _: &mut [f64]) -> Result<(), String> {
        Err("Newton's method needs a twice-differentiable NLL; the Laplace NLL (absolute error) is not: use --optimizer lbfgs".into())
    }
    fn predict(&self, _: &Head, eta: &[f64], _: &[f64]) -> Vec<f64> {
        vec![eta[0]]
    }
    /// The median.
    fn intercept_only_eta(&self, _: &Head, y: &[f64]) -> Vec<f64> {
        let mut sorted: Vec<f64> = y.to_vec();
        sorted.sort_by(f64::total_cmp);
        vec![sorted
            .get(sorted.len() / 2)
            .copied()
            .map_or(0.0, head::finite_or_zero)]
    }
    /// The median needs every target at once.
    fn null_part(&self, _: &Head, _: &[f64]) -> Option<Vec<f64>> {
        None
    }
    fn random_target(&self, _: &Head, rng: &mut StdRng) -> f64 {
        rng.random_range(-2.0..2.0)
    }
    fn head_wgsl(&self) -> Option<&'static str> {
        Some(include_str!("../../shaders/family/head/laplace.wgsl"))
    }
}
