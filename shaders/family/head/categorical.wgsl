// Categorical: the outputs are the logits, with a fixed 0 first when REFERENCE; NLL =
// logsumexp(logits) - logit of the label.
fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    out.dglobal = 0.0;
    let label = u32(y);
    var m = select(-3.4e38, 0.0, REFERENCE == 1u);
    for (var k = 0u; k < N_OUT; k = k + 1u) {
        m = max(m, eta[k]);
    }
    var total = select(0.0, exp(-m), REFERENCE == 1u);
    for (var k = 0u; k < N_OUT; k = k + 1u) {
        total = total + exp(eta[k] - m);
    }
    let lse = m + log(total);
    var picked = 0.0;
    for (var k = 0u; k < N_OUT; k = k + 1u) {
        let cls = k + REFERENCE;
        out.delta[k] = exp(eta[k] - lse) - select(0.0, 1.0, cls == label);
        if (cls == label) {
            picked = eta[k];
        }
    }
    out.loss = lse - picked;
    return out;
}

// The softmax's Jacobian: p_a ([a = c] - p_c).
fn head_hessian_at(z: u32, h: u32, y: f32) {
    var m = select(-3.4e38, 0.0, REFERENCE == 1u);
    for (var k = 0u; k < N_OUT; k = k + 1u) {
        m = max(m, work[z + k]);
    }
    var total = select(0.0, exp(-m), REFERENCE == 1u);
    for (var k = 0u; k < N_OUT; k = k + 1u) {
        total = total + exp(work[z + k] - m);
    }
    for (var a = 0u; a < N_OUT; a = a + 1u) {
        let pa = exp(work[z + a] - m) / total;
        for (var c = 0u; c < N_OUT; c = c + 1u) {
            let pc = exp(work[z + c] - m) / total;
            work[h + a * M + c] = pa * (select(0.0, 1.0, a == c) - pc);
        }
    }
}
