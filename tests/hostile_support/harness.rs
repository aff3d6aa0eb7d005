//! Feeds one [`Hostile`] input to a store, through the library or the CLI, and checks the
//! refusal: the error names what is wrong, it came in bounded time (and, through the CLI, with
//! bounded peak memory), and the store and everything around it are unchanged.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use oci_store::store::{open_store, BackendChoice, StoreDump, WriteOptions};
use oci_store::stores::appc::{self, AppcStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciStore, UnpackOptions};
use oci_store::traits::{Algorithm, Digest};
use oci_store::Store;

use super::{acis, Build, Hostile, Input};

/// Longest a refusal may take through the library (a debug build on a loaded machine).
pub const LIBRARY_DEADLINE: Duration = Duration::from_secs(30);
/// Longest a refusal may take through the CLI, process start and store open included.
pub const CLI_DEADLINE: Duration = Duration::from_secs(30);
/// Highest peak RSS the CLI may reach refusing an input. Inputs that would expand to
/// gigabytes (the bombs) must be read as streams to stay under it.
pub const CLI_MAX_RSS_KIB: i64 = 128 * 1024;

/// A store that already holds one of everything, in a temp dir with room for inputs beside it.
pub struct Prepared {
    temp: tempfile::TempDir,
    pub store: Store,
}

impl Prepared {
    pub fn new() -> Prepared {
        let temp = tempfile::tempdir().expect("a temp dir");
        let store = open_store(&temp.path().join("store"), &BackendChoice::default())
            .expect("opening the store");
        let existing = temp.path().join("existing-layout");
        LayoutBuilder::simple_image(&existing, "existing:1").expect("building a layout");
        OciStore::new(&store)
            .import_layout(&existing, &ImportOptions::default())
            .expect("importing the existing image");
        let aci = temp.path().join("existing.aci");
        std::fs::write(&aci, acis::valid_aci("example.com/existing")).expect("writing an ACI");
        AppcStore::new(&store)
            .import_file(&aci, &appc::ImportOptions::default())
            .expect("importing the existing ACI");
        let record = store
            .write_bytes(b"a user's blob", &WriteOptions::default())
            .expect("writing a blob");
        store
            .set_extra(&record.digest, "note", b"kept")
            .expect("attaching extra data");
        store
            .put_data("user.keys", "key", b"value", Some(&record.digest))
            .expect("writing a key/value entry");
        Prepared { temp, store }
    }

    pub fn root(&self) -> &Path {
        self.temp.path()
    }

    pub fn store_dir(&self) -> PathBuf {
        self.temp.path().join("store")
    }

    /// An empty directory for a case's input.
    pub fn input_dir(&self) -> PathBuf {
        let dir = self.temp.path().join("input");
        std::fs::create_dir_all(&dir).expect("creating the input dir");
        dir
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            dump: self.store.dump().expect("dumping the store"),
            store_files: files(&self.store_dir(), &self.store_dir(), true),
            outside: files(self.root(), &self.store_dir(), false),
        }
    }
}

/// Everything a refused import must leave as it was.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    dump: StoreDump,
    /// Every path of the store directory but the metadata databases and lock files: kind,
    /// size and, for regular files, a hash of the content.
    store_files: BTreeMap<PathBuf, String>,
    /// Every path around the store (inputs included): nothing may appear or change there.
    outside: BTreeMap<PathBuf, String>,
}

impl Snapshot {
    /// Panics naming what differs.
    pub fn assert_same(&self, after: &Snapshot, what: &str) {
        assert!(
            self.dump == after.dump,
            "{what}: the store's dump changed:\nbefore {:?}\nafter {:?}",
            self.dump,
            after.dump
        );
        assert_eq!(
            self.store_files, after.store_files,
            "{what}: files in the store directory changed"
        );
        assert_eq!(
            self.outside, after.outside,
            "{what}: files outside the store changed"
        );
    }
}

/// Paths under `dir`: with `inside`, those under `store` but not its databases or locks;
/// without, those not under `store`.
fn files(dir: &Path, store: &Path, inside: bool) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(dir, store, inside, &mut out);
    out
}

fn walk(dir: &Path, store: &Path, inside: bool, out: &mut BTreeMap<PathBuf, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("listing").path();
        if !inside && path.starts_with(store) {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if inside && (name == "meta" || name == "locks" || name.ends_with(".lock")) {
            continue;
        }
        let Ok(metadata) = path.symlink_metadata() else {
            continue;
        };
        let kind = metadata.file_type();
        let description = if kind.is_dir() {
            walk(&path, store, inside, out);
            "dir".to_string()
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).expect("reading a file");
            format!(
                "file {} {}",
                bytes.len(),
                Digest::of_bytes(Algorithm::Sha256, &bytes)
            )
        } else if kind.is_symlink() {
            format!("symlink {:?}", std::fs::read_link(&path).unwrap())
        } else if kind.is_fifo() {
            "fifo".to_string()
        } else {
            format!("special {:o} {}", metadata.mode(), metadata.rdev())
        };
        out.insert(path, description);
    }
}

fn assert_names(case: &Hostile, error: &str, what: &str) {
    for name in &case.names {
        assert!(
            error.contains(name.as_str()),
            "{what}: the error does not name {name:?}: {error}"
        );
    }
}

fn import(store: &Store, case: &Hostile) -> Result<String, String> {
    match &case.input {
        Input::Oci(path) => {
            let defaults = ImportOptions::default();
            let options = ImportOptions {
                max_archive_entries: case
                    .max_archive_entries
                    .unwrap_or(defaults.max_archive_entries),
                max_archive_bytes: case.max_archive_bytes.unwrap_or(defaults.max_archive_bytes),
                ..defaults
            };
            OciStore::new(store)
                .import_layout(path, &options)
                .map(|report| format!("{report:?}"))
                .map_err(|error| error.to_string())
        }
        Input::Aci(path) => AppcStore::new(store)
            .import_file(path, &appc::ImportOptions::default())
            .map(|report| format!("{report:?}"))
            .map_err(|error| error.to_string()),
        Input::Unpack { reference, .. } => OciStore::new(store)
            .unpack(reference, &unpack_target(case), &UnpackOptions::default())
            .map(|report| format!("{report:?}"))
            .map_err(|error| error.to_string()),
    }
}

/// Where an unpack case renders: beside its input, inside what the snapshot watches.
fn unpack_target(case: &Hostile) -> PathBuf {
    match &case.input {
        Input::Unpack { layout, .. } => layout.with_file_name("unpacked"),
        _ => unreachable!("only unpack cases render"),
    }
}

/// An unpack case's image is imported first (its layers unread): the refusal comes later,
/// from `unpack`, and must leave the store as the import left it.
fn import_what_unpack_reads(prepared: &Prepared, case: &Hostile) {
    if let Input::Unpack { layout, .. } = &case.input {
        OciStore::new(&prepared.store)
            .import_layout(layout, &ImportOptions::default())
            .unwrap_or_else(|error| panic!("{case:?}: the import before unpack failed: {error}"));
    }
}

/// Builds the case, imports it through the library in a thread with a deadline, and checks
/// the refusal. Returns the error message.
pub fn refused_by_library(build: Build) -> String {
    let prepared = Prepared::new();
    let case = build(&prepared.input_dir());
    import_what_unpack_reads(&prepared, &case);
    let before = prepared.snapshot();
    let (sender, receiver) = mpsc::channel();
    let started = Instant::now();
    let worker_case = case.clone();
    std::thread::spawn(move || {
        let result = import(&prepared.store, &worker_case);
        let _ = sender.send((prepared, result));
    });
    let (prepared, result) = receiver
        .recv_timeout(LIBRARY_DEADLINE)
        .unwrap_or_else(|_| panic!("{case:?}: no answer within {LIBRARY_DEADLINE:?}"));
    let elapsed = started.elapsed();
    let error = match result {
        Ok(report) => panic!("{case:?} was accepted: {report}"),
        Err(error) => error,
    };
    assert_names(&case, &error, "library");
    prepared.snapshot().assert_same(&before, "library");
    eprintln!("refused in {:.3} s: {error}", elapsed.as_secs_f64());
    error
}

/// What one CLI run measured.
pub struct CliRun {
    pub stderr: String,
    pub elapsed: Duration,
    pub max_rss_kib: i64,
}

/// Builds the case, imports it with the `oci-store` binary, and checks the refusal: exit
/// status 1, an `oci-store:` message naming the problem, within [`CLI_DEADLINE`] and
/// [`CLI_MAX_RSS_KIB`] (or the case's own bound), the store unchanged.
pub fn refused_by_cli(build: Build) -> CliRun {
    let prepared = Prepared::new();
    let case = build(&prepared.input_dir());
    import_what_unpack_reads(&prepared, &case);
    let before = prepared.snapshot();
    let mut command = Command::new(env!("CARGO_BIN_EXE_oci-store"));
    command
        .arg("--store")
        .arg(prepared.store_dir())
        .env_remove("OCI_STORE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match &case.input {
        Input::Oci(path) => {
            command.arg("import");
            if let Some(limit) = case.max_archive_entries {
                command.arg(format!("--max-archive-entries={limit}"));
            }
            if let Some(limit) = case.max_archive_bytes {
                command.arg(format!("--max-archive-bytes={limit}"));
            }
            command.arg(path);
        }
        Input::Aci(path) => {
            command.args(["appc", "import"]).arg(path);
        }
        Input::Unpack { reference, .. } => {
            command
                .args(["unpack", reference])
                .arg(unpack_target(&case));
        }
    }
    let max_rss_kib = case.max_rss_kib.unwrap_or(CLI_MAX_RSS_KIB);
    let run = run_measured(command, &format!("{case:?}"));
    assert!(
        run.stderr.starts_with("oci-store: "),
        "{case:?}: not an oci-store error: {}",
        run.stderr
    );
    assert!(
        run.max_rss_kib <= max_rss_kib,
        "{case:?}: the CLI peaked at {} KiB, over {max_rss_kib} KiB, in {:.3} s; stderr ({} bytes) begins: {}",
        run.max_rss_kib,
        run.elapsed.as_secs_f64(),
        run.stderr.len(),
        run.stderr.chars().take(300).collect::<String>()
    );
    assert_names(&case, &run.stderr, "CLI");
    prepared.snapshot().assert_same(&before, "CLI");
    eprintln!(
        "CLI refused in {:.3} s, peak RSS {} KiB: {}",
        run.elapsed.as_secs_f64(),
        run.max_rss_kib,
        run.stderr.trim_end()
    );
    run
}

/// Runs `command` (stderr piped), killing it at [`CLI_DEADLINE`]; it must exit with status 1.
///
/// The peak RSS is the child's own `VmHWM` (`/proc/PID/status`), read every 2 ms while it
/// runs. `wait4`'s `ru_maxrss` would not do: the kernel folds the high-water mark of the
/// address space a process leaves at `exec` into it, and a spawned child leaves the test
/// process's (tens of megabytes, more while other tests build bombs), so it measures the
/// test, not the CLI.
// The child is reaped by `waitpid`, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn run_measured(mut command: Command, what: &str) -> CliRun {
    let started = Instant::now();
    let mut child = command.spawn().expect("starting oci-store");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr_pipe, &mut text);
        text
    });
    let pid = child.id() as libc::pid_t;
    let status_file = format!("/proc/{pid}/status");
    let mut max_rss_kib = 0;
    let status = loop {
        max_rss_kib = max_rss_kib.max(high_water_kib(&status_file));
        let mut status = 0;
        // SAFETY: `pid` is our own child, not yet reaped; the pointer is valid.
        let reaped = unsafe { libc::waitpid(pid, &raw mut status, libc::WNOHANG) };
        assert!(reaped >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break status;
        }
        if started.elapsed() > CLI_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the CLI did not finish within {CLI_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let stderr = reader.join().expect("reading stderr");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1,
        "{what}: the CLI should exit with status 1, got wait status {status} (peak RSS {max_rss_kib} \
         KiB, {:.3} s); stderr:\n{stderr}",
        elapsed.as_secs_f64()
    );
    CliRun {
        stderr,
        elapsed,
        max_rss_kib,
    }
}

/// `VmHWM` (peak resident set, KiB) from a `/proc/PID/status`; 0 once the process is gone.
fn high_water_kib(status_file: &str) -> i64 {
    let Ok(text) = std::fs::read_to_string(status_file) else {
        return 0;
    };
    text.lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
