//! The `sqlite` backend: every role in one SQLite database file, `meta/sqlite/store.db`, in WAL
//! mode so readers in any process never wait for a writer.
//!
//! Every opened object (index, extra data, key/value store, blob store) of one store shares one
//! [`connection::Database`] per process: one connection for writes behind a mutex, and a small
//! pool of read connections.
//! Cross-process coordination is SQLite's own locking (WAL, `BEGIN IMMEDIATE`, a busy timeout);
//! the schema is created by [`migrations`] on first open, and migrated only by the store's
//! upgrade under the exclusive store lock ([`format`]).

mod blob_reader;
mod blob_store;
#[cfg(test)]
mod blob_store_tests;
mod blob_writer;
mod connection;
mod extra_data;
mod format;
mod index;
mod key_range;
mod kv_store;
mod migrations;
mod schema;
mod staging;
mod values;

use std::path::Path;
use std::sync::Arc;

use crate::traits::{
    BackendRegistration, BlobStore, ExtraData, FormatHooks, Index, KvStore, StorageResult,
};

pub use blob_store::SqliteBlobStore;
pub use extra_data::SqliteExtraData;
pub use index::SqliteIndex;
pub use kv_store::SqliteKvStore;

/// The name this backend registers under.
pub const BACKEND_NAME: &str = "sqlite";

fn open_blob_store(dir: &Path) -> StorageResult<Arc<dyn BlobStore>> {
    Ok(Arc::new(SqliteBlobStore::open(dir)?))
}

fn open_index(dir: &Path) -> StorageResult<Arc<dyn Index>> {
    Ok(Arc::new(SqliteIndex::open(dir)?))
}

fn open_extra_data(dir: &Path) -> StorageResult<Arc<dyn ExtraData>> {
    Ok(Arc::new(SqliteExtraData::open(dir)?))
}

fn open_kv_store(dir: &Path) -> StorageResult<Arc<dyn KvStore>> {
    Ok(Arc::new(SqliteKvStore::open(dir)?))
}

inventory::submit! {
    BackendRegistration {
        name: BACKEND_NAME,
        description: "SQLite (rusqlite, WAL): one database file meta/sqlite/store.db",
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
