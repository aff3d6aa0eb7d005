//! Dedupe, delete, seek, listing, abandoned writers and reopening.

use std::io::{Read, Seek, SeekFrom, Write};

use oci_store::traits::{Algorithm, Digest, Expected, SortedDigests, StorageError};

use super::{baseline, commit_bytes, nothing_left, BlobFixture};
use crate::check::TestResult;
use crate::content::{content, fake_digest, read_all, sorted, write_in_chunks, MIB};
use crate::{ensure, ensure_eq, fail, Context};

fn read_blob(store: &dyn oci_store::traits::BlobStore, digest: &Digest) -> Result<Vec<u8>, String> {
    read_all(store.open(digest).context(format!("opening {digest}"))?)
        .context(format!("reading {digest}"))
}

/// The same content written twice, one after the other and interleaved, is one blob.
pub fn dedupe(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(31, 150_000);
    let first = commit_bytes(&*store, &bytes, Expected::default())?;
    let second = commit_bytes(&*store, &bytes, Expected::default())?;
    ensure_eq!(first, second, "digest of the same content");

    let mut one = store.writer(Expected::default()).context("writer one")?;
    let mut two = store.writer(Expected::default()).context("writer two")?;
    for chunk in bytes.chunks(10_000) {
        one.write_all(chunk).context("writer one")?;
        two.write_all(chunk).context("writer two")?;
    }
    ensure_eq!(
        one.finish().context("finish one")?.0,
        first,
        "writer one digest"
    );
    ensure_eq!(
        two.finish().context("finish two")?.0,
        first,
        "writer two digest"
    );
    ensure_eq!(one.commit().context("commit one")?.0, first, "commit one");
    ensure_eq!(
        two.commit().context("commit of an already stored blob")?.0,
        first,
        "commit two"
    );
    ensure_eq!(
        store
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("digests")?,
        vec![first.clone()],
        "digests()"
    );
    ensure!(
        read_blob(&*store, &first)? == bytes,
        "content of {first} differs"
    );
    Ok(())
}

/// Threads writing overlapping content at once all succeed and every blob is intact.
pub fn concurrent_writers(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let shared = content(32, MIB + 17);
    let results: Vec<Result<Vec<Digest>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|thread| {
                let store = &store;
                let shared = &shared;
                scope.spawn(move || -> Result<Vec<Digest>, String> {
                    let own = content(100 + thread, 50_000 + thread as usize);
                    Ok(vec![
                        commit_bytes(&**store, shared, Expected::default())?,
                        commit_bytes(&**store, &own, Expected::default())?,
                    ])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a writer thread panicked".into()))
            })
            .collect()
    });
    let mut expected = Vec::new();
    for result in results {
        expected.extend(result?);
    }
    expected.sort();
    expected.dedup();
    ensure_eq!(
        sorted(
            &store
                .sorted_digests()
                .and_then(SortedDigests::into_vec)
                .context("digests")?
        ),
        expected,
        "digests()"
    );
    let shared_digest = Digest::of_bytes(Algorithm::Sha256, &shared);
    ensure!(
        read_blob(&*store, &shared_digest)? == shared,
        "shared content differs"
    );
    Ok(())
}

pub fn delete(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let gone_bytes = content(41, 70_000);
    let kept_bytes = content(42, 70_000);
    let gone = commit_bytes(&*store, &gone_bytes, Expected::default())?;
    let kept = commit_bytes(&*store, &kept_bytes, Expected::default())?;
    ensure!(
        store.delete(&gone).context("delete")?,
        "delete() of a stored blob returned false"
    );
    ensure!(
        !store.delete(&gone).context("second delete")?,
        "second delete() returned true"
    );
    ensure_eq!(
        store.size(&gone).context("size")?,
        None,
        "size() after delete"
    );
    ensure!(
        !store.contains(&gone).context("contains")?,
        "contains() after delete"
    );
    match store.open(&gone) {
        Err(StorageError::BlobNotFound(digest)) => ensure_eq!(digest, gone, "BlobNotFound digest"),
        Err(other) => fail!("open() after delete: expected BlobNotFound, got: {other}"),
        Ok(_) => fail!("open() after delete succeeded"),
    }
    ensure_eq!(
        store
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("digests")?,
        vec![kept.clone()],
        "digests()"
    );
    ensure!(
        read_blob(&*store, &kept)? == kept_bytes,
        "the other blob changed"
    );
    // Deleted content can be written again.
    commit_bytes(&*store, &gone_bytes, Expected::default())?;
    ensure!(
        read_blob(&*store, &gone)? == gone_bytes,
        "rewritten content differs"
    );
    Ok(())
}

/// A batched delete of several hundred blobs (enough for a backend to spread it over threads),
/// with digests that are missing or given twice: it counts each blob that was there once,
/// removes every one, and leaves the others whole.
pub fn delete_many_removes_exactly_those_given(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let mut gone = Vec::new();
    let mut kept = Vec::new();
    for seed in 0..600u64 {
        let bytes = content(1_000 + seed, 100 + seed as usize);
        let digest = commit_bytes(&*store, &bytes, Expected::default())?;
        if seed % 3 == 0 {
            kept.push((digest, bytes));
        } else {
            gone.push(digest);
        }
    }
    let mut asked = gone.clone();
    asked.extend(gone.iter().take(50).cloned());
    asked.push(fake_digest(Algorithm::Sha256, "00", 7));
    let deleted = store.delete_many(&asked).context("delete_many")?;
    ensure_eq!(deleted, gone.len() as u64, "delete_many's count");
    for digest in &gone {
        ensure!(
            !store.contains(digest).context("contains")?,
            "{digest} is still there after delete_many"
        );
    }
    for (digest, bytes) in &kept {
        ensure!(
            read_blob(&*store, digest)? == *bytes,
            "{digest}, not given to delete_many, changed"
        );
    }
    let listed = store
        .sorted_digests()
        .and_then(SortedDigests::into_vec)
        .context("digests")?;
    ensure_eq!(
        listed,
        sorted(&kept.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>()),
        "digests() after delete_many"
    );
    Ok(())
}

pub fn open_missing_is_not_found(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    for algorithm in Algorithm::ALL {
        let missing = Digest::of_bytes(algorithm, b"never written");
        match store.open(&missing) {
            Err(StorageError::BlobNotFound(digest)) => {
                ensure_eq!(digest, missing, "BlobNotFound digest");
            }
            Err(other) => fail!("open() of {missing}: expected BlobNotFound, got: {other}"),
            Ok(_) => fail!("open() of {missing} succeeded"),
        }
        ensure_eq!(
            store.size(&missing).context("size")?,
            None,
            "size() of {missing}"
        );
        ensure!(
            !store.delete(&missing).context("delete")?,
            "delete() of {missing} returned true"
        );
    }
    ensure!(
        store
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("digests")?
            .is_empty(),
        "a new store lists digests"
    );
    Ok(())
}

pub fn seek_within_blob(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(51, MIB + 123);
    let digest = commit_bytes(&*store, &bytes, Expected::default())?;
    let len = bytes.len() as u64;
    let mut reader = store.open(&digest).context("opening")?;
    let mut read_at = |from: SeekFrom, count: usize, want_position: u64| -> TestResult {
        let position = reader.seek(from).context(format!("seek {from:?}"))?;
        ensure_eq!(position, want_position, "position after seek {from:?}");
        let mut buffer = vec![0u8; count];
        let mut filled = 0;
        while filled < count {
            let read = reader.read(&mut buffer[filled..]).context("read")?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        let end = (want_position as usize + count).min(bytes.len());
        ensure!(
            buffer[..filled] == bytes[want_position as usize..end],
            "{count} bytes read after seek {from:?} differ"
        );
        ensure_eq!(
            filled,
            end - want_position as usize,
            "bytes read after seek {from:?}"
        );
        Ok(())
    };
    read_at(SeekFrom::Start(1000), 100, 1000)?;
    read_at(SeekFrom::Current(-50), 10, 1050)?;
    read_at(SeekFrom::Start(MIB as u64 - 5), 20, MIB as u64 - 5)?;
    read_at(SeekFrom::End(-10), 10, len - 10)?;
    read_at(SeekFrom::End(0), 10, len)?;
    read_at(SeekFrom::Start(0), 64, 0)?;
    Ok(())
}

pub fn digests_lists_every_blob(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let mut expected = Vec::new();
    for seed in 0..6u64 {
        let bytes = content(60 + seed, 1000 + seed as usize);
        let algorithm = Algorithm::ALL[seed as usize % 2];
        let digest = Digest::of_bytes(algorithm, &bytes);
        commit_bytes(
            &*store,
            &bytes,
            Expected {
                digest: Some(digest.clone()),
                size: Some(bytes.len() as u64),
                algorithm: None,
            },
        )?;
        expected.push(digest);
    }
    expected.sort();
    let listed: Vec<Digest> = store
        .sorted_digests()
        .context("sorted_digests")?
        .collect::<Result<_, _>>()
        .context("sorted_digests paging")?;
    ensure_eq!(listed, expected, "sorted_digests(): in digest order");
    Ok(())
}

/// A writer dropped mid-write or after `finish` without `commit` aborts: nothing visible, and
/// nothing left once dead ingests are removed.
pub fn dropped_writer_leaves_nothing(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let before = baseline(fixture, &*store)?;
    let partial = content(71, 300_000);
    let partial_digest = Digest::of_bytes(Algorithm::Sha256, &partial);
    {
        let mut writer = store
            .writer(Expected::default())
            .context("opening a writer")?;
        write_in_chunks(&mut writer, &partial[..200_000]).context("writing")?;
    }
    let finished = content(72, 300_000);
    let finished_digest = Digest::of_bytes(Algorithm::Sha256, &finished);
    {
        let mut writer = store
            .writer(Expected::default())
            .context("opening a writer")?;
        write_in_chunks(&mut writer, &finished).context("writing")?;
        writer.finish().context("finishing")?;
    }
    nothing_left(
        fixture,
        &*store,
        &before.digests,
        &before.files,
        &[&partial_digest, &finished_digest],
    )
}

/// `remove_dead_ingests` never touches a write in progress, before or after `finish`.
pub fn remove_dead_ingests_keeps_live_writers(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let writing = content(81, 600_000);
    let finished = content(82, 100_000);
    let mut writing_writer = store.writer(Expected::default()).context("writer")?;
    write_in_chunks(&mut writing_writer, &writing[..300_000]).context("writing first half")?;
    let mut finished_writer = store.writer(Expected::default()).context("writer")?;
    write_in_chunks(&mut finished_writer, &finished).context("writing")?;
    finished_writer.finish().context("finishing")?;
    {
        let mut dead = store.writer(Expected::default()).context("writer")?;
        dead.write_all(&content(83, 10_000)).context("writing")?;
    }

    store
        .remove_dead_ingests()
        .context("removing dead ingests")?;

    write_in_chunks(&mut writing_writer, &writing[300_000..]).context("writing second half")?;
    let (writing_digest, _) = writing_writer
        .finish()
        .context("finishing a writer that lived through remove_dead_ingests")?;
    writing_writer
        .commit()
        .context("committing a writer that lived through remove_dead_ingests")?;
    let (finished_digest, _) = finished_writer
        .commit()
        .context("committing a finished writer that lived through remove_dead_ingests")?;
    ensure!(
        read_blob(&*store, &writing_digest)? == writing,
        "content written across removal differs"
    );
    ensure!(
        read_blob(&*store, &finished_digest)? == finished,
        "finished content differs"
    );
    ensure_eq!(
        store
            .remove_dead_ingests()
            .context("removing dead ingests")?,
        (0, 0),
        "dead ingests once every writer committed or was cleaned"
    );
    Ok(())
}

pub fn reopen_sees_committed_content(fixture: &BlobFixture) -> TestResult {
    let bytes = content(91, 40_000);
    let digest = {
        let store = fixture.open()?;
        commit_bytes(&*store, &bytes, Expected::default())?
    };
    let reopened = fixture.open()?;
    ensure!(
        read_blob(&*reopened, &digest)? == bytes,
        "content after reopening differs"
    );
    ensure_eq!(
        reopened
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("digests")?,
        vec![digest],
        "digests() after reopening"
    );
    Ok(())
}

/// A reader that outlives a delete of its blob either reads the whole, right content or
/// fails: never a silently short or different blob.
pub fn read_across_delete_is_whole_or_error(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(92, 3 * MIB + 5);
    let digest = commit_bytes(&*store, &bytes, Expected::default())?;
    let mut reader = store.open(&digest).context("opening")?;
    let mut head = vec![0u8; MIB];
    reader
        .read_exact(&mut head)
        .context("reading the first MiB")?;
    ensure!(head == bytes[..MIB], "the first MiB differs");
    store
        .delete(&digest)
        .context("deleting while a reader is open")?;
    let mut rest = Vec::new();
    // An error is an acceptable answer; a successful read must be the whole rest.
    if reader.read_to_end(&mut rest).is_ok() {
        ensure!(
            rest.len() == bytes.len() - MIB && rest == bytes[MIB..],
            "after a concurrent delete the reader returned {} more bytes without error; \
             the blob has {} more",
            rest.len(),
            bytes.len() - MIB
        );
    }
    Ok(())
}
