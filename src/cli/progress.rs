//! Progress bars on stderr (indicatif) for the library's [`Progress`] reports: shown only when
//! stderr is a terminal and `-q` was not given, so pipes, logs and scripts never see them.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::{NoProgress, Progress, Totals};

/// The observer a command hands the library: bars on a terminal, else nothing.
pub fn for_stderr(quiet: bool) -> Box<dyn Progress> {
    if quiet || !std::io::stderr().is_terminal() {
        Box::new(NoProgress)
    } else {
        Box::new(TerminalProgress::default())
    }
}

/// One bar per phase; a finished phase's bar stays on screen with its final counts, as a
/// record of what was done.
#[derive(Default)]
pub struct TerminalProgress {
    phase: Mutex<Option<Phase>>,
}

struct Phase {
    bar: ProgressBar,
    totals: Totals,
    items_done: AtomicU64,
    bytes_done: AtomicU64,
}

impl Phase {
    fn new(label: &str, totals: Totals) -> Phase {
        // The bar's position counts bytes when their total is known, else items; the other
        // count goes into the message.
        let (length, template) = match (totals.bytes, totals.items) {
            (Some(bytes), _) => (
                Some(bytes),
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            ),
            (None, Some(items)) => (Some(items), "{prefix:>12} [{bar:30}] {pos}/{len} {msg}"),
            (None, None) => (None, "{prefix:>12} {spinner} {msg} {elapsed}"),
        };
        let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr_with_hz(10));
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        if length.is_none() {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let phase = Phase {
            bar,
            totals,
            items_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
        };
        phase.update_message();
        phase
    }

    fn update_message(&self) {
        let items = self.items_done.load(Ordering::Relaxed);
        let bytes = self.bytes_done.load(Ordering::Relaxed);
        let message = match (self.totals.bytes, self.totals.items) {
            (Some(_), Some(total)) => format!("items {items}/{total}"),
            (Some(_), None) => format!("items {items}"),
            (None, Some(_)) => format!("{}", HumanBytes(bytes)),
            (None, None) => format!("items {items}, {}", HumanBytes(bytes)),
        };
        self.bar.set_message(message);
    }
}

impl Progress for TerminalProgress {
    fn start(&self, phase: &str, totals: Totals) {
        let mut current = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = current.take() {
            previous.bar.finish();
        }
        *current = Some(Phase::new(phase, totals));
    }

    fn item_done(&self) {
        let current = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(phase) = current.as_ref() {
            phase.items_done.fetch_add(1, Ordering::Relaxed);
            if phase.totals.bytes.is_none() && phase.totals.items.is_some() {
                phase.bar.inc(1);
            }
            phase.update_message();
        }
    }

    fn bytes(&self, bytes: u64) {
        let current = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(phase) = current.as_ref() {
            phase.bytes_done.fetch_add(bytes, Ordering::Relaxed);
            if phase.totals.bytes.is_some() {
                phase.bar.inc(bytes);
            } else {
                phase.update_message();
            }
        }
    }

    fn finish(&self) {
        let mut current = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(phase) = current.take() {
            phase.update_message();
            phase.bar.finish();
        }
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        // A phase cut short by an error: leave its bar where it stopped, not half drawn.
        let current = self.phase.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(phase) = current.take() {
            phase.bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_or_no_terminal_reports_nothing_and_every_call_is_safe() {
        let progress = for_stderr(true);
        progress.start("importing", Totals::items_and_bytes(2, 10));
        progress.bytes(10);
        progress.item_done();
        progress.finish();
    }

    #[test]
    fn a_terminal_bar_survives_every_kind_of_totals() {
        let progress = TerminalProgress::default();
        for totals in [
            Totals::UNKNOWN,
            Totals::items(3),
            Totals::items_and_bytes(3, 30),
            Totals {
                items: None,
                bytes: Some(5),
            },
        ] {
            progress.start("phase", totals);
            progress.bytes(10);
            progress.item_done();
        }
        progress.finish();
        progress.finish();
    }
}
