//! CNCF distribution as a pull-through cache, the `mirror` section's reference: Debian's
//! `docker-registry` with `proxy: remoteurl:` set, on 127.0.0.1 with storage of its own.
//! (The plain registry of the other sections, `registry::LocalRegistry`, writes a config
//! without a proxy: this one differs only in that.)

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::measure::BenchResult;

/// A running proxy-mode registry; killed when dropped.
pub struct ProxyRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl ProxyRegistry {
    /// Starts `docker-registry` caching `remote_url` (`http://127.0.0.1:PORT`), its storage
    /// in `dir/registry-storage`, and waits until it listens.
    pub fn start(dir: &Path, remote_url: &str) -> BenchResult<ProxyRegistry> {
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n\
                 proxy:\n  remoteurl: {remote_url}\n",
                dir.join("registry-storage").display()
            ),
        )?;
        // Its errors (log level error) go to a file beside its config, for a failed run.
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let registry = ProxyRegistry {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.address).is_err() {
            if Instant::now() > deadline {
                return Err("docker-registry (proxy mode) did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }
}

impl Drop for ProxyRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
