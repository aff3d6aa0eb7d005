//! [`BlobStore`] and [`BlobWriter`] failing as a [`FaultPlan`] says. The required methods and
//! the provided ones backends override (sync hooks, resumable writers, dead-ingest usage) are
//! wrapped, so the wrapped backend's own batching is what runs; the derived single-blob forms
//! (`delete`, `contains`) go through the wrapped batch ones, so a fault reaches them too.

use std::io::Write;
use std::sync::Arc;

use oci_store::traits::{
    BlobRead, BlobStore, BlobWriter, Digest, Expected, SortedDigests, StorageResult,
};

use super::plan::{Access, FaultPlan};

pub struct FaultyBlobStore {
    inner: Arc<dyn BlobStore>,
    plan: Arc<FaultPlan>,
}

impl FaultyBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>, plan: Arc<FaultPlan>) -> Self {
        FaultyBlobStore { inner, plan }
    }
}

impl BlobStore for FaultyBlobStore {
    fn writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        self.plan.check(Access::Write, "creating a blob writer")?;
        Ok(Box::new(FaultyWriter {
            inner: self.inner.writer(expected)?,
            plan: self.plan.clone(),
        }))
    }

    fn resumable_writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        self.plan
            .check(Access::Write, "creating a resumable blob writer")?;
        Ok(Box::new(FaultyWriter {
            inner: self.inner.resumable_writer(expected)?,
            plan: self.plan.clone(),
        }))
    }

    fn open(&self, digest: &Digest) -> StorageResult<Box<dyn BlobRead + '_>> {
        self.plan.check(Access::Read, "opening a blob")?;
        self.inner.open(digest)
    }

    fn size(&self, digest: &Digest) -> StorageResult<Option<u64>> {
        self.plan.check(Access::Read, "reading a blob's size")?;
        self.inner.size(digest)
    }

    fn delete_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        self.plan.check(Access::Write, "deleting blobs")?;
        self.inner.delete_many(digests)
    }

    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        self.plan.check(Access::Read, "listing blobs")?;
        self.inner.sorted_digests()
    }

    fn remove_dead_ingests(&self) -> StorageResult<(u64, u64)> {
        self.plan.check(Access::Write, "removing dead ingests")?;
        self.inner.remove_dead_ingests()
    }

    fn dead_ingest_usage(&self) -> StorageResult<Option<(u64, u64)>> {
        self.plan.check(Access::Read, "measuring dead ingests")?;
        self.inner.dead_ingest_usage()
    }

    fn sync_staged(&self) -> StorageResult<()> {
        self.plan.check(Access::Write, "syncing staged blobs")?;
        self.inner.sync_staged()
    }

    fn sync_committed(&self, digests: &[Digest]) -> StorageResult<()> {
        self.plan.check(Access::Write, "syncing committed blobs")?;
        self.inner.sync_committed(digests)
    }
}

struct FaultyWriter<'a> {
    inner: Box<dyn BlobWriter + 'a>,
    plan: Arc<FaultPlan>,
}

impl Write for FaultyWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.plan.check_io(Access::Write)?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.plan.check_io(Access::Write)?;
        self.inner.flush()
    }
}

impl BlobWriter for FaultyWriter<'_> {
    fn written(&self) -> u64 {
        self.inner.written()
    }

    fn finish(&mut self) -> StorageResult<(Digest, u64)> {
        self.plan.check(Access::Write, "finishing a blob")?;
        self.inner.finish()
    }

    fn finish_unsynced(&mut self) -> StorageResult<(Digest, u64)> {
        self.plan.check(Access::Write, "finishing a blob")?;
        self.inner.finish_unsynced()
    }

    fn needs_sync(&self) -> bool {
        self.inner.needs_sync()
    }

    fn commit(self: Box<Self>) -> StorageResult<(Digest, u64)> {
        self.plan.check(Access::Write, "committing a blob")?;
        self.inner.commit()
    }

    fn commit_unsynced(self: Box<Self>) -> StorageResult<(Digest, u64)> {
        self.plan.check(Access::Write, "committing a blob")?;
        self.inner.commit_unsynced()
    }
}
