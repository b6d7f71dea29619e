//! Reporting uncertainty: the `--cov/--alpha/--ci` flags, JSON objects keyed like the
//! parameters, and a summary table in the style of statsmodels.

use likely::inference::{CovType, Inference};
use likely::util::json_f64;
use serde_json::{json, Map, Value};

/// `--ci`: Wald intervals (on each parameter's link scale), or profile-likelihood intervals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CiMethod {
    #[default]
    Wald,
    Profile,
}

#[derive(clap::Args, Clone, Debug)]
pub struct InferenceArgs {
    /// Covariance of the estimates: hessian (observed information), opg, or robust (sandwich).
    #[arg(long, value_enum, default_value_t = CovType::Hessian)]
    pub cov: CovType,
    /// 1 - confidence level of the intervals.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Interval method: wald, or profile (constrained re-fits; models with few parameters).
    #[arg(long, value_enum, default_value_t = CiMethod::Wald)]
    pub ci: CiMethod,
}

impl InferenceArgs {
    pub fn validate(&self) -> likely::Result<()> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(likely::Error::Usage(format!(
                "--alpha must be in (0, 1), got {}",
                self.alpha
            )));
        }
        Ok(())
    }
}

/// How estimates map onto JSON: each key takes `count` consecutive estimates (1: a number).
pub type Shape = Vec<(String, usize)>;

/// Maps per-estimate values to JSON keyed like a model's coefficients.
pub type KeyedBy<'a> = &'a dyn Fn(&[f64]) -> Value;

fn keyed(values: impl Iterator<Item = f64>, shape: &Shape) -> Value {
    let mut values = values;
    let mut out = Map::new();
    for (name, count) in shape {
        let taken: Vec<f64> = values.by_ref().take(*count).collect();
        let v = if *count == 1 {
            json_f64(taken[0])
        } else {
            Value::Array(taken.into_iter().map(json_f64).collect())
        };
        out.insert(name.clone(), v);
    }
    Value::Object(out)
}

/// Adds `std_errors`, `ci_low`, `ci_high`, `z`, `p_values`, `llf`, `aic`, `bic`, `cov_type`,
/// `alpha`, `k` and `inference_warnings` to a JSON report.
pub fn add_json(out: &mut Value, inf: &Inference, shape: &Shape, keyed_by: Option<KeyedBy<'_>>) {
    let field = |f: &dyn Fn(&likely::inference::Estimate) -> f64| {
        let values: Vec<f64> = inf.estimates.iter().map(f).collect();
        match keyed_by {
            Some(k) => k(&values),
            None => keyed(values.into_iter(), shape),
        }
    };
    out["std_errors"] = field(&|e| e.se);
    out["ci_low"] = field(&|e| e.ci_low);
    out["ci_high"] = field(&|e| e.ci_high);
    out["z"] = field(&|e| e.z);
    out["p_values"] = field(&|e| e.p_value);
    out["llf"] = json_f64(inf.llf);
    out["aic"] = json_f64(inf.aic);
    out["bic"] = json_f64(inf.bic);
    out["cov_type"] = json!(inf.cov_type);
    out["alpha"] = json!(inf.alpha);
    out["k"] = json!(inf.k);
    out["inference_warnings"] = json!(inf.warnings);
}

/// `v` with `decimals` digits after the point where that shows it (1e-4 <= |v| < 1e7, 0,
/// non-finite values), in scientific notation otherwise, so a tiny standard error is not
/// printed as 0.000000 and a runaway estimate does not print 150 digits.
pub fn fixed_or_sci(v: f64, decimals: usize) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e7).contains(&v.abs()) {
        format!("{v:.decimals$}")
    } else {
        format!("{v:.*e}", decimals.saturating_sub(2).max(2))
    }
}

/// The summary table users know from statsmodels.
pub fn print_table(inf: &Inference, ci_label: &str) {
    print_table_with(inf, ci_label, "z")
}

/// [`print_table`] with the test statistic named `statistic` (`t` for the OLS report).
pub fn print_table_with(inf: &Inference, ci_label: &str, statistic: &str) {
    let lo = format!("[{:.3}", inf.alpha / 2.0);
    let hi = format!("{:.3}]", 1.0 - inf.alpha / 2.0);
    outln!("{}", "=".repeat(90));
    outln!(
        "log-likelihood {}   k = {}   n = {}   AIC {}   BIC {}   covariance: {:?}, intervals: {ci_label}",
        fixed_or_sci(inf.llf, 6),
        inf.k,
        inf.n,
        fixed_or_sci(inf.aic, 4),
        fixed_or_sci(inf.bic, 4),
        inf.cov_type
    );
    outln!("{}", "-".repeat(90));
    outln!(
        "{:<22} {:>13} {:>11} {:>9} {:>8} {:>11} {:>11}",
        "",
        "estimate",
        "std err",
        statistic,
        format!("P>|{statistic}|"),
        lo,
        hi
    );
    for e in &inf.estimates {
        outln!(
            "{:<22} {:>13} {:>11} {:>9} {:>8.4} {:>11} {:>11}",
            e.name,
            fixed_or_sci(e.estimate, 6),
            fixed_or_sci(e.se, 6),
            // A z near 0 is shown as 0.000, as statsmodels does.
            if e.z.abs() < 1e7 {
                format!("{:.3}", e.z)
            } else {
                fixed_or_sci(e.z, 3)
            },
            e.p_value,
            fixed_or_sci(e.ci_low, 5),
            fixed_or_sci(e.ci_high, 5)
        );
    }
    outln!("{}", "=".repeat(90));
    for w in &inf.warnings {
        outln!("warning: {w}");
    }
}
