// f64 exp and log for the f64 kernels (shaders/linear64.wgsl, shaders/family64.wgsl).
// naga has no f64 exp or log (SPIR-V's GLSL.std.450 Exp and Log are 16/32-bit), so both are
// written here from what f64 does have (floor, ldexp, fma): range reduction and polynomials
// good to about 1 ulp, the CPU engine's own accuracy.

const LN2_HI: f64 = 6.93147180369123816490e-01lf;
const LN2_LO: f64 = 1.90821492927058770002e-10lf;
const INV_LN2: f64 = 1.44269504088896338700e+00lf;

// exp(t) = 2^k exp(r), t = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, so r is
// exact); exp(r) by its Taylor series to r^14 / 14! (below 2^-60 there). Below -745 the
// result is 0; above 709.78 it is clamped to the largest power that does not overflow.
fn exp64(t: f64) -> f64 {
    if (t < -745.0lf) {
        return 0.0lf;
    }
    let u = min(t, 709.78lf);
    let k = floor(u * INV_LN2 + 0.5lf);
    let r = (u - k * LN2_HI) - k * LN2_LO;
    var p = 1.0lf / 87178291200.0lf;
    p = fma(p, r, 1.0lf / 6227020800.0lf);
    p = fma(p, r, 1.0lf / 479001600.0lf);
    p = fma(p, r, 1.0lf / 39916800.0lf);
    p = fma(p, r, 1.0lf / 3628800.0lf);
    p = fma(p, r, 1.0lf / 362880.0lf);
    p = fma(p, r, 1.0lf / 40320.0lf);
    p = fma(p, r, 1.0lf / 5040.0lf);
    p = fma(p, r, 1.0lf / 720.0lf);
    p = fma(p, r, 1.0lf / 120.0lf);
    p = fma(p, r, 1.0lf / 24.0lf);
    p = fma(p, r, 1.0lf / 6.0lf);
    p = fma(p, r, 0.5lf);
    p = fma(p, r, 1.0lf);
    p = fma(p, r, 1.0lf);
    // 2^k in two factors, so that k down to -1074 reaches the subnormals without ldexp's
    // exponent leaving its range.
    let ki = i32(k);
    let half = ki / 2;
    return ldexp(ldexp(p, half), ki - half);
}

// ln(v) for every positive double (the samples of a family fit; sums of probabilities, in
// [1, classes], and 1 + e, e in [0, 1], in the linear models' heads): v = m 2^e with m in
// [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^25. (naga's f64
// frexp needs 64-bit integers; the exponent is found from f32's log2 and corrected.)
fn log64(v_in: f64) -> f64 {
    // Outside f32's normal range, f32(v) would be 0 or inf: scale by powers 2^+-100 first,
    // in one direction only, until v lies in [1e-30, 1e30] (from below 1e-30 a step lands
    // under 2^100 1e-30 = 1.27; eleven steps reach the smallest subnormal, ten the largest
    // double). Steps of 2^240, undone when they overshot 1e30, left values between 6e-43
    // and 1.2e-38 as f32 subnormals, flushed to 0 on the device: ln(1e-41) came out 1.3 off.
    var v = v_in;
    var bias = 0.0;
    if (v < 1e-30lf) {
        for (var i = 0; i < 11 && v < 1e-30lf; i = i + 1) {
            v = ldexp(v, 100);
            bias = bias - 100.0;
        }
    } else {
        for (var i = 0; i < 10 && v > 1e30lf; i = i + 1) {
            v = ldexp(v, -100);
            bias = bias + 100.0;
        }
    }
    var e = floor(log2(f32(v)) + 0.5);
    var m = ldexp(v, -i32(e));
    if (m < 0.70710678118654752lf) {
        m = m * 2.0lf;
        e = e - 1.0;
    }
    if (m >= 1.41421356237309505lf) {
        m = m * 0.5lf;
        e = e + 1.0;
    }
    let ef = f64(e + bias);
    let ln_m = two_atanh((m - 1.0lf) / (m + 1.0lf));
    return ef * LN2_HI + (ln_m + ef * LN2_LO);
}

// 2 atanh(s) = ln((1 + s) / (1 - s)) for |s| < 0.172, by its series to s^25 (the next term
// is below 2^-60 of it).
fn two_atanh(s: f64) -> f64 {
    let s2 = s * s;
    var q = 1.0lf / 25.0lf;
    q = fma(q, s2, 1.0lf / 23.0lf);
    q = fma(q, s2, 1.0lf / 21.0lf);
    q = fma(q, s2, 1.0lf / 19.0lf);
    q = fma(q, s2, 1.0lf / 17.0lf);
    q = fma(q, s2, 1.0lf / 15.0lf);
    q = fma(q, s2, 1.0lf / 13.0lf);
    q = fma(q, s2, 1.0lf / 11.0lf);
    q = fma(q, s2, 1.0lf / 9.0lf);
    q = fma(q, s2, 1.0lf / 7.0lf);
    q = fma(q, s2, 1.0lf / 5.0lf);
    q = fma(q, s2, 1.0lf / 3.0lf);
    return 2.0lf * s * fma(q, s2, 1.0lf);
}

// ln(1 + e) for e >= 0, accurate where e is tiny: below sqrt 2 - 1 as 2 atanh(e / (2 + e)),
// which never forms 1 + e. (The textbook ln(u) e / (u - 1), u = 1 + e, relies on u - 1 being
// computed as written; on lavapipe it was not, and ln(1 + 1e-9) came out 1e-7 off.)
fn log1p64(e: f64) -> f64 {
    if (e < 0.41421356237309505lf) {
        return two_atanh(e / (2.0lf + e));
    }
    return log64(1.0lf + e);
}

