//! Runs `oci-store serve` on a test store, on 127.0.0.1 at a port the OS gives, and speaks
//! HTTP to it.

#![allow(dead_code)] // each test file uses a different part of this

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cli_support::TestStore;

/// A running `oci-store serve`; killed when dropped.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `serve --listen 127.0.0.1:0` with `args` on `store`, waits until it listens.
    pub fn start(store: &TestStore, args: &[&str]) -> Server {
        Server::start_with_env(store, args, &[])
    }

    /// [`Server::start`] with environment variables set for the server.
    pub fn start_with_env(store: &TestStore, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut command = store.command(&all);
        command.envs(env.iter().copied());
        Server::spawn(command)
    }

    /// `serve` with `args` on `store`, started as systemd starts a socket-activated service:
    /// `listener` is its descriptor 3, `LISTEN_FDS=1` and `LISTEN_PID` its own pid (set by a
    /// shell that then execs it, so the pid is the server's).
    pub fn start_activated(
        store: &TestStore,
        listener: &std::net::TcpListener,
        args: &[&str],
    ) -> Server {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let server = store.command(&all);
        let mut command = std::process::Command::new("sh");
        command
            .arg("-c")
            .arg(r#"LISTEN_PID=$$ exec "$0" "$@""#)
            .arg(server.get_program())
            .args(server.get_args());
        for (name, value) in server.get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command.env("LISTEN_FDS", "1").env_remove("LISTEN_PID");
        let fd = listener.as_raw_fd();
        // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) on
        // descriptors this process owns.
        unsafe {
            command.pre_exec(move || {
                if fd == 3 {
                    // Already in place: only its close-on-exec flag must go.
                    if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Server::spawn(command)
    }

    /// Spawns `command` (a `serve`) and waits until it says where it listens.
    fn spawn(mut command: std::process::Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting oci-store serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let written = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let address = line
                    .strip_prefix("serving the store on http://")
                    .or_else(|| line.strip_prefix("serving the store on https://"));
                if let Some(rest) = address {
                    let _ = sender.send(rest.trim_end_matches("/v2/").to_string());
                }
                written.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let Ok(address) = receiver.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start:\n{}", log.lock().unwrap());
        };
        Server {
            child,
            address,
            log,
        }
    }

    /// `http://ADDRESS` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// What the server wrote on standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log holds `text`.
    pub fn wait_for_log(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.child.wait().expect("waiting for serve")
    }

    /// Kills it with SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP exchange's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
    /// The body broke off before its end (the server aborted the response).
    pub aborted: bool,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The first error code of a distribution error body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", String::from_utf8_lossy(&self.body)))
            .to_string()
    }
}

/// Sends `method url` with `headers` and `body`; any status is an answer.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = agent
        .run(builder.body(body.to_vec()).expect("a request"))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let (body, aborted) = if method == "HEAD" {
        (Vec::new(), false)
    } else {
        match response
            .into_body()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
        {
            Ok(body) => (body, false),
            Err(_) => (Vec::new(), true),
        }
    };
    Answer {
        status,
        headers,
        body,
        aborted,
    }
}

pub fn get(url: &str) -> Answer {
    send("GET", url, &[], b"")
}

/// Each ref of `store` and what it names (not when it was last used, which moves).
pub fn refs(store: &TestStore) -> Vec<(String, String)> {
    store
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].to_string(), e["digest"].to_string()))
        .collect()
}
