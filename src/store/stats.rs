//! Store statistics.

use std::collections::BTreeMap;

use serde::Serialize;

use super::base::Store;
use super::error::StoreResult;
use crate::traits::{BlobStore, ExtraData, Index, KvStore};

/// Counts and backends of a store, from [`Store::stats`].
#[derive(Clone, Debug, Serialize)]
pub struct StoreStats {
    /// Indexed blobs.
    pub blobs: u64,
    /// Total size of the indexed blobs, in bytes.
    pub bytes: u64,
    /// Entries per key/value data type.
    pub data_entries: BTreeMap<String, u64>,
    /// Backend per role.
    pub backends: BTreeMap<String, String>,
}

impl Store {
    /// Counts the store's blobs, bytes and key/value entries, and names its backends.
    pub fn stats(&self) -> StoreResult<StoreStats> {
        let mut data_entries = BTreeMap::new();
        for data_type in self.kv.data_types()? {
            let count = self.kv.list(&data_type, "")?.len() as u64;
            data_entries.insert(data_type, count);
        }
        let backends = [
            ("blobs", self.blobs.backend_name()),
            ("index", self.index.backend_name()),
            ("extra", self.extra.backend_name()),
            ("kv", self.kv.backend_name()),
        ]
        .into_iter()
        .map(|(role, name)| (role.to_string(), name.to_string()))
        .collect();
        Ok(StoreStats {
            blobs: self.index.count()?,
            bytes: self.index.total_size()?,
            data_entries,
            backends,
        })
    }
}
