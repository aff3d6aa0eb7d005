//! Everything the key/value section times, behind one interface: the raw references, our
//! `KvStore`, and the base store's `put_data` (with and without a referenced blob, which adds
//! the shared digest lock and the index check).

use std::sync::Arc;

use oci_store::traits::{Digest, KvStore};
use oci_store::Store;

use super::measure::BenchResult;

pub trait KvContender {
    /// One unconditional write, committed durably before it returns.
    fn put(&mut self, data_type: &str, key: &str, value: &[u8]) -> BenchResult<()>;

    /// One read; whether the entry was found.
    fn get(&mut self, data_type: &str, key: &str) -> BenchResult<bool>;
}

/// Our `KvStore`, as opened from the registry.
pub struct OurKvStore(pub Arc<dyn KvStore>);

impl KvContender for OurKvStore {
    fn put(&mut self, data_type: &str, key: &str, value: &[u8]) -> BenchResult<()> {
        self.0.put(data_type, key, value, None)?;
        Ok(())
    }

    fn get(&mut self, data_type: &str, key: &str) -> BenchResult<bool> {
        Ok(self.0.get(data_type, key)?.is_some())
    }
}

/// `Store::put_data` / `Store::get_data` on a store opened with `open_store`.
pub struct OurStore {
    pub store: Store,
    /// The blob every entry references, if any: `put_data` then takes the blob's shared digest
    /// lock and checks the index before writing.
    pub referenced_blob: Option<Digest>,
}

impl KvContender for OurStore {
    fn put(&mut self, data_type: &str, key: &str, value: &[u8]) -> BenchResult<()> {
        self.store
            .put_data(data_type, key, value, self.referenced_blob.as_ref())?;
        Ok(())
    }

    fn get(&mut self, data_type: &str, key: &str) -> BenchResult<bool> {
        Ok(self.store.get_data(data_type, key)?.is_some())
    }
}
