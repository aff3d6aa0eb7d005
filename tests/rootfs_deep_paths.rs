//! Deep paths (issue 16, item 4): an entry nested thousands of directories deep must cost
//! memory and time in proportion to its size, never a descriptor or a stack frame per level,
//! and a render that fails must not leave anything that makes a later GC fail.
//!
//! - Past the documented limits an entry is refused with a small peak RSS: a GNU long name
//!   over 4096 bytes by the tar reader before it is read (the 20,000- and 40,000-deep layers,
//!   the 25,000-deep ACI), a PAX path of 4096 bytes or more by the renderer's path limit,
//!   naming a short prefix of its path.
//! - Within them (1,500 deep), an appc render under `ulimit -n 1024` succeeds, copies out, and
//!   `appc gc` leaves nothing behind.
//! - A leftover GC cannot remove is reported and skipped: `appc gc` still succeeds.
//!
//! Peak RSS is the child's `VmHWM`, polled while it runs (see tests/hostile_support/harness.rs
//! for why not `wait4`).

mod cli_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::{LayoutBuilder, OCI_CONFIG};
use oci_store::traits::{Algorithm, Digest};
use serde_json::json;

/// Peak RSS a refused deep input may cost the CLI.
const MAX_RSS_KIB: i64 = 64 * 1024;
const DEADLINE: Duration = Duration::from_secs(120);

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `a/a/…/a/f` with `depth` directories.
fn deep_name(depth: usize) -> String {
    let mut name = "a/".repeat(depth);
    name.push('f');
    name
}

fn file_header(mode: u32, size: usize) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_mtime(1_600_000_000);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(size as u64);
    header
}

/// How a deep name is written into a tar: a GNU long name (refused by the tar reader's
/// header limit when over 4096 bytes) or a PAX `path` record (read up to 16 KiB, so a path
/// between the two limits reaches the renderer's path limit).
#[derive(Clone, Copy)]
enum LongName {
    Gnu,
    Pax,
}

/// Appends a file `name` holding `content`, its name written as `long` says.
fn append_named(builder: &mut tar::Builder<Vec<u8>>, name: &str, content: &[u8], long: LongName) {
    let mut header = file_header(0o644, content.len());
    match long {
        LongName::Gnu => builder.append_data(&mut header, name, content).unwrap(),
        LongName::Pax => {
            let record_body = format!(" path={name}\n");
            // A PAX record's length counts its own digits.
            let mut length = record_body.len() + 1;
            while format!("{length}{record_body}").len() != length {
                length += 1;
            }
            let record = format!("{length}{record_body}");
            let mut pax = file_header(0o644, record.len());
            pax.set_entry_type(tar::EntryType::XHeader);
            builder
                .append_data(&mut pax, "PaxHeader/deep", record.as_bytes())
                .unwrap();
            builder.append_data(&mut header, "deep", content).unwrap();
        }
    }
}

/// A layer of one file `depth` directories deep.
fn deep_layer(depth: usize, long: LongName) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    append_named(&mut builder, &deep_name(depth), b"deep\n", long);
    builder.into_inner().unwrap()
}

fn store_with_deep_image(depth: usize, long: LongName) -> TestStore {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let tar = deep_layer(depth, long);
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layer = builder
        .blob("application/vnd.oci.image.layer.v1.tar", &tar)
        .unwrap();
    let config = builder
        .json_blob(
            OCI_CONFIG,
            &json!({"architecture": "amd64", "os": "linux", "config": {},
                    "rootfs": {"type": "layers",
                               "diff_ids": [Digest::of_bytes(Algorithm::Sha256, &tar).to_string()]}}),
        )
        .unwrap();
    let manifest = builder
        .json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config, "layers": [layer]}),
        )
        .unwrap();
    builder.add_ref(Some("deep:1"), &manifest);
    builder.finish().unwrap();
    store.ok(&["import", s(&layout)]);
    store
}

/// An ACI whose rootfs holds one file `depth` directories deep.
fn deep_aci(store: &TestStore, depth: usize, long: LongName) -> std::path::PathBuf {
    let manifest = json!({
        "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/deep",
        "labels": [{"name": "version", "value": "1.0.0"}, {"name": "os", "value": "linux"}],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_data(
            &mut file_header(0o644, manifest.len()),
            "manifest",
            &manifest[..],
        )
        .unwrap();
    let mut rootfs = file_header(0o755, 0);
    rootfs.set_entry_type(tar::EntryType::Directory);
    builder
        .append_data(&mut rootfs, "rootfs", &b""[..])
        .unwrap();
    append_named(
        &mut builder,
        &format!("rootfs/{}", deep_name(depth)),
        b"deep\n",
        long,
    );
    let path = store.scratch("deep.aci");
    std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
    path
}

struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    max_rss_kib: i64,
    elapsed: Duration,
}

/// Runs `oci-store --store STORE ARGS` under `ulimit -n 1024`, measuring its peak RSS.
#[allow(clippy::zombie_processes)] // reaped by waitpid
fn run_measured(store: &TestStore, args: &[&str]) -> Run {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_oci-store"))
        .arg("--store")
        .arg(store.path())
        .args(args);
    cli_support::isolate_environment(&mut command, &store.scratch(""));
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    let pid = child.id() as libc::pid_t;
    let status_file = format!("/proc/{pid}/status");
    let mut max_rss_kib = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            // The shell's own figure until it execs: small either way.
            let kib = text
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            max_rss_kib = max_rss_kib.max(kib);
        }
        let mut status = 0;
        // SAFETY: our own child, not yet reaped.
        let reaped = unsafe { libc::waitpid(pid, &raw mut status, libc::WNOHANG) };
        assert!(reaped >= 0);
        if reaped == pid {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("{args:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let run = Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stderr: reader.join().unwrap(),
        max_rss_kib,
        elapsed: started.elapsed(),
    };
    eprintln!(
        "{args:?}: exit {:?} signal {:?}, {:.2} s, peak RSS {} KiB",
        run.code,
        run.signal,
        run.elapsed.as_secs_f64(),
        run.max_rss_kib
    );
    run
}

fn leftovers(store: &TestStore) -> Vec<String> {
    let dir = store.path().join("trees/appc");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect()
}

/// Which limit refuses a deep input first.
#[derive(Clone, Copy, Debug)]
enum Limit {
    /// The tar reader's cap on a GNU long name, before the name is read.
    TarHeader,
    /// The renderer's path limit (4095 bytes, 2048 deep), naming a short prefix.
    Path,
}

fn refused_briefly(run: &Run, what: &str, limit: Limit) {
    assert_eq!(run.code, Some(1), "{what}: {}", run.stderr);
    match limit {
        Limit::TarHeader => assert!(
            run.stderr.contains("GNU long name") && run.stderr.contains("over the limit"),
            "{what}: {}",
            run.stderr
        ),
        Limit::Path => {
            assert!(
                run.stderr.contains("too deep") || run.stderr.contains("too long"),
                "{what}: {}",
                run.stderr
            );
            assert!(
                run.stderr.contains("a/a/a/"),
                "{what}: names a prefix: {}",
                run.stderr
            );
        }
    }
    assert!(
        run.stderr.len() < 2000,
        "{what}: a short message, got {} bytes",
        run.stderr.len()
    );
    assert!(
        run.max_rss_kib <= MAX_RSS_KIB,
        "{what}: peak RSS {} KiB, over {MAX_RSS_KIB} KiB",
        run.max_rss_kib
    );
}

#[test]
fn an_oci_unpack_of_a_file_20000_deep_is_refused_in_bounded_memory() {
    let store = store_with_deep_image(20_000, LongName::Gnu);
    let target = store.scratch("out");
    let run = run_measured(&store, &["unpack", "deep:1", s(&target)]);
    refused_briefly(&run, "unpack 20,000 deep", Limit::TarHeader);
    assert!(!target.exists(), "nothing left at the target");
}

#[test]
fn an_oci_unpack_of_a_file_40000_deep_is_refused_in_bounded_memory() {
    let store = store_with_deep_image(40_000, LongName::Gnu);
    let target = store.scratch("out");
    let run = run_measured(&store, &["unpack", "deep:1", s(&target)]);
    refused_briefly(&run, "unpack 40,000 deep", Limit::TarHeader);
}

/// 5,000 deep in a PAX path (10,001 bytes): under the PAX header cap, over the path limit.
#[test]
fn an_oci_unpack_past_the_path_limit_is_refused_naming_a_prefix() {
    let store = store_with_deep_image(5_000, LongName::Pax);
    let target = store.scratch("out");
    let run = run_measured(&store, &["unpack", "deep:1", s(&target)]);
    refused_briefly(&run, "unpack 5,000 deep (PAX)", Limit::Path);
    assert!(!target.exists(), "nothing left at the target");
}

#[test]
fn an_oci_unpack_within_the_limits_needs_no_descriptor_per_level() {
    let store = store_with_deep_image(2_000, LongName::Gnu);
    let target = store.scratch("out");
    let run = run_measured(&store, &["unpack", "deep:1", s(&target)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.max_rss_kib <= MAX_RSS_KIB,
        "peak RSS {} KiB",
        run.max_rss_kib
    );
    let file = target.join(deep_name(2_000));
    // Too long a path for one system call: read it through the tree.
    let mut dir = std::fs::File::open(&target).unwrap();
    for _ in 0..2_000 {
        dir = std::fs::File::open(format!(
            "/proc/self/fd/{}/a",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        ))
        .unwrap();
    }
    let content = std::fs::read(format!(
        "/proc/self/fd/{}/f",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ))
    .unwrap();
    assert_eq!(content, b"deep\n", "{}", file.display());
    oci_store::stores::rootfs::remove_tree(&target).unwrap();
}

#[test]
fn an_appc_render_1500_deep_works_under_ulimit_n_1024_and_gc_succeeds() {
    let store = TestStore::new();
    let aci = deep_aci(&store, 1_500, LongName::Gnu);
    store.ok(&["appc", "import", s(&aci)]);
    let target = store.scratch("copy");
    let run = run_measured(&store, &["appc", "render", "example.com/deep", s(&target)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.max_rss_kib <= MAX_RSS_KIB,
        "peak RSS {} KiB",
        run.max_rss_kib
    );
    assert_eq!(leftovers(&store), Vec::<String>::new());
    let verify = run_measured(&store, &["appc", "verify-tree", "example.com/deep"]);
    assert_eq!(verify.code, Some(0), "{}", verify.stderr);
    let gc = run_measured(&store, &["appc", "gc", "--grace-period", "0s"]);
    assert_eq!(gc.code, Some(0), "{}", gc.stderr);
    assert_eq!(leftovers(&store), Vec::<String>::new());
    assert!(
        !store
            .path()
            .join("trees/appc")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "the tree went with its image"
    );
    oci_store::stores::rootfs::remove_tree(&target).unwrap();
}

/// 25,000 deep: the ACI's GNU long name is over the tar reader's cap, so the import is
/// refused before the name is read; nothing is left for GC to trip over.
#[test]
fn an_appc_image_25000_deep_is_refused_and_gc_succeeds() {
    let store = TestStore::new();
    let aci = deep_aci(&store, 25_000, LongName::Gnu);
    let run = run_measured(&store, &["appc", "import", s(&aci)]);
    assert_eq!(run.signal, None, "no crash: {}", run.stderr);
    refused_briefly(&run, "appc import 25,000 deep", Limit::TarHeader);
    let gc = run_measured(&store, &["appc", "gc"]);
    assert_eq!(gc.code, Some(0), "{}", gc.stderr);
}

/// 5,000 deep in a PAX path: the render refuses it by the path limit, leaving nothing, and
/// GC succeeds.
#[test]
fn an_appc_render_past_the_path_limit_is_refused_and_gc_succeeds() {
    let store = TestStore::new();
    let aci = deep_aci(&store, 5_000, LongName::Pax);
    let imported = run_measured(&store, &["appc", "import", s(&aci)]);
    let run = if imported.code == Some(0) {
        run_measured(&store, &["appc", "render", "example.com/deep"])
    } else {
        imported
    };
    assert_eq!(run.signal, None, "no crash: {}", run.stderr);
    refused_briefly(&run, "appc 5,000 deep (PAX)", Limit::Path);
    assert_eq!(leftovers(&store), Vec::<String>::new());
    let gc = run_measured(&store, &["appc", "gc"]);
    assert_eq!(gc.code, Some(0), "{}", gc.stderr);
}

/// `chattr +i` on a file in a dead render's directory: even root cannot remove it. GC says
/// so and goes on.
#[test]
fn a_leftover_gc_cannot_remove_is_reported_and_gc_succeeds() {
    let store = TestStore::new();
    store.ok(&["appc", "import", s(&deep_aci(&store, 3, LongName::Gnu))]);
    store.ok(&["appc", "render", "example.com/deep"]);
    let leftover = store
        .path()
        .join(format!("trees/appc/.tmp-{}-1-1", "ab".repeat(32)));
    std::fs::create_dir_all(leftover.join("rootfs/d")).unwrap();
    let stuck = leftover.join("rootfs/d/stuck");
    std::fs::write(&stuck, b"x").unwrap();
    let immutable = Command::new("chattr").arg("+i").arg(&stuck).status();
    if !matches!(immutable, Ok(status) if status.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chattr +i is needed in CI"
        );
        eprintln!("skipped: chattr +i unavailable here");
        return;
    }
    let gc = run_measured(&store, &["appc", "gc"]);
    let _ = Command::new("chattr").arg("-i").arg(&stuck).status();
    assert_eq!(gc.code, Some(0), "{}", gc.stderr);
    assert!(gc.stderr.contains("could not remove"), "{}", gc.stderr);
    assert!(
        gc.stderr.contains(".tmp-abab"),
        "names the leftover: {}",
        gc.stderr
    );
}
