//! Shared test helpers: one GPU context per test binary, and the skip/require policy.
#![allow(dead_code)]

pub mod cli;

use likely::gpu::{AdapterSelector, GpuContext};
use std::sync::OnceLock;

/// The GPU context for this test binary, or `None` (with a loud message) when there is no
/// adapter. With `LIKELY_REQUIRE_GPU=1` (CI) a missing adapter fails the test instead.
pub fn gpu() -> Option<&'static GpuContext> {
    static CONTEXT: OnceLock<Option<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| match GpuContext::new(&AdapterSelector::default()) {
            Ok(ctx) => Some(ctx),
            Err(e) => {
                if std::env::var("LIKELY_REQUIRE_GPU").as_deref() == Ok("1") {
                    panic!("LIKELY_REQUIRE_GPU=1 but no GPU adapter is usable: {e}");
                }
                eprintln!("\n!!!!!!!! SKIPPING GPU TESTS: no GPU adapter ({e}) !!!!!!!!\n");
                None
            }
        })
        .as_ref()
}

/// Unwraps the GPU context or returns from the test after the skip message.
#[macro_export]
macro_rules! gpu_or_skip {
    () => {
        match common::gpu() {
            Some(ctx) => ctx,
            None => {
                eprintln!("SKIPPED: {} needs a GPU adapter", module_path!());
                return;
            }
        }
    };
}
