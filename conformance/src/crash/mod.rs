//! The crash harness (issue 10, "Crash points"): kill a worker process at every named crash
//! point of the store's protocols (and at random moments), then check what it left.
//!
//! A [`works::Work`] is one piece of work with its setup: writing blobs, the delete cascade,
//! an OCI import, an export into a layout, the base, OCI and appc GCs, an appc import and
//! render, the store and backend format upgrades, a backend conversion. The worker binary
//! (`conformance/src/bin/crash.rs`) runs one phase of one work in its own process, with the
//! library's crash points (`oci_store::crash_point!`, feature `crash-points`) armed through
//! `OCI_STORE_CRASH_AT` and logged through `OCI_STORE_CRASH_LOG`.
//!
//! [`harness::Campaign`] runs trials. Per backend combination it first runs each work once
//! without a crash, learning which points it reaches (and how often) and taking the
//! reference [`snapshot::Snapshot`] of a clean run. Then each trial: set up a fresh store;
//! run the work with one point armed (or kill it after a random delay); reopen the store and
//! check ([`verdict`]): what the work acknowledged is whole, what it had not committed is
//! invisible or whole, `fsck` reports only repairable garbage, `fsck --repair` leaves it
//! clean; then run the same work again (it must succeed) and let the flavours settle: the
//! store must then hold exactly what the clean run left. The campaign fails if a crash point
//! compiled into the worker was never crashed at.

pub mod harness;
pub mod snapshot;
pub mod trial;
pub mod verdict;
pub mod works;
