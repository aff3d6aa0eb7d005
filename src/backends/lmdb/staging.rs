//! Staged (uncommitted) blob content. Each writer stages its chunks in `blob_chunks` under
//! `staged/<id>`, the id of its staging file in `meta/lmdb-staging/`, which it holds locked by
//! the shared staging protocol (`backends/staging_lock.rs`), and records the write as staged
//! with a marker in `blob_staging` (`id \0 0`). Committing writes the content record pointing
//! at those chunks and removes the marker, in one short transaction: the chunks are never
//! copied. A sweep removes the chunks and marker of writers that are gone and never committed
//! (a marked id: a committed one has no marker left).

use std::collections::BTreeSet;
use std::path::Path;

use super::super::staging_lock::{probe_dead, sweep_dead};
use super::environment::{HeedResultExt, RawDatabase, SharedEnv};
use super::keys::{delete_prefix, distinct_first_parts, encode_u64, join, prefix_of, utf8};
use crate::traits::StorageResult;

pub(crate) use super::super::staging_lock::StagingLock;

/// `staging id \0 sequence`: the marker of a staged write in `blob_staging` (sequence 0).
pub(crate) fn staged_chunk_key(staging_id: &str, sequence: u64) -> Vec<u8> {
    join(staging_id.as_bytes(), &encode_u64(sequence))
}

/// The key prefix, in `blob_chunks`, of the chunks a write stages (and that its blob keeps
/// once committed): `staged/<id>`, which no digest key can start with.
pub(crate) fn staged_chunks_prefix(staging_id: &str) -> String {
    format!("staged/{staging_id}")
}

/// Deletes every chunk staged under `staging_id` and its marker; returns how many entries and
/// bytes went. Only while the marker is there, checked in the same transaction: a write that
/// committed meanwhile (its commit removed the marker) owns its chunks now, and a sweep that
/// listed its id before the commit must not take them.
pub(crate) fn delete_staged(env: &SharedEnv, staging_id: &str) -> StorageResult<(u64, u64)> {
    env.write(|wtxn| {
        let (markers, marker_bytes) = delete_prefix(
            &env.databases.blob_staging,
            wtxn,
            &prefix_of(staging_id.as_bytes()),
            &format!("the staging marker of {staging_id}"),
        )?;
        if markers == 0 {
            return Ok((0, 0));
        }
        let (chunks, chunk_bytes) = delete_prefix(
            &env.databases.blob_chunks,
            wtxn,
            &prefix_of(staged_chunks_prefix(staging_id).as_bytes()),
            &format!("staged chunks of {staging_id}"),
        )?;
        Ok((chunks + markers, chunk_bytes + marker_bytes))
    })
}

/// What [`delete_staged`] would delete now, changing nothing: the entries and bytes of a
/// write's marker and chunks, `(0, 0)` when its marker is gone.
fn staged_usage(env: &SharedEnv, staging_id: &str) -> StorageResult<(u64, u64)> {
    env.read(|rtxn| {
        let measure =
            |database: &RawDatabase, prefix: &[u8], what: &str| -> StorageResult<(u64, u64)> {
                let context = || format!("measuring {what} of {staging_id}");
                let (mut entries, mut bytes) = (0, 0);
                for entry in database.prefix_iter(rtxn, prefix).with_context(context)? {
                    entries += 1;
                    bytes += entry.with_context(context)?.1.len() as u64;
                }
                Ok((entries, bytes))
            };
        let (markers, marker_bytes) = measure(
            &env.databases.blob_staging,
            &prefix_of(staging_id.as_bytes()),
            "the staging marker",
        )?;
        if markers == 0 {
            return Ok((0, 0));
        }
        let (chunks, chunk_bytes) = measure(
            &env.databases.blob_chunks,
            &prefix_of(staged_chunks_prefix(staging_id).as_bytes()),
            "the staged chunks",
        )?;
        Ok((chunks + markers, chunk_bytes + marker_bytes))
    })
}

/// The ids of every write with a staging marker; read before the staging folder is listed,
/// so an id staged then whose file is not listed later belongs to a writer that has ended.
fn staged_ids(env: &SharedEnv) -> StorageResult<BTreeSet<String>> {
    env.read(|rtxn| {
        distinct_first_parts(&env.databases.blob_staging, rtxn, "staged writes")?
            .iter()
            .map(|part| Ok(utf8(part, "staging id")?.to_string()))
            .collect()
    })
}

/// What [`remove_dead_ingests`] would remove now (writes, bytes), changing nothing: each dead
/// staging file's write (its chunks while its marker is there), then each marked write whose
/// staging file is gone.
pub(crate) fn dead_ingest_usage(env: &SharedEnv, staging_dir: &Path) -> StorageResult<(u64, u64)> {
    let staged = staged_ids(env)?;
    let (mut writes, mut bytes) = (0, 0);
    let listed = probe_dead(staging_dir, |dead| {
        writes += 1;
        bytes += staged_usage(env, &dead.id)?.1;
        Ok(())
    })?;
    for id in staged.iter().filter(|id| !listed.contains(*id)) {
        let (entries, staged_bytes) = staged_usage(env, id)?;
        if entries > 0 {
            writes += 1;
            bytes += staged_bytes;
        }
    }
    Ok((writes, bytes))
}

/// Removes the staged chunks of writers that are gone. Returns how many writes and bytes.
pub(crate) fn remove_dead_ingests(
    env: &SharedEnv,
    staging_dir: &Path,
) -> StorageResult<(u64, u64)> {
    let staged = staged_ids(env)?;
    let (mut removed_writes, mut removed_bytes) = (0, 0);
    let listed = sweep_dead(staging_dir, |dead| {
        let (_, bytes) = delete_staged(env, &dead.id)?;
        removed_writes += 1;
        removed_bytes += bytes;
        Ok(())
    })?;
    for id in staged.iter().filter(|id| !listed.contains(*id)) {
        let (chunks, bytes) = delete_staged(env, id)?;
        if chunks > 0 {
            removed_writes += 1;
            removed_bytes += bytes;
        }
    }
    Ok((removed_writes, removed_bytes))
}
