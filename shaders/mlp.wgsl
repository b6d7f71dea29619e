// Dense network training on the GPU: tiled forward products, the family head, the backward
// products with the batch reduction folded into the weight-gradient tiles, the loss
// reduction, and the optimiser step. Generated before this text: TILE, N_OUT, REFERENCE,
// ACT, N_PARAMS, N_GLOBALS, GLOBALS_AT, D, N_ROWS, HALF_LN_2PI, HESS_SPLITS, GRAD_SPLITS;
// after it, the family's head (`Conditional::head_wgsl`: head_eval and head_hessian_at).
//
// Parameters of a layer with fan_in inputs: W (fan_in x fan_out, row-major) then b, which is
// row fan_in of the augmented matrix [W; b] whose input is 1. Gradients use the same layout.

struct Desc {
    fan_in: u32,
    fan_out: u32,
    w_off: u32,
    in_off: u32,      // work offset of the previous layer's pre-activations (layer > 0)
    out_off: u32,     // work offset of this layer's pre-activations
    delta_off: u32,   // work offset of this layer's deltas
    prev_delta_off: u32,
    first: u32,       // 1 for the first layer (input from x through idx)
    batch: u32,       // rows per step
    loss_off: u32,    // work offset of per-row losses (then per-row global gradients)
    chunk_row0: u32,  // gather: first table row held by the bound x chunk
    chunk_rows: u32,  // gather: rows in that chunk
    hess_off: u32,    // Newton: per-row head Hessians (batch x M x M)
    hsum_off: u32,    // Newton: the parameter Hessian (N_PARAMS x N_PARAMS), summed over the pass
    hpart_off: u32,   // Newton: HESS_SPLITS partial parameter Hessians of this batch
    gpart_off: u32,   // GRAD_SPLITS partial weight gradients of this batch
}

struct Hyper {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    momentum: f32,
    l2: f32,          // 1 / (scale^2 n): the L2 prior's per-sample share
    l1: f32,          // lambda / n: the L1 prior's per-sample share
    optimizer: u32,   // 0 sgd, 1 adam, 2 adamw
    accumulate: u32,  // 1: add gradients into grads (full-batch passes), 0: overwrite
    pad0: u32,
    pad1: u32,
}

// x is one chunk of the feature table (tables larger than a storage binding span several);
// each step first gathers its batch's rows from every chunk into the work area.
// state: [step within the pass, optimiser steps taken, first idx of the pass, rows in the pass]
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<f32>;   // y, then constant NLL parts
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>; // params, then flags
@group(0) @binding(4) var<storage, read_write> opt: array<f32>;    // grads, m, v
@group(0) @binding(5) var<storage, read_write> work: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;
@group(0) @binding(7) var<storage, read_write> state: array<u32>;
@group(0) @binding(8) var<uniform> desc: Desc;
@group(0) @binding(9) var<uniform> hyper: Hyper;

var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_b: array<array<f32, TILE>, TILE>;

fn rows_now() -> u32 {
    let start = state[0] * desc.batch;
    if (start >= state[3]) {
        return 0u;
    }
    return min(desc.batch, state[3] - start);
}

fn row_index(b: u32) -> u32 {
    return idx[state[2] + state[0] * desc.batch + b];
}

fn activate(z: f32) -> f32 {
    if (ACT == 0u) {
        return max(z, 0.0);
    } else if (ACT == 1u) {
        return tanh(z);
    }
    return 0.5 * z * (1.0 + tanh(0.7978845608 * (z + 0.044715 * z * z * z)));
}

fn activate_derivative(z: f32) -> f32 {
    if (ACT == 0u) {
        return select(0.0, 1.0, z > 0.0);
    } else if (ACT == 1u) {
        let t = tanh(z);
        return 1.0 - t * t;
    }
    let t = tanh(0.7978845608 * (z + 0.044715 * z * z * z));
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * 0.7978845608 * (1.0 + 3.0 * 0.044715 * z * z);
}

// The layer's input for row b, column j (j = fan_in is the bias input 1). The first layer's
// input is the gathered batch of features, which is not activated.
fn layer_input(b: u32, j: u32) -> f32 {
    if (j == desc.fan_in) {
        return 1.0;
    }
    let v = work[desc.in_off + b * desc.fan_in + j];
    if (desc.first == 1u) {
        return v;
    }
    return activate(v);
}

// Copies the batch's feature rows held by the bound x chunk into the work area.
@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x / D;
    let j = gid.x % D;
    if (b >= rows_now()) {
        return;
    }
    let r = row_index(b);
    if (r >= desc.chunk_row0 && r < desc.chunk_row0 + desc.chunk_rows) {
        work[desc.in_off + b * D + j] = x[(r - desc.chunk_row0) * D + j];
    }
}

// Z[b, o] = sum_j input(b, j) W[j, o] + bias[o], in TILE x TILE tiles of (rows, outputs).
@compute @workgroup_size(TILE, TILE)
fn forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let rows = rows_now();
    let b = wid.x * TILE + lid.y;
    let o = wid.y * TILE + lid.x;
    var acc = 0.0;
    let k_total = desc.fan_in + 1u;
    for (var k0 = 0u; k0 < k_total; k0 = k0 + TILE) {
        let kb = k0 + lid.x;
        tile_a[lid.y][lid.x] = select(0.0, layer_input(b, kb), b < rows && kb < k_total);
        let kw = k0 + lid.y;
        tile_b[lid.y][lid.x] = select(0.0, params[desc.w_off + kw * desc.fan_out + o], kw < k_total && o < desc.fan_out);
        acc = acc + tile_product(lid);
    }
    if (b < rows && o < desc.fan_out) {
        work[desc.out_off + b * desc.fan_out + o] = acc;
    }
}

// The same product without shared memory, one invocation per (row b = x, output o = y): for
// narrow layers, where tiles would be mostly padding and their barriers cost more than the
// loads they save (on CPU adapters, far more).
@compute @workgroup_size(256)
fn forward_direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    let o = gid.y;
    if (b >= rows_now()) {
        return;
    }
    var acc = params[desc.w_off + desc.fan_in * desc.fan_out + o];
    for (var k = 0u; k < desc.fan_in; k = k + 1u) {
        acc = acc + layer_input(b, k) * params[desc.w_off + k * desc.fan_out + o];
    }
    work[desc.out_off + b * desc.fan_out + o] = acc;
}

// Row lid.y of tile_a times column lid.x of tile_b, between barriers that make the tiles'
// loads visible and keep them until every invocation has used them.
fn tile_product(lid: vec3<u32>) -> f32 {
    workgroupBarrier();
    var acc = 0.0;
    for (var k = 0u; k < TILE; k = k + 1u) {
        acc = acc + tile_a[lid.y][k] * tile_b[k][lid.x];
    }
    workgroupBarrier();
    return acc;
}

fn softplus(z: f32) -> f32 {
    return max(z, 0.0) + log(1.0 + exp(-abs(z)));
}

// Per row: NLL, dNLL/deta into the output deltas, dNLL/dglobal into the row's slot.
@compute @workgroup_size(256)
fn head(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if (b >= rows_now()) {
        return;
    }
    head_row(b, row_index(b));
}

// One row's head: its NLL (less the row's constant part), dNLL/deta, and dNLL/dglobal, from
// the outputs eta, the target y, and the global parameter s (log sigma, log b) where the
// family has one. The kernel-by-kernel step and the fused step both call it.
struct HeadRow {
    loss: f32,
    dglobal: f32,
    delta: array<f32, N_OUT>,
}

// head_eval(eta, y, s) -> HeadRow and head_hessian_at(z, h, y) are the family's, appended
// to this text (shaders/family/head/).

// The head for batch row b (table row r), with `desc` the last layer's.
fn head_row(b: u32, r: u32) {
    let z = desc.out_off + b * N_OUT;
    let d = desc.delta_off + b * N_OUT;
    var eta: array<f32, N_OUT>;
    for (var k = 0u; k < N_OUT; k = k + 1u) {
        eta[k] = work[z + k];
    }
    var s = 0.0;
    if (N_GLOBALS > 0u) {
        s = params[GLOBALS_AT];
    }
    let out = head_eval(eta, targets[r], s);
    for (var k = 0u; k < N_OUT; k = k + 1u) {
        work[d + k] = out.delta[k];
    }
    work[desc.loss_off + b] = targets[N_ROWS + r] + out.loss;
    work[desc.loss_off + desc.batch + b] = out.dglobal;
}

var<workgroup> sums: array<vec2<f32>, 256>;

// One workgroup: the batch's loss into losses[step] and the global's gradient into grads.
@compute @workgroup_size(256)
fn reduce_loss(@builtin(local_invocation_index) lid: u32) {
    let rows = rows_now();
    var acc = vec2<f32>(0.0, 0.0);
    for (var b = lid; b < rows; b = b + 256u) {
        acc = acc + vec2<f32>(work[desc.loss_off + b], work[desc.loss_off + desc.batch + b]);
    }
    sums[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s / 2u) {
        if (lid < s) {
            sums[lid] = sums[lid] + sums[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        losses[state[0]] = sums[0].x;
        if (N_GLOBALS > 0u) {
            opt[GLOBALS_AT] = select(0.0, opt[GLOBALS_AT], hyper.accumulate == 1u) + sums[0].y;
        }
    }
}

// G_s[j, o] = sum over the rows b of split s of input(b, j) delta[b, o]: tiles of (inputs +
// bias row, outputs), each looping over its split's rows in TILE-row slabs, so the batch
// reduction happens inside the product; GRAD_SPLITS splits (workgroup z) run side by side
// and `grad_sum` adds their partial gradients.
@compute @workgroup_size(TILE, TILE)
fn weight_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let rows = rows_now();
    let per_split = ((rows + GRAD_SPLITS - 1u) / GRAD_SPLITS + TILE - 1u) / TILE * TILE;
    let first = wid.z * per_split;
    let last = min(rows, first + per_split);
    let j = wid.x * TILE + lid.y;
    let o = wid.y * TILE + lid.x;
    let k_total = desc.fan_in + 1u;
    var acc = 0.0;
    for (var b0 = first; b0 < last; b0 = b0 + TILE) {
        // tile_a[j_local][b_local] = input(b, j); tile_b[b_local][o_local] = delta[b, o]
        let bj = b0 + lid.x;
        tile_a[lid.y][lid.x] = select(0.0, layer_input(bj, j), bj < last && j < k_total);
        let bd = b0 + lid.y;
        tile_b[lid.y][lid.x] = select(0.0, work[desc.delta_off + bd * desc.fan_out + o], bd < last && o < desc.fan_out);
        acc = acc + tile_product(lid);
    }
    if (j < k_total && o < desc.fan_out) {
        work[desc.gpart_off + wid.z * N_PARAMS + desc.w_off + j * desc.fan_out + o] = acc;
    }
}

// weight_grad without shared memory: one invocation per entry e = (j, o) of [W; b] (x) and
// split (y), for layers with few weights.
@compute @workgroup_size(64)
fn weight_grad_direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if (e >= (desc.fan_in + 1u) * desc.fan_out) {
        return;
    }
    let j = e / desc.fan_out;
    let o = e % desc.fan_out;
    let rows = rows_now();
    let per_split = (rows + GRAD_SPLITS - 1u) / GRAD_SPLITS;
    let first = gid.y * per_split;
    let last = min(rows, first + per_split);
    var acc = 0.0;
    for (var b = first; b < last; b = b + 1u) {
        acc = acc + layer_input(b, j) * work[desc.delta_off + b * desc.fan_out + o];
    }
    work[desc.gpart_off + gid.y * N_PARAMS + desc.w_off + e] = acc;
}

// The weights' gradients (every parameter before the globals): the sum of the splits' partial
// gradients, added to the pass's running sum (full batch) or replacing it (a step's batch).
@compute @workgroup_size(256)
fn grad_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    if (p >= GLOBALS_AT) {
        return;
    }
    var acc = 0.0;
    for (var s = 0u; s < GRAD_SPLITS; s = s + 1u) {
        acc = acc + work[desc.gpart_off + s * N_PARAMS + p];
    }
    opt[p] = select(0.0, opt[p], hyper.accumulate == 1u) + acc;
}

// delta_prev[b, j] = (sum_o delta[b, o] W[j, o]) act'(Z_prev[b, j]), tiles of (rows, inputs).
@compute @workgroup_size(TILE, TILE)
fn backward_delta(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let rows = rows_now();
    let b = wid.x * TILE + lid.y;
    let j = wid.y * TILE + lid.x;
    var acc = 0.0;
    for (var o0 = 0u; o0 < desc.fan_out; o0 = o0 + TILE) {
        let od = o0 + lid.x;
        tile_a[lid.y][lid.x] = select(0.0, work[desc.delta_off + b * desc.fan_out + od], b < rows && od < desc.fan_out);
        let ow = o0 + lid.y;
        // tile_b[o_local][j_local] = W[j, o]
        tile_b[lid.y][lid.x] = select(0.0, params[desc.w_off + j * desc.fan_out + ow], ow < desc.fan_out && j < desc.fan_in);
        acc = acc + tile_product(lid);
    }
    if (b < rows && j < desc.fan_in) {
        work[desc.prev_delta_off + b * desc.fan_in + j] = acc * activate_derivative(work[desc.in_off + b * desc.fan_in + j]);
    }
}

// backward_delta without shared memory: one invocation per (row b = x, input j = y).
@compute @workgroup_size(256)
fn backward_delta_direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    let j = gid.y;
    if (b >= rows_now()) {
        return;
    }
    var acc = 0.0;
    for (var o = 0u; o < desc.fan_out; o = o + 1u) {
        acc = acc + work[desc.delta_off + b * desc.fan_out + o] * params[desc.w_off + j * desc.fan_out + o];
    }
    work[desc.prev_delta_off + b * desc.fan_in + j] = acc * activate_derivative(work[desc.in_off + b * desc.fan_in + j]);
}

// One optimiser step on every parameter, on the batch's mean gradient plus the prior's share.
@compute @workgroup_size(256)
fn optimizer_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let rows = rows_now();
    if (p >= N_PARAMS || rows == 0u) {
        return;
    }
    step_param(p, rows);
}

// The optimiser step of parameter p from its gradient summed over `rows` rows (in opt[p]).
// flags (after the parameters): -1 = frozen, 0 = no prior (biases, globals), f > 0 = a weight
// whose prior's scale is f times the user's (the conditioned coordinates' factor).
fn step_param(p: u32, rows: u32) {
    let flag = params[N_PARAMS + p];
    if (flag < 0.0) {
        return;
    }
    let weight = flag > 0.0;
    var theta = params[p];
    var g = opt[p] / f32(rows);
    if (weight) {
        g = g + hyper.l2 / (flag * flag) * theta;
    }
    let t = f32(state[1] + 1u);
    var lr = hyper.lr;
    if (hyper.optimizer == 0u) {
        var buf = g;
        if (state[1] > 0u) {
            buf = hyper.momentum * opt[N_PARAMS + p] + g;
        }
        opt[N_PARAMS + p] = buf;
        theta = theta - hyper.lr * buf;
    } else {
        if (hyper.optimizer == 2u) {
            theta = theta * (1.0 - hyper.lr * hyper.weight_decay);
        }
        let m = hyper.beta1 * opt[N_PARAMS + p] + (1.0 - hyper.beta1) * g;
        let v = hyper.beta2 * opt[2u * N_PARAMS + p] + (1.0 - hyper.beta2) * g * g;
        opt[N_PARAMS + p] = m;
        opt[2u * N_PARAMS + p] = v;
        let mhat = m / (1.0 - pow(hyper.beta1, t));
        let vhat = v / (1.0 - pow(hyper.beta2, t));
        lr = hyper.lr / (sqrt(vhat) + hyper.eps);
        theta = theta - lr * mhat;
    }
    if (weight && hyper.l1 > 0.0) {
        theta = sign(theta) * max(abs(theta) - lr * hyper.l1 / flag, 0.0);
    }
    params[p] = theta;
}

// Moves the pass to its next batch and counts the optimiser step.
@compute @workgroup_size(1)
fn advance() {
    state[0] = state[0] + 1u;
    state[1] = state[1] + 1u;
}

// Moves a forward-only or full-batch pass to its next batch.
@compute @workgroup_size(1)
fn next_batch() {
    state[0] = state[0] + 1u;
}

// ---- Newton / Fisher scoring for linear models -----------------------------------------
// M = N_OUT + N_GLOBALS: the head's second derivatives with respect to (eta, globals).
const M: u32 = N_OUT + N_GLOBALS;

@compute @workgroup_size(256)
fn head_hessian(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if (b >= rows_now()) {
        return;
    }
    let y = targets[row_index(b)];
    let z = desc.out_off + b * N_OUT;
    let h = desc.hess_off + b * M * M;
    head_hessian_at(z, h, y);
}

// Parameter u of a linear model as (head slot, input): W and b rows j = 0..D (j = D is the
// intercept's input 1), slot = output; globals have slot N_OUT + q and input 1.
fn slot_of(u: u32) -> vec2<u32> {
    if (u < GLOBALS_AT) {
        return vec2<u32>(u % N_OUT, u / N_OUT);
    }
    return vec2<u32>(N_OUT + u - GLOBALS_AT, D);
}

fn newton_input(b: u32, j: u32) -> f32 {
    return select(work[desc.in_off + b * D + j], 1.0, j == D);
}

// Partial Hessians: H_s[u, v] = sum over the rows b of split s of
// input(b, j_u) input(b, j_v) h_b[slot_u, slot_v], the batch reduction of X^T W X. One
// invocation per upper-triangle entry e = (u, v), u <= v (x) and split s (y); HESS_SPLITS
// splits of the batch run side by side so that every row is read by many invocations at once.
@compute @workgroup_size(128)
fn hessian(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    let u = e / N_PARAMS;
    let v = e % N_PARAMS;
    if (u >= N_PARAMS || u > v) {
        return;
    }
    let a = slot_of(u);
    let c = slot_of(v);
    let rows = rows_now();
    let per_split = (rows + HESS_SPLITS - 1u) / HESS_SPLITS;
    let first = gid.y * per_split;
    let last = min(rows, first + per_split);
    var acc = 0.0;
    for (var b = first; b < last; b = b + 1u) {
        acc = acc + newton_input(b, a.y) * newton_input(b, c.y)
            * work[desc.hess_off + b * M * M + a.x * M + c.x];
    }
    work[desc.hpart_off + gid.y * N_PARAMS * N_PARAMS + e] = acc;
}

// Adds the splits' partial Hessians into the pass's running sum, mirroring the upper
// triangle into the lower.
@compute @workgroup_size(256)
fn hessian_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if (e >= N_PARAMS * N_PARAMS) {
        return;
    }
    let u = e / N_PARAMS;
    let v = e % N_PARAMS;
    let upper = min(u, v) * N_PARAMS + max(u, v);
    var acc = 0.0;
    for (var s = 0u; s < HESS_SPLITS; s = s + 1u) {
        acc = acc + work[desc.hpart_off + s * N_PARAMS * N_PARAMS + upper];
    }
    work[desc.hsum_off + e] = work[desc.hsum_off + e] + acc;
}
