//! `oci-store serve` started by the `serve` section on 127.0.0.1 (a free port, access log off),
//! and the peak resident set of a server process, ours or distribution's, over a span the
//! section chooses.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

use super::measure::BenchResult;
use super::oci_cli::{self, Config};

/// What `oci-store serve` prints on stderr once it listens.
const LISTENING: &str = "serving the store on http://";

/// A running `oci-store serve`; killed when dropped (a read-only server has nothing to lose,
/// a push server's store is thrown away after its push).
pub struct OurServer {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl OurServer {
    /// `oci-store --store STORE … --quiet serve --listen 127.0.0.1:0 [--push]`, once it
    /// listens.
    pub fn start(store: &Path, config: Config, push: bool) -> BenchResult<OurServer> {
        OurServer::start_with_env(store, config, push, &[])
    }

    /// [`OurServer::start`] with environment variables set for the server.
    pub fn start_with_env(
        store: &Path,
        config: Config,
        push: bool,
        env: &[(&str, &str)],
    ) -> BenchResult<OurServer> {
        let mut arguments = vec!["--quiet", "serve", "--listen", "127.0.0.1:0"];
        if push {
            arguments.push("--push");
        }
        let mut child = oci_cli::command(store, config, &arguments)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", oci_cli::binary().display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let mut lines = BufReader::new(stderr);
        let mut said = String::new();
        let address = loop {
            let mut line = String::new();
            if lines.read_line(&mut line)? == 0 {
                let status = child.wait()?;
                return Err(format!(
                    "oci-store serve exited ({status}) before listening: {}",
                    said.trim()
                )
                .into());
            }
            if let Some(rest) = line.trim().split(LISTENING).nth(1) {
                break rest.trim_end_matches("/v2/").to_string();
            }
            said.push_str(&line);
        };
        // Whatever it prints later (warnings, errors) must not fill the pipe and stall it.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut lines.into_inner(), &mut std::io::sink());
        });
        Ok(OurServer { child, address })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resets the peak resident set (`VmHWM`) of process `pid` to its current one (`echo 5 >
/// /proc/PID/clear_refs`), so that the next [`peak_rss_mib`] covers only what follows.
/// `false` when the kernel refused: the peak then covers the process's whole life.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// `VmHWM` of /proc/PID/status, MiB.
pub fn peak_rss_mib(pid: u32) -> BenchResult<f64> {
    let mut status = String::new();
    std::fs::File::open(format!("/proc/{pid}/status"))?.read_to_string(&mut status)?;
    let kib: f64 = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .ok_or_else(|| format!("no VmHWM in /proc/{pid}/status"))?
        .parse()?;
    Ok(kib / 1024.0)
}

/// CPU time process `pid` has used so far, user + system, all its threads (fields 14 and 15
/// of /proc/PID/stat), seconds.
pub fn cpu_seconds(pid: u32) -> BenchResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after_name = stat
        .rsplit_once(')')
        .ok_or_else(|| format!("unreadable /proc/{pid}/stat"))?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |field: usize| -> BenchResult<f64> {
        Ok(fields
            .get(field - 3)
            .ok_or_else(|| format!("/proc/{pid}/stat has no field {field}"))?
            .parse::<f64>()?)
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(14)? + ticks(15)?) / per_second)
}
