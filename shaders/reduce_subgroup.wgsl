// Workgroup sum with subgroup operations: each subgroup reduces in registers, then
// invocation 0 adds the per-subgroup totals. The result is valid in invocation 0.

struct Invocation {
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
}

var<workgroup> scratch: array<f32, WORKGROUP_SIZE>;

fn workgroup_sum(v: f32, inv: Invocation) -> f32 {
    let subgroup_total = subgroupAdd(v);
    if (inv.lane == 0u) {
        scratch[inv.subgroup] = subgroup_total;
    }
    workgroupBarrier();
    var total = 0.0;
    if (inv.lid == 0u) {
        for (var s = 0u; s < inv.subgroups; s = s + 1u) {
            total = total + scratch[s];
        }
    }
    workgroupBarrier();
    return total;
}
