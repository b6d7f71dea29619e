//! The `likely` command line.

mod cli;

fn main() {
    // Output piped into `head` and the like: end quietly when the reader goes away, as Unix
    // tools do, instead of failing on the write (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread exists: it sets an environment variable.
    likely::gpu::context::prepare_runtime_dir();
    std::process::exit(cli::run());
}
