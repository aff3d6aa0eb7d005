//! Runs the built `oci-store` binary against a store in a temporary directory.

#![allow(dead_code)] // each test file uses a different part of this

pub mod terminal;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use oci_store::traits::{Algorithm, Digest};

/// Keeps the user's settings out of a test: no config file but one the test writes under
/// `root/config`, no store, backend or wait from the environment.
pub fn isolate_environment(command: &mut Command, root: &Path) {
    command.env("XDG_CONFIG_HOME", root.join("config"));
    for variable in [
        "OCI_STORE_DIR",
        "OCI_STORE_CONFIG",
        "OCI_STORE_BACKEND",
        "OCI_STORE_BLOBS",
        "OCI_STORE_LOCK_WAIT",
        "OCI_STORE_GC_LOCK_WAIT",
        "OCI_STORE_APPC_GRACE_PERIOD",
        "OCI_STORE_LAST_USED_INTERVAL",
    ] {
        command.env_remove(variable);
    }
}

pub struct TestStore {
    dir: tempfile::TempDir,
}

impl TestStore {
    pub fn new() -> TestStore {
        TestStore {
            dir: tempfile::tempdir().expect("creating a temp dir"),
        }
    }

    /// The store directory (inside the temp dir, so the tool creates it).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A scratch path next to the store.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Where the `fs` blob store keeps a blob's content.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').expect("a full digest");
        self.path().join("blobs").join(algorithm).join(hex)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oci-store"));
        command.arg("--store").arg(self.path()).args(args);
        isolate_environment(&mut command, self.dir.path());
        command
    }

    /// Runs with `stdin` fed from another thread, so large inputs cannot deadlock on a full pipe.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting oci-store");
        let mut child_stdin = child.stdin.take().expect("piped stdin");
        let input = stdin.to_vec();
        let feeder = std::thread::spawn(move || {
            // The tool may exit before reading everything (a failing command): ignore EPIPE.
            let _ = child_stdin.write_all(&input);
        });
        let output = child.wait_with_output().expect("waiting for oci-store");
        feeder.join().expect("stdin feeder");
        output
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok_bytes(&self, args: &[&str]) -> Vec<u8> {
        let output = self.run(args, b"");
        assert_success(args, &output);
        output.stdout
    }

    pub fn ok(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok_bytes(args)).expect("UTF-8 output")
    }

    /// Runs a command with `--json` that must succeed; returns the parsed document.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let stdout = self.ok(&with_json);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?} --json printed invalid JSON ({e}):\n{stdout}"))
    }

    /// Runs a command that must fail with exit status 1 and an `oci-store:` message; returns
    /// stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_with_input(args, b"")
    }

    pub fn fails_with_input(&self, args: &[&str], stdin: &[u8]) -> String {
        let output = self.run(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?} should fail with status 1; stdout:\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            stderr.starts_with("oci-store: "),
            "{args:?}: error not prefixed: {stderr}"
        );
        stderr
    }

    /// Stores `bytes` through stdin; returns the printed digest.
    pub fn put(&self, bytes: &[u8]) -> String {
        let output = self.run(&["blob", "put", "-"], bytes);
        assert_success(&["blob", "put", "-"], &output);
        String::from_utf8(output.stdout)
            .expect("UTF-8 digest")
            .trim()
            .to_string()
    }

    /// Full digests of every blob, from `blob ls`.
    pub fn listed_digests(&self) -> Vec<String> {
        self.ok(&["blob", "ls"])
            .lines()
            .map(|line| line.split(' ').next().expect("a digest").to_string())
            .collect()
    }
}

pub fn assert_success(args: &[&str], output: &Output) {
    assert!(
        output.status.success(),
        "{args:?} failed with {:?}; stderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn sha256(bytes: &[u8]) -> String {
    Digest::of_bytes(Algorithm::Sha256, bytes).to_string()
}

/// Deterministic, incompressible-looking bytes (a simple LCG), so tests need no RNG crate.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// Makes a file writable again (a blob store may keep content read-only) and replaces it.
pub fn overwrite(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("making {} writable: {e}", path.display()));
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
