// Workgroup sums without subgroup operations: a pairwise tree in workgroup memory,
// log2(WORKGROUP_SIZE) levels, every term at each level (so the barriers do not multiply with
// the terms). The results are valid in invocation 0.

struct Invocation {
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
}

var<workgroup> scratch: array<array<f32, TREE_TERMS>, WORKGROUP_SIZE>;

fn workgroup_sums(acc: ptr<function, array<f32, N_TERMS>>, inv: Invocation) {
    // Terms in batches of TREE_TERMS (the scratch's width).
    for (var t0 = 0u; t0 < N_TERMS; t0 = t0 + TREE_TERMS) {
        for (var t = 0u; t < TREE_TERMS && t0 + t < N_TERMS; t = t + 1u) {
            scratch[inv.lid][t] = (*acc)[t0 + t];
        }
        workgroupBarrier();
        for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
            if (inv.lid < stride) {
                for (var t = 0u; t < TREE_TERMS && t0 + t < N_TERMS; t = t + 1u) {
                    scratch[inv.lid][t] = scratch[inv.lid][t] + scratch[inv.lid + stride][t];
                }
            }
            workgroupBarrier();
        }
        if (inv.lid == 0u) {
            for (var t = 0u; t < TREE_TERMS && t0 + t < N_TERMS; t = t + 1u) {
                (*acc)[t0 + t] = scratch[0][t];
            }
        }
        workgroupBarrier();
    }
}
