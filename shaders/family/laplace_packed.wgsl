// Laplace for the f32 reduction, its run's signs packed: the terms of laplace.wgsl (which the
// f64 kernel sums), d = x - mu; (|d|, sign d, [d = 0]). A sample adds 1 above mu, 32 below and
// 1024 at it to one f32, so that the run's three counts (at most RUN = 16 each) are 5-bit
// digits of an exact integer, split once per run by `add_run`: two operations a sample fewer.
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let d = centred(x, kernel_param(0u));
    (*acc)[0] = (*acc)[0] + abs(d);
    (*acc)[1] = (*acc)[1] + select(select(32.0, 1.0, d > 0.0), 1024.0, d == 0.0);
}
fn add_run(acc: ptr<function, array<f32, N_TERMS>>, run: ptr<function, array<f32, N_TERMS>>) {
    (*acc)[0] = (*acc)[0] + (*run)[0];
    let counts = u32((*run)[1]);
    (*acc)[1] = (*acc)[1] + (f32(counts & 31u) - f32((counts >> 5u) & 31u));
    (*acc)[2] = (*acc)[2] + f32(counts >> 10u);
}
