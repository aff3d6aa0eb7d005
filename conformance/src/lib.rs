//! The oci-store conformance suite: the same tests for every backend, so a new backend is
//! tested by registering it (DESIGN.md: "a conformance suite that runs the same tests against
//! every combination of registered backends").
//!
//! Modelled on containerd's `content/testsuite` and arrow-rs `object_store`'s integration
//! functions: each suite is a list of plain functions over a [`Fixture`], which opens the
//! backend under test in a fresh temporary directory. A backend author can call
//! `blob_store::run_all(my_open_fn)` directly; `tests/matrix.rs` builds one test per
//! (registered backend or combination, test) from [`matrix::cases`].
//!
//! Suites:
//! - [`digest`]: digest and prefix parsing (no backend).
//! - [`blob_store`], [`index`], [`extra_data`], [`kv_store`]: one trait, over each backend that
//!   fills that role.
//! - [`base_store`]: the store built from one backend per role, over every combination.
//! - [`oci`]: the OCI flavour over the base store, over every combination.
//! - [`appc`]: the appc flavour over the base store (and beside the OCI one), over every
//!   combination.
//! - [`workload`]: the random mixed workload that the threaded test and the multi-process
//!   worker (`conformance-worker`) run; `tests/multi_process.rs` runs several workers on one
//!   store, kills some mid-workload, and runs OCI importers beside an OCI GC loop.
//! - [`crash`]: the crash harness: works killed at every named crash point of the library
//!   (feature `crash-points`, which this crate turns on) and at random moments, then checked
//!   (`tests/crash_points.rs`; the long mode is the `crash` binary's `trials`).
//! - [`faults`]: fault-injecting wrappers of the four traits and a small real file system;
//!   `tests/faults.rs` runs the crash harness's works with I/O errors and a full disk.
//! - [`torture`]: the `stress` command's random operations over both flavours from many
//!   processes × threads, and the checker that verifies every invariant from what each worker
//!   saw acknowledged (`tests/torture.rs` runs a small configuration per combination).
//!
//! Running it: `cargo test -p oci-store-conformance` (everything), `--test matrix -- NAME
//! --exact` (one trial, e.g. `index=lmdb::index::paging`), `--test matrix -- --list`. The
//! crate's own unit tests (`self_test`) check that backends with a deliberate flaw fail the
//! test aimed at it.

pub mod appc;
pub mod base_store;
pub mod blob_store;
pub mod check;
pub mod content;
pub mod crash;
pub mod digest;
pub mod extra_data;
pub mod faults;
pub mod fixture;
pub mod index;
pub mod kv_store;
pub mod matrix;
pub mod oci;
pub mod torture;
pub mod workload;

#[cfg(test)]
mod self_test;

pub use check::{Context, TestResult};
pub use fixture::{run_suite, Fixture, SuiteTest};
