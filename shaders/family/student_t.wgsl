// Student's t: r = (x - mu) / sigma, a = r^2 / nu, b = 1 / (1 + a); terms (ln(1 + a), r b,
// a b, b^2, a b^2, r b^2, r a b^2, and r, r^2 for the Gaussian limit) at the kernel parameters
// (mu, 1/sigma, 1/nu). log1p_sample
// is special.wgsl's ln(1 + a) (math64.wgsl's log1p64 in f64), accurate where a is tiny.
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let r = centred(x, kernel_param(0u)) * kernel_value(1u);
    let a = r * r * kernel_value(2u);
    let b = 1.0 / (1.0 + a);
    let ab = a * b;
    let bb = b * b;
    (*acc)[0] = (*acc)[0] + log1p_sample(a);
    (*acc)[1] = (*acc)[1] + r * b;
    (*acc)[2] = (*acc)[2] + ab;
    (*acc)[3] = (*acc)[3] + bb;
    (*acc)[4] = (*acc)[4] + ab * b;
    (*acc)[5] = (*acc)[5] + r * bb;
    (*acc)[6] = (*acc)[6] + r * ab * b;
    (*acc)[7] = (*acc)[7] + r;
    (*acc)[8] = (*acc)[8] + r * r;
}
