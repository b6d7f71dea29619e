// One fused pass over a chunk of samples: every invocation accumulates the family's
// per-sample terms for SAMPLES_PER_THREAD samples (strided by WORKGROUP_SIZE, so adjacent
// invocations read adjacent words), then each term is summed over the workgroup and written
// as one partial. The host finishes the sum of partials in f64.
//
// Generated before this text: N_TERMS, WORKGROUP_SIZE, SAMPLES_PER_THREAD,
// KERNEL_PARAM_VEC4S, the family's `accumulate`, `workgroup_sum` and `Invocation`.

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

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_terms(inv: Invocation) {
    var acc: array<f32, N_TERMS>;
    let base = inv.wid.x * (WORKGROUP_SIZE * SAMPLES_PER_THREAD) + inv.lid;
    for (var k = 0u; k < SAMPLES_PER_THREAD; k = k + 1u) {
        let i = base + k * WORKGROUP_SIZE;
        if (i < chunk.len) {
            accumulate(data[i], &acc);
        }
    }
    for (var t = 0u; t < N_TERMS; t = t + 1u) {
        let total = workgroup_sum(acc[t], inv);
        if (inv.lid == 0u) {
            partials[chunk.partial_base + inv.wid.x * N_TERMS + t] = total;
        }
    }
}
