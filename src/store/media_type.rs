//! Naming the media type of a blob stored before anyone knew it.

use super::base::Store;
use super::blobs::validate_media_type;
use super::error::StoreResult;
use super::locks::{LockGuard, LockMode};
use crate::traits::{BlobStore, Digest, ExtraData, Index, KvStore, DEFAULT_MEDIA_TYPE};

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> Store<B, I, X, K> {
    /// Records `media_type` for an indexed blob whose record has none yet (the default,
    /// `application/octet-stream`): content streamed in before its descriptor was read, as an
    /// archive import does. A record that names a media type keeps it. Returns whether the
    /// record changed. Under the blob's exclusive digest lock, so it never resurrects a record
    /// a concurrent delete removed.
    pub fn name_media_type(&self, digest: &Digest, media_type: &str) -> StoreResult<bool> {
        validate_media_type(media_type)?;
        let _lock = LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Exclusive)?;
        match self.index.get(digest)? {
            Some(mut record)
                if record.media_type == DEFAULT_MEDIA_TYPE && media_type != DEFAULT_MEDIA_TYPE =>
            {
                record.media_type = media_type.to_string();
                self.index.upsert(&record)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
