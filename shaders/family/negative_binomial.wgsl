// Negative binomial: terms (y, y^2, L, L', L'') at the kernel parameter alpha
// (negative_binomial_parts.wgsl, prepended); mu and alpha are applied in f64 on the host.
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let parts = rising_parts(x, kernel_value(0u));
    (*acc)[0] = (*acc)[0] + x;
    (*acc)[1] = (*acc)[1] + x * x;
    (*acc)[2] = (*acc)[2] + parts.l;
    (*acc)[3] = (*acc)[3] + parts.d1;
    (*acc)[4] = (*acc)[4] + parts.d2;
}
