//! Progress on stderr for family fits: passes over the data so far and samples/s. Hidden with
//! `--json`, and by indicatif when stderr is not a terminal.

use likely::engine::Engine;
use likely::family::{Family, Summary};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// An engine that reports each pass (one evaluation over every sample) on a spinner.
pub struct ProgressEngine {
    inner: Box<dyn Engine>,
    bar: indicatif::ProgressBar,
    started: Instant,
    /// Passes completed (shared with the in-pass report).
    passes: Arc<AtomicU64>,
}

/// `engine` with a progress spinner, or `engine` itself with `--json`.
pub fn with_progress(engine: Box<dyn Engine>, json: bool) -> Box<dyn Engine> {
    if json {
        return engine;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} fit: {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    // Ticks between passes too, so that a long (streamed) pass shows it is alive.
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    // Within a pass over streamed data: how far it has read.
    let mut engine = engine;
    let passes = Arc::new(AtomicU64::new(0));
    let (in_pass, pass, n) = (bar.clone(), passes.clone(), engine.n());
    engine.on_chunk(Box::new(move |done| {
        in_pass.set_message(format!(
            "pass {}: read {done} of {n} samples ({:.0}%)",
            pass.load(Ordering::Relaxed) + 1,
            100.0 * done as f64 / n.max(1) as f64
        ));
    }));
    Box::new(ProgressEngine {
        inner: engine,
        bar,
        started: Instant::now(),
        passes,
    })
}

impl Drop for ProgressEngine {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Engine for ProgressEngine {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn adapter(&self) -> String {
        self.inner.adapter()
    }
    fn family(&self) -> &dyn Family {
        self.inner.family()
    }
    fn n(&self) -> usize {
        self.inner.n()
    }
    fn count(&self) -> f64 {
        self.inner.count()
    }
    fn constant(&self) -> f64 {
        self.inner.constant()
    }
    fn summary(&self) -> Summary {
        self.inner.summary()
    }
    fn unit_roundoff(&self) -> f64 {
        self.inner.unit_roundoff()
    }
    fn sample_map(&self) -> likely::family::SampleMap {
        self.inner.sample_map()
    }
    fn exact_term_sums(&mut self, theta: &[f64]) -> likely::Result<Option<Vec<f64>>> {
        self.inner.exact_term_sums(theta)
    }
    fn has_exact_sums(&self) -> bool {
        self.inner.has_exact_sums()
    }
    fn f64_engine(&self) -> &'static str {
        self.inner.f64_engine()
    }
    fn kernel_time(&self) -> Option<likely::gpu::timer::KernelTime> {
        self.inner.kernel_time()
    }
    fn term_sums(&mut self, theta: &[f64]) -> likely::Result<Vec<f64>> {
        let sums = self.inner.term_sums(theta)?;
        let passes = self.passes.fetch_add(1, Ordering::Relaxed) + 1;
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{passes} passes over {} samples, {:.3e} samples/s",
            self.inner.n(),
            passes as f64 * self.inner.n() as f64 / seconds
        ));
        Ok(sums)
    }
}
