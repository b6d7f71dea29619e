// Categorical: the terms are the class counts (one-hot of the label, validated on the host).
// `count_class` is generated per kernel (see shader::count_class).
fn accumulate(x: f32, acc: ptr<function, array<f32, N_TERMS>>) {
    count_class(u32(x), acc);
}
