//! Verification on the way in (DESIGN.md invariant 4): a wrong expected digest or size is an
//! error and nothing becomes visible.

use std::io::Write;

use oci_store::traits::{Algorithm, Digest, Expected, StorageError};

use super::{baseline, carried_storage_error, nothing_left, BlobFixture};
use crate::check::TestResult;
use crate::content::{content, write_in_chunks};
use crate::{ensure, ensure_eq, fail, Context};

pub fn digest_mismatch_stores_nothing(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let before = baseline(fixture, &*store)?;
    for algorithm in Algorithm::ALL {
        let bytes = content(11, 300_000);
        let actual = Digest::of_bytes(algorithm, &bytes);
        let claimed = Digest::of_bytes(algorithm, b"something else");
        let mut writer = store
            .writer(Expected {
                digest: Some(claimed.clone()),
                size: None,
                algorithm: None,
            })
            .context("opening a writer")?;
        // The digest is only known at the end, so every write succeeds.
        write_in_chunks(&mut writer, &bytes).context("writing")?;
        match writer.finish() {
            Err(StorageError::DigestMismatch {
                expected,
                actual: computed,
            }) => {
                ensure_eq!(expected, claimed, "DigestMismatch.expected");
                ensure_eq!(computed, actual, "DigestMismatch.actual");
            }
            Ok(result) => fail!("finish() accepted content claimed as {claimed}: {result:?}"),
            Err(other) => fail!("finish(): expected DigestMismatch, got: {other}"),
        }
        ensure!(
            writer.commit().is_err(),
            "commit() after a failed finish() succeeded"
        );
        nothing_left(
            fixture,
            &*store,
            &before.digests,
            &before.files,
            &[&actual, &claimed],
        )?;
    }
    Ok(())
}

pub fn size_mismatch_short_stores_nothing(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let before = baseline(fixture, &*store)?;
    let bytes = content(12, 200_000);
    let actual = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let claimed_size = bytes.len() as u64 + 10;
    let mut writer = store
        .writer(Expected {
            digest: None,
            size: Some(claimed_size),
            algorithm: None,
        })
        .context("opening a writer")?;
    write_in_chunks(&mut writer, &bytes).context("writing less than expected")?;
    match writer.finish() {
        Err(StorageError::SizeMismatch {
            expected, actual, ..
        }) => {
            ensure_eq!(expected, claimed_size, "SizeMismatch.expected");
            ensure_eq!(actual, bytes.len() as u64, "SizeMismatch.actual");
        }
        Ok(result) => fail!("finish() accepted a short blob: {result:?}"),
        Err(other) => fail!("finish(): expected SizeMismatch, got: {other}"),
    }
    ensure!(
        writer.commit().is_err(),
        "commit() after a failed finish() succeeded"
    );
    nothing_left(fixture, &*store, &before.digests, &before.files, &[&actual])
}

/// More bytes than expected: refused as soon as the size is exceeded or at `finish`; a `write`
/// error must carry the `StorageError::SizeMismatch` (the base store surfaces it).
pub fn size_mismatch_long_stores_nothing(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let before = baseline(fixture, &*store)?;
    let bytes = content(13, 200_000);
    let actual = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let claimed_size = bytes.len() as u64 - 10;
    let mut writer = store
        .writer(Expected {
            digest: None,
            size: Some(claimed_size),
            algorithm: None,
        })
        .context("opening a writer")?;
    let mut refused_while_writing = false;
    for chunk in bytes.chunks(65_536) {
        if let Err(error) = writer.write_all(chunk) {
            match carried_storage_error(&error) {
                Some(StorageError::SizeMismatch { expected, .. }) => {
                    ensure_eq!(*expected, claimed_size, "SizeMismatch.expected");
                }
                _ => fail!("write(): expected an io::Error carrying SizeMismatch, got: {error}"),
            }
            refused_while_writing = true;
            break;
        }
    }
    if !refused_while_writing {
        match writer.finish() {
            Err(StorageError::SizeMismatch { expected, .. }) => {
                ensure_eq!(expected, claimed_size, "SizeMismatch.expected");
            }
            Ok(result) => fail!("finish() accepted an oversize blob: {result:?}"),
            Err(other) => fail!("finish(): expected SizeMismatch, got: {other}"),
        }
    }
    drop(writer);
    nothing_left(fixture, &*store, &before.digests, &before.files, &[&actual])
}

pub fn write_after_finish_is_refused(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = b"finished content".to_vec();
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let mut writer = store
        .writer(Expected::default())
        .context("opening a writer")?;
    writer.write_all(&bytes).context("writing")?;
    writer.finish().context("finishing")?;
    ensure!(
        writer.write_all(b"more").is_err(),
        "write() after finish() succeeded"
    );
    // The refused write must not have changed what gets committed.
    if let Ok((committed, size)) = writer.commit() {
        ensure_eq!(
            committed,
            digest.clone(),
            "digest committed after a refused write"
        );
        ensure_eq!(
            size,
            bytes.len() as u64,
            "size committed after a refused write"
        );
        let read =
            crate::content::read_all(store.open(&digest).context("opening")?).context("reading")?;
        ensure!(read == bytes, "content changed by a write after finish()");
    }
    Ok(())
}

/// Disk space held by the backend's files (allocated blocks, so sparse or preallocated
/// database files count what they use), without SQLite's write-ahead log and shared memory,
/// which hold pages until a checkpoint.
fn allocated_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    crate::content::files_under(dir)
        .into_iter()
        .filter(|path| {
            let name = path.to_string_lossy();
            !name.ends_with("-wal") && !name.ends_with("-shm")
        })
        .filter_map(|path| std::fs::metadata(dir.join(path)).ok())
        .map(|metadata| metadata.blocks() * 512)
        .sum()
}

/// Aborted writes (dropped, wrong digest, wrong size) must not pile up once dead ingests are
/// removed, wherever a backend stages content (files, database chunks): twenty aborted
/// 512 KiB writes may not grow the backend's files by anything near their 10 MiB.
pub fn aborted_writes_do_not_accumulate(fixture: &BlobFixture) -> TestResult {
    const ROUNDS: u64 = 20;
    const SIZE: usize = 512 * 1024;
    let store = fixture.open()?;
    let abort = |round: u64| -> TestResult {
        let bytes = content(1000 + round, SIZE);
        let expected = match round % 3 {
            0 => Expected::default(),
            1 => Expected {
                digest: Some(Digest::of_bytes(Algorithm::Sha256, b"not this")),
                size: None,
                algorithm: None,
            },
            _ => Expected {
                digest: None,
                size: Some(SIZE as u64 + 1),
                algorithm: None,
            },
        };
        let mut writer = store.writer(expected).context("opening a writer")?;
        write_in_chunks(&mut writer, &bytes).context("writing")?;
        if !round.is_multiple_of(3) {
            ensure!(writer.finish().is_err(), "a mismatched write finished");
        }
        drop(writer);
        store
            .remove_dead_ingests()
            .context("removing dead ingests")?;
        Ok(())
    };
    // Warm up: let the backend reach its steady size (free lists, first chunks).
    baseline(fixture, &*store)?;
    abort(0)?;
    abort(1)?;
    let before = allocated_bytes(fixture.dir());
    for round in 2..2 + ROUNDS {
        abort(round)?;
    }
    let after = allocated_bytes(fixture.dir());
    let grown = after.saturating_sub(before);
    ensure!(
        grown < 4 * 1024 * 1024,
        "{ROUNDS} aborted writes of {SIZE} bytes grew the backend's files by {grown} bytes \
         ({before} -> {after}): staged content is not reclaimed"
    );
    Ok(())
}
