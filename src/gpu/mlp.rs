//! Dense networks on the GPU: data, parameters, optimiser state and the shuffled row order
//! live in GPU buffers; a training epoch is one submit of every step's dispatches, and the
//! host reads back only the per-step losses.

use super::buffers::{entry, read_back, upload_with, write_f32, write_f32_mapped};
use super::context::GpuContext;
use super::timer::{KernelTime, PassTimer};
use crate::error::{Error, Result};
use crate::family::HALF_LN_2PI;
use crate::model::{Activation, Conditioning, Network};
use wgpu::util::DeviceExt;

const TILE: u32 = 16;
/// Stride of the per-layer descriptors in their uniform buffer (dynamic offsets).
const DESC_STRIDE: u64 = 256;
/// Largest linear model whose Hessian the GPU reduces (Newton / Fisher scoring).
pub const MAX_NEWTON_PARAMS: usize = 2048;

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Desc {
    fan_in: u32,
    fan_out: u32,
    w_off: u32,
    in_off: u32,
    out_off: u32,
    delta_off: u32,
    prev_delta_off: u32,
    first: u32,
    batch: u32,
    loss_off: u32,
    chunk_row0: u32,
    chunk_rows: u32,
    hess_off: u32,
    hsum_off: u32,
    hpart_off: u32,
    gpart_off: u32,
}

/// Optimiser settings for a training pass, as the kernel reads them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Hyper {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub momentum: f32,
    /// L2 prior's share per sample: 1 / (scale^2 n).
    pub l2: f32,
    /// L1 prior's share per sample: lambda / n.
    pub l1: f32,
    /// 0 sgd, 1 adam, 2 adamw.
    pub optimizer: u32,
    pub accumulate: u32,
    pub pad: [u32; 2],
}

struct Pipelines {
    gather: wgpu::ComputePipeline,
    forward: wgpu::ComputePipeline,
    forward_direct: wgpu::ComputePipeline,
    head: wgpu::ComputePipeline,
    reduce_loss: wgpu::ComputePipeline,
    weight_grad: wgpu::ComputePipeline,
    weight_grad_direct: wgpu::ComputePipeline,
    backward_delta: wgpu::ComputePipeline,
    backward_delta_direct: wgpu::ComputePipeline,
    optimizer_step: wgpu::ComputePipeline,
    advance: wgpu::ComputePipeline,
    next_batch: wgpu::ComputePipeline,
    head_hessian: wgpu::ComputePipeline,
    hessian: wgpu::ComputePipeline,
    hessian_sum: wgpu::ComputePipeline,
    grad_sum: wgpu::ComputePipeline,
    /// The fused training step, for the networks that have it.
    fused: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline, FusedPlan)>,
}

/// A network bound to a table on the GPU.
pub struct GpuNetwork {
    ctx: GpuContext,
    network: Network,
    /// Rows the table buffers hold at most, and rows loaded now.
    capacity: usize,
    n: std::cell::Cell<usize>,
    /// First row of each storage binding of the feature table, and the bindings.
    chunk_starts: Vec<usize>,
    x_chunks: Vec<wgpu::Buffer>,
    targets: wgpu::Buffer,
    batch: usize,
    p: usize,
    pipelines: Pipelines,
    /// One bind group per chunk of the feature table (they differ only in the x binding).
    bind_groups: Vec<wgpu::BindGroup>,
    idx: wgpu::Buffer,
    params: wgpu::Buffer,
    opt: wgpu::Buffer,
    losses: wgpu::Buffer,
    state: wgpu::Buffer,
    hyper: wgpu::Buffer,
    losses_readback: wgpu::Buffer,
    grads_readback: wgpu::Buffer,
    params_readback: wgpu::Buffer,
    /// Per parameter, after the parameters in their buffer: -1 frozen, 0 neither prior nor
    /// decay (biases, globals), f > 0 a weight whose prior's scale is f times the user's.
    flags: std::cell::RefCell<Vec<f32>>,
    layers: usize,
    /// Rows 0, 1, ... the index buffer holds in order (full-batch passes reuse them).
    identity_rows: std::cell::Cell<usize>,
    work: wgpu::Buffer,
    hsum_off: Option<u64>,
    hess_readback: wgpu::Buffer,
    timer: Option<PassTimer>,
    /// Whether training steps run fused (two dispatches a step).
    fused_steps: std::cell::Cell<bool>,
    /// The table in f64 for the f64 finish of linear models (uploaded on first use after a
    /// load, released by the next load), or `None` where it cannot be made for this load.
    exact: std::cell::RefCell<Option<Option<std::rc::Rc<super::linear64::LinearF64>>>>,
    /// Whether f64 sums have been taken from the GPU ([`GpuNetwork::exact_sums`]).
    exact_used: std::cell::Cell<bool>,
    _keep: Vec<wgpu::Buffer>,
}

/// The flags the optimiser step reads after the parameters: -1 frozen, else the parameter's
/// prior factor (0: no prior and no decay).
fn parameter_flags(factors: &[f64], frozen: &[bool]) -> Vec<f32> {
    factors
        .iter()
        .enumerate()
        .map(|(j, &f)| {
            if frozen.get(j).copied().unwrap_or(false) {
                -1.0
            } else {
                f as f32
            }
        })
        .collect()
}

/// Splits of a batch whose partial Hessians are reduced side by side: enough to fill a GPU for
/// small models, within 16 MiB of partial sums for large ones.
fn hessian_splits(p: usize) -> usize {
    ((1usize << 22) / (p * p).max(1)).clamp(1, 64)
}

/// Whether a product whose reduction has `size` terms runs without shared-memory tiles: narrow layers, where 16 x 16 tiles are mostly
/// padding and their barriers cost more than the loads they save.
pub fn direct_product(size: usize) -> bool {
    size <= 4 * TILE as usize
}

/// Largest layer ([W; b] entries) whose weight gradients run without shared-memory tiles.
pub const DIRECT_WEIGHT_GRAD_MAX: usize = 1024;

/// Splits of a batch whose partial weight gradients are reduced side by side: about 64 rows
/// each, at most 64, within 16 MiB of partial sums.
fn gradient_splits(batch: usize, p: usize) -> usize {
    batch
        .div_ceil(64)
        .min(64)
        .min((1usize << 22) / p.max(1))
        .max(1)
}

/// The WGSL for `network`, with its sizes in a generated header, and the fused training step
/// where the network has one.
pub fn compose(network: &Network, n_rows: usize, batch: usize) -> String {
    let plan = fused_eligible(network, batch).then(|| FusedPlan::new(batch));
    compose_with(network, n_rows, batch, plan)
}

fn compose_with(
    network: &Network,
    n_rows: usize,
    batch: usize,
    fused: Option<FusedPlan>,
) -> String {
    let act = match network.activation {
        Activation::Relu => 0,
        Activation::Tanh => 1,
        Activation::Gelu => 2,
    };
    let header = format!(
        "const TILE: u32 = {TILE}u;\nconst N_OUT: u32 = {}u;\nconst REFERENCE: u32 = {}u;\n\
         const ACT: u32 = {act}u;\nconst N_PARAMS: u32 = {}u;\nconst N_GLOBALS: u32 = {}u;\nconst GLOBALS_AT: u32 = {}u;\n\
         const D: u32 = {}u;\nconst N_ROWS: u32 = {}u;\nconst HALF_LN_2PI: f32 = {HALF_LN_2PI};\n\
         const HESS_SPLITS: u32 = {}u;\nconst GRAD_SPLITS: u32 = {}u;\n",
        network.head.outputs(),
        network.head.reference as u32,
        network.param_count(),
        network.head.globals(),
        network.globals_offset(),
        network.inputs,
        n_rows,
        hessian_splits(network.param_count()),
        gradient_splits(batch, network.param_count()),
    );
    let fused = fused.map_or(String::new(), |plan| fused_step_code(network, batch, plan));
    header
        + include_str!("../../shaders/mlp.wgsl")
        + super::shader::SPECIAL
        + network
            .head
            .wgsl()
            .expect("a head without network kernels is refused (GpuNetwork::refusal)")
        + &fused
}

/// Invocations per workgroup of the fused training step: one SIMD register of f32 lanes on a
/// CPU adapter at 256 bits, which runs a workgroup's invocations as the lanes of its vectors.
const FUSED_LANES: usize = 8;
/// Rows each invocation takes at a time, as the components of vec4s, so that each parameter
/// serves four rows per use.
const FUSED_ROWS_PER_ROUND: usize = 4 * FUSED_LANES;
/// Most workgroups of the fused step's row pass: one per core of the CPU that runs them, few
/// enough that summing their invocations' partial gradients (one per invocation) stays cheap.
const FUSED_MAX_WORKGROUPS: usize = 8;
/// Networks whose training step may be fused: few parameters, narrow layers (each invocation
/// holds every parameter, its share of the gradient and its rows' values through every layer),
/// modest batches. The kernel is straight-line code per parameter, whose first compile on
/// lavapipe grows with the square of the parameters: on the 2-core CI machine about 2.5 s for
/// the seed MLP (517 parameters), 8 s at 960 and 32 s at 1830, once per network shape (Mesa
/// caches it).
const FUSED_MAX_PARAMS: usize = 2048;
const FUSED_MAX_WIDTH: usize = 128;
const FUSED_MAX_BATCH: usize = 16384;

/// Whether `network` at `batch` rows per step has the fused training step.
fn fused_eligible(network: &Network, batch: usize) -> bool {
    network.param_count() <= FUSED_MAX_PARAMS
        && network.widths().iter().all(|&w| w <= FUSED_MAX_WIDTH)
        && batch <= FUSED_MAX_BATCH
}

/// The fused step's plan for `network` at `batch` rows per step on `ctx`, where it has one.
/// The fused step exists on CPU adapters (lavapipe) only: there dispatches and lane-divergent
/// loads are dear and registers spill cheaply to the stack, where on a real GPU an invocation
/// holding every parameter and its gradient would spill to slow memory (and its driver would
/// compile the large kernel for nothing). Its partials take a ninth storage buffer: where the
/// adapter allows only eight per stage, the network trains kernel by kernel.
fn fused_plan(ctx: &GpuContext, network: &Network, batch: usize) -> Option<FusedPlan> {
    (ctx.adapter().software
        && fused_eligible(network, batch)
        && ctx.limits.max_storage_buffers_per_shader_stage >= 9)
        .then(|| FusedPlan::new(batch))
}

/// How the fused step's row pass splits a batch: workgroups, and the rounds of
/// [`FUSED_ROWS_PER_ROUND`] rows each workgroup takes.
#[derive(Clone, Copy, Debug)]
struct FusedPlan {
    workgroups: usize,
    rounds: usize,
}

impl FusedPlan {
    fn new(batch: usize) -> Self {
        // The fused step is for CPU adapters, whose workgroups run on this machine's cores.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workgroups = cores.clamp(2, FUSED_MAX_WORKGROUPS);
        let rounds = batch.div_ceil(workgroups * FUSED_ROWS_PER_ROUND).max(1);
        FusedPlan {
            workgroups: batch.div_ceil(rounds * FUSED_ROWS_PER_ROUND).max(1),
            rounds,
        }
    }

    /// Partial gradients the row pass leaves: one per invocation.
    fn partials(&self) -> usize {
        self.workgroups * FUSED_LANES
    }

    /// vec4s of one partial: the gradient, then the loss, padded.
    fn partial_vec4s(network: &Network) -> usize {
        (network.param_count() + 1).div_ceil(4)
    }

    /// Bytes of the partials buffer.
    fn partials_bytes(&self, network: &Network) -> u64 {
        (16 * self.partials() * Self::partial_vec4s(network)) as u64
    }
}

/// The fused training step, generated for the network's shapes (literal sizes and offsets).
///
/// `fused_rows`: each invocation loads every parameter once, before any loop (outside control
/// flow a CPU adapter loads a uniform address once for all lanes; inside, it loads lane by
/// lane), then takes its rows four at a time as the components of vec4s, through every layer,
/// the head and back, entirely in registers, and adds each row's gradient into its own
/// accumulator per parameter. It stores its partial gradient and loss once at the end: no
/// barrier, no shared memory, no per-row stores. `fused_step` adds the partials, takes the
/// optimiser step for every parameter and advances the pass, in one workgroup. Two dispatches
/// per step instead of one per kernel and layer: what a CPU adapter needs, where every dispatch
/// costs tens of microseconds and every lane-divergent load or store costs one per lane.
fn fused_step_code(network: &Network, batch: usize, plan: FusedPlan) -> String {
    use std::fmt::Write;
    let layers = network.layers();
    let last = layers.len() - 1;
    let (d, np, outputs) = (
        network.inputs,
        network.param_count(),
        network.head.outputs(),
    );
    let globals = network.head.globals() > 0;
    let g_at = network.globals_offset();
    let stride = FusedPlan::partial_vec4s(network);
    let comps = ["x", "y", "z", "w"];
    // vec4<f32>(f(x), f(y), f(z), f(w)) for the four rows.
    let per_row = |f: &dyn Fn(&str) -> String| {
        format!(
            "vec4<f32>({})",
            comps.iter().map(|c| f(c)).collect::<Vec<_>>().join(", ")
        )
    };
    // `var name = init;` then `name = name + value * p{param};` for each term: a row of a
    // layer's product, with the parameters' indices as literals.
    let weighted_sum = |code: &mut String, name: &str, init: &str, terms: &[(String, usize)]| {
        let _ = writeln!(code, "var {name} = {init};");
        for (value, param) in terms {
            let _ = writeln!(code, "{name} = {name} + {value} * p{param};");
        }
    };
    let mut code = String::new();
    let _ = writeln!(
        code,
        "\n// ---- The fused training step (generated for this network) ----\n\
         // Each invocation's partial gradient, then its loss, as vec4s: a CPU adapter stores and\n\
         // loads a lane-divergent address lane by lane, four floats at a time.\n\
         @group(0) @binding(10) var<storage, read_write> partials: array<vec4<f32>>;\n\
         @compute @workgroup_size({FUSED_LANES})\n\
         fn fused_rows(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {{\n\
         // rows_now() and row_index() written without branches, so that nothing before the\n\
         // parameter loads below is control flow.\n\
         let start = state[0] * {batch}u;\n\
         let rows = select(min({batch}u, state[3] - start), 0u, start >= state[3]);\n\
         let first = state[2] + start;\n\
         let last_row = vec4<u32>(max(rows, 1u) - 1u);"
    );
    // Every parameter, and an accumulator for each gradient entry, the loss and the global.
    for p in 0..np {
        let _ = writeln!(code, "let p{p} = params[{p}u];\nvar g{p} = 0.0;");
    }
    let _ = writeln!(
        code,
        "var loss = 0.0;\n\
         for (var k = 0u; k < {rounds}u; k = k + 1u) {{\n\
         let b0 = (wid.x * {rounds}u + k) * {FUSED_ROWS_PER_ROUND}u + lid;\n\
         let b = vec4<u32>(b0, b0 + {l1}u, b0 + {l2}u, b0 + {l3}u);\n\
         let v = b < vec4<u32>(rows);\n\
         let bc = min(b, last_row);\n\
         let r = vec4<u32>(idx[first + bc.x], idx[first + bc.y], idx[first + bc.z], idx[first + bc.w]);",
        rounds = plan.rounds,
        l1 = FUSED_LANES,
        l2 = 2 * FUSED_LANES,
        l3 = 3 * FUSED_LANES,
    );
    // Rows past the batch compute on the last row and are masked out of the deltas and loss.
    for j in 0..d {
        let _ = writeln!(
            code,
            "let a0_{j} = {};",
            per_row(&|c| format!("x[r.{c} * {d}u + {j}u]"))
        );
    }
    for (l, layer) in layers.iter().enumerate() {
        let (fi, fo, wo) = (layer.fan_in, layer.fan_out, layer.weights);
        let _ = writeln!(
            code,
            "// layer {l} forward: z = a W + bias{}",
            if l < last { ", a' = act(z)" } else { " (eta)" }
        );
        for o in 0..fo {
            let inputs: Vec<_> = (0..fi)
                .map(|j| (format!("a{l}_{j}"), wo + j * fo + o))
                .collect();
            let bias = format!("vec4<f32>(p{})", wo + fi * fo + o);
            weighted_sum(&mut code, &format!("z{l}_{o}"), &bias, &inputs);
            if l < last {
                let _ = writeln!(
                    code,
                    "let a{n}_{o} = {};",
                    per_row(&|c| format!("activate(z{l}_{o}.{c})")),
                    n = l + 1
                );
            }
        }
    }
    // The head, row by row; deltas of masked rows are 0, so they add nothing to the gradient.
    let s = if globals {
        format!("p{g_at}")
    } else {
        "0.0".into()
    };
    let _ = writeln!(
        code,
        "let y = {};\nlet constant = {};",
        per_row(&|c| format!("targets[r.{c}]")),
        per_row(&|c| format!("targets[N_ROWS + r.{c}]"))
    );
    for c in comps {
        let eta = (0..outputs)
            .map(|o| format!("z{last}_{o}.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            code,
            "let h{c} = head_eval(array<f32, N_OUT>({eta}), y.{c}, {s});"
        );
    }
    // The four rows' values with the masked rows' set to 0.
    let masked = |f: &dyn Fn(&str) -> String| format!("select(vec4<f32>(0.0), {}, v)", per_row(f));
    for o in 0..outputs {
        let _ = writeln!(
            code,
            "let e{last}_{o} = {};",
            masked(&|c| format!("h{c}.delta[{o}]"))
        );
    }
    let _ = writeln!(
        code,
        "loss = loss + dot({}, vec4<f32>(1.0));",
        masked(&|c| format!("h{c}.loss + constant.{c}"))
    );
    if globals {
        let _ = writeln!(
            code,
            "g{g_at} = g{g_at} + dot({}, vec4<f32>(1.0));",
            masked(&|c| format!("h{c}.dglobal"))
        );
    }
    for l in (0..=last).rev() {
        let layer = layers[l];
        let (fi, fo, wo) = (layer.fan_in, layer.fan_out, layer.weights);
        let _ = writeln!(
            code,
            "// layer {l} gradient: dW[j, o] += input_j delta_o, dbias[o] += delta_o"
        );
        for o in 0..fo {
            for j in 0..fi {
                let e = wo + j * fo + o;
                let _ = writeln!(code, "g{e} = g{e} + dot(a{l}_{j}, e{l}_{o});");
            }
            let e = wo + fi * fo + o;
            let _ = writeln!(code, "g{e} = g{e} + dot(e{l}_{o}, vec4<f32>(1.0));");
        }
        if l > 0 {
            let p = l - 1;
            let _ = writeln!(
                code,
                "// layer {l} backward: delta_prev = (delta W^T) act'(z_prev)"
            );
            for j in 0..fi {
                let deltas: Vec<_> = (0..fo)
                    .map(|o| (format!("e{l}_{o}"), wo + j * fo + o))
                    .collect();
                weighted_sum(&mut code, &format!("e{p}_{j}"), "vec4<f32>(0.0)", &deltas);
                let _ = writeln!(
                    code,
                    "e{p}_{j} = e{p}_{j} * {};",
                    per_row(&|c| format!("activate_derivative(z{p}_{j}.{c})"))
                );
            }
        }
    }
    let _ = writeln!(
        code,
        "}}\n\
         // This invocation's partial: the gradient, then the loss.\n\
         let part = (wid.x * {FUSED_LANES}u + lid) * {stride}u;"
    );
    let entry = |e: usize| match e {
        e if e < np => format!("g{e}"),
        e if e == np => "loss".to_string(),
        _ => "0.0".to_string(),
    };
    for q in 0..stride {
        let _ = writeln!(
            code,
            "partials[part + {q}u] = vec4<f32>({}, {}, {}, {});",
            entry(4 * q),
            entry(4 * q + 1),
            entry(4 * q + 2),
            entry(4 * q + 3)
        );
    }
    let _ = writeln!(
        code,
        "}}\n\
         \n\
         @compute @workgroup_size(256)\n\
         fn fused_step(@builtin(local_invocation_index) lid: u32) {{\n\
         let rows = rows_now();\n\
         for (var q = lid; q < {stride}u; q = q + 256u) {{\n\
         var g = vec4<f32>(0.0);\n\
         for (var s = 0u; s < {parts}u; s = s + 1u) {{ g = g + partials[s * {stride}u + q]; }}\n\
         for (var c = 0u; c < 4u; c = c + 1u) {{\n\
         let p = 4u * q + c;\n\
         if (p < {np}u) {{\n\
         opt[p] = g[c];\n\
         if (rows > 0u) {{ step_param(p, rows); }}\n\
         }}\n\
         }}\n\
         }}\n\
         if (lid == 0u) {{\n\
         var loss = 0.0;\n\
         for (var s = 0u; s < {parts}u; s = s + 1u) {{ loss = loss + partials[s * {stride}u + {lq}u][{lc}u]; }}\n\
         losses[state[0]] = loss;\n\
         }}\n\
         storageBarrier();\n\
         if (lid == 0u) {{\n\
         state[0] = state[0] + 1u;\n\
         state[1] = state[1] + 1u;\n\
         }}\n\
         }}",
        parts = plan.partials(),
        lq = np / 4,
        lc = np % 4,
    );
    code
}

/// Where each part of the work buffer starts (in f32s).
struct WorkLayout {
    /// The gathered batch of features.
    xb_off: u32,
    /// Per layer: pre-activations and deltas.
    z_off: Vec<u32>,
    d_off: Vec<u32>,
    /// Per-row losses and global gradients.
    loss_off: u32,
    /// Partial weight gradients of the batch's splits.
    gpart_off: u32,
    /// Newton (linear models with a modest number of parameters): per-row head Hessians,
    /// the parameter Hessian and its partial sums.
    newton: bool,
    hess_off: u32,
    hsum_off: u32,
    hpart_off: u32,
    len: usize,
}

impl GpuNetwork {
    fn work_layout(network: &Network, batch: usize) -> WorkLayout {
        // Offsets in usize: a large head times many rows passes u32 (the layout is then too
        // large to bind, which `build` reports, rather than wrapping around).
        let p = network.param_count();
        let mut at = batch * network.inputs;
        let (mut z_off, mut d_off) = (Vec::new(), Vec::new());
        for l in network.layers() {
            z_off.push(at as u32);
            at += batch * l.fan_out;
            d_off.push(at as u32);
            at += batch * l.fan_out;
        }
        let loss_off = at as u32;
        at += 2 * batch;
        let gpart_off = at as u32;
        at += gradient_splits(batch, p) * p;
        let newton = network.hidden.is_empty() && p <= MAX_NEWTON_PARAMS;
        let m = network.head.outputs() + network.head.globals();
        let hess_off = at as u32;
        if newton {
            at += batch * m * m;
        }
        let hsum_off = at as u32;
        let hpart_off = hsum_off.wrapping_add((p * p) as u32);
        if newton {
            at += (1 + hessian_splits(p)) * p * p;
        }
        WorkLayout {
            xb_off: 0,
            z_off,
            d_off,
            loss_off,
            gpart_off,
            newton,
            hess_off,
            hsum_off,
            hpart_off,
            len: at,
        }
    }
}

impl GpuNetwork {
    /// Rows per step for full-batch passes (L-BFGS, Newton) over `n` rows: as many as keep the
    /// work area (activations, deltas, per-row Hessian blocks and the partial sums) within
    /// 64 MiB, half the smallest storage binding WebGPU allows, up to 65536, so that a pass
    /// is few dispatches. (A categorical head of 256 classes has 65 025 Hessian entries a
    /// row: a few hundred rows a step.)
    pub fn full_batch_rows(network: &Network, n: usize) -> usize {
        const WORK_BYTES: usize = 64 << 20;
        let fits = |rows: usize| 4 * Self::work_layout(network, rows).len <= WORK_BYTES;
        let (mut lo, mut hi) = (1usize, 65536usize.min(n.max(1)));
        if fits(hi) {
            return hi;
        }
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Why the GPU kernels cannot evaluate `network` (`None`: they can). Their heads are
    /// written at each family's native link only.
    pub fn refusal(network: &Network) -> Option<String> {
        if network.head.wgsl().is_none() {
            return Some(format!(
                "the GPU network kernels carry one global parameter per head, and a {} head \
                 has {}: its models run on the CPU engine (--backend cpu)",
                network.head.family.as_str(),
                network.head.globals()
            ));
        }
        (!network.head.has_native_link()).then(|| {
            format!(
                "the GPU kernels evaluate the {} family at its {} link only; --link {} runs \
                 on the CPU engine (--backend cpu)",
                network.head.family.as_str(),
                network.head.family.native_link().as_str(),
                network.head.link.as_str()
            )
        })
    }

    /// Uploads the table (x row-major n x d, y, and each row's constant NLL part) once.
    /// `frozen` parameters never move; `batch` is the rows per step.
    pub fn new(
        ctx: &GpuContext,
        network: &Network,
        x: &[f64],
        y: &[f64],
        constants: &[f64],
        frozen: &[bool],
        batch: usize,
    ) -> Result<Self> {
        Self::with_chunk_cap(ctx, network, x, y, constants, frozen, batch, None)
    }

    /// As [`GpuNetwork::new`], with at most `max_chunk_rows` table rows per storage binding
    /// (tests use it to exercise the multi-binding path cheaply).
    #[allow(clippy::too_many_arguments)]
    pub fn with_chunk_cap(
        ctx: &GpuContext,
        network: &Network,
        x: &[f64],
        y: &[f64],
        constants: &[f64],
        frozen: &[bool],
        batch: usize,
        max_chunk_rows: Option<usize>,
    ) -> Result<Self> {
        let gpu = Self::build(ctx, network, y.len(), frozen, batch, max_chunk_rows)?;
        gpu.load(x, y, constants)?;
        Ok(gpu)
    }

    /// Buffers for tables of up to `capacity` rows, loaded later with [`GpuNetwork::load`]
    /// one chunk at a time (tables larger than the GPU's memory budget).
    pub fn for_chunks(
        ctx: &GpuContext,
        network: &Network,
        capacity: usize,
        frozen: &[bool],
        batch: usize,
    ) -> Result<Self> {
        Self::build(ctx, network, capacity, frozen, batch, None)
    }

    /// Device bytes of a network's buffers on `ctx` for `n` rows and `batch` rows per step.
    pub fn device_bytes(ctx: &GpuContext, network: &Network, n: usize, batch: usize) -> u64 {
        Self::fixed_bytes(ctx, network, batch.clamp(1, n.max(1)))
            + n as u64 * Self::row_bytes(network)
    }

    /// Device bytes per table row: features, target, constant and row index.
    fn row_bytes(network: &Network) -> u64 {
        4 * (network.inputs + 3) as u64
    }

    /// Device bytes that do not grow with the table: parameters, optimiser state, work, and
    /// the fused step's partials where the network has the fused step on `ctx`.
    fn fixed_bytes(ctx: &GpuContext, network: &Network, batch: usize) -> u64 {
        4 * (5 * network.param_count() + Self::work_layout(network, batch).len) as u64
            + fused_plan(ctx, network, batch).map_or(0, |plan| plan.partials_bytes(network))
    }

    /// The most rows whose network buffers fit the context's memory budget (and whose targets
    /// fit one storage binding), with `batch` rows per step.
    pub fn max_rows(ctx: &GpuContext, network: &Network, batch: usize) -> usize {
        let fixed = Self::fixed_bytes(ctx, network, batch.max(1));
        let binding = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        (ctx.memory_budget().saturating_sub(fixed) / Self::row_bytes(network)).min(binding / 8)
            as usize
    }

    /// The most rows per chunk, a multiple of 64 and at most `limit`, whose buffers (with
    /// `carry` rows more, and `step_rows(rows)` rows per step) fit the context's memory budget;
    /// an error naming the bytes needed when not even 64 do.
    pub fn chunk_rows_within_budget(
        ctx: &GpuContext,
        network: &Network,
        limit: usize,
        carry: usize,
        step_rows: impl Fn(usize) -> usize,
    ) -> Result<usize> {
        let needs =
            |rows: usize| Self::device_bytes(ctx, network, rows + carry, step_rows(rows + carry));
        // The buffers grow with the rows: bisect over multiples of 64.
        let (mut lo, mut hi) = (1, (limit / 64).max(1));
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if needs(64 * mid) <= ctx.memory_budget() {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let chunk = 64 * lo;
        if needs(chunk) > ctx.memory_budget() {
            return Err(Error::Capacity(format!(
                "the model's GPU buffers need {} bytes for a chunk of {chunk} rows, more than the \
                 {} bytes --gpu-memory allows: raise it, or fit on the CPU (--backend cpu)",
                needs(chunk),
                ctx.memory_budget()
            )));
        }
        Ok(chunk)
    }

    fn build(
        ctx: &GpuContext,
        network: &Network,
        n: usize,
        frozen: &[bool],
        batch: usize,
        max_chunk_rows: Option<usize>,
    ) -> Result<Self> {
        if let Some(why) = Self::refusal(network) {
            return Err(Error::Usage(why));
        }
        let p = network.param_count();
        let batch = batch.clamp(1, n.max(1));
        let label = "likely mlp";
        let device = &ctx.device;
        let binding = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        if (2 * n * 4) as u64 > binding {
            return Err(Error::Capacity(format!(
                "{n} rows: the targets ({} bytes) exceed one storage binding ({binding} bytes); use --backend cpu",
                2 * n * 4
            )));
        }
        let d = network.inputs.max(1);
        let chunk_rows = ((binding / (4 * d as u64)) as usize)
            .min(max_chunk_rows.unwrap_or(usize::MAX))
            .max(1);
        if n == 0 {
            return Err(Error::InvalidData("no rows".into()));
        }

        let layers = network.layers();
        let WorkLayout {
            xb_off,
            z_off,
            d_off,
            loss_off,
            gpart_off,
            newton,
            hess_off,
            hsum_off,
            hpart_off,
            len: work_len,
            ..
        } = Self::work_layout(network, batch);
        if (work_len * 4) as u64 > binding {
            return Err(Error::Capacity(format!(
                "the model's GPU work area for {batch} rows a step needs {} bytes, more than one \
                 storage binding ({binding} bytes): fit on the CPU (--backend cpu)",
                work_len * 4
            )));
        }
        let device_bytes = Self::device_bytes(ctx, network, n, batch);
        if device_bytes > ctx.memory_budget() {
            return Err(Error::Capacity(format!(
                "the model's GPU buffers need {device_bytes} bytes ({n} rows), more than the {} \
                 bytes --gpu-memory allows: raise it, or fit on the CPU (--backend cpu)",
                ctx.memory_budget()
            )));
        }
        let mut descs: Vec<Desc> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| Desc {
                fan_in: l.fan_in as u32,
                fan_out: l.fan_out as u32,
                w_off: l.weights as u32,
                in_off: if i == 0 { xb_off } else { z_off[i - 1] },
                out_off: z_off[i],
                delta_off: d_off[i],
                prev_delta_off: if i == 0 { 0 } else { d_off[i - 1] },
                first: (i == 0) as u32,
                batch: batch as u32,
                loss_off,
                chunk_row0: 0,
                chunk_rows: 0,
                hess_off,
                hsum_off,
                hpart_off,
                gpart_off,
            })
            .collect();
        let chunk_starts: Vec<usize> = (0..n).step_by(chunk_rows).collect();
        for &row0 in &chunk_starts {
            descs.push(Desc {
                in_off: xb_off,
                batch: batch as u32,
                chunk_row0: row0 as u32,
                chunk_rows: (n.min(row0 + chunk_rows) - row0) as u32,
                ..Desc::default()
            });
        }
        let mut desc_bytes = vec![0u8; descs.len() * DESC_STRIDE as usize];
        for (i, d) in descs.iter().enumerate() {
            let at = i * DESC_STRIDE as usize;
            desc_bytes[at..at + std::mem::size_of::<Desc>()].copy_from_slice(bytemuck::bytes_of(d));
        }

        let mask = network.weight_mask();
        let factors: Vec<f64> = mask.iter().map(|&m| m as u8 as f64).collect();
        let flags = parameter_flags(&factors, frozen);
        let table_buffer = |label: &str, floats: usize| {
            ctx.scoped(label, || {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: (floats.max(1) * 4) as u64,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
        };
        let x_chunks: Vec<wgpu::Buffer> = chunk_starts
            .iter()
            .enumerate()
            .map(|(c, &row0)| {
                let rows = n.min(row0 + chunk_rows) - row0;
                table_buffer(
                    &format!("likely mlp features chunk {c}"),
                    rows * network.inputs,
                )
            })
            .collect::<Result<_>>()?;
        // Targets, then each row's constant NLL part from row N_ROWS.
        let targets = table_buffer("likely mlp targets", 2 * n)?;
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let make = |label: &str, size: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(4),
                usage: storage,
                mapped_at_creation: false,
            })
        };
        let idx = make("likely mlp row order", (n * 4) as u64);
        let params = make("likely mlp parameters and flags", (2 * p * 4) as u64);
        let opt = upload_with(
            ctx,
            &vec![0.0; 3 * p],
            "likely mlp gradients and moments",
            storage,
        )?;
        let work = make("likely mlp activations and deltas", (work_len * 4) as u64);
        // The plan is fixed here: the kernel's literal sizes, the buffer and the dispatch
        // all follow it.
        let fused_plan = fused_plan(ctx, network, batch);
        let fused = fused_plan.is_some();
        let partials = make(
            "likely mlp fused-step partial gradients",
            fused_plan.map_or(4, |plan| plan.partials_bytes(network)),
        );
        let steps = n.div_ceil(batch) + 1;
        let losses = make("likely mlp per-step losses", (steps * 4) as u64);
        let state = make("likely mlp pass state", 16);
        let desc = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("likely mlp layer descriptors"),
            contents: &desc_bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let hyper = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("likely mlp optimiser settings"),
            size: std::mem::size_of::<Hyper>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let readback = |label: &str, size: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let losses_readback = readback("likely mlp losses readback", (steps * 4) as u64);
        let grads_readback = readback("likely mlp gradients readback", (p * 4) as u64);
        let params_readback = readback("likely mlp parameters readback", (p * 4) as u64);
        let hess_readback = readback(
            "likely mlp Hessian readback",
            if newton { (p * p * 4) as u64 } else { 4 },
        );

        let storage_entry = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let uniform_entry = |binding, dynamic| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: dynamic,
                min_binding_size: None,
            },
            count: None,
        };
        let mut layout_entries = vec![
            storage_entry(0, true),
            storage_entry(1, true),
            storage_entry(2, true),
            storage_entry(3, false),
            storage_entry(4, false),
            storage_entry(5, false),
            storage_entry(6, false),
            storage_entry(7, false),
            uniform_entry(8, true),
            uniform_entry(9, false),
        ];
        if fused {
            layout_entries.push(storage_entry(10, false));
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &layout_entries,
        });
        let bind_groups: Vec<wgpu::BindGroup> = x_chunks
            .iter()
            .enumerate()
            .map(|(c, x_buf)| {
                let mut entries = vec![
                    entry(0, x_buf),
                    entry(1, &targets),
                    entry(2, &idx),
                    entry(3, &params),
                    entry(4, &opt),
                    entry(5, &work),
                    entry(6, &losses),
                    entry(7, &state),
                    wgpu::BindGroupEntry {
                        binding: 8,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &desc,
                            offset: 0,
                            size: wgpu::BufferSize::new(std::mem::size_of::<Desc>() as u64),
                        }),
                    },
                    entry(9, &hyper),
                ];
                if fused {
                    entries.push(entry(10, &partials));
                }
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&format!("likely mlp bindings, features chunk {c}")),
                    layout: &layout,
                    entries: &entries,
                })
            })
            .collect();
        let source = compose_with(network, n, batch, fused_plan);
        let pipelines = ctx.scoped(label, || {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = |entry: &str| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&format!("likely mlp {entry}")),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
            };
            Pipelines {
                gather: pipeline("gather"),
                forward: pipeline("forward"),
                forward_direct: pipeline("forward_direct"),
                head: pipeline("head"),
                reduce_loss: pipeline("reduce_loss"),
                weight_grad: pipeline("weight_grad"),
                weight_grad_direct: pipeline("weight_grad_direct"),
                backward_delta: pipeline("backward_delta"),
                backward_delta_direct: pipeline("backward_delta_direct"),
                optimizer_step: pipeline("optimizer_step"),
                advance: pipeline("advance"),
                next_batch: pipeline("next_batch"),
                head_hessian: pipeline("head_hessian"),
                hessian: pipeline("hessian"),
                hessian_sum: pipeline("hessian_sum"),
                grad_sum: pipeline("grad_sum"),
                fused: fused_plan
                    .map(|plan| (pipeline("fused_rows"), pipeline("fused_step"), plan)),
            }
        })?;
        ctx.take_errors(label)?;
        Ok(GpuNetwork {
            ctx: ctx.clone(),
            network: network.clone(),
            capacity: n,
            n: std::cell::Cell::new(0),
            chunk_starts,
            x_chunks,
            targets,
            batch,
            p,
            pipelines,
            bind_groups,
            idx,
            params,
            opt,
            losses,
            state,
            hyper,
            losses_readback,
            grads_readback,
            params_readback,
            flags: std::cell::RefCell::new(flags),
            layers: layers.len(),
            identity_rows: std::cell::Cell::new(0),
            work,
            hsum_off: newton.then_some(hsum_off as u64),
            hess_readback,
            timer: None,
            fused_steps: std::cell::Cell::new(true),
            exact: Default::default(),
            exact_used: Default::default(),
            _keep: vec![desc],
        })
    }

    /// Rows loaded now.
    pub fn rows(&self) -> usize {
        self.n.get()
    }

    /// Writes the table's rows from row 0 (x row-major, y, and each row's constant NLL part),
    /// at most the capacity the network was built for; later passes cover these rows.
    pub fn load(&self, x: &[f64], y: &[f64], constants: &[f64]) -> Result<()> {
        self.load_conditioned(x, y, constants, None)
    }

    /// [`GpuNetwork::load`] of the rows as `cond` re-expresses them: each feature and target is
    /// conditioned in f64 and then rounded to f32, so f32 keeps what the data carry.
    pub fn load_conditioned(
        &self,
        x: &[f64],
        y: &[f64],
        constants: &[f64],
        cond: Option<&Conditioning>,
    ) -> Result<()> {
        let (n, d) = (y.len(), self.network.inputs);
        if n == 0 || n > self.capacity || x.len() != n * d || constants.len() != n {
            return Err(Error::InvalidData(format!(
                "{n} rows ({} feature values, {} constants) for a GPU table of {} rows of {d} features",
                x.len(),
                constants.len(),
                self.capacity
            )));
        }
        let cond = cond.filter(|c| !c.is_identity());
        for (i, (&row0, buffer)) in self.chunk_starts.iter().zip(&self.x_chunks).enumerate() {
            let end = self.chunk_starts.get(i + 1).map_or(n, |&next| next.min(n));
            if row0 < end {
                let values = &x[row0 * d..end * d];
                match cond {
                    // A binding starts at a row boundary: index k is feature k % d.
                    Some(c) => write_f32_mapped(&self.ctx, buffer, 0, values, |k, v| {
                        (v - c.center[k % d]) * c.inv_scale[k % d]
                    }),
                    None => write_f32(&self.ctx, buffer, 0, values),
                }
            }
        }
        match cond {
            Some(c) => write_f32_mapped(&self.ctx, &self.targets, 0, y, |_, v| c.target(v)),
            None => write_f32(&self.ctx, &self.targets, 0, y),
        }
        write_f32(
            &self.ctx,
            &self.targets,
            (self.capacity * 4) as u64,
            constants,
        );
        self.n.set(n);
        // The f64 copy of the rows before (if any) is released: the next f64 sums upload
        // these rows.
        self.exact.borrow_mut().take();
        Ok(())
    }

    /// The loaded table in f64 on the GPU, for sums of a linear model's derivatives in f64
    /// (see [`super::linear64`]): uploaded on first use from the host rows `x` and `y` as
    /// `cond` conditions them (the rows [`GpuNetwork::load_conditioned`] loaded); `None` where
    /// the adapter cannot (no SHADER_F64, a head or size the kernels do not take, not within
    /// the memory budget beside the f32 table, or a failed upload): the CPU engine sums then.
    pub fn exact_sums(
        &self,
        x: &[f64],
        y: &[f64],
        cond: Option<&Conditioning>,
    ) -> Option<std::rc::Rc<super::linear64::LinearF64>> {
        use super::linear64::LinearF64;
        let made = || {
            let n = self.n.get();
            if !LinearF64::applies(&self.ctx, &self.network) || y.len() != n || n == 0 {
                return None;
            }
            let chunk = LinearF64::chunk_rows(&self.ctx, &self.network, None);
            let needed = Self::device_bytes(&self.ctx, &self.network, self.capacity, self.batch)
                + LinearF64::device_bytes(&self.network, n, chunk);
            if needed > self.ctx.memory_budget() {
                return None;
            }
            LinearF64::new(&self.ctx, &self.network, x, y, cond, None)
                .ok()
                .map(std::rc::Rc::new)
        };
        let exact = self.exact.borrow_mut().get_or_insert_with(made).clone();
        if exact.is_some() {
            self.exact_used.set(true);
        }
        exact
    }

    /// Whether f64 passes have run on the GPU ([`GpuNetwork::exact_sums`] uploaded the
    /// table in f64 and gave its sums).
    pub fn has_exact_sums(&self) -> bool {
        self.exact_used.get()
    }

    /// Writes parameters (as f32) and resets the optimiser state.
    pub fn set_params(&self, params: &[f64]) {
        let mut values: Vec<f32> = params.iter().map(|&v| v as f32).collect();
        values.extend_from_slice(&self.flags.borrow());
        self.ctx
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&values));
    }

    /// Sets each weight's prior factor (its prior's scale is the user's times the factor; 0
    /// for parameters no prior acts on), as the conditioned coordinates state the user's prior;
    /// frozen parameters stay frozen. Takes effect at the next [`GpuNetwork::set_params`].
    pub fn set_prior_factors(&self, factors: &[f64]) {
        let mut flags = self.flags.borrow_mut();
        let frozen: Vec<bool> = flags.iter().map(|&f| f < 0.0).collect();
        *flags = parameter_flags(factors, &frozen);
    }

    /// Zeroes the optimiser's moments (a new training run).
    pub fn reset_optimizer(&self) {
        self.ctx
            .queue
            .write_buffer(&self.opt, 0, bytemuck::cast_slice(&vec![0f32; 3 * self.p]));
    }

    pub fn read_params(&self) -> Result<Vec<f64>> {
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("likely mlp read parameters"),
            });
        encoder.copy_buffer_to_buffer(
            &self.params,
            0,
            &self.params_readback,
            0,
            (self.p * 4) as u64,
        );
        self.ctx.queue.submit([encoder.finish()]);
        Ok(
            read_back(&self.ctx, &self.params_readback, "likely mlp parameters")?
                .iter()
                .map(|&v| v as f64)
                .collect(),
        )
    }

    /// Puts the pass's row order in the index buffer: `None` is every loaded row in order,
    /// uploaded once and kept while full-batch passes follow each other (L-BFGS, Newton).
    fn upload_rows(&self, rows: Option<&[u32]>) -> usize {
        match rows {
            Some(order) => {
                self.ctx
                    .queue
                    .write_buffer(&self.idx, 0, bytemuck::cast_slice(order));
                self.identity_rows.set(0);
                order.len()
            }
            None => {
                let n = self.n.get();
                if self.identity_rows.get() < n {
                    let all: Vec<u32> = (0..n as u32).collect();
                    self.ctx
                        .queue
                        .write_buffer(&self.idx, 0, bytemuck::cast_slice(&all));
                    self.identity_rows.set(n);
                }
                n
            }
        }
    }

    /// Runs one pass over `rows` (in that order), `train` steps included, and returns the
    /// per-step loss sums; with `want_grads` also the gradient summed over the pass.
    fn pass(
        &self,
        rows: Option<&[u32]>,
        hyper: Hyper,
        t: u32,
        train: bool,
        want_grads: bool,
    ) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
        let (losses, grads, _) = self.pass_with(rows, hyper, t, train, want_grads, false)?;
        Ok((losses, grads))
    }

    #[allow(clippy::type_complexity)]
    fn pass_with(
        &self,
        rows: Option<&[u32]>,
        hyper: Hyper,
        t: u32,
        train: bool,
        want_grads: bool,
        want_hessian: bool,
    ) -> Result<(Vec<f64>, Option<Vec<f64>>, Option<Vec<f64>>)> {
        let label = "likely mlp pass";
        let queue = &self.ctx.queue;
        let count = self.upload_rows(rows);
        queue.write_buffer(
            &self.state,
            0,
            bytemuck::cast_slice(&[0u32, t, 0, count as u32]),
        );
        queue.write_buffer(&self.hyper, 0, bytemuck::bytes_of(&hyper));
        let steps = count.div_ceil(self.batch);
        let layers = self.network.layers();
        let last = (self.layers - 1) as u32;
        let group = &self.bind_groups[0];
        let offset = |i: u32| [i * DESC_STRIDE as u32];
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        if want_grads {
            encoder.clear_buffer(&self.opt, 0, Some((self.p * 4) as u64));
        }
        let hsum = if want_hessian {
            let at = self.hsum_off.ok_or_else(|| {
                Error::Usage("the GPU reduces Hessians of linear models only".into())
            })?;
            encoder.clear_buffer(&self.work, at * 4, Some((self.p * self.p * 4) as u64));
            Some(at)
        } else {
            None
        };
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: self.timer.as_ref().map(PassTimer::writes),
            });
            let fused = self.fused_steps();
            let row_tiles = (self.batch as u32).div_ceil(TILE);
            let row_groups = (self.batch as u32).div_ceil(256);
            let gather_groups = (self.batch * self.network.inputs).div_ceil(256) as u32;
            for _ in 0..steps {
                if let (true, Some((rows_kernel, step_kernel, plan))) =
                    (train && fused, &self.pipelines.fused)
                {
                    pass.set_bind_group(0, group, &offset(last));
                    pass.set_pipeline(rows_kernel);
                    pass.dispatch_workgroups(plan.workgroups as u32, 1, 1);
                    pass.set_pipeline(step_kernel);
                    pass.dispatch_workgroups(1, 1, 1);
                    continue;
                }
                pass.set_pipeline(&self.pipelines.gather);
                for (c, chunk_group) in self.bind_groups.iter().enumerate() {
                    pass.set_bind_group(0, chunk_group, &offset((self.layers + c) as u32));
                    pass.dispatch_workgroups(gather_groups, 1, 1);
                }
                for (i, l) in layers.iter().enumerate() {
                    pass.set_bind_group(0, group, &offset(i as u32));
                    if direct_product(l.fan_in + 1) {
                        pass.set_pipeline(&self.pipelines.forward_direct);
                        pass.dispatch_workgroups(row_groups, l.fan_out as u32, 1);
                    } else {
                        pass.set_pipeline(&self.pipelines.forward);
                        pass.dispatch_workgroups(row_tiles, (l.fan_out as u32).div_ceil(TILE), 1);
                    }
                }
                pass.set_bind_group(0, group, &offset(last));
                pass.set_pipeline(&self.pipelines.head);
                pass.dispatch_workgroups((self.batch as u32).div_ceil(256), 1, 1);
                pass.set_pipeline(&self.pipelines.reduce_loss);
                pass.dispatch_workgroups(1, 1, 1);
                if train || want_grads {
                    for (i, l) in layers.iter().enumerate().rev() {
                        pass.set_bind_group(0, group, &offset(i as u32));
                        let splits = gradient_splits(self.batch, self.p) as u32;
                        let entries = (l.fan_in + 1) * l.fan_out;
                        if entries <= DIRECT_WEIGHT_GRAD_MAX {
                            pass.set_pipeline(&self.pipelines.weight_grad_direct);
                            pass.dispatch_workgroups((entries as u32).div_ceil(64), splits, 1);
                        } else {
                            pass.set_pipeline(&self.pipelines.weight_grad);
                            pass.dispatch_workgroups(
                                (l.fan_in as u32 + 1).div_ceil(TILE),
                                (l.fan_out as u32).div_ceil(TILE),
                                splits,
                            );
                        }
                        if i == 0 {
                            pass.set_pipeline(&self.pipelines.grad_sum);
                            pass.dispatch_workgroups((self.p as u32).div_ceil(256), 1, 1);
                        } else if direct_product(l.fan_out) {
                            pass.set_pipeline(&self.pipelines.backward_delta_direct);
                            pass.dispatch_workgroups(row_groups, l.fan_in as u32, 1);
                        } else {
                            pass.set_pipeline(&self.pipelines.backward_delta);
                            pass.dispatch_workgroups(
                                row_tiles,
                                (l.fan_in as u32).div_ceil(TILE),
                                1,
                            );
                        }
                    }
                }
                if want_hessian {
                    pass.set_pipeline(&self.pipelines.head_hessian);
                    pass.dispatch_workgroups((self.batch as u32).div_ceil(256), 1, 1);
                    pass.set_pipeline(&self.pipelines.hessian);
                    pass.dispatch_workgroups(
                        ((self.p * self.p) as u32).div_ceil(128),
                        hessian_splits(self.p) as u32,
                        1,
                    );
                    pass.set_pipeline(&self.pipelines.hessian_sum);
                    pass.dispatch_workgroups(((self.p * self.p) as u32).div_ceil(256), 1, 1);
                }
                if train {
                    pass.set_pipeline(&self.pipelines.optimizer_step);
                    pass.dispatch_workgroups((self.p as u32).div_ceil(256), 1, 1);
                    pass.set_pipeline(&self.pipelines.advance);
                } else {
                    pass.set_pipeline(&self.pipelines.next_batch);
                }
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
        encoder.copy_buffer_to_buffer(
            &self.losses,
            0,
            &self.losses_readback,
            0,
            (steps * 4) as u64,
        );
        if want_grads {
            encoder.copy_buffer_to_buffer(
                &self.opt,
                0,
                &self.grads_readback,
                0,
                (self.p * 4) as u64,
            );
        }
        if let Some(at) = hsum {
            encoder.copy_buffer_to_buffer(
                &self.work,
                at * 4,
                &self.hess_readback,
                0,
                (self.p * self.p * 4) as u64,
            );
        }
        if let Some(timer) = &self.timer {
            timer.resolve(&mut encoder);
        }
        self.ctx.queue.submit([encoder.finish()]);
        let losses = read_back(&self.ctx, &self.losses_readback, label)?;
        if let Some(timer) = &self.timer {
            timer.collect(&self.ctx)?;
        }
        let losses = losses[..steps].iter().map(|&v| v as f64).collect();
        let grads = if want_grads {
            Some(
                read_back(&self.ctx, &self.grads_readback, label)?
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
            )
        } else {
            None
        };
        let hessian = if hsum.is_some() {
            Some(
                read_back(&self.ctx, &self.hess_readback, label)?
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
            )
        } else {
            None
        };
        self.ctx.take_errors(label)?;
        Ok((losses, grads, hessian))
    }

    /// NLL, gradient and Hessian (row-major P x P) over all rows, for Newton's method on a
    /// linear model: one pass, one readback.
    pub fn derivatives(&self, params: &[f64]) -> Result<(f64, Vec<f64>, Vec<f64>)> {
        self.set_params(params);
        let hyper = Hyper {
            accumulate: 1,
            ..Hyper::default()
        };
        let (losses, grads, hessian) = self.pass_with(None, hyper, 0, false, true, true)?;
        Ok((
            losses.iter().sum(),
            grads.expect("requested"),
            hessian.expect("requested"),
        ))
    }

    /// Total NLL and gradient over all rows at `params` (full batch, for L-BFGS).
    pub fn nll_and_grad(&self, params: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.set_params(params);
        let hyper = Hyper {
            accumulate: 1,
            ..Hyper::default()
        };
        let (losses, grads) = self.pass(None, hyper, 0, false, true)?;
        Ok((losses.iter().sum(), grads.expect("requested")))
    }

    /// Total NLL over `rows` at the current parameters.
    pub fn nll(&self, rows: &[u32]) -> Result<f64> {
        Ok(self
            .pass(Some(rows), Hyper::default(), 0, false, false)?
            .0
            .iter()
            .sum())
    }

    /// One epoch of optimiser steps over `order`; returns each step's loss sum. `t` is the
    /// number of optimiser steps already taken (Adam's bias correction).
    pub fn train_epoch(&self, order: &[u32], hyper: Hyper, t: u32) -> Result<Vec<f64>> {
        Ok(self.pass(Some(order), hyper, t, true, false)?.0)
    }

    /// Times every later pass's kernels with timestamp queries; false where the adapter has
    /// none.
    pub fn enable_kernel_timing(&mut self) -> bool {
        self.timer = PassTimer::new(&self.ctx, "likely mlp pass");
        self.timer.is_some()
    }

    /// Kernel time of every pass timed so far (timestamp queries).
    pub fn kernel_time(&self) -> Option<KernelTime> {
        self.timer.as_ref().map(PassTimer::total)
    }

    /// Runs training steps fused (two dispatches a step: rows through every layer in registers,
    /// then the optimiser step) or as one dispatch per kernel and layer, where the network has
    /// the fused step (on CPU adapters with nine storage buffers per stage; at most 2048
    /// parameters, layers at most 128 wide, batches at most 16384 rows) and its table one
    /// storage binding. The default is fused wherever the network has it.
    pub fn set_fused_steps(&self, fused: bool) {
        self.fused_steps.set(fused);
    }

    /// Whether training steps run fused.
    pub fn fused_steps(&self) -> bool {
        self.fused_steps.get() && self.pipelines.fused.is_some() && self.bind_groups.len() == 1
    }

    /// Steps per pass over `rows` rows.
    pub fn steps(&self, rows: usize) -> usize {
        rows.div_ceil(self.batch)
    }
}

impl GpuNetwork {
    /// Storage bindings the feature table spans.
    pub fn chunk_count(&self) -> usize {
        self.bind_groups.len()
    }
}

#[cfg(test)]
mod work_area_tests {
    use super::*;
    use crate::family::FamilyName;
    use crate::model::{Activation, Head};

    #[test]
    fn full_batch_steps_fit_the_smallest_binding_for_any_head() {
        // A categorical head of 256 classes has 65 025 per-row Hessian entries: at 65 536 rows
        // a step its layout passes u32 (it wrapped, and the bound check passed a 286 MB work
        // area to a 128 MiB binding).
        for (classes, inputs) in [(2, 1), (64, 3), (180, 1), (256, 1), (256, 7)] {
            let network = Network {
                inputs,
                hidden: Vec::new(),
                activation: Activation::Relu,
                head: Head::new(FamilyName::Categorical, classes, true),
            };
            for n in [1, 300, 6000, 1 << 20] {
                let rows = GpuNetwork::full_batch_rows(&network, n);
                let bytes = 4 * GpuNetwork::work_layout(&network, rows).len;
                assert!(
                    rows >= 1 && rows <= n,
                    "{classes} classes, n {n}: {rows} rows"
                );
                assert!(bytes <= 64 << 20, "{classes} classes, n {n}: {bytes} bytes");
                // Not needlessly small: twice the rows would not fit (or all rows are in).
                let twice = 4 * GpuNetwork::work_layout(&network, 2 * rows).len;
                assert!(
                    rows == n.min(65536) || twice > 64 << 20,
                    "{classes}, {n}: {rows}"
                );
            }
        }
    }
}
