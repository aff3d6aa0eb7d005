//! A full, ordered dump of a store's contents, independent of the backends that hold it: what
//! backend conversion verifies against and what tests compare across backend combinations.

use serde::Serialize;

use super::base::Store;
use super::error::StoreResult;
use crate::traits::{
    BlobRecord, BlobStore, Digest, ExtraData, Index, KvEntry, KvStore, RecordPages,
};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreDump {
    pub records: Vec<BlobRecord>,
    /// (digest, data type, value), ordered.
    pub extra_data: Vec<(Digest, String, Vec<u8>)>,
    /// (data type, key, entry), ordered.
    pub data: Vec<(String, String, KvEntry)>,
    /// Digests of stored content, sorted.
    pub content: Vec<Digest>,
}

impl Store {
    /// Everything the store holds (records, extra data, key/value entries, content digests), in a
    /// fixed order; reads it all into memory.
    pub fn dump(&self) -> StoreResult<StoreDump> {
        dump_parts(&self.blobs, &self.index, &self.extra, &self.kv)
    }
}

pub(super) fn dump_parts(
    blobs: &dyn BlobStore,
    index: &dyn Index,
    extra: &dyn ExtraData,
    kv: &dyn KvStore,
) -> StoreResult<StoreDump> {
    let records = RecordPages::new(index, 1000).collect::<Result<Vec<_>, _>>()?;
    let mut extra_data = Vec::new();
    for digest in extra.sorted_digests()? {
        let digest = digest?;
        for data_type in extra.types(&digest)? {
            if let Some(value) = extra.get(&digest, &data_type)? {
                extra_data.push((digest.clone(), data_type, value));
            }
        }
    }
    let mut data = Vec::new();
    for data_type in kv.data_types()? {
        for (key, entry) in kv.list(&data_type, "")? {
            data.push((data_type.clone(), key, entry));
        }
    }
    let content = blobs.sorted_digests()?.collect::<Result<Vec<_>, _>>()?;
    Ok(StoreDump {
        records,
        extra_data,
        data,
        content,
    })
}
