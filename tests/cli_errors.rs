//! Exit codes and errors: 0 success, 1 failure, 2 usage; an error names what failed and the
//! next step where there is one; never a panic or a debug dump. Fed malformed arguments, a
//! missing store (read as an empty one), a read-only store, a locked store and a mistyped ref.

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::{Duration, Instant};

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::LayoutBuilder;

/// Nothing a user sees may look like a crash or Rust's debug formatting.
fn assert_clean(args: &[&str], output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    for sign in [
        "panicked",
        "RUST_BACKTRACE",
        "Os {",
        "kind: ",
        "Error {",
        "internal error",
    ] {
        assert!(!stderr.contains(sign), "{args:?}: {sign:?} in:\n{stderr}");
    }
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn with_image(name: &str) -> TestStore {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, name).unwrap();
    store.ok(&["import", layout.to_str().unwrap()]);
    store
}

#[test]
fn malformed_arguments_exit_2_with_clap_s_message_and_no_dump() {
    let store = with_image("nginx:latest");
    for args in [
        &["frobnicate"][..],
        &["list", "--bogus"],
        &["import"],
        &["unpack", "nginx:latest"],
        &["gc", "--lock-wait", "soon"],
        &["export", "out"],
        &["appc", "gc", "--grace-period", "a while"],
        &["completions", "tcsh"],
        &["-q", "-v", "list"],
    ] {
        let output = store.run(args, b"");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).starts_with("error:"),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert_clean(args, &output);
    }
    // A near miss of a command name gets clap's suggestion.
    let output = store.run(&["lst"], b"");
    assert!(
        stderr_of(&output).contains("list"),
        "{}",
        stderr_of(&output)
    );
    // Help is not an error.
    let output = store.run(&["--help"], b"");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn a_missing_store_reads_as_an_empty_one_and_is_not_created() {
    let store = TestStore::new();
    for (args, code) in [
        (&["list"][..], 0),
        (&["ls", "--json"], 0),
        (&["inspect", "nginx"], 1),
        (&["du"], 0),
        (&["fsck"], 0),
        (&["gc"], 0),
        (&["export", "--sref", "nginx", "out"], 1),
        (&["blob", "ls"], 0),
        (&["cat", "nginx"], 1),
    ] {
        let output = store.run(args, b"");
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        if code == 1 {
            assert!(
                stderr.contains("hint: the store has no refs: `oci-store import` adds some"),
                "{args:?}: {stderr}"
            );
        }
        assert_clean(args, &output);
        assert!(!store.path().exists(), "{args:?} created the store");
    }
}

#[test]
fn a_mistyped_ref_gets_a_did_you_mean() {
    let store = with_image("nginx:latest");
    let out = store.scratch("out");
    for (args, wanted) in [
        (
            &["export", "--sref", "nginx", out.to_str().unwrap()][..],
            "nginx",
        ),
        (&["rm", "ngnix:latest"], "ngnix:latest"),
        (&["inspect", "nginx:latst"], "nginx:latst"),
        (&["cat", "nginx"], "nginx"),
    ] {
        let stderr = store.fails(args);
        assert!(
            stderr.contains(&format!("no ref named {wanted:?}")),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: did you mean `nginx:latest`?"),
            "{args:?}: {stderr}"
        );
    }
    let stderr = store.fails(&["rm", "postgres"]);
    assert!(
        stderr.contains("`oci-store list` shows the refs"),
        "{stderr}"
    );
}

#[test]
fn a_damaged_store_points_at_fsck_repair() {
    let store = TestStore::new();
    let digest = store.put(b"some content");
    std::fs::remove_file(store.blob_file(&digest)).unwrap();
    for args in [&["cat", digest.as_str()][..], &["blob", "get", &digest]] {
        let stderr = store.fails(args);
        assert!(stderr.contains(&digest), "{stderr}");
        assert!(
            stderr.contains("oci-store fsck --repair"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_read_only_store_names_the_path_and_what_to_do() {
    let store = with_image("app:1");
    let path = store.path();
    // World-readable, writable by nobody but its owner; the tool runs as another user
    // (root runs it as `nobody` through setpriv, as rootfs_unprivileged does).
    let temp_root = path.parent().unwrap();
    std::fs::set_permissions(temp_root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_root = rustix::process::geteuid().is_root();
    if !as_root {
        make_tree_read_only(&path);
    }
    for args in [&["list"][..], &["import", "/nonexistent-layout"], &["gc"]] {
        let mut command = if as_root {
            let mut command = std::process::Command::new("setpriv");
            command.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                env!("CARGO_BIN_EXE_oci-store"),
                "--store",
                path.to_str().unwrap(),
            ]);
            cli_support::isolate_environment(&mut command, temp_root);
            command
        } else {
            store.command(&[])
        };
        let output = command.args(args).output().unwrap();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("may not write"), "{args:?}: {stderr}");
        assert_clean(args, &output);
    }
    if !as_root {
        make_tree_writable(&path);
    }
}

fn make_tree_read_only(path: &std::path::Path) {
    for entry in walk(path) {
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode & !0o222)).unwrap();
    }
}

fn make_tree_writable(path: &std::path::Path) {
    for entry in walk(path) {
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode | 0o200)).unwrap();
    }
}

fn walk(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![path.to_path_buf()];
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            all.extend(walk(&entry.unwrap().path()));
        }
    }
    all
}

#[test]
fn a_store_held_alone_by_another_process_fails_in_bounded_time() {
    use fs2::FileExt;
    let store = with_image("app:1");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(store.path().join("store.lock"))
        .unwrap();
    FileExt::lock_exclusive(&lock).unwrap();

    let started = Instant::now();
    let output = store
        .command(&["list"])
        .env("OCI_STORE_LOCK_WAIT", "1s")
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("store.lock"), "{stderr}");
    assert!(stderr.contains("needs it alone"), "{stderr}");
    assert!(
        stderr.contains("hint: retry when that process finishes"),
        "{stderr}"
    );
    assert_clean(&["list"], &output);

    // Let go, and the same command works.
    FileExt::unlock(&lock).unwrap();
    assert!(store.ok(&["list"]).contains("app:1"));
}

/// `oci-store … | head`: a reader that stops early closes the pipe; the command ends quietly
/// as other tools do (SIGPIPE), not with an "internal error" about a broken pipe.
#[test]
fn a_closed_stdout_pipe_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let store = TestStore::new();
    for args in [&["completions", "bash"][..], &["--help"][..]] {
        let mut child = store
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the command writes: its first write hits a closed pipe.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert_clean(args, &output);
        assert!(
            output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?}, stderr:\n{}",
            output.status,
            stderr_of(&output)
        );
    }
}
