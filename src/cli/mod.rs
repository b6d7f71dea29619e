//! clap commands: fit, check, demo, devices.

/// `println!` that never panics: a failed write to standard output (a full disk, `> /dev/full`)
/// is remembered and reported by [`run`] as an error, exit status 1.
/// `eprintln!` that never panics: a standard error that cannot be written (a full disk, a
/// closed descriptor) loses the message, and the command's exit status stays what it was.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

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

/// A sample size whose f64 samples alone would not fit in the available memory is a usage
/// error, not an allocation failure.
fn check_sample_size(flag: &str, n: usize) -> likely::Result<()> {
    let bytes = (n as u128) * 8;
    match likely::util::available_memory() {
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

/// The first error writing standard output, reported when the command ends.
static STDOUT_ERROR: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

/// Writes to standard output, remembering the first failure (later writes are skipped).
pub(crate) fn write_stdout(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut failed = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_none() {
        if let Err(e) = std::io::stdout().lock().write_fmt(text) {
            *failed = Some(e);
        }
    }
}

/// Flushes standard output; the first write that failed, if any, as an error.
fn stdout_result() -> likely::Result<()> {
    use std::io::Write;
    let flushed = std::io::stdout().lock().flush();
    let failed = STDOUT_ERROR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match failed.map_or(flushed, Err) {
        Ok(()) => Ok(()),
        Err(source) => Err(likely::Error::Io {
            path: "standard output".into(),
            source,
        }),
    }
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
            if e.use_stderr() {
                let _ = e.print();
                return 2;
            }
            // --help and --version, through the writer that reports a full disk.
            write_stdout(format_args!("{}", e.render()));
            return match stdout_result() {
                Ok(()) => 0,
                Err(e) => {
                    errln!("error: {e}");
                    1
                }
            };
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
    match outcome.and_then(|code| stdout_result().map(|()| code)) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e}");
            1
        }
    }
}
