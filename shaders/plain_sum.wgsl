// The adapter's streaming roofline: a plain one-pass sum of f32 values, read as vec4s, with
// nothing else to do. Two walks, each with two independent vec4 accumulators:
//   `blocked`: invocation g sums its own contiguous run of vec4s (what a CPU adapter, which
//              runs an invocation's loop from start to end, streams fastest);
//   `grid_stride`: at step k the whole grid reads one contiguous row of vec4s (coalesced, as
//              a hardware GPU reads fastest).
// The main loop's trip count is the same for every invocation (a CPU adapter masks the loads
// of a loop whose trip count differs by lane); the fewer than 2 * threads vec4s left over are
// read once each afterwards. The tail of a chunk past its last sample is zero (the buffer's
// initial contents), so whole vec4s are summed.
//
// Generated before this text: WORKGROUP_SIZE, and `finish(acc, inv)`, which writes the
// invocation's total (one partial per subgroup, or per invocation without subgroups).

struct SumInfo {
    len4: u32,
    threads: u32,
    partial_base: u32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> info: SumInfo;

fn leftover(g: u32, threads: u32, len4: u32, done: u32) -> vec4<f32> {
    var acc = vec4<f32>(0.0);
    let first = done + g;
    if (first < len4) {
        acc = acc + data[first];
    }
    if (first + threads < len4) {
        acc = acc + data[first + threads];
    }
    return acc;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn blocked(inv: SumInvocation) {
    let len4 = info.len4;
    let threads = info.threads;
    let g = inv.gid.x;
    let pairs = len4 / (2u * threads);
    let start = g * 2u * pairs;
    var a = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    for (var k = 0u; k < pairs; k = k + 1u) {
        a = a + data[start + 2u * k];
        b = b + data[start + 2u * k + 1u];
    }
    let acc = a + b + leftover(g, threads, len4, 2u * pairs * threads);
    finish(acc.x + acc.y + acc.z + acc.w, inv);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn grid_stride(inv: SumInvocation) {
    let len4 = info.len4;
    let threads = info.threads;
    let g = inv.gid.x;
    let pairs = len4 / (2u * threads);
    var a = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    for (var k = 0u; k < pairs; k = k + 1u) {
        a = a + data[g + 2u * k * threads];
        b = b + data[g + (2u * k + 1u) * threads];
    }
    let acc = a + b + leftover(g, threads, len4, 2u * pairs * threads);
    finish(acc.x + acc.y + acc.z + acc.w, inv);
}
