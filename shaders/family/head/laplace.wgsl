// Laplace, eta = mu, global s = log b: NLL = ln 2 + s + |y - mu| e^(-s).
fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    let inv_b = exp(-s);
    let res = y - eta[0];
    out.delta[0] = -sign(res) * inv_b;
    out.dglobal = 1.0 - abs(res) * inv_b;
    out.loss = 0.6931471806 + s + abs(res) * inv_b;
    return out;
}

// Not twice differentiable: the host refuses Newton's method for this head.
fn head_hessian_at(z: u32, h: u32, y: f32) {
    for (var e = 0u; e < 4u; e = e + 1u) {
        work[h + e] = 0.0;
    }
}
