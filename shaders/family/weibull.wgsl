// Weibull: u = ln(x / lambda) = ln x - log lambda, z = e^(k u) = (x / lambda)^k; terms (u, z,
// z u, z u^2), at the kernel parameters (k, log lambda). log_sample is special.wgsl's accurate
// f32 log (math64.wgsl's log64 in f64).
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let u = centred(log_sample(x), kernel_param(1u));
    let z = exp_term(kernel_value(0u) * u);
    let zu = z * u;
    (*acc)[0] = (*acc)[0] + u;
    (*acc)[1] = (*acc)[1] + z;
    (*acc)[2] = (*acc)[2] + zu;
    (*acc)[3] = (*acc)[3] + zu * u;
}
