// Gamma: terms (ln x, x), the sufficient statistics; the shape and rate are applied in f64 on
// the host. log_sample is common.wgsl's accurate f32 log (math64.wgsl's log64 in f64).
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    (*acc)[0] = (*acc)[0] + log_sample(x);
    (*acc)[1] = (*acc)[1] + x;
}
