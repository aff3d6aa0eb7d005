//! The outcome of a torture run: per operation counts and latencies, errors by class, and every
//! violation found, printed as a table.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::verdict::Verdict;

#[derive(Clone, Debug, Default)]
pub struct OpStats {
    pub count: u64,
    pub ok: u64,
    pub expected: u64,
    pub unexpected: u64,
    pub violations: u64,
    latencies_ns: Vec<u64>,
}

impl OpStats {
    /// The `q` quantile (0..=1) of the latencies, in milliseconds (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_ns.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_ns.clone();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1] as f64 / 1e6
    }
}

/// How many messages of one kind the report lists in full.
const LISTED: usize = 25;

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub label: String,
    pub ops: BTreeMap<&'static str, OpStats>,
    /// Expected failures by class.
    pub expected: BTreeMap<&'static str, u64>,
    /// Unexpected failures: message -> count (messages name the operation).
    pub unexpected: BTreeMap<String, u64>,
    /// Answers that broke an invariant, during the run.
    pub violations: Vec<String>,
    /// What the checks after the run found.
    pub final_violations: Vec<String>,
    /// Operations that ran past the time bound, with the stacks of their process.
    pub stuck: Vec<String>,
    /// Workers that failed to run (could not open the store, exited non-zero).
    pub worker_failures: Vec<String>,
    pub wall_seconds: f64,
}

impl Report {
    pub fn record(&mut self, op: &'static str, thread: &str, latency_ns: u64, verdict: Verdict) {
        let stats = self.ops.entry(op).or_default();
        stats.count += 1;
        stats.latencies_ns.push(latency_ns);
        match verdict {
            Verdict::Fine => stats.ok += 1,
            Verdict::Expected(class) => {
                stats.expected += 1;
                *self.expected.entry(class).or_default() += 1;
            }
            Verdict::Unexpected(message) => {
                stats.unexpected += 1;
                *self
                    .unexpected
                    .entry(format!("{op}: {message}"))
                    .or_default() += 1;
            }
            Verdict::Violation(message) => {
                stats.violations += 1;
                self.violations.push(format!("{thread} {op}: {message}"));
            }
        }
    }

    pub fn total_ops(&self) -> u64 {
        self.ops.values().map(|s| s.count).sum()
    }

    pub fn unexpected_count(&self) -> u64 {
        self.unexpected.values().sum()
    }

    /// No violation, no unexpected error, nothing stuck, every worker ran.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
            && self.final_violations.is_empty()
            && self.unexpected.is_empty()
            && self.stuck.is_empty()
            && self.worker_failures.is_empty()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "torture run {}: {} operations in {:.1} s",
            self.label,
            self.total_ops(),
            self.wall_seconds
        );
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>8} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "operation",
            "count",
            "ok",
            "expected",
            "unexpected",
            "violation",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
        for (name, stats) in &self.ops {
            let _ = writeln!(
                out,
                "{:<22} {:>8} {:>8} {:>9} {:>10} {:>9} {:>9.2} {:>9.2} {:>9.2}",
                name,
                stats.count,
                stats.ok,
                stats.expected,
                stats.unexpected,
                stats.violations,
                stats.quantile_ms(0.5),
                stats.quantile_ms(0.99),
                stats.quantile_ms(1.0)
            );
        }
        let _ = writeln!(out, "expected errors:");
        if self.expected.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for (class, count) in &self.expected {
            let _ = writeln!(out, "  {count:>7}  {class}");
        }
        let _ = writeln!(out, "unexpected errors: {}", self.unexpected_count());
        for (message, count) in self.unexpected.iter().take(LISTED) {
            let _ = writeln!(out, "  {count:>7}  {message}");
        }
        let sections = [
            ("violations during the run", &self.violations),
            ("violations found after the run", &self.final_violations),
            ("stuck operations", &self.stuck),
            ("worker failures", &self.worker_failures),
        ];
        for (title, items) in sections {
            let _ = writeln!(out, "{title}: {}", items.len());
            for item in items.iter().take(LISTED) {
                let _ = writeln!(out, "  {item}");
            }
            if items.len() > LISTED {
                let _ = writeln!(out, "  ... and {} more", items.len() - LISTED);
            }
        }
        let _ = writeln!(
            out,
            "result: {}",
            if self.is_clean() { "clean" } else { "FAILED" }
        );
        out
    }
}
