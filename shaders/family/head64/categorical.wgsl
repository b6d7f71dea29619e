// Categorical: softmax over the logits (the reference class's fixed at 0); the curvatures are
// p_a [a = c] - p_a p_c.
fn head_row(eta: array<f64, M>, observed: f64, constant: f64, at: u32) {
    var top = select(-1.0e308lf, 0.0lf, REFERENCE == 1u);
    for (var o = 0u; o < M; o = o + 1u) {
        top = max(top, eta[o]);
    }
    var total = select(0.0lf, exp64(-top), REFERENCE == 1u);
    var prob: array<f64, M>;
    for (var o = 0u; o < M; o = o + 1u) {
        prob[o] = exp64(eta[o] - top);
        total = total + prob[o];
    }
    let observed_class = u32(observed);
    var z_y = 0.0lf;
    for (var o = 0u; o < M; o = o + 1u) {
        prob[o] = prob[o] / total;
        let hit = observed_class == o + REFERENCE;
        per_row[at + 1u + o] = prob[o] - select(0.0lf, 1.0lf, hit);
        if (hit) {
            z_y = eta[o];
        }
    }
    per_row[at] = top + log64(total) - z_y;
    var w = at + 1u + M;
    for (var a = 0u; a < M; a = a + 1u) {
        for (var c = a; c < M; c = c + 1u) {
            per_row[w] = select(0.0lf, prob[a], a == c) - prob[a] * prob[c];
            w = w + 1u;
        }
    }
}
