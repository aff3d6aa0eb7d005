//! Fault injection (issue 10, "Faults"): a wrapper of each trait that fails chosen calls with
//! an I/O error (`EIO`, once: a transient device error) or a full disk (`ENOSPC`, sticky: every
//! write fails until space returns), and a store built over them.
//!
//! [`FaultPlan`] counts the calls the wrappers make and fails the `n`-th (and, sticky, every
//! later) call that the fault can hit: any call for `EIO`, only calls that write for `ENOSPC`
//! (a full disk still reads). Counting a clean run first gives the number of places a fault
//! can land; the faults test (`conformance/tests/faults.rs`) then runs each crash-harness work
//! with the fault at those places and checks: a clear error naming the cause, no partial blob
//! (`fsck` finds only repairable garbage), nothing acknowledged lost, and the same work
//! succeeding once the fault is cleared.
//!
//! The wrappers are not registered backends: they wrap whatever backends a store directory
//! records ([`faulty_store`]), so every registered backend is tested through them.

mod blob_store;
mod metadata;
mod plan;
pub mod small_filesystem;
pub mod trial;

pub use plan::{FaultKind, FaultPlan};

use std::path::Path;
use std::sync::Arc;

use oci_store::store::StoreConfig;
use oci_store::traits::registry::{open_blob_store, open_extra_data, open_index, open_kv_store};
use oci_store::traits::{BlobStore, ExtraData, Index, KvStore, Role};
use oci_store::Store;

/// The store in `dir` (which must exist) over its recorded backends, each wrapped to fail as
/// `plan` says.
pub fn faulty_store(dir: &Path, plan: &Arc<FaultPlan>) -> Result<Store, String> {
    let config = StoreConfig::read(dir)
        .map_err(|e| format!("reading store.json: {e}"))?
        .ok_or("no store.json")?;
    let opened = |role: Role| config.backend(role).to_string();
    let error = |e: oci_store::traits::StorageError| format!("opening a backend: {e}");
    let blobs: Arc<dyn BlobStore> = Arc::new(blob_store::FaultyBlobStore::new(
        open_blob_store(&opened(Role::Blobs), dir).map_err(error)?,
        plan.clone(),
    ));
    let index: Arc<dyn Index> = Arc::new(metadata::FaultyIndex::new(
        open_index(&opened(Role::Index), dir).map_err(error)?,
        plan.clone(),
    ));
    let extra: Arc<dyn ExtraData> = Arc::new(metadata::FaultyExtraData::new(
        open_extra_data(&opened(Role::Extra), dir).map_err(error)?,
        plan.clone(),
    ));
    let kv: Arc<dyn KvStore> = Arc::new(metadata::FaultyKvStore::new(
        open_kv_store(&opened(Role::Kv), dir).map_err(error)?,
        plan.clone(),
    ));
    Store::from_parts(dir, blobs, index, extra, kv).map_err(|e| format!("opening the store: {e}"))
}
