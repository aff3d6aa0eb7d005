//! Named crash points, for the crash harness (`conformance/src/crash/`): compiled in only with
//! the cargo feature `crash-points` (off by default, so release and benchmark builds of
//! `oci-store` contain none; the conformance crate turns it on for its own builds).
//!
//! `crash_point!("store.commit.before-index")` marks one step of a protocol. With the feature
//! on, each point registers its name (so [`all`] lists every point compiled in) and, when
//! reached:
//! - appends its name to the file named by `OCI_STORE_CRASH_LOG`, if set (the harness learns
//!   which points a piece of work reaches, and proves each one is reached by some trial);
//! - if `OCI_STORE_CRASH_AT` is `NAME` or `NAME:N` and this is the N-th time (default 1) this
//!   process reaches `NAME`, appends `crash NAME` to the log and kills the process with
//!   SIGKILL: no destructor, no unwinding, no buffered write flushed, as with `kill -9`.
//!
//! This module depends on nothing else in the crate, so every layer may mark its steps.

#[cfg(feature = "crash-points")]
mod enabled {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// One crash point compiled into the binary.
    pub struct CrashPoint {
        pub name: &'static str,
    }

    inventory::collect!(CrashPoint);

    /// Every crash point compiled in, sorted, each name once.
    pub fn all() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = inventory::iter::<CrashPoint>
            .into_iter()
            .map(|point| point.name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    struct Settings {
        log: Option<std::path::PathBuf>,
        crash_at: Option<(String, u64)>,
        reached_target: AtomicU64,
    }

    fn settings() -> &'static Settings {
        static SETTINGS: OnceLock<Settings> = OnceLock::new();
        SETTINGS.get_or_init(|| {
            let log = std::env::var_os("OCI_STORE_CRASH_LOG")
                .filter(|path| !path.is_empty())
                .map(std::path::PathBuf::from);
            let crash_at = std::env::var("OCI_STORE_CRASH_AT")
                .ok()
                .filter(|spec| !spec.is_empty())
                .map(|spec| match spec.rsplit_once(':') {
                    Some((name, nth)) if nth.parse::<u64>().is_ok() => {
                        (name.to_string(), nth.parse::<u64>().unwrap_or(1).max(1))
                    }
                    _ => (spec, 1),
                });
            Settings {
                log,
                crash_at,
                reached_target: AtomicU64::new(0),
            }
        })
    }

    fn log_line(settings: &Settings, line: &str) {
        if let Some(path) = &settings.log {
            // One write per line with O_APPEND: lines of threads and processes never mix.
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = file.write_all(format!("{line}\n").as_bytes());
            }
        }
    }

    /// Called by `crash_point!`: logs the point and kills the process if it is the one asked for.
    pub fn reached(name: &'static str) {
        let settings = settings();
        log_line(settings, name);
        let Some((target, nth)) = &settings.crash_at else {
            return;
        };
        if target != name || settings.reached_target.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
            return;
        }
        log_line(settings, &format!("crash {name}"));
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL cannot be caught; nothing of this process runs past it.
        loop {
            std::thread::park();
        }
    }
}

#[cfg(feature = "crash-points")]
pub use enabled::{all, reached, CrashPoint};

/// Every crash point compiled in: none without the `crash-points` feature.
#[cfg(all(not(feature = "crash-points"), any(test, feature = "test-support")))]
pub fn all() -> Vec<&'static str> {
    Vec::new()
}

/// Marks a step at which the crash harness may kill the process (see [`crate::crash_points`]).
/// Without the `crash-points` feature it expands to nothing.
#[cfg(feature = "crash-points")]
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {{
        ::inventory::submit! { $crate::crash_points::CrashPoint { name: $name } }
        $crate::crash_points::reached($name);
    }};
}

/// Marks a step at which the crash harness may kill the process (see the `crash_points` module).
/// Without the `crash-points` feature it expands to nothing.
#[cfg(not(feature = "crash-points"))]
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {};
}
