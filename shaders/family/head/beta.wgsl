// Beta regression, eta = logit mu, global s = ln phi, a = mu phi, b = (1 - mu) phi
// (src/family/beta.rs derives it): with G = gamma_normaliser, D = digamma_minus_log,
// NLL = G(a) + G(b) - G(phi) - a ln(y / mu) - b ln((1 - y) / (1 - mu)) + ln y + ln(1 - y).
struct BetaRow {
    mu: f32,
    phi: f32,
    a: f32,
    b: f32,
    log_ratio: f32,       // ln(y / mu)
    log_ratio_other: f32, // ln((1 - y) / (1 - mu))
    ln_y: f32,
    ln_z: f32,
}

fn beta_row(eta: f32, y: f32, s: f32) -> BetaRow {
    var r: BetaRow;
    r.phi = exp(s);
    r.mu = 1.0 / (1.0 + exp(-eta));
    r.a = r.mu * r.phi;
    r.b = (1.0 - r.mu) * r.phi;
    r.ln_y = log_sample(y);
    r.ln_z = log_sample(1.0 - y);
    r.log_ratio = r.ln_y + softplus(-eta);
    r.log_ratio_other = r.ln_z + softplus(eta);
    return r;
}

// dNLL/dlog phi.
fn beta_d_phi(r: BetaRow) -> f32 {
    return r.phi * (r.mu * digamma_minus_log(r.a) + (1.0 - r.mu) * digamma_minus_log(r.b)
        - digamma_minus_log(r.phi) - r.mu * r.log_ratio - (1.0 - r.mu) * r.log_ratio_other);
}

fn head_eval(eta: array<f32, N_OUT>, y: f32, s: f32) -> HeadRow {
    var out: HeadRow;
    let r = beta_row(eta[0], y, s);
    let residual = digamma_minus_log(r.a) - digamma_minus_log(r.b) + eta[0] - (r.ln_y - r.ln_z);
    out.delta[0] = r.mu * (1.0 - r.mu) * r.phi * residual;
    out.dglobal = beta_d_phi(r);
    out.loss = gamma_normaliser(r.a) + gamma_normaliser(r.b) - gamma_normaliser(r.phi)
        - r.a * r.log_ratio - r.b * r.log_ratio_other + r.ln_y + r.ln_z;
    return out;
}

fn head_hessian_at(z: u32, h: u32, y: f32) {
    let eta = work[z];
    let r = beta_row(eta, y, params[GLOBALS_AT]);
    let residual = digamma_minus_log(r.a) - digamma_minus_log(r.b) + eta - (r.ln_y - r.ln_z);
    let ta = trigamma(r.a);
    let tb = trigamma(r.b);
    let w = r.mu * (1.0 - r.mu);
    work[h] = w * (1.0 - 2.0 * r.mu) * r.phi * residual + w * w * r.phi * r.phi * (ta + tb);
    let cross = w * (r.phi * residual + r.phi * r.phi * (r.mu * ta - (1.0 - r.mu) * tb));
    work[h + 1u] = cross;
    work[h + 2u] = cross;
    work[h + 3u] = beta_d_phi(r) + r.phi * r.phi
        * (r.mu * r.mu * ta + (1.0 - r.mu) * (1.0 - r.mu) * tb - trigamma(r.phi));
}
