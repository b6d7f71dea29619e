// Workgroup sum without subgroup operations: a pairwise tree in workgroup memory,
// log2(WORKGROUP_SIZE) levels. The result is valid in invocation 0.

struct Invocation {
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
}

var<workgroup> scratch: array<f32, WORKGROUP_SIZE>;

fn workgroup_sum(v: f32, inv: Invocation) -> f32 {
    scratch[inv.lid] = v;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
        if (inv.lid < stride) {
            scratch[inv.lid] = scratch[inv.lid] + scratch[inv.lid + stride];
        }
        workgroupBarrier();
    }
    let total = scratch[0];
    workgroupBarrier();
    return total;
}
