// Beta: terms (ln x, ln(1 - x)), the sufficient statistics; alpha and beta are applied in f64
// on the host. ln(1 - x) = ln(u) (-x / (u - 1)) with u = 1 - x rounded, which corrects ln u
// for the rounding where x is small; a sample that rounded to 1 in f32 (u = 0) counts as
// 1 - 2^-25, half the spacing below 1 (the f64 passes then use the samples themselves).
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let u: f32 = 1.0 - x;
    var log_complement: f32 = -x;
    if (u <= 0.0) {
        log_complement = log_sample(2.98023223876953125e-8);
    } else if (u != 1.0) {
        log_complement = log_sample(u) * (-x / (u - 1.0));
    }
    (*acc)[0] = (*acc)[0] + log_sample(x);
    (*acc)[1] = (*acc)[1] + log_complement;
}
