//! The stacks of a stuck worker process, for the report: every thread's backtrace through gdb
//! (`thread apply all bt`) when gdb is installed and may attach, else what `/proc` tells about
//! each thread (its kernel stack where readable, the wait channel and the current syscall).

use std::process::Command;
use std::time::Duration;

pub fn stacks_of(pid: u32) -> String {
    match gdb_backtrace(pid) {
        Some(text) => text,
        None => proc_stacks(pid),
    }
}

fn gdb_backtrace(pid: u32) -> Option<String> {
    let mut child = Command::new("gdb")
        .args(["-batch", "-nx", "-p", &pid.to_string()])
        .args(["-ex", "set pagination off", "-ex", "thread apply all bt"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    // gdb on a process with many threads can take a while; bound it.
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > Duration::from_secs(60) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => return None,
        }
    }
    let output = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.contains("Thread ").then_some(text)
}

fn proc_stacks(pid: u32) -> String {
    let mut text = format!("gdb gave no backtrace of pid {pid}; from /proc:\n");
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        text.push_str("  (the process is gone)\n");
        return text;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_or_else(|e| format!("({e})"), |s| s.trim().to_string())
        };
        text.push_str(&format!(
            "  task {}: {} wchan={} syscall={}\n",
            task.file_name().to_string_lossy(),
            read("comm"),
            read("wchan"),
            read("syscall")
        ));
        for line in read("stack").lines() {
            text.push_str(&format!("      {line}\n"));
        }
    }
    text
}
