//! Small dense symmetric linear algebra in f64 for covariance matrices (a few hundred
//! parameters at most): Jacobi eigendecomposition, inverse and pseudo-inverse.

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

/// The inverse of a symmetric matrix on the span of eigenvectors whose eigenvalues exceed
/// `rel_tol` times the largest; returns it with the eigenvectors (columns) left out, which
/// span the directions the data does not determine.
pub fn pseudo_inverse(a: &[f64], n: usize, rel_tol: f64) -> (Vec<f64>, Vec<Vec<f64>>) {
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
