//! Runs a whole process and measures it: wall time from spawn to exit, and the child's peak
//! resident set (`ru_maxrss` from `wait4`, which reports the rusage of that one child).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::measure::BenchResult;

/// What one finished process cost.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub seconds: f64,
    /// Peak resident set of the child, KiB.
    pub max_rss_kib: u64,
}

impl Run {
    pub fn max_rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

/// Runs `command` to completion, stdout discarded, stderr kept for the error message; fails
/// unless it exits 0.
pub fn run(command: &mut Command) -> BenchResult<Run> {
    let child = spawn(command)?;
    finish(command, child)
}

/// Starts `command` (stdout discarded, stderr piped) without waiting.
pub fn spawn(command: &mut Command) -> BenchResult<Started> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("starting {}: {e}", describe(command)))?;
    Ok(Started { child, start })
}

/// A spawned process and when it started.
pub struct Started {
    child: Child,
    start: Instant,
}

/// Waits for a process from [`spawn`]; fails unless it exits 0.
pub fn finish(command: &Command, mut started: Started) -> BenchResult<Run> {
    // Read stderr to its end first: a child blocked on a full pipe would never exit.
    let mut stderr = String::new();
    if let Some(mut pipe) = started.child.stderr.take() {
        pipe.read_to_string(&mut stderr)?;
    }
    let (status, usage) = wait4(started.child.id())?;
    let seconds = started.start.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!(
            "{} failed (wait status {status}): {}",
            describe(command),
            stderr.trim()
        )
        .into());
    }
    Ok(Run {
        seconds,
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
    })
}

/// Exit code of `command` (output discarded), for probing what a tool supports.
pub fn exit_code(command: &mut Command) -> BenchResult<i32> {
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("starting {}: {e}", describe(command)))?;
    Ok(status.code().unwrap_or(-1))
}

/// Standard output of `command`, which must succeed.
pub fn output(command: &mut Command) -> BenchResult<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("starting {}: {e}", describe(command)))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            describe(command),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reaps `pid` (a child std has not waited for) with its own resource usage.
fn wait4(pid: u32) -> BenchResult<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own unreaped child.
        let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if reaped == pid as libc::pid_t {
            return Ok((status, usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}): {error}").into());
        }
    }
}

/// `program arg arg …`, shortened when the argument list is long.
pub fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    let arguments: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    words.extend(arguments.iter().take(8).cloned());
    if arguments.len() > 8 {
        words.push(format!("… ({} arguments)", arguments.len()));
    }
    words.join(" ")
}

/// Is `program` on `PATH`?
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(program);
            std::fs::metadata(&candidate)
                .is_ok_and(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
        })
    })
}
