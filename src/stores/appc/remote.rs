//! Remote-cache records, keyed by ACI URL: where an image came from, its signature, the
//! server's ETag and cache max age, and when it was downloaded. Each record references the
//! image blob, so it goes when the image goes.

use serde::{Deserialize, Serialize};

use super::error::{AppcError, AppcResult};
use super::{AppcStore, REMOTE_DATA_TYPE};
use crate::store::StoreError;
use crate::traits::{Digest, StorageError};
use crate::util::clock::now_unix_ms;

/// What the remote cache remembers about one ACI URL: which image it gave and how fresh it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRecord {
    /// The URL the ACI was downloaded from; the record's key.
    pub aci_url: String,
    /// The URL of its signature, if any.
    pub signature_url: Option<String>,
    /// The HTTP `ETag` of the download, used to revalidate it.
    pub etag: Option<String>,
    /// Seconds the download may be used without asking the server again (HTTP max-age).
    pub max_age_secs: u64,
    /// When it was downloaded (or last revalidated), in milliseconds since the Unix epoch.
    pub download_time_ms: i64,
    /// The image (`sha512-<hex>`).
    pub image: String,
}

/// What to do about an ACI URL before fetching it (rkt's decision, with the refresh rkt lacked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum RemoteDecision {
    /// Within max age: use the stored image, ask no server.
    UseCache {
        /// The stored image to use (its ID).
        image: String,
    },
    /// Past max age with an ETag: ask the server with `If-None-Match`; on a 304 call
    /// [`AppcStore::remote_not_modified`] and use `image`.
    Revalidate {
        /// The `ETag` to send.
        etag: String,
        /// The stored image to use on a 304 (its ID).
        image: String,
    },
    /// No usable record: download.
    Fetch,
}

impl AppcStore<'_> {
    /// Records (replaces) the remote record of an ACI URL; the image must be stored.
    pub fn set_remote(&self, record: &RemoteRecord) -> AppcResult<()> {
        if record.aci_url.is_empty() {
            return Err(AppcError::Invalid(
                "an ACI URL may not be empty".to_string(),
            ));
        }
        let _mutation = self.mutation_lock()?;
        let digest = self.resolve_key(&record.image)?;
        let mut record = record.clone();
        record.image = digest.dashed();
        let value = serde_json::to_vec(&record).expect("records serialize");
        self.store
            .put_data(REMOTE_DATA_TYPE, &record.aci_url, &value, Some(&digest))?;
        Ok(())
    }

    /// The remote record of `aci_url`, or `None` when there is none.
    pub fn get_remote(&self, aci_url: &str) -> AppcResult<Option<RemoteRecord>> {
        Ok(self.read_remote(aci_url)?.map(|(record, _)| record))
    }

    fn read_remote(&self, aci_url: &str) -> AppcResult<Option<(RemoteRecord, u64)>> {
        let Some(entry) = self.store.get_data(REMOTE_DATA_TYPE, aci_url)? else {
            return Ok(None);
        };
        let record = serde_json::from_slice(&entry.value)
            .map_err(|e| AppcError::Invalid(format!("remote record {aci_url:?}: {e}")))?;
        Ok(Some((record, entry.version)))
    }

    /// Every remote record, by URL.
    pub fn list_remotes(&self) -> AppcResult<Vec<RemoteRecord>> {
        let mut records = Vec::new();
        for (key, entry) in self.store.list_data(REMOTE_DATA_TYPE, "")? {
            records.push(
                serde_json::from_slice(&entry.value)
                    .map_err(|e| AppcError::Invalid(format!("remote record {key:?}: {e}")))?,
            );
        }
        Ok(records)
    }

    /// Removes a remote record; returns whether it was there.
    pub fn remove_remote(&self, aci_url: &str) -> AppcResult<bool> {
        Ok(self.store.remove_data(REMOTE_DATA_TYPE, aci_url)?)
    }

    /// Remote records that reference an image.
    pub(crate) fn remotes_of(&self, digest: &Digest) -> AppcResult<Vec<String>> {
        Ok(self
            .store
            .data_referencing(digest)?
            .into_iter()
            .filter(|key| key.data_type == REMOTE_DATA_TYPE)
            .map(|key| key.key)
            .collect())
    }

    /// What to do about `aci_url` at `now_ms`.
    pub fn remote_decision(&self, aci_url: &str, now_ms: i64) -> AppcResult<RemoteDecision> {
        let Some(record) = self.get_remote(aci_url)? else {
            return Ok(RemoteDecision::Fetch);
        };
        Ok(decide(&record, now_ms))
    }

    /// A 304 answer to a revalidation: the download counts as fresh from now (rkt kept the
    /// old time, so every later fetch revalidated again). Optionally takes the server's new
    /// max age. Compare-and-set, so a concurrent `set_remote` is not overwritten.
    pub fn remote_not_modified(
        &self,
        aci_url: &str,
        max_age_secs: Option<u64>,
    ) -> AppcResult<RemoteRecord> {
        loop {
            let Some((mut record, version)) = self.read_remote(aci_url)? else {
                return Err(AppcError::RemoteNotFound(aci_url.to_string()));
            };
            record.download_time_ms = now_unix_ms();
            if let Some(max_age) = max_age_secs {
                record.max_age_secs = max_age;
            }
            let digest = Digest::parse(&record.image)
                .map_err(|e| AppcError::Invalid(format!("remote record {aci_url:?}: {e}")))?;
            let value = serde_json::to_vec(&record).expect("records serialize");
            match self.store.compare_and_set_data(
                REMOTE_DATA_TYPE,
                aci_url,
                &value,
                Some(&digest),
                Some(version),
            ) {
                Ok(_) => return Ok(record),
                Err(StoreError::Storage(StorageError::VersionConflict { .. })) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// rkt's rule: within max age use the cache; past it revalidate when there is an ETag; else
/// fetch anew.
pub fn decide(record: &RemoteRecord, now_ms: i64) -> RemoteDecision {
    let age_ms = now_ms.saturating_sub(record.download_time_ms);
    let max_age_ms = i64::try_from(record.max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if age_ms < max_age_ms {
        return RemoteDecision::UseCache {
            image: record.image.clone(),
        };
    }
    match &record.etag {
        Some(etag) if !etag.is_empty() => RemoteDecision::Revalidate {
            etag: etag.clone(),
            image: record.image.clone(),
        },
        _ => RemoteDecision::Fetch,
    }
}
