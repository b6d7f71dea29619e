//! Least absolute deviations: the exact optimum of a linear model with a Laplace head.
//!
//! The Laplace NLL, n (ln 2 + ln b) + sum |y - x beta| / b, is minimised over beta by the LAD
//! fit whatever b is, and then b = mean |residual|. sum |y - x beta| is piecewise linear: a
//! smooth quasi-Newton method stops at a kink short of the optimum (stackloss: NLL 59.2 where
//! the optimum is 50.2). The optimum is a vertex: p rows with zero residuals (a basis B), at
//! which the subgradient condition holds: sum over the other rows of sign(r_i) x_i +
//! X_B^T s = 0 with |s_k| <= 1. This module reaches it in three stages:
//!
//! 1. iteratively reweighted least squares with a shrinking floor on |r| (each step a
//!    weighted QR solve), which comes within rounding of the optimum's neighbourhood;
//! 2. the p rows of smallest |residual| there, linearly independent, as the starting basis;
//! 3. simplex steps on the LAD problem (Barrodale and Roberts' exchange): where some |s_k|
//!    exceeds 1, leave row k's constraint in the direction that lowers the objective, along
//!    which it is convex and piecewise linear; its minimum (a weighted median of the rows'
//!    crossing points) brings the row that crosses there into the basis. The objective falls at
//!    each step, and the test |s| <= 1 at the final vertex is exact: it is the optimality
//!    certificate the fit reports.
//!
//! Every pass reads the rows conditioned (see [`super::Conditioning`]), in f64, on the CPU.

use super::conditioning::Conditioning;
use super::linear::{least_squares_factor, RowPass};
use super::network::Network;
use super::train::{LossPoint, TrainOptions, TrainReport};
use crate::error::{Error, Result};
use crate::linalg::QrRows;

/// A LAD fit in the conditioned coordinates.
pub struct LadFit {
    pub params: Vec<f64>,
    pub report: TrainReport,
    pub warnings: Vec<String>,
}

/// The conditioned row with its intercept column.
struct Design<'a> {
    cond: &'a Conditioning,
    d: usize,
    intercept: bool,
}

impl Design<'_> {
    fn k(&self) -> usize {
        self.d + self.intercept as usize
    }
    fn row(&self, x: &[f64], out: &mut [f64]) {
        self.cond.row_into(x, &mut out[..self.d]);
        if self.intercept {
            out[self.d] = 1.0;
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves A x = b (k x k, row-major) by LU with partial pivoting; `None` if singular.
fn lu_solve(mut a: Vec<f64>, mut b: Vec<f64>, k: usize) -> Option<Vec<f64>> {
    for c in 0..k {
        let piv = (c..k).max_by(|&i, &j| a[i * k + c].abs().total_cmp(&a[j * k + c].abs()))?;
        if a[piv * k + c] == 0.0 || !a[piv * k + c].is_finite() {
            return None;
        }
        if piv != c {
            for j in 0..k {
                a.swap(c * k + j, piv * k + j);
            }
            b.swap(c, piv);
        }
        for r in c + 1..k {
            let f = a[r * k + c] / a[c * k + c];
            if f != 0.0 {
                for j in c..k {
                    a[r * k + j] -= f * a[c * k + j];
                }
                b[r] -= f * b[c];
            }
        }
    }
    let mut x = vec![0.0; k];
    for r in (0..k).rev() {
        let s: f64 = (r + 1..k).map(|j| a[r * k + j] * x[j]).sum();
        x[r] = (b[r] - s) / a[r * k + r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Whether a degenerate vertex is optimal: rows outside the basis whose residuals are 0 (ties
/// in integer data, repeated rows) contribute any subgradient u_i in [-1, 1], not 0, so the
/// condition is that some w with |w_j| <= bounds[j] solves sum_j w_j x_j = c: `columns` are
/// the basis rows (bound 1) and the distinct tied rows (bound: how many rows repeat it), each
/// a conditioned row, and c = -sum over the other rows of sign(r_i) x_i. Decided exactly by
/// phase 1 of a bounded-variable simplex: minimise the artificial variables a >= 0 of
/// sum_j w_j x_j + D a = c; with Bland's rule (the smallest eligible index enters and
/// leaves) it cannot cycle. Certified when they reach 0 up to rounding.
fn degenerate_vertex_optimal(columns: &[Vec<f64>], bounds: &[f64], c: &[f64], k: usize) -> bool {
    let q = columns.len();
    let bound = |j: usize| bounds[j] * (1.0 + 1e-10);
    let scale = c.iter().fold(1.0f64, |m, v| m.max(v.abs()))
        + columns
            .iter()
            .flat_map(|col| col.iter())
            .fold(0.0f64, |m, v| m.max(v.abs()));
    let tol = 1e-12 * scale;
    // Column v of [X | D]: the w's, then the artificials (D_i e_i).
    let mut value = vec![0.0; q + k];
    for (j, col) in columns.iter().enumerate() {
        let pull: f64 = col.iter().zip(c).map(|(a, b)| a * b).sum();
        value[j] = if pull >= 0.0 { bound(j) } else { -bound(j) };
    }
    let mut residual = c.to_vec();
    for (j, col) in columns.iter().enumerate() {
        residual
            .iter_mut()
            .zip(col)
            .for_each(|(r, a)| *r -= a * value[j]);
    }
    let signs: Vec<f64> = residual
        .iter()
        .map(|r| if *r < 0.0 { -1.0 } else { 1.0 })
        .collect();
    let column = |v: usize| -> Vec<f64> {
        if v < q {
            columns[v].clone()
        } else {
            let mut e = vec![0.0; k];
            e[v - q] = signs[v - q];
            e
        }
    };
    let lower = |v: usize| if v < q { -bound(v) } else { 0.0 };
    let upper = |v: usize| if v < q { bound(v) } else { f64::INFINITY };
    let mut basis: Vec<usize> = (q..q + k).collect();
    let mut in_basis = vec![false; q + k];
    basis.iter().for_each(|&v| in_basis[v] = true);
    for _ in 0..1000 + 20 * (q + k) {
        // The basic values from the nonbasic ones, afresh each iteration (no drift).
        let mut b_matrix = vec![0.0; k * k];
        for (i, &v) in basis.iter().enumerate() {
            for (r, a) in column(v).iter().enumerate() {
                b_matrix[r * k + i] = *a;
            }
        }
        let mut rhs = c.to_vec();
        for v in (0..q + k).filter(|&v| !in_basis[v]) {
            if value[v] != 0.0 {
                rhs.iter_mut()
                    .zip(column(v))
                    .for_each(|(r, a)| *r -= a * value[v]);
            }
        }
        let Some(x_b) = lu_solve(b_matrix.clone(), rhs, k) else {
            return false;
        };
        for (i, &v) in basis.iter().enumerate() {
            value[v] = x_b[i];
        }
        let infeasibility: f64 = value[q..].iter().sum();
        if infeasibility <= tol {
            return true;
        }
        // Duals: B^T pi = cost_B (1 for artificials).
        let mut b_t = vec![0.0; k * k];
        for r in 0..k {
            for i in 0..k {
                b_t[i * k + r] = b_matrix[r * k + i];
            }
        }
        let cost_b: Vec<f64> = basis.iter().map(|&v| (v >= q) as u8 as f64).collect();
        let Some(pi) = lu_solve(b_t, cost_b, k) else {
            return false;
        };
        // Bland: the smallest index whose move lowers the infeasibility enters.
        let entering = (0..q + k).filter(|&v| !in_basis[v]).find_map(|v| {
            let cost = (v >= q) as u8 as f64;
            let reduced = cost - column(v).iter().zip(&pi).map(|(a, p)| a * p).sum::<f64>();
            if reduced < -tol && value[v] < upper(v) {
                Some((v, 1.0))
            } else if reduced > tol && value[v] > lower(v) {
                Some((v, -1.0))
            } else {
                None
            }
        });
        let Some((e, dir)) = entering else {
            return false;
        };
        let Some(alpha) = lu_solve(b_matrix, column(e), k) else {
            return false;
        };
        // Ratio test: the entering variable's own range, then each basic one's bound; ties
        // go to the smallest index.
        let mut step = upper(e) - lower(e);
        let mut leaving: Option<(usize, f64)> = None;
        for (i, &v) in basis.iter().enumerate() {
            let rate = -dir * alpha[i];
            let room = if rate < -1e-300 {
                (value[v] - lower(v)) / -rate
            } else if rate > 1e-300 {
                (upper(v) - value[v]) / rate
            } else {
                continue;
            };
            let room = room.max(0.0);
            let better =
                room < step || (room == step && leaving.is_some_and(|(l, _)| basis[l] > v));
            if better {
                step = room;
                leaving = Some((i, if rate < 0.0 { lower(v) } else { upper(v) }));
            }
        }
        if !step.is_finite() {
            return false;
        }
        value[e] += dir * step;
        if let Some((i, at)) = leaving {
            let v = basis[i];
            value[v] = at;
            in_basis[v] = false;
            in_basis[e] = true;
            basis[i] = e;
        }
    }
    false
}

/// The basis: its rows' indices, conditioned rows (row-major k x k) and targets.
struct Basis {
    rows: Vec<usize>,
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Basis {
    fn k(&self) -> usize {
        self.rows.len()
    }
    /// beta with X_B beta = y_B.
    fn solve(&self) -> Option<Vec<f64>> {
        lu_solve(self.x.clone(), self.y.clone(), self.k())
    }
    /// z with X_B^T z = b.
    fn solve_transposed(&self, b: &[f64]) -> Option<Vec<f64>> {
        let k = self.k();
        let mut t = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                t[j * k + i] = self.x[i * k + j];
            }
        }
        lu_solve(t, b.to_vec(), k)
    }
}

/// Fits the LAD coefficients and b of a linear Laplace model on the conditioned rows.
pub fn fit(
    net: &Network,
    pass: &mut dyn RowPass,
    cond: &Conditioning,
    options: &TrainOptions,
) -> Result<LadFit> {
    let d = net.inputs;
    let layer = net.layers()[0];
    let intercept = !options.frozen.get(layer.bias).copied().unwrap_or(false);
    let design = Design { cond, d, intercept };
    let k = design.k();
    let n = pass.rows();
    if n <= k {
        return Err(Error::InvalidData(format!(
            "{n} rows for {k} coefficients: a LAD fit interpolates them"
        )));
    }
    // 1. Least squares, then IRLS with a shrinking floor on |r|.
    let factor = least_squares_factor(pass, cond, d, intercept)?;
    let mut beta = factor
        .solve_leading(k)
        .ok_or_else(|| singular_design("least squares"))?;
    let mut sad = residual_sum(pass, &design, &beta)?;
    let mut floor = 0.1 * sad / n as f64;
    for _ in 0..12 {
        let weighted = weighted_factor(pass, &design, &beta, floor)?;
        let Some(next) = weighted.solve_leading(k) else {
            break;
        };
        let next_sad = residual_sum(pass, &design, &next)?;
        if next_sad <= sad {
            beta = next;
            sad = next_sad;
        }
        floor *= 0.1;
        if floor < 1e-9 * sad / n as f64 {
            break;
        }
    }
    // 2. The starting basis: independent rows of smallest |residual|.
    let mut basis = starting_basis(pass, &design, &beta, k)?;
    // 3. Simplex steps.
    let max_steps = options.max_iter.unwrap_or(50 * k + 200);
    let mut steps = 0;
    let mut previous_sad: Option<f64> = None;
    let mut warnings = Vec::new();
    // Rows whose residual is 0 to rounding at the last vertex, besides the basis's.
    let mut rows_on_fit: f64;
    let (optimal, sad) = loop {
        let beta_b = basis
            .solve()
            .ok_or_else(|| singular_design("the simplex basis"))?;
        let (g_n, sad, tied) = sign_sum(pass, &design, &beta_b, &basis)?;
        rows_on_fit = tied.iter().map(|(_, count)| count).sum::<f64>();
        let s: Vec<f64> = basis
            .solve_transposed(&g_n)
            .ok_or_else(|| singular_design("the simplex basis"))?
            .iter()
            .map(|v| -v)
            .collect();
        beta = beta_b;
        let worst = s.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if worst <= 1.0 + 1e-10 {
            break (true, sad);
        }
        // A degenerate vertex: tested where the last step did not lower the objective beyond
        // its rounding (the simplex then moves among bases of one vertex), and at the first.
        let stalled = previous_sad.is_none_or(|before| sad >= before * (1.0 - 1e-12));
        if !tied.is_empty() && stalled {
            let (columns, bounds): (Vec<Vec<f64>>, Vec<f64>) = (0..k)
                .map(|b| (basis.x[b * k..(b + 1) * k].to_vec(), 1.0))
                .chain(tied)
                .unzip();
            let c: Vec<f64> = g_n.iter().map(|v| -v).collect();
            if degenerate_vertex_optimal(&columns, &bounds, &c, k) {
                break (true, sad);
            }
        }
        previous_sad = Some(sad);
        if steps >= max_steps {
            break (false, sad);
        }
        steps += 1;
        let leave = (0..k)
            .max_by(|&a, &b| s[a].abs().total_cmp(&s[b].abs()))
            .expect("k > 0");
        let sigma = -s[leave].signum();
        // Column `leave` of X_B^-1: the direction that moves row `leave`'s residual only.
        let mut unit = vec![0.0; k];
        unit[leave] = 1.0;
        let direction: Vec<f64> = lu_solve(basis.x.clone(), unit, k)
            .ok_or_else(|| singular_design("the simplex basis"))?
            .iter()
            .map(|v| sigma * v)
            .collect();
        let slope0 = 1.0 - s[leave].abs();
        let Some((entering, x_in, y_in)) =
            ratio_test(pass, &design, &beta, &direction, slope0, &basis)?
        else {
            warnings.push("the LAD simplex found no row to enter the basis".into());
            break (false, sad);
        };
        basis.rows[leave] = entering;
        basis.x[leave * k..(leave + 1) * k].copy_from_slice(&x_in);
        basis.y[leave] = y_in;
    };
    // Every row on the fit, exactly or to rounding (y = X beta computed in floating point):
    // b's MLE is 0 and the likelihood unbounded, whatever tiny b the residuals' rounding gives.
    if sad <= 0.0 || (optimal && rows_on_fit as usize + k >= n) {
        return Err(Error::InvalidData(
            "every row lies on the LAD fit (all residuals are 0, or rounding): b's MLE is 0 and the likelihood is unbounded (no MLE exists)".into(),
        ));
    }
    let mut params = vec![0.0; net.param_count()];
    for j in 0..d {
        params[layer.weights + j] = beta[j];
    }
    if intercept {
        params[layer.bias] = beta[d];
    }
    let b = sad / n as f64;
    params[net.globals_offset()] = b.ln();
    let nll = n as f64 * (std::f64::consts::LN_2 + b.ln() + 1.0);
    let reason = if optimal {
        format!("exact LAD optimum: the subgradient condition holds at a vertex ({steps} simplex steps)")
    } else {
        format!("the LAD simplex stopped after {steps} steps where the subgradient condition does not hold")
    };
    Ok(LadFit {
        params,
        report: TrainReport {
            steps,
            epochs: steps,
            converged: optimal,
            reason,
            history: vec![LossPoint {
                epoch: steps,
                step: steps,
                train_mean_nll: nll / n as f64,
                validation_mean_nll: None,
            }],
            log_prior: None,
        },
        warnings,
    })
}

fn singular_design(what: &str) -> Error {
    Error::InvalidData(format!(
        "the LAD fit's design is singular in {what} (collinear features, or a feature constant in the table)"
    ))
}

/// sum_i |y_i - x_i beta| over the conditioned rows.
fn residual_sum(pass: &mut dyn RowPass, design: &Design<'_>, beta: &[f64]) -> Result<f64> {
    let (d, k) = (design.d, design.k());
    let mut total = 0.0;
    let mut row = vec![0.0; k];
    pass.each_block(&mut |_, x, y| {
        for (i, &yi) in y.iter().enumerate() {
            design.row(&x[i * d..(i + 1) * d], &mut row);
            total += (design.cond.target(yi) - dot(&row, beta)).abs();
        }
        Ok(())
    })?;
    Ok(total)
}

/// The R factor of the rows weighted by 1 / max(|r_i|, floor) at beta (an IRLS step).
fn weighted_factor(
    pass: &mut dyn RowPass,
    design: &Design<'_>,
    beta: &[f64],
    floor: f64,
) -> Result<QrRows> {
    let (d, k) = (design.d, design.k());
    let mut qr = QrRows::new(k + 1);
    let mut row = vec![0.0; k + 1];
    pass.each_block(&mut |_, x, y| {
        for (i, &yi) in y.iter().enumerate() {
            design.row(&x[i * d..(i + 1) * d], &mut row[..k]);
            let target = design.cond.target(yi);
            let r = target - dot(&row[..k], beta);
            let w = 1.0 / r.abs().max(floor).sqrt();
            row[k] = target;
            row.iter_mut().for_each(|v| *v *= w);
            qr.add_row(&mut row);
        }
        Ok(())
    })?;
    Ok(qr)
}

/// k linearly independent rows of smallest |residual| at beta.
fn starting_basis(
    pass: &mut dyn RowPass,
    design: &Design<'_>,
    beta: &[f64],
    k: usize,
) -> Result<Basis> {
    let (d, kk) = (design.d, design.k());
    for keep in [4 * k + 16, 64 * k + 256, usize::MAX] {
        // The `keep` rows of smallest |r|: (|r|, row, x~, y').
        let mut best: Vec<(f64, usize, Vec<f64>, f64)> = Vec::new();
        let mut row = vec![0.0; kk];
        pass.each_block(&mut |first, x, y| {
            for (i, &yi) in y.iter().enumerate() {
                design.row(&x[i * d..(i + 1) * d], &mut row);
                let target = design.cond.target(yi);
                let r = (target - dot(&row, beta)).abs();
                if best.len() < keep || r < best.last().map_or(f64::INFINITY, |b| b.0) {
                    best.push((r, first + i, row.clone(), target));
                    if best.len() > 2 * keep.min(1 << 20) {
                        best.sort_by(|a, b| a.0.total_cmp(&b.0));
                        best.truncate(keep);
                    }
                }
            }
            Ok(())
        })?;
        best.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Greedy: a row joins when it is independent of those chosen (Gram-Schmidt).
        let mut ortho: Vec<Vec<f64>> = Vec::new();
        let mut basis = Basis {
            rows: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
        };
        for (_, index, xr, yr) in &best {
            let mut v = xr.clone();
            let norm0 = dot(&v, &v).sqrt();
            for q in &ortho {
                let c = dot(q, &v);
                v.iter_mut().zip(q).for_each(|(a, b)| *a -= c * b);
            }
            let norm = dot(&v, &v).sqrt();
            if norm > 1e-9 * norm0.max(1e-300) {
                v.iter_mut().for_each(|a| *a /= norm);
                ortho.push(v);
                basis.rows.push(*index);
                basis.x.extend_from_slice(xr);
                basis.y.push(*yr);
                if basis.k() == k {
                    return Ok(basis);
                }
            }
        }
    }
    Err(singular_design("the starting basis"))
}

/// Which residuals at a vertex are 0 to rounding (ties): the vertex's beta solves the basis
/// rows to about u cond(X_B) |beta|, so any row's residual carries an absolute error of the
/// basis's own magnitude (its targets and fitted terms), even a row whose own terms are small;
/// a residual below a few ulps of that and of the row's own terms is a tie. Exact repeats of
/// a basis row (repeated rows) are found so, whatever sign rounding gave their residual.
struct Ties {
    scale: f64,
}

impl Ties {
    fn at(basis: &Basis, beta: &[f64]) -> Ties {
        let k = basis.k();
        let scale = (0..k)
            .map(|b| {
                basis.y[b].abs()
                    + (0..k)
                        .map(|j| (basis.x[b * k + j] * beta[j]).abs())
                        .sum::<f64>()
            })
            .fold(0.0f64, f64::max);
        Ties { scale }
    }

    fn tied(&self, r: f64, target: f64, row: &[f64], beta: &[f64]) -> bool {
        let own = target.abs()
            + row
                .iter()
                .zip(beta)
                .map(|(a, b)| (a * b).abs())
                .sum::<f64>();
        r.abs() <= 64.0 * f64::EPSILON * (own + self.scale)
    }

    /// Whether b = x~ . direction is 0 to rounding (a repeat of a basis row other than the
    /// one leaving, which the direction does not move).
    fn still(&self, b: f64, row: &[f64], direction: &[f64]) -> bool {
        let terms = row
            .iter()
            .zip(direction)
            .map(|(a, d)| (a * d).abs())
            .sum::<f64>();
        b.abs() <= 64.0 * f64::EPSILON * terms
    }
}

/// Distinct rows outside the basis whose residuals are 0 to rounding that [`sign_sum`] sets
/// apart for [`degenerate_vertex_optimal`] (repeats of one row are one column, its bound the
/// count); rows of further patterns count with subgradient 0 (a valid choice in [-1, 1], so
/// the test stays exact, only stricter).
const MAX_TIED_PATTERNS: usize = 4096;

/// At the vertex beta of `basis`: sum over the other rows of sign(r_i) x~_i, sum |r_i|, and
/// the distinct rows (up to [`MAX_TIED_PATTERNS`]) whose residuals are 0 to rounding, with how
/// many rows repeat each, which are left out of the sum.
#[allow(clippy::type_complexity)]
fn sign_sum(
    pass: &mut dyn RowPass,
    design: &Design<'_>,
    beta: &[f64],
    basis: &Basis,
) -> Result<(Vec<f64>, f64, Vec<(Vec<f64>, f64)>)> {
    let ties = Ties::at(basis, beta);
    let basis = &basis.rows;
    let (d, k) = (design.d, design.k());
    let mut g = vec![0.0; k];
    let mut sad = 0.0;
    let mut tied: std::collections::HashMap<Vec<u64>, (Vec<f64>, f64)> =
        std::collections::HashMap::new();
    let mut order = Vec::new();
    let mut row = vec![0.0; k];
    pass.each_block(&mut |first, x, y| {
        for (i, &yi) in y.iter().enumerate() {
            design.row(&x[i * d..(i + 1) * d], &mut row);
            let target = design.cond.target(yi);
            let fitted = dot(&row, beta);
            let r = target - fitted;
            if basis.contains(&(first + i)) {
                continue;
            }
            sad += r.abs();
            if ties.tied(r, target, &row, beta) {
                let key: Vec<u64> = row.iter().map(|v| v.to_bits()).collect();
                if let Some(entry) = tied.get_mut(&key) {
                    entry.1 += 1.0;
                    continue;
                }
                if tied.len() < MAX_TIED_PATTERNS {
                    order.push(key.clone());
                    tied.insert(key, (row.clone(), 1.0));
                    continue;
                }
            }
            let s = crate::family::sign0(r);
            if s != 0.0 {
                g.iter_mut().zip(&row).for_each(|(a, v)| *a += s * v);
            }
        }
        Ok(())
    })?;
    // In the order first seen, so that the test does not depend on the hash.
    let tied = order
        .into_iter()
        .map(|key| tied.remove(&key).expect("a seen pattern"))
        .collect();
    Ok((g, sad, tied))
}

/// The ratio test along `direction` from beta: the objective along t >= 0 has slope `slope0`
/// (< 0) at 0 and rises by 2 |b_i| where row i's residual r_i - t b_i crosses 0 (by |b_i| for a
/// row whose residual is 0 already); the minimum is the crossing where the slope turns
/// non-negative, and its row enters the basis. Returns (row, x~, y').
fn ratio_test(
    pass: &mut dyn RowPass,
    design: &Design<'_>,
    beta: &[f64],
    direction: &[f64],
    slope0: f64,
    basis: &Basis,
) -> Result<Option<(usize, Vec<f64>, f64)>> {
    let ties = Ties::at(basis, beta);
    let basis = &basis.rows;
    let (d, k) = (design.d, design.k());
    // (t, weight, row)
    let mut crossings: Vec<(f64, f64, usize)> = Vec::new();
    let mut row = vec![0.0; k];
    pass.each_block(&mut |first, x, y| {
        for (i, &yi) in y.iter().enumerate() {
            if basis.contains(&(first + i)) {
                continue;
            }
            design.row(&x[i * d..(i + 1) * d], &mut row);
            let target = design.cond.target(yi);
            let r = target - dot(&row, beta);
            let b = dot(&row, direction);
            let tied = ties.tied(r, target, &row, beta);
            if b == 0.0 || (tied && ties.still(b, &row, direction)) {
                continue;
            }
            let t = r / b;
            // A tie leaves its kink at once, whichever side rounding put its residual on.
            if tied {
                crossings.push((0.0, b.abs(), first + i));
            } else if t > 0.0 {
                crossings.push((t, 2.0 * b.abs(), first + i));
            }
        }
        Ok(())
    })?;
    crossings.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    let mut slope = slope0;
    let mut entering = None;
    for &(_, w, index) in &crossings {
        slope += w;
        if slope >= 0.0 {
            entering = Some(index);
            break;
        }
    }
    let Some(index) = entering else {
        return Ok(None);
    };
    // Read the entering row.
    let mut found = None;
    pass.each_block(&mut |first, x, y| {
        if (first..first + y.len()).contains(&index) {
            let i = index - first;
            let mut r = vec![0.0; k];
            design.row(&x[i * d..(i + 1) * d], &mut r);
            found = Some((index, r, design.cond.target(y[i])));
        }
        Ok(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::degenerate_vertex_optimal;

    #[test]
    fn the_degenerate_vertex_test_decides_feasibility_exactly() {
        // One coefficient, two tied rows of x = 1: w1 + w2 = c has a solution in [-1, 1]^2
        // exactly when |c| <= 2.
        let tied = vec![vec![1.0], vec![1.0]];
        for (c, want) in [
            (0.0, true),
            (1.5, true),
            (-2.0, true),
            (2.0 + 1e-6, false),
            (-3.0, false),
        ] {
            assert_eq!(
                degenerate_vertex_optimal(&tied, &[1.0, 1.0], &[c], 1),
                want,
                "c = {c}"
            );
        }
        // Two coefficients: rows (1, 0), (0, 1), (1, 1). c = (2, 2) needs w3 = 1, w1 = w2 = 1
        // (a corner of the box); c = (2, 2.5) is out of reach; c = (-1.5, 0.5) is inside.
        let rows = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]];
        assert!(degenerate_vertex_optimal(&rows, &[1.0; 3], &[2.0, 2.0], 2));
        assert!(!degenerate_vertex_optimal(&rows, &[1.0; 3], &[2.0, 2.5], 2));
        assert!(degenerate_vertex_optimal(&rows, &[1.0; 3], &[-1.5, 0.5], 2));
        // Many identical rows (a repeated row): their sum covers [-m, m], as one column of
        // bound m does.
        let repeated = vec![vec![2.0, -1.0]; 15];
        assert!(degenerate_vertex_optimal(
            &repeated,
            &[1.0; 15],
            &[29.0, -14.5],
            2
        ));
        assert!(!degenerate_vertex_optimal(
            &repeated,
            &[1.0; 15],
            &[29.0, -15.5],
            2
        ));
        let once = vec![vec![2.0, -1.0]];
        assert!(degenerate_vertex_optimal(&once, &[15.0], &[29.0, -14.5], 2));
        assert!(!degenerate_vertex_optimal(
            &once,
            &[15.0],
            &[31.0, -15.5],
            2
        ));
    }
}
