//! Conditioning a model's data before anything is computed: every feature is centred and
//! scaled by a power of two (and, for Gaussian and Laplace heads, the target too), in f64, as
//! the rows are read. Fits run in these coordinates, where the information matrix of a
//! regression on prices in dollars, years and incomes is as well conditioned as the data allow
//! (a Longley regression's equilibrated condition number falls from 1e16 to 2e9), f32 keeps
//! what the data carry, and a unit step means the same thing in every coordinate. Estimates,
//! covariances and priors map back exactly (the scales are powers of two; only the centring
//! rounds, once per value).
//!
//! With x' = (x - c) / s per feature and y' = (y - m) / t for a target-conditioned head, a
//! network's first layer z = x W + b becomes z = x' W' + b' with W = W' / s and
//! b = b' - sum_j W'_j c_j / s_j; its last layer's output eta = t eta' + m (W_L = t W'_L,
//! b_L = t b'_L + m) and its scale global log sigma = log sigma' + ln t. A linear model is both
//! at once.

use super::network::Network;

/// The affine re-expression of a table's features and target.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditioning {
    /// Per feature: the centre subtracted (0 without an intercept, which the shift would add).
    pub center: Vec<f64>,
    /// Per feature: 1 / s, a power of two.
    pub inv_scale: Vec<f64>,
    /// The target's centre and 1 / scale (0 and 1 for heads whose target is a class, a count
    /// or a positive value: only location-scale heads are conditioned).
    pub target_center: f64,
    pub target_inv_scale: f64,
}

/// Column sums from which the conditioning is chosen: accumulated over rows in any order of
/// blocks (sums about the first row's values, so that the spread of data far from the origin
/// does not cancel away).
#[derive(Clone, Debug)]
pub struct ColumnStats {
    pub n: usize,
    pivot: Vec<f64>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

impl ColumnStats {
    /// Statistics of `columns` columns (the features, then the target).
    pub fn new(columns: usize) -> Self {
        ColumnStats {
            n: 0,
            pivot: Vec::new(),
            sum: vec![0.0; columns],
            sum_sq: vec![0.0; columns],
            min: vec![f64::INFINITY; columns],
            max: vec![f64::NEG_INFINITY; columns],
        }
    }

    /// Adds rows: features `x` (row-major, d columns) and targets `y`.
    pub fn add(&mut self, x: &[f64], y: &[f64]) {
        let d = self.sum.len() - 1;
        for (i, &yi) in y.iter().enumerate() {
            let row = &x[i * d..(i + 1) * d];
            if self.pivot.is_empty() {
                self.pivot = row.iter().copied().chain(std::iter::once(yi)).collect();
            }
            for (j, &v) in row.iter().chain(std::iter::once(&yi)).enumerate() {
                let dv = v - self.pivot[j];
                self.sum[j] += dv;
                self.sum_sq[j] += dv * dv;
                self.min[j] = self.min[j].min(v);
                self.max[j] = self.max[j].max(v);
            }
        }
        self.n += y.len();
    }

    /// The mean and the standard deviation about it of column j.
    fn mean_sd(&self, j: usize) -> (f64, f64) {
        if self.n == 0 {
            return (0.0, 0.0);
        }
        let n = self.n as f64;
        let shift = self.sum[j] / n;
        let var = (self.sum_sq[j] / n - shift * shift).max(0.0);
        (self.pivot[j] + shift, var.sqrt())
    }

    /// The root mean square of column j (its spread about 0).
    fn rms(&self, j: usize) -> f64 {
        let (mean, sd) = self.mean_sd(j);
        (sd * sd + mean * mean).sqrt()
    }
}

/// The power of two nearest `v` (1 for 0, non-finite or subnormal spreads).
fn power_of_two_near(v: f64) -> f64 {
    if !(v.is_finite() && v > f64::MIN_POSITIVE) {
        return 1.0;
    }
    2f64.powi(v.log2().round().clamp(-1000.0, 1000.0) as i32)
}

impl Conditioning {
    /// No re-expression of `d` features.
    pub fn identity(d: usize) -> Self {
        Conditioning {
            center: vec![0.0; d],
            inv_scale: vec![1.0; d],
            target_center: 0.0,
            target_inv_scale: 1.0,
        }
    }

    /// Centres (with an intercept) and power-of-two scales from column statistics; the target
    /// only where the head is a location-scale family (`condition_target`).
    pub fn from_stats(stats: &ColumnStats, intercept: bool, condition_target: bool) -> Self {
        let d = stats.sum.len() - 1;
        let column = |j: usize| -> (f64, f64) {
            if stats.n == 0 {
                return (0.0, 1.0);
            }
            if !intercept {
                return (0.0, 1.0 / power_of_two_near(stats.rms(j)));
            }
            if stats.min[j] == stats.max[j] {
                // A constant column is exactly 0 once centred (and collinear with the
                // intercept, which inference reports).
                return (stats.min[j], 1.0);
            }
            let (mean, sd) = stats.mean_sd(j);
            (mean, 1.0 / power_of_two_near(sd))
        };
        let (center, inv_scale) = (0..d).map(column).unzip();
        let (target_center, target_inv_scale) = if condition_target {
            column(d)
        } else {
            (0.0, 1.0)
        };
        Conditioning {
            center,
            inv_scale,
            target_center,
            target_inv_scale,
        }
    }

    pub fn features(&self) -> usize {
        self.center.len()
    }

    pub fn is_identity(&self) -> bool {
        self.center.iter().all(|&c| c == 0.0)
            && self.inv_scale.iter().all(|&s| s == 1.0)
            && self.target_center == 0.0
            && self.target_inv_scale == 1.0
    }

    /// One row's conditioned features.
    #[inline]
    pub fn row_into(&self, x: &[f64], out: &mut [f64]) {
        for (((o, &v), &c), &s) in out.iter_mut().zip(x).zip(&self.center).zip(&self.inv_scale) {
            *o = (v - c) * s;
        }
    }

    /// One conditioned target.
    #[inline]
    pub fn target(&self, y: f64) -> f64 {
        (y - self.target_center) * self.target_inv_scale
    }

    /// The target's scale t (1 where it is not conditioned).
    pub fn target_scale(&self) -> f64 {
        1.0 / self.target_inv_scale
    }

    /// The NLL of the original rows from the conditioned rows' NLL over `n` rows: a density of
    /// y' is t times the density of y.
    pub fn original_nll(&self, nll: f64, n: usize) -> f64 {
        nll + n as f64 * self.target_scale().ln()
    }

    /// Whether the head's output is mapped (its target is conditioned).
    fn maps_output(&self) -> bool {
        self.target_center != 0.0 || self.target_inv_scale != 1.0
    }

    /// The network's parameters in the original units from the conditioned ones.
    pub fn to_original(&self, net: &Network, conditioned: &[f64]) -> Vec<f64> {
        let mut params = conditioned.to_vec();
        let layers = net.layers();
        let first = layers[0];
        // Input: W = W' / s, b = b' - sum_j W'_j c_j / s_j.
        for o in 0..first.fan_out {
            let mut shift = 0.0;
            for j in 0..first.fan_in {
                let w = conditioned[first.weights + j * first.fan_out + o] * self.inv_scale[j];
                params[first.weights + j * first.fan_out + o] = w;
                shift += w * self.center[j];
            }
            params[first.bias + o] -= shift;
        }
        if self.maps_output() {
            let (t, m) = (self.target_scale(), self.target_center);
            let last = *layers.last().expect("a network has a layer");
            for v in &mut params[last.weights..last.bias] {
                *v *= t;
            }
            for v in &mut params[last.bias..last.bias + last.fan_out] {
                *v = *v * t + m;
            }
            let g = net.globals_offset();
            for v in &mut params[g..] {
                *v += t.ln();
            }
        }
        params
    }

    /// The conditioned parameters of a network given in the original units (the inverse of
    /// [`Conditioning::to_original`]).
    pub fn to_conditioned(&self, net: &Network, original: &[f64]) -> Vec<f64> {
        let mut params = original.to_vec();
        let layers = net.layers();
        if self.maps_output() {
            let (t, m) = (self.target_scale(), self.target_center);
            let last = *layers.last().expect("a network has a layer");
            for v in &mut params[last.weights..last.bias] {
                *v /= t;
            }
            for v in &mut params[last.bias..last.bias + last.fan_out] {
                *v = (*v - m) / t;
            }
            let g = net.globals_offset();
            for v in &mut params[g..] {
                *v -= t.ln();
            }
        }
        let first = layers[0];
        for o in 0..first.fan_out {
            let mut shift = 0.0;
            for j in 0..first.fan_in {
                let at = first.weights + j * first.fan_out + o;
                shift += params[at] * self.center[j];
                params[at] /= self.inv_scale[j];
            }
            params[first.bias + o] += shift;
        }
        params
    }

    /// d theta / d theta' of a linear model (row-major p x p): the map is affine, so this is
    /// exact, and covariances map as J C J^T.
    pub fn jacobian(&self, net: &Network) -> Vec<f64> {
        let p = net.param_count();
        let mut jac = vec![0.0; p * p];
        let basis = |k: usize| {
            let mut e = vec![0.0; p];
            e[k] = 1.0;
            e
        };
        // Columns: the map's linear part applied to unit vectors (its offset is the image of 0).
        let zero = self.to_original(net, &vec![0.0; p]);
        for k in 0..p {
            let image = self.to_original(net, &basis(k));
            for i in 0..p {
                jac[i * p + k] = image[i] - zero[i];
            }
        }
        jac
    }

    /// Per parameter, the factor by which a prior's scale on the original parameter becomes
    /// its scale on the conditioned one (0 for parameters priors do not act on): W = W' / s
    /// makes N(0, S^2) on W the prior N(0, (S s)^2) on W'; the output layer of a conditioned
    /// target divides it by t.
    pub fn prior_factors(&self, net: &Network) -> Vec<f64> {
        let mask = net.weight_mask();
        let mut factors: Vec<f64> = mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
        let layers = net.layers();
        let first = layers[0];
        for j in 0..first.fan_in {
            for o in 0..first.fan_out {
                factors[first.weights + j * first.fan_out + o] /= self.inv_scale[j];
            }
        }
        if self.maps_output() {
            let last = *layers.last().expect("a network has a layer");
            for f in &mut factors[last.weights..last.bias] {
                *f /= self.target_scale();
            }
        }
        factors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::FamilyName;
    use crate::model::network::Activation;
    use crate::model::Head;

    fn stats(x: &[f64], y: &[f64], d: usize) -> ColumnStats {
        let mut s = ColumnStats::new(d + 1);
        s.add(x, y);
        s
    }

    #[test]
    fn scales_are_powers_of_two_and_centres_are_means() {
        let x = [1e8 + 1.0, 3.0, 1e8 - 1.0, 5.0, 1e8, 4.0];
        let y = [10.0, 20.0, 30.0];
        let c = Conditioning::from_stats(&stats(&x, &y, 2), true, true);
        assert_eq!(c.center, vec![1e8, 4.0]);
        for s in &c.inv_scale {
            assert_eq!(s.log2().fract(), 0.0);
        }
        assert_eq!(c.target_center, 20.0);
        let no_intercept = Conditioning::from_stats(&stats(&x, &y, 2), false, true);
        assert_eq!(no_intercept.center, vec![0.0, 0.0]);
        assert_eq!(no_intercept.target_center, 0.0);
    }

    #[test]
    fn parameters_map_back_and_forth_and_predict_the_same() {
        let c = Conditioning {
            center: vec![3.0, -1e6],
            inv_scale: vec![0.25, 1.0 / 1024.0],
            target_center: 7.0,
            target_inv_scale: 0.125,
        };
        let x = [2.5, -1e6 + 300.0];
        let mut xc = [0.0; 2];
        c.row_into(&x, &mut xc);
        for (family, hidden) in [
            (FamilyName::Gaussian, vec![]),
            (FamilyName::Gaussian, vec![3]),
            (FamilyName::Laplace, vec![]),
        ] {
            let net = Network {
                inputs: 2,
                hidden,
                activation: Activation::Tanh,
                head: Head::new(family, 1, true),
            };
            let conditioned: Vec<f64> = (0..net.param_count())
                .map(|k| (k as f64 * 0.7).sin())
                .collect();
            let original = c.to_original(&net, &conditioned);
            let back = c.to_conditioned(&net, &original);
            for (a, b) in back.iter().zip(&conditioned) {
                assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
            }
            // The original network on x predicts t eta' + m of the conditioned one on x'.
            let (mut z, mut z2) = (Vec::new(), Vec::new());
            let eta = net.forward(&original, &x, &mut z)[0];
            let eta_c = net.forward(&conditioned, &xc, &mut z2)[0];
            let want = eta_c * c.target_scale() + c.target_center;
            assert!(
                (eta - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{eta} vs {want}"
            );
        }
    }
}
