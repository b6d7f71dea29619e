// Workgroup sums with subgroup operations: each subgroup reduces every term in registers,
// then invocation 0 adds the per-subgroup totals pairwise; two barriers per batch of
// TREE_TERMS terms.
// The results are valid in invocation 0.

struct Invocation {
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
}

var<workgroup> scratch: array<array<f32, TREE_TERMS>, WORKGROUP_SIZE>;

fn workgroup_sums(acc: ptr<function, array<f32, N_TERMS>>, inv: Invocation) {
    for (var t0 = 0u; t0 < N_TERMS; t0 = t0 + TREE_TERMS) {
        for (var t = 0u; t < TREE_TERMS && t0 + t < N_TERMS; t = t + 1u) {
            let subgroup_total = subgroupAdd((*acc)[t0 + t]);
            if (inv.lane == 0u) {
                scratch[inv.subgroup][t] = subgroup_total;
            }
        }
        workgroupBarrier();
        if (inv.lid == 0u) {
            // The subgroups' totals added pairwise (log2 of their count roundings, not one
            // per subgroup: 32 subgroups on lavapipe).
            for (var t = 0u; t < TREE_TERMS && t0 + t < N_TERMS; t = t + 1u) {
                for (var width = 1u; width < inv.subgroups; width = width * 2u) {
                    for (var s = 0u; s + width < inv.subgroups; s = s + 2u * width) {
                        scratch[s][t] = scratch[s][t] + scratch[s + width][t];
                    }
                }
                (*acc)[t0 + t] = scratch[0][t];
            }
        }
        workgroupBarrier();
    }
}
