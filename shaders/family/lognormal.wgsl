// Lognormal: l = ln x, d = l - mu; terms (l, d, d^2), the Gaussian's of ln x and the Jacobian's
// sum. 1/sigma^2 is applied in f64 on the host. log_sample is special.wgsl's accurate f32 log
// (math64.wgsl's log64 in f64).
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let l = log_sample(x);
    let d = centred(l, kernel_param(0u));
    (*acc)[0] = (*acc)[0] + l;
    (*acc)[1] = (*acc)[1] + d;
    (*acc)[2] = (*acc)[2] + d * d;
}
