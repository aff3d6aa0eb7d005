//! Deleting cascades to dependants (DESIGN.md invariant 3); data cannot be attached to a blob
//! that is not there; `delete_if_unreferenced` honours owner marks and key/value references.

use oci_store::store::Holder;
use oci_store::store::StoreError;
use oci_store::traits::{Algorithm, Digest, KvKey, SortedDigests};

use super::{read_bytes, write_bytes, StoreFixture};
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

fn expect_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) -> TestResult {
    match result {
        Err(StoreError::NotFound(_)) => Ok(()),
        other => fail!("{what}: expected NotFound, got {other:?}"),
    }
}

fn expect_missing_blob<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    digest: &Digest,
    what: &str,
) -> TestResult {
    match result {
        Err(StoreError::MissingBlob { digest: named, .. }) => {
            ensure_eq!(named, digest.clone(), "{what}: digest named by MissingBlob");
            Ok(())
        }
        other => fail!("{what}: expected MissingBlob, got {other:?}"),
    }
}

pub fn delete_cascades(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let gone = write_bytes(&store, b"deleted blob", None)?.digest;
    let kept = write_bytes(&store, b"kept blob", None)?.digest;
    store
        .set_extra(&gone, "last-used", b"1")
        .context("set_extra")?;
    store.set_extra(&gone, "info", b"{}").context("set_extra")?;
    store
        .set_extra(&kept, "last-used", b"2")
        .context("set_extra")?;
    store
        .put_data("ref", "gone", b"", Some(&gone))
        .context("put_data")?;
    store
        .put_data("cache", "gone", b"", Some(&gone))
        .context("put_data")?;
    store
        .put_data("ref", "kept", b"", Some(&kept))
        .context("put_data")?;
    store
        .put_data("ref", "plain", b"", None)
        .context("put_data")?;

    ensure!(
        store.delete(&gone).context("delete")?,
        "delete() of an indexed blob returned false"
    );
    expect_not_found(store.info(&gone), "info() after delete")?;
    expect_not_found(store.read(&gone).map(|_| ()), "read() after delete")?;
    ensure!(
        !store.contains(&gone).context("contains")?,
        "contains() after delete"
    );
    ensure_eq!(
        store.extra_types(&gone).context("extra_types")?,
        Vec::<String>::new(),
        "extra"
    );
    ensure_eq!(
        store.get_data("ref", "gone").context("get_data")?,
        None,
        "ref/gone"
    );
    ensure_eq!(
        store.get_data("cache", "gone").context("get_data")?,
        None,
        "cache/gone"
    );
    ensure_eq!(
        store.data_referencing(&gone).context("data_referencing")?,
        Vec::<KvKey>::new(),
        "entries referencing the deleted blob"
    );
    ensure!(
        !store
            .blob_store()
            .contains(&gone)
            .context("blob store contains")?,
        "the content outlived the delete"
    );
    ensure_eq!(
        store
            .extra_data()
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("extra digests")?,
        vec![kept.clone()],
        "extra data digests"
    );
    // Nothing else was touched.
    ensure_eq!(
        store.get_extra(&kept, "last-used").context("get_extra")?,
        Some(b"2".to_vec()),
        "another blob's extra data"
    );
    ensure!(
        store.get_data("ref", "kept").context("get")?.is_some(),
        "another blob's entry"
    );
    ensure!(
        store.get_data("ref", "plain").context("get")?.is_some(),
        "an entry without blob"
    );
    ensure!(
        read_bytes(&store, &kept)? == b"kept blob",
        "another blob's content"
    );
    ensure!(
        !store.delete(&gone).context("second delete")?,
        "second delete() returned true"
    );
    Ok(())
}

pub fn attach_to_missing_blob_is_refused(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let missing = Digest::of_bytes(Algorithm::Sha256, b"never written");
    let deleted = write_bytes(&store, b"written then deleted", None)?.digest;
    store.delete(&deleted).context("delete")?;
    for digest in [&missing, &deleted] {
        expect_missing_blob(store.set_extra(digest, "info", b"x"), digest, "set_extra")?;
        expect_missing_blob(
            store.mark_owner(digest, &Holder::flavour("oci")),
            digest,
            "mark_owner",
        )?;
        expect_missing_blob(
            store.put_data("ref", "dangling", b"", Some(digest)),
            digest,
            "put_data",
        )?;
        expect_missing_blob(
            store.compare_and_set_data("ref", "dangling", b"", Some(digest), None),
            digest,
            "compare_and_set_data",
        )?;
    }
    ensure_eq!(
        store
            .extra_data()
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("extra digests")?,
        Vec::<Digest>::new(),
        "extra data written for a missing blob"
    );
    ensure_eq!(
        store.get_data("ref", "dangling").context("get")?,
        None,
        "entry written"
    );
    ensure_eq!(
        store
            .kv_store()
            .sorted_referenced_digests()
            .and_then(SortedDigests::into_vec)
            .context("referenced")?,
        Vec::<Digest>::new(),
        "references recorded to a missing blob"
    );
    // Names are validated before anything is written.
    let stored = write_bytes(&store, b"present", None)?.digest;
    ensure!(
        store.set_extra(&stored, "", b"x").is_err(),
        "an empty extra data type"
    );
    ensure!(
        store.put_data("", "k", b"x", None).is_err(),
        "an empty data type"
    );
    ensure!(
        store.put_data("ref", "", b"x", None).is_err(),
        "an empty key"
    );
    Ok(())
}

pub fn delete_if_unreferenced(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let blob = write_bytes(&store, b"held blob", None)?.digest;
    ensure!(
        !store
            .delete_if_unreferenced(&blob)
            .context("held by base")?,
        "deleted a blob the base store holds (written through it)"
    );
    // From here on the marks and entries below are its only holders.
    store
        .unmark_owner(&blob, &Holder::BASE)
        .context("unmark base")?;
    let missing = Digest::of_bytes(Algorithm::Sha256, b"missing");
    ensure!(
        !store.delete_if_unreferenced(&missing).context("missing")?,
        "missing blob"
    );

    store
        .mark_owner(&blob, &Holder::flavour("oci"))
        .context("mark_owner oci")?;
    store
        .mark_owner(&blob, &Holder::flavour("appc"))
        .context("mark_owner appc")?;
    ensure_eq!(
        store
            .owned_by(&Holder::flavour("oci"))
            .context("owned_by")?,
        vec![blob.clone()],
        "owned_by"
    );
    ensure!(
        !store.delete_if_unreferenced(&blob).context("owned")?,
        "deleted a blob with owner marks"
    );
    ensure!(
        store
            .unmark_owner(&blob, &Holder::flavour("oci"))
            .context("unmark")?,
        "unmark returned false"
    );
    ensure!(
        !store
            .delete_if_unreferenced(&blob)
            .context("owned by appc")?,
        "deleted a blob another flavour still owns"
    );
    store
        .unmark_owner(&blob, &Holder::flavour("appc"))
        .context("unmark")?;

    store
        .put_data("ref", "holder", b"", Some(&blob))
        .context("put_data")?;
    ensure!(
        !store.delete_if_unreferenced(&blob).context("referenced")?,
        "deleted a blob a key/value entry references"
    );
    ensure!(
        store.info(&blob).is_ok(),
        "the blob went although it was held"
    );
    // Extra data that is no owner mark holds nothing; the entry is the last holder, and it
    // is taken away around `remove_data` (which would delete the blob with it) to leave an
    // unheld blob for `delete_if_unreferenced` to decide on.
    store
        .set_extra(&blob, "last-used", b"1")
        .context("set_extra")?;
    store
        .kv_store()
        .remove("ref", "holder")
        .context("removing the entry through the trait")?;
    ensure!(
        store
            .delete_if_unreferenced(&blob)
            .context("unreferenced")?,
        "an unreferenced blob (extra data that is no owner mark) was kept"
    );
    expect_not_found(store.info(&blob), "info() after delete_if_unreferenced")?;
    ensure_eq!(
        store.extra_types(&blob).context("types")?,
        Vec::<String>::new(),
        "cascade"
    );
    ensure!(
        !store.blob_store().contains(&blob).context("contains")?,
        "content left"
    );
    Ok(())
}

/// `write_owned` and `claim_existing` put the owner mark in the same locked step as the write,
/// so the blob is never indexed without it; a mark whose write failed is orphan data for GC.
pub fn owned_writes_are_marked_with_their_commit(fixture: &StoreFixture) -> TestResult {
    use oci_store::store::WriteOptions;
    let store = fixture.open()?;
    let record = store
        .write(
            &b"owned layer"[..],
            &WriteOptions {
                holder: Some(Holder::flavour("oci").clone()),
                ..Default::default()
            },
        )
        .context("write_owned")?;
    ensure_eq!(
        store
            .owned_by(&Holder::flavour("oci"))
            .context("owned_by")?,
        vec![record.digest.clone()],
        "mark after write_owned"
    );
    ensure!(
        !store
            .delete_if_unreferenced(&record.digest)
            .context("delete_if_unreferenced")?,
        "another flavour's GC deleted a blob written as owned"
    );

    // The same content again, for a second flavour, through the no-read path.
    let again = store
        .write(
            &b"ignored: not read"[..],
            &WriteOptions {
                holder: Some(Holder::flavour("appc").clone()),
                ..WriteOptions {
                    expected_digest: Some(record.digest.clone()),
                    expected_size: Some(record.size),
                    ..Default::default()
                }
                .clone()
            },
        )
        .context("write_owned of a stored blob")?;
    ensure_eq!(again, record, "the stored record is returned");
    ensure_eq!(
        store.extra_types(&record.digest).context("types")?,
        vec!["owner.appc".to_string(), "owner.oci".to_string()],
        "both marks"
    );

    let missing = Digest::of_bytes(Algorithm::Sha256, b"never stored");
    ensure!(
        store
            .claim_existing(&missing, &Holder::flavour("oci"))
            .context("claim_existing")?
            .is_none(),
        "claimed a blob that is not there"
    );
    ensure!(
        store.extra_types(&missing).context("types")?.is_empty(),
        "claim_existing left a mark on a missing blob"
    );

    // A rejected owned write marks nothing (verification fails before the locked step).
    let wrong = store.write(
        &b"content"[..],
        &WriteOptions {
            holder: Some(Holder::flavour("oci").clone()),
            ..WriteOptions {
                expected_digest: Some(missing.clone()),
                ..Default::default()
            }
            .clone()
        },
    );
    ensure!(wrong.is_err(), "a digest mismatch was accepted");
    store.gc(Default::default()).context("gc")?;
    ensure_eq!(
        store
            .owned_by(&Holder::flavour("oci"))
            .context("owned_by")?,
        vec![record.digest.clone()],
        "only the stored blob is owned after gc"
    );
    Ok(())
}
