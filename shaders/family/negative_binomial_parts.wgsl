// The negative binomial's count-dispersion parts, the twin of src/special.rs's
// rising_log_terms (its comments derive them): for a count y and dispersion alpha, r = 1/alpha,
// L = ln Gamma(y + r) - ln Gamma(r) - y ln r and its first two derivatives in ln alpha, by
// their sums up to y = 64 and Stirling's series above. Its loops run at most 64 iterations a
// sample (the direct sums 63; above, the recurrence 10, ln(1 + u) - u's series 29 and
// Stirling's 10): Family::kernel_loop_iterations, which a software adapter's kernels need. Written in f32; the f64 kernel reads it
// with f64 for f32, where log_sample and exp_term are math64.wgsl's log and exp. (Every
// variable is typed: an untyped `var` of a literal would stay f32 in the f64 text.)

struct RisingParts {
    l: f32,
    d1: f32,
    d2: f32,
}

// ln(1 + v) for v > -1: u = 1 + v rounds, and v / (u - 1) corrects ln u for it.
fn nb_log1p(v: f32) -> f32 {
    let u: f32 = 1.0 + v;
    if (u == 1.0) {
        return v;
    }
    return log_sample(u) * (v / (u - 1.0));
}

// ln(1 + u) - u for u >= 0: below 2 the series in s = u / (2 + u), -u s + 2 sum s^(2k+1)/(2k+1)
// from k = 1 (|s| <= 1/2), which keeps its digits as u goes to 0 (~ -u^2/2).
fn nb_log1pmx(u: f32, log1p_u: f32) -> f32 {
    if (u > 2.0) {
        return log1p_u - u;
    }
    let s: f32 = u / (2.0 + u);
    let s2: f32 = s * s;
    var power: f32 = s * s2;
    var series: f32 = 0.0;
    for (var k: f32 = 1.0; k < 30.0; k = k + 1.0) {
        let term: f32 = power / (2.0 * k + 1.0);
        series = series + term;
        if (term <= 1e-17 * series) {
            break;
        }
        power = power * s2;
    }
    return -u * s + 2.0 * series;
}

// 1 - e^(-x) for x >= 0 without cancellation and without a loop (see above): with
// u = e^(-x) rounded, (1 - u) x / -ln(u) is exact to a few roundings however small x (Kahan's
// expm1: the rounding of u cancels between 1 - u and ln u).
fn nb_fall(x: f32) -> f32 {
    let u: f32 = exp_term(-x);
    if (u == 1.0) {
        return x;
    }
    if (x >= 0.5) {
        return 1.0 - u;
    }
    return (1.0 - u) * (x / -log_sample(u));
}

// For b >= 10 and t = ln(1 + y/b): omega(b) - omega(b + y) (Stirling's correction), and the
// differences dl(b + y) - dl(b) of digamma - ln and tr(b) - tr(b + y) of trigamma - 1/x, term
// by term as c b^-p (1 - (1 + y/b)^-p).
struct AsymptoticDifferences {
    omega: f32,
    dl: f32,
    tr: f32,
}

fn nb_asymptotic(b: f32, t: f32) -> AsymptoticDifferences {
    var stirling = array<f32, 10>(
        1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0, 1.0 / 1188.0,
        -691.0 / 360360.0, 1.0 / 156.0, -3617.0 / 122400.0, 43867.0 / 244188.0,
        -174611.0 / 125400.0);
    var digamma = array<f32, 10>(
        1.0 / 12.0, -1.0 / 120.0, 1.0 / 252.0, -1.0 / 240.0, 1.0 / 132.0,
        -691.0 / 32760.0, 1.0 / 12.0, -3617.0 / 8160.0, 43867.0 / 14364.0,
        -174611.0 / 6600.0);
    var trigamma = array<f32, 10>(
        1.0 / 6.0, -1.0 / 30.0, 1.0 / 42.0, -1.0 / 30.0, 5.0 / 66.0,
        -691.0 / 2730.0, 7.0 / 6.0, -3617.0 / 510.0, 43867.0 / 798.0,
        -174611.0 / 330.0);
    let inv: f32 = 1.0 / b;
    let z: f32 = inv * inv;
    var out: AsymptoticDifferences;
    out.omega = 0.0;
    out.dl = 0.5 * inv * nb_fall(t);
    out.tr = 0.5 * z * nb_fall(2.0 * t);
    var odd: f32 = inv;
    var even: f32 = z;
    for (var i = 0u; i < 10u; i = i + 1u) {
        let p: f32 = f32(2u * i + 1u);
        out.omega = out.omega + stirling[i] * odd * nb_fall(p * t);
        out.dl = out.dl + digamma[i] * even * nb_fall((p + 1.0) * t);
        out.tr = out.tr + trigamma[i] * even * inv * nb_fall((p + 2.0) * t);
        odd = odd * z;
        even = even * z;
    }
    return out;
}

// ln(1 + a / b) for a >= 0, b > 0, also where a / b overflows.
fn nb_log1p_ratio(a: f32, b: f32) -> f32 {
    let v: f32 = a / b;
    if (v < 1e30) {
        return nb_log1p(v);
    }
    return log_sample(a) - log_sample(b);
}

fn rising_parts(y: f32, alpha: f32) -> RisingParts {
    var out: RisingParts;
    out.l = 0.0;
    out.d1 = 0.0;
    out.d2 = 0.0;
    if (y <= 64.0) {
        for (var j: f32 = 1.0; j < y; j = j + 1.0) {
            let v: f32 = j * alpha;
            let w: f32 = v / (1.0 + v);
            out.l = out.l + nb_log1p(v);
            out.d1 = out.d1 + w;
            out.d2 = out.d2 + w / (1.0 + v);
        }
        return out;
    }
    let r: f32 = 1.0 / alpha;
    var b: f32 = r;
    var l: f32 = 0.0;
    var digammas: f32 = 0.0;
    var trigammas: f32 = 0.0;
    var leading: f32 = 0.0;
    for (var i = 0u; i < 10u && b < 10.0; i = i + 1u) {
        l = l + y * nb_log1p_ratio(1.0, b) - nb_log1p_ratio(y, b);
        let c: f32 = 1.0 / (b + y);
        if (i == 0u) {
            leading = 1.0;
            digammas = digammas - c;
            trigammas = trigammas - c * c;
        } else {
            digammas = digammas + 1.0 / b - c;
            trigammas = trigammas + 1.0 / (b * b) - c * c;
        }
        b = b + 1.0;
    }
    let t: f32 = nb_log1p_ratio(y, b);
    let u: f32 = y / b;
    let excess: f32 = nb_log1pmx(u, t);
    let series = nb_asymptotic(b, t);
    out.l = l + b * excess + (y - 0.5) * t - series.omega;
    if (leading == 0.0) {
        var curvature: f32 = t - u / (1.0 + u);
        if (u < 1.0) {
            curvature = excess + u * u / (1.0 + u);
        }
        out.d1 = -r * excess - r * series.dl;
        out.d2 = r * curvature + r * series.dl - r * r * series.tr;
        return out;
    }
    digammas = digammas + t + series.dl;
    trigammas = trigammas + y / (b * (b + y)) + series.tr;
    out.d1 = y - leading - r * digammas;
    out.d2 = r * digammas - r * r * trigammas;
    return out;
}
