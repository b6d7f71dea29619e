//! Small dense symmetric linear algebra in f64 for covariance matrices (at most
//! `inference::MAX_INFERENCE_PARAMS` parameters): Cholesky inverse, Jacobi
//! eigendecomposition, pseudo-inverse.

/// Eigenvalues and eigenvectors (columns of the row-major `vectors`) of a symmetric n x n
/// matrix by cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j].powi(2))
            .sum();
        let scale: f64 = (0..n)
            .map(|i| m[i * n + i].powi(2))
            .sum::<f64>()
            .max(1e-300);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| m[i * n + i]).collect(), v)
}

/// The inverse of a symmetric positive semi-definite matrix on the span of the directions
/// it determines; returns it with the directions (unit vectors) it leaves out.
///
/// The matrix is first equilibrated, C = D A D with D = diag(A)^(-1/2) (1 where a diagonal
/// entry is not positive), so that a parameter's units (a feature in dollars rather than in
/// thousands of dollars) do not decide what counts as singular: an eigenvector of C is left
/// out when its eigenvalue is at most `rel_tol` times the largest. Then A^+ = D C^+ D, and a
/// left-out direction v of C is D v in A's coordinates. A well-conditioned C is inverted by
/// Cholesky (O(n^3), no eigenvectors needed); otherwise by Jacobi eigendecomposition.
pub fn pseudo_inverse(a: &[f64], n: usize, rel_tol: f64) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d: Vec<f64> = (0..n)
        .map(|i| {
            let v = a[i * n + i];
            if v > 0.0 && v.is_finite() {
                1.0 / v.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let c: Vec<f64> = (0..n * n).map(|k| a[k] * d[k / n] * d[k % n]).collect();
    let (c_inv, dropped) = match well_conditioned_inverse(&c, n, rel_tol) {
        Some(inv) => (inv, Vec::new()),
        None => eigen_pseudo_inverse(&c, n, rel_tol),
    };
    let inv = (0..n * n).map(|k| c_inv[k] * d[k / n] * d[k % n]).collect();
    let dropped = dropped
        .into_iter()
        .map(|v| {
            let u: Vec<f64> = v.iter().zip(&d).map(|(x, s)| x * s).collect();
            let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
            u.into_iter().map(|x| x / norm).collect()
        })
        .collect();
    (inv, dropped)
}

/// C^-1 by Cholesky where that proves every eigenvalue of C exceeds `rel_tol` times the
/// largest: lambda_min >= 1 / trace(C^-1) and lambda_max <= trace(C). None otherwise
/// (including where C is not positive definite).
fn well_conditioned_inverse(c: &[f64], n: usize, rel_tol: f64) -> Option<Vec<f64>> {
    // C = L L^T, L lower triangular (row-major).
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            let v = c[i * n + j] - dot;
            if i == j {
                if v.is_nan() || v <= 0.0 {
                    return None;
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    // M = L^-1 (lower triangular), by forward substitution column by column.
    let mut m = vec![0.0; n * n];
    for col in 0..n {
        for i in col..n {
            let rhs = if i == col { 1.0 } else { 0.0 };
            let dot: f64 = (col..i).map(|k| l[i * n + k] * m[k * n + col]).sum();
            m[i * n + col] = (rhs - dot) / l[i * n + i];
        }
    }
    // C^-1 = M^T M.
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let v: f64 = (i..n).map(|k| m[k * n + i] * m[k * n + j]).sum();
            inv[i * n + j] = v;
            inv[j * n + i] = v;
        }
    }
    let trace_inv: f64 = (0..n).map(|i| inv[i * n + i]).sum();
    let trace: f64 = (0..n).map(|i| c[i * n + i]).sum();
    (trace_inv.is_finite() && 1.0 / trace_inv > rel_tol * trace).then_some(inv)
}

/// The pseudo-inverse by eigendecomposition: eigenvectors whose eigenvalues are at most
/// `rel_tol` times the largest are left out (and returned, as columns).
fn eigen_pseudo_inverse(a: &[f64], n: usize, rel_tol: f64) -> (Vec<f64>, Vec<Vec<f64>>) {
    let (values, vectors) = symmetric_eigen(a, n);
    let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut inv = vec![0.0; n * n];
    let mut dropped = Vec::new();
    for (k, &lambda) in values.iter().enumerate() {
        let column: Vec<f64> = (0..n).map(|i| vectors[i * n + k]).collect();
        if lambda <= rel_tol * largest || largest == 0.0 {
            dropped.push(column);
            continue;
        }
        for i in 0..n {
            for j in 0..n {
                inv[i * n + j] += column[i] * column[j] / lambda;
            }
        }
    }
    (inv, dropped)
}

/// a b for row-major n x n matrices.
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik != 0.0 {
                for j in 0..n {
                    c[i * n + j] += aik * b[k * n + j];
                }
            }
        }
    }
    c
}

/// The Cholesky factor L (lower triangular, row-major, A = L L^T) of a symmetric positive
/// definite n x n matrix; `None` where a pivot is not positive (A is not positive definite to
/// working precision).
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if v.is_nan() || v <= 0.0 || !v.is_finite() {
                    return None;
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves L L^T x = b given the Cholesky factor L.
pub fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = b.to_vec();
    for i in 0..n {
        let mut v = z[i];
        for k in 0..i {
            v -= l[i * n + k] * z[k];
        }
        z[i] = v / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = z[i];
        for k in i + 1..n {
            v -= l[k * n + i] * z[k];
        }
        z[i] = v / l[i * n + i];
    }
    z
}

/// A symmetric positive semi-definite system H x = b solved in its equilibrated form:
/// C = D H D with D = diag(H)^(-1/2) has a unit diagonal, so the parameters' units do not
/// decide what is singular; C (plus the smallest ridge `mu` I of 0, 1e-10, 1e-8, ... that
/// makes it positive definite) is factored by Cholesky. The first ridge, 1e-10, is the
/// eigenvalue below which inference calls a direction undetermined (the categorical logits'
/// common shift, collinear features): along such a direction a gradient is rounding noise,
/// and the ridge keeps it from dominating a Newton step or decrement.
pub struct EquilibratedFactor {
    n: usize,
    d: Vec<f64>,
    l: Vec<f64>,
    /// The ridge added to the unit diagonal (0 where C itself was positive definite).
    pub ridge: f64,
}

impl EquilibratedFactor {
    /// Factors `h` (n x n, row-major); `None` where no ridge up to 1 makes it positive
    /// definite (non-finite entries).
    pub fn new(h: &[f64], n: usize) -> Option<Self> {
        let d: Vec<f64> = (0..n)
            .map(|i| {
                let v = h[i * n + i];
                if v > 0.0 && v.is_finite() {
                    1.0 / v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let c: Vec<f64> = (0..n * n).map(|k| h[k] * d[k / n] * d[k % n]).collect();
        if c.iter().any(|v| !v.is_finite()) {
            return None;
        }
        for ridge in std::iter::once(0.0).chain((0..8).map(|e| 1e-10 * 100f64.powi(e))) {
            let mut shifted = c.clone();
            (0..n).for_each(|i| shifted[i * n + i] += ridge);
            if let Some(l) = cholesky(&shifted, n) {
                return Some(EquilibratedFactor { n, d, l, ridge });
            }
        }
        None
    }

    /// x with (H + ridge D^-2) x = b.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let scaled: Vec<f64> = b.iter().zip(&self.d).map(|(v, d)| v * d).collect();
        cholesky_solve(&self.l, self.n, &scaled)
            .iter()
            .zip(&self.d)
            .map(|(v, d)| v * d)
            .collect()
    }

    /// A bound on the condition number of the equilibrated matrix (the ratio of the largest to
    /// the smallest squared pivot of its Cholesky factor, a lower bound on the true condition
    /// number that is rarely far from it).
    pub fn condition_estimate(&self) -> f64 {
        let pivots = (0..self.n).map(|i| self.l[i * self.n + i].powi(2));
        let (lo, hi) = pivots.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        hi / lo
    }
}

/// The principal submatrix of the p x p matrix `h` (row-major) on coordinates `keep`, with
/// `diagonal[i]` added for each kept i (a prior's curvature; empty for none).
pub fn principal_submatrix(h: &[f64], p: usize, keep: &[usize], diagonal: &[f64]) -> Vec<f64> {
    let m = keep.len();
    let mut sub = vec![0.0; m * m];
    for (a, &i) in keep.iter().enumerate() {
        for (b, &k) in keep.iter().enumerate() {
            sub[a * m + b] = h[i * p + k];
        }
        sub[a * m + a] += diagonal.get(i).copied().unwrap_or(0.0);
    }
    sub
}

/// sqrt(q) for a quadratic form q = g^T H^-1 g already computed: the Newton decrement. A
/// form that is not a finite number (a step that overflowed, 0 x inf) is an infinite
/// decrement, never 0 (f64::max would turn NaN into the bound), so a point whose curvature
/// has underflowed (a saturated logit, a divergent fit) never passes an optimality test.
pub fn decrement_of(form: f64) -> f64 {
    if form.is_finite() {
        form.max(0.0).sqrt()
    } else {
        f64::INFINITY
    }
}

/// sum_i a_i b_i in eight lanes (each adding every eighth product in order, then added
/// pairwise), so that it vectorises with a fixed order of additions.
#[inline(always)]
fn dot_in_lanes(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let mut lanes = [0.0; 8];
    let (a_whole, a_rest) = a[..n].as_chunks::<8>();
    let (b_whole, b_rest) = b[..n].as_chunks::<8>();
    for (ca, cb) in a_whole.iter().zip(b_whole) {
        for k in 0..8 {
            lanes[k] += ca[k] * cb[k];
        }
    }
    for (k, (&x, &y)) in a_rest.iter().zip(b_rest).enumerate() {
        lanes[k] += x * y;
    }
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
}

/// The reflection that maps (rkk, column) to (alpha, 0), from rkk and the column's sum of
/// squares `below`: alpha = -sign(rkk) |(rkk, column)|, v = (rkk - alpha, column), and
/// x -> x - beta v (v^T x) with beta = 2 / v^T v. Returns (alpha, v0 = rkk - alpha, beta).
#[inline(always)]
fn reflector(rkk: f64, below: f64) -> (f64, f64, f64) {
    let norm = (rkk * rkk + below).sqrt();
    let alpha = if rkk > 0.0 { -norm } else { norm };
    let v0 = rkk - alpha;
    (alpha, v0, 2.0 / (v0 * v0 + below))
}

/// sqrt(a^2 + b^2) for a Givens rotation: the plain formula where the larger magnitude lies
/// within 2^+-500 (no square can overflow, and a square that underflows is below the other's
/// rounding), within an ulp or so of the exact value; `hypot` (several times slower, and
/// once most of a least-squares pass) only outside that range.
#[inline]
fn rotation_length(a: f64, b: f64) -> f64 {
    let larger = a.abs().max(b.abs());
    // 2^500 and 2^-500.
    let (high, low) = (
        f64::from_bits(0x5f30_0000_0000_0000),
        f64::from_bits(0x20b0_0000_0000_0000),
    );
    if larger < high && larger > low {
        (a * a + b * b).sqrt()
    } else {
        a.hypot(b)
    }
}

/// The upper-triangular factor R of the QR factorisation of a tall matrix, accumulated one
/// row at a time by Givens rotations (so rows can arrive in chunks, and partial factors of
/// disjoint row blocks merge by feeding one's rows into the other). Backward stable: least
/// squares from R loses digits in proportion to the condition number of the matrix, not its
/// square as the normal equations do.
#[derive(Clone, Debug)]
pub struct QrRows {
    pub cols: usize,
    /// cols x cols, row-major, upper triangular.
    pub r: Vec<f64>,
}

impl QrRows {
    pub fn new(cols: usize) -> Self {
        QrRows {
            cols,
            r: vec![0.0; cols * cols],
        }
    }

    /// Rotates `row` (length `cols`, overwritten) into R (Givens rotations).
    pub fn add_row(&mut self, row: &mut [f64]) {
        let m = self.cols;
        for k in 0..m {
            let a = row[k];
            if a == 0.0 {
                continue;
            }
            let rkk = self.r[k * m + k];
            let h = rotation_length(rkk, a);
            let (c, s) = (rkk / h, a / h);
            self.r[k * m + k] = h;
            row[k] = 0.0;
            let r_row = &mut self.r[k * m + k + 1..(k + 1) * m];
            for (rv, av) in r_row.iter_mut().zip(&mut row[k + 1..]) {
                let (r0, a0) = (*rv, *av);
                *rv = c * r0 + s * a0;
                *av = c * a0 - s * r0;
            }
        }
    }

    /// Rotates `rows` rows held column by column (`block[j * stride + i]` is row i's entry
    /// j; overwritten) into R by Householder reflections, one per column: the stacked matrix
    /// [R; block] is reduced column by column, each reflection's dot products and updates
    /// running over the block's rows (contiguous, so they vectorise), with about 2/3 of the
    /// arithmetic of rotating the rows in one at a time and no square root or division per
    /// row. Backward stable as the rotations are; R's diagonal may come out negative (see
    /// [`QrRows::nonnegative_diagonal`]).
    pub fn add_block(&mut self, block: &mut [f64], stride: usize, rows: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { reflect512::add_block(self, block, stride, rows) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { self.add_block_avx2(block, stride, rows) };
        }
        self.add_block_with(block, stride, rows)
    }

    /// [`QrRows::add_block`] compiled for AVX2: the same operations in wider vectors (no
    /// fused multiply-adds), so the same bits.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn add_block_avx2(&mut self, block: &mut [f64], stride: usize, rows: usize) {
        self.add_block_with(block, stride, rows)
    }

    #[inline(always)]
    fn add_block_with(&mut self, block: &mut [f64], stride: usize, rows: usize) {
        let m = self.cols;
        // The reflections square entries and sum the squares: where an entry of the block or
        // of R lies beyond 2^+-500 (a column the conditioning could not scale, values near
        // 1e160 or 1e-200), its rows are rotated in one at a time instead, whose lengths
        // never overflow or underflow (`rotation_length`).
        let (high, low) = (2f64.powi(500), 2f64.powi(-500));
        let outside = |v: &f64| *v != 0.0 && !(low..high).contains(&v.abs());
        let block_outside =
            (0..m).any(|j| block[j * stride..j * stride + rows].iter().any(outside));
        if block_outside || self.r.iter().any(outside) {
            let mut row = vec![0.0; m];
            for i in 0..rows {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = block[j * stride + i];
                }
                self.add_row(&mut row);
            }
            return;
        }
        for k in 0..m {
            let (done, rest) = block.split_at_mut((k + 1) * stride);
            let column = &done[k * stride..k * stride + rows];
            let below = dot_in_lanes(column, column);
            if below == 0.0 {
                continue;
            }
            let (alpha, v0, beta) = reflector(self.r[k * m + k], below);
            for j in k + 1..m {
                let other = &mut rest[(j - k - 1) * stride..(j - k - 1) * stride + rows];
                let f = beta * (v0 * self.r[k * m + j] + dot_in_lanes(column, other));
                self.r[k * m + j] -= f * v0;
                for (o, &c) in other.iter_mut().zip(column) {
                    *o -= f * c;
                }
            }
            self.r[k * m + k] = alpha;
        }
    }

    /// Flips the sign of every row of R whose diagonal entry is negative (a reflection of
    /// Q's column), so that R's diagonal is the nonnegative one rotations give.
    pub fn nonnegative_diagonal(&mut self) {
        let m = self.cols;
        for k in 0..m {
            if self.r[k * m + k] < 0.0 {
                self.r[k * m + k..(k + 1) * m]
                    .iter_mut()
                    .for_each(|v| *v = -*v);
            }
        }
    }

    /// Adds the rows of another factor (of other rows of the same matrix).
    pub fn merge(&mut self, other: &QrRows) {
        let m = self.cols;
        let mut row = vec![0.0; m];
        for i in 0..m {
            row.copy_from_slice(&other.r[i * m..(i + 1) * m]);
            self.add_row(&mut row);
        }
    }

    /// Solves R[..k, ..k] x = R[..k, k] (the least-squares coefficients when the last of
    /// `k + 1` columns is the response); `None` where a diagonal entry is 0.
    pub fn solve_leading(&self, k: usize) -> Option<Vec<f64>> {
        let m = self.cols;
        let mut x = vec![0.0; k];
        for i in (0..k).rev() {
            let mut v = self.r[i * m + k];
            for (r, xj) in self.r[i * m + i + 1..i * m + k].iter().zip(&x[i + 1..k]) {
                v -= r * xj;
            }
            let d = self.r[i * m + i];
            if d == 0.0 {
                return None;
            }
            x[i] = v / d;
        }
        Some(x)
    }

    /// z with R[..k, ..k]^T z = b.
    pub fn solve_leading_transposed(&self, k: usize, b: &[f64]) -> Vec<f64> {
        let m = self.cols;
        let mut z = b.to_vec();
        for i in 0..k {
            let v = z[i] - (0..i).map(|j| self.r[j * m + i] * z[j]).sum::<f64>();
            z[i] = v / self.r[i * m + i];
        }
        z
    }
}

/// [`QrRows::add_block`] in AVX-512 intrinsics, with the portable build's bits: every dot
/// product is summed in the eight lanes of `dot_in_lanes`, in its order (the rows' vectors in
/// turn, a masked tail that adds zeros, then the lanes pairwise), eight columns' sums side by
/// side in registers and their lanes added by one transposing tree in the same pairs; every
/// update is a multiplication then a subtraction, as in the portable loop. (The compiler
/// vectorises neither the lanes' sums nor the range scan of the portable code.)
#[cfg(target_arch = "x86_64")]
mod reflect512 {
    use super::QrRows;
    use std::arch::x86_64::*;

    /// # Safety
    /// The processor has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn add_block(qr: &mut QrRows, block: &mut [f64], stride: usize, rows: usize) {
        let m = qr.cols;
        assert!(rows <= stride && block.len() >= m * stride);
        if any_outside(&qr.r) || (0..m).any(|j| any_outside(&block[j * stride..j * stride + rows]))
        {
            // Entries beyond 2^+-500: the portable path rotates the rows in one at a time.
            return qr.add_block_with(block, stride, rows);
        }
        let tail: __mmask8 = ((1u32 << (rows % 8)) - 1) as u8;
        let whole = rows / 8 * 8;
        for k in 0..m {
            let (done, rest) = block.split_at_mut((k + 1) * stride);
            let column = &done[k * stride..k * stride + rows];
            let below = sums_of_products(column, &[column], whole, tail)[0];
            if below == 0.0 {
                continue;
            }
            let (alpha, v0, beta) = super::reflector(qr.r[k * m + k], below);
            let after = m - k - 1;
            for first in (0..after).step_by(8) {
                let count = (after - first).min(8);
                let others: [&[f64]; 8] = std::array::from_fn(|q| {
                    let q = first + q.min(count - 1);
                    &rest[q * stride..q * stride + rows]
                });
                let dots = sums_of_products(column, &others[..count], whole, tail);
                for (q, &dot) in dots.iter().enumerate().take(count) {
                    let j = k + 1 + first + q;
                    let f = beta * (v0 * qr.r[k * m + j] + dot);
                    qr.r[k * m + j] -= f * v0;
                    let other = &mut rest[(first + q) * stride..(first + q) * stride + rows];
                    subtract_multiple(other, column, f, whole, tail);
                }
            }
            qr.r[k * m + k] = alpha;
        }
    }

    /// Whether a value is nonzero and outside [2^-500, 2^500) in magnitude (or NaN), as the
    /// portable scan asks.
    #[target_feature(enable = "avx512f")]
    fn any_outside(values: &[f64]) -> bool {
        let (low, high) = (
            _mm512_set1_pd(2f64.powi(-500)),
            _mm512_set1_pd(2f64.powi(500)),
        );
        let zero = _mm512_setzero_pd();
        let mut found: __mmask8 = 0;
        for chunk in values.chunks(8) {
            let mask: __mmask8 = ((1u32 << chunk.len()) - 1) as u8;
            // SAFETY: the masked load reads the chunk's values only.
            let v = unsafe { _mm512_maskz_loadu_pd(mask, chunk.as_ptr()) };
            let magnitude = _mm512_abs_pd(v);
            let inside = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(magnitude, low)
                & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(magnitude, high);
            let nonzero = _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(v, zero);
            found |= nonzero & !inside & mask;
        }
        found != 0
    }

    /// `dot_in_lanes(a, b)` for each of up to eight `bs` (0 beyond them), bit for bit;
    /// `whole` = a.len() / 8 * 8 and `tail` masks the lanes after it.
    #[target_feature(enable = "avx512f")]
    fn sums_of_products(a: &[f64], bs: &[&[f64]], whole: usize, tail: __mmask8) -> [f64; 8] {
        assert!(bs.len() <= 8 && bs.iter().all(|b| b.len() == a.len()));
        let mut lanes = [_mm512_setzero_pd(); 8];
        // SAFETY: every load lies within `a` and each b (whole vectors below `whole`, the
        // masked tail after it).
        unsafe {
            for i in (0..whole).step_by(8) {
                let x = _mm512_loadu_pd(a.as_ptr().add(i));
                for (l, b) in lanes.iter_mut().zip(bs) {
                    *l = _mm512_add_pd(*l, _mm512_mul_pd(x, _mm512_loadu_pd(b.as_ptr().add(i))));
                }
            }
            if tail != 0 {
                let x = _mm512_maskz_loadu_pd(tail, a.as_ptr().add(whole));
                for (l, b) in lanes.iter_mut().zip(bs) {
                    let y = _mm512_maskz_loadu_pd(tail, b.as_ptr().add(whole));
                    // Lanes past the tail add 0 * 0 to a lane that is never -0.
                    *l = _mm512_add_pd(*l, _mm512_mul_pd(x, y));
                }
            }
        }
        lane_sums(lanes)
    }

    /// For each of eight vectors of lanes l0..l7: ((l0 + l4) + (l1 + l5)) + ((l2 + l6) +
    /// (l3 + l7)), the portable order, by a tree of shuffles.
    #[target_feature(enable = "avx512f")]
    fn lane_sums(v: [__m512d; 8]) -> [f64; 8] {
        // p_k = l_k + l_(k+4), two vectors' four sums to a vector.
        let halves = |a: __m512d, b: __m512d| {
            _mm512_add_pd(
                _mm512_shuffle_f64x2::<0x44>(a, b),
                _mm512_shuffle_f64x2::<0xEE>(a, b),
            )
        };
        let (t01, t23, t45, t67) = (
            halves(v[0], v[1]),
            halves(v[2], v[3]),
            halves(v[4], v[5]),
            halves(v[6], v[7]),
        );
        // p0 + p1 and p2 + p3: lanes [0, 2, 0, 2, 1, 3, 1, 3] of the first four vectors' sums.
        let pairs = |a: __m512d, b: __m512d| {
            _mm512_add_pd(_mm512_unpacklo_pd(a, b), _mm512_unpackhi_pd(a, b))
        };
        let (w0123, w4567) = (pairs(t01, t23), pairs(t45, t67));
        // (p0 + p1) + (p2 + p3): vectors in the order 0, 2, 1, 3, 4, 6, 5, 7.
        let s = _mm512_add_pd(
            _mm512_shuffle_f64x2::<0x88>(w0123, w4567),
            _mm512_shuffle_f64x2::<0xDD>(w0123, w4567),
        );
        let mut out = [0.0; 8];
        // SAFETY: `out` holds one vector.
        unsafe { _mm512_storeu_pd(out.as_mut_ptr(), s) };
        [
            out[0], out[2], out[1], out[3], out[4], out[6], out[5], out[7],
        ]
    }

    /// `other -= f * column`, a multiplication then a subtraction per entry.
    #[target_feature(enable = "avx512f")]
    fn subtract_multiple(other: &mut [f64], column: &[f64], f: f64, whole: usize, tail: __mmask8) {
        assert_eq!(other.len(), column.len());
        let f = _mm512_set1_pd(f);
        // SAFETY: as in `sums_of_products`.
        unsafe {
            for i in (0..whole).step_by(8) {
                let o = _mm512_loadu_pd(other.as_ptr().add(i));
                let c = _mm512_loadu_pd(column.as_ptr().add(i));
                _mm512_storeu_pd(
                    other.as_mut_ptr().add(i),
                    _mm512_sub_pd(o, _mm512_mul_pd(f, c)),
                );
            }
            if tail != 0 {
                let o = _mm512_maskz_loadu_pd(tail, other.as_ptr().add(whole));
                let c = _mm512_maskz_loadu_pd(tail, column.as_ptr().add(whole));
                let updated = _mm512_sub_pd(o, _mm512_mul_pd(f, c));
                _mm512_mask_storeu_pd(other.as_mut_ptr().add(whole), tail, updated);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// R from rotating `rows` (row-major, m columns) in one at a time.
    fn by_rotations(rows: &[f64], m: usize) -> QrRows {
        let mut qr = QrRows::new(m);
        for row in rows.chunks(m) {
            qr.add_row(&mut row.to_vec());
        }
        qr
    }

    /// R from reflecting `rows` in blocks of `block` rows held column by column (stride
    /// `stride` >= block), signs made nonnegative.
    fn by_reflections(rows: &[f64], m: usize, block: usize, stride: usize) -> QrRows {
        let mut qr = QrRows::new(m);
        let mut columns = vec![f64::NAN; m * stride];
        for chunk in rows.chunks(m * block) {
            let count = chunk.len() / m;
            for (i, row) in chunk.chunks(m).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    columns[j * stride + i] = v;
                }
            }
            qr.add_block(&mut columns, stride, count);
        }
        qr.nonnegative_diagonal();
        qr
    }

    #[test]
    fn reflecting_blocks_gives_the_rotations_factor() {
        // R is unique up to the signs of its rows for a full-rank matrix: the two ways to
        // reduce the same rows agree to rounding, at block edges (1 row, a lane less one, a
        // lane, several blocks and a partial one), with a zero column, with columns of very
        // different scales and nearly dependent columns (condition near 1e8).
        let mut rng = StdRng::seed_from_u64(11);
        // Widths of one group of eight columns' sums and of several, partial ones included.
        for (m, (n, block, stride)) in [6, 11, 18].into_iter().flat_map(|m| {
            [
                (1, 64, 64),
                (7, 8, 8),
                (8, 8, 9),
                (9, 4, 4),
                (300, 64, 64),
                (77, 13, 16),
            ]
            .map(|shape| (m, shape))
        }) {
            for case in 0..4 {
                let mut rows: Vec<f64> = (0..n * m).map(|_| rng.random_range(-1.0..1.0)).collect();
                for r in 0..n {
                    match case {
                        1 => rows[r * m + 2] = 0.0,
                        2 => rows[r * m + 4] *= 1e6,
                        // The last column (the rows of R after a nearly dependent column
                        // are determined only to about u times the condition).
                        3 => rows[r * m + m - 1] = rows[r * m + 1] + 1e-8 * rows[r * m + m - 1],
                        _ => {}
                    }
                }
                let a = by_rotations(&rows, m);
                let b = by_reflections(&rows, m, block, stride);
                // The build this CPU runs (AVX-512 intrinsics, or the AVX2 build) gives the
                // portable one's bits. (On a CPU without either both are the portable build:
                // the comparison is then empty.)
                let mut portable = QrRows::new(m);
                let mut columns = vec![0.0; m * stride];
                for chunk in rows.chunks(m * block) {
                    for (i, row) in chunk.chunks(m).enumerate() {
                        for (j, &v) in row.iter().enumerate() {
                            columns[j * stride + i] = v;
                        }
                    }
                    portable.add_block_with(&mut columns, stride, chunk.len() / m);
                }
                portable.nonnegative_diagonal();
                assert_eq!(portable.r, b.r, "m {m} n {n} case {case}");
                for i in 0..m {
                    // Entries of row i are at most the column norms: compare on that scale.
                    for j in i..m {
                        let scale: f64 =
                            (0..n).map(|r| rows[r * m + j].powi(2)).sum::<f64>().sqrt();
                        let (x, y) = (a.r[i * m + j], b.r[i * m + j]);
                        // A zero pivot leaves the rest of its row to either method's rounding.
                        if a.r[i * m + i].abs() <= 1e-300 {
                            continue;
                        }
                        let tolerance = 1e-13;
                        assert!(
                            (x - y).abs() <= tolerance * scale.max(1e-300),
                            "n {n} case {case}: R[{i}][{j}] {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn blocks_beyond_the_squares_range_are_rotated_in() {
        // A column near 1e160 (its squares overflow) or near 1e-200 (they underflow): the
        // block's rows are rotated in one at a time, as the rotations alone would.
        let mut rng = StdRng::seed_from_u64(12);
        let m = 4;
        for scale in [1e160, 1e-200] {
            let n = 100;
            let mut rows: Vec<f64> = (0..n * m).map(|_| rng.random_range(-1.0..1.0)).collect();
            for r in 0..n {
                rows[r * m + 1] *= scale;
            }
            let a = by_rotations(&rows, m);
            let b = by_reflections(&rows, m, 64, 64);
            for (x, y) in a.r.iter().zip(&b.r) {
                assert!(
                    x.is_finite() && (x - y).abs() <= 1e-13 * x.abs().max(y.abs()),
                    "{scale}: {x} vs {y}"
                );
            }
            assert!(a.r[m + 1] != 0.0 && a.r[m + 1].is_finite());
        }
    }

    #[test]
    fn rotation_lengths_hold_at_the_ends_of_the_range() {
        for (a, b) in [
            (3.0, 4.0),
            (1e300, 1e300),
            (1e-300, 1e-300),
            (1e200, 1.0),
            (0.0, 5e-324),
        ] {
            let want = f64::hypot(a, b);
            let got = rotation_length(a, b);
            assert!(
                (got - want).abs() <= 2.0 * f64::EPSILON * want,
                "{a} {b}: {got} vs {want}"
            );
        }
    }
}
