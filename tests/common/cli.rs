//! Running the `likely` binary from tests.

use serde_json::Value;
use std::process::{Command, Output};

pub fn likely(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_likely"))
        .args(args)
        .output()
        .expect("run likely")
}

/// Runs a command that must succeed and print one JSON object.
pub fn ok_json(args: &[&str]) -> Value {
    let out = likely(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = serde_json::from_slice(&out.stdout).expect("one JSON object");
    // Every convergence claim the suite sees is audited independently.
    super::audit::audit_fit(args, &json);
    json
}

/// Runs a command that must fail with exit code 1 (or 2 for usage errors), without a panic,
/// and with `needle` in its message.
pub fn fails_with(args: &[&str], needle: &str) {
    let out = likely(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(1) | Some(2)),
        "{args:?}: exit {code:?}, stderr {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected '{needle}' in: {stderr}"
    );
}

/// `fit --family FAMILY --data DATA` followed by `extra`.
pub fn family_fit<'a>(family: &'a str, data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["fit", "--family", family, "--data", data];
    args.extend_from_slice(extra);
    args
}

/// `fit --model MODEL --family FAMILY --data DATA --target TARGET` followed by `extra`.
pub fn model_fit<'a>(
    model: &'a str,
    family: &'a str,
    data: &'a str,
    target: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "fit", "--model", model, "--family", family, "--data", data, "--target", target,
    ];
    args.extend_from_slice(extra);
    args
}
