// Gamma with a log link, eta = ln mu, global s = ln k, t = ln y - eta:
// NLL = [ln Gamma(k) - k ln k + k] + k (e^t - 1 - t) + ln y.
fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    let k = exp(s);
    let ln_y = log_sample(y);
    let t = ln_y - eta[0];
    let excess = expm1_minus(t);
    out.delta[0] = k * (1.0 - exp(t));
    out.dglobal = k * (digamma_minus_log(k) + excess);
    out.loss = gamma_normaliser(k) + k * excess + ln_y;
    return out;
}

fn head_hessian_at(z: u32, h: u32, y: f32) {
    let k = exp(params[GLOBALS_AT]);
    let t = log_sample(y) - work[z];
    let ratio = exp(t);
    work[h] = k * ratio;
    work[h + 1u] = k * (1.0 - ratio);
    work[h + 2u] = k * (1.0 - ratio);
    work[h + 3u] = k * (digamma_minus_log(k) + expm1_minus(t)) + k * (k * trigamma(k) - 1.0);
}
