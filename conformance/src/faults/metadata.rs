//! [`Index`], [`ExtraData`] and [`KvStore`] failing as a [`FaultPlan`] says. The required
//! methods are wrapped, so the wrapped backend's own transactions run (a batch fails whole,
//! before it is applied, as a failed transaction does); the derived single-item forms (`upsert`,
//! `set`, `put`, `remove_all`, ...) go through the wrapped batch ones, so a fault reaches them
//! too.

use std::sync::Arc;

use oci_store::traits::{
    BlobRecord, Digest, DigestPrefix, ExtraData, ExtraOp, Index, IndexTotals, KvEntry, KvKey, KvOp,
    KvOpOutcome, KvStore, SortedDigests, StorageResult,
};

use super::plan::{Access, FaultPlan};

pub struct FaultyIndex {
    inner: Arc<dyn Index>,
    plan: Arc<FaultPlan>,
}

impl FaultyIndex {
    pub fn new(inner: Arc<dyn Index>, plan: Arc<FaultPlan>) -> Self {
        FaultyIndex { inner, plan }
    }
}

impl Index for FaultyIndex {
    fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()> {
        self.plan.check(Access::Write, "writing index records")?;
        self.inner.upsert_many(records)
    }
    fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        self.plan.check(Access::Write, "removing index records")?;
        self.inner.remove_many(digests)
    }
    fn by_prefix(&self, prefix: &DigestPrefix, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        self.plan.check(Access::Read, "searching the index")?;
        self.inner.by_prefix(prefix, limit)
    }
    fn by_media_type(&self, media_type: &str) -> StorageResult<Vec<BlobRecord>> {
        self.plan.check(Access::Read, "searching the index")?;
        self.inner.by_media_type(media_type)
    }
    fn page(&self, after: Option<&Digest>, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        self.plan.check(Access::Read, "paging the index")?;
        self.inner.page(after, limit)
    }
    fn totals(&self) -> StorageResult<IndexTotals> {
        self.plan.check(Access::Read, "counting the index")?;
        self.inner.totals()
    }
}

pub struct FaultyExtraData {
    inner: Arc<dyn ExtraData>,
    plan: Arc<FaultPlan>,
}

impl FaultyExtraData {
    pub fn new(inner: Arc<dyn ExtraData>, plan: Arc<FaultPlan>) -> Self {
        FaultyExtraData { inner, plan }
    }
}

impl ExtraData for FaultyExtraData {
    fn get(&self, digest: &Digest, data_type: &str) -> StorageResult<Option<Vec<u8>>> {
        self.plan.check(Access::Read, "reading extra data")?;
        self.inner.get(digest, data_type)
    }
    fn types(&self, digest: &Digest) -> StorageResult<Vec<String>> {
        self.plan.check(Access::Read, "listing extra data")?;
        self.inner.types(digest)
    }
    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        self.plan.check(Access::Read, "listing extra data")?;
        self.inner.sorted_digests()
    }
    fn sorted_digests_with_type_prefix(
        &self,
        type_prefix: &str,
    ) -> StorageResult<SortedDigests<'_>> {
        self.plan.check(Access::Read, "listing extra data")?;
        self.inner.sorted_digests_with_type_prefix(type_prefix)
    }
    fn entries_of_type(&self, data_type: &str) -> StorageResult<Vec<(Digest, Vec<u8>)>> {
        self.plan.check(Access::Read, "listing extra data")?;
        self.inner.entries_of_type(data_type)
    }
    fn write_batch(&self, ops: &[ExtraOp]) -> StorageResult<Vec<u64>> {
        self.plan
            .check(Access::Write, "writing an extra-data batch")?;
        self.inner.write_batch(ops)
    }
}

pub struct FaultyKvStore {
    inner: Arc<dyn KvStore>,
    plan: Arc<FaultPlan>,
}

impl FaultyKvStore {
    pub fn new(inner: Arc<dyn KvStore>, plan: Arc<FaultPlan>) -> Self {
        FaultyKvStore { inner, plan }
    }
}

impl KvStore for FaultyKvStore {
    fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>> {
        self.plan.check(Access::Read, "reading an entry")?;
        self.inner.get(data_type, key)
    }
    fn list(&self, data_type: &str, key_prefix: &str) -> StorageResult<Vec<(String, KvEntry)>> {
        self.plan.check(Access::Read, "listing entries")?;
        self.inner.list(data_type, key_prefix)
    }
    fn data_types(&self) -> StorageResult<Vec<String>> {
        self.plan.check(Access::Read, "listing entries")?;
        self.inner.data_types()
    }
    fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>> {
        self.plan.check(Access::Read, "listing entries")?;
        self.inner.referencing(digest)
    }
    fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        self.plan.check(Access::Write, "removing entries")?;
        self.inner.remove_referencing_many(digests)
    }
    fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>> {
        self.plan.check(Access::Read, "listing entries")?;
        self.inner.sorted_referenced_digests()
    }
    fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>> {
        self.plan.check(Access::Write, "writing an entry batch")?;
        self.inner.write_batch(ops)
    }
}
