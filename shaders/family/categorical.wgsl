// Categorical: the terms are the class counts (one-hot of the label, validated on the host).
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    let k = u32(x);
    (*acc)[k] = (*acc)[k] + 1.0;
}
