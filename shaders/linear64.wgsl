// f64 sums of a linear model's NLL, gradient and Hessian (the f64 finish of a GPU fit).
// The generated header defines D (features), M (outputs), STRIDE (per-row words: the NLL,
// M slopes, the M (M + 1) / 2 head curvatures), REFERENCE, WORKGROUP_SIZE and GROUPS
// (workgroups of the moments pass); the family's head_row (`Conditional::head64_wgsl`,
// shaders/family/head64/) is appended to this text.
//
// exp64, log64 and log1p64 are shaders/math64.wgsl's, prepended to this text.

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
