// f64 sums of a family's per-sample terms (the f64 finish of a GPU family fit), over the
// samples as the engine re-expressed them (see SampleMap). The generated header defines
// N_TERMS, WORKGROUP_SIZE, GROUPS and the samples' binding x (f64, or the f32 data of the
// reduction kernel where those are the samples exactly); the family's own snippet (shaders/family/), with f64
// for f32, defines accumulate(x, acc), so the terms have one definition for both kernels.

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

// Workgroup g sums a contiguous share of the chunk, each invocation a strided part of it in
// order; the invocations' sums are added in order per term and accumulate, over the chunks,
// in partials[g * N_TERMS + t].
@compute @workgroup_size(WORKGROUP_SIZE)
fn terms(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    var acc: array<f64, N_TERMS>;
    for (var k = 0u; k < N_TERMS; k = k + 1u) {
        acc[k] = 0.0lf;
    }
    let share = (shape.rows + GROUPS - 1u) / GROUPS;
    let first = wid.x * share;
    let last = min(first + share, shape.rows);
    for (var i = first + t; i < last; i = i + WORKGROUP_SIZE) {
        accumulate(f64(x[i]), &acc);
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
