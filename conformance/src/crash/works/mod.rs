//! The works the crash harness interrupts, one per protocol the store promises survives a
//! crash. Each is deterministic: its setup and run do the same steps every time, so the
//! crash points a clean run reaches are the ones a trial can arm.

mod appc;
mod blobs;
mod formats;
mod oci;

use oci_store::Store;

use super::trial::Trial;
use crate::check::TestResult;
use crate::matrix::Combination;

/// One piece of work and what must hold after it was interrupted anywhere.
pub trait Work: Sync {
    fn name(&self) -> &'static str;

    /// Whether the work makes sense over these backends.
    fn applies_to(&self, _combination: &Combination) -> bool {
        true
    }

    /// Whether the run does its work through the store [`Trial::open_store`] gives (so the
    /// fault-injecting wrappers see it); upgrades and conversion open backends themselves.
    fn runs_on_the_trial_store(&self) -> bool {
        true
    }

    /// Whether the run writes into the store (an export only reads it).
    fn writes_the_store(&self) -> bool {
        true
    }

    /// Whether the work frees space rather than needing it (deletes, GCs): on a full disk it
    /// may well succeed.
    fn frees_space(&self) -> bool {
        false
    }

    /// Makes the store and inputs the work starts from (no crash point armed).
    fn setup(&self, trial: &Trial) -> Result<(), String>;

    /// The work a crash may interrupt. It acknowledges ([`Trial::ack`]) each step as it
    /// returns, so the check knows what a caller was told is done.
    fn run(&self, trial: &Trial) -> Result<(), String>;

    /// Right after the run ended (`completed`: it exited 0; else it was killed), with the
    /// store just reopened and before any repair: what the work committed is whole and what
    /// it did not commit is invisible.
    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult;

    /// After the repair and the second run: the flavour's own clean-up (its GC), which the
    /// clean run does too, so that both end alike.
    fn settle(&self, _store: &Store, _trial: &Trial) -> TestResult {
        Ok(())
    }
}

/// Every work, in the order the harness runs them.
pub fn all() -> Vec<&'static dyn Work> {
    vec![
        &blobs::BlobWrite,
        &blobs::BlobDelete,
        &blobs::BaseGc,
        &oci::OciImport,
        &oci::OciExport,
        &oci::OciGc,
        &oci::OciPrune,
        &oci::OciReceive,
        &appc::AppcRender,
        &appc::AppcGc,
        &formats::StoreUpgrade,
        &formats::SqliteMigration,
        &formats::Conversion,
    ]
}

pub fn named(name: &str) -> Result<&'static dyn Work, String> {
    all()
        .into_iter()
        .find(|work| work.name() == name)
        .ok_or_else(|| format!("no work named {name}"))
}
