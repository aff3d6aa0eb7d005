//! Runs a whole process and measures it: wall time from spawn to exit, and the child's peak
//! resident set (`ru_maxrss` from `wait4`, which reports the rusage of that one child).
//!
//! Linux carries a process's peak RSS across `exec`, and a child spawned with `vfork`/`fork`
//! starts at its parent's peak: measured straight from this bench (which holds large inputs
//! in memory at times), every child would report at least the bench's own peak. So each
//! command is started through a small copy of this binary (`--measure-child`, a few MiB),
//! which spawns the real command, times it, reaps it with `wait4` and writes the seconds and
//! `ru_maxrss` to a file for us, with the child's CPU time (user + system), which tells how
//! many cores a command kept busy. Its own start-up is outside the timed span.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::measure::BenchResult;

/// What one finished process cost.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub seconds: f64,
    /// Peak resident set of the child, KiB.
    pub max_rss_kib: u64,
    /// CPU time of the child and its reaped descendants, user + system, seconds.
    pub cpu_seconds: f64,
    /// Highest anonymous resident memory (heap, stacks: `RssAnon`) seen while the child ran,
    /// KiB, when sampled (see [`SAMPLE_HEAP`]); file pages mapped into the child (database
    /// files) are not in it, as they are in `max_rss_kib`.
    pub peak_anon_kib: Option<u64>,
}

impl Run {
    pub fn max_rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }

    pub fn peak_anon_mib(&self) -> Option<f64> {
        self.peak_anon_kib.map(|kib| kib as f64 / 1024.0)
    }
}

/// Set in a command's environment, makes the launcher sample the child's `RssAnon` from
/// `/proc/PID/status` every 2 ms while it runs (only where asked: the sampling costs the
/// launcher some CPU).
pub const SAMPLE_HEAP: &str = "OCI_STORE_BENCH_SAMPLE_HEAP";

/// Runs `command` to completion, stdout discarded, stderr kept for the error message; fails
/// unless it exits 0.
pub fn run(command: &mut Command) -> BenchResult<Run> {
    let child = spawn(command)?;
    finish(command, child)
}

/// The argument that makes this binary the measuring launcher.
pub const MEASURE_CHILD: &str = "--measure-child";

/// Starts `command` (stdout discarded, stderr piped) through the launcher, without waiting.
pub fn spawn(command: &mut Command) -> BenchResult<Started> {
    let report = tempfile::NamedTempFile::new()?;
    let mut launcher = Command::new(std::env::current_exe()?);
    launcher
        .arg(MEASURE_CHILD)
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(dir) = command.get_current_dir() {
        launcher.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => launcher.env(key, value),
            None => launcher.env_remove(key),
        };
    }
    let child = launcher
        .spawn()
        .map_err(|e| format!("starting {}: {e}", describe(command)))?;
    Ok(Started { child, report })
}

/// A launched process and where its launcher writes the measurement.
pub struct Started {
    child: Child,
    report: tempfile::NamedTempFile,
}

/// Waits for a process from [`spawn`]; fails unless it exits 0.
pub fn finish(command: &Command, started: Started) -> BenchResult<Run> {
    match wait_for(command, started)? {
        Outcome::Done(run) => Ok(run),
        Outcome::Failed(status, stderr) => {
            Err(format!("{} failed ({status}): {}", describe(command), stderr.trim()).into())
        }
    }
}

/// Runs `command` like [`run`], killed after `limit` (coreutils `timeout`): `None` when it
/// was, so a pathologically slow peer cannot hold up the whole run.
pub fn run_limited(command: &Command, limit: Duration) -> BenchResult<Option<Run>> {
    let mut limited = Command::new("timeout");
    limited
        .arg("--signal=KILL")
        .arg(limit.as_secs().to_string())
        .arg(command.get_program())
        .args(command.get_args());
    let started = spawn(&mut limited)?;
    match wait_for(&limited, started)? {
        Outcome::Done(run) => Ok(Some(run)),
        // timeout exits 128 + SIGKILL when it had to kill the command.
        Outcome::Failed(status, _) if status.code() == Some(128 + libc::SIGKILL) => Ok(None),
        Outcome::Failed(status, stderr) => {
            Err(format!("{} failed ({status}): {}", describe(command), stderr.trim()).into())
        }
    }
}

enum Outcome {
    Done(Run),
    Failed(ExitStatus, String),
}

fn wait_for(command: &Command, mut started: Started) -> BenchResult<Outcome> {
    // Read stderr to its end first: a child blocked on a full pipe would never exit.
    let mut stderr = String::new();
    if let Some(mut pipe) = started.child.stderr.take() {
        pipe.read_to_string(&mut stderr)?;
    }
    let status = started.child.wait()?;
    if !status.success() {
        return Ok(Outcome::Failed(status, stderr));
    }
    let report = std::fs::read_to_string(started.report.path())?;
    let mut fields = report.split_whitespace();
    let (Some(seconds), Some(max_rss_kib), Some(cpu_seconds), Some(peak_anon_kib)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(format!("no measurement from the launcher of {}", describe(command)).into());
    };
    Ok(Outcome::Done(Run {
        seconds: seconds.parse()?,
        max_rss_kib: max_rss_kib.parse()?,
        cpu_seconds: cpu_seconds.parse()?,
        peak_anon_kib: match peak_anon_kib {
            "-" => None,
            kib => Some(kib.parse()?),
        },
    }))
}

/// The launcher's side (`store_bench --measure-child REPORT PROGRAM ARGS…`): runs the
/// program with our stdio, writes `seconds max_rss_kib cpu_seconds peak_anon_kib` (`-` when
/// not sampled) to REPORT, exits with its code.
pub fn measure_child(arguments: &[String]) -> ! {
    let code = match launch(arguments) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("store_bench launcher: {error}");
            125
        }
    };
    std::process::exit(code)
}

fn launch(arguments: &[String]) -> BenchResult<i32> {
    let [report, program, args @ ..] = arguments else {
        return Err("usage: --measure-child REPORT PROGRAM [ARGS…]".into());
    };
    let start = Instant::now();
    let child = Command::new(program)
        .args(args)
        .spawn()
        .map_err(|e| format!("starting {program}: {e}"))?;
    let sample = std::env::var_os(SAMPLE_HEAP).is_some();
    let (status, usage, peak_anon) = wait4(child.id(), sample)?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime);
    let peak_anon = peak_anon.map_or("-".to_string(), |kib| kib.to_string());
    std::fs::write(
        report,
        format!(
            "{seconds} {} {cpu_seconds} {peak_anon}\n",
            usage.ru_maxrss.max(0)
        ),
    )?;
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

fn timeval_seconds(time: libc::timeval) -> f64 {
    time.tv_sec as f64 + time.tv_usec as f64 / 1e6
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

/// Reaps `pid` (a child std has not waited for) with its own resource usage; with `sample`,
/// polls it instead of blocking, reading its `RssAnon` between polls (the highest is
/// returned).
fn wait4(pid: u32, sample: bool) -> BenchResult<(i32, libc::rusage, Option<u64>)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut peak_anon = sample.then_some(0);
    let flags = if sample { libc::WNOHANG } else { 0 };
    loop {
        if let Some(peak) = &mut peak_anon {
            *peak = (*peak).max(rss_anon_kib(pid).unwrap_or(0));
        }
        // SAFETY: valid pointers to locals; pid is our own unreaped child.
        let reaped =
            unsafe { libc::wait4(pid as libc::pid_t, &raw mut status, flags, &raw mut usage) };
        if reaped == pid as libc::pid_t {
            return Ok((status, usage, peak_anon));
        }
        if reaped == 0 {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}): {error}").into());
        }
    }
}

/// `RssAnon` of a running process, KiB.
fn rss_anon_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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
            std::fs::metadata(&candidate).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}
