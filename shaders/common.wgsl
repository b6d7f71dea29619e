// Helpers shared by every family snippet.
//
// Kernel parameters (e.g. mu) arrive as f32 (hi, lo) pairs with value = hi + lo, accurate to
// about 48 bits. x - mu is then computed as (x - hi) - lo: when x is close to mu the first
// subtraction is exact, so d keeps f32 relative accuracy even where |mu| >> |x - mu|.

fn kernel_param(i: u32) -> vec2<f32> {
    let packed = kernel_params_here[i / 2u];
    if (i % 2u == 0u) {
        return packed.xy;
    }
    return packed.zw;
}

fn centred(x: f32, p: vec2<f32>) -> f32 {
    return (x - p.x) - p.y;
}

// A kernel parameter as one value (a scale or a power, not a location).
fn kernel_value(i: u32) -> f32 {
    let p = kernel_param(i);
    return p.x + p.y;
}

