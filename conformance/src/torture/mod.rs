//! Torture: many processes × threads run random operations on one store, each logging what
//! the store answered; a checker then verifies every invariant of DESIGN.md from those logs and
//! from the store's final state (issue 10, "Torture").
//!
//! - Operations ([`event::Op`]): blob writes of the same and of different contents, reads,
//!   deletes and releases; key/value put, compare-and-set and remove, with and without a blob
//!   reference; extra data; OCI import (layout directories and an `oci-archive`, one with a
//!   referrer), tag (by ref and by digest), remove, check, export into one shared layout,
//!   unpack, leases; appc import, remove, render, export; the OCI, appc and base GCs; fsck with
//!   and without repair.
//! - Objects are *own* (one thread's: predicted exactly by [`own_model::OwnModel`]) or *shared*
//!   (every thread's: judged by [`shared_history::SharedHistory`] from the operations'
//!   intervals). So "acknowledged and not later removed by an acknowledged operation of the
//!   model" is checked exactly where it can be and as tightly as the interleaving allows where
//!   it cannot.
//! - After the run ([`final_state`]): every own object as the model says, every shared object
//!   that must be there there, every ref complete, leased images kept by one more OCI GC,
//!   fsck clean, the shared export layout as exported and importable, counters adding up, and
//!   after `fsck --repair` no garbage and no staged write left.
//! - No deadlock: each worker's watchdog reports an operation past the time bound; the
//!   orchestrator then prints the stacks of that process ([`stacks`]: gdb, or `/proc`) and
//!   fails the run.
//!
//! `cargo run --release -p oci-store-conformance --bin stress -- --processes 8 --threads 4
//! --seconds 60 --backend lmdb` runs it; `tests/torture.rs` runs a small configuration per
//! backend combination.

pub mod choose;
pub mod event;
pub mod final_state;
pub mod inputs;
pub mod judge;
pub mod layouts;
pub mod ops;
pub mod own_model;
pub mod races;
pub mod report;
pub mod run;
pub mod shared_history;
pub mod stacks;
pub mod verdict;
pub mod worker;

pub use report::Report;
pub use run::{check_run, run_stress, run_workers, RunDirs, StressConfig, WorkersRun};
pub use worker::{run_worker, WorkerConfig};

#[cfg(test)]
mod self_test;
