// Lognormal, eta = mu (the mean of ln y), global s = log sigma, l = ln y:
// NLL = l + s + ln(2 pi)/2 + (l - mu)^2 e^(-2 s) / 2.
fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    let inv_var = exp(-2.0 * s);
    let l = log_sample(y);
    let res = l - eta[0];
    out.delta[0] = -res * inv_var;
    out.dglobal = 1.0 - res * res * inv_var;
    out.loss = l + s + HALF_LN_2PI + 0.5 * res * res * inv_var;
    return out;
}

fn head_hessian_at(z: u32, h: u32, y: f32) {
    let w = exp(-2.0 * params[GLOBALS_AT]);
    let r = log_sample(y) - work[z];
    work[h] = w;
    work[h + 1u] = 2.0 * r * w;
    work[h + 2u] = 2.0 * r * w;
    work[h + 3u] = 2.0 * r * r * w;
}
