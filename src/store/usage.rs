//! Where the store's space goes by holder: the bytes each owner mark (`owner.oci`,
//! `owner.appc`, `owner.base` for `blob put`, ...) holds, and the bytes no mark holds. A blob
//! with several holders counts for each, so the holders' sums may exceed the total.

use std::collections::BTreeMap;

use serde::Serialize;

use super::base::Store;
use super::error::StoreResult;
use super::holder::Holder;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlobsAndBytes {
    pub blobs: u64,
    pub bytes: u64,
}

impl BlobsAndBytes {
    pub fn add(&mut self, bytes: u64) {
        self.blobs += 1;
        self.bytes += bytes;
    }
}

/// What each holder keeps ([`Store::usage_by_holder`]): blobs and bytes per holder, and
/// in all.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HolderUsage {
    /// Every indexed blob.
    pub total: BlobsAndBytes,
    /// Per holder name (the owner mark without its prefix).
    pub holders: BTreeMap<String, BlobsAndBytes>,
    /// Blobs no owner mark holds (kept only by key/value references, or garbage for gc).
    pub no_holder: BlobsAndBytes,
}

impl Store {
    /// One pass over the index and each blob's extra data types.
    pub fn usage_by_holder(&self) -> StoreResult<HolderUsage> {
        let mut usage = HolderUsage::default();
        for record in self.records() {
            let record = record?;
            usage.total.add(record.size);
            let mut held = false;
            for data_type in self.extra_types(&record.digest)? {
                if let Some(holder) = Holder::from_mark(&data_type) {
                    usage
                        .holders
                        .entry(holder.name().to_string())
                        .or_default()
                        .add(record.size);
                    held = true;
                }
            }
            if !held {
                usage.no_holder.add(record.size);
            }
        }
        Ok(usage)
    }
}

impl Store {
    /// Staged writes whose writer is gone (a killed pull's half-downloaded layer), as the
    /// base GC would remove them now: `(writes, bytes)`, changing nothing. `None` when the
    /// blob backend cannot tell without removing them.
    pub fn dead_ingest_usage(&self) -> StoreResult<Option<(u64, u64)>> {
        Ok(self.blobs.dead_ingest_usage()?)
    }
}
