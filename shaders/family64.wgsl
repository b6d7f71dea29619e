// f64 sums of a family's per-sample terms (the f64 finish of a GPU family fit), over the
// samples as the engine re-expressed them (see SampleMap). The generated header defines
// N_TERMS, WORKGROUP_SIZE, GROUPS, BLOCKED and the samples' binding x (vec4s of f64, or of
// the f32 data of the reduction kernel where those are the samples exactly; zeros pad a
// chunk to a whole vec4); the family's own snippet (shaders/family/), with f64 for f32,
// defines accumulate(x, acc), so the terms have one definition for both kernels.

struct Shape {
    rows: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(1) var<storage, read> kernel: array<f64>;
@group(0) @binding(2) var<storage, read_write> partials: array<f64>;
@group(0) @binding(3) var<uniform> shape: Shape;

var<workgroup> lanes: array<f64, WORKGROUP_SIZE>;

// The snippets' helpers in f64: kernel parameters are f64 here, no (hi, lo) pairs.
fn kernel_param(i: u32) -> f64 {
    return kernel[i];
}

fn centred(v: f64, p: f64) -> f64 {
    return v - p;
}

fn kernel_value(i: u32) -> f64 {
    return kernel[i];
}

fn exp_term(t: f64) -> f64 {
    return exp64(t);
}

// ln of a sample (exp64 and log64 are shaders/math64.wgsl's, appended to this text).
fn log_sample(v: f64) -> f64 {
    return log64(v);
}

// ln(1 + a) for a >= 0.
fn log1p_sample(a: f64) -> f64 {
    return log1p64(a);
}

fn accumulate4(v: vec4<f64>, acc: ptr<function, array<f64, N_TERMS>>) {
    accumulate(v.x, acc);
    accumulate(v.y, acc);
    accumulate(v.z, acc);
    accumulate(v.w, acc);
}

// The samples of vec4 `i`, the chunk's last, that lie before `len`.
fn accumulate_tail(i: u32, len: u32, acc: ptr<function, array<f64, N_TERMS>>) {
    let v = vec4<f64>(x[i]);
    accumulate(v.x, acc);
    if (4u * i + 1u < len) {
        accumulate(v.y, acc);
    }
    if (4u * i + 2u < len) {
        accumulate(v.z, acc);
    }
    if (4u * i + 3u < len) {
        accumulate(v.w, acc);
    }
}

// Workgroup g sums a contiguous share of the chunk's vec4s; its invocations' sums are added
// in order per term and accumulate, over the chunks, in partials[g * N_TERMS + t]. Each
// invocation sums its own contiguous block of the share where BLOCKED (a CPU adapter streams
// a few long runs per SIMD group best), or every WORKGROUP_SIZE-th vec4 of it (adjacent
// invocations read adjacent memory on a GPU). Only the chunk's last vec4 may be partly
// padding: its samples are checked one by one, by the invocation whose walk holds it.
@compute @workgroup_size(WORKGROUP_SIZE)
fn terms(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    var acc: array<f64, N_TERMS>;
    for (var k = 0u; k < N_TERMS; k = k + 1u) {
        acc[k] = 0.0lf;
    }
    let len = shape.rows;
    let quads = (len + 3u) / 4u;
    // The vec4s every sample of which lies in the chunk.
    let whole = len / 4u;
    let share = (quads + GROUPS - 1u) / GROUPS;
    let first = min(wid.x * share, quads);
    let last = min(first + share, quads);
    var begin = first + t;
    var end = last;
    var step = WORKGROUP_SIZE;
    if (BLOCKED) {
        let per = (share + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
        begin = min(first + t * per, last);
        end = min(begin + per, last);
        step = 1u;
    }
    var i = begin;
    for (; i < min(end, whole); i = i + step) {
        accumulate4(vec4<f64>(x[i]), &acc);
    }
    if (i < end && i == whole) {
        accumulate_tail(i, len, &acc);
    }
    for (var k = 0u; k < N_TERMS; k = k + 1u) {
        lanes[t] = acc[k];
        workgroupBarrier();
        if (t == 0u) {
            var sum = 0.0lf;
            for (var l = 0u; l < WORKGROUP_SIZE; l = l + 1u) {
                sum = sum + lanes[l];
            }
            partials[wid.x * N_TERMS + k] = partials[wid.x * N_TERMS + k] + sum;
        }
        workgroupBarrier();
    }
}

// totals[t] = the workgroups' partial sums of term t in order, after the partial sums.
@compute @workgroup_size(WORKGROUP_SIZE)
fn totals(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.x;
    if (k >= N_TERMS) {
        return;
    }
    var sum = 0.0lf;
    for (var g = 0u; g < GROUPS; g = g + 1u) {
        sum = sum + partials[g * N_TERMS + k];
    }
    partials[GROUPS * N_TERMS + k] = sum;
}
