//! Writing through the store: verified, indexed, readable; refused input changes nothing
//! (DESIGN.md invariants 1, 4 and 7).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use oci_store::store::{StoreError, WriteOptions};
use oci_store::traits::{Algorithm, Digest, SortedDigests, StorageError, DEFAULT_MEDIA_TYPE};

use super::{read_bytes, snapshot, store_files, write_bytes, write_expecting, StoreFixture};
use crate::check::TestResult;
use crate::content::{content, write_in_chunks};
use crate::index::{LAYER, MANIFEST};
use crate::{ensure, ensure_eq, fail, Context};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn write_info_read(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let started = now_ms();
    let layer_bytes = content(1, 300_000);
    let layer = write_bytes(&store, &layer_bytes, Some(LAYER))?;
    ensure_eq!(
        layer.digest,
        Digest::of_bytes(Algorithm::Sha256, &layer_bytes),
        "digest"
    );
    ensure_eq!(layer.size, layer_bytes.len() as u64, "size");
    ensure_eq!(layer.media_type, LAYER, "media type");
    ensure!(
        layer.created_unix_ms >= started - 1000 && layer.created_unix_ms <= now_ms() + 1000,
        "created_unix_ms {} is not the time of the write",
        layer.created_unix_ms
    );

    let manifest_bytes = content(2, 2_000);
    let manifest_digest = Digest::of_bytes(Algorithm::Sha512, &manifest_bytes);
    let manifest = write_expecting(&store, &manifest_bytes, &manifest_digest, Some(MANIFEST))?;
    ensure_eq!(manifest.digest, manifest_digest, "sha512 digest");

    let plain = write_bytes(&store, b"no media type", None)?;
    ensure_eq!(plain.media_type, DEFAULT_MEDIA_TYPE, "default media type");

    // The streaming writer.
    let streamed_bytes = content(3, 150_000);
    let mut writer = store
        .writer(&WriteOptions::default())
        .context("opening a store writer")?;
    write_in_chunks(&mut writer, &streamed_bytes).context("streaming")?;
    ensure_eq!(writer.written(), streamed_bytes.len() as u64, "written()");
    let streamed = writer.commit().context("committing a store writer")?;

    for (record, bytes) in [
        (&layer, &layer_bytes),
        (&manifest, &manifest_bytes),
        (&plain, &b"no media type".to_vec()),
        (&streamed, &streamed_bytes),
    ] {
        ensure_eq!(
            store.info(&record.digest).context("info")?,
            record.clone(),
            "info()"
        );
        ensure!(
            store.contains(&record.digest).context("contains")?,
            "contains()"
        );
        ensure!(
            read_bytes(&store, &record.digest)? == *bytes,
            "content of {}",
            record.digest
        );
        ensure_eq!(
            store
                .read_to_vec(&record.digest, 1 << 30)
                .context("read_to_vec")?,
            *bytes,
            "read_to_vec of {}",
            record.digest
        );
    }
    let mut all = vec![
        layer.clone(),
        manifest.clone(),
        plain.clone(),
        streamed.clone(),
    ];
    all.sort_by(|a, b| a.digest.cmp(&b.digest));
    ensure_eq!(
        store.list(None).context("list")?,
        all,
        "list(): every record, digest order"
    );
    ensure_eq!(
        store.list(Some(MANIFEST)).context("list")?,
        vec![manifest.clone()],
        "list(manifest media type)"
    );
    let stats = store.stats().context("stats")?;
    ensure_eq!(stats.blobs, 4, "stats().blobs");
    ensure_eq!(
        stats.bytes,
        all.iter().map(|r| r.size).sum::<u64>(),
        "stats().bytes"
    );
    match store.read_to_vec(&layer.digest, 10) {
        Err(StoreError::Invalid(_)) => {}
        other => fail!(
            "read_to_vec over its limit: expected Invalid, got {:?}",
            other.err()
        ),
    }
    Ok(())
}

pub fn write_existing_returns_its_record(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(4, 50_000);
    let first = write_bytes(&store, &bytes, Some(LAYER))?;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = write_bytes(&store, &bytes, Some(LAYER))?;
    ensure_eq!(
        again,
        first,
        "writing stored content again returns the stored record"
    );
    let expecting = write_expecting(&store, &bytes, &first.digest, Some(LAYER))?;
    ensure_eq!(expecting, first, "the same with an expected digest");
    ensure_eq!(store.list(None).context("list")?, vec![first], "one record");
    ensure_eq!(
        store
            .blob_store()
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("blob digests")?
            .len(),
        1,
        "blob store entries"
    );
    Ok(())
}

/// Each refused write returns the matching error and leaves index, blobs, dependants and
/// staged writes as they were.
pub fn write_refusals_change_nothing(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let kept = write_bytes(&store, b"kept", Some(LAYER))?;
    store.gc(Default::default()).context("gc")?;
    let before = snapshot(&store)?;
    let files_before = store_files(store.dir());
    let bytes = content(5, 400_000);
    let actual = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let wrong_digest = Digest::of_bytes(Algorithm::Sha256, b"claimed");
    let size = bytes.len() as u64;

    type Check = fn(&StoreError) -> bool;
    let cases: Vec<(&str, WriteOptions, Check)> = vec![
        (
            "wrong digest",
            WriteOptions {
                expected_digest: Some(wrong_digest.clone()),
                ..WriteOptions::default()
            },
            |e| matches!(e, StoreError::Storage(StorageError::DigestMismatch { .. })),
        ),
        (
            "wrong sha512 digest",
            WriteOptions {
                expected_digest: Some(Digest::of_bytes(Algorithm::Sha512, b"claimed")),
                expected_size: Some(size),
                ..WriteOptions::default()
            },
            |e| matches!(e, StoreError::Storage(StorageError::DigestMismatch { .. })),
        ),
        (
            "size too large",
            WriteOptions {
                expected_size: Some(size + 1),
                ..WriteOptions::default()
            },
            |e| matches!(e, StoreError::Storage(StorageError::SizeMismatch { .. })),
        ),
        (
            "size too small",
            WriteOptions {
                expected_size: Some(size - 1000),
                ..WriteOptions::default()
            },
            |e| matches!(e, StoreError::Storage(StorageError::SizeMismatch { .. })),
        ),
        (
            "right digest, wrong size",
            WriteOptions {
                expected_digest: Some(actual.clone()),
                expected_size: Some(size - 1),
                ..WriteOptions::default()
            },
            |e| matches!(e, StoreError::Storage(StorageError::SizeMismatch { .. })),
        ),
        (
            "invalid media type",
            WriteOptions {
                media_type: Some("not a media type".to_string()),
                ..WriteOptions::default()
            },
            |e| matches!(e, StoreError::Invalid(_)),
        ),
    ];
    for (what, options, is_expected_error) in cases {
        match store.write_bytes(&bytes, &options) {
            Ok(record) => fail!("{what}: the write was accepted: {record:?}"),
            Err(error) => ensure!(is_expected_error(&error), "{what}: wrong error: {error:?}"),
        }
        ensure_eq!(snapshot(&store)?, before, "{what}: store contents changed");
        let report = store.gc(Default::default()).context("gc")?;
        ensure!(
            report.unindexed_blobs.is_empty(),
            "{what}: the refused content was stored: {:?}",
            report.unindexed_blobs
        );
        let again = store.gc(Default::default()).context("second gc")?;
        ensure_eq!(again.dead_ingests, 0, "{what}: staged writes left after gc");
        let leftovers: Vec<_> = store_files(store.dir())
            .difference(&files_before)
            .cloned()
            .collect();
        ensure!(
            leftovers.is_empty(),
            "{what}: files left behind: {leftovers:?}"
        );
    }
    // An oversize stream through the streaming writer is refused by `write` or by `commit`.
    let mut writer = store
        .writer(&WriteOptions {
            expected_size: Some(10),
            ..WriteOptions::default()
        })
        .context("opening a writer")?;
    let refused = writer.write_all(&bytes).is_err() || writer.commit().is_err();
    ensure!(refused, "an oversize streamed write was accepted");
    ensure_eq!(
        snapshot(&store)?,
        before,
        "oversize stream: store contents changed"
    );
    ensure!(
        read_bytes(&store, &kept.digest)? == b"kept",
        "the stored blob changed"
    );
    Ok(())
}

/// The longest names and values the base store accepts work on every combination (invariant
/// 5): a 128-character data type and extra data type, a 4096-byte key, a media type of two
/// 127-character parts, 1 MiB values.
pub fn store_limits_work_everywhere(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let media_type = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    let record = write_bytes(&store, b"limits", Some(&media_type))?;
    ensure_eq!(
        store.info(&record.digest).context("info")?.media_type,
        media_type,
        "media type"
    );
    ensure_eq!(
        store.list(Some(&media_type)).context("list")?,
        vec![record.clone()],
        "list by the longest media type"
    );
    let data_type = format!("t.{}", "d".repeat(126));
    let key = "k/".repeat(2048);
    let value = content(6, 1 << 20);
    store
        .put_data(&data_type, &key, &value, Some(&record.digest))
        .context("put_data with the longest names and a 1 MiB value")?;
    let entry = store.get_data(&data_type, &key).context("get_data")?;
    ensure!(
        entry
            .as_ref()
            .is_some_and(|e| e.value == value && e.version == 1),
        "the entry did not round trip"
    );
    ensure_eq!(
        store
            .list_data(&data_type, &key[..3000])
            .context("list_data")?
            .len(),
        1,
        "listing by a 3000-byte prefix"
    );
    let extra_type = format!("e.{}", "x".repeat(126));
    store
        .set_extra(&record.digest, &extra_type, &value)
        .context("set_extra with the longest type and a 1 MiB value")?;
    ensure_eq!(
        store
            .get_extra(&record.digest, &extra_type)
            .context("get_extra")?,
        Some(value),
        "extra data value"
    );
    // Just past the limits is refused, on every combination alike.
    ensure!(
        store
            .put_data(&format!("{data_type}x"), "k", b"", None)
            .is_err(),
        "a 129-character data type was accepted"
    );
    ensure!(
        store.put_data("t", &"k".repeat(4097), b"", None).is_err(),
        "a 4097-byte key was accepted"
    );
    store.delete(&record.digest).context("delete")?;
    ensure_eq!(
        store.get_data(&data_type, &key).context("get_data")?,
        None,
        "cascade"
    );
    Ok(())
}
