// Poisson (log link): NLL = exp(eta) - y eta + ln y!.
fn head_row(eta: array<f64, M>, observed: f64, constant: f64, at: u32) {
    let rate = exp64(eta[0]);
    per_row[at] = rate - observed * eta[0] + constant;
    per_row[at + 1u] = rate - observed;
    per_row[at + 2u] = rate;
}
