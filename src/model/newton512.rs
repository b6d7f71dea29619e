//! The Newton pass of a linear model with one output and no globals (logistic, Poisson and
//! exponential regression) on processors with AVX-512.
//!
//! The rows of a block are kept as they are stored, row-major (conditioned, and padded with
//! zeros to whole vectors of 8), so that H += sum_i c_i x~_i x~_i^T is a sum of outer
//! products: for each row, every feature's weighted value c_i x_ij is broadcast against the
//! row's vectors, in register tiles of 4 rows by up to 4 vectors of H whose sums stay in
//! registers over the whole block (per row: 4 broadcasts and up to 4 loads for up to 16 fused
//! multiply-adds of 8 lanes). Only the tiles that hold the upper triangle are summed. The
//! intercept's row of H (sum_i c_i x_i, and sum_i c_i) and the gradient are sums of the rows
//! themselves. The block's eta is a dot product per row.
//!
//! Compared with the column-held blocks of the other hosts (`newton::accumulate`), this does
//! about a third of the multiply-adds per row (d = 16: 26 vector operations of 8 lanes, against
//! 50 of 4 lanes there) and no transposition.

use super::conditioning::Conditioning;
use super::network::{sum_in_lanes, Network};
use super::newton::{head_slopes, Derivatives};
use crate::error::Result;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// Rows per block: a block's rows and weighted rows (16 KiB each at 16 features) stay in the
/// first-level cache while the tiles pass over them.
const BLOCK: usize = 128;
/// f64 lanes of a vector.
const LANES: usize = 8;

/// Whether this processor runs [`scalar_derivatives`].
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
}

/// NLL, gradient and (when `with_hessian`) Hessian of the rows as `cond` re-expresses them,
/// with the parameters (weights, then the intercept) in those coordinates; the caller checked
/// [`available`].
pub(super) fn scalar_derivatives(
    net: &Network,
    params: &[f64],
    x: &[f64],
    y: &[f64],
    cond: Option<&Conditioning>,
    with_hessian: bool,
) -> Result<Derivatives> {
    assert!(available(), "scalar_derivatives needs AVX-512");
    let d = net.inputs;
    let p = d + 1;
    let stride = d.div_ceil(LANES).max(1) * LANES;
    let mut weights = vec![0.0; stride];
    weights[..d].copy_from_slice(&params[..d]);
    let intercept = params[d];
    // The conditioning as whole vectors: (v - center) * scale, zeros beyond d.
    let mut shift = Shift {
        center: vec![0.0; stride],
        scale: vec![0.0; stride],
    };
    match cond {
        Some(c) => {
            shift.center[..d].copy_from_slice(&c.center);
            shift.scale[..d].copy_from_slice(&c.inv_scale);
        }
        None => shift.scale[..d].fill(1.0),
    }
    let n = y.len();
    let starts: Vec<usize> = (0..n).step_by(32 * BLOCK).collect();
    let parts: Vec<Result<Sums>> = starts
        .par_iter()
        .map(|&first| {
            let mut sums = Sums::new(stride);
            let mut rows_held = vec![0.0; BLOCK * stride];
            let mut weighted = vec![0.0; BLOCK * stride];
            let (mut eta, mut slope, mut curvature) = ([0.0; BLOCK], [0.0; BLOCK], [0.0; BLOCK]);
            let mut targets = [0.0; BLOCK];
            let end = n.min(first + 32 * BLOCK);
            for start in (first..end).step_by(BLOCK) {
                let rows = BLOCK.min(end - start);
                let block = &x[start * d..(start + rows) * d];
                // The next block's rows, fetched into the second-level cache while this one
                // is worked on (the hardware prefetcher alone leaves the memory idle then).
                let ahead = &x[(start + rows) * d..(start + rows + BLOCK).min(n) * d];
                prefetch(ahead);
                prefetch(&y[(start + rows).min(n)..(start + rows + BLOCK).min(n)]);
                // SAFETY: `available` (asserted above); `rows_held` holds BLOCK rows.
                unsafe { hold_rows(block, d, &shift, &mut rows_held) };
                for (t, v) in targets[..rows].iter_mut().zip(&y[start..start + rows]) {
                    *t = cond.map_or(*v, |c| c.target(*v));
                }
                // SAFETY: `available` (asserted above); the slices hold `rows` rows of
                // `stride` values, `weights` one.
                unsafe { etas(&rows_held, stride, &weights, intercept, &mut eta[..rows]) };
                sums.nll += head_slopes(
                    net,
                    &eta[..rows],
                    &targets[..rows],
                    &mut slope[..rows],
                    &mut curvature[..rows],
                )?;
                // SAFETY: as above.
                unsafe {
                    sums.add_block(
                        &rows_held,
                        &mut weighted,
                        d,
                        &slope[..rows],
                        &curvature[..rows],
                        with_hessian,
                    )
                };
            }
            Ok(sums)
        })
        .collect();
    let (mut f, mut g, mut h) = (0.0, vec![0.0; p], vec![0.0; p * p]);
    for part in parts {
        let part = part?;
        f += part.nll;
        for j in 0..d {
            g[j] += part.gradient[j];
            for k in j..d {
                h[j * p + k] += part.hessian[j * stride + k];
            }
            h[j * p + d] += part.intercept_row[j];
        }
        g[d] += part.intercept_gradient;
        h[d * p + d] += part.intercept_curvature;
    }
    for j in 0..p {
        for k in 0..j {
            h[j * p + k] = h[k * p + j];
        }
    }
    Ok((f, g, h))
}

/// Asks for every cache line of `values` to be brought into the second-level cache.
fn prefetch(values: &[f64]) {
    for line in values.chunks(8) {
        // SAFETY: a prefetch of an address within the slice; it reads nothing itself.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast()) };
    }
}

/// The conditioning of each feature, padded to whole vectors with zeros.
struct Shift {
    center: Vec<f64>,
    scale: Vec<f64>,
}

/// Rows of `d` values from `block` into `rows_held`, `stride` values apart: (v - center)
/// scale, and zeros beyond d (masked loads: no per-row copy call, no read past the rows).
///
/// # Safety
/// AVX-512F; `rows_held` holds the block's rows.
#[target_feature(enable = "avx512f")]
unsafe fn hold_rows(block: &[f64], d: usize, shift: &Shift, rows_held: &mut [f64]) {
    let stride = shift.center.len();
    let rows = block.len() / d.max(1);
    assert!(rows_held.len() >= rows * stride && block.len() == rows * d);
    for r in 0..rows {
        for q in 0..stride / LANES {
            let lanes = d.saturating_sub(q * LANES).min(LANES);
            let mask: __mmask8 = ((1u32 << lanes) - 1) as u8;
            // SAFETY: the masked load reads lanes within row r of `block`; the store lies
            // within row r of `rows_held`; the shift holds `stride` values.
            unsafe {
                let v = _mm512_maskz_loadu_pd(mask, block.as_ptr().add(r * d + q * LANES));
                let c = _mm512_loadu_pd(shift.center.as_ptr().add(q * LANES));
                let s = _mm512_loadu_pd(shift.scale.as_ptr().add(q * LANES));
                let held = _mm512_mul_pd(_mm512_sub_pd(v, c), s);
                _mm512_storeu_pd(rows_held.as_mut_ptr().add(r * stride + q * LANES), held);
            }
        }
    }
}

/// One thread's sums, over rows padded to `stride` values.
struct Sums {
    nll: f64,
    /// sum_i slope_i x_i.
    gradient: Vec<f64>,
    /// sum_i slope_i.
    intercept_gradient: f64,
    /// sum_i c_i x_i x_i^T, `stride` x `stride` (the upper triangle's tiles are summed).
    hessian: Vec<f64>,
    /// sum_i c_i x_i.
    intercept_row: Vec<f64>,
    /// sum_i c_i.
    intercept_curvature: f64,
}

impl Sums {
    fn new(stride: usize) -> Sums {
        Sums {
            nll: 0.0,
            gradient: vec![0.0; stride],
            intercept_gradient: 0.0,
            hessian: vec![0.0; stride * stride],
            intercept_row: vec![0.0; stride],
            intercept_curvature: 0.0,
        }
    }

    /// Adds a block of rows (`rows_held`, `slope.len()` rows of `stride` values, `d` of them
    /// features and the rest zeros); `weighted` is scratch of the same size.
    ///
    /// # Safety
    /// The processor has AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn add_block(
        &mut self,
        rows_held: &[f64],
        weighted: &mut [f64],
        d: usize,
        slope: &[f64],
        curvature: &[f64],
        with_hessian: bool,
    ) {
        let stride = self.gradient.len();
        let (rows, vectors) = (slope.len(), stride / LANES);
        assert!(rows_held.len() >= rows * stride && weighted.len() >= rows * stride);
        let held = rows_held.as_ptr();
        for q in 0..vectors {
            let (mut g, mut c) = (_mm512_setzero_pd(), _mm512_setzero_pd());
            for r in 0..rows {
                // SAFETY: row r's vector q lies within the `rows * stride` values asserted.
                let v = unsafe { _mm512_loadu_pd(held.add(r * stride + q * LANES)) };
                g = _mm512_fmadd_pd(_mm512_set1_pd(slope[r]), v, g);
                c = _mm512_fmadd_pd(_mm512_set1_pd(curvature[r]), v, c);
            }
            add_to(&mut self.gradient[q * LANES..(q + 1) * LANES], g);
            if with_hessian {
                add_to(&mut self.intercept_row[q * LANES..(q + 1) * LANES], c);
            }
        }
        self.intercept_gradient += sum_in_lanes(slope);
        if !with_hessian {
            return;
        }
        self.intercept_curvature += sum_in_lanes(curvature);
        for (r, &c) in curvature.iter().enumerate() {
            let c = _mm512_set1_pd(c);
            for q in 0..vectors {
                let at = r * stride + q * LANES;
                // SAFETY: within the `rows * stride` values asserted, of both.
                unsafe {
                    let v = _mm512_loadu_pd(held.add(at));
                    _mm512_storeu_pd(weighted.as_mut_ptr().add(at), _mm512_mul_pd(c, v));
                }
            }
        }
        // Tiles of 4 rows of H from row `first` by up to 4 vectors from the one holding the
        // diagonal: every entry of the upper triangle, and some of the lower, once. Rows
        // beyond d are the padding's zeros (first + 3 < stride: stride is a multiple of 8
        // above first).
        for first in (0..d).step_by(4) {
            let mut q = first / LANES;
            while q < vectors {
                let count = (vectors - q).min(4);
                // SAFETY: the tile's rows and vectors lie within H and the rows held.
                unsafe {
                    match count {
                        4 => self.tile::<4>(rows_held, weighted, rows, first, q),
                        3 => self.tile::<3>(rows_held, weighted, rows, first, q),
                        2 => self.tile::<2>(rows_held, weighted, rows, first, q),
                        _ => self.tile::<1>(rows_held, weighted, rows, first, q),
                    }
                }
                q += count;
            }
        }
    }

    /// H[first..first + 4, vectors q0..q0 + Q] += sum over the rows of their weighted values
    /// (broadcast) times their vectors.
    ///
    /// # Safety
    /// AVX-512F and FMA; `first + 4 <= stride`, `q0 + Q <= stride / 8`, and both slices hold
    /// `rows` rows.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    unsafe fn tile<const Q: usize>(
        &mut self,
        rows_held: &[f64],
        weighted: &[f64],
        rows: usize,
        first: usize,
        q0: usize,
    ) {
        let stride = self.gradient.len();
        let mut acc = [[_mm512_setzero_pd(); Q]; 4];
        let (held, weighted) = (rows_held.as_ptr(), weighted.as_ptr());
        for r in 0..rows {
            // SAFETY: as the caller promises.
            unsafe {
                let row = held.add(r * stride + q0 * LANES);
                let v: [__m512d; Q] = std::array::from_fn(|q| _mm512_loadu_pd(row.add(q * LANES)));
                let w = weighted.add(r * stride + first);
                for (t, acc_t) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_pd(*w.add(t));
                    for q in 0..Q {
                        acc_t[q] = _mm512_fmadd_pd(a, v[q], acc_t[q]);
                    }
                }
            }
        }
        for (t, acc_t) in acc.iter().enumerate() {
            for (q, sum) in acc_t.iter().enumerate() {
                let at = (first + t) * stride + (q0 + q) * LANES;
                add_to(&mut self.hessian[at..at + LANES], *sum);
            }
        }
    }
}

/// `to[..8] += v`.
#[target_feature(enable = "avx512f")]
#[inline]
fn add_to(to: &mut [f64], v: __m512d) {
    assert_eq!(to.len(), LANES);
    // SAFETY: `to` holds one vector.
    unsafe {
        _mm512_storeu_pd(
            to.as_mut_ptr(),
            _mm512_add_pd(_mm512_loadu_pd(to.as_ptr()), v),
        )
    }
}

/// eta_i = x_i . weights + intercept for each row held (`eta.len()` rows of `stride` values).
///
/// # Safety
/// AVX-512F and FMA.
#[target_feature(enable = "avx512f,fma")]
unsafe fn etas(rows_held: &[f64], stride: usize, weights: &[f64], intercept: f64, eta: &mut [f64]) {
    assert!(rows_held.len() >= eta.len() * stride && weights.len() == stride);
    for (r, e) in eta.iter_mut().enumerate() {
        let mut acc = _mm512_setzero_pd();
        for q in 0..stride / LANES {
            // SAFETY: within the values asserted.
            unsafe {
                let v = _mm512_loadu_pd(rows_held.as_ptr().add(r * stride + q * LANES));
                let w = _mm512_loadu_pd(weights.as_ptr().add(q * LANES));
                acc = _mm512_fmadd_pd(v, w, acc);
            }
        }
        *e = intercept + _mm512_reduce_add_pd(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::FamilyName;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The row-held pass against the column-held one (a different order of the same sums),
    /// for every width of H up to three vectors and a few tiles, blocks and threads' shares
    /// that end anywhere, with and without conditioning, for the logistic and Poisson heads.
    #[test]
    fn rows_held_give_the_sums_of_columns_held() {
        if !available() {
            eprintln!("SKIPPED: no AVX-512 here, so no row-held pass to compare");
            return;
        }
        let mut rng = StdRng::seed_from_u64(11);
        for d in (1..=20).chain([24, 25, 33]) {
            for n in [1, 5, 127, 128, 129, 4095, 4097, 9000] {
                for family in [FamilyName::Bernoulli, FamilyName::Poisson] {
                    let net = Network::linear(d, family, 2);
                    let x: Vec<f64> = (0..n * d).map(|_| rng.random_range(-3.0..5.0)).collect();
                    let y: Vec<f64> = (0..n)
                        .map(|_| match family {
                            FamilyName::Bernoulli => rng.random_range(0..2) as f64,
                            _ => rng.random_range(0..6) as f64,
                        })
                        .collect();
                    let params: Vec<f64> = (0..=d).map(|_| rng.random_range(-0.3..0.3)).collect();
                    let mut cond = Conditioning::identity(d);
                    for j in 0..d {
                        cond.center[j] = rng.random_range(-1.0..2.0);
                        cond.inv_scale[j] = [0.25, 0.5, 1.0, 2.0][j % 4];
                    }
                    for c in [None, Some(&cond)] {
                        for with_hessian in [true, false] {
                            let (f, g, h) =
                                scalar_derivatives(&net, &params, &x, &y, c, with_hessian).unwrap();
                            let (f0, g0, h0) = super::super::newton::scalar_derivatives_in_columns(
                                &net,
                                &params,
                                &x,
                                &y,
                                c,
                                with_hessian,
                            )
                            .unwrap();
                            let what = format!(
                                "d {d} n {n} {family:?} conditioned {} hessian {with_hessian}",
                                c.is_some()
                            );
                            // Sums of n terms of at most a few dozen: rounding of order n u.
                            let close = |a: f64, b: f64| {
                                (a - b).abs() <= 1e-14 * n as f64 * (1.0 + b.abs())
                            };
                            assert!(close(f, f0), "{what}: nll {f} vs {f0}");
                            for j in 0..=d {
                                assert!(close(g[j], g0[j]), "{what}: g {j}");
                            }
                            assert_eq!(h.len(), h0.len(), "{what}");
                            for (k, (a, b)) in h.iter().zip(&h0).enumerate() {
                                assert!(close(*a, *b), "{what}: H {k}: {a} vs {b}");
                            }
                        }
                    }
                }
            }
        }
    }
}
