//! A real CNCF distribution registry (Debian's `docker-registry`, 2.8) for the registry tests,
//! started on 127.0.0.1 with its own config and storage in a temp dir, and a test proxy in
//! front of it that counts requests and can cut, slow or replace answers.
//!
//! A missing `docker-registry` fails the test under `CI=true` (`scripts/test.sh` installs it)
//! and skips it otherwise, like the other interop tools.

#![allow(dead_code)] // each test file uses a different part of this

pub mod proxy;
pub mod token;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_TOOL: &str = "docker-registry";

/// How the registry authenticates.
pub enum RegistryAuth {
    None,
    /// htpasswd with one user (bcrypt).
    Basic {
        username: String,
        password: String,
    },
    /// Token auth: the realm of a [`token::TokenService`], which signs with the key whose
    /// certificate is at `certificate`.
    Token {
        realm: String,
        service: String,
        issuer: String,
        certificate: PathBuf,
    },
}

pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binding a port")
        .local_addr()
        .expect("local address")
        .port()
}

impl Registry {
    pub fn start(auth: RegistryAuth) -> Registry {
        Registry::start_with(auth, "")
    }

    /// With `extra` appended to the config (top-level YAML sections).
    pub fn start_with(auth: RegistryAuth, extra: &str) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let storage = dir.path().join("storage");
        let auth_section = match &auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Basic { username, password } => {
                let hash = bcrypt::hash(password, 5).expect("bcrypt");
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{username}:{hash}\n")).expect("htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                    htpasswd.display()
                )
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                certificate,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: \
                 {issuer}\n    rootcertbundle: {}\n",
                certificate.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  \
             filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: \
             127.0.0.1:{port}\n{auth_section}{extra}",
            storage.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(REGISTRY_TOOL)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let registry = Registry { child, dir, port };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on {} within 20 s; its log:\n{}",
            self.port,
            std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a blob into a layout's `blobs/sha256/` and returns its digest.
pub fn add_layout_blob(layout: &Path, bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hex = hex::encode(sha2::Sha256::digest(bytes));
    let dir = layout.join("blobs").join("sha256");
    std::fs::create_dir_all(&dir).expect("blobs dir");
    std::fs::write(dir.join(&hex), bytes).expect("writing a blob");
    format!("sha256:{hex}")
}

/// Adds `name -> descriptor` to a layout's `index.json`.
pub fn add_layout_ref(layout: &Path, name: &str, mut descriptor: serde_json::Value) {
    let path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("index.json")).expect("JSON");
    descriptor["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(descriptor);
    std::fs::write(&path, serde_json::to_vec(&index).expect("JSON")).expect("index.json");
}
