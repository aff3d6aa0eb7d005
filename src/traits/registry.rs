//! The backend registry. Each backend submits one [`BackendRegistration`] with
//! `inventory::submit!`; the store opens backends by name from here, and the conformance suite
//! enumerates it, so registering a backend is all it takes to be selectable and tested.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::blob_store::BlobStore;
use super::error::{StorageError, StorageResult};
use super::extra_data::ExtraData;
use super::index::Index;
use super::kv_store::KvStore;

/// The four roles a backend can fill in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Blob contents, by digest.
    Blobs,
    /// The index of blob records (digest, size, media type, times).
    Index,
    /// Extra data attached to blobs, by type.
    Extra,
    /// The key/value area.
    Kv,
}

impl Role {
    /// Every role, in the order stores list them.
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

/// One backend, as submitted with `inventory::submit!`: its name, the roles it can fill (an
/// opener for each) and its format hooks.
pub struct BackendRegistration {
    /// Name in `store.json` and on the command line; unique among backends.
    pub name: &'static str,
    /// One line for listings of the backends.
    pub description: &'static str,
    /// Opens its blob store in a store directory, if the backend stores blobs.
    pub blob_store: Option<OpenBlobStore>,
    /// Opens its index in a store directory, if the backend keeps the index.
    pub index: Option<OpenIndex>,
    /// Opens its extra data in a store directory, if the backend keeps extra data.
    pub extra_data: Option<OpenExtraData>,
    /// Opens its key/value store in a store directory, if the backend keeps the key/value area.
    pub kv_store: Option<OpenKvStore>,
    /// The backend's on-disk format in a store directory: how to ask for it, back it up and
    /// upgrade it. The store layer drives these under the exclusive store lock.
    pub format: FormatHooks,
}

/// What a backend's files in a store directory say about their format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatStatus {
    /// Nothing of this backend is there yet: opening creates it at the current version.
    Absent,
    /// Recorded at the version this code writes.
    Current,
    /// Laid out as `version` (the current one) by an oci-store that did not record versions:
    /// usable as it is; recording the version is an upgrade step.
    Unrecorded {
        /// The layout's version.
        version: u32,
    },
    /// Recorded at an older version: must be migrated before it is opened for writing.
    NeedsMigration {
        /// The version recorded.
        from: u32,
        /// The version this code writes.
        to: u32,
    },
    /// Written by a newer oci-store: refused.
    Newer {
        /// The version recorded.
        found: u32,
        /// The newest version this code reads.
        supported: u32,
    },
}

impl FormatStatus {
    /// Whether an upgrade (under the exclusive store lock) must run before the store is used.
    pub fn needs_upgrade(self) -> bool {
        matches!(
            self,
            FormatStatus::Unrecorded { .. } | FormatStatus::NeedsMigration { .. }
        )
    }
}

/// Reads a backend's format status for a store directory, changing nothing.
pub type FormatStatusOf = fn(&Path) -> StorageResult<FormatStatus>;
/// Copies a backend's metadata into `backups/` of the store directory, durably; the copy's
/// path, or `None` when the backend keeps nothing a copy would save (content addressed files).
pub type BackUpFormat = fn(&Path) -> StorageResult<Option<PathBuf>>;
/// Brings a backend's files to the current version (backing them up first when they change).
/// Called only under the exclusive store lock: no other process has the store open.
pub type UpgradeFormat = fn(&Path) -> StorageResult<()>;

/// How the store asks for a backend's format version, backs its files up and upgrades them.
pub struct FormatHooks {
    /// Reads the format status, changing nothing.
    pub status: FormatStatusOf,
    /// Backs the backend's metadata up before an upgrade.
    pub back_up: BackUpFormat,
    /// Upgrades the backend's files to the current version.
    pub upgrade: UpgradeFormat,
}

/// A format a backend will not open for writing.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(
        "{what} {path} has format version {found}, but this oci-store supports {supported} \
         at most: upgrade oci-store"
    )]
    Newer {
        what: &'static str,
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "{what} {path} has format version {found} and must be upgraded to {supported}: \
         open the store with oci-store, which upgrades it under the exclusive store lock"
    )]
    NeedsUpgrade {
        what: &'static str,
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

/// Refuses to open `what` at `path` for writing unless its format is one this code runs on:
/// absent (created now), current, or the current layout not yet recorded.
pub fn refuse_unknown_format(
    backend: &'static str,
    what: &'static str,
    path: &Path,
    status: FormatStatus,
) -> StorageResult<()> {
    let error = match status {
        FormatStatus::Absent | FormatStatus::Current | FormatStatus::Unrecorded { .. } => {
            return Ok(())
        }
        FormatStatus::Newer { found, supported } => FormatError::Newer {
            what,
            path: path.to_path_buf(),
            found,
            supported,
        },
        FormatStatus::NeedsMigration { from, to } => FormatError::NeedsUpgrade {
            what,
            path: path.to_path_buf(),
            found: from,
            supported: to,
        },
    };
    Err(StorageError::backend(
        backend,
        "checking the format version",
        error,
    ))
}

impl BackendRegistration {
    /// Whether the backend can fill `role` (has an opener for it).
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

/// The registered backend called `name`, whatever roles it fills.
pub fn backend_named(name: &str) -> StorageResult<&'static BackendRegistration> {
    registered_backends()
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| StorageError::UnknownBackend {
            name: name.to_string(),
            role: "any role",
            registered: registered_backends()
                .iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

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
