//! special.wgsl's f32 functions against their f64 twins in src/special.rs, at the arguments
//! the families meet: tiny and huge shapes, the recurrence's edge at 10, samples near 1 (where
//! WGSL's own `log` is held only to an absolute 2^-21) and at f32's ends, residuals on both
//! sides of expm1_minus's series switch at |t| = 0.3.
//!
//! Bounds, in units of f32's epsilon (2^-23) times the scale an f32 evaluation can resolve:
//! log_sample a few ulp of ln x itself; the gamma-function differences relative to their
//! value from 10 on (the point of writing them as series there), and below 10 to the size of
//! the parts they are formed from (ln Gamma(k), k ln k, the recurrence's sum); expm1_minus
//! relative to its value, where WGSL's `exp` (held to 3 + 2|t| ulp) enters through e^t.

mod common;

use likely::gpu::special::{evaluate, FUNCTIONS};
use likely::special::{digamma_minus_ln, gamma_normaliser, ln_gamma, log1pmx, trigamma};

const EPS: f64 = f32::EPSILON as f64;

fn expm1_minus(t: f64) -> f64 {
    -log1pmx(t.exp_m1())
}

#[test]
fn special_functions_match_their_f64_twins() {
    let ctx = gpu_or_skip!();
    let mut arguments: Vec<f32> = vec![
        1e-30,
        1e-8,
        1e-3,
        0.01,
        0.1,
        0.25,
        0.5,
        std::f32::consts::FRAC_1_SQRT_2,
        0.9,
        0.999,
        0.9999999,
        1.0,
        1.0000001,
        1.001,
        1.1,
        std::f32::consts::SQRT_2,
        1.5,
        2.0,
        3.0,
        9.75,
        9.999999,
        10.0,
        10.000001,
        12.5,
        123.5,
        1e3,
        1e5,
        1e6,
        3e7,
        1e12,
        1e20,
        3e38,
    ];
    // Residuals t for expm1_minus on both sides of its series' switch (and the samples'
    // range again for the others: their checks skip what is outside their domain).
    arguments.extend([
        -20.0f32,
        -3.0,
        -0.3,
        -0.29999998,
        -0.1,
        -1e-3,
        -1e-6,
        0.0,
        1e-6,
        1e-3,
        0.1,
        0.29999998,
        0.3,
        3.0,
        20.0,
    ]);
    let values = evaluate(ctx, &arguments).expect("the special-function kernel runs");
    assert_eq!(values.len(), arguments.len());
    let mut checked = [0usize; 5];
    for (&x32, got) in arguments.iter().zip(&values) {
        let x = x32 as f64;
        let mut check = |f: usize, want: f64, scale: f64, ulps: f64| {
            // A value beyond f32's range (trigamma(1e-30) = 1e60) has no f32 to compare.
            if want.abs() > f32::MAX as f64 {
                return;
            }
            let have = got[f] as f64;
            // f32 underflows below its smallest normal (t^2 / 2 at t = 1e-30).
            let bound = ulps * EPS * scale + f32::MIN_POSITIVE as f64;
            assert!(
                (have - want).abs() <= bound,
                "{}({x:e}) = {have:e} on the GPU, {want:e} in f64: off by {:.1e}, bound {bound:.1e}",
                FUNCTIONS[f],
                (have - want).abs()
            );
            checked[f] += 1;
        };
        if x > 0.0 {
            let ln = x.ln();
            check(0, ln, ln.abs().max(EPS), 4.0);
            if x <= 1e20 {
                // Below 10: the parts ln Gamma(k), k ln k and k each carry an f32 rounding
                // (WGSL's log: 2^-21 absolute near 1, 3 ulp elsewhere).
                let normaliser = gamma_normaliser(x);
                let parts = if x < 10.0 {
                    ln_gamma(x).abs() + (x * ln).abs() + x + 1.0
                } else {
                    normaliser.abs() + 1.0
                };
                check(1, normaliser, parts, 32.0);
                let digamma = digamma_minus_ln(x);
                let parts = if x < 10.0 {
                    digamma.abs() + ln.abs() + 1.0 / x + 3.0
                } else {
                    digamma.abs()
                };
                check(2, digamma, parts, 32.0);
                let tri = trigamma(x);
                check(3, tri, tri, 32.0);
            }
        }
        if x.abs() <= 20.0 {
            let want = expm1_minus(x);
            let exp_error = if x.abs() >= 0.3 {
                (3.0 + 2.0 * x.abs()) * (x.exp() + 1.0 + x.abs())
            } else {
                0.0
            };
            check(4, want, want.abs() + exp_error, 8.0);
        }
    }
    // Every function was held at a spread of arguments.
    assert!(checked.iter().all(|&c| c >= 10), "{checked:?}");
}
