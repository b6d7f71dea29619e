use super::EngineArgs;
use likely::check::{self, CaseResult, CheckPlan};
use likely::engine::Backend;
use likely::gpu::GpuContext;
use likely::tolerance::GPU_VS_CPU;

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct CheckArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Comma-separated sample sizes to check instead of the default edge sizes.
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Skip the case larger than one storage binding (the slowest on software adapters).
    #[arg(long)]
    no_large: bool,
    /// Seed of the random data and parameters.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Print one JSON object: {"adapter", "tolerance", "cases": [...], "passed", "failed"}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: CheckArgs) -> likely::Result<i32> {
    if args.engine.backend == Backend::Cpu {
        return Err(likely::Error::Usage(
            "check compares the GPU with the CPU reference: it needs --backend gpu (or auto)"
                .into(),
        ));
    }
    if let Some(0) = args.sizes.as_ref().and_then(|s| s.iter().min().copied()) {
        return Err(likely::Error::Usage(
            "--sizes must all be at least 1".into(),
        ));
    }
    for &n in args.sizes.iter().flatten() {
        super::check_sample_size("--sizes", n)?;
    }
    let ctx = GpuContext::new(&args.engine.selector())?;
    let mut plan = CheckPlan {
        seed: args.seed,
        large: !args.no_large,
        ..CheckPlan::for_adapter(&ctx)
    };
    if let Some(sizes) = args.sizes {
        plan.sizes = sizes;
        plan.family_edges = false;
    }
    if !args.json {
        outln!(
            "likely check on {} (tolerance: scaled error <= {GPU_VS_CPU:e})",
            ctx.adapter_label()
        );
        outln!(
            "{:<20} {:>10} {:>9} {:>6} {:>12} {:>12} {:>12}  result",
            "family",
            "n",
            "reduction",
            "chunks",
            "max abs err",
            "max rel err",
            "scaled err"
        );
    }
    let print = |c: &CaseResult| {
        if !args.json {
            outln!(
                "{:<20} {:>10} {:>9} {:>6} {:>12.3e} {:>12.3e} {:>12.3e}  {}",
                c.family,
                c.n,
                c.reduction,
                c.chunks,
                c.max_abs_err,
                c.max_rel_err,
                c.max_scaled_err,
                if c.pass { "PASS" } else { "FAIL" }
            );
        }
    };
    let mut results = check::run(&ctx, &plan, print)?;
    if !args.json {
        outln!(
            "model kernels (tolerance: {:e} of the NLL and of the largest gradient component)",
            likely::tolerance::MODEL_GPU_VS_CPU
        );
    }
    results.extend(check::run_models(&ctx, args.seed, print)?);
    let failed = results.iter().filter(|c| !c.pass).count();
    let passed = results.len() - failed;
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "adapter": ctx.adapter_label(),
                "tolerance": GPU_VS_CPU,
                "cases": results,
                "passed": passed,
                "failed": failed,
            })
        );
    } else {
        outln!("likely check: {passed} cases PASS, {failed} cases FAIL");
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
