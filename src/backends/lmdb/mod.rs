//! The `lmdb` backend (heed): every role in one LMDB environment in `meta/lmdb/` of the store
//! directory, shared by all users in a process (see `environment.rs`), with LMDB's lock file
//! coordinating processes. Blob content is kept in the environment in chunks.
//!
//! Values use small fixed binary layouts (`records.rs`) and composite keys join their parts
//! with NUL (`keys.rs`), so key order is the order the traits promise.
//!
//! Limits that follow from LMDB's 511-byte keys and the NUL separator, reported as
//! `InvalidArgument`: key/value data types at most 255 bytes without NUL (keys of any length
//! are fine, see `kv_store.rs`); extra data types without NUL and at most about 370 bytes;
//! media types at most about 370 bytes.

mod blob_reader;
mod blob_store;
mod blob_writer;
mod environment;
mod extra_data;
mod format;
mod index;
mod keys;
mod kv_store;
mod records;
mod staging;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use blob_store::LmdbBlobStore;
pub use extra_data::LmdbExtraData;
pub use index::LmdbIndex;
pub use kv_store::LmdbKvStore;

use crate::traits::{
    BackendRegistration, BlobStore, ExtraData, FormatHooks, Index, KvStore, StorageResult,
};

pub(crate) const BACKEND_NAME: &str = "lmdb";

/// Where the environment of the store in `store_dir` lives.
fn environment_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("meta").join("lmdb")
}

fn open_blob_store(dir: &Path) -> StorageResult<Arc<dyn BlobStore>> {
    Ok(Arc::new(LmdbBlobStore::open(dir)?))
}

fn open_index(dir: &Path) -> StorageResult<Arc<dyn Index>> {
    Ok(Arc::new(LmdbIndex::open(dir)?))
}

fn open_extra_data(dir: &Path) -> StorageResult<Arc<dyn ExtraData>> {
    Ok(Arc::new(LmdbExtraData::open(dir)?))
}

fn open_kv_store(dir: &Path) -> StorageResult<Arc<dyn KvStore>> {
    Ok(Arc::new(LmdbKvStore::open(dir)?))
}

inventory::submit! {
    BackendRegistration {
        name: BACKEND_NAME,
        description: "LMDB (heed): one environment in meta/lmdb/",
        blob_store: Some(open_blob_store),
        index: Some(open_index),
        extra_data: Some(open_extra_data),
        kv_store: Some(open_kv_store),
        format: FormatHooks {
            status: format::status,
            back_up: format::back_up,
            upgrade: format::upgrade,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::{registry, Algorithm, BlobRecord, Digest};

    #[test]
    fn registered_once_with_every_role() {
        let lmdb: Vec<_> = registry::registered_backends()
            .into_iter()
            .filter(|registration| registration.name == BACKEND_NAME)
            .collect();
        assert_eq!(lmdb.len(), 1);
        assert!(crate::traits::Role::ALL
            .iter()
            .all(|role| lmdb[0].fills(*role)));
    }

    #[test]
    fn objects_on_one_directory_share_data_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let index = registry::open_index(BACKEND_NAME, dir.path()).unwrap();
        let kv = registry::open_kv_store(BACKEND_NAME, dir.path()).unwrap();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"shared");
        let threads: Vec<_> = (0..4)
            .map(|number| {
                let index = index.clone();
                let kv = kv.clone();
                let digest = digest.clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        kv.put("counter", &format!("{number}-{round}"), b"", Some(&digest))
                            .unwrap();
                        index
                            .upsert(&BlobRecord {
                                digest: digest.clone(),
                                size: 3,
                                media_type: "x/y".to_string(),
                                created_unix_ms: 0,
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let other_index = LmdbIndex::open(dir.path()).unwrap();
        assert_eq!(other_index.count().unwrap(), 1);
        assert_eq!(other_index.total_size().unwrap(), 3);
        let other_kv = LmdbKvStore::open(dir.path()).unwrap();
        assert_eq!(other_kv.referencing(&digest).unwrap().len(), 80);
    }
}
