//! Small helpers shared by the CLI and the library.

use serde_json::Value;

/// An f64 as JSON: a number when finite, otherwise the string "NaN", "inf" or "-inf"
/// (JSON has no non-finite numbers, and a silent `null` would hide what happened).
pub fn json_f64(v: f64) -> Value {
    if v.is_finite() {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    } else {
        Value::String(format!("{v}"))
    }
}
