//! Image info: what `ls`, `get` and `info` show, kept as extra data of the image blob so that
//! none of them reads a tar. Last-used time is a separate item, so recording a use rewrites a
//! few bytes, not the info.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{AppcError, AppcResult};
use super::manifest::ImageManifest;
use super::{AppcStore, HOLDER, INFO_TYPE, LEGACY_LAST_USED_TYPE};
use crate::traits::Digest;

/// What the store knows about one appc image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// `sha512-<hex>`: the sha512 of the uncompressed tar.
    pub id: String,
    /// The image name from its manifest.
    pub name: String,
    /// The manifest's labels, by name.
    pub labels: BTreeMap<String, String>,
    /// When the image was first imported, in milliseconds since the Unix epoch.
    pub import_time_ms: i64,
    /// Set when the image was imported as the latest of its name (rkt: fetched without a
    /// version); `get` without a `version` label prefers it.
    pub latest: bool,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// Bytes of its last rendered tree, once rendered.
    pub rendered_tree_size: Option<u64>,
    /// The manifest as imported (validated).
    pub manifest: Value,
    /// Set from the last-used item when read; not stored in the info itself.
    #[serde(default)]
    pub last_used_ms: Option<i64>,
}

impl ImageInfo {
    /// The image ID as a [`Digest`](crate::Digest); [`AppcError::Invalid`] if the stored ID is
    /// damaged.
    pub fn digest(&self) -> AppcResult<Digest> {
        Digest::parse(&self.id).map_err(|e| AppcError::Invalid(format!("stored image id: {e}")))
    }

    /// The `version` label, if any.
    pub fn version(&self) -> Option<&str> {
        self.labels.get("version").map(String::as_str)
    }

    /// The typed manifest (validated at import).
    pub fn image_manifest(&self) -> AppcResult<ImageManifest> {
        serde_json::from_value(self.manifest.clone())
            .map_err(|e| AppcError::Invalid(format!("stored manifest of {}: {e}", self.id)))
    }

    /// The info as stored: without the last-used time, an item of its own.
    pub(crate) fn stored_bytes(&self) -> Vec<u8> {
        let mut stored = self.clone();
        stored.last_used_ms = None;
        serde_json::to_vec(&stored).expect("image info serializes")
    }

    /// When the image was last used, or imported if never used: what GC ages by.
    pub fn last_activity_ms(&self) -> i64 {
        self.last_used_ms
            .unwrap_or(self.import_time_ms)
            .max(self.import_time_ms)
    }
}

impl AppcStore<'_> {
    /// The info of an image, with its last-used time; `None` when it is not an appc image.
    pub fn read_info(&self, digest: &Digest) -> AppcResult<Option<ImageInfo>> {
        let Some(bytes) = self.store.get_extra(digest, INFO_TYPE)? else {
            return Ok(None);
        };
        let mut info: ImageInfo = serde_json::from_slice(&bytes)
            .map_err(|e| AppcError::Invalid(format!("image info of {digest}: {e}")))?;
        info.last_used_ms = self.read_last_used(digest)?;
        Ok(Some(info))
    }

    pub(crate) fn write_info(&self, digest: &Digest, info: &ImageInfo) -> AppcResult<()> {
        self.store
            .set_extra(digest, INFO_TYPE, &info.stored_bytes())?;
        Ok(())
    }

    /// The store's last-use record of the image, or the legacy one, whichever is later.
    fn read_last_used(&self, digest: &Digest) -> AppcResult<Option<i64>> {
        let legacy: Option<i64> = self
            .store
            .get_extra(digest, LEGACY_LAST_USED_TYPE)?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse().ok());
        Ok(self.store.blob_last_used(digest)?.max(legacy))
    }

    /// Records a use of an image now (render, export, lookup to run), through the store's
    /// last-use records as every flavour does: throttled to one write per
    /// `last_used_interval`, best effort.
    pub fn touch(&self, digest: &Digest) -> AppcResult<()> {
        self.store
            .record_use(&HOLDER, None, std::slice::from_ref(digest));
        Ok(())
    }

    /// Every appc image's info, in ID order.
    pub fn all_infos(&self) -> AppcResult<Vec<ImageInfo>> {
        let mut infos = Vec::new();
        for (digest, bytes) in self.store.extra_of_type(INFO_TYPE)? {
            // Info a crash left behind its deleted blob is an orphan for base GC, not an image.
            if !self.store.contains(&digest)? {
                continue;
            }
            let mut info: ImageInfo = serde_json::from_slice(&bytes)
                .map_err(|e| AppcError::Invalid(format!("image info of {digest}: {e}")))?;
            info.last_used_ms = self.read_last_used(&digest)?;
            infos.push(info);
        }
        Ok(infos)
    }
}
