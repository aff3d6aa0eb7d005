//! Blob content kept inside the LMDB environment, in fixed-size chunks: `blob_contents` maps a
//! digest to its size, chunk size and where its chunks are; `blob_chunks` holds
//! `staged/<id> \0 sequence -> bytes` (chunks stay where their writer staged them, see
//! `staging.rs`; the commit only points the record at them) or, for blobs of format 1,
//! `digest \0 sequence -> bytes`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use heed::{RoTxn, RwTxn};

use super::blob_reader::LmdbBlobReader;
use super::blob_writer::{chunks_prefix, LmdbBlobWriter};
use super::environment::{HeedResultExt, SharedEnv};
use super::keys::{delete_prefix, digest_page, prefix_of};
use super::records::{decode_blob_content, BlobContent};
use super::staging::{dead_ingest_usage, remove_dead_ingests, StagingLock};
use crate::traits::{
    BlobRead, BlobStore, BlobWriter, Digest, Expected, SortedDigests, StorageError, StorageResult,
};

/// Big enough that per-chunk overhead is negligible, small enough to hold one in memory.
pub(crate) const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;

pub struct LmdbBlobStore {
    env: Arc<SharedEnv>,
    staging_dir: PathBuf,
    chunk_size: u32,
}

impl LmdbBlobStore {
    /// Opens (creating if needed) the blob store in `dir/meta/lmdb/`, with writer lock files in
    /// `dir/meta/lmdb-staging/`.
    pub fn open(dir: &Path) -> StorageResult<Self> {
        let env = SharedEnv::open(&super::environment_dir(dir))?;
        Ok(Self::with_parts(
            env,
            dir.join("meta").join("lmdb-staging"),
            DEFAULT_CHUNK_SIZE,
        ))
    }

    /// A store over an open environment, writing new blobs in chunks of `chunk_size` bytes
    /// (blobs already stored keep the chunk size they were written with).
    pub(crate) fn with_parts(env: Arc<SharedEnv>, staging_dir: PathBuf, chunk_size: u32) -> Self {
        LmdbBlobStore {
            env,
            staging_dir,
            chunk_size: chunk_size.max(1),
        }
    }

    fn content_in(&self, rtxn: &RoTxn, digest: &Digest) -> StorageResult<Option<BlobContent>> {
        let stored = self
            .env
            .databases
            .blob_contents
            .get(rtxn, digest.as_str().as_bytes())
            .with_context(|| format!("reading the content record of {digest}"))?;
        stored
            .map(|bytes| decode_blob_content(bytes, digest))
            .transpose()
    }

    fn content(&self, digest: &Digest) -> StorageResult<Option<BlobContent>> {
        self.env.read(|rtxn| self.content_in(rtxn, digest))
    }

    /// Deletes a blob's content record and its chunks; returns whether it was stored.
    fn delete_in(&self, wtxn: &mut RwTxn, digest: &Digest) -> StorageResult<bool> {
        let databases = &self.env.databases;
        let Some(content) = self.content_in(wtxn, digest)? else {
            return Ok(false);
        };
        databases
            .blob_contents
            .delete(wtxn, digest.as_str().as_bytes())
            .with_context(|| format!("deleting blob {digest}"))?;
        delete_prefix(
            &databases.blob_chunks,
            wtxn,
            &prefix_of(chunks_prefix(digest, &content).as_bytes()),
            &format!("chunks of {digest}"),
        )?;
        Ok(true)
    }
}

impl BlobStore for LmdbBlobStore {
    fn writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        let staging = StagingLock::create(&self.staging_dir)?;
        Ok(Box::new(LmdbBlobWriter::new(
            self.env.clone(),
            staging,
            self.chunk_size,
            expected,
        )))
    }

    /// The staged chunks of a dead writer of the digest (found by its staging file,
    /// `<id>.<alg>-<hex>.staging`) are hashed again and kept where they are.
    fn resumable_writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        let Some(digest) = expected.digest.clone() else {
            return self.writer(expected);
        };
        Ok(Box::new(LmdbBlobWriter::resume(
            self.env.clone(),
            &self.staging_dir,
            self.chunk_size,
            expected,
            &digest,
        )?))
    }

    fn open(&self, digest: &Digest) -> StorageResult<Box<dyn BlobRead + '_>> {
        let content = self
            .content(digest)?
            .ok_or_else(|| StorageError::BlobNotFound(digest.clone()))?;
        Ok(Box::new(LmdbBlobReader::new(
            self.env.clone(),
            digest.clone(),
            content,
        )))
    }

    fn size(&self, digest: &Digest) -> StorageResult<Option<u64>> {
        Ok(self.content(digest)?.map(|content| content.size))
    }

    /// One write transaction for all of them.
    fn delete_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        if digests.is_empty() {
            return Ok(0);
        }
        self.env.write(|wtxn| {
            let mut deleted = 0;
            for digest in digests {
                deleted += u64::from(self.delete_in(wtxn, digest)?);
            }
            Ok(deleted)
        })
    }

    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        Ok(SortedDigests::paged(|after, limit| {
            self.env.read(|rtxn| {
                digest_page(
                    &self.env.databases.blob_contents,
                    rtxn,
                    after,
                    limit,
                    "stored blobs",
                )
            })
        }))
    }

    fn remove_dead_ingests(&self) -> StorageResult<(u64, u64)> {
        remove_dead_ingests(&self.env, &self.staging_dir)
    }

    /// As [`BlobStore::remove_dead_ingests`] finds them, measured in one read each.
    fn dead_ingest_usage(&self) -> StorageResult<Option<(u64, u64)>> {
        Ok(Some(dead_ingest_usage(&self.env, &self.staging_dir)?))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    use super::*;
    use crate::traits::Algorithm;

    fn small_chunk_store(dir: &Path) -> LmdbBlobStore {
        let env = SharedEnv::open_with_map_size(&dir.join("meta").join("lmdb"), 1 << 20).unwrap();
        LmdbBlobStore::with_parts(env, dir.join("meta").join("lmdb-staging"), 1000)
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn multi_chunk_blob_reads_and_seeks() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_chunk_store(dir.path());
        let bytes = content(3 * 1000 + 123);
        let mut writer = store.writer(Expected::default()).unwrap();
        for piece in bytes.chunks(333) {
            writer.write_all(piece).unwrap();
        }
        let (digest, size) = writer.commit().unwrap();
        assert_eq!(digest, Digest::of_bytes(Algorithm::Sha256, &bytes));
        assert_eq!(size, bytes.len() as u64);

        let mut reader = store.open(&digest).unwrap();
        let mut read_back = Vec::new();
        reader.read_to_end(&mut read_back).unwrap();
        assert_eq!(read_back, bytes);

        reader.seek(SeekFrom::Start(1995)).unwrap();
        let mut across = [0u8; 10];
        reader.read_exact(&mut across).unwrap();
        assert_eq!(&across[..], &bytes[1995..2005]);
        assert_eq!(
            reader.seek(SeekFrom::End(-3)).unwrap(),
            bytes.len() as u64 - 3
        );
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &bytes[bytes.len() - 3..]);
        assert!(reader.seek(SeekFrom::Current(-10_000)).is_err());

        assert_eq!(
            store.sorted_digests().unwrap().into_vec().unwrap(),
            vec![digest.clone()]
        );
        assert!(store.delete(&digest).unwrap());
        assert!(matches!(
            store.open(&digest),
            Err(StorageError::BlobNotFound(_))
        ));
        assert!(!store.delete(&digest).unwrap());
    }

    #[test]
    fn blob_larger_than_the_initial_map_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let env = SharedEnv::open_with_map_size(&dir.path().join("lmdb"), 256 * 1024).unwrap();
        let store = LmdbBlobStore::with_parts(env, dir.path().join("staging"), 64 * 1024);
        let bytes = content(2 << 20);
        let mut writer = store.writer(Expected::default()).unwrap();
        writer.write_all(&bytes).unwrap();
        let (digest, _) = writer.commit().unwrap();
        let mut read_back = Vec::new();
        store
            .open(&digest)
            .unwrap()
            .read_to_end(&mut read_back)
            .unwrap();
        assert!(read_back == bytes);
    }

    #[test]
    fn mismatches_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_chunk_store(dir.path());
        let bytes = content(2500);
        let wrong_digest = Digest::of_bytes(Algorithm::Sha256, b"something else");

        let mut writer = store
            .writer(Expected {
                digest: Some(wrong_digest.clone()),
                size: None,
                algorithm: None,
            })
            .unwrap();
        writer.write_all(&bytes).unwrap();
        assert!(matches!(
            writer.finish(),
            Err(StorageError::DigestMismatch { .. })
        ));
        assert!(writer.commit().is_err());

        let mut writer = store
            .writer(Expected {
                digest: None,
                size: Some(100),
                algorithm: None,
            })
            .unwrap();
        let error = writer.write_all(&bytes).unwrap_err();
        let cause = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<StorageError>());
        assert!(matches!(cause, Some(StorageError::SizeMismatch { .. })));
        assert!(matches!(
            writer.finish(),
            Err(StorageError::SizeMismatch { .. })
        ));
        drop(writer);

        let mut writer = store
            .writer(Expected {
                digest: None,
                size: Some(5000),
                algorithm: None,
            })
            .unwrap();
        writer.write_all(&bytes).unwrap();
        assert!(matches!(
            writer.finish(),
            Err(StorageError::SizeMismatch { .. })
        ));
        drop(writer);

        assert!(store
            .sorted_digests()
            .unwrap()
            .into_vec()
            .unwrap()
            .is_empty());
        assert!(!store.contains(&wrong_digest).unwrap());
        assert_eq!(store.remove_dead_ingests().unwrap(), (0, 0));
        let staged = store
            .env
            .read(|rtxn| {
                store
                    .env
                    .databases
                    .blob_staging
                    .len(rtxn)
                    .with_context(|| "count".to_string())
            })
            .unwrap();
        assert_eq!(staged, 0);
    }

    /// The commit moves no content: the chunks stay under the key their writer staged them
    /// at, and only a content record pointing at them is written (a large blob never holds
    /// LMDB's writer lock for a copy).
    #[test]
    fn commit_points_at_the_staged_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_chunk_store(dir.path());
        let bytes = content(3500);
        let mut writer = store.writer(Expected::default()).unwrap();
        writer.write_all(&bytes).unwrap();
        let staged_keys = |store: &LmdbBlobStore| -> Vec<Vec<u8>> {
            store
                .env
                .read(|rtxn| {
                    let context = || "listing chunks".to_string();
                    let mut keys = Vec::new();
                    for entry in store
                        .env
                        .databases
                        .blob_chunks
                        .iter(rtxn)
                        .with_context(context)?
                    {
                        keys.push(entry.with_context(context)?.0.to_vec());
                    }
                    Ok(keys)
                })
                .unwrap()
        };
        let before = staged_keys(&store);
        assert_eq!(before.len(), 3, "three full chunks staged while writing");
        let (digest, _) = writer.commit().unwrap();
        let after = staged_keys(&store);
        assert_eq!(
            after.len(),
            4,
            "the last chunk staged at finish, none copied"
        );
        assert_eq!(
            &after[..3],
            &before[..],
            "the staged chunks are the blob's chunks"
        );
        assert!(
            after
                .iter()
                .all(|key| !key.starts_with(digest.as_str().as_bytes())),
            "no chunk was copied under the digest"
        );
        let mut read_back = Vec::new();
        std::io::Read::read_to_end(&mut store.open(&digest).unwrap(), &mut read_back).unwrap();
        assert_eq!(read_back, bytes);
        assert_eq!(
            store.remove_dead_ingests().unwrap(),
            (0, 0),
            "nothing left staged"
        );
        assert!(store.delete(&digest).unwrap());
        assert!(staged_keys(&store).is_empty(), "its chunks go with it");
    }

    /// The sweep of dead writes reads the staged ids before it lists the staging folder, so it
    /// may come to an id whose writer committed in between: the commit owns those chunks then,
    /// and the sweep's delete leaves them.
    #[test]
    fn a_sweep_that_saw_a_write_before_its_commit_leaves_its_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_chunk_store(dir.path());
        let bytes = content(2500);
        let mut writer = store.writer(Expected::default()).unwrap();
        writer.write_all(&bytes).unwrap();
        let staged_id = std::fs::read_dir(&store.staging_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .find_map(|name| name.strip_suffix(".staging").map(str::to_string))
            .expect("the writer's staging file");
        let (digest, _) = writer.commit().unwrap();
        // What the sweep does with an id it read before the commit and did not find listed.
        assert_eq!(
            super::super::staging::delete_staged(&store.env, &staged_id).unwrap(),
            (0, 0)
        );
        let mut read_back = Vec::new();
        std::io::Read::read_to_end(&mut store.open(&digest).unwrap(), &mut read_back).unwrap();
        assert_eq!(read_back, bytes);
    }

    #[test]
    fn committing_an_existing_blob_keeps_one_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_chunk_store(dir.path());
        let bytes = content(1500);
        for _ in 0..2 {
            let mut writer = store.writer(Expected::default()).unwrap();
            writer.write_all(&bytes).unwrap();
            writer.commit().unwrap();
        }
        assert_eq!(store.sorted_digests().unwrap().into_vec().unwrap().len(), 1);
        let chunks = store
            .env
            .read(|rtxn| {
                store
                    .env
                    .databases
                    .blob_chunks
                    .len(rtxn)
                    .with_context(|| "count".to_string())
            })
            .unwrap();
        assert_eq!(chunks, 2);
    }

    #[test]
    fn dead_ingests_are_removed_but_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = small_chunk_store(dir.path());
        let mut live = store.writer(Expected::default()).unwrap();
        live.write_all(&content(2500)).unwrap();

        // A writer that died: its chunks are staged but nobody holds its staging file.
        let dead = StagingLock::create(&store.staging_dir).unwrap();
        let dead_id = dead.id().to_string();
        store
            .env
            .write(|wtxn| {
                store
                    .env
                    .databases
                    .blob_staging
                    .put(
                        wtxn,
                        &super::super::staging::staged_chunk_key(&dead_id, 0),
                        &[1; 700],
                    )
                    .with_context(|| "staging".to_string())
            })
            .unwrap();
        let lock_path = dead.abandon();

        assert_eq!(store.remove_dead_ingests().unwrap(), (1, 700));
        assert!(!lock_path.exists());
        let (digest, _) = live.commit().unwrap();
        assert_eq!(store.size(&digest).unwrap(), Some(2500));
    }
}
