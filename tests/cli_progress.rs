//! Progress bars: on a terminal, import, export, unpack, fsck and gc show their phase with
//! counts (read off a real pseudo-terminal's screen, in tmux); with -q on the same terminal,
//! and whenever stderr is not a terminal, none of it appears.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cli_support::{pseudo_random_bytes, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;

/// A layout with a layer big enough that byte counts show (1 MiB of incompressible data).
fn layout(store: &TestStore) -> PathBuf {
    let root = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&root).unwrap();
    let data = pseudo_random_bytes(1 << 20, 7);
    let big = layer(&[("data.bin", &data)]);
    let small = layer(&[("hostname", b"demo\n")]);
    let image = builder.image("linux", "amd64", &[big, small]).unwrap();
    builder.add_ref(Some("app:1"), &image);
    builder.finish().unwrap();
    root
}

/// A gzip-compressed layer of regular files with complete ustar headers.
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &tar).unwrap();
    encoder.finish().unwrap()
}

/// A tmux server of this test's own (its own socket), killed when dropped.
struct Terminal {
    socket: String,
}

impl Terminal {
    /// `None` when tmux is absent outside CI (in CI its absence is a failure).
    fn start() -> Option<Terminal> {
        let present = Command::new("tmux").arg("-V").output().is_ok();
        if !present {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tmux is needed for the terminal progress test (scripts/test.sh installs it)"
            );
            eprintln!("tmux is not installed: the terminal half of this test did not run");
            return None;
        }
        Some(Terminal {
            socket: format!("oci-store-progress-{}", std::process::id()),
        })
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket, "-f", "/dev/null"]);
        command
    }

    /// Runs `script` in a new 160x40 window and returns the screen once it printed `DONE`.
    fn screen_after(&self, name: &str, script: &Path) -> String {
        let status = self
            .tmux()
            .args(["new-session", "-d", "-s", name, "-x", "160", "-y", "40"])
            .arg(format!("sh {}; sleep 60", script.display()))
            .status()
            .expect("starting tmux");
        assert!(status.success(), "tmux new-session failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let output = self
                .tmux()
                .args(["capture-pane", "-p", "-t", name])
                .output()
                .expect("tmux capture-pane");
            let screen = String::from_utf8_lossy(&output.stdout).to_string();
            if screen.contains("DONE") {
                let _ = self.tmux().args(["kill-session", "-t", name]).status();
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not finish:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self
            .tmux()
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A shell script that runs the tool with the test's isolated settings, then prints `DONE`
/// and the exit status.
fn script(store: &TestStore, name: &str, commands: &[Vec<String>]) -> PathBuf {
    let path = store.scratch(&format!("{name}.sh"));
    let mut text =
        String::from("unset OCI_STORE_DIR OCI_STORE_CONFIG OCI_STORE_BACKEND OCI_STORE_BLOBS\n");
    text.push_str(&format!(
        "export XDG_CONFIG_HOME='{}'\n",
        store.scratch("config").display()
    ));
    for args in commands {
        text.push_str(&format!(
            "'{}' --store '{}' {} >/dev/null || echo FAILED\n",
            env!("CARGO_BIN_EXE_oci-store"),
            store.path().display(),
            args.iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    text.push_str("echo DONE\n");
    std::fs::write(&path, text).unwrap();
    path
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn a_terminal_shows_progress_and_quiet_or_a_pipe_shows_none() {
    let store = TestStore::new();
    let layout = layout(&store);
    let layout = layout.to_str().unwrap();
    let exported = store.scratch("exported");
    let rootfs = store.scratch("rootfs");
    let Some(terminal) = Terminal::start() else {
        return;
    };

    let commands = [
        words(&["import", layout]),
        words(&["export", "--sref", "app:1", exported.to_str().unwrap()]),
        words(&["unpack", "app:1", rootfs.to_str().unwrap()]),
        words(&["fsck"]),
        words(&["rm", "app:1"]),
        words(&["gc"]),
    ];
    let screen = terminal.screen_after("shown", &script(&store, "shown", &commands));
    assert!(!screen.contains("FAILED"), "a command failed:\n{screen}");
    // Four blobs in the layout (manifest, config, two layers); two layers to unpack.
    for needed in [
        "importing",
        "items 4/4",
        "exporting",
        "unpacking",
        "items 2/2",
        "checking",
        "marking",
        "sweeping",
        "collecting",
    ] {
        assert!(
            screen.contains(needed),
            "no {needed:?} on the screen:\n{screen}"
        );
    }
    // Bytes and a rate on the import's bar: the big layer is over 1 MiB.
    let import_line = screen
        .lines()
        .find(|line| line.contains("importing"))
        .unwrap();
    assert!(import_line.contains("MiB"), "{import_line}");
    assert!(import_line.contains("/s"), "no rate in {import_line}");

    // The same work with -q on the same terminal: no bars.
    let store = TestStore::new();
    let layout = self::layout(&store);
    let layout = layout.to_str().unwrap();
    let commands = [
        words(&["-q", "import", layout]),
        words(&["-q", "fsck"]),
        words(&["-q", "gc"]),
    ];
    let screen = terminal.screen_after("quiet", &script(&store, "quiet", &commands));
    assert!(!screen.contains("FAILED"), "a command failed:\n{screen}");
    for absent in ["importing", "checking", "marking", "items"] {
        assert!(
            !screen.contains(absent),
            "{absent:?} shown with -q:\n{screen}"
        );
    }
}

#[test]
fn stderr_that_is_not_a_terminal_gets_no_progress() {
    let store = TestStore::new();
    let layout = layout(&store);
    let rootfs = store.scratch("rootfs");
    for args in [
        &["import", layout.to_str().unwrap()][..],
        &["unpack", "app:1", rootfs.to_str().unwrap()],
        &["fsck"],
        &["gc"],
    ] {
        let output = store.run(args, b"");
        cli_support::assert_success(args, &output);
        assert!(
            output.stderr.is_empty(),
            "{args:?} wrote to a pipe's stderr: {:?}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
