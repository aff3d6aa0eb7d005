//! The suite tests itself: backends with one deliberate flaw each (a wrapper around the real
//! `sqlite` backend) must make the test aimed at that flaw fail. A suite that passes
//! everything proves nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oci_store::store::Store;
use oci_store::traits::registry::{open_blob_store, open_extra_data, open_index, open_kv_store};
use oci_store::traits::{
    BlobRead, BlobRecord, BlobStore, BlobWriter, Digest, DigestPrefix, Expected, ExtraData,
    ExtraOp, Index, KvEntry, KvKey, KvOp, KvOpOutcome, KvStore, SortedDigests, StorageResult,
};
use rstest::rstest;

use crate::check::TestResult;
use crate::fixture::{run_one, Fixture};
use oci_store::IoContext;

const INNER: &str = "sqlite";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    None,
    DeleteKeepsContent,
    IgnoresExpected,
    LeaksStaging,
    IgnoresLimit,
    PageIgnoresAfter,
    TypesUnsorted,
    RemoveAllDoesNothing,
    CompareAndSetIgnoresVersion,
    RemoveReferencingDoesNothing,
    /// `referencing` finds no entry: the store cannot see that an entry holds a blob.
    ReferencingFindsNothing,
    /// `write_batch` applies its operations one by one, each in its own transaction.
    BatchNotAtomic,
    /// Extra data's `write_batch` applies its operations one by one, each checked only when
    /// its turn comes.
    ExtraBatchNotAtomic,
    /// `resumable_writer` is a plain writer: a killed write is never taken over.
    NeverResumes,
    /// `dead_ingest_usage` cannot tell (the default): a GC's dry run counts no dead writes.
    DeadIngestUsageUnknown,
}

struct Flawed<T: ?Sized> {
    inner: Arc<T>,
    flaw: Flaw,
    dir: PathBuf,
}

static LEAKED: AtomicU64 = AtomicU64::new(0);

/// A writer that also copies its bytes to a file it never removes: a leaking staging area.
struct LeakingWriter<'a> {
    inner: Box<dyn BlobWriter + 'a>,
    leak: std::fs::File,
}

impl Write for LeakingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.leak.write_all(buf)?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl BlobWriter for LeakingWriter<'_> {
    fn written(&self) -> u64 {
        self.inner.written()
    }
    fn finish(&mut self) -> StorageResult<(Digest, u64)> {
        self.inner.finish()
    }
    fn commit(self: Box<Self>) -> StorageResult<(Digest, u64)> {
        self.inner.commit()
    }
}

impl BlobStore for Flawed<dyn BlobStore> {
    fn writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        match self.flaw {
            Flaw::IgnoresExpected => self.inner.writer(Expected {
                digest: None,
                size: None,
                algorithm: None,
            }),
            Flaw::LeaksStaging => {
                let number = LEAKED.fetch_add(1, Ordering::Relaxed);
                let path = self.dir.join(format!("leak-{number}"));
                let leak = std::fs::File::create(&path).map_err(|e| {
                    oci_store::traits::StorageError::from(IoContext::new("leaking", &path, e))
                })?;
                Ok(Box::new(LeakingWriter {
                    inner: self.inner.writer(expected)?,
                    leak,
                }))
            }
            _ => self.inner.writer(expected),
        }
    }
    fn resumable_writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        match self.flaw {
            Flaw::NeverResumes => self.inner.writer(expected),
            _ => self.inner.resumable_writer(expected),
        }
    }
    fn open(&self, digest: &Digest) -> StorageResult<Box<dyn BlobRead + '_>> {
        self.inner.open(digest)
    }
    fn size(&self, digest: &Digest) -> StorageResult<Option<u64>> {
        self.inner.size(digest)
    }
    fn delete_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        if self.flaw == Flaw::DeleteKeepsContent {
            let mut present = 0;
            for digest in digests {
                present += u64::from(self.inner.contains(digest)?);
            }
            return Ok(present);
        }
        self.inner.delete_many(digests)
    }
    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        self.inner.sorted_digests()
    }
    fn remove_dead_ingests(&self) -> StorageResult<(u64, u64)> {
        self.inner.remove_dead_ingests()
    }
    fn dead_ingest_usage(&self) -> StorageResult<Option<(u64, u64)>> {
        match self.flaw {
            Flaw::DeadIngestUsageUnknown => Ok(None),
            _ => self.inner.dead_ingest_usage(),
        }
    }
}

impl Index for Flawed<dyn Index> {
    fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()> {
        self.inner.upsert_many(records)
    }
    fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        self.inner.remove_many(digests)
    }
    fn by_prefix(&self, prefix: &DigestPrefix, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        let limit = if self.flaw == Flaw::IgnoresLimit {
            usize::MAX / 2
        } else {
            limit
        };
        self.inner.by_prefix(prefix, limit)
    }
    fn by_media_type(&self, media_type: &str) -> StorageResult<Vec<BlobRecord>> {
        self.inner.by_media_type(media_type)
    }
    fn page(&self, after: Option<&Digest>, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        if self.flaw == Flaw::PageIgnoresAfter {
            return self.inner.page(None, limit);
        }
        self.inner.page(after, limit)
    }
    fn totals(&self) -> StorageResult<oci_store::traits::IndexTotals> {
        self.inner.totals()
    }
}

impl ExtraData for Flawed<dyn ExtraData> {
    fn get(&self, digest: &Digest, data_type: &str) -> StorageResult<Option<Vec<u8>>> {
        self.inner.get(digest, data_type)
    }
    fn types(&self, digest: &Digest) -> StorageResult<Vec<String>> {
        let mut types = self.inner.types(digest)?;
        if self.flaw == Flaw::TypesUnsorted {
            types.reverse();
        }
        Ok(types)
    }
    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        self.inner.sorted_digests()
    }
    fn sorted_digests_with_type_prefix(
        &self,
        type_prefix: &str,
    ) -> StorageResult<SortedDigests<'_>> {
        self.inner.sorted_digests_with_type_prefix(type_prefix)
    }
    fn entries_of_type(&self, data_type: &str) -> StorageResult<Vec<(Digest, Vec<u8>)>> {
        self.inner.entries_of_type(data_type)
    }
    fn write_batch(&self, ops: &[ExtraOp]) -> StorageResult<Vec<u64>> {
        match self.flaw {
            // Each operation in a transaction of its own: a failure part-way keeps the
            // earlier ones.
            Flaw::ExtraBatchNotAtomic => {
                let mut changed = Vec::with_capacity(ops.len());
                for op in ops {
                    changed.extend(self.inner.write_batch(std::slice::from_ref(op))?);
                }
                Ok(changed)
            }
            // Removing all of a blob's items does nothing and says so.
            Flaw::RemoveAllDoesNothing => {
                let kept: Vec<ExtraOp> = ops
                    .iter()
                    .filter(|op| !matches!(op, ExtraOp::RemoveAll { .. }))
                    .cloned()
                    .collect();
                let mut applied = self.inner.write_batch(&kept)?.into_iter();
                Ok(ops
                    .iter()
                    .map(|op| match op {
                        ExtraOp::RemoveAll { .. } => 0,
                        _ => applied.next().unwrap_or(0),
                    })
                    .collect())
            }
            _ => self.inner.write_batch(ops),
        }
    }
}

impl KvStore for Flawed<dyn KvStore> {
    fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>> {
        self.inner.get(data_type, key)
    }
    fn list(&self, data_type: &str, key_prefix: &str) -> StorageResult<Vec<(String, KvEntry)>> {
        self.inner.list(data_type, key_prefix)
    }
    fn data_types(&self) -> StorageResult<Vec<String>> {
        self.inner.data_types()
    }
    fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>> {
        if self.flaw == Flaw::ReferencingFindsNothing {
            return Ok(Vec::new());
        }
        self.inner.referencing(digest)
    }
    fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        if self.flaw == Flaw::RemoveReferencingDoesNothing {
            return Ok(0);
        }
        self.inner.remove_referencing_many(digests)
    }
    fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>> {
        self.inner.sorted_referenced_digests()
    }
    fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>> {
        if self.flaw == Flaw::CompareAndSetIgnoresVersion {
            let ops: Vec<KvOp> = ops.iter().map(ignoring_version).collect();
            return self.inner.write_batch(&ops);
        }
        if self.flaw != Flaw::BatchNotAtomic {
            return self.inner.write_batch(ops);
        }
        ops.iter()
            .map(|op| {
                self.inner
                    .write_batch(std::slice::from_ref(op))
                    .map(|o| o[0])
            })
            .collect()
    }
}

/// A compare-and-set turned into a put (the flaw `CompareAndSetIgnoresVersion`).
fn ignoring_version(op: &KvOp) -> KvOp {
    match op.clone() {
        KvOp::CompareAndSet {
            data_type,
            key,
            value,
            blob,
            ..
        } => KvOp::Put {
            data_type,
            key,
            value,
            blob,
        },
        other => other,
    }
}

fn flawed<T: ?Sized>(inner: Arc<T>, flaw: Flaw, dir: &Path) -> Flawed<T> {
    Flawed {
        inner,
        flaw,
        dir: dir.to_path_buf(),
    }
}

fn flawed_blob_store(flaw: Flaw) -> impl Fn(&Path) -> StorageResult<Arc<dyn BlobStore>> + Clone {
    move |dir: &Path| {
        Ok(Arc::new(flawed(open_blob_store(INNER, dir)?, flaw, dir)) as Arc<dyn BlobStore>)
    }
}

fn flawed_index(flaw: Flaw) -> impl Fn(&Path) -> StorageResult<Arc<dyn Index>> + Clone {
    move |dir: &Path| Ok(Arc::new(flawed(open_index(INNER, dir)?, flaw, dir)) as Arc<dyn Index>)
}

fn flawed_extra_data(flaw: Flaw) -> impl Fn(&Path) -> StorageResult<Arc<dyn ExtraData>> + Clone {
    move |dir: &Path| {
        Ok(Arc::new(flawed(open_extra_data(INNER, dir)?, flaw, dir)) as Arc<dyn ExtraData>)
    }
}

fn flawed_kv_store(flaw: Flaw) -> impl Fn(&Path) -> StorageResult<Arc<dyn KvStore>> + Clone {
    move |dir: &Path| Ok(Arc::new(flawed(open_kv_store(INNER, dir)?, flaw, dir)) as Arc<dyn KvStore>)
}

/// A store whose every part is the inner backend, wrapped with `flaw` (each wrapper only
/// misbehaves in the methods its flaw names).
fn flawed_store(flaw: Flaw) -> impl Fn(&Path) -> oci_store::StoreResult<Store> + Clone {
    move |dir: &Path| {
        Store::from_parts(
            dir,
            flawed_blob_store(flaw)(dir)?,
            flawed_index(flaw)(dir)?,
            flawed_extra_data(flaw)(dir)?,
            flawed_kv_store(flaw)(dir)?,
        )
    }
}

fn expect_failure(result: TestResult, flaw: Flaw) {
    match (flaw, result) {
        (Flaw::None, Err(message)) => panic!("the unflawed wrapper failed: {message}"),
        (Flaw::None, Ok(())) => {}
        (_, Ok(())) => panic!("{flaw:?} went unnoticed"),
        (_, Err(_)) => {}
    }
}

#[rstest]
#[case(Flaw::None, crate::blob_store::delete)]
#[case(Flaw::DeleteKeepsContent, crate::blob_store::delete)]
#[case(Flaw::None, crate::blob_store::digest_mismatch_stores_nothing)]
#[case(
    Flaw::IgnoresExpected,
    crate::blob_store::digest_mismatch_stores_nothing
)]
#[case(
    Flaw::IgnoresExpected,
    crate::blob_store::size_mismatch_long_stores_nothing
)]
#[case(Flaw::None, crate::blob_store::dropped_writer_leaves_nothing)]
#[case(Flaw::LeaksStaging, crate::blob_store::dropped_writer_leaves_nothing)]
#[case(Flaw::None, crate::blob_store::aborted_writes_do_not_accumulate)]
#[case(
    Flaw::LeaksStaging,
    crate::blob_store::aborted_writes_do_not_accumulate
)]
#[case(Flaw::None, crate::blob_store::killed_resumable_writer_is_taken_over)]
#[case(
    Flaw::NeverResumes,
    crate::blob_store::killed_resumable_writer_is_taken_over
)]
#[case(
    Flaw::None,
    crate::blob_store::dead_ingest_usage_is_what_removal_removes
)]
#[case(
    Flaw::DeadIngestUsageUnknown,
    crate::blob_store::dead_ingest_usage_is_what_removal_removes
)]
fn blob_store_suite_notices(
    #[case] flaw: Flaw,
    #[case] test: fn(&Fixture<Arc<dyn BlobStore>>) -> TestResult,
) {
    expect_failure(run_one(test, flawed_blob_store(flaw)), flaw);
}

#[rstest]
#[case(Flaw::None, crate::index::prefix_range)]
#[case(Flaw::IgnoresLimit, crate::index::prefix_range)]
#[case(Flaw::None, crate::index::paging)]
#[case(Flaw::PageIgnoresAfter, crate::index::paging)]
fn index_suite_notices(
    #[case] flaw: Flaw,
    #[case] test: fn(&Fixture<Arc<dyn Index>>) -> TestResult,
) {
    expect_failure(run_one(test, flawed_index(flaw)), flaw);
}

#[rstest]
#[case(Flaw::None, crate::extra_data::types_sorted)]
#[case(Flaw::TypesUnsorted, crate::extra_data::types_sorted)]
#[case(Flaw::RemoveAllDoesNothing, crate::extra_data::remove_all)]
#[case(Flaw::None, crate::extra_data::batch_is_all_or_nothing)]
#[case(Flaw::ExtraBatchNotAtomic, crate::extra_data::batch_is_all_or_nothing)]
fn extra_data_suite_notices(
    #[case] flaw: Flaw,
    #[case] test: fn(&Fixture<Arc<dyn ExtraData>>) -> TestResult,
) {
    expect_failure(run_one(test, flawed_extra_data(flaw)), flaw);
}

#[rstest]
#[case(Flaw::None, crate::kv_store::compare_and_set)]
#[case(Flaw::CompareAndSetIgnoresVersion, crate::kv_store::compare_and_set)]
#[case(Flaw::RemoveReferencingDoesNothing, crate::kv_store::referencing)]
#[case(Flaw::None, crate::kv_store::batch_is_all_or_nothing)]
#[case(Flaw::BatchNotAtomic, crate::kv_store::batch_is_all_or_nothing)]
fn kv_store_suite_notices(
    #[case] flaw: Flaw,
    #[case] test: fn(&Fixture<Arc<dyn KvStore>>) -> TestResult,
) {
    expect_failure(run_one(test, flawed_kv_store(flaw)), flaw);
}

#[rstest]
#[case(Flaw::None, crate::base_store::delete_cascades)]
#[case(Flaw::RemoveAllDoesNothing, crate::base_store::delete_cascades)]
#[case(Flaw::RemoveReferencingDoesNothing, crate::base_store::delete_cascades)]
#[case(Flaw::DeleteKeepsContent, crate::base_store::delete_cascades)]
#[case(Flaw::None, crate::base_store::write_refusals_change_nothing)]
#[case(
    Flaw::IgnoresExpected,
    crate::base_store::write_refusals_change_nothing
)]
#[case(Flaw::None, crate::base_store::gc_removes_garbage_only)]
#[case(
    Flaw::RemoveReferencingDoesNothing,
    crate::base_store::gc_removes_garbage_only
)]
#[case(Flaw::None, crate::base_store::results_match_reference_model)]
#[case(
    Flaw::CompareAndSetIgnoresVersion,
    crate::base_store::results_match_reference_model
)]
#[case(Flaw::None, crate::base_store::base_gc_collects_blobs_no_holder_keeps)]
#[case(
    Flaw::ReferencingFindsNothing,
    crate::base_store::base_gc_collects_blobs_no_holder_keeps
)]
#[case(
    Flaw::None,
    crate::base_store::removing_the_last_holding_entry_deletes_the_blob
)]
#[case(
    Flaw::ReferencingFindsNothing,
    crate::base_store::removing_the_last_holding_entry_deletes_the_blob
)]
#[case(
    Flaw::TypesUnsorted,
    crate::base_store::base_writes_record_the_base_holder
)]
#[case(Flaw::None, crate::base_store::resolve_many_candidates_are_capped)]
#[case(
    Flaw::None,
    crate::base_store::gc_dry_run_counts_the_dead_writes_gc_removes
)]
#[case(
    Flaw::DeadIngestUsageUnknown,
    crate::base_store::gc_dry_run_counts_the_dead_writes_gc_removes
)]
#[case(Flaw::None, crate::base_store::threads_share_one_store)]
#[case(
    Flaw::CompareAndSetIgnoresVersion,
    crate::base_store::threads_share_one_store
)]
fn base_store_suite_notices(#[case] flaw: Flaw, #[case] test: fn(&Fixture<Store>) -> TestResult) {
    expect_failure(run_one(test, flawed_store(flaw)), flaw);
}
