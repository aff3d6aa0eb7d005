//! containerd's `ctr` against `oci-store serve`: `ctr images pull --plain-http` of a served
//! image and `ctr images push --plain-http` of it under another name, digests compared, on a
//! containerd daemon the test starts on a private socket (it needs root, as containerd does).

mod cli_support;
mod interop_tools;
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::TestStore;
use interop_tools::{path_str, tools_available};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serve_support::Server;

/// A containerd daemon of the test's own: config, state and sockets in one directory.
struct Containerd {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
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
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        let daemon = Containerd {
            child,
            socket,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if daemon.ctr(&["version"]).status.success() {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "containerd did not answer within 30 s: {}",
            std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
        );
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "serve-test"])
            .args(args)
            .output()
            .expect("running ctr")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.ctr(args);
        assert!(
            output.status.success(),
            "ctr {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn ctr_pulls_from_and_pushes_to_serve() {
    if !tools_available("ctr_pulls_from_and_pushes_to_serve", &["containerd", "ctr"]) {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "containerd needs root to start its daemon; CI=true, so this is a failure"
        );
        eprintln!("skipping: containerd needs root");
        return;
    }
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layers = [
        LayoutBuilder::layer_tar_gz(&[("etc/os-release", b"NAME=demo\n")]).unwrap(),
        LayoutBuilder::layer_tar_gz(&[("app/hello.txt", b"hello from serve\n")]).unwrap(),
    ];
    let image = builder.runnable_image("linux", "amd64", &layers).unwrap();
    builder.add_ref(Some("demo:v1"), &image);
    builder.finish().unwrap();
    let digest = image.digest().to_string();
    store.ok(&["import", path_str(&layout)]);
    let server = Server::start(&store, &["--push"]);
    // Kept short: containerd's socket path must fit in sun_path.
    let daemon_dir = std::env::temp_dir().join(format!("ctr-{}", std::process::id()));
    let containerd = Containerd::start(&daemon_dir);

    let source = format!("{}/demo:v1", server.address);
    containerd.ok(&["images", "pull", "--plain-http", "--all-platforms", &source]);
    let listed = containerd.ok(&["images", "ls"]);
    let row = listed
        .lines()
        .find(|line| line.starts_with(&source))
        .unwrap_or_else(|| panic!("{source} not in ctr images ls:\n{listed}"));
    assert!(row.contains(&digest), "{row}");

    let destination = format!("{}/from-ctr/demo:v2", server.address);
    containerd.ok(&["images", "tag", &source, &destination]);
    containerd.ok(&["images", "push", "--plain-http", &destination]);
    let refs = store.json(&["list", "--json"]);
    let pushed = refs
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == "from-ctr/demo:v2")
        .unwrap_or_else(|| panic!("from-ctr/demo:v2 not listed: {refs}"));
    assert_eq!(pushed["digest"], digest.as_str());
    store.ok(&["check", "--verify", "from-ctr/demo:v2"]);
}
