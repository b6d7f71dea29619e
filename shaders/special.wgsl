// f32 special functions for the family kernels and the network kernels' heads (the f64
// twins are src/special.rs's). The gamma-function ones shift their argument up to z >= 10 by
// recurrence and then sum the asymptotic series, whose truncation there is below f32's
// resolution.

const LN_SQRT_2PI: f32 = 0.9189385;

// ln x for x > 0, accurate to a few ulp of the result also near x = 1, where WGSL's `log` is
// only held to an absolute 2^-21 (a gamma's sum of ln x would lose its digits there):
// x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1)
// (m - 1 is exact), |s| < 0.172, by its series to s^11 (the next term is below 2^-28 of it).
fn log_sample(x: f32) -> f32 {
    let parts = frexp(x);
    var m = parts.fract;
    var e = f32(parts.exp);
    if (m < 0.70710678) {
        m = m * 2.0;
        e = e - 1.0;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    var q = 1.0 / 11.0;
    q = fma(q, s2, 1.0 / 9.0);
    q = fma(q, s2, 1.0 / 7.0);
    q = fma(q, s2, 1.0 / 5.0);
    q = fma(q, s2, 1.0 / 3.0);
    let ln_m = 2.0 * s + 2.0 * s * s2 * q;
    // ln 2 in two parts: e ln2_hi is exact for |e| < 2^8.
    return e * 0.693145751953125 + (ln_m + e * 1.4286068e-6);
}

// ln(1 + a) for a >= 0, accurate where a is tiny: ln(u) a / (u - 1) with u = 1 + a (the
// rounding of u cancels in the ratio).
fn log1p_sample(a: f32) -> f32 {
    let u = 1.0 + a;
    if (u == 1.0) {
        return a;
    }
    return log_sample(u) * (a / (u - 1.0));
}

// ln Gamma(k) - k ln k + k for k > 0 (special::gamma_normaliser): from 10 on
// ln(2 pi)/2 - ln(k)/2 + omega(k), so that the terms of size k ln k cancel algebraically.
fn gamma_normaliser(k: f32) -> f32 {
    var z = k;
    var product = 1.0;
    for (var i = 0; i < 10 && z < 10.0; i = i + 1) {
        product = product * z;
        z = z + 1.0;
    }
    let w = 1.0 / (z * z);
    let omega = (1.0 / 12.0 - w * (1.0 / 360.0 - w / 1260.0)) / z;
    if (z == k) {
        return LN_SQRT_2PI - 0.5 * log(k) + omega;
    }
    // ln Gamma(k) = ln Gamma(z) - ln(k (k + 1) ... (z - 1)).
    let ln_gamma = (z - 0.5) * log(z) - z + LN_SQRT_2PI + omega - log(product);
    return ln_gamma - k * log(k) + k;
}

// digamma(k) - ln k for k > 0 (special::digamma_minus_ln), ~ -1/(2k) at large k.
fn digamma_minus_log(k: f32) -> f32 {
    var z = k;
    var shift = 0.0;
    for (var i = 0; i < 10 && z < 10.0; i = i + 1) {
        shift = shift + 1.0 / z;
        z = z + 1.0;
    }
    let w = 1.0 / (z * z);
    let tail = -0.5 / z - w * (1.0 / 12.0 - w * (1.0 / 120.0 - w / 252.0));
    if (z == k) {
        return tail;
    }
    return tail + log(z) - log(k) - shift;
}

// trigamma(k) for k > 0.
fn trigamma(k: f32) -> f32 {
    var z = k;
    var shift = 0.0;
    for (var i = 0; i < 10 && z < 10.0; i = i + 1) {
        shift = shift + 1.0 / (z * z);
        z = z + 1.0;
    }
    // 1/z + 1/(2 z^2) + 1/(6 z^3) - 1/(30 z^5) + 1/(42 z^7).
    let w = 1.0 / (z * z);
    return (1.0 + 0.5 / z + w * (1.0 / 6.0 - w * (1.0 / 30.0 - w / 42.0))) / z + shift;
}

// e^t - 1 - t without cancellation at small t (its Taylor series below |t| = 0.3).
fn expm1_minus(t: f32) -> f32 {
    if (abs(t) >= 0.3) {
        return exp(t) - 1.0 - t;
    }
    var p = 1.0 / 40320.0;
    p = fma(p, t, 1.0 / 5040.0);
    p = fma(p, t, 1.0 / 720.0);
    p = fma(p, t, 1.0 / 120.0);
    p = fma(p, t, 1.0 / 24.0);
    p = fma(p, t, 1.0 / 6.0);
    p = fma(p, t, 0.5);
    return p * t * t;
}

// e^t of a term (math64.wgsl's exp64 in the f64 kernel).
fn exp_term(t: f32) -> f32 {
    return exp(t);
}
