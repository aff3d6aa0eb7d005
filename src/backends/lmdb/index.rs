//! The blob index in LMDB. Keys are canonical digest strings, so LMDB's key order is digest
//! order: prefix lookups and pages are cursor ranges. A secondary database keyed
//! `media_type \0 digest` answers media-type queries, and the running total size lives in the
//! `counters` database, updated in the same transaction as the records.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use heed::{RoTxn, RwTxn};

use super::environment::{HeedResultExt, SharedEnv};
use super::keys::{check_key_len, decode_u64, digest_from_key, encode_u64, join, prefix_of};
use super::records::{decode_blob_record, encode_blob_record};
use crate::traits::{BlobRecord, Digest, DigestPrefix, Index, IndexTotals, StorageResult};

const TOTAL_SIZE_COUNTER: &[u8] = b"index.total_size";

pub struct LmdbIndex {
    env: Arc<SharedEnv>,
}

impl LmdbIndex {
    /// Opens (creating if needed) the index in `dir/meta/lmdb/`.
    pub fn open(dir: &Path) -> StorageResult<Self> {
        Ok(Self::with_environment(SharedEnv::open(
            &super::environment_dir(dir),
        )?))
    }

    pub(crate) fn with_environment(env: Arc<SharedEnv>) -> Self {
        LmdbIndex { env }
    }

    fn record_in(&self, rtxn: &RoTxn, digest: &Digest) -> StorageResult<Option<BlobRecord>> {
        let stored = self
            .env
            .databases
            .blobs
            .get(rtxn, digest.as_str().as_bytes())
            .with_context(|| format!("reading the index record of {digest}"))?;
        stored
            .map(|bytes| decode_blob_record(digest.clone(), bytes))
            .transpose()
    }

    fn total_size_in(&self, rtxn: &RoTxn) -> StorageResult<u64> {
        let stored = self
            .env
            .databases
            .counters
            .get(rtxn, TOTAL_SIZE_COUNTER)
            .with_context(|| "reading the index total size".to_string())?;
        match stored {
            Some(bytes) => decode_u64(bytes, || "index total size".to_string()),
            None => Ok(0),
        }
    }

    fn set_total_size(&self, wtxn: &mut RwTxn, total: u64) -> StorageResult<()> {
        self.env
            .databases
            .counters
            .put(wtxn, TOTAL_SIZE_COUNTER, &encode_u64(total))
            .with_context(|| "writing the index total size".to_string())
    }

    /// Removes the record of `digest` and its media-type entry; returns its size if it was
    /// there.
    fn remove_in(&self, wtxn: &mut RwTxn, digest: &Digest) -> StorageResult<Option<u64>> {
        let databases = &self.env.databases;
        let Some(old) = self.record_in(wtxn, digest)? else {
            return Ok(None);
        };
        let context = || format!("removing the index record of {digest}");
        databases
            .blobs
            .delete(wtxn, digest.as_str().as_bytes())
            .with_context(context)?;
        databases
            .blobs_by_media_type
            .delete(wtxn, &media_type_key(&old.media_type, digest))
            .with_context(context)?;
        Ok(Some(old.size))
    }

    /// Writes one record, replacing any previous one, and keeps the total size in step.
    fn upsert_in(&self, wtxn: &mut RwTxn, prepared: &PreparedRecord) -> StorageResult<()> {
        let record = prepared.record;
        let digest = &record.digest;
        let previous_size = self.remove_in(wtxn, digest)?.unwrap_or(0);
        let context = || format!("writing the index record of {digest}");
        let databases = &self.env.databases;
        databases
            .blobs
            .put(wtxn, digest.as_str().as_bytes(), &prepared.encoded)
            .with_context(context)?;
        databases
            .blobs_by_media_type
            .put(wtxn, &prepared.by_media_type, b"")
            .with_context(context)?;
        let total = self.total_size_in(wtxn)?;
        self.set_total_size(wtxn, total - previous_size.min(total) + record.size)
    }
}

/// A record encoded and checked before its write transaction starts, so the transaction (which
/// LMDB may retry after growing the map) does no more than write.
struct PreparedRecord<'a> {
    record: &'a BlobRecord,
    encoded: Vec<u8>,
    by_media_type: Vec<u8>,
}

impl<'a> PreparedRecord<'a> {
    fn new(record: &'a BlobRecord) -> StorageResult<Self> {
        let digest = &record.digest;
        let by_media_type = media_type_key(&record.media_type, digest);
        check_key_len(&by_media_type, || {
            format!("media type {:?} of {digest}", record.media_type)
        })?;
        Ok(PreparedRecord {
            record,
            encoded: encode_blob_record(record),
            by_media_type,
        })
    }
}

fn media_type_key(media_type: &str, digest: &Digest) -> Vec<u8> {
    join(media_type.as_bytes(), digest.as_str().as_bytes())
}

impl Index for LmdbIndex {
    /// One write transaction for the whole batch.
    fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()> {
        let prepared = records
            .iter()
            .map(PreparedRecord::new)
            .collect::<StorageResult<Vec<_>>>()?;
        self.env.write(|wtxn| {
            prepared
                .iter()
                .try_for_each(|record| self.upsert_in(wtxn, record))
        })
    }

    /// One write transaction for all of them.
    fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        if digests.is_empty() {
            return Ok(0);
        }
        self.env.write(|wtxn| {
            let (mut removed, mut freed) = (0, 0);
            for digest in digests {
                if let Some(size) = self.remove_in(wtxn, digest)? {
                    removed += 1;
                    freed += size;
                }
            }
            let total = self.total_size_in(wtxn)?;
            self.set_total_size(wtxn, total.saturating_sub(freed))?;
            Ok(removed)
        })
    }

    /// A point lookup on the key, cheaper than the provided form (a cursor over a range).
    fn get(&self, digest: &Digest) -> StorageResult<Option<BlobRecord>> {
        self.env.read(|rtxn| self.record_in(rtxn, digest))
    }

    /// One read transaction for all of them.
    fn get_many(&self, digests: &[Digest]) -> StorageResult<Vec<Option<BlobRecord>>> {
        self.env.read(|rtxn| {
            digests
                .iter()
                .map(|digest| self.record_in(rtxn, digest))
                .collect()
        })
    }

    fn by_prefix(&self, prefix: &DigestPrefix, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        let mut records = self.env.read(|rtxn| {
            let mut records = Vec::new();
            for key_prefix in prefix.key_prefixes() {
                let context = || format!("looking up digests starting with {key_prefix}");
                let matches = self
                    .env
                    .databases
                    .blobs
                    .prefix_iter(rtxn, key_prefix.as_bytes())
                    .with_context(context)?;
                for entry in matches.take(limit) {
                    let (key, value) = entry.with_context(context)?;
                    records.push(decode_blob_record(digest_from_key(key)?, value)?);
                }
            }
            Ok(records)
        })?;
        records.sort_by(|a, b| a.digest.cmp(&b.digest));
        records.truncate(limit);
        Ok(records)
    }

    fn by_media_type(&self, media_type: &str) -> StorageResult<Vec<BlobRecord>> {
        self.env.read(|rtxn| {
            let context = || format!("looking up blobs of media type {media_type:?}");
            let mut records = Vec::new();
            let entries = self
                .env
                .databases
                .blobs_by_media_type
                .prefix_iter(rtxn, &prefix_of(media_type.as_bytes()))
                .with_context(context)?;
            for entry in entries {
                let (key, _) = entry.with_context(context)?;
                let digest = digest_from_key(&key[media_type.len() + 1..])?;
                // A media type containing NUL could share this prefix; the record decides.
                if let Some(record) = self.record_in(rtxn, &digest)? {
                    if record.media_type == media_type {
                        records.push(record);
                    }
                }
            }
            Ok(records)
        })
    }

    fn page(&self, after: Option<&Digest>, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.env.read(|rtxn| {
            let start = match after {
                Some(digest) => Bound::Excluded(digest.as_str().as_bytes()),
                None => Bound::Unbounded,
            };
            let context = || "listing index records".to_string();
            let entries = self
                .env
                .databases
                .blobs
                .range(rtxn, &(start, Bound::Unbounded))
                .with_context(context)?;
            let mut records = Vec::with_capacity(limit.min(1024));
            for entry in entries.take(limit) {
                let (key, value) = entry.with_context(context)?;
                records.push(decode_blob_record(digest_from_key(key)?, value)?);
            }
            Ok(records)
        })
    }

    fn totals(&self) -> StorageResult<IndexTotals> {
        // One read transaction: the two figures describe the same snapshot.
        self.env.read(|rtxn| {
            let records = self
                .env
                .databases
                .blobs
                .len(rtxn)
                .with_context(|| "counting index records".to_string())?;
            Ok(IndexTotals {
                records,
                bytes: self.total_size_in(rtxn)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    fn record(digest: Digest, size: u64, media_type: &str) -> BlobRecord {
        BlobRecord {
            digest,
            size,
            media_type: media_type.to_string(),
            created_unix_ms: 1_700_000_000_000,
        }
    }

    /// A digest of `algorithm` whose hex starts with `hex_start`.
    fn digest_starting(algorithm: Algorithm, hex_start: &str, filler: char) -> Digest {
        let hex: String = hex_start
            .chars()
            .chain(std::iter::repeat(filler))
            .take(algorithm.hex_len())
            .collect();
        Digest::parse(&format!("{algorithm}:{hex}")).unwrap()
    }

    #[test]
    fn bare_hex_prefix_finds_both_algorithms_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let index = LmdbIndex::open(dir.path()).unwrap();
        let sha256 = digest_starting(Algorithm::Sha256, "abcd", '1');
        let sha512 = digest_starting(Algorithm::Sha512, "abcd", '2');
        let other = digest_starting(Algorithm::Sha256, "abce", '3');
        for digest in [&sha512, &other, &sha256] {
            index.upsert(&record(digest.clone(), 10, "a/b")).unwrap();
        }
        let found = index
            .by_prefix(&DigestPrefix::parse("abcd").unwrap(), 10)
            .unwrap();
        let digests: Vec<_> = found.into_iter().map(|r| r.digest).collect();
        assert_eq!(digests, vec![sha256.clone(), sha512.clone()]);
        let limited = index
            .by_prefix(&DigestPrefix::parse("abcd").unwrap(), 1)
            .unwrap();
        assert_eq!(limited.len(), 1);
        assert_eq!(limited[0].digest, sha256);
        let only_512 = index
            .by_prefix(&DigestPrefix::parse("sha512:abcd").unwrap(), 10)
            .unwrap();
        assert_eq!(only_512.len(), 1);
        assert_eq!(only_512[0].digest, sha512);
    }

    #[test]
    fn upsert_many_writes_a_batch_like_single_upserts() {
        let dir = tempfile::tempdir().unwrap();
        let index = LmdbIndex::open(dir.path()).unwrap();
        let a = Digest::of_bytes(Algorithm::Sha256, b"a");
        let b = Digest::of_bytes(Algorithm::Sha256, b"b");
        index.upsert(&record(a.clone(), 100, "x/old")).unwrap();
        index
            .upsert_many(&[
                record(b.clone(), 5, "x/one"),
                record(a.clone(), 10, "x/one"),
                record(b.clone(), 6, "x/one"),
            ])
            .unwrap();
        assert_eq!(index.count().unwrap(), 2);
        assert_eq!(index.total_size().unwrap(), 16);
        assert!(index.by_media_type("x/old").unwrap().is_empty());
        assert_eq!(index.by_media_type("x/one").unwrap().len(), 2);
        index.upsert_many(&[]).unwrap();
        assert_eq!(index.count().unwrap(), 2);
    }

    #[test]
    fn upsert_replaces_size_and_media_type() {
        let dir = tempfile::tempdir().unwrap();
        let index = LmdbIndex::open(dir.path()).unwrap();
        let a = Digest::of_bytes(Algorithm::Sha256, b"a");
        let b = Digest::of_bytes(Algorithm::Sha256, b"b");
        index.upsert(&record(a.clone(), 10, "x/one")).unwrap();
        index.upsert(&record(b.clone(), 5, "x/one")).unwrap();
        index.upsert(&record(a.clone(), 7, "x/two")).unwrap();
        assert_eq!(index.count().unwrap(), 2);
        assert_eq!(index.total_size().unwrap(), 12);
        assert_eq!(index.by_media_type("x/one").unwrap().len(), 1);
        assert_eq!(index.by_media_type("x/two").unwrap()[0].digest, a);
        assert!(index.remove(&a).unwrap());
        assert!(!index.remove(&a).unwrap());
        assert_eq!(index.total_size().unwrap(), 5);
        let page = index.page(None, 10).unwrap();
        assert_eq!(page.len(), 1);
        assert!(index.page(Some(&b), 10).unwrap().is_empty());
    }
}
