//! Simulation studies that make the asymptotics visible: for each sample size, fit many
//! simulated datasets from known parameters and compare the estimates' bias, spread and
//! interval coverage with the Cramer-Rao bound and with the reported standard errors.

use crate::engine::{Backend, Engine};
use crate::error::{Error, Result};
use crate::family::Family;
use crate::fit::{fit, FitOptions};
use crate::gpu::AdapterSelector;
use crate::inference::{for_family, CovType};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;

/// One row of the study: a sample size and a natural parameter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StudyRow {
    pub n: usize,
    pub param: String,
    #[serde(rename = "true")]
    pub truth: f64,
    pub mean: f64,
    pub bias: f64,
    pub rmse: f64,
    /// sqrt(n) * rmse, to compare with `crlb_sd`.
    pub sqrt_n_rmse: f64,
    /// The Cramer-Rao bound on the asymptotic sd of sqrt(n) (estimate - truth).
    pub crlb_sd: f64,
    /// Mean of the reported standard errors.
    pub mean_se: f64,
    /// Standard deviation of the estimates across replications.
    pub sd: f64,
    /// Fraction of replications whose (1 - alpha) interval contains the truth.
    pub coverage: f64,
    /// Replications that produced an estimate (degenerate samples are skipped and counted).
    pub reps: usize,
    pub failed: usize,
    /// The estimates themselves, for plots.
    #[serde(skip)]
    pub estimates: Vec<f64>,
}

/// Parses `k=v,...` natural parameters into theta (vector parameters as `probs=0.2:0.3:0.5`).
pub fn parse_params(family: &dyn Family, text: &str) -> Result<Vec<f64>> {
    let template = family.natural(&family.initial_theta(&crate::family::Summary {
        n: 1,
        min: 0.0,
        max: 1.0,
    }));
    let mut given: std::collections::HashMap<String, Vec<f64>> = std::collections::HashMap::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--params: '{part}' is not NAME=VALUE")))?;
        let values: Vec<f64> = v
            .split(':')
            .map(|x| {
                x.trim()
                    .parse::<f64>()
                    .map_err(|_| Error::Usage(format!("--params: '{x}' is not a number")))
            })
            .collect::<Result<_>>()?;
        given.insert(k.trim().to_string(), values);
    }
    let links = family.links();
    let mut theta = Vec::new();
    for (param, link) in template.iter().zip(links) {
        let values = given.remove(param.name).ok_or_else(|| {
            let names: Vec<&str> = template.iter().map(|p| p.name).collect();
            Error::Usage(format!(
                "--params needs {} for the {} family",
                names.join(", "),
                family.name()
            ))
        })?;
        if values.len() != param.value.values().len() {
            return Err(Error::Usage(format!(
                "--params {}: expected {} values",
                param.name,
                param.value.values().len()
            )));
        }
        for v in &values {
            let g = link.forward(*v);
            if !g.is_finite() {
                return Err(Error::Usage(format!(
                    "--params {}={v} is outside its support",
                    param.name
                )));
            }
            theta.push(g);
        }
        if param.name == "probs" {
            let sum: f64 = values.iter().sum();
            if (sum - 1.0).abs() > 1e-9 {
                return Err(Error::Usage(format!(
                    "--params probs must sum to 1, got {sum}"
                )));
            }
            // Softmax logits: log p.
            theta.truncate(theta.len() - values.len());
            theta.extend(values.iter().map(|p| p.ln()));
        }
    }
    if let Some(k) = given.keys().next() {
        return Err(Error::Usage(format!(
            "--params: unknown parameter '{k}' for the {} family",
            family.name()
        )));
    }
    Ok(theta)
}

/// Runs the study; `progress(n, rep)` is called after each fit.
#[allow(clippy::too_many_arguments)]
pub fn run(
    family: &dyn Family,
    theta: &[f64],
    sizes: &[usize],
    reps: usize,
    seed: u64,
    alpha: f64,
    backend: Backend,
    selector: &AdapterSelector,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<StudyRow>> {
    let truth: Vec<f64> = family
        .natural(theta)
        .iter()
        .flat_map(|p| p.value.values())
        .collect();
    let crlb = family.crlb_sd(theta);
    // One device for the whole study; each dataset is uploaded to it once.
    let gpu = match backend {
        Backend::Cpu => None,
        Backend::Gpu => Some(crate::gpu::GpuContext::new(selector)?),
        Backend::Auto => crate::gpu::context::best_is_hardware(selector)
            .then(|| crate::gpu::GpuContext::new(selector))
            .transpose()?,
    };
    let mut rows = Vec::new();
    for &n in sizes {
        let mut estimates: Vec<Vec<f64>> = vec![Vec::new(); truth.len()];
        let mut ses: Vec<Vec<f64>> = vec![Vec::new(); truth.len()];
        let mut covered = vec![0usize; truth.len()];
        let mut failed = 0;
        for rep in 0..reps {
            let mut rng = StdRng::seed_from_u64(
                seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ rep as u64,
            );
            let data: Arc<[f64]> = family.sample(theta, n, &mut rng).into();
            let degenerate = family
                .degenerate(&crate::family::Summary::of(&data))
                .is_some();
            crate::engine::validate_support(family, &data)?;
            let mut engine: Box<dyn Engine> = match &gpu {
                Some(ctx) => Box::new(crate::engine::GpuEngine::new(
                    ctx,
                    crate::family::rebuild(family),
                    &data,
                )?),
                None => Box::new(crate::engine::CpuEngine::new(
                    crate::family::rebuild(family),
                    data.clone(),
                )),
            };
            let result = fit(engine.as_mut(), &FitOptions::default());
            let result = match result {
                Ok(r) if r.converged && !degenerate => r,
                _ => {
                    failed += 1;
                    progress(n, rep);
                    continue;
                }
            };
            let inference = for_family(
                engine.as_mut(),
                &result.theta,
                result.nll,
                &data,
                None,
                CovType::Hessian,
                alpha,
            )?;
            for (i, e) in inference.estimates.iter().enumerate() {
                estimates[i].push(e.estimate);
                ses[i].push(e.se);
                if e.ci_low <= truth[i] && truth[i] <= e.ci_high {
                    covered[i] += 1;
                }
            }
            progress(n, rep);
        }
        let names: Vec<String> = family
            .natural(theta)
            .iter()
            .flat_map(|p| {
                let count = p.value.values().len();
                (0..count).map(move |k| {
                    if count == 1 {
                        p.name.to_string()
                    } else {
                        format!("{}[{k}]", p.name)
                    }
                })
            })
            .collect();
        for i in 0..truth.len() {
            let m = estimates[i].len().max(1) as f64;
            let mean = estimates[i].iter().sum::<f64>() / m;
            let mse = estimates[i]
                .iter()
                .map(|e| (e - truth[i]).powi(2))
                .sum::<f64>()
                / m;
            let var =
                estimates[i].iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (m - 1.0).max(1.0);
            let finite_se: Vec<f64> = ses[i].iter().copied().filter(|s| s.is_finite()).collect();
            rows.push(StudyRow {
                n,
                param: names[i].clone(),
                truth: truth[i],
                mean,
                bias: mean - truth[i],
                rmse: mse.sqrt(),
                sqrt_n_rmse: (n as f64 * mse).sqrt(),
                crlb_sd: crlb[i],
                mean_se: finite_se.iter().sum::<f64>() / finite_se.len().max(1) as f64,
                sd: var.sqrt(),
                coverage: covered[i] as f64 / m,
                reps: estimates[i].len(),
                failed,
                estimates: estimates[i].clone(),
            });
        }
    }
    Ok(rows)
}

/// An SVG of each parameter's estimates minus the truth against n (log scale), with the
/// Cramer-Rao band +- z crlb_sd / sqrt(n) beside them.
pub fn svg(rows: &[StudyRow], alpha: f64) -> String {
    let z = crate::inference::normal_quantile_two_sided(alpha);
    let mut params: Vec<&str> = rows.iter().map(|r| r.param.as_str()).collect();
    params.dedup();
    params.sort();
    params.dedup();
    let (w, h, pad) = (520.0, 300.0, 50.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        w,
        h * params.len() as f64
    );
    for (pi, param) in params.iter().enumerate() {
        let sel: Vec<&StudyRow> = rows.iter().filter(|r| r.param == *param).collect();
        let top = pi as f64 * h;
        let ns: Vec<f64> = sel.iter().map(|r| (r.n as f64).log10()).collect();
        let (x0, x1) = (
            ns.iter().cloned().fold(f64::INFINITY, f64::min) - 0.3,
            ns.iter().cloned().fold(f64::NEG_INFINITY, f64::max) + 0.3,
        );
        let spread = sel
            .iter()
            .flat_map(|r| {
                r.estimates
                    .iter()
                    .map(move |e| (e - r.truth).abs())
                    .chain(std::iter::once(z * r.crlb_sd / (r.n as f64).sqrt()))
            })
            .fold(1e-12, f64::max);
        let sx = |v: f64| pad + (v - x0) / (x1 - x0) * (w - 2.0 * pad);
        let sy = |v: f64| top + h / 2.0 - v / spread * (h / 2.0 - pad);
        out += &format!("<text x=\"{}\" y=\"{}\">{param}: estimate - truth vs n; band: +-{z:.2} CRLB sd / sqrt(n)</text>\n", pad, top + 20.0);
        out += &format!(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>\n",
            pad,
            sy(0.0),
            w - pad,
            sy(0.0)
        );
        let band: Vec<(f64, f64)> = sel
            .iter()
            .map(|r| ((r.n as f64).log10(), z * r.crlb_sd / (r.n as f64).sqrt()))
            .collect();
        for sign in [1.0, -1.0] {
            let pts: Vec<String> = band
                .iter()
                .map(|(x, b)| format!("{:.1},{:.1}", sx(*x), sy(sign * b)))
                .collect();
            out += &format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#d33\" stroke-width=\"2\"/>\n",
                pts.join(" ")
            );
        }
        for r in &sel {
            let x = (r.n as f64).log10();
            for (k, e) in r.estimates.iter().enumerate() {
                let jitter = ((k * 7919) % 100) as f64 / 100.0 * 0.16 - 0.08;
                out += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.5\" fill=\"#36c\" fill-opacity=\"0.4\"/>\n", sx(x + jitter), sy(e - r.truth));
            }
            out += &format!(
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">n={}</text>\n",
                sx(x),
                top + h - 15.0,
                r.n
            );
        }
    }
    out + "</svg>\n"
}
