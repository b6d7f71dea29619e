// Laplace: d = x - mu; terms (|d|, sign d) with sign 0 = 0. 1/b is applied in f64 on the host.
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let d = centred(x, kernel_param(0u));
    (*acc)[0] = (*acc)[0] + abs(d);
    (*acc)[1] = (*acc)[1] + sign(d);
}
