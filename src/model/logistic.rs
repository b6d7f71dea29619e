//! The Bernoulli (logistic) head over a block of rows in straight-line f64 arithmetic that the
//! compiler vectorises: softplus, sigmoid and the curvature from one e^-|eta| per row, with
//! exp and log1p evaluated by range reduction and polynomials accurate to a few ulp on the
//! ranges they are used on (tested against the standard library).

/// a * b + c, fused where `FMA` (the caller is compiled for a processor that has it).
#[inline(always)]
fn mul_add<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// exp(t) for t <= 0 (inputs below -708 give e^-708, about 3e-308: below any sum it enters).
pub fn exp_nonpositive(t: f64) -> f64 {
    exp_with::<false>(t)
}

#[inline(always)]
fn exp_with<const FMA: bool>(t: f64) -> f64 {
    // t = k ln 2 + r with |r| <= ln 2 / 2; k by the round-to-nearest of adding 1.5 * 2^52.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    // ln 2 split so that k * LN2_HI is exact for |k| < 2^11.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    let t = t.max(-708.0);
    let shifted = t * std::f64::consts::LOG2_E + SHIFTER;
    let k = shifted - SHIFTER;
    let r = (t - k * LN2_HI) - k * LN2_LO;
    // e^r by its Taylor series to r^13 (|r| <= 0.347: the remainder is below 1e-17).
    let mut p = 1.0 / 6_227_020_800.0;
    for c in EXP_TAYLOR {
        p = mul_add::<FMA>(p, r, c);
    }
    // 2^k from the shifted value's low bits: (k + 1023) << 52 (k is in [-1022, 0]).
    let scale = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    p * scale
}

/// ln(1 + e) for 0 <= e <= 1, as 2 atanh(s) with s = e / (2 + e) <= 1/3.
pub fn log1p_unit(e: f64) -> f64 {
    log1p_with::<false>(e)
}

#[inline(always)]
fn log1p_with<const FMA: bool>(e: f64) -> f64 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    // 2 (s + s^3/3 + ... + s^37/37): the next term is below 1e-19.
    let mut p = 1.0 / 37.0;
    for c in ATANH_SERIES {
        p = mul_add::<FMA>(p, s2, c);
    }
    2.0 * s * p
}

/// Per row of a block: the NLL softplus(eta) - y eta is summed into the return value,
/// dNLL/deta = sigmoid(eta) - y goes to `slope` and sigmoid (1 - sigmoid) to `curvature`.
/// AVX2 with fused multiply-adds where the processor has them (checked at run time).
pub fn bernoulli_block(eta: &[f64], y: &[f64], slope: &mut [f64], curvature: &mut [f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: the processor has the features the function is compiled for.
        return unsafe { bernoulli_block_avx512(eta, y, slope, curvature) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has the features the function is compiled for.
        return unsafe { bernoulli_block_avx2(eta, y, slope, curvature) };
    }
    bernoulli_block_with::<false>(eta, y, slope, curvature)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn bernoulli_block_avx2(eta: &[f64], y: &[f64], slope: &mut [f64], curvature: &mut [f64]) -> f64 {
    bernoulli_block_with::<true>(eta, y, slope, curvature)
}

/// The AVX2 build's arithmetic (fused multiply-adds, the same four lanes of the NLL), eight
/// rows to a vector: the same bits. Written in intrinsics: the compiler vectorised the
/// straight-line build two rows at a time, which made the head a quarter of a Newton pass.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn bernoulli_block_avx512(eta: &[f64], y: &[f64], slope: &mut [f64], curvature: &mut [f64]) -> f64 {
    use std::arch::x86_64::*;
    let n = eta.len();
    assert!(y.len() >= n && slope.len() >= n && curvature.len() >= n);
    let splat = _mm512_set1_pd;
    // The NLL's four lanes: rows 4m + k go to lane k, in order, as in the other builds (each
    // vector of eight rows is two such chunks, its low half first).
    let mut lanes = _mm256_setzero_pd();
    for start in (0..n).step_by(8) {
        let mask: __mmask8 = (0xffu32 >> (8 - (n - start).min(8))) as u8;
        // SAFETY: the masked loads and stores touch rows start.. of the slices asserted above.
        let (z, t) = unsafe {
            (
                _mm512_maskz_loadu_pd(mask, eta.as_ptr().add(start)),
                _mm512_maskz_loadu_pd(mask, y.as_ptr().add(start)),
            )
        };
        // e = exp(-|z|), as exp_with: range reduction, Taylor series, the scale from the bits.
        const SHIFTER: f64 = 6_755_399_441_055_744.0;
        const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
        const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
        let minus_abs = _mm512_castsi512_pd(_mm512_or_si512(
            _mm512_castpd_si512(z),
            _mm512_set1_epi64(i64::MIN),
        ));
        // Rust's max gives the number where one side is NaN; max_pd gives its second operand.
        let t_clamped = _mm512_max_pd(minus_abs, splat(-708.0));
        let shifted = _mm512_add_pd(
            _mm512_mul_pd(t_clamped, splat(std::f64::consts::LOG2_E)),
            splat(SHIFTER),
        );
        let k = _mm512_sub_pd(shifted, splat(SHIFTER));
        let r = _mm512_sub_pd(
            _mm512_sub_pd(t_clamped, _mm512_mul_pd(k, splat(LN2_HI))),
            _mm512_mul_pd(k, splat(LN2_LO)),
        );
        let mut p = splat(1.0 / 6_227_020_800.0);
        for c in EXP_TAYLOR {
            p = _mm512_fmadd_pd(p, r, splat(c));
        }
        let scale = _mm512_castsi512_pd(_mm512_slli_epi64::<52>(_mm512_add_epi64(
            _mm512_castpd_si512(shifted),
            _mm512_set1_epi64(1023),
        )));
        let e = _mm512_mul_pd(p, scale);
        let one = splat(1.0);
        let nonnegative = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(z, splat(0.0));
        let q = _mm512_div_pd(
            _mm512_mask_blend_pd(nonnegative, e, one),
            _mm512_add_pd(one, e),
        );
        // ln(1 + e) as log1p_with: 2 atanh(e / (2 + e)).
        let s = _mm512_div_pd(e, _mm512_add_pd(splat(2.0), e));
        let s2 = _mm512_mul_pd(s, s);
        let mut a = splat(1.0 / 37.0);
        for c in ATANH_SERIES {
            a = _mm512_fmadd_pd(a, s2, splat(c));
        }
        let log1p = _mm512_mul_pd(_mm512_mul_pd(splat(2.0), s), a);
        let nll = _mm512_sub_pd(
            _mm512_add_pd(_mm512_max_pd(z, splat(0.0)), log1p),
            _mm512_mul_pd(t, z),
        );
        let nll = _mm512_maskz_mov_pd(mask, nll);
        // SAFETY: as for the loads.
        unsafe {
            _mm512_mask_storeu_pd(slope.as_mut_ptr().add(start), mask, _mm512_sub_pd(q, t));
            _mm512_mask_storeu_pd(
                curvature.as_mut_ptr().add(start),
                mask,
                _mm512_mul_pd(q, _mm512_sub_pd(one, q)),
            );
        }
        // Adding +0.0 for the rows beyond n leaves a lane's sum as it is.
        lanes = _mm256_add_pd(lanes, _mm512_castpd512_pd256(nll));
        lanes = _mm256_add_pd(lanes, _mm512_extractf64x4_pd::<1>(nll));
    }
    let mut l = [0.0; 4];
    // SAFETY: `l` holds four values.
    unsafe { _mm256_storeu_pd(l.as_mut_ptr(), lanes) };
    (l[0] + l[2]) + (l[1] + l[3])
}

/// 1 / (2k + 1) for k = 17 down to 0: the coefficients of atanh(s) / s in s^2 after the
/// leading 1/37, in Horner's order.
const ATANH_SERIES: [f64; 18] = {
    let mut c = [0.0; 18];
    let mut i = 0;
    while i < 18 {
        c[i] = 1.0 / (2 * (17 - i) + 1) as f64;
        i += 1;
    }
    c
};

/// The Taylor coefficients of e^r after the leading 1/13!, in Horner's order.
const EXP_TAYLOR: [f64; 13] = [
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

#[inline(always)]
fn bernoulli_block_with<const FMA: bool>(
    eta: &[f64],
    y: &[f64],
    slope: &mut [f64],
    curvature: &mut [f64],
) -> f64 {
    // One row: its NLL; its slope and curvature written.
    #[inline(always)]
    fn row<const FMA: bool>(z: f64, y: f64, slope: &mut f64, curvature: &mut f64) -> f64 {
        let e = exp_with::<FMA>(-z.abs());
        let q = if z >= 0.0 { 1.0 } else { e } / (1.0 + e);
        *slope = q - y;
        *curvature = q * (1.0 - q);
        z.max(0.0) + log1p_with::<FMA>(e) - y * z
    }
    // The NLL in LANES sums, each adding every LANES-th row in order (then added pairwise),
    // so that the rows are evaluated side by side in vector registers: one running sum would
    // make the compiler evaluate them one at a time.
    const LANES: usize = 4;
    let n = eta.len();
    let mut lanes = [0.0; LANES];
    let (eta_whole, eta_rest) = eta.as_chunks::<LANES>();
    let (y_whole, y_rest) = y[..n].as_chunks::<LANES>();
    let (slope_whole, slope_rest) = slope[..n].as_chunks_mut::<LANES>();
    let (curvature_whole, curvature_rest) = curvature[..n].as_chunks_mut::<LANES>();
    for (((z, t), s), c) in eta_whole
        .iter()
        .zip(y_whole)
        .zip(slope_whole)
        .zip(curvature_whole)
    {
        for k in 0..LANES {
            lanes[k] += row::<FMA>(z[k], t[k], &mut s[k], &mut c[k]);
        }
    }
    for (k, (((z, t), s), c)) in eta_rest
        .iter()
        .zip(y_rest)
        .zip(slope_rest)
        .zip(curvature_rest)
        .enumerate()
    {
        lanes[k] += row::<FMA>(*z, *t, s, c);
    }
    (lanes[0] + lanes[2]) + (lanes[1] + lanes[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn ulps(a: f64, b: f64) -> f64 {
        (a - b).abs() / (b.abs() * f64::EPSILON).max(f64::MIN_POSITIVE)
    }

    #[test]
    fn exp_and_log1p_agree_with_the_standard_library() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..200_000 {
            // Every scale of the argument, down to the clamp.
            let t = -(rng.random::<f64>() * 10f64.powi(i % 4 - 1)).min(700.0);
            worst.0 = worst.0.max(ulps(exp_nonpositive(t), t.exp()));
            let e = rng.random::<f64>().powi(i % 5 + 1);
            worst.1 = worst.1.max(ulps(log1p_unit(e), e.ln_1p()));
        }
        assert!(worst.0 <= 4.0, "exp: {} ulp", worst.0);
        assert!(worst.1 <= 4.0, "log1p: {} ulp", worst.1);
        for (t, want) in [
            (0.0, 1.0),
            (-1.0, (-1.0f64).exp()),
            (-708.0, (-708.0f64).exp()),
        ] {
            assert!(ulps(exp_nonpositive(t), want) <= 2.0, "exp({t})");
        }
        assert_eq!(log1p_unit(0.0), 0.0);
        assert!(ulps(log1p_unit(1.0), std::f64::consts::LN_2) <= 2.0);
        assert!(exp_nonpositive(-1e6) > 0.0 && exp_nonpositive(-1e6) < 1e-300);
    }

    /// The AVX-512 build gives the AVX2 build's bits (each row's arithmetic is the same, and
    /// the NLL's four lanes), at lengths that end anywhere in a vector.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_build_gives_the_avx2_bits() {
        if !(std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            eprintln!("SKIPPED: no AVX-512 and AVX2 with FMA here to compare");
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        for n in (0..40).chain([1000]) {
            // Every scale, out to where exp(-|eta|) is clamped, and both signs of zero.
            let eta: Vec<f64> = (0..n)
                .map(|i| match i % 11 {
                    9 => [0.0, -0.0, 750.0, -750.0][i % 4],
                    _ => rng.random_range(-1.0..1.0) * 10f64.powi(i as i32 % 5 - 1),
                })
                .collect();
            let y: Vec<f64> = (0..n).map(|_| rng.random_range(0..2) as f64).collect();
            let (mut s1, mut c1, mut s2, mut c2) =
                (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            // SAFETY: both feature sets checked above.
            let (f1, f2) = unsafe {
                (
                    bernoulli_block_avx512(&eta, &y, &mut s1, &mut c1),
                    bernoulli_block_avx2(&eta, &y, &mut s2, &mut c2),
                )
            };
            assert_eq!(f1.to_bits(), f2.to_bits(), "n {n}");
            assert_eq!(s1, s2, "n {n}");
            assert_eq!(c1, c2, "n {n}");
        }
    }
}
