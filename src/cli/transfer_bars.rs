//! Registry transfers on a terminal: one bar for the whole transfer (blobs done of planned,
//! bytes, rate) and, under it, a line per blob, as `docker pull` shows them: a bar while the
//! blob moves, left full with `done` when it is in place; a blob that needs no transfer
//! (already stored, already in the registry, mounted) gets a line saying so. Nothing of it is
//! drawn when stderr is not a terminal or with `-q`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::{Direction, Progress, SkipReason, TransferEvent};
use crate::traits::Digest;

/// The observer a registry command hands the client: bars on a terminal, else nothing.
pub fn for_stderr(quiet: bool) -> TransferBars {
    let target = if quiet || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr_with_hz(10)
    };
    TransferBars::new(target)
}

pub struct TransferBars {
    bars: MultiProgress,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    overall: Option<ProgressBar>,
    planned_blobs: u64,
    blobs_done: u64,
    per_blob: HashMap<Digest, ProgressBar>,
}

impl TransferBars {
    pub fn new(target: ProgressDrawTarget) -> TransferBars {
        TransferBars {
            bars: MultiProgress::with_draw_target(target),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Blobs moving now (for tests).
    pub fn blobs_in_flight(&self) -> usize {
        self.state().per_blob.len()
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Bytes the overall bar has counted (for tests).
    pub fn bytes_counted(&self) -> u64 {
        self.state()
            .overall
            .as_ref()
            .map_or(0, ProgressBar::position)
    }

    fn blob_done(&self, state: &mut State, digest: &Digest, status: &str) {
        match state.per_blob.remove(digest) {
            Some(bar) => bar.finish_with_message(status.to_string()),
            None => {
                let line = self.bars.add(ProgressBar::new(0));
                line.set_style(style("{prefix:>12} {msg}"));
                line.set_prefix(short(digest));
                line.finish_with_message(status.to_string());
            }
        }
        state.blobs_done += 1;
        if let Some(overall) = &state.overall {
            overall.set_message(format!(
                "blobs {}/{}",
                state.blobs_done, state.planned_blobs
            ));
        }
    }
}

/// The short form users know from `docker pull`: the first 12 hex digits.
fn short(digest: &Digest) -> String {
    digest.hex()[..12].to_string()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress for TransferBars {
    fn transfer(&self, event: TransferEvent) {
        let mut state = self.state();
        match event {
            TransferEvent::Planned {
                blobs,
                bytes,
                direction,
            } => {
                let label = match direction {
                    Direction::Download => "pulling",
                    Direction::Upload => "pushing",
                };
                let overall = self.bars.add(ProgressBar::new(bytes));
                overall.set_style(style(
                    "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
                ));
                overall.set_prefix(label);
                overall.set_message(format!("blobs 0/{blobs}"));
                state.planned_blobs = blobs;
                state.overall = Some(overall);
            }
            TransferEvent::Started { digest, size, .. } => {
                let bar = self.bars.add(ProgressBar::new(size));
                bar.set_style(style("{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {msg}"));
                bar.set_prefix(short(&digest));
                state.per_blob.insert(digest, bar);
            }
            TransferEvent::Advanced {
                digest,
                done,
                delta,
            } => {
                if let Some(bar) = state.per_blob.get(&digest) {
                    bar.set_position(done);
                }
                if let Some(overall) = &state.overall {
                    overall.inc(delta);
                }
            }
            TransferEvent::Finished { digest } => self.blob_done(&mut state, &digest, "done"),
            TransferEvent::Skipped { digest, reason } => {
                let status = match reason {
                    SkipReason::AlreadyStored => "already stored",
                    SkipReason::AlreadyInRegistry => "already in the registry",
                    SkipReason::Mounted => "mounted",
                };
                self.blob_done(&mut state, &digest, status);
            }
            TransferEvent::Done => {
                for (_, bar) in state.per_blob.drain() {
                    bar.finish();
                }
                if let Some(overall) = &state.overall {
                    overall.finish();
                }
            }
        }
    }
}

impl Drop for TransferBars {
    fn drop(&mut self) {
        // A transfer cut short by an error: leave the bars where they stopped.
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, bar) in state.per_blob.drain() {
            bar.abandon();
        }
        if let Some(overall) = state.overall.take() {
            if !overall.is_finished() {
                overall.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    #[test]
    fn each_blob_has_its_own_bar_while_it_moves() {
        let bars = TransferBars::new(ProgressDrawTarget::hidden());
        let [a, b, c] = [1u8, 2, 3].map(|n| Digest::of_bytes(Algorithm::Sha256, &[n]));
        bars.transfer(TransferEvent::Planned {
            blobs: 3,
            bytes: 300,
            direction: Direction::Download,
        });
        for digest in [&a, &b] {
            bars.transfer(TransferEvent::Started {
                digest: digest.clone(),
                size: 150,
                direction: Direction::Download,
            });
        }
        assert_eq!(bars.blobs_in_flight(), 2, "a bar per blob in flight");
        bars.transfer(TransferEvent::Advanced {
            digest: a.clone(),
            done: 100,
            delta: 100,
        });
        bars.transfer(TransferEvent::Advanced {
            digest: b.clone(),
            done: 150,
            delta: 150,
        });
        bars.transfer(TransferEvent::Finished { digest: b });
        assert_eq!(bars.blobs_in_flight(), 1, "a finished blob no longer moves");
        bars.transfer(TransferEvent::Skipped {
            digest: c,
            reason: SkipReason::AlreadyStored,
        });
        assert_eq!(bars.blobs_in_flight(), 1, "a skipped blob does not move");
        assert_eq!(bars.bytes_counted(), 250);
        bars.transfer(TransferEvent::Finished { digest: a });
        bars.transfer(TransferEvent::Done);
        assert_eq!(bars.blobs_in_flight(), 0);
    }
}
