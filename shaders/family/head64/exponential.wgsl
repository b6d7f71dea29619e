// Exponential (eta = log rate): NLL = rate y - eta.
fn head_row(eta: array<f64, M>, observed: f64, constant: f64, at: u32) {
    let rate_y = exp64(eta[0]) * observed;
    per_row[at] = rate_y - eta[0] + constant;
    per_row[at + 1u] = rate_y - 1.0lf;
    per_row[at + 2u] = rate_y;
}
