// Bernoulli, eta = logit p: NLL = softplus(eta) - y eta.
fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    out.dglobal = 0.0;
    out.delta[0] = 1.0 / (1.0 + exp(-eta[0])) - y;
    out.loss = softplus(eta[0]) - y * eta[0];
    return out;
}

fn head_hessian_at(z: u32, h: u32, y: f32) {
    let p = 1.0 / (1.0 + exp(-work[z]));
    work[h] = p * (1.0 - p);
}
