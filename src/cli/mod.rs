//! clap commands: fit, check, demo, devices.

mod bench;
mod check;
mod demo;
mod devices;
mod fit;
mod model;
mod progress;
mod report;
mod study;

use clap::{Parser, Subcommand};
use likely::engine::Backend;
use likely::gpu::AdapterSelector;

#[derive(Parser)]
#[command(
    name = "likely",
    version,
    about = "GPU likelihood engine: MLE and MAP fits checked against an f64 CPU reference"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Bytes of memory the kernel reports as available (None where it cannot be read).
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// A sample size whose f64 samples alone would not fit in the available memory is a usage
/// error, not an allocation failure.
fn check_sample_size(flag: &str, n: usize) -> likely::Result<()> {
    let bytes = (n as u128) * 8;
    match available_memory() {
        Some(available) if bytes > available as u128 => Err(likely::Error::Usage(format!(
            "{flag} {n}: its samples alone take {:.3e} bytes, more than the {:.3e} bytes of \
             memory available",
            bytes as f64, available as f64
        ))),
        _ => Ok(()),
    }
}

/// Engine selection shared by every command that evaluates likelihoods.
#[derive(clap::Args, Clone, Debug)]
pub struct EngineArgs {
    /// auto: a hardware GPU if present, else the CPU engine; gpu: any adapter (software too); cpu.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Use the adapter whose name contains this text (default: WGPU_ADAPTER_NAME, else the best).
    #[arg(long)]
    pub adapter: Option<String>,
}

impl EngineArgs {
    pub fn selector(&self) -> AdapterSelector {
        AdapterSelector {
            name: self.adapter.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Fit a family to one column of a CSV, .npy or Parquet file by maximum likelihood (or MAP with --prior).
    Fit(Box<fit::FitArgs>),
    /// Run the CPU-vs-GPU conformance suite on this machine's GPU.
    Check(check::CheckArgs),
    /// Fit the worked examples on built-in data and compare with closed forms.
    Demo(demo::DemoArgs),
    /// List every GPU adapter wgpu can see.
    Devices(devices::DevicesArgs),
    /// Evaluate a saved model on a table: n, total and mean NLL, accuracy for classifiers.
    Eval(model::EvalArgs),
    /// Write a saved model's predictions (class probabilities or mean) as CSV.
    Predict(model::PredictArgs),
    /// Time the peer-benchmark jobs on an engine (samples/s, GB/s, the GPU's roofline).
    Bench(bench::BenchArgs),
    /// Simulate and refit many datasets to show bias, efficiency and coverage against n.
    Study(study::StudyArgs),
}

/// The exit status of a fit that did not converge: its report (and JSON) is printed, but the
/// estimates are not the optimum. 1 is an error, 2 a usage error.
pub const EXIT_NOT_CONVERGED: i32 = 3;

/// Runs the CLI and returns the process exit code (0 success, 1 failure, 2 usage, 3 a fit
/// that did not converge).
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let outcome = match cli.command {
        Command::Fit(args) => fit::run(*args),
        Command::Check(args) => check::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Devices(args) => devices::run(args),
        Command::Eval(args) => model::eval(args),
        Command::Predict(args) => model::predict(args),
        Command::Study(args) => study::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
