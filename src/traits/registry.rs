//! The backend registry. Each backend submits one [`BackendRegistration`] with
//! `inventory::submit!`; the store opens backends by name from here, and the conformance suite
//! enumerates it, so registering a backend is all it takes to be selectable and tested.

use std::path::Path;
use std::sync::Arc;

use super::blob_store::BlobStore;
use super::error::{StorageError, StorageResult};
use super::extra_data::ExtraData;
use super::index::Index;
use super::kv_store::KvStore;

/// The four roles a backend can fill in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Blobs,
    Index,
    Extra,
    Kv,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Blobs, Role::Index, Role::Extra, Role::Kv];

    /// The name used in `store.json` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::Blobs => "blobs",
            Role::Index => "index",
            Role::Extra => "extra",
            Role::Kv => "kv",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Openers take the store directory; each backend keeps its files in its own place inside it.
pub type OpenBlobStore = fn(&Path) -> StorageResult<Arc<dyn BlobStore>>;
pub type OpenIndex = fn(&Path) -> StorageResult<Arc<dyn Index>>;
pub type OpenExtraData = fn(&Path) -> StorageResult<Arc<dyn ExtraData>>;
pub type OpenKvStore = fn(&Path) -> StorageResult<Arc<dyn KvStore>>;

pub struct BackendRegistration {
    pub name: &'static str,
    pub description: &'static str,
    pub blob_store: Option<OpenBlobStore>,
    pub index: Option<OpenIndex>,
    pub extra_data: Option<OpenExtraData>,
    pub kv_store: Option<OpenKvStore>,
}

impl BackendRegistration {
    pub fn fills(&self, role: Role) -> bool {
        match role {
            Role::Blobs => self.blob_store.is_some(),
            Role::Index => self.index.is_some(),
            Role::Extra => self.extra_data.is_some(),
            Role::Kv => self.kv_store.is_some(),
        }
    }
}

inventory::collect!(BackendRegistration);

/// Every registered backend, sorted by name so enumeration order is stable.
pub fn registered_backends() -> Vec<&'static BackendRegistration> {
    let mut all: Vec<_> = inventory::iter::<BackendRegistration>.into_iter().collect();
    all.sort_by_key(|r| r.name);
    all
}

/// Names of the backends that can fill `role`, sorted.
pub fn backends_for(role: Role) -> Vec<&'static str> {
    registered_backends()
        .into_iter()
        .filter(|r| r.fills(role))
        .map(|r| r.name)
        .collect()
}

/// The backend called `name` that fills `role`, or a clear error listing those that do.
pub fn find_backend(name: &str, role: Role) -> StorageResult<&'static BackendRegistration> {
    registered_backends()
        .into_iter()
        .find(|r| r.name == name && r.fills(role))
        .ok_or_else(|| StorageError::UnknownBackend {
            name: name.to_string(),
            role: role.name(),
            registered: backends_for(role).join(", "),
        })
}

pub fn open_blob_store(name: &str, dir: &Path) -> StorageResult<Arc<dyn BlobStore>> {
    (find_backend(name, Role::Blobs)?
        .blob_store
        .expect("checked by find_backend"))(dir)
}

pub fn open_index(name: &str, dir: &Path) -> StorageResult<Arc<dyn Index>> {
    (find_backend(name, Role::Index)?
        .index
        .expect("checked by find_backend"))(dir)
}

pub fn open_extra_data(name: &str, dir: &Path) -> StorageResult<Arc<dyn ExtraData>> {
    (find_backend(name, Role::Extra)?
        .extra_data
        .expect("checked by find_backend"))(dir)
}

pub fn open_kv_store(name: &str, dir: &Path) -> StorageResult<Arc<dyn KvStore>> {
    (find_backend(name, Role::Kv)?
        .kv_store
        .expect("checked by find_backend"))(dir)
}
