// Gaussian: d = x - mu; terms (d, d^2). 1/sigma^2 is applied in f64 on the host.
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let d = centred(x, kernel_param(0u));
    (*acc)[0] = (*acc)[0] + d;
    (*acc)[1] = (*acc)[1] + d * d;
}
