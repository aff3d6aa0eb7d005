//! Removing an image: its remote records and rendered trees, its info, then the flavour's hold
//! on the blob (`Store::release`), which deletes the blob unless another holder keeps it (an
//! OCI mark, a user's `blob put`).
//!
//! Order for crashes: the info goes before the hold, so a crash in between leaves a blob held
//! by `appc` without info, which the next appc GC releases (an unfinished import looks the
//! same).

use serde::Serialize;

use super::error::AppcResult;
use super::{AppcStore, HOLDER, INFO_TYPE, LEGACY_LAST_USED_TYPE, REMOTE_DATA_TYPE};
use crate::traits::Digest;

/// What [`AppcStore::remove`] removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemoveReport {
    /// The image ID (`sha512-...`).
    pub id: String,
    /// The image name, when its info was still there.
    pub name: Option<String>,
    /// The image's size in bytes (its uncompressed tar).
    pub size: u64,
    /// Whether the blob itself went; `false` when another holder keeps it.
    pub deleted: bool,
    /// ACI URLs of the remote cache records removed with it.
    pub remote_records: Vec<String>,
    /// Rendered trees of the image removed with it.
    pub rendered_trees: u64,
}

impl AppcStore<'_> {
    /// Removes the image `key` names. Takes the flavour GC lock exclusive, as GC does: it
    /// waits for running imports, renders and exports, so no image goes under one of them (an
    /// import of this very image that deduplicated against it would otherwise find its info
    /// gone and its blob deleted between its commit and its info write).
    pub fn remove(&self, key: &str) -> AppcResult<RemoveReport> {
        let _exclusive = self.gc_lock()?;
        let digest = self.resolve_key(key)?;
        self.remove_image(&digest)
    }

    /// The removal itself; the caller holds the GC lock exclusive.
    pub(crate) fn remove_image(&self, digest: &Digest) -> AppcResult<RemoveReport> {
        let _image = self.image_lock(digest)?;
        let info = self.read_info(digest)?;
        let size = match &info {
            Some(info) => info.size,
            None => self.store.info(digest).map_or(0, |r| r.size),
        };
        let remote_records = self.remotes_of(digest)?;
        for url in &remote_records {
            self.store.remove_data(REMOTE_DATA_TYPE, url)?;
        }
        crate::crash_point!("appc.remove.after-remotes");
        let rendered_trees = self.remove_trees_of(digest)?;
        crate::crash_point!("appc.remove.after-trees");
        self.store.remove_extra(digest, INFO_TYPE)?;
        self.store.remove_extra(digest, LEGACY_LAST_USED_TYPE)?;
        crate::crash_point!("appc.remove.before-release");
        let deleted = self.store.release(digest, &HOLDER)?.is_deleted();
        Ok(RemoveReport {
            id: digest.dashed(),
            name: info.map(|i| i.name),
            size,
            deleted,
            remote_records,
            rendered_trees,
        })
    }
}
