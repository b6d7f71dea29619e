// Bernoulli: NLL = softplus(eta) - y eta, from e^-|eta| (no overflow at any eta).
fn head_row(eta: array<f64, M>, observed: f64, constant: f64, at: u32) {
    let z = eta[0];
    let e = exp64(-abs(z));
    let q = select(e, 1.0lf, z >= 0.0lf) / (1.0lf + e);
    per_row[at] = max(z, 0.0lf) + log1p64(e) - observed * z;
    per_row[at + 1u] = q - observed;
    per_row[at + 2u] = q * (1.0lf - q);
}
