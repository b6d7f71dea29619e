//! An independent audit of every convergence claim the test suite sees: a fit that reports
//! `converged: true` must be at a local minimum of its objective, which this module checks
//! with nothing but the textbook NLL (per-row log-densities written here, or the families'
//! `log_density`) and the prior: moving any single parameter by a small step, in either
//! direction, must not lower the objective. The step is 1e-3 of the parameter's standard
//! error (from the objective's curvature by central differences), where the objective rises by
//! about 5e-7; an estimate off the optimum by more than about 5e-4 standard errors along any
//! coordinate lowers it on one side. Kinked objectives (absolute errors, L1 priors) are held to
//! the same test with a small relative step.
//!
//! `common::cli::ok_json` runs it on every successful `fit` the CLI tests make; the real-data
//! suite on each of its fits.
#![allow(dead_code)]

use likely::data::{load, load_table, TargetSpec};
use likely::family::FamilyName;
use serde_json::Value;
use std::path::Path;

/// The value of flag `name` in `args`.
fn flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| *a == name)
        .and_then(|i| args.get(i + 1).copied())
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// A prior's penalty: l2:S is sum t^2 / (2 S^2), l1:S is sum |t| / S.
fn penalty(prior: Option<&str>, weights: &[f64]) -> f64 {
    let Some(prior) = prior else { return 0.0 };
    let (kind, scale) = prior.split_once(':').unwrap();
    let scale: f64 = scale.parse().unwrap();
    match kind {
        "l2" => weights.iter().map(|w| w * w).sum::<f64>() / (2.0 * scale * scale),
        _ => weights.iter().map(|w| w.abs()).sum::<f64>() / scale,
    }
}

/// Audits a fit's JSON (from `likely` run with `args`) when it claims convergence.
pub fn audit_fit(args: &[&str], json: &Value) {
    if args.first() != Some(&"fit") || json["converged"] != true {
        return;
    }
    // An exact least-squares fit: sigma is the residuals' rounding, the textbook NLL's own
    // rounding swamps its curvature, and the claim is about the coefficients (NIST's Wampler1
    // holds them to the certified values).
    if json["warnings"].to_string().contains("the fit is exact") {
        return;
    }
    let Some(data) = flag(args, "--data") else {
        return;
    };
    // Large streamed files are held to the claim by their own tests' comparisons.
    if std::fs::metadata(data).map_or(true, |m| m.len() > 16 << 20) {
        return;
    }
    let family = match flag(args, "--family") {
        Some(f) => f,
        None => return,
    };
    let prior = flag(args, "--prior");
    match flag(args, "--model") {
        None => audit_family(args, json, data, family, prior),
        Some("linear") => audit_linear(args, json, data, family, prior),
        // MLPs make no optimality claim.
        Some(_) => {}
    }
}

fn family_name(name: &str) -> FamilyName {
    FamilyName::ALL
        .into_iter()
        .find(|f| f.as_str() == name)
        .unwrap()
}

fn audit_family(args: &[&str], json: &Value, data: &str, family: &str, prior: Option<&str>) {
    let name = family_name(family);
    let dataset = load(Path::new(data), flag(args, "--column"), name).unwrap();
    let classes = match name {
        FamilyName::Categorical => json["params"]["probs"].as_array().unwrap().len(),
        _ => 1,
    };
    let f = name.build(classes);
    let theta: Vec<f64> = f
        .theta_names()
        .iter()
        .map(|k| number(&json["theta"][k]))
        .collect();
    let values = dataset.values;
    // Frequency weights (--weights): each row's log-density counted w times.
    let weights: Vec<f64> = match flag(args, "--weights") {
        Some(column) => load(Path::new(data), Some(column), FamilyName::Gaussian)
            .unwrap()
            .values
            .iter()
            .collect(),
        None => vec![1.0; values.len()],
    };
    // Right-censoring flags (--censored): a censored row contributes ln S(x), written here.
    let censored: Vec<bool> = match flag(args, "--censored") {
        Some(column) => load(Path::new(data), Some(column), FamilyName::Gaussian)
            .unwrap()
            .values
            .iter()
            .map(|c| c == 1.0)
            .collect(),
        None => vec![false; values.len()],
    };
    let objective = |t: &[f64]| -> f64 {
        let natural = f.natural(t);
        -values
            .iter()
            .zip(&weights)
            .zip(&censored)
            .filter(|((_, &w), _)| w > 0.0)
            .map(|((x, &w), &c)| {
                w * if c {
                    log_survival(family, x, &natural)
                } else {
                    f.log_density(x, t)
                }
            })
            .sum::<f64>()
            + penalty(prior, t)
    };
    // Parameters --fix holds are not estimated: the audit moves the others only.
    let natural: Vec<&str> = f.natural(&theta).iter().map(|p| p.name).collect();
    let held: Vec<bool> = natural
        .iter()
        .map(|n| json["fixed"].get(*n).is_some())
        .collect();
    // (One natural parameter per coordinate; a categorical family's probs are one vector.)
    let free: Vec<usize> = (0..theta.len())
        .filter(|&j| natural.len() != theta.len() || !held[j])
        .collect();
    let audited = |t: &[f64]| {
        let mut full = theta.clone();
        free.iter().zip(t).for_each(|(&j, &v)| full[j] = v);
        objective(&full)
    };
    let start: Vec<f64> = free.iter().map(|&j| theta[j]).collect();
    assert_local_minimum(&audited, &start, &format!("{args:?}"));
}

/// ln S(x) = ln P(X > x), from the textbook survival functions of the families that take
/// censored rows, at the natural parameters.
fn log_survival(family: &str, x: f64, natural: &[likely::family::NamedParam]) -> f64 {
    let value = |name: &str| {
        natural
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.values()[0])
            .unwrap()
    };
    let normal_tail = |z: f64| (0.5 * libm::erfc(z / std::f64::consts::SQRT_2)).ln();
    match family {
        "exponential" => -value("rate") * x,
        "weibull" => -(x / value("scale")).powf(value("shape")),
        "lognormal" => normal_tail((x.ln() - value("mu")) / value("sigma")),
        "gaussian" => normal_tail((x - value("mu")) / value("sigma")),
        other => panic!("no survival function for {other} in the audit"),
    }
}

/// A linear model's parameters as the audit perturbs them: per output (one, or K - 1 classes)
/// the coefficients of the features and the intercept, then the head's global (log sigma,
/// log b).
struct Layout {
    features: Vec<String>,
    outputs: Vec<Option<String>>,
    intercept: bool,
    globals: Vec<&'static str>,
}

fn audit_linear(args: &[&str], json: &Value, data: &str, family: &str, prior: Option<&str>) {
    let name = family_name(family);
    let target = flag(args, "--target").unwrap();
    let features: Vec<String> = json["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    // An offset (or an exposure, whose logarithm it is) is read beside the features and
    // added to eta with coefficient 1.
    let offset = ["offset", "exposure"]
        .into_iter()
        .find_map(|k| json[k].as_str().map(|c| (k == "exposure", c.to_string())));
    let mut columns = features.clone();
    if let Some((_, c)) = &offset {
        columns.push(c.clone());
    }
    let table = load_table(
        Path::new(data),
        target,
        Some(&columns),
        TargetSpec::Train {
            allow_labels: name == FamilyName::Categorical,
        },
    )
    .unwrap();
    let width = columns.len();
    let offsets: Vec<f64> = match &offset {
        Some((log, _)) => (0..table.n)
            .map(|i| {
                let v = table.x[i * width + width - 1];
                if *log {
                    v.ln()
                } else {
                    v
                }
            })
            .collect(),
        None => vec![0.0; table.n],
    };
    let x: Vec<f64> = (0..table.n)
        .flat_map(|i| table.x[i * width..i * width + features.len()].to_vec())
        .collect();
    let y = table.y.clone().unwrap();
    let intercept = !args.contains(&"--no-intercept");
    let outputs: Vec<Option<String>> = match name {
        FamilyName::Categorical => json["labels"].as_array().unwrap()[1..]
            .iter()
            .map(|l| Some(l.as_str().unwrap().to_string()))
            .collect(),
        _ => vec![None],
    };
    let globals = match name {
        FamilyName::Gaussian => vec!["sigma"],
        FamilyName::Laplace => vec!["b"],
        FamilyName::Gamma => vec!["shape"],
        FamilyName::Lognormal => vec!["sigma"],
        FamilyName::Weibull => vec!["shape"],
        FamilyName::NegativeBinomial => vec!["alpha"],
        FamilyName::Beta => vec!["phi"],
        FamilyName::StudentT => vec!["sigma", "df"],
        _ => vec![],
    };
    let layout = Layout {
        features,
        outputs,
        intercept,
        globals,
    };
    let mut theta = Vec::new();
    for output in &layout.outputs {
        let coefs = match output {
            Some(class) => &json["coefficients"][class],
            None => &json["coefficients"],
        };
        for f in &layout.features {
            theta.push(number(&coefs[f]));
        }
        if layout.intercept {
            theta.push(number(&coefs["intercept"]));
        }
    }
    for g in &layout.globals {
        theta.push(number(&json[*g]).ln());
    }
    let d = layout.features.len();
    let per_output = d + layout.intercept as usize;
    // The mean at eta through the model's link (the family's default where the fit names
    // none), by the textbook inverse of each link.
    let link = json["link"].as_str().unwrap_or("").to_string();
    let mean_at = |e: f64, default: &str| -> f64 {
        match if link.is_empty() { default } else { &link } {
            "identity" => e,
            "log" => e.exp(),
            "inverse" => 1.0 / e,
            other => panic!("the audit has no mean for link {other}"),
        }
    };
    let objective = |t: &[f64]| -> f64 {
        let eta = |k: usize, row: &[f64]| -> f64 {
            let c = &t[k * per_output..(k + 1) * per_output];
            let mut e = if layout.intercept { c[d] } else { 0.0 };
            for j in 0..d {
                e += c[j] * row[j];
            }
            e
        };
        let mut nll = 0.0;
        for (i, &yi) in y.iter().enumerate() {
            let row = &x[i * d..(i + 1) * d];
            let eta = |k: usize, row: &[f64]| eta(k, row) + offsets[i];
            nll -= match name {
                FamilyName::Bernoulli => {
                    let e = eta(0, row);
                    let z = if yi == 1.0 { e } else { -e };
                    match link.as_str() {
                        // ln Phi(z): P(y = 1) = Phi(e), P(y = 0) = Phi(-e).
                        "probit" => (0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)).ln(),
                        // P(y = 1) = 1 - exp(-e^e).
                        "cloglog" if yi == 1.0 => (-(-e.exp()).exp_m1()).ln(),
                        "cloglog" => -e.exp(),
                        // log sigma(e) or log(1 - sigma(e)), without overflow.
                        _ => -(z.max(0.0) - z) - (-z.abs()).exp().ln_1p(),
                    }
                }
                FamilyName::Poisson => {
                    let mu = mean_at(eta(0, row), "log");
                    yi * mu.ln() - mu - libm::lgamma(yi + 1.0)
                }
                FamilyName::Exponential => {
                    let e = eta(0, row);
                    e - e.exp() * yi
                }
                FamilyName::Gaussian => {
                    let ls = t[t.len() - 1];
                    let r = (yi - mean_at(eta(0, row), "identity")) / ls.exp();
                    -ls - 0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * r * r
                }
                FamilyName::Gamma => {
                    // Mean mu = e^eta, shape k: k ln(k / mu) + (k - 1) ln y - k y / mu
                    // - ln Gamma(k).
                    let k = t[t.len() - 1].exp();
                    let mu = mean_at(eta(0, row), "log");
                    k * (k / mu).ln() + (k - 1.0) * yi.ln() - k * yi / mu - libm::lgamma(k)
                }
                FamilyName::NegativeBinomial => {
                    // NB2 at mu = e^eta, alpha = 1/r: the textbook pmf.
                    let r = (-t[t.len() - 1]).exp();
                    let mu = eta(0, row).exp();
                    libm::lgamma(yi + r) - libm::lgamma(r) - libm::lgamma(yi + 1.0)
                        + r * (r / (r + mu)).ln()
                        + yi * (mu / (r + mu)).ln()
                }
                FamilyName::Beta => {
                    // Mean mu = 1 / (1 + e^-eta), precision phi: the textbook density at
                    // a = mu phi, b = (1 - mu) phi.
                    let phi = t[t.len() - 1].exp();
                    let mu = 1.0 / (1.0 + (-eta(0, row)).exp());
                    let (a, b) = (mu * phi, (1.0 - mu) * phi);
                    libm::lgamma(phi) - libm::lgamma(a) - libm::lgamma(b)
                        + (a - 1.0) * yi.ln()
                        + (b - 1.0) * (1.0 - yi).ln()
                }
                FamilyName::Lognormal => {
                    // ln y ~ N(eta, sigma^2), with the Jacobian -ln y.
                    let ls = t[t.len() - 1];
                    let r = (yi.ln() - eta(0, row)) / ls.exp();
                    -yi.ln() - ls - 0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * r * r
                }
                FamilyName::Weibull => {
                    // Scale lambda = e^eta, shape k: ln k - k ln lambda + (k - 1) ln y
                    // - (y / lambda)^k.
                    let k = t[t.len() - 1].exp();
                    let e = eta(0, row);
                    k.ln() - k * e + (k - 1.0) * yi.ln() - (k * (yi.ln() - e)).exp()
                }
                FamilyName::StudentT => {
                    // Location eta, scale sigma, df nu: the textbook density.
                    let (sigma, nu) = (t[t.len() - 2].exp(), t[t.len() - 1].exp());
                    let r = (yi - eta(0, row)) / sigma;
                    libm::lgamma(0.5 * (nu + 1.0))
                        - libm::lgamma(0.5 * nu)
                        - 0.5 * (nu * std::f64::consts::PI).ln()
                        - sigma.ln()
                        - 0.5 * (nu + 1.0) * (r * r / nu).ln_1p()
                }
                FamilyName::Laplace => {
                    let lb = t[t.len() - 1];
                    -(2.0f64).ln() - lb - (yi - eta(0, row)).abs() / lb.exp()
                }
                FamilyName::Categorical => {
                    let logits: Vec<f64> = std::iter::once(0.0)
                        .chain((0..layout.outputs.len()).map(|k| eta(k, row)))
                        .collect();
                    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + logits.iter().map(|z| (z - m).exp()).sum::<f64>().ln();
                    logits[yi as usize] - lse
                }
            };
        }
        // The prior acts on the weights only, never on intercepts or the head's global.
        let weights: Vec<f64> = (0..layout.outputs.len())
            .flat_map(|k| t[k * per_output..k * per_output + d].to_vec())
            .collect();
        nll + penalty(prior, &weights)
    };
    // A global held by --fix is not estimated: the audit moves the other coordinates only.
    let held = json["fixed"].is_object().then(|| theta.pop().unwrap());
    let audited = |t: &[f64]| match held {
        Some(g) => objective(&[t, &[g]].concat()),
        None => objective(t),
    };
    assert_local_minimum(&audited, &theta, &format!("{args:?}"));
}

/// Moving any one coordinate by a small step either way must not lower `f` (beyond its
/// rounding): the estimate is at a local minimum, to about 5e-4 standard errors (less
/// finely where the textbook objective's own rounding is larger: see below).
pub fn assert_local_minimum(f: &dyn Fn(&[f64]) -> f64, theta: &[f64], what: &str) {
    let f0 = f(theta);
    assert!(f0.is_finite(), "{what}: objective {f0} at the estimate");
    // The objective's rounding, measured: moves of a few ulps change f by far less than its
    // rounding, so what they change it by is that rounding. Row log-densities that are small
    // differences of large terms (a Poisson mean of 1e6: y ln lambda and ln y! of 1e7 per
    // row) make it much larger than 1e-13 |f|.
    let mut noise = 0.0f64;
    for k in 1..=4 {
        let nudged: Vec<f64> = theta
            .iter()
            .enumerate()
            .map(|(j, t)| t + t.abs().max(1e-300) * f64::EPSILON * (2 * k + j % 3) as f64)
            .collect();
        noise = noise.max((f(&nudged) - f0).abs());
    }
    let tolerance = (1e-13 * f0.abs().max(1.0)).max(4.0 * noise);
    // The rise a step should show: 5e-7 (a step of 1e-3 standard errors), or well above the
    // rounding.
    let rise = (5e-7f64).max(40.0 * noise);
    // Every coordinate of a model of modest size; 256 spread evenly over a larger one (a
    // categorical family of 70000 classes would cost 70000^2 log-density terms).
    let p = theta.len();
    let coordinates: Vec<usize> = if p <= 256 {
        (0..p).collect()
    } else {
        (0..256).map(|i| i * (p - 1) / 255).collect()
    };
    for j in coordinates {
        let at = |delta: f64| {
            let mut t = theta.to_vec();
            t[j] += delta;
            f(&t)
        };
        // The curvature by central differences, for a step of 1e-3 standard errors.
        let h = 1e-4 * theta[j].abs().max(1e-3);
        let curvature = (at(h) - 2.0 * f0 + at(-h)) / (h * h);
        let relative = 1e-7 * theta[j].abs().max(1e-6);
        let step = if curvature > 0.0 && curvature.is_finite() {
            let s = (2.0 * rise / curvature).sqrt();
            if s < 1e-2 * theta[j].abs().max(1.0) {
                s
            } else {
                relative
            }
        } else {
            relative
        };
        for delta in [step, -step] {
            let f1 = at(delta);
            assert!(
                f1 >= f0 - tolerance,
                "{what}: the estimate is not a minimum along coordinate {j} (theta = {}): \
                 the objective falls from {f0} to {f1} with a step of {delta:e}",
                theta[j]
            );
        }
    }
}
