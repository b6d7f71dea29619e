use super::EngineArgs;
use likely::engine;
use likely::family::{Family, FamilyName};
use likely::fit::{self, FitOptions};
use likely::tolerance::{relative_error, CLOSED_FORM};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct DemoArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Seed of the built-in samples.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

/// One worked example: a family, its data, and a sentence saying what it is.
struct Example {
    title: &'static str,
    family: Box<dyn Family>,
    data: Vec<f64>,
}

fn examples(seed: u64) -> Vec<Example> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw = |name: FamilyName, classes: usize, theta: &[f64], n: usize| {
        let family = name.build(classes);
        let data = family.sample(theta, n, &mut rng);
        (family, data)
    };
    let (gaussian, gaussian_data) = draw(FamilyName::Gaussian, 1, &[5.0, 2f64.ln()], 1000);
    let (categorical, categorical_data) =
        draw(FamilyName::Categorical, 4, &[0.0, 1.0, -0.5, 0.3], 2000);
    let (laplace, laplace_data) = draw(FamilyName::Laplace, 1, &[-1.0, 0.5f64.ln()], 1001);
    let (poisson, poisson_data) = draw(FamilyName::Poisson, 1, &[3.5f64.ln()], 500);
    let (exponential, exponential_data) = draw(FamilyName::Exponential, 1, &[0.25f64.ln()], 800);
    vec![
        Example {
            title: "a coin: 7 heads in 10 tosses",
            family: FamilyName::Bernoulli.build(1),
            data: vec![1., 0., 1., 1., 0., 1., 1., 1., 0., 1.],
        },
        Example {
            title: "1000 draws from N(5, 2^2)",
            family: gaussian,
            data: gaussian_data,
        },
        Example {
            title: "2000 draws from 4 classes",
            family: categorical,
            data: categorical_data,
        },
        Example {
            title: "1001 draws from Laplace(-1, 0.5)",
            family: laplace,
            data: laplace_data,
        },
        Example {
            title: "500 draws from Poisson(3.5)",
            family: poisson,
            data: poisson_data,
        },
        Example {
            title: "800 draws from Exponential(rate 0.25)",
            family: exponential,
            data: exponential_data,
        },
    ]
}

pub fn run(args: DemoArgs) -> likely::Result<i32> {
    let mut failures = 0;
    for (i, example) in examples(args.seed).into_iter().enumerate() {
        let expected = example
            .family
            .natural(&example.family.closed_form_mle(&example.data));
        let data: Arc<[f64]> = example.data.into();
        let mut engine = engine::create(
            args.engine.backend,
            example.family,
            data,
            &args.engine.selector(),
        )?;
        if i == 0 {
            outln!(
                "likely demo: engine {} on {}\n",
                engine.name(),
                engine.adapter()
            );
        }
        let result = fit::fit(engine.as_mut(), &FitOptions::default())?;
        let family = engine.family();
        outln!(
            "{} -- {} MLE, {} iterations, {}",
            example.title,
            family.name(),
            result.iterations,
            if result.converged {
                "converged"
            } else {
                "NOT converged"
            }
        );
        outln!(
            "  {:<10} {:>16} {:>16} {:>10}",
            "parameter",
            "estimate",
            "closed form",
            "rel. err"
        );
        let mut ok = result.converged;
        for (got, want) in family.natural(&result.theta).iter().zip(&expected) {
            for (k, (g, w)) in got
                .value
                .values()
                .iter()
                .zip(want.value.values())
                .enumerate()
            {
                let name = match &got.value {
                    likely::family::ParamValue::Scalar(_) => got.name.to_string(),
                    likely::family::ParamValue::Vector(_) => format!("{}[{k}]", got.name),
                };
                let err = relative_error(*g, w);
                ok &= err <= CLOSED_FORM;
                outln!("  {name:<10} {g:>16.9} {w:>16.9} {err:>10.2e}");
            }
        }
        outln!();
        if !ok {
            failures += 1;
        }
    }
    if !mlp_example(&args)? {
        failures += 1;
    }
    if failures > 0 {
        outln!("{failures} examples disagree with their closed forms beyond {CLOSED_FORM:e}");
        Ok(1)
    } else {
        outln!("every estimate agrees with its closed form to {CLOSED_FORM:e} relative, and the MLP learned");
        Ok(0)
    }
}

/// The seed's MLP: 10 features -> 32 ReLU -> 5 classes, cross-entropy, AdamW (weight decay
/// 0.01), on labels from a fixed random teacher network (as ../shared/bench/peers.py makes them).
fn mlp_example(args: &DemoArgs) -> likely::Result<bool> {
    use likely::model::{ModelOptimizer, TrainOptions};
    let n = 8192;
    let likely::bench::JobData { x, y, d, .. } = likely::bench::mlp_data_seeded(n, args.seed);
    let mut z = Vec::new();
    let net = likely::bench::mlp_network();
    let options = TrainOptions {
        lr: 1e-2,
        weight_decay: 0.01,
        batch_size: Some(256),
        epochs: 10,
        seed: args.seed,
        ..TrainOptions::new(ModelOptimizer::Adamw, net.param_count())
    };
    let mut params = net.init(args.seed, &y);
    let rows: Vec<usize> = (0..n).collect();
    let before = net.nll_and_grad(&params, &x, &y, &rows).0 / n as f64;
    let selector = args.engine.selector();
    let use_gpu = match args.engine.backend {
        likely::engine::Backend::Cpu => false,
        likely::engine::Backend::Gpu => true,
        likely::engine::Backend::Auto => likely::gpu::context::best_is_hardware(&selector),
    };
    let (report, engine) = if use_gpu {
        let ctx = likely::gpu::GpuContext::new(&selector)?;
        let gpu = likely::gpu::mlp::GpuNetwork::new(&ctx, &net, &x, &y, &vec![0.0; n], &[], 256)?;
        (
            likely::model::train_gpu(&gpu, &net, &mut params, &options, |_| {})?,
            format!("gpu on {}", ctx.adapter_label()),
        )
    } else {
        (
            likely::model::train(&net, &mut params, &x, &y, &options, |_| {})?,
            "cpu".to_string(),
        )
    };
    let after = net.nll_and_grad(&params, &x, &y, &rows).0 / n as f64;
    let hits = rows
        .iter()
        .filter(|&&r| {
            net.head
                .predicted_class(&net.forward(&params, &x[r * d..(r + 1) * d], &mut z))
                == y[r]
        })
        .count();
    let accuracy = hits as f64 / n as f64;
    outln!("the seed's MLP -- 10 -> 32 ReLU -> 5 classes, AdamW (weight decay 0.01), {n} rows, engine {engine}");
    for p in &report.history {
        outln!(
            "  epoch {:>2}  train mean NLL {:.5}",
            p.epoch,
            p.train_mean_nll
        );
    }
    outln!(
        "  mean NLL {before:.5} at initialisation -> {after:.5}; accuracy {accuracy:.3} ({})\n",
        report.reason
    );
    Ok(report.converged && after < 0.5 * before)
}
