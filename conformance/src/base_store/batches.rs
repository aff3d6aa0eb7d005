//! Batched holder changes: `Store::release_many` (what the OCI GC sweeps with) decides each
//! blob as `Store::release` would, and `Store::remove_data_many` (what `rm --ref A --ref B`
//! uses) removes entries all or nothing, keeping the holder rule of `remove_data`.

use oci_store::store::{Holder, Release, StoreError, WriteOptions};
use oci_store::traits::{Digest, KvKey};
use oci_store::Store;

use super::{write_bytes, StoreFixture};
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

fn owned(store: &Store, bytes: &[u8], holder: &Holder) -> Result<Digest, String> {
    Ok(store
        .write(
            bytes,
            &WriteOptions {
                holder: Some((*holder).clone()),
                ..Default::default()
            },
        )
        .context(format!("write_owned for {holder}"))?
        .digest)
}

fn is_indexed(store: &Store, digest: &Digest) -> Result<bool, String> {
    match store.info(digest) {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(error) => fail!("info {digest}: {error}"),
    }
}

fn ensure_gone(store: &Store, digest: &Digest, what: &str) -> TestResult {
    ensure!(
        !is_indexed(store, digest)?,
        "{what}: {digest} is still indexed"
    );
    ensure!(
        !store.blob_store().contains(digest).context("contains")?,
        "{what}: the content of {digest} is left"
    );
    ensure_eq!(
        store.extra_types(digest).context("extra_types")?,
        Vec::<String>::new(),
        "{what}: extra data of {digest}"
    );
    Ok(())
}

fn key(data_type: &str, key: &str) -> KvKey {
    KvKey {
        data_type: data_type.to_string(),
        key: key.to_string(),
    }
}

/// Many blobs in one call, more than one batch: the unheld go with all their dependants, the
/// others keep everything but the released mark, and each outcome says which.
pub fn release_many_decides_each_blob_like_release(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let mut alone = Vec::new();
    for n in 0..520 {
        let digest = owned(
            &store,
            format!("only oci holds {n}").as_bytes(),
            &Holder::flavour("oci"),
        )?;
        store
            .set_extra(&digest, "last-used", b"1")
            .context("set_extra")?;
        alone.push(digest);
    }
    let shared = owned(&store, b"appc holds it too", &Holder::flavour("oci"))?;
    store
        .mark_owner(&shared, &Holder::flavour("appc"))
        .context("mark appc")?;
    let pinned = owned(&store, b"an entry holds it", &Holder::flavour("oci"))?;
    store
        .put_data("pin", "p", b"", Some(&pinned))
        .context("put_data")?;
    let absent = Digest::parse(&format!("sha256:{}", "ab".repeat(32))).context("digest")?;

    let mut digests = alone.clone();
    digests.extend([
        shared.clone(),
        pinned.clone(),
        absent.clone(),
        alone[0].clone(),
    ]);
    let outcomes = store
        .release_many(&digests, &Holder::flavour("oci"))
        .context("release_many")?;
    ensure_eq!(outcomes.len(), digests.len(), "one outcome per digest");
    for (digest, outcome) in alone.iter().zip(&outcomes) {
        ensure_eq!(outcome, &Release::Deleted, "outcome of {digest}");
        ensure_gone(&store, digest, "released by its only holder")?;
    }
    let n = alone.len();
    match &outcomes[n] {
        Release::Kept(holders) => ensure_eq!(
            holders.owners.clone(),
            vec![Holder::flavour("appc")],
            "holders"
        ),
        other => fail!("a blob appc holds: {other:?}"),
    }
    match &outcomes[n + 1] {
        Release::Kept(holders) => {
            ensure_eq!(holders.entries.clone(), vec![key("pin", "p")], "holders");
        }
        other => fail!("a blob an entry holds: {other:?}"),
    }
    ensure_eq!(&outcomes[n + 2], &Release::Absent, "a digest not stored");
    ensure_eq!(&outcomes[n + 3], &Release::Absent, "a digest given twice");
    let oci_mark = Holder::flavour("oci").mark();
    for digest in [&shared, &pinned] {
        ensure!(is_indexed(&store, digest)?, "{digest} went although held");
        ensure!(
            !store
                .extra_types(digest)
                .context("extra_types")?
                .contains(&oci_mark),
            "the released mark is left on {digest}"
        );
    }
    let report = store.fsck(Default::default()).context("fsck")?;
    ensure!(report.is_clean(), "fsck after release_many: {report:?}");
    Ok(())
}

/// All or nothing: an unknown key refuses the whole call and changes nothing (the full dump is
/// identical); otherwise every entry goes in one step, and a blob whose last holder was one of
/// them goes with it, while a blob something else holds stays.
pub fn remove_data_many_is_all_or_nothing(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let only_entry = owned(&store, b"held by its entry alone", &Holder::flavour("oci"))?;
    store
        .put_data("pin", "a", b"", Some(&only_entry))
        .context("put a")?;
    store
        .release(&only_entry, &Holder::flavour("oci"))
        .context("release")?;
    let user = write_bytes(&store, b"the user's blob", None)?.digest;
    store
        .put_data("pin", "b", b"", Some(&user))
        .context("put b")?;
    store
        .put_data("pin", "c", b"no blob", None)
        .context("put c")?;

    let before = store.dump().context("dump")?;
    let refused = store.remove_data_many(&[key("pin", "a"), key("pin", "nope"), key("pin", "b")]);
    match refused {
        Err(StoreError::EntryNotFound { data_type, key }) => {
            ensure_eq!((data_type.as_str(), key.as_str()), ("pin", "nope"), "named");
        }
        other => fail!("an unknown key was not refused: {other:?}"),
    }
    ensure!(
        store.dump().context("dump")? == before,
        "a refused remove_data_many changed the store"
    );

    store
        .remove_data_many(&[
            key("pin", "a"),
            key("pin", "b"),
            key("pin", "c"),
            key("pin", "a"),
        ])
        .context("remove_data_many")?;
    ensure_eq!(
        store.list_data("pin", "").context("list_data")?.len(),
        0,
        "entries left"
    );
    ensure_gone(&store, &only_entry, "its last holder removed")?;
    ensure!(
        is_indexed(&store, &user)?,
        "the user's blob went with the entry"
    );
    let report = store.fsck(Default::default()).context("fsck")?;
    ensure!(report.is_clean(), "fsck after remove_data_many: {report:?}");
    Ok(())
}
