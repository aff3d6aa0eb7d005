//! Extra data and key/value entries, attached to blobs under the blob's shared digest lock so
//! that nothing is attached to a blob a concurrent delete is removing.

use super::base::Store;
use super::delete::OWNER_MARK_PREFIX;
use super::error::{StoreError, StoreResult};
use super::locks::{LockGuard, LockMode};
use crate::traits::{BlobStore, Digest, ExtraData, Index, KvEntry, KvKey, KvStore};

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> Store<B, I, X, K> {
    fn require_blob(&self, digest: &Digest, what: &str) -> StoreResult<()> {
        if self.index.get(digest)?.is_none() {
            return Err(StoreError::MissingBlob {
                what: what.to_string(),
                digest: digest.clone(),
            });
        }
        Ok(())
    }

    fn shared_digest_lock(&self, digest: &Digest) -> StoreResult<LockGuard> {
        LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Shared)
    }

    pub fn set_extra(&self, digest: &Digest, data_type: &str, value: &[u8]) -> StoreResult<()> {
        validate_name("extra data type", data_type)?;
        let _lock = self.shared_digest_lock(digest)?;
        self.require_blob(digest, &format!("extra data {data_type:?}"))?;
        Ok(self.extra.set(digest, data_type, value)?)
    }

    pub fn get_extra(&self, digest: &Digest, data_type: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.extra.get(digest, data_type)?)
    }

    pub fn remove_extra(&self, digest: &Digest, data_type: &str) -> StoreResult<bool> {
        Ok(self.extra.remove(digest, data_type)?)
    }

    pub fn extra_types(&self, digest: &Digest) -> StoreResult<Vec<String>> {
        Ok(self.extra.types(digest)?)
    }

    /// Marks a blob as held by a flavour (`owner.<flavour>`).
    pub fn mark_owner(&self, digest: &Digest, flavour: &str) -> StoreResult<()> {
        self.set_extra(digest, &format!("{OWNER_MARK_PREFIX}{flavour}"), b"")
    }

    /// Drops a flavour's mark. Returns whether it was there.
    pub fn unmark_owner(&self, digest: &Digest, flavour: &str) -> StoreResult<bool> {
        let _lock = self.shared_digest_lock(digest)?;
        Ok(self
            .extra
            .remove(digest, &format!("{OWNER_MARK_PREFIX}{flavour}"))?)
    }

    /// Blobs a flavour holds.
    pub fn owned_by(&self, flavour: &str) -> StoreResult<Vec<Digest>> {
        Ok(self
            .extra
            .entries_of_type(&format!("{OWNER_MARK_PREFIX}{flavour}"))?
            .into_iter()
            .map(|(digest, _)| digest)
            .collect())
    }

    pub fn get_data(&self, data_type: &str, key: &str) -> StoreResult<Option<KvEntry>> {
        Ok(self.kv.get(data_type, key)?)
    }

    /// Sets an entry unconditionally; a referenced blob must be in the store. Returns the new
    /// version.
    pub fn put_data(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
    ) -> StoreResult<u64> {
        self.set_data(data_type, key, value, blob, None, false)
    }

    /// Sets an entry only if its version is `expected_version` (`None`: it must not exist).
    pub fn compare_and_set_data(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
        expected_version: Option<u64>,
    ) -> StoreResult<u64> {
        self.set_data(data_type, key, value, blob, expected_version, true)
    }

    fn set_data(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
        expected_version: Option<u64>,
        conditional: bool,
    ) -> StoreResult<u64> {
        validate_name("data type", data_type)?;
        validate_key(key)?;
        let _lock = match blob {
            Some(digest) => {
                let lock = self.shared_digest_lock(digest)?;
                self.require_blob(digest, &format!("key {data_type}/{key}"))?;
                Some(lock)
            }
            None => None,
        };
        let version = if conditional {
            self.kv
                .compare_and_set(data_type, key, value, blob, expected_version)?
        } else {
            self.kv.put(data_type, key, value, blob)?
        };
        Ok(version)
    }

    pub fn remove_data(&self, data_type: &str, key: &str) -> StoreResult<bool> {
        Ok(self.kv.remove(data_type, key)?)
    }

    pub fn list_data(
        &self,
        data_type: &str,
        key_prefix: &str,
    ) -> StoreResult<Vec<(String, KvEntry)>> {
        Ok(self.kv.list(data_type, key_prefix)?)
    }

    pub fn data_referencing(&self, digest: &Digest) -> StoreResult<Vec<KvKey>> {
        Ok(self.kv.referencing(digest)?)
    }
}

/// Data types name namespaces (`oci.ref`, `owner.oci`): short, printable, no separators that
/// backends use internally.
pub(super) fn validate_name(what: &str, name: &str) -> StoreResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/+".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} {name:?}: use 1-128 characters of [A-Za-z0-9._-:/+]"
        )))
    }
}

pub(super) fn validate_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > 4096 || key.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "key {key:?}: must be 1-4096 bytes without NUL"
        )));
    }
    Ok(())
}
