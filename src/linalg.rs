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
