// One fused pass over a chunk of samples: every invocation accumulates the family's
// per-sample terms for SAMPLES_PER_THREAD samples, then each term is summed over the
// workgroup and written as one partial. The host finishes the sum of partials in f64.
//
// The samples are read four at a time (vec4 loads): a CPU adapter (lavapipe) pays a fixed
// cost per load instruction of each SIMD group (address arithmetic, the bounds check of
// robust buffer access), so four samples a load halve the cost of a pass there.
//
// Which samples: the workgroup's span is cut into blocks of LANE_GROUP * SAMPLES_PER_THREAD
// samples, one per group of LANE_GROUP consecutive invocations; at step k the group reads the
// k-th run of LANE_GROUP adjacent vec4s of its block, one vec4 per invocation.
//
// Generated before this text: N_TERMS, WORKGROUP_SIZE, SAMPLES_PER_THREAD, LANE_GROUP, RUN,
// SEGMENT, KERNEL_PARAM_VEC4S, the family's `accumulate`, `workgroup_sums`, `Invocation`,
// `add_terms` (acc += run, term by term) and `add_run` (acc += a run's terms, decoded where
// the family packs them: see shader::PACKED_CLASSES).

struct ChunkInfo {
    len: u32,
    partial_base: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> chunk: ChunkInfo;
@group(0) @binding(3) var<uniform> kernel_params: array<vec4<f32>, KERNEL_PARAM_VEC4S>;
// The kernel parameters and the chunk length, read once before the loops: a CPU adapter
// (lavapipe) reads a uniform address once for all lanes only outside control flow, and lane
// by lane inside it.
var<private> kernel_params_here: array<vec4<f32>, KERNEL_PARAM_VEC4S>;

const LOADS_PER_THREAD: u32 = SAMPLES_PER_THREAD / 4u;
const RUN_LOADS: u32 = RUN / 4u;

fn accumulate4(v: vec4<f32>, run: ptr<function, array<f32, N_TERMS>>) {
    accumulate(v.x, run);
    accumulate(v.y, run);
    accumulate(v.z, run);
    accumulate(v.w, run);
}

// The samples of vec4 `i` that lie before `len` (the last vec4 of a chunk may be partly
// padding).
fn accumulate_tail(i: u32, len: u32, run: ptr<function, array<f32, N_TERMS>>) {
    let first = 4u * i;
    if (first < len) {
        let v = data[i];
        accumulate(v.x, run);
        if (first + 1u < len) {
            accumulate(v.y, run);
        }
        if (first + 2u < len) {
            accumulate(v.z, run);
        }
        if (first + 3u < len) {
            accumulate(v.w, run);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_terms(inv: Invocation) {
    // Runs of RUN samples are summed on their own, SEGMENT runs make a segment, and the
    // segments are added to the invocation's total, so that no sequential f32 sum is longer
    // than RUN, SEGMENT or SAMPLES_PER_THREAD / (RUN * SEGMENT) terms.
    kernel_params_here = kernel_params;
    let len = chunk.len;
    var acc: array<f32, N_TERMS>;
    let block = inv.lid / LANE_GROUP;
    let base = inv.wid.x * (WORKGROUP_SIZE * LOADS_PER_THREAD)
        + block * (LANE_GROUP * LOADS_PER_THREAD) + inv.lid % LANE_GROUP;
    // Whether every sample of this workgroup lies in the chunk: the same for the whole
    // workgroup, so the branch is uniform and the loads of all but the last workgroup are
    // unmasked.
    let full = (inv.wid.x + 1u) * (WORKGROUP_SIZE * SAMPLES_PER_THREAD) <= len;
    if (full) {
        for (var s = 0u; s < LOADS_PER_THREAD; s = s + RUN_LOADS * SEGMENT) {
            var segment: array<f32, N_TERMS>;
            for (var r = s; r < s + RUN_LOADS * SEGMENT; r = r + RUN_LOADS) {
                // RUN_LOADS = 4 loads written out (Mesa does not unroll naga's loops).
                var run: array<f32, N_TERMS>;
                let i = base + r * LANE_GROUP;
                accumulate4(data[i], &run);
                accumulate4(data[i + LANE_GROUP], &run);
                accumulate4(data[i + 2u * LANE_GROUP], &run);
                accumulate4(data[i + 3u * LANE_GROUP], &run);
                add_run(&segment, &run);
            }
            add_terms(&acc, &segment);
        }
    } else {
        for (var s = 0u; s < LOADS_PER_THREAD; s = s + RUN_LOADS * SEGMENT) {
            var segment: array<f32, N_TERMS>;
            for (var r = s; r < s + RUN_LOADS * SEGMENT; r = r + RUN_LOADS) {
                var run: array<f32, N_TERMS>;
                for (var k = r; k < r + RUN_LOADS; k = k + 1u) {
                    accumulate_tail(base + k * LANE_GROUP, len, &run);
                }
                add_run(&segment, &run);
            }
            add_terms(&acc, &segment);
        }
    }
    workgroup_sums(&acc, inv);
    if (inv.lid == 0u) {
        for (var t = 0u; t < N_TERMS; t = t + 1u) {
            partials[chunk.partial_base + inv.wid.x * N_TERMS + t] = acc[t];
        }
    }
}
