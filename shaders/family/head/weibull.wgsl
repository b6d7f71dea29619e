// Weibull, eta = ln lambda, global s = ln k, t = ln y - eta, z = e^(k t):
// NLL = -s - k t + ln y + z.
fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    let k = exp(s);
    let ln_y = log_sample(y);
    let t = ln_y - eta[0];
    let z = exp(k * t);
    out.delta[0] = k * (1.0 - z);
    out.dglobal = -1.0 + k * t * (z - 1.0);
    out.loss = -s - k * t + ln_y + z;
    return out;
}

fn head_hessian_at(z: u32, h: u32, y: f32) {
    let k = exp(params[GLOBALS_AT]);
    let t = log_sample(y) - work[z];
    let w = exp(k * t);
    work[h] = k * k * w;
    work[h + 1u] = k * (1.0 - w) - k * k * t * w;
    work[h + 2u] = k * (1.0 - w) - k * k * t * w;
    work[h + 3u] = k * t * (w - 1.0) + k * k * t * t * w;
}
