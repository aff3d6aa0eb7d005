//! Resumable writers: the staged part of a blob whose writer was killed (a pull killed
//! mid-layer) is taken over by the next resumable writer of the same digest, hashed again so
//! the digest check covers it, and completed; a part that does not belong to the digest ends
//! in a mismatch that stores nothing. Until it is taken over, a killed write is a dead staged
//! write like any other.

use std::path::Path;

use oci_store::traits::{Algorithm, BlobStore, Digest, Expected, StorageError};

use super::{baseline, nothing_left, BlobFixture};
use crate::check::TestResult;
use crate::content::{content, read_all, write_in_chunks, MIB};
use crate::{ensure, ensure_eq, fail, Context};

/// Ends `writer` as a killed process ends it: no destructor runs (the writer is leaked, so
/// nothing is flushed, discarded or removed) and the kernel closes the process's descriptors,
/// which releases the lock by which each staging file says its writer lives (the one staging
/// protocol of every backend here: `*.staging` files under the store directory). Closed are
/// the descriptors this process has on `*.staging` files under `dir`; the caller has no other
/// writer in `dir` at the time. Only the leaked writer owned them, and it never runs again.
/// `writer` is any writer that stages through the blob store: a `BlobWriter`, a store's
/// `StoreWriter`.
pub fn kill_writer<W>(writer: W, dir: &Path) -> TestResult {
    std::mem::forget(writer);
    let dir = dir
        .canonicalize()
        .context(format!("resolving {}", dir.display()))?;
    let mut closed = 0;
    for entry in std::fs::read_dir("/proc/self/fd").context("listing /proc/self/fd")? {
        let entry = entry.context("listing /proc/self/fd")?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // Gone meanwhile (the listing's own descriptor), or not a path.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.starts_with(&dir) && target.to_string_lossy().ends_with(".staging") {
            // SAFETY: the descriptor belongs to the leaked writer's staging file, which
            // nothing uses any more; closing it is what the kernel does when a process dies.
            unsafe { libc::close(fd) };
            closed += 1;
        }
    }
    ensure!(
        closed > 0,
        "the killed writer had no staging file open under {}",
        dir.display()
    );
    Ok(())
}

fn expected(digest: &Digest, size: usize) -> Expected {
    Expected {
        digest: Some(digest.clone()),
        size: Some(size as u64),
        algorithm: None,
    }
}

fn read_blob(store: &dyn BlobStore, digest: &Digest) -> Result<Vec<u8>, String> {
    read_all(store.open(digest).context(format!("opening {digest}"))?)
        .context(format!("reading {digest}"))
}

/// A resumable writer of `digest`, killed after writing `bytes[..until]` (from where a
/// take-over left it); returns what the writer said it had before writing.
fn write_then_kill(
    fixture: &BlobFixture,
    store: &dyn BlobStore,
    expected: &Expected,
    bytes: &[u8],
    until: usize,
) -> Result<u64, String> {
    let mut writer = store
        .resumable_writer(expected.clone())
        .context("opening a resumable writer")?;
    let kept = writer.written();
    ensure!(
        kept <= until as u64,
        "the writer says it has {kept} bytes, more than the {until} written so far"
    );
    write_in_chunks(&mut writer, &bytes[kept as usize..until]).context("writing")?;
    kill_writer(writer, fixture.dir())?;
    Ok(kept)
}

/// A writer killed part-way, twice, is taken over each time from what it staged (never more
/// than was written), and the third completes the blob with the right digest and content;
/// nothing of the killed writes is left staged.
pub fn killed_resumable_writer_is_taken_over(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(101, 5 * MIB + 300_001);
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let expected = expected(&digest, bytes.len());
    let first_kill = 2 * MIB + MIB / 2 + 17;
    let second_kill = 4 * MIB + MIB / 2 + 3;

    let started = write_then_kill(fixture, &*store, &expected, &bytes, first_kill)?;
    ensure_eq!(started, 0, "written() of the first writer");
    let resumed = write_then_kill(fixture, &*store, &expected, &bytes, second_kill)?;
    ensure!(
        resumed > 0,
        "the second writer took over nothing of the {first_kill} bytes the killed one wrote"
    );
    let mut writer = store
        .resumable_writer(expected.clone())
        .context("opening the third resumable writer")?;
    let kept = writer.written();
    ensure!(
        kept > resumed && kept <= second_kill as u64,
        "the third writer took over {kept} bytes; the second started at {resumed} and was \
         killed after {second_kill}"
    );
    write_in_chunks(&mut writer, &bytes[kept as usize..]).context("writing the rest")?;
    ensure_eq!(writer.written(), bytes.len() as u64, "written() at the end");
    let finished = writer.finish().context("finishing the taken-over write")?;
    ensure_eq!(finished, (digest.clone(), bytes.len() as u64), "finish()");
    let committed = writer.commit().context("committing the taken-over write")?;
    ensure_eq!(committed, (digest.clone(), bytes.len() as u64), "commit()");
    ensure!(
        read_blob(&*store, &digest)? == bytes,
        "the content of {digest} differs from what was written"
    );
    ensure_eq!(
        store
            .remove_dead_ingests()
            .context("removing dead ingests")?,
        (0, 0),
        "dead ingests once the killed writes were taken over and committed"
    );
    Ok(())
}

/// A writer killed after `finish` and before `commit` staged the whole blob: the next one takes
/// all of it over (a short last chunk too, where content is chunked) and commits it with
/// nothing more written.
pub fn finished_uncommitted_write_is_taken_over_whole(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(105, 2 * MIB + 12_345);
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let expected = expected(&digest, bytes.len());
    let mut writer = store
        .resumable_writer(expected.clone())
        .context("opening a resumable writer")?;
    write_in_chunks(&mut writer, &bytes).context("writing")?;
    writer.finish().context("finishing")?;
    kill_writer(writer, fixture.dir())?;

    let writer = store
        .resumable_writer(expected)
        .context("opening the next resumable writer")?;
    ensure_eq!(
        writer.written(),
        bytes.len() as u64,
        "written() after taking over a finished write"
    );
    ensure_eq!(
        writer.commit().context("committing")?,
        (digest.clone(), bytes.len() as u64),
        "commit() of the taken-over write"
    );
    ensure!(
        read_blob(&*store, &digest)? == bytes,
        "the content of {digest} differs"
    );
    ensure_eq!(
        store
            .remove_dead_ingests()
            .context("removing dead ingests")?,
        (0, 0),
        "dead ingests after the commit"
    );
    Ok(())
}

/// A killed write whose staged bytes are not the start of the blob (corrupted, or another
/// blob's) is taken over all the same, and its writer's `finish` says the digest does not
/// match: nothing is stored, nothing stays staged, and the next writer starts from nothing.
pub fn corrupt_partial_ends_in_a_digest_mismatch_that_stores_nothing(
    fixture: &BlobFixture,
) -> TestResult {
    let store = fixture.open()?;
    let before = baseline(fixture, &*store)?;
    let bytes = content(102, 3 * MIB + 5);
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let expected = expected(&digest, bytes.len());
    let mut corrupted = bytes.clone();
    corrupted[1000] ^= 0x20;
    write_then_kill(fixture, &*store, &expected, &corrupted, 2 * MIB + MIB / 2)?;

    let mut writer = store
        .resumable_writer(expected.clone())
        .context("opening a resumable writer")?;
    let kept = writer.written();
    ensure!(
        kept > 1000,
        "the writer took over {kept} bytes, not the corrupted one at 1000"
    );
    write_in_chunks(&mut writer, &bytes[kept as usize..]).context("writing the rest")?;
    match writer.finish() {
        Err(StorageError::DigestMismatch {
            expected: claimed,
            actual,
        }) => {
            ensure_eq!(claimed, digest, "DigestMismatch.expected");
            let mut what_was_staged = corrupted[..kept as usize].to_vec();
            what_was_staged.extend_from_slice(&bytes[kept as usize..]);
            ensure_eq!(
                actual,
                Digest::of_bytes(Algorithm::Sha256, &what_was_staged),
                "DigestMismatch.actual: the kept bytes hashed again, then the rest"
            );
        }
        Ok(result) => fail!("finish() accepted a corrupted partial as {digest}: {result:?}"),
        Err(other) => fail!("finish(): expected DigestMismatch, got: {other}"),
    }
    ensure!(
        writer.commit().is_err(),
        "commit() after a failed finish() succeeded"
    );
    nothing_left(fixture, &*store, &before.digests, &before.files, &[&digest])?;

    let mut writer = store
        .resumable_writer(expected)
        .context("opening a resumable writer after the mismatch")?;
    ensure_eq!(
        writer.written(),
        0,
        "written() of a writer after the corrupted partial was discarded"
    );
    write_in_chunks(&mut writer, &bytes).context("writing")?;
    ensure_eq!(
        writer.commit().context("committing")?,
        (digest.clone(), bytes.len() as u64),
        "commit()"
    );
    ensure!(
        read_blob(&*store, &digest)? == bytes,
        "the content of {digest} differs"
    );
    Ok(())
}

/// A write in progress is never taken over, even by a resumable writer of the same digest
/// (whose caller broke the one-writer-per-digest rule): the second starts from nothing and
/// both complete.
pub fn resumable_writers_never_take_over_a_live_write(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(103, 2 * MIB + 99);
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let expected = expected(&digest, bytes.len());
    let mut live = store
        .resumable_writer(expected.clone())
        .context("opening the first writer")?;
    write_in_chunks(&mut live, &bytes[..MIB + MIB / 2]).context("writing the first half")?;
    let mut second = store
        .resumable_writer(expected)
        .context("opening the second writer")?;
    ensure_eq!(
        second.written(),
        0,
        "written() of a second writer while the first lives"
    );
    write_in_chunks(&mut second, &bytes).context("writing through the second")?;
    write_in_chunks(&mut live, &bytes[MIB + MIB / 2..]).context("writing the rest")?;
    ensure_eq!(
        live.commit().context("committing the first")?.0,
        digest,
        "first commit"
    );
    ensure_eq!(
        second.commit().context("committing the second")?.0,
        digest,
        "second commit"
    );
    ensure!(
        read_blob(&*store, &digest)? == bytes,
        "the content of {digest} differs"
    );
    Ok(())
}

/// Until a resumable writer takes it over, a killed write is a dead staged write: removing
/// dead ingests removes it (its bytes counted), and a writer after that starts from nothing.
pub fn killed_resumable_write_is_garbage_until_taken_over(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(104, 3 * MIB);
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let expected = expected(&digest, bytes.len());
    write_then_kill(fixture, &*store, &expected, &bytes, 2 * MIB + MIB / 2)?;
    let (writes, removed_bytes) = store
        .remove_dead_ingests()
        .context("removing dead ingests")?;
    ensure_eq!(writes, 1, "dead writes removed");
    ensure!(
        removed_bytes >= MIB as u64,
        "the killed write staged {removed_bytes} bytes of the {} it was given",
        2 * MIB + MIB / 2
    );
    let writer = store
        .resumable_writer(expected)
        .context("opening a resumable writer")?;
    ensure_eq!(
        writer.written(),
        0,
        "written() after the dead write was removed"
    );
    Ok(())
}

/// What `dead_ingest_usage` reports (a GC's dry run) is what `remove_dead_ingests` then
/// removes, writes and bytes, for killed writes of every kind (resumable or not, in the middle
/// or finished), and a live write is in neither.
pub fn dead_ingest_usage_is_what_removal_removes(fixture: &BlobFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(106, 2 * MIB + 77_777);
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    write_then_kill(
        fixture,
        &*store,
        &expected(&digest, bytes.len()),
        &bytes,
        MIB + MIB / 2 + 1,
    )?;
    let mut plain = store
        .writer(Expected::default())
        .context("opening a writer")?;
    write_in_chunks(&mut plain, &content(107, MIB + 20_000)).context("writing")?;
    kill_writer(plain, fixture.dir())?;
    let mut finished = store
        .writer(Expected::default())
        .context("opening a writer")?;
    write_in_chunks(&mut finished, &content(108, 70_000)).context("writing")?;
    finished.finish().context("finishing")?;
    kill_writer(finished, fixture.dir())?;
    let mut live = store
        .writer(Expected::default())
        .context("opening the live writer")?;
    let live_bytes = content(109, MIB + 3);
    write_in_chunks(&mut live, &live_bytes[..MIB / 2]).context("writing")?;

    let Some(usage) = store
        .dead_ingest_usage()
        .context("measuring dead ingests")?
    else {
        fail!("dead_ingest_usage() cannot tell; a GC's dry run would undercount");
    };
    ensure_eq!(usage.0, 3, "dead writes counted (of three killed)");
    ensure!(usage.1 > 0, "the dead writes counted no bytes: {usage:?}");
    ensure_eq!(
        store
            .dead_ingest_usage()
            .context("measuring dead ingests again")?,
        Some(usage),
        "a second measure (measuring changes nothing)"
    );
    let removed = store
        .remove_dead_ingests()
        .context("removing dead ingests")?;
    ensure_eq!(removed, usage, "removed, against what was measured before");
    ensure_eq!(
        store
            .dead_ingest_usage()
            .context("measuring dead ingests after the removal")?,
        Some((0, 0)),
        "dead ingests measured after the removal"
    );
    write_in_chunks(&mut live, &live_bytes[MIB / 2..]).context("writing the rest")?;
    ensure_eq!(
        live.commit().context("committing the live write")?.0,
        Digest::of_bytes(Algorithm::Sha256, &live_bytes),
        "the live write's digest"
    );
    Ok(())
}
