// Exponential, eta = log rate: NLL = e^eta y - eta.
fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    out.dglobal = 0.0;
    let rate = exp(eta[0]);
    out.delta[0] = rate * y - 1.0;
    out.loss = rate * y - eta[0];
    return out;
}

fn head_hessian_at(z: u32, h: u32, y: f32) {
    work[h] = exp(work[z]) * y;
}
