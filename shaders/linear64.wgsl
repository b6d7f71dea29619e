// f64 sums of a linear model's NLL, gradient and Hessian (the f64 finish of a GPU fit).
// The generated header defines D (features), M (outputs), STRIDE (per-row words: the NLL,
// M slopes, the M (M + 1) / 2 head curvatures), REFERENCE, WORKGROUP_SIZE and GROUPS
// (workgroups of the moments pass); the family's head_row (`Conditional::head64_wgsl`,
// shaders/family/head64/) is appended to this text.
//
// naga has no f64 exp or log (SPIR-V's GLSL.std.450 Exp and Log are 16/32-bit), so both are
// written here from what f64 does have (floor, ldexp, frexp, fma): range reduction and
// polynomials good to about 1 ulp, the CPU engine's own accuracy.

struct Shape {
    rows: u32,
    // How many entries of the moments the pass sums: 1 + P (the NLL and the gradient) or all.
    entries: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f64>;
@group(0) @binding(1) var<storage, read> y: array<f64>;
@group(0) @binding(2) var<storage, read> constants: array<f64>;
@group(0) @binding(3) var<storage, read> params: array<f64>;
@group(0) @binding(4) var<storage, read_write> per_row: array<f64>;
@group(0) @binding(5) var<storage, read_write> partials: array<f64>;
@group(0) @binding(6) var<storage, read> pairs: array<u32>;
@group(0) @binding(7) var<uniform> shape: Shape;

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

// ln(v) for v in f32's normal range (the kernels take it of sums of probabilities, in
// [1, classes], and of 1 + e, e in [0, 1]): v = m 2^e with m in [sqrt(1/2), sqrt(2)),
// ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^25. (naga's f64
// frexp needs 64-bit integers; the exponent is found from f32's log2 and corrected.)
fn log64(v: f64) -> f64 {
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
    let ef = f64(e);
    let s = (m - 1.0lf) / (m + 1.0lf);
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
    let ln_m = 2.0lf * s * fma(q, s2, 1.0lf);
    return ef * LN2_HI + (ln_m + ef * LN2_LO);
}

// ln(1 + e) for e >= 0, accurate where e is tiny: ln(u) e / (u - 1) with u = 1 + e.
fn log1p64(e: f64) -> f64 {
    let u = 1.0lf + e;
    if (u == 1.0lf) {
        return e;
    }
    return log64(u) * (e / (u - 1.0lf));
}

// The per-row pass: eta = b + x W, then the head's NLL, slopes dNLL/deta and curvatures
// d2NLL/deta2 (the upper triangle, row-major), into per_row.
@compute @workgroup_size(WORKGROUP_SIZE)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = gid.x; i < shape.rows; i = i + stride) {
        var eta: array<f64, M>;
        for (var o = 0u; o < M; o = o + 1u) {
            var acc = params[D * M + o];
            for (var j = 0u; j < D; j = j + 1u) {
                acc = fma(x[i * D + j], params[j * M + o], acc);
            }
            eta[o] = acc;
        }
        let observed = y[i];
        let at = i * STRIDE;
        head_row(eta, observed, constants[i], at);
    }
}

// Input j of a row (j = D: the intercept's 1).
fn input(i: u32, j: u32) -> f64 {
    if (j == D) {
        return 1.0lf;
    }
    return x[i * D + j];
}

// Entry e of the moments for row i: 0 the NLL; 1..=P the gradient of parameter e - 1 (input
// j, output o at index j M + o); then the upper triangle of the Hessian, pairs[e] packing
// its two parameters' indices (a in the low 16 bits, b in the high).
fn moment(e: u32, i: u32) -> f64 {
    let at = i * STRIDE;
    if (e == 0u) {
        return per_row[at];
    }
    let p = (D + 1u) * M;
    if (e <= p) {
        let q = e - 1u;
        return input(i, q / M) * per_row[at + 1u + q % M];
    }
    let pair = pairs[e];
    let a = pair & 0xffffu;
    let b = pair >> 16u;
    let lo = min(a % M, b % M);
    let hi = max(a % M, b % M);
    // Packed upper triangle: row lo starts at lo M - lo (lo - 1) / 2.
    let w = at + 1u + M + lo * M - lo * (lo + 1u) / 2u + hi;
    return input(i, a / M) * input(i, b / M) * per_row[w];
}

var<workgroup> lanes: array<f64, WORKGROUP_SIZE>;

// Workgroup g sums its share of the rows for each entry: entries take `tpe` lanes each
// (a power of two, so that few entries still use much of the workgroup), each lane a strided
// share of the rows, summed in order; the lanes' sums are then added in order and added to
// partials[g * ENTRIES + e], which accumulates over the chunks of the table.
@compute @workgroup_size(WORKGROUP_SIZE)
fn moments(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let entries = shape.entries;
    // Lanes per entry from all the entries, so that a pass of the NLL and gradient alone
    // sums them in the same order as a full one.
    var tpe = 1u;
    while (tpe * 2u * ENTRIES <= WORKGROUP_SIZE) {
        tpe = tpe * 2u;
    }
    let per_pass = WORKGROUP_SIZE / tpe;
    let lane = t % tpe;
    let slot = t / tpe;
    let share = (shape.rows + GROUPS - 1u) / GROUPS;
    let first = wid.x * share;
    let last = min(first + share, shape.rows);
    for (var base = 0u; base < entries; base = base + per_pass) {
        let e = base + slot;
        var acc = 0.0lf;
        if (e < entries) {
            for (var i = first + lane; i < last; i = i + tpe) {
                acc = acc + moment(e, i);
            }
        }
        lanes[t] = acc;
        workgroupBarrier();
        if (lane == 0u && e < entries) {
            var sum = 0.0lf;
            for (var l = 0u; l < tpe; l = l + 1u) {
                sum = sum + lanes[t + l];
            }
            partials[wid.x * ENTRIES + e] = partials[wid.x * ENTRIES + e] + sum;
        }
        workgroupBarrier();
    }
}

// totals[e] = the workgroups' partial sums of entry e, added in order (written to the end
// of partials, after the GROUPS x ENTRIES partial sums).
@compute @workgroup_size(WORKGROUP_SIZE)
fn totals(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if (e >= shape.entries) {
        return;
    }
    var sum = 0.0lf;
    for (var g = 0u; g < GROUPS; g = g + 1u) {
        sum = sum + partials[g * ENTRIES + e];
    }
    partials[GROUPS * ENTRIES + e] = sum;
}
