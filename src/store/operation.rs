//! Operations: the one way a flavour makes a multi-step change all or nothing (DESIGN.md, "One
//! mechanism per protocol", "An import is all or nothing"). OCI layout and archive import,
//! pull, appc import and a flavour of one's own (docs/FLAVOURS.md) all run as one.
//!
//! - Begin ([`Store::begin_operation`]): the operation gets its own holder,
//!   `<flavour>-op.<id>`, takes its liveness lock `locks/operation-<holder>.lock` (exclusive, for
//!   its whole life: an flock dies with its process) and records itself as the key/value entry
//!   `store.operation/<holder>` (flavour, pid, start) before it stores anything.
//! - Storing: blobs the store has are held in one locked step ([`Operation::hold_present`]);
//!   the others are staged (streamed and verified, in parallel) and committed in batches under
//!   the operation's hold ([`Operation::commit_staged`], [`Operation::commit_arrivals`]). While
//!   it runs no flavour's GC sweeps them and the base GC does not collect them: they have a
//!   holder.
//! - Commit ([`Operation::commit`]), one step under the exclusive digest locks of everything it
//!   names: its key/value entries land in one atomic batch together with the record of what it
//!   keeps; then, in one extra-data batch, the hold on every kept blob passes to the flavour's
//!   owner mark, with the operation's extra data; then it lets go of what it touched but does
//!   not keep, and its entry goes last. A refused batch (a compare-and-set conflict) changes
//!   nothing: the operation still holds everything and lets go of it when dropped.
//! - Refusal or error (dropping the operation uncommitted): it lets go of every blob it
//!   touched, deleting what nothing else holds, and removes its entry: the store's full dump is
//!   what it was.
//! - Crash: the entry is left, its liveness lock is not held. [`Store::clear_dead_operations`]
//!   (the base GC and every flavour's GC run it) rolls the operation forward if its key/value
//!   batch landed (the holds pass to the flavour, as the commit would have done) and back
//!   otherwise (it lets go of everything).

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::base::Store;
use super::blobs::WriteOptions;
use super::data::{validate_key, validate_name};
use super::error::{StoreError, StoreResult};
use super::holder::Holder;
use super::locks::{LockGuard, LockMode};
use super::staged::StagedBlob;
use crate::traits::{BlobRecord, Digest, ExtraData, ExtraOp, Index, KvOp, KvStore};
use crate::util::clock::{now_unix_ms, now_unix_nanos};

/// Key/value data type of the entries that record running (or crashed) operations; the key is
/// the operation's holder.
pub const OPERATION_DATA_TYPE: &str = "store.operation";

/// Taken shared while an operation creates its liveness lock and records itself, exclusive
/// while dead operations are found: so every recorded operation that is alive holds its
/// liveness lock by then.
const BEGIN_LOCK: &str = "operations";

/// Name prefix of the liveness locks (`locks/operation-<holder>.lock`).
const LIVENESS_PREFIX: &str = "operation-";

fn liveness_lock(holder: &Holder) -> String {
    format!("{LIVENESS_PREFIX}{}", holder.name())
}

/// An operation whose process died, and what finishing it frees (or, in a dry run, would
/// free): the blobs its holder alone kept. A crashed pull's downloaded layers are here until a
/// GC clears them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StaleOperation {
    /// Its holder (`oci-op.<id>`).
    pub holder: String,
    /// The process that ran it.
    pub pid: u32,
    /// Blobs it held.
    pub held_blobs: u64,
    /// Of those, blobs deleted (that would be deleted) when it is finished: nothing else holds
    /// them, and the operation's commit had not landed.
    pub freed_blobs: u64,
    /// Their bytes.
    pub freed_bytes: u64,
}

/// The value of an operation's entry.
#[derive(Default, Serialize, Deserialize)]
struct OperationRecord {
    #[serde(default)]
    flavour: String,
    #[serde(default)]
    pid: u32,
    #[serde(default)]
    started_unix_ms: i64,
    /// What the operation keeps: written in the same key/value batch as its entries, so a
    /// crashed operation that has it is rolled forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keep: Option<Vec<String>>,
}

impl OperationRecord {
    fn to_bytes(&self) -> StoreResult<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| StoreError::Invalid(e.to_string()))
    }
}

/// An id no other operation of any process has: pid, time and a per-process counter, all in
/// characters valid in extra-data type names.
fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = now_unix_nanos();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos}-{count}", std::process::id())
}

/// A blob ready for an operation's commit step: staged, or found in the store (to be held).
pub enum Arrival<'s> {
    Staged(StagedBlob<'s>),
    Present { digest: Digest, size: u64 },
}

/// What one commit step of an operation stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Staged blobs committed, and their bytes.
    pub blobs_written: u64,
    pub bytes_written: u64,
    /// Blobs the store had, now held.
    pub blobs_held: u64,
}

/// The end of an operation: what it keeps, and what it writes with that.
#[derive(Clone, Copy, Debug, Default)]
pub struct OperationCommit<'a> {
    /// Blobs whose hold passes to the flavour's owner mark; the operation lets go of the rest.
    pub keep: &'a [Digest],
    /// Key/value entries, written in one atomic batch (a conflict refuses the whole commit).
    pub data: &'a [KvOp],
    /// Extra data, written in the same batch as the owner marks.
    pub extra: &'a [ExtraOp],
}

impl<'a> OperationCommit<'a> {
    /// Keeps `keep` and writes `data`, with no extra data.
    pub fn new(keep: &'a [Digest], data: &'a [KvOp]) -> Self {
        OperationCommit {
            keep,
            data,
            extra: &[],
        }
    }
}

/// A running operation (see the module documentation). Dropping it uncommitted lets go of
/// everything it holds.
pub struct Operation<'s> {
    store: &'s Store,
    /// Who keeps what the operation commits.
    flavour: Holder,
    /// The operation's own holder, `<flavour>-op.<id>`.
    holder: Holder,
    /// Blobs the holder's mark may be on, in the order they were touched.
    touched: Vec<Digest>,
    seen: HashSet<Digest>,
    /// Held for the operation's life; its file goes with the entry.
    liveness: Option<LockGuard>,
    /// The commit has happened (its first batch landed): from then on a failure leaves the
    /// operation to be rolled forward, never back.
    committed: bool,
}

impl Store {
    /// Begins an operation of `flavour`, recorded before it stores anything. The caller holds
    /// the flavour's mutation lock from before the operation holds anything to its commit (so
    /// the flavour's GC does not sweep what it commits); an operation that only stages until
    /// then (a registry upload) may take it just for its commit step.
    pub fn begin_operation(&self, flavour: &Holder) -> StoreResult<Operation<'_>> {
        let holder = flavour.operation(&unique_id());
        validate_name("operation holder", &holder.mark())?;
        let record = OperationRecord {
            flavour: flavour.name().to_string(),
            pid: std::process::id(),
            started_unix_ms: now_unix_ms(),
            keep: None,
        };
        let beginning = self.named_lock(BEGIN_LOCK, LockMode::Shared)?;
        let liveness = self.named_lock(&liveness_lock(&holder), LockMode::Exclusive)?;
        let key = holder.name();
        if let Err(error) = self.put_data(OPERATION_DATA_TYPE, key, &record.to_bytes()?, None) {
            remove_lock_file(&liveness);
            return Err(error);
        }
        drop(beginning);
        crate::crash_point!("store.operation.after-begin");
        Ok(Operation {
            store: self,
            flavour: flavour.clone(),
            holder,
            touched: Vec::new(),
            seen: HashSet::new(),
            liveness: Some(liveness),
            committed: false,
        })
    }

    /// Finishes the operations whose process died (their liveness lock is free): one whose
    /// key/value batch landed is rolled forward (its holds pass to its flavour), any other
    /// rolled back (its holds are let go of, deleting what nothing else holds); then its entry
    /// goes. Also removes liveness files a crash left without an entry. Returns how many
    /// operations were finished. Safe at any time, beside running operations.
    pub fn clear_dead_operations(&self) -> StoreResult<u64> {
        Ok(self.clear_dead_operations_reporting()?.len() as u64)
    }

    /// The operations whose process died and what finishing them would free, changing
    /// nothing: what [`Store::clear_dead_operations_reporting`] would report now (a GC's dry
    /// run, `du`).
    pub fn dead_operations(&self) -> StoreResult<Vec<StaleOperation>> {
        let mut stale = Vec::new();
        for (key, entry) in self.list_data(OPERATION_DATA_TYPE, "")? {
            let holder = Holder::recorded(key.clone());
            let path = self.locks.named(&liveness_lock(&holder));
            // Free means dead: a live operation holds it for its whole life. Only probed.
            if LockGuard::try_acquire(&path, LockMode::Exclusive)?.is_none() {
                continue;
            }
            let record: OperationRecord = serde_json::from_slice(&entry.value).unwrap_or_default();
            let kept: HashSet<Digest> = match (&record.keep, record.flavour.is_empty()) {
                (Some(keep), false) => keep.iter().filter_map(|d| Digest::parse(d).ok()).collect(),
                _ => HashSet::new(),
            };
            let mut report = StaleOperation {
                holder: key,
                pid: record.pid,
                ..StaleOperation::default()
            };
            for digest in self.owned_by(&holder)? {
                report.held_blobs += 1;
                if kept.contains(&digest) {
                    continue;
                }
                let Some(indexed) = self.index.get(&digest)? else {
                    continue;
                };
                if self.would_delete_on_release(&digest, &holder, |_| false)? {
                    report.freed_blobs += 1;
                    report.freed_bytes += indexed.size;
                }
            }
            stale.push(report);
        }
        Ok(stale)
    }

    /// [`Store::clear_dead_operations`], reporting per operation what finishing it freed.
    pub fn clear_dead_operations_reporting(&self) -> StoreResult<Vec<StaleOperation>> {
        let _no_beginning = self.named_lock(BEGIN_LOCK, LockMode::Exclusive)?;
        let records = self.list_data(OPERATION_DATA_TYPE, "")?;
        let mut cleared = Vec::new();
        for (key, entry) in &records {
            let holder = Holder::recorded(key.clone());
            let path = self.locks.named(&liveness_lock(&holder));
            let Some(dead) = LockGuard::try_acquire(&path, LockMode::Exclusive)? else {
                continue;
            };
            let record: OperationRecord = serde_json::from_slice(&entry.value).unwrap_or_default();
            let mut report = StaleOperation {
                holder: key.clone(),
                pid: record.pid,
                held_blobs: self.owned_by(&holder)?.len() as u64,
                ..StaleOperation::default()
            };
            if let (Some(keep), false) = (&record.keep, record.flavour.is_empty()) {
                let keep: Vec<Digest> = keep.iter().filter_map(|d| Digest::parse(d).ok()).collect();
                let flavour = Holder::recorded(record.flavour.clone());
                self.pass_holds(&keep, &holder, &flavour, &[])?;
            }
            let owned = self.owned_by(&holder)?;
            let sizes: Vec<u64> = owned
                .iter()
                .map(|digest| Ok(self.index.get(digest)?.map_or(0, |record| record.size)))
                .collect::<StoreResult<_>>()?;
            let outcomes = self.release_many(&owned, &holder)?;
            for (outcome, size) in outcomes.iter().zip(sizes) {
                if outcome.is_deleted() {
                    report.freed_blobs += 1;
                    report.freed_bytes += size;
                }
            }
            crate::crash_point!("store.operation.dead.after-release");
            self.remove_data(OPERATION_DATA_TYPE, key)?;
            remove_lock_file(&dead);
            cleared.push(report);
        }
        // Liveness files without an entry: an operation that finished (it still holds its
        // lock until the file is gone) or one that crashed before recording itself or after
        // its entry went.
        let recorded: HashSet<&str> = records.iter().map(|(key, _)| key.as_str()).collect();
        for name in self.locks.named_with_prefix(LIVENESS_PREFIX)? {
            if recorded.contains(&name[LIVENESS_PREFIX.len()..]) {
                continue;
            }
            if let Some(orphan) =
                LockGuard::try_acquire(&self.locks.named(&name), LockMode::Exclusive)?
            {
                remove_lock_file(&orphan);
            }
        }
        Ok(cleared)
    }

    /// Clears what operations of versions before [`Store::begin_operation`] left when they
    /// crashed: entries `data_type/<id>`, holds [`Holder::scoped`]`(holder_kind, id)` (the OCI
    /// flavour's `oci.import` and `oci-import.<id>`). Those versions told a running operation
    /// from a crashed one by the flavour's GC lock only: call this under that lock held
    /// exclusive.
    pub fn clear_legacy_operations(&self, data_type: &str, holder_kind: &str) -> StoreResult<u64> {
        let mut cleared = 0;
        for (id, _) in self.list_data(data_type, "")? {
            let holder = Holder::scoped(holder_kind, &id);
            self.release_many(&self.owned_by(&holder)?, &holder)?;
            crate::crash_point!("store.operation.legacy.after-release");
            self.remove_data(data_type, &id)?;
            cleared += 1;
        }
        Ok(cleared)
    }

    /// Moves `from`'s hold on each kept blob that carries it to `to`, with `extra`, in one
    /// extra-data batch. The caller holds the digest locks of all of them exclusively, or
    /// knows their holder is dead.
    fn pass_holds(
        &self,
        keep: &[Digest],
        from: &Holder,
        to: &Holder,
        extra: &[ExtraOp],
    ) -> StoreResult<()> {
        let (from, to) = (from.mark(), to.mark());
        let mut ops = Vec::with_capacity(keep.len() * 2 + extra.len());
        for digest in keep {
            if self.extra.get(digest, &from)?.is_none() || self.index.get(digest)?.is_none() {
                continue;
            }
            ops.push(ExtraOp::Set {
                digest: digest.clone(),
                data_type: to.clone(),
                value: Vec::new(),
            });
            ops.push(ExtraOp::Remove {
                digest: digest.clone(),
                data_type: from.clone(),
            });
        }
        ops.extend_from_slice(extra);
        self.extra.write_batch(&ops)?;
        Ok(())
    }
}

impl<'s> Operation<'s> {
    /// The store the operation writes into.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The operation's holder (`<flavour>-op.<id>`).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    fn touch(&mut self, digest: &Digest) {
        if self.seen.insert(digest.clone()) {
            self.touched.push(digest.clone());
        }
    }

    /// Whether the store has `digest` indexed with this size (for deciding to skip content;
    /// [`Operation::hold_present`] decides for good).
    pub fn has(&self, digest: &Digest, size: u64) -> StoreResult<bool> {
        Ok(matches!(self.store.index.get(digest)?, Some(record) if record.size == size))
    }

    /// Holds every blob of `wanted` (digest, expected size) that the store already has, in one
    /// locked step; returns which it holds. The others are for the caller to stream in.
    pub fn hold_present(&mut self, wanted: &[(Digest, u64)]) -> StoreResult<Vec<bool>> {
        // Noted before the marks land, so that letting go after an error removes them.
        for (digest, _) in wanted {
            self.touch(digest);
        }
        let wanted: Vec<(Digest, Option<u64>)> = wanted
            .iter()
            .map(|(digest, size)| (digest.clone(), Some(*size)))
            .collect();
        let held = self.store.claim_existing_many(&wanted, &self.holder)?;
        crate::crash_point!("store.operation.after-hold-present");
        Ok(held.iter().map(Option::is_some).collect())
    }

    /// Streams `content` into staging, verified against `options`; nothing is held or visible
    /// until it is committed. Safe to call from several threads at once.
    pub fn stage(&self, content: impl Read, options: &WriteOptions) -> StoreResult<StagedBlob<'s>> {
        self.store.stage(content, options)
    }

    /// Stages and commits one blob under this operation's hold.
    pub fn write(&mut self, content: impl Read, options: &WriteOptions) -> StoreResult<BlobRecord> {
        let staged = self.stage(content, options)?;
        Ok(self.commit_staged(vec![staged])?.remove(0))
    }

    /// Makes staged blobs part of the store under this operation's hold, in one locked step.
    pub fn commit_staged(&mut self, staged: Vec<StagedBlob<'s>>) -> StoreResult<Vec<BlobRecord>> {
        for blob in &staged {
            self.touch(blob.digest());
        }
        crate::crash_point!("store.operation.before-commit-batch");
        self.store.commit_staged(staged, &self.holder)
    }

    /// One commit step of a batch that arrived: the present blobs held in one locked step
    /// (one that is gone meanwhile fails the step: [`StoreError::BlobVanished`]), the staged
    /// ones committed in another.
    pub fn commit_arrivals(&mut self, arrivals: Vec<Arrival<'s>>) -> StoreResult<Committed> {
        let mut present = Vec::new();
        let mut staged = Vec::new();
        for arrival in arrivals {
            match arrival {
                Arrival::Staged(blob) => staged.push(blob),
                Arrival::Present { digest, size } => present.push((digest, size)),
            }
        }
        let mut committed = Committed::default();
        if !present.is_empty() {
            let held = self.hold_present(&present)?;
            if let Some(((digest, _), _)) = present.iter().zip(held).find(|(_, held)| !held) {
                return Err(StoreError::BlobVanished {
                    digest: digest.clone(),
                });
            }
            committed.blobs_held = present.len() as u64;
        }
        for record in self.commit_staged(staged)? {
            committed.blobs_written += 1;
            committed.bytes_written += record.size;
        }
        Ok(committed)
    }

    /// Makes the operation permanent, under the exclusive digest locks of every blob it names:
    /// the key/value entries land in one atomic batch (with the record of what is kept), then
    /// the hold on every kept blob passes to the flavour's owner mark in one extra-data batch
    /// with `extra`; then the operation lets go of what it touched but does not keep. Every
    /// blob named must be in the store ([`StoreError::BlobVanished`] otherwise, and nothing is
    /// written); a refused key/value batch writes nothing either.
    pub fn commit(mut self, commit: OperationCommit<'_>) -> StoreResult<()> {
        let OperationCommit { keep, data, extra } = commit;
        for op in data {
            validate_name("data type", op.data_type())?;
            validate_key(op.key())?;
        }
        let mut named: Vec<Digest> = keep.to_vec();
        for op in extra {
            if let Some(data_type) = op.data_type() {
                validate_name("extra data type", data_type)?;
            }
            named.push(op.digest().clone());
        }
        named.extend(data.iter().filter_map(KvOp::blob).cloned());
        {
            let _locks = self.store.locks.lock_digests(&named, LockMode::Exclusive)?;
            crate::crash_point!("store.operation.before-data");
            for digest in &named {
                if self.store.index.get(digest)?.is_none() {
                    return Err(StoreError::BlobVanished {
                        digest: digest.clone(),
                    });
                }
            }
            if !data.is_empty() {
                let record = OperationRecord {
                    flavour: self.flavour.name().to_string(),
                    pid: std::process::id(),
                    started_unix_ms: now_unix_ms(),
                    keep: Some(keep.iter().map(ToString::to_string).collect()),
                };
                let mut batch = data.to_vec();
                batch.push(KvOp::Put {
                    data_type: OPERATION_DATA_TYPE.to_string(),
                    key: self.holder.name().to_string(),
                    value: record.to_bytes()?,
                    blob: None,
                });
                self.store.kv.write_batch(&batch)?;
                self.committed = true;
            }
            crate::crash_point!("store.operation.after-data");
            self.store
                .pass_holds(keep, &self.holder, &self.flavour, extra)?;
            self.committed = true;
        }
        crate::crash_point!("store.operation.after-holds");
        // The operation has happened. If letting go fails, the entry stays and the next GC
        // finishes the job; what is kept is held by the flavour either way.
        let kept: HashSet<&Digest> = keep.iter().collect();
        let unkept: Vec<Digest> = self
            .touched
            .iter()
            .filter(|digest| !kept.contains(digest))
            .cloned()
            .collect();
        if self.store.release_many(&unkept, &self.holder).is_ok() {
            crate::crash_point!("store.operation.after-release");
            let _ = self.forget();
        }
        Ok(())
    }

    /// Removes the operation's entry, then its liveness file.
    fn forget(&mut self) -> StoreResult<()> {
        self.store
            .remove_data(OPERATION_DATA_TYPE, self.holder.name())?;
        if let Some(liveness) = self.liveness.take() {
            remove_lock_file(&liveness);
        }
        Ok(())
    }
}

impl Drop for Operation<'_> {
    /// An operation dropped uncommitted was refused or failed: let go of everything, then
    /// forget it. Best effort: a failure here leaves the entry, and the next GC finishes the
    /// job once this process no longer holds the liveness lock.
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if self.store.release_many(&self.touched, &self.holder).is_ok() {
            let _ = self.forget();
        }
    }
}

/// Removes a liveness lock's file while it is still held: whoever opens the name next gets a
/// new file, and the holder's lock goes with it.
fn remove_lock_file(guard: &LockGuard) {
    let _ = std::fs::remove_file(guard.path());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_store, BackendChoice, Store};

    const TEST: Holder = Holder::flavour("test");

    /// A new store with one blob written through the base store.
    fn store() -> (tempfile::TempDir, Store, BlobRecord) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir.path().join("store"), &BackendChoice::default()).unwrap();
        let base = store
            .write_bytes(b"before", &WriteOptions::default())
            .unwrap();
        (dir, store, base)
    }

    /// No operation is recorded, and none left a liveness file.
    fn no_operation_left(store: &Store) {
        assert!(store.list_data(OPERATION_DATA_TYPE, "").unwrap().is_empty());
        let files = store
            .lock_paths()
            .named_with_prefix(LIVENESS_PREFIX)
            .unwrap();
        assert!(files.is_empty(), "{files:?}");
    }

    fn ref_to(digest: &Digest) -> KvOp {
        KvOp::Put {
            data_type: "test.ref".to_string(),
            key: "name".to_string(),
            value: Vec::new(),
            blob: Some(digest.clone()),
        }
    }

    /// Stages and commits `bytes` under the operation, and holds `present` (already stored).
    fn store_some(operation: &mut Operation<'_>, bytes: &[u8], present: &Digest) -> Digest {
        let staged = operation.stage(bytes, &WriteOptions::default()).unwrap();
        let held = operation
            .commit_arrivals(vec![
                Arrival::Staged(staged),
                Arrival::Present {
                    digest: present.clone(),
                    size: 6,
                },
            ])
            .unwrap();
        assert_eq!(held.blobs_written + held.blobs_held, 2);
        Digest::of_bytes(crate::traits::Algorithm::Sha256, bytes)
    }

    /// What a crash leaves: the operation's entry and holds, its liveness lock free.
    fn crash(mut operation: Operation<'_>) {
        drop(operation.liveness.take());
        std::mem::forget(operation);
    }

    #[test]
    fn a_dropped_operation_leaves_the_store_as_it_was() {
        let (_dir, store, base) = store();
        let before = store.dump().unwrap();
        let mut operation = store.begin_operation(&TEST).unwrap();
        store_some(&mut operation, b"new content", &base.digest);
        assert_ne!(store.dump().unwrap(), before);
        drop(operation);
        assert_eq!(store.dump().unwrap(), before);
        no_operation_left(&store);
    }

    #[test]
    fn a_refused_batch_changes_nothing() {
        let (_dir, store, base) = store();
        store
            .compare_and_set_data("test.ref", "taken", b"", None, None)
            .unwrap();
        let before = store.dump().unwrap();
        let mut operation = store.begin_operation(&TEST).unwrap();
        let digest = store_some(&mut operation, b"new content", &base.digest);
        let taken = KvOp::CompareAndSet {
            data_type: "test.ref".to_string(),
            key: "taken".to_string(),
            value: Vec::new(),
            blob: Some(digest.clone()),
            expected_version: None,
        };
        let keep = [digest.clone(), base.digest.clone()];
        let data = [ref_to(&digest), taken];
        let result = operation.commit(OperationCommit {
            keep: &keep,
            data: &data,
            extra: &[],
        });
        assert!(result.is_err(), "a taken key was overwritten");
        assert_eq!(store.dump().unwrap(), before);
    }

    #[test]
    fn a_commit_passes_the_holds_and_lets_go_of_the_rest() {
        let (_dir, store, base) = store();
        let mut operation = store.begin_operation(&TEST).unwrap();
        let digest = store_some(&mut operation, b"new content", &base.digest);
        let extra = [ExtraOp::Set {
            digest: digest.clone(),
            data_type: "test.info".to_string(),
            value: b"info".to_vec(),
        }];
        let keep = [digest.clone()];
        operation
            .commit(OperationCommit {
                keep: &keep,
                data: &[ref_to(&digest)],
                extra: &extra,
            })
            .unwrap();
        assert_eq!(store.holders(&digest).unwrap().owners, [TEST]);
        assert_eq!(
            store.get_extra(&digest, "test.info").unwrap().unwrap(),
            b"info"
        );
        assert_eq!(store.holders(&base.digest).unwrap().owners, [Holder::BASE]);
        no_operation_left(&store);
    }

    #[test]
    fn a_crash_before_the_batch_is_rolled_back_and_a_running_operation_is_left_alone() {
        let (_dir, store, base) = store();
        let before = store.dump().unwrap();
        let mut running = store.begin_operation(&TEST).unwrap();
        let held_by_running = store_some(&mut running, b"running", &base.digest);
        let with_running = store.dump().unwrap();
        let mut crashed = store.begin_operation(&TEST).unwrap();
        store_some(&mut crashed, b"crashed", &base.digest);
        crash(crashed);
        assert_eq!(store.clear_dead_operations().unwrap(), 1);
        assert_eq!(store.dump().unwrap(), with_running);
        assert!(store.contains(&held_by_running).unwrap());
        drop(running);
        assert_eq!(store.dump().unwrap(), before);
    }

    #[test]
    fn a_crash_after_the_batch_is_rolled_forward_by_the_base_gc() {
        let (_dir, store, _) = store();
        let mut operation = store.begin_operation(&TEST).unwrap();
        let mut write = |bytes: &[u8]| {
            let record = operation.write(bytes, &WriteOptions::default());
            record.unwrap().digest
        };
        let (kept, dropped) = (write(b"kept"), write(b"dropped"));
        // What the commit's key/value batch writes, and then a crash.
        let record = OperationRecord {
            flavour: "test".to_string(),
            keep: Some(vec![kept.to_string()]),
            ..OperationRecord::default()
        };
        store
            .write_data_batch(&[
                ref_to(&kept),
                KvOp::Put {
                    data_type: OPERATION_DATA_TYPE.to_string(),
                    key: operation.holder().name().to_string(),
                    value: record.to_bytes().unwrap(),
                    blob: None,
                },
            ])
            .unwrap();
        crash(operation);
        store.gc(Default::default()).unwrap();
        assert_eq!(store.holders(&kept).unwrap().owners, [TEST]);
        assert!(!store.contains(&dropped).unwrap());
        no_operation_left(&store);
    }

    #[test]
    fn a_liveness_file_without_an_entry_goes_unless_held() {
        let (_dir, store, _) = store();
        let orphan = store
            .lock_paths()
            .named(&liveness_lock(&TEST.operation("1")));
        drop(LockGuard::acquire(&orphan, LockMode::Exclusive).unwrap());
        let held_path = store
            .lock_paths()
            .named(&liveness_lock(&TEST.operation("2")));
        let held = LockGuard::acquire(&held_path, LockMode::Exclusive).unwrap();
        store.clear_dead_operations().unwrap();
        assert!(!orphan.exists());
        assert!(held_path.exists());
        drop(held);
    }
}
