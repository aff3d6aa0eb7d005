//! The reference tools, run as whole processes in the same run as ours: coreutils `cp` +
//! `sync`, `skopeo`, `umoci`, and `ctr` against a containerd daemon the bench starts on a
//! private socket and root directory, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::measure::BenchResult;
use super::process::{self, on_path, Run};

/// Which peer tools are installed, found once per section.
#[derive(Clone, Copy, Debug)]
pub struct Peers {
    pub skopeo: bool,
    pub umoci: bool,
    pub containerd: bool,
}

impl Peers {
    /// Finds the tools and prints one line for each missing one.
    pub fn detect() -> Peers {
        let peers = Peers {
            skopeo: on_path("skopeo"),
            umoci: on_path("umoci"),
            containerd: on_path("containerd") && on_path("ctr"),
        };
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if peers.containerd && !root {
            println!("  containerd needs root to start its daemon: ctr figures skipped");
            return Peers {
                containerd: false,
                ..peers
            };
        }
        for (present, message) in [
            (peers.skopeo, "skopeo not installed: its figures skipped"),
            (peers.umoci, "umoci not installed: its figures skipped"),
            (
                peers.containerd,
                "containerd not installed: skipped (ctr images import)",
            ),
        ] {
            if !present {
                println!("  {message} (scripts/bench-setup.sh installs it)");
            }
        }
        peers
    }
}

/// `cp -r SOURCE DEST` then `sync` of every file and directory of DEST (each fsynced, as the
/// store makes each blob and its directory durable); both processes timed.
pub fn copy_and_sync(source: &Path, dest: &Path) -> BenchResult<Run> {
    let copy = process::run(Command::new("cp").arg("-r").arg(source).arg(dest))?;
    let sync = sync_tree(dest)?;
    Ok(Run {
        seconds: copy.seconds + sync.seconds,
        max_rss_kib: copy.max_rss_kib.max(sync.max_rss_kib),
        cpu_seconds: copy.cpu_seconds + sync.cpu_seconds,
        peak_anon_kib: None,
    })
}

/// `sync PATH…` over every entry under `dir` (paths relative to `dir`, in batches so the
/// argument list stays short); the time of all batches.
pub fn sync_tree(dir: &Path) -> BenchResult<Run> {
    let mut paths = Vec::new();
    collect(dir, Path::new("."), &mut paths)?;
    let mut total = Run {
        seconds: 0.0,
        max_rss_kib: 0,
        cpu_seconds: 0.0,
        peak_anon_kib: None,
    };
    for batch in paths.chunks(4_000) {
        let run = process::run(Command::new("sync").current_dir(dir).args(batch))?;
        total.seconds += run.seconds;
        total.max_rss_kib = total.max_rss_kib.max(run.max_rss_kib);
        total.cpu_seconds += run.cpu_seconds;
    }
    Ok(total)
}

fn collect(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> BenchResult<()> {
    out.push(relative.to_path_buf());
    let full = root.join(relative);
    if std::fs::symlink_metadata(&full)?.is_dir() {
        for entry in std::fs::read_dir(&full)? {
            collect(root, &relative.join(entry?.file_name()), out)?;
        }
    }
    Ok(())
}

/// `skopeo copy oci:SOURCE:REF oci:DEST:REF`.
pub fn skopeo_copy(source: &Path, ref_name: &str, dest: &Path) -> BenchResult<Run> {
    process::run(
        Command::new("skopeo")
            .arg("copy")
            .arg("--quiet")
            .arg(format!("oci:{}:{ref_name}", source.display()))
            .arg(format!("oci:{}:{ref_name}", dest.display())),
    )
}

/// A containerd daemon of our own: config, root, state and sockets in one directory.
pub struct Containerd {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

/// How long a fresh daemon may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

impl Containerd {
    /// Starts a daemon whose state lives in `dir` (created; removed on drop). Plugins an
    /// import does not use (CRI, snapshotters needing kernel support) are disabled.
    pub fn start(dir: &Path) -> BenchResult<Containerd> {
        std::fs::create_dir_all(dir)?;
        let socket = dir.join("c.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
                 \"io.containerd.snapshotter.v1.aufs\", \"io.containerd.snapshotter.v1.btrfs\", \
                 \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\"]\n\
                 [grpc]\n  address = \"{socket}\"\n[ttrpc]\n  address = \"{socket}.ttrpc\"\n\
                 [debug]\n  address = \"{debug}\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                socket = socket.display(),
                debug = dir.join("d.sock").display(),
            ),
        )?;
        let log = std::fs::File::create(dir.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting containerd: {e}"))?;
        let daemon = Containerd {
            child,
            dir: dir.to_path_buf(),
            socket,
        };
        daemon.wait_until_ready()?;
        Ok(daemon)
    }

    fn wait_until_ready(&self) -> BenchResult<()> {
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            let answered = process::exit_code(self.ctr().arg("version"))? == 0;
            if answered {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "containerd did not answer on {} within {} s; see {}",
            self.socket.display(),
            START_TIMEOUT.as_secs(),
            self.dir.join("containerd.log").display()
        )
        .into())
    }

    fn ctr(&self) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg("bench");
        command
    }

    /// `ctr images import --no-unpack --base-name bench/image ARCHIVE`.
    pub fn import(&self, archive: &Path) -> BenchResult<Run> {
        process::run(
            self.ctr()
                .args(["images", "import", "--no-unpack", "--base-name"])
                .arg("docker.io/bench/image")
                .arg(archive),
        )
    }

    /// Names of the images the daemon holds (to check an import did import).
    pub fn images(&self) -> BenchResult<Vec<String>> {
        let text = process::output(self.ctr().args(["images", "ls", "-q"]))?;
        Ok(text.lines().map(str::to_string).collect())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
