// Laplace: d = x - mu; terms (|d|, sign d, [d = 0]) with sign 0 = 0. 1/b is applied in f64 on
// the host; the count of samples at mu decides the subgradient test there.
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let d = centred(x, kernel_param(0u));
    (*acc)[0] = (*acc)[0] + abs(d);
    (*acc)[1] = (*acc)[1] + sign(d);
    (*acc)[2] = (*acc)[2] + f32(d == 0.0);
}
