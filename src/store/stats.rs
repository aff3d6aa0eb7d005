//! Store statistics.

use std::collections::BTreeMap;

use serde::Serialize;

use super::base::Store;
use super::config::StoreConfig;
use super::error::StoreResult;
use crate::traits::{Index, KvStore};

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
        // The names the store directory records (what `open_store` opened); a store put
        // together with `Store::from_parts` from unregistered backends may record none.
        let backends = StoreConfig::read(&self.dir)?
            .map(|config| config.backends)
            .unwrap_or_default();
        let totals = self.index.totals()?;
        Ok(StoreStats {
            blobs: totals.records,
            bytes: totals.bytes,
            data_entries,
            backends,
        })
    }

    /// Bytes of every indexed blob: one aggregate of the index (what a size budget counts).
    pub fn total_bytes(&self) -> StoreResult<u64> {
        Ok(self.index.totals()?.bytes)
    }
}
