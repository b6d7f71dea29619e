// Negative binomial NB2 with a log link, eta = ln mu, global s = ln alpha, q = alpha mu:
// NLL = -L(y, alpha) - y (eta - ln(1 + q)) + ln(1 + q) / alpha (+ ln y!, the row's constant),
// with L from negative_binomial_parts.wgsl (prepended).

// ln(1 + q) - q / (1 + q), given ln(1 + q).
fn nb_log1p_less_share(q: f32, log1p_q: f32) -> f32 {
    if (q < 1.0) {
        return nb_log1pmx(q, log1p_q) + q * q / (1.0 + q);
    }
    return log1p_q - q / (1.0 + q);
}

fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    let alpha = exp(s);
    let mu = exp(eta[0]);
    let q = exp(eta[0] + s);
    let log1p_q = nb_log1p(q);
    let parts = rising_parts(y, alpha);
    out.delta[0] = (mu - y) / (1.0 + q);
    out.dglobal = -parts.d1 + y * (q / (1.0 + q)) - nb_log1p_less_share(q, log1p_q) / alpha;
    out.loss = -parts.l - y * (eta[0] - log1p_q) + log1p_q / alpha;
    return out;
}

fn head_hessian_at(z: u32, h: u32, y: f32) {
    let s = params[GLOBALS_AT];
    let alpha = exp(s);
    let mu = exp(work[z]);
    let q = exp(work[z] + s);
    let square = (1.0 + q) * (1.0 + q);
    let cross = q * (y - mu) / square;
    work[h] = (mu + y * q) / square;
    work[h + 1u] = cross;
    work[h + 2u] = cross;
    work[h + 3u] = -rising_parts(y, alpha).d2 + nb_log1p_less_share(q, nb_log1p(q)) / alpha
        + cross;
}
