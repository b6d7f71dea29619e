// Bernoulli, Poisson, exponential: the only sample-dependent part of the NLL is sum x_i
// (the sufficient statistic); the parameter-dependent factors are applied in f64 on the host.
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    (*acc)[0] = (*acc)[0] + x;
}
