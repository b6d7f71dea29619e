// One fused pass over a chunk of samples: every invocation accumulates the family's
// per-sample terms for SAMPLES_PER_THREAD samples, then each term is summed over the
// workgroup and written as one partial. The host finishes the sum of partials in f64.
//
// Which samples: the workgroup's span is cut into blocks of LANE_GROUP * SAMPLES_PER_THREAD
// words, one per group of LANE_GROUP consecutive invocations; at step k the group reads the
// k-th run of LANE_GROUP adjacent words of its block, one word per invocation.
//
// Generated before this text: N_TERMS, WORKGROUP_SIZE, SAMPLES_PER_THREAD, LANE_GROUP, RUN,
// KERNEL_PARAM_VEC4S, the family's `accumulate`, `workgroup_sums`, `Invocation` and
// `add_terms` (acc += run, term by term).

struct ChunkInfo {
    len: u32,
    partial_base: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> data: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> chunk: ChunkInfo;
@group(0) @binding(3) var<uniform> kernel_params: array<vec4<f32>, KERNEL_PARAM_VEC4S>;
// The kernel parameters and the chunk length, read once before the loops: a CPU adapter
// (lavapipe) reads a uniform address once for all lanes only outside control flow, and lane
// by lane inside it.
var<private> kernel_params_here: array<vec4<f32>, KERNEL_PARAM_VEC4S>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_terms(inv: Invocation) {
    // Runs of RUN samples are summed on their own and then added to the invocation's total,
    // so no sequential f32 sum is longer than RUN (or SAMPLES_PER_THREAD / RUN) terms.
    kernel_params_here = kernel_params;
    let len = chunk.len;
    var acc: array<f32, N_TERMS>;
    let block = inv.lid / LANE_GROUP;
    let base = inv.wid.x * (WORKGROUP_SIZE * SAMPLES_PER_THREAD)
        + block * (LANE_GROUP * SAMPLES_PER_THREAD) + inv.lid % LANE_GROUP;
    for (var r = 0u; r < SAMPLES_PER_THREAD; r = r + RUN) {
        var run: array<f32, N_TERMS>;
        for (var k = r; k < r + RUN; k = k + 1u) {
            let i = base + k * LANE_GROUP;
            if (i < len) {
                accumulate(data[i], &run);
            }
        }
        add_terms(&acc, &run);
    }
    workgroup_sums(&acc, inv);
    if (inv.lid == 0u) {
        for (var t = 0u; t < N_TERMS; t = t + 1u) {
            partials[chunk.partial_base + inv.wid.x * N_TERMS + t] = acc[t];
        }
    }
}
