//! Garbage collection and fsck (DESIGN.md invariants 1-3), and reopening a store.

use std::io::Write;

use oci_store::store::{FsckProblem, WriteOptions};
use oci_store::traits::{Algorithm, BlobRecord, Digest, Expected};

use super::{plant_unindexed, read_bytes, write_bytes, StoreFixture};
use crate::blob_store::kill_writer;
use crate::check::TestResult;
use crate::content::{content, files_under, sorted, write_in_chunks, MIB};
use crate::{ensure, ensure_eq, fail, Context};

pub fn gc_removes_garbage_only(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let kept = write_bytes(&store, &content(1, 200_000), None)?;
    store
        .set_extra(&kept.digest, "last-used", b"1")
        .context("set_extra")?;
    store
        .put_data("ref", "kept", b"", Some(&kept.digest))
        .context("put_data")?;

    let garbage_bytes = content(2, 100_000);
    let garbage = plant_unindexed(&store, &garbage_bytes)?;
    let orphan = Digest::of_bytes(Algorithm::Sha512, b"orphan extra data");
    store
        .extra_data()
        .set(&orphan, "last-used", b"1")
        .context("planting extra data")?;
    let dangling = Digest::of_bytes(Algorithm::Sha256, b"dangling reference");
    store
        .kv_store()
        .put("ref", "dangling", b"", Some(&dangling))
        .context("planting a dangling reference")?;

    let report = store.gc(Default::default()).context("gc")?;
    ensure_eq!(
        sorted(&report.unindexed_blobs),
        vec![garbage.clone()],
        "unindexed_blobs"
    );
    ensure_eq!(
        report.unindexed_bytes,
        garbage_bytes.len() as u64,
        "unindexed_bytes"
    );
    ensure_eq!(
        report.orphan_extra_data,
        vec![orphan.clone()],
        "orphan_extra_data"
    );
    ensure_eq!(
        report.dangling_references,
        vec![dangling.clone()],
        "dangling_references"
    );

    ensure!(
        !store.blob_store().contains(&garbage).context("contains")?,
        "garbage kept"
    );
    ensure_eq!(
        store.extra_data().types(&orphan).context("types")?,
        Vec::<String>::new(),
        "orphan"
    );
    ensure_eq!(
        store.get_data("ref", "dangling").context("get")?,
        None,
        "dangling entry kept"
    );

    ensure_eq!(
        store.info(&kept.digest).context("info")?,
        kept.clone(),
        "indexed record"
    );
    ensure!(
        read_bytes(&store, &kept.digest)? == content(1, 200_000),
        "indexed content changed"
    );
    ensure_eq!(
        store
            .get_extra(&kept.digest, "last-used")
            .context("get_extra")?,
        Some(b"1".to_vec()),
        "extra data of an indexed blob"
    );
    ensure!(
        store.get_data("ref", "kept").context("get")?.is_some(),
        "entry of an indexed blob"
    );

    let again = store.gc(Default::default()).context("second gc")?;
    ensure!(
        again.unindexed_blobs.is_empty()
            && again.orphan_extra_data.is_empty()
            && again.dangling_references.is_empty()
            && again.dead_ingests == 0,
        "a second gc found more: {again:?}"
    );
    Ok(())
}

/// GC while writes are in flight, through the store and straight into the blob store, must
/// not break them (invariant 2: never content a live writer is committing).
pub fn gc_spares_live_writers(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let streamed = content(3, 500_000);
    let mut writer = store
        .writer(&WriteOptions::default())
        .context("store writer")?;
    write_in_chunks(&mut writer, &streamed[..250_000]).context("first half")?;

    let staged = content(4, 80_000);
    let mut blob_writer = store
        .blob_store()
        .writer(Expected::default())
        .context("blob writer")?;
    blob_writer.write_all(&staged).context("writing")?;
    let (staged_digest, _) = blob_writer.finish().context("finishing")?;

    store.gc(Default::default()).context("gc during writes")?;

    write_in_chunks(&mut writer, &streamed[250_000..]).context("second half")?;
    let record = writer
        .commit()
        .context("committing a write that lived through gc")?;
    ensure!(
        read_bytes(&store, &record.digest)? == streamed,
        "streamed content differs"
    );
    blob_writer
        .commit()
        .context("committing a finished blob writer that lived through gc")?;
    ensure!(
        store
            .blob_store()
            .contains(&staged_digest)
            .context("contains")?,
        "the staged blob is missing after commit"
    );
    Ok(())
}

/// A GC's dry run (`Store::dead_ingest_usage`, what `gc --dry-run` and `du` add) counts the
/// dead writes a real GC then removes, writes and bytes alike: killed writes of the store's
/// writers, resumable (a killed pull's layer) or not.
pub fn gc_dry_run_counts_the_dead_writes_gc_removes(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    write_bytes(&store, &content(20, 10_000), None)?;
    let layer = content(21, 2 * MIB + 1);
    let options = WriteOptions {
        expected_digest: Some(Digest::of_bytes(Algorithm::Sha256, &layer)),
        expected_size: Some(layer.len() as u64),
        ..WriteOptions::default()
    };
    let mut resumable = store
        .resumable_writer(&options)
        .context("opening a resumable writer")?;
    write_in_chunks(&mut resumable, &layer[..MIB + MIB / 2]).context("writing")?;
    kill_writer(resumable, fixture.dir())?;
    let mut plain = store
        .writer(&WriteOptions::default())
        .context("opening a writer")?;
    write_in_chunks(&mut plain, &content(22, 1_200_000)).context("writing")?;
    kill_writer(plain, fixture.dir())?;

    let Some(would) = store.dead_ingest_usage().context("measuring dead writes")? else {
        fail!("the store cannot tell what its GC would remove of dead writes");
    };
    ensure_eq!(would.0, 2, "dead writes a dry run counts (two killed)");
    ensure!(would.1 > 0, "the dead writes count no bytes: {would:?}");
    let report = store.gc(Default::default()).context("gc")?;
    ensure_eq!(
        (report.dead_ingests, report.dead_ingest_bytes),
        would,
        "what gc removed, against what its dry run counted"
    );
    ensure_eq!(
        store
            .dead_ingest_usage()
            .context("measuring dead writes after gc")?,
        Some((0, 0)),
        "dead writes after gc"
    );
    Ok(())
}

fn healthy_store(store: &oci_store::Store) -> Result<Vec<BlobRecord>, String> {
    let mut records = Vec::new();
    for n in 0..5u64 {
        let bytes = content(10 + n, 20_000 * (n as usize + 1));
        let record = if n % 2 == 0 {
            write_bytes(store, &bytes, None)?
        } else {
            let digest = Digest::of_bytes(Algorithm::Sha512, &bytes);
            super::write_expecting(store, &bytes, &digest, None)?
        };
        store
            .set_extra(&record.digest, "info", b"x")
            .context("set_extra")?;
        store
            .put_data("ref", &format!("r{n}"), b"", Some(&record.digest))
            .context("put_data")?;
        records.push(record);
    }
    Ok(records)
}

pub fn fsck_clean_on_healthy_store(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let empty = store
        .fsck(Default::default())
        .context("fsck of an empty store")?;
    ensure!(
        empty.is_clean(),
        "an empty store has problems: {:?}",
        empty.problems
    );
    let records = healthy_store(&store)?;
    let report = store.fsck(Default::default()).context("fsck")?;
    ensure!(
        report.is_clean(),
        "a healthy store has problems: {:?}",
        report.problems
    );
    ensure_eq!(report.blobs_checked, records.len() as u64, "blobs_checked");
    ensure_eq!(
        report.bytes_checked,
        records.iter().map(|r| r.size).sum::<u64>(),
        "bytes_checked"
    );
    ensure_eq!(report.repaired, 0, "repaired without --repair");
    Ok(())
}

/// Damages a blob's file in place when the blob store keeps one file per blob named by its
/// hex (the `fs` layout); returns whether it could. Other layouts are damaged through the
/// traits only.
pub(crate) fn corrupt_blob_file(dir: &std::path::Path, digest: &Digest) -> Result<bool, String> {
    let Some(relative) = files_under(dir)
        .into_iter()
        .find(|path| path.file_name().is_some_and(|name| name == digest.hex()))
    else {
        return Ok(false);
    };
    let path = dir.join(relative);
    let mut bytes = std::fs::read(&path).context(format!("reading {}", path.display()))?;
    if bytes.is_empty() {
        return Ok(false);
    }
    bytes[0] ^= 0xff;
    let mut permissions = std::fs::metadata(&path).context("metadata")?.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&path, permissions).context("making the blob file writable")?;
    std::fs::write(&path, &bytes).context(format!("corrupting {}", path.display()))?;
    Ok(true)
}

pub fn fsck_detects_and_repairs(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let records = healthy_store(&store)?;
    let healthy = &records[0];
    let missing = &records[1];
    let wrong_size = &records[2];
    let corrupt = &records[3];

    store
        .blob_store()
        .delete(&missing.digest)
        .context("deleting content")?;
    store
        .index()
        .upsert(&BlobRecord {
            size: wrong_size.size + 1,
            ..wrong_size.clone()
        })
        .context("recording a wrong size")?;
    let corrupted = corrupt_blob_file(store.dir(), &corrupt.digest)?;
    let unindexed = plant_unindexed(&store, b"unindexed content")?;
    let orphan = Digest::of_bytes(Algorithm::Sha256, b"orphan");
    store
        .extra_data()
        .set(&orphan, "info", b"x")
        .context("planting extra data")?;
    let dangling = Digest::of_bytes(Algorithm::Sha512, b"dangling");
    store
        .kv_store()
        .put("ref", "dangling", b"", Some(&dangling))
        .context("planting a reference")?;

    let report = store.fsck(Default::default()).context("fsck")?;
    let expected = vec![
        FsckProblem::MissingContent {
            digest: missing.digest.clone(),
        },
        FsckProblem::SizeMismatch {
            digest: wrong_size.digest.clone(),
            indexed: wrong_size.size + 1,
            actual: wrong_size.size,
        },
        FsckProblem::UnindexedContent {
            digest: unindexed.clone(),
        },
        FsckProblem::OrphanExtraData {
            digest: orphan.clone(),
        },
        FsckProblem::DanglingReference {
            digest: dangling.clone(),
        },
    ];
    if corrupted {
        let found = report.problems.iter().any(|p| {
            matches!(p, FsckProblem::CorruptContent { digest, .. } if *digest == corrupt.digest)
        });
        ensure!(
            found,
            "corrupt content of {} not reported: {:?}",
            corrupt.digest,
            report.problems
        );
    }
    for problem in &expected {
        ensure!(
            report.problems.contains(problem),
            "fsck did not report {problem:?}; it reported {:?}",
            report.problems
        );
    }
    let extra_problems = usize::from(corrupted);
    ensure_eq!(
        report.problems.len(),
        expected.len() + extra_problems,
        "number of problems ({:?})",
        report.problems
    );
    ensure_eq!(report.repaired, 0, "fsck without repair repaired");
    let unchanged = store.fsck(Default::default()).context("second fsck")?;
    ensure_eq!(
        unchanged.problems.len(),
        report.problems.len(),
        "fsck without repair changed things"
    );

    let repair = store
        .fsck(oci_store::store::FsckOptions::repairing())
        .context("fsck --repair")?;
    ensure!(
        repair.repaired > 0,
        "fsck --repair repaired nothing: {repair:?}"
    );
    let after = store
        .fsck(Default::default())
        .context("fsck after repair")?;
    ensure!(
        after.is_clean(),
        "problems left after --repair: {:?}",
        after.problems
    );
    ensure!(
        store.info(&missing.digest).is_err(),
        "{} is still indexed after --repair although its content is gone",
        missing.digest
    );
    // Content that hashes to its digest is the blob: repair corrects the record's size and
    // keeps the blob and what is attached to it.
    ensure_eq!(
        store
            .info(&wrong_size.digest)
            .context("info after repair")?,
        wrong_size.clone(),
        "the record of a blob with a wrong indexed size is corrected"
    );
    ensure_eq!(
        store.info(&healthy.digest).context("info")?,
        healthy.clone(),
        "healthy blob"
    );
    ensure!(
        read_bytes(&store, &healthy.digest)? == content(10, 20_000),
        "healthy content changed by repair"
    );
    ensure!(
        store.get_data("ref", "r0").context("get")?.is_some(),
        "repair removed a healthy blob's entry"
    );
    Ok(())
}

pub fn reopen_keeps_everything(fixture: &StoreFixture) -> TestResult {
    let bytes = content(20, 70_000);
    let record = {
        let store = fixture.open()?;
        let record = write_bytes(&store, &bytes, Some(crate::index::LAYER))?;
        store
            .set_extra(&record.digest, "info", b"x")
            .context("set_extra")?;
        store
            .put_data("ref", "r", b"v", Some(&record.digest))
            .context("put_data")?;
        record
    };
    let store = fixture.open()?;
    ensure_eq!(
        store.info(&record.digest).context("info")?,
        record.clone(),
        "record"
    );
    ensure!(
        read_bytes(&store, &record.digest)? == bytes,
        "content after reopen"
    );
    ensure_eq!(
        store
            .get_extra(&record.digest, "info")
            .context("get_extra")?,
        Some(b"x".to_vec()),
        "extra data after reopen"
    );
    match store.get_data("ref", "r").context("get_data")? {
        Some(entry) => ensure_eq!(entry.blob, Some(record.digest.clone()), "entry blob"),
        None => fail!("entry lost on reopen"),
    }
    // A store opened twice at once (two handles in one process) sees one state.
    let second = fixture.open()?;
    let written = write_bytes(&second, b"through the second handle", None)?;
    ensure_eq!(
        store.info(&written.digest).context("info")?,
        written,
        "seen by the first handle"
    );
    Ok(())
}
