//! Small helpers shared by the CLI and the library.

use crate::error::{Error, Result};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An f64 as JSON: a number when finite, otherwise the string "NaN", "inf" or "-inf"
/// (JSON has no non-finite numbers, and a silent `null` would hide what happened).
pub fn json_f64(v: f64) -> Value {
    if v.is_finite() {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    } else {
        Value::String(format!("{v}"))
    }
}

/// Refuses to write `output` when it is one of `inputs` (the same file, also through a symlink
/// or a hard link), so a command never replaces the data or the model it reads.
pub fn refuse_overwriting_input(flag: &str, output: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    for (input_flag, input) in inputs {
        if same_file(output, input) {
            return Err(Error::Usage(format!(
                "{flag} {} is the {input_flag} file {}: writing it would destroy the input; \
                 choose another path",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Whether `a` and `b` name one file (after symlinks; hard links count), where both exist.
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        ma.dev() == mb.dev() && ma.ino() == mb.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (ma, mb);
        matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    }
}

/// Writes a file atomically: `write` fills a temporary file beside `path`, which is then
/// synced and renamed into place, so a failure or a crash never leaves a half-written file.
/// A `path` that is a symlink is written through to its target (the link stays a link); a
/// file that is replaced keeps its permissions. Should the process be interrupted (SIGINT,
/// SIGTERM, SIGHUP) while writing, the temporary file is removed.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // Not a regular file (a device such as /dev/null, a FIFO, /dev/stdout on a pipe): written
    // into as it is. Renaming a file over it would replace the device or the pipe with a file.
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() && !meta.is_dir() {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            write(&mut out)?;
            return out.flush().map_err(io);
        }
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::metadata(path).is_err()
    {
        return Err(Error::Usage(format!(
            "{} is a symlink to a file that does not exist ({}): give the path itself",
            path.display(),
            std::fs::read_link(path).map_or_else(|_| "?".into(), |t| t.display().to_string())
        )));
    }
    // The file the name leads to: through any symlinks, so that the rename replaces the
    // target, not the link.
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(io)?,
        _ => path.to_path_buf(),
    };
    let existing = std::fs::metadata(&target).ok();
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(Error::Usage(format!(
            "{} is a directory: give a file path",
            path.display()
        )));
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let cleanup = interrupt::remove_on_signal(&tmp);
    let written = (|| {
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        if let Some(meta) = &existing {
            file.set_permissions(meta.permissions()).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &target).map_err(io)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drop(cleanup);
    written
}

/// Removing temporary files when the process is interrupted: a fixed table of C paths that
/// the signal handler unlinks (unlink is async-signal-safe; the table is read with atomic
/// loads only). The handlers are installed only while a write is in progress and the ones
/// they replaced are put back after it (a program embedding the library keeps its own); on a
/// signal, the replaced handler is put back and the signal raised again, so it runs as if
/// likely had not been there (the default: the process ends as killed).
mod interrupt {
    use std::ffi::{c_char, CString};
    use std::path::Path;
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    const SLOTS: usize = 16;
    static PATHS: [AtomicPtr<c_char>; SLOTS] =
        [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
    #[cfg(unix)]
    const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    /// The handlers ours replaced, by signal (read in the handler, hence atomics).
    static PREVIOUS: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
    /// Writes in progress; the handlers are ours while it is above 0.
    static ACTIVE: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

    /// Registers `path` for removal on SIGINT, SIGTERM or SIGHUP until the guard is dropped.
    pub(super) fn remove_on_signal(path: &Path) -> Guard {
        {
            let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
            if *active == 0 {
                install();
            }
            *active += 1;
        }
        #[cfg(unix)]
        let c = {
            use std::os::unix::ffi::OsStrExt;
            CString::new(path.as_os_str().as_bytes()).ok()
        };
        #[cfg(not(unix))]
        let c = CString::new(path.to_string_lossy().as_bytes()).ok();
        let Some(c) = c else { return Guard(None) };
        let raw = c.into_raw();
        for (i, slot) in PATHS.iter().enumerate() {
            if slot
                .compare_exchange(
                    std::ptr::null_mut(),
                    raw,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            {
                return Guard(Some(i));
            }
        }
        // More files in flight than slots: this one is cleaned up on errors only.
        // SAFETY: `raw` came from `into_raw` above and was not shared.
        drop(unsafe { CString::from_raw(raw) });
        Guard(None)
    }

    pub(super) struct Guard(Option<usize>);

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(i) = self.0 {
                let raw = PATHS[i].swap(std::ptr::null_mut(), Ordering::SeqCst);
                if !raw.is_null() {
                    // SAFETY: the slot held a pointer from `into_raw`, now taken out of it.
                    drop(unsafe { CString::from_raw(raw) });
                }
            }
            let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
            *active = active.saturating_sub(1);
            if *active == 0 {
                restore();
            }
        }
    }

    #[cfg(unix)]
    extern "C" fn on_signal(signal: libc::c_int) {
        for slot in &PATHS {
            let raw = slot.load(Ordering::SeqCst);
            if !raw.is_null() {
                // SAFETY: a NUL-terminated path that stays allocated while it is in the table.
                unsafe { libc::unlink(raw) };
            }
        }
        let k = SIGNALS.iter().position(|&s| s == signal).unwrap_or(0);
        // SAFETY: putting back the handler ours replaced and raising the signal again (both
        // async-signal-safe); the signal is blocked in its handler, so that handler, or the
        // default action, runs when this one returns.
        unsafe {
            libc::signal(
                signal,
                PREVIOUS[k].load(Ordering::SeqCst) as libc::sighandler_t,
            );
            libc::raise(signal);
        }
    }

    /// Ours in place of each signal's handler, the replaced one kept; a signal the program
    /// set to be ignored stays ignored.
    fn install() {
        #[cfg(unix)]
        for (k, &signal) in SIGNALS.iter().enumerate() {
            // SAFETY: installing a handler that only performs async-signal-safe calls.
            unsafe {
                let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                let previous = libc::signal(signal, handler);
                PREVIOUS[k].store(previous as usize, Ordering::SeqCst);
                if previous == libc::SIG_IGN {
                    libc::signal(signal, libc::SIG_IGN);
                }
            }
        }
    }

    /// The replaced handlers back in place.
    fn restore() {
        #[cfg(unix)]
        for (k, &signal) in SIGNALS.iter().enumerate() {
            // SAFETY: reinstalling the handler that was there before `install`.
            unsafe {
                libc::signal(
                    signal,
                    PREVIOUS[k].load(Ordering::SeqCst) as libc::sighandler_t,
                );
            }
        }
    }
}

/// Runs `f` (a call into a parser of untrusted bytes) so that a panic inside it becomes the
/// error `on_panic(the panic's message)`, without the panic message on stderr: a corrupt
/// file must be an error, never a crash.
pub fn guarded<T>(
    f: impl FnOnce() -> Result<T>,
    on_panic: impl FnOnce(String) -> Error,
) -> Result<T> {
    quiet::install();
    quiet::GUARDED.with(|g| g.set(g.get() + 1));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    quiet::GUARDED.with(|g| g.set(g.get() - 1));
    outcome.unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the decoder failed".into());
        Err(on_panic(why))
    })
}

/// A panic hook that stays silent for panics caught by [`guarded`] on this thread and reports
/// all others as before.
mod quiet {
    use std::cell::Cell;

    thread_local! {
        pub(super) static GUARDED: Cell<u32> = const { Cell::new(0) };
    }

    pub(super) fn install() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if GUARDED.with(|g| g.get()) == 0 {
                    previous(info);
                }
            }));
        });
    }
}

/// Bytes of memory this process can still use: the kernel's MemAvailable, within the limit of
/// its cgroup (v2 `memory.max` less `memory.current`, or v1 `memory.limit_in_bytes` less
/// `memory.usage_in_bytes`) where one is set, so that a container limited to 3 GiB on a large
/// machine is budgeted as 3 GiB. `None` where neither can be read. `LIKELY_MEMINFO` and
/// `LIKELY_CGROUP` (a file in /proc/meminfo's format, a cgroup directory) stand in for the
/// system's in tests.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::env::var_os("LIKELY_MEMINFO").map_or("/proc/meminfo".into(), PathBuf::from);
    let available = std::fs::read_to_string(meminfo).ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    });
    let limited = cgroup_headroom();
    match (available, limited) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

/// The memory left under this process's cgroup limit, if it has one.
fn cgroup_headroom() -> Option<u64> {
    let dirs: Vec<PathBuf> = match std::env::var_os("LIKELY_CGROUP") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => own_cgroup_dirs(),
    };
    let read =
        |path: PathBuf| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    dirs.into_iter()
        .filter_map(|dir| {
            // v2: "max" (no limit) does not parse.
            if let Some(limit) = read(dir.join("memory.max")) {
                let used = read(dir.join("memory.current")).unwrap_or(0);
                return Some(limit.saturating_sub(used));
            }
            let limit = read(dir.join("memory.limit_in_bytes"))?;
            // v1 writes a huge number for "no limit".
            (limit < 1 << 60)
                .then(|| limit.saturating_sub(read(dir.join("memory.usage_in_bytes")).unwrap_or(0)))
        })
        .min()
}

/// The cgroup directories of this process (v2 unified, and v1's memory controller), from
/// /proc/self/cgroup; the mount root where the path is not visible (inside a container the
/// root is the container's own cgroup).
fn own_cgroup_dirs() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") {
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
            let (Some(controllers), Some(path)) = (controllers, path) else {
                continue;
            };
            let relative = path.trim_start_matches('/');
            let base = if controllers.is_empty() {
                root.to_path_buf()
            } else if controllers.split(',').any(|c| c == "memory") {
                root.join("memory")
            } else {
                continue;
            };
            let dir = base.join(relative);
            dirs.push(if dir.exists() { dir } else { base });
        }
    }
    dirs.push(root.to_path_buf());
    dirs
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_write_puts_back_the_signal_handlers_it_replaced() {
        extern "C" fn embedder(_: libc::c_int) {}
        let embedder = embedder as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: installing a handler that does nothing, for SIGHUP only.
        let original = unsafe { libc::signal(libc::SIGHUP, embedder) };
        let path = std::env::temp_dir().join(format!("likely-handlers-{}", std::process::id()));
        let during = std::cell::Cell::new(0);
        write_atomically(&path, |out| {
            // SAFETY: reading the current handler by setting it and setting it back.
            during.set(unsafe {
                let now = libc::signal(libc::SIGHUP, libc::SIG_DFL);
                libc::signal(libc::SIGHUP, now);
                now
            });
            out.write_all(b"x").map_err(|e| Error::Usage(e.to_string()))
        })
        .unwrap();
        // SAFETY: as above; then the original handler back.
        let after = unsafe { libc::signal(libc::SIGHUP, original) };
        assert_ne!(
            during.get(),
            embedder,
            "no cleanup handler during the write"
        );
        assert_eq!(after, embedder, "the embedder's handler was not put back");
        let _ = std::fs::remove_file(&path);
    }
}
