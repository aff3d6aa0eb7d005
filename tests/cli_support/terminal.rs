//! A real pseudo-terminal for tests that read what a user's screen shows: a tmux server of the
//! test's own, a script run in one of its windows, and the screen captured when it is done.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::TestStore;

/// A tmux server of this test's own (its own socket), killed when dropped.
pub struct Terminal {
    socket: String,
}

impl Terminal {
    /// `None` when tmux is absent outside CI (in CI its absence is a failure).
    pub fn start() -> Option<Terminal> {
        let present = Command::new("tmux").arg("-V").output().is_ok();
        if !present {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tmux is needed for the terminal progress tests (scripts/test.sh installs it)"
            );
            eprintln!("tmux is not installed: the terminal half of this test did not run");
            return None;
        }
        // A server of its own per terminal: two tests of one binary run at once, and one
        // test's last kill-session stops its server while the other may be starting a session.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Terminal {
            socket: format!("oci-store-progress-{}-{n}", std::process::id()),
        })
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket, "-f", "/dev/null"]);
        command
    }

    /// Runs `script` in a new 160x40 window and returns the screen once it printed `DONE`.
    pub fn screen_after(&self, name: &str, script: &Path) -> String {
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
pub fn script(store: &TestStore, name: &str, commands: &[Vec<String>]) -> PathBuf {
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

pub fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(std::string::ToString::to_string).collect()
}
