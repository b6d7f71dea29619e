//! Finding an adapter and opening a device on it.

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// What a user asked for when choosing an adapter.
#[derive(Clone, Debug, Default)]
pub struct AdapterSelector {
    /// Case-insensitive substring of the adapter name (`--adapter`, else `WGPU_ADAPTER_NAME`).
    pub name: Option<String>,
}

impl AdapterSelector {
    fn wanted_name(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase())
    }
}

/// One adapter as `likely devices` reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_storage_binding: u64,
    pub max_buffer: u64,
    pub subgroup: bool,
    /// Invocations per subgroup (the largest the adapter may use): on a CPU adapter, its SIMD
    /// width.
    pub subgroup_size: u32,
    pub shader_f64: bool,
    pub timestamp_query: bool,
    /// True for software adapters such as llvmpipe (device type Cpu).
    pub software: bool,
}

/// The optional features likely uses where an adapter has them.
fn useful_features() -> wgpu::Features {
    wgpu::Features::SUBGROUP | wgpu::Features::SHADER_F64 | wgpu::Features::TIMESTAMP_QUERY
}

fn backends() -> wgpu::Backends {
    // Vulkan, Metal, DX12 by default; `WGPU_BACKEND=gl` (or a list) overrides, as in wgpu.
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

/// The process's adapters, listed once (listing asks every driver, which on some machines
/// takes a noticeable fraction of a second and prints the loader's diagnostics each time).
fn enumerate() -> Vec<wgpu::Adapter> {
    static ADAPTERS: std::sync::OnceLock<(wgpu::Instance, Vec<wgpu::Adapter>)> =
        std::sync::OnceLock::new();
    ADAPTERS
        .get_or_init(|| {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            desc.backends = backends();
            let instance = wgpu::Instance::new(desc);
            let adapters = pollster::block_on(instance.enumerate_adapters(backends()));
            (instance, adapters)
        })
        .1
        .clone()
}

/// Gives the Vulkan loader and Mesa's drivers a private runtime directory when
/// `XDG_RUNTIME_DIR` is unset or not a directory: without one they print
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` for every instance,
/// which reads like one of likely's own errors. The directory is `likely-runtime-UID` in the
/// system's temporary directory, created with mode 0700 (and not used unless it is a directory
/// this user owns).
///
/// It changes the process environment, so it must run before any other thread starts (the
/// command line calls it first thing in `main`); programs embedding the library set the
/// variable themselves.
pub fn prepare_runtime_dir() {
    let usable = |path: &std::path::Path| path.is_dir();
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| usable(std::path::Path::new(&v))) {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("likely-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let owned = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
        if owned {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

fn report(adapter: &wgpu::Adapter) -> AdapterReport {
    let info = adapter.get_info();
    let limits = adapter.limits();
    let features = adapter.features();
    AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        max_storage_binding: limits.max_storage_buffer_binding_size,
        max_buffer: limits.max_buffer_size,
        subgroup: features.contains(wgpu::Features::SUBGROUP),
        subgroup_size: info.subgroup_max_size,
        shader_f64: features.contains(wgpu::Features::SHADER_F64),
        timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        software: info.device_type == wgpu::DeviceType::Cpu,
    }
}

/// Every adapter wgpu can see with the current `WGPU_BACKEND`.
pub fn list_adapters() -> Vec<AdapterReport> {
    enumerate().iter().map(report).collect()
}

/// Lower is better: hardware before software, honouring `WGPU_POWER_PREF`.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    use wgpu::DeviceType::*;
    let prefer_low = matches!(
        wgpu::PowerPreference::from_env(),
        Some(wgpu::PowerPreference::LowPower)
    );
    let device = match (info.device_type, prefer_low) {
        (DiscreteGpu, false) | (IntegratedGpu, true) => 0,
        (IntegratedGpu, false) | (DiscreteGpu, true) => 1,
        (VirtualGpu, _) => 2,
        (Other, _) => 3,
        (Cpu, _) => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (device, backend)
}

/// Picks the best adapter matching the selector, or explains why there is none.
fn select(selector: &AdapterSelector) -> Result<wgpu::Adapter> {
    let adapters = enumerate();
    if adapters.is_empty() {
        return Err(Error::NoAdapter(
            "wgpu found no adapter (install a Vulkan, Metal or DX12 driver; on Linux without a GPU, \
             Mesa's lavapipe: `apt-get install mesa-vulkan-drivers`)"
                .into(),
        ));
    }
    let wanted = selector.wanted_name();
    let mut candidates: Vec<wgpu::Adapter> = adapters
        .iter()
        .filter(|a| match &wanted {
            Some(w) => a.get_info().name.to_lowercase().contains(w),
            None => true,
        })
        .cloned()
        .collect();
    if candidates.is_empty() {
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return Err(Error::NoAdapter(format!(
            "no adapter name contains '{}'; available: {}",
            wanted.unwrap_or_default(),
            names.join(", ")
        )));
    }
    candidates.sort_by_key(|a| rank(&a.get_info()));
    Ok(candidates.remove(0))
}

/// Whether the adapter `select` would pick is a hardware GPU (used by `--backend auto`).
pub fn best_is_hardware(selector: &AdapterSelector) -> bool {
    select(selector)
        .map(|a| a.get_info().device_type != wgpu::DeviceType::Cpu)
        .unwrap_or(false)
}

/// An open device with its queue, the adapter's facts, and captured validation errors.
#[derive(Clone)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    report: AdapterReport,
    errors: Arc<Mutex<Vec<String>>>,
    /// Bytes of device memory resident model buffers may take (`--gpu-memory`).
    memory_budget: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.report)
            .finish()
    }
}

impl GpuContext {
    /// Opens a device on the selected adapter with the adapter's own limits and the useful
    /// features it has.
    pub fn new(selector: &AdapterSelector) -> Result<GpuContext> {
        let adapter = select(selector)?;
        let report = report(&adapter);
        let features = adapter.features() & useful_features();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("likely device"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::gpu(format!("opening a device on {}", report.name), e))?;
        // wgpu's default handler panics; keep errors so the failing call can return them.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        Ok(GpuContext {
            device,
            queue,
            limits,
            features,
            report,
            errors,
            memory_budget: Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
        })
    }

    /// Limits the device memory that resident model buffers may take (`--gpu-memory`).
    pub fn set_memory_budget(&self, bytes: u64) {
        self.memory_budget
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The limit set by [`GpuContext::set_memory_budget`] (unlimited by default).
    pub fn memory_budget(&self) -> u64 {
        self.memory_budget
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterReport {
        &self.report
    }

    /// "name (backend, device type)" for output.
    pub fn adapter_label(&self) -> String {
        format!(
            "{} ({}, {})",
            self.report.name, self.report.backend, self.report.device_type
        )
    }

    /// The largest storage binding the device takes, in bytes.
    pub fn max_storage_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Turns any validation error raised since the last call into an `Err` naming `context`.
    pub(crate) fn take_errors(&self, context: &str) -> Result<()> {
        let mut errors = self
            .errors
            .lock()
            .map_err(|_| Error::gpu(context, "error log poisoned"))?;
        if errors.is_empty() {
            Ok(())
        } else {
            let message = errors.join("; ");
            errors.clear();
            Err(Error::gpu(context, message))
        }
    }

    /// Runs `make` inside a validation error scope, so a bad shader or pipeline is an `Err`.
    pub(crate) fn scoped<T>(&self, context: &str, make: impl FnOnce() -> T) -> Result<T> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = make();
        match pollster::block_on(scope.pop()) {
            None => Ok(value),
            Some(e) => Err(Error::gpu(context, e)),
        }
    }
}
