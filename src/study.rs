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
                &[],
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

/// A drawing primitive of the study plot, in pixels.
enum Shape {
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        rgb: [u8; 3],
        width: f64,
    },
    Dot {
        x: f64,
        y: f64,
        rgb: [u8; 3],
    },
    Text {
        x: f64,
        y: f64,
        text: String,
    },
}

const WIDTH: f64 = 560.0;
const PANEL: f64 = 300.0;
const PAD: f64 = 50.0;

/// Each parameter's estimates minus the truth against n (log scale), with the Cramer-Rao band
/// +- z crlb_sd / sqrt(n) beside them: one panel per parameter.
fn shapes(rows: &[StudyRow], alpha: f64) -> (Vec<Shape>, f64) {
    let z = crate::inference::normal_quantile_two_sided(alpha);
    let mut params: Vec<&str> = rows.iter().map(|r| r.param.as_str()).collect();
    params.sort();
    params.dedup();
    let mut out = Vec::new();
    let (blue, red, grey) = ([51, 102, 204], [221, 51, 51], [153, 153, 153]);
    for (pi, param) in params.iter().enumerate() {
        let sel: Vec<&StudyRow> = rows.iter().filter(|r| r.param == *param).collect();
        let top = pi as f64 * PANEL;
        let ns: Vec<f64> = sel.iter().map(|r| (r.n as f64).log10()).collect();
        let x0 = ns.iter().cloned().fold(f64::INFINITY, f64::min) - 0.3;
        let x1 = ns.iter().cloned().fold(f64::NEG_INFINITY, f64::max) + 0.3;
        let spread = sel
            .iter()
            .flat_map(|r| {
                r.estimates
                    .iter()
                    .map(move |e| (e - r.truth).abs())
                    .chain(std::iter::once(z * r.crlb_sd / (r.n as f64).sqrt()))
            })
            .fold(1e-12, f64::max);
        let sx = |v: f64| PAD + (v - x0) / (x1 - x0) * (WIDTH - 2.0 * PAD);
        let sy = |v: f64| top + PANEL / 2.0 - v / spread * (PANEL / 2.0 - PAD);
        out.push(Shape::Text {
            x: PAD,
            y: top + 12.0,
            text: format!("{param}: estimate - truth vs n, band +-{z:.2} CRLB sd/sqrt(n)"),
        });
        out.push(Shape::Line {
            x1: PAD,
            y1: sy(0.0),
            x2: WIDTH - PAD,
            y2: sy(0.0),
            rgb: grey,
            width: 1.0,
        });
        let band: Vec<(f64, f64)> = sel
            .iter()
            .map(|r| {
                (
                    sx((r.n as f64).log10()),
                    z * r.crlb_sd / (r.n as f64).sqrt(),
                )
            })
            .collect();
        for sign in [1.0, -1.0] {
            for w in band.windows(2) {
                out.push(Shape::Line {
                    x1: w[0].0,
                    y1: sy(sign * w[0].1),
                    x2: w[1].0,
                    y2: sy(sign * w[1].1),
                    rgb: red,
                    width: 2.0,
                });
            }
        }
        for r in &sel {
            let x = (r.n as f64).log10();
            for (k, e) in r.estimates.iter().enumerate() {
                let jitter = ((k * 7919) % 100) as f64 / 100.0 * 0.16 - 0.08;
                out.push(Shape::Dot {
                    x: sx(x + jitter),
                    y: sy(e - r.truth),
                    rgb: blue,
                });
            }
            out.push(Shape::Text {
                x: sx(x) - 24.0,
                y: top + PANEL - 22.0,
                text: format!("n={}", r.n),
            });
        }
    }
    (out, PANEL * params.len() as f64)
}

/// The study plot as SVG.
pub fn svg(rows: &[StudyRow], alpha: f64) -> String {
    let (shapes, height) = shapes(rows, alpha);
    let mut out = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"monospace\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let hex = |c: [u8; 3]| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
    for s in shapes {
        out += &match s {
            Shape::Line { x1, y1, x2, y2, rgb, width } => format!("<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{}\" stroke-width=\"{width}\"/>\n", hex(rgb)),
            Shape::Dot { x, y, rgb } => format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"1.5\" fill=\"{}\" fill-opacity=\"0.4\"/>\n", hex(rgb)),
            Shape::Text { x, y, text } => format!("<text x=\"{x:.1}\" y=\"{:.1}\">{text}</text>\n", y + 9.0),
        };
    }
    out + "</svg>\n"
}

/// The study plot as PNG (8x8 bitmap text).
pub fn png(rows: &[StudyRow], alpha: f64) -> Result<Vec<u8>> {
    let (shapes, height) = shapes(rows, alpha);
    let (w, h) = (WIDTH as usize, height.max(1.0) as usize);
    let mut pixels = vec![255u8; w * h * 3];
    let mut blend = |x: i64, y: i64, rgb: [u8; 3], opacity: f64| {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            let at = (y as usize * w + x as usize) * 3;
            for c in 0..3 {
                pixels[at + c] =
                    (pixels[at + c] as f64 * (1.0 - opacity) + rgb[c] as f64 * opacity) as u8;
            }
        }
    };
    for s in shapes {
        match s {
            Shape::Line {
                x1,
                y1,
                x2,
                y2,
                rgb,
                width,
            } => {
                let steps = ((x2 - x1).abs().max((y2 - y1).abs()) * 2.0).ceil().max(1.0) as usize;
                for k in 0..=steps {
                    let t = k as f64 / steps as f64;
                    let (x, y) = (x1 + t * (x2 - x1), y1 + t * (y2 - y1));
                    for d in 0..width as i64 {
                        blend(x as i64, y as i64 + d, rgb, 1.0);
                    }
                }
            }
            Shape::Dot { x, y, rgb } => {
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        blend(x as i64 + dx, y as i64 + dy, rgb, 0.4);
                    }
                }
            }
            Shape::Text { x, y, text } => {
                for (i, ch) in text.chars().enumerate() {
                    let glyph = font8x8::legacy::BASIC_LEGACY
                        .get(ch as usize)
                        .copied()
                        .unwrap_or([0; 8]);
                    for (row, bits) in glyph.iter().enumerate() {
                        for col in 0..8 {
                            if bits >> col & 1 == 1 {
                                blend(
                                    x as i64 + (i * 8 + col) as i64,
                                    y as i64 + row as i64,
                                    [0, 0, 0],
                                    1.0,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w as u32, h as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| Error::Usage(format!("PNG: {e}")))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| Error::Usage(format!("PNG: {e}")))?;
    }
    Ok(bytes)
}
