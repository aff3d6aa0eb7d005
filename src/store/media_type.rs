//! Naming the media type of a blob stored before anyone knew it.

use super::base::Store;
use super::blobs::validate_media_type;
use super::error::StoreResult;
use super::locks::LockMode;
use crate::traits::{BlobRecord, Digest, Index, DEFAULT_MEDIA_TYPE};

impl Store {
    /// Records `media_type` for an indexed blob whose record has none yet (the default,
    /// `application/octet-stream`): content streamed in before its descriptor was read, as an
    /// archive import does. A record that names a media type keeps it. Returns whether the
    /// record changed. Under the blob's exclusive digest lock, so it never resurrects a record
    /// a concurrent delete removed.
    pub fn name_media_type(&self, digest: &Digest, media_type: &str) -> StoreResult<bool> {
        let named = self.name_media_types(&[(digest.clone(), media_type.to_string())])?;
        Ok(named == 1)
    }

    /// [`Store::name_media_type`] for many blobs in one step: their exclusive digest locks in
    /// stripe order and one index batch. Returns how many records changed.
    pub fn name_media_types(&self, named: &[(Digest, String)]) -> StoreResult<u64> {
        for (_, media_type) in named {
            validate_media_type(media_type)?;
        }
        let digests: Vec<Digest> = named.iter().map(|(d, _)| d.clone()).collect();
        let _locks = self.locks.lock_digests(&digests, LockMode::Exclusive)?;
        let mut changed: Vec<BlobRecord> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (digest, media_type) in named {
            if !seen.insert(digest) {
                continue;
            }
            match self.index.get(digest)? {
                Some(mut record)
                    if record.media_type == DEFAULT_MEDIA_TYPE
                        && media_type != DEFAULT_MEDIA_TYPE =>
                {
                    record.media_type = media_type.clone();
                    changed.push(record);
                }
                _ => {}
            }
        }
        self.index.upsert_many(&changed)?;
        Ok(changed.len() as u64)
    }
}
