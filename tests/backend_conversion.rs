//! Backend conversion between every pair of registered backends, per role, compared by full
//! dumps; and a conversion that cannot take the store lock changes nothing.

use std::path::Path;

use oci_store::store::{convert_store, open_store, BackendChoice, Holder, StoreConfig, StoreDump};
use oci_store::traits::registry::backends_for;
use oci_store::traits::Role;
use oci_store::WriteOptions;

/// Fills a store with blobs of several sizes, extra data and key/value entries (with and
/// without blob references) and returns its dump.
fn populate(dir: &Path, choice: &BackendChoice) -> StoreDump {
    let store = open_store(dir, choice).expect("open source store");
    let mut digests = Vec::new();
    for (i, size) in [0usize, 1, 4096, 1_500_000].into_iter().enumerate() {
        let content: Vec<u8> = (0..size).map(|b| (b * 31 + i) as u8).collect();
        let record = store
            .write_bytes(
                &content,
                &WriteOptions {
                    media_type: Some(format!("application/vnd.test.{i}")),
                    ..Default::default()
                },
            )
            .expect("write blob");
        digests.push(record.digest);
    }
    store
        .set_extra(&digests[1], "last-used", b"1700000000")
        .unwrap();
    store
        .mark_owner(&digests[2], &Holder::flavour("oci"))
        .unwrap();
    store
        .put_data("ref", "app:1", b"manifest", Some(&digests[3]))
        .unwrap();
    // Version 3, to check versions survive the copy.
    for value in [b"a", b"b", b"c"] {
        store.put_data("settings", "color", value, None).unwrap();
    }
    store.dump().expect("dump source")
}

fn config_of(dir: &Path) -> StoreConfig {
    StoreConfig::read(dir).unwrap().unwrap()
}

#[test]
fn every_pair_of_backends_converts_with_identical_dumps() {
    for role in Role::ALL {
        let names = backends_for(role);
        assert!(names.len() >= 2 || role == Role::Blobs, "{role}: {names:?}");
        for from in &names {
            for to in &names {
                if from == to {
                    continue;
                }
                let temp = tempfile::tempdir().unwrap();
                let dir = temp.path().join("store");
                let before = populate(&dir, &BackendChoice::default().role(role, from));
                let report = convert_store(&dir, &BackendChoice::default().role(role, to))
                    .unwrap_or_else(|e| panic!("{role}: {from} -> {to}: {e}"));
                assert_eq!(report.to.backend(role), *to);
                assert_eq!(config_of(&dir).backend(role), *to, "store.json switched");

                let store = open_store(&dir, &BackendChoice::default()).unwrap();
                assert_eq!(store.stats().unwrap().backends[role.name()], *to);
                let after = store.dump().unwrap();
                assert_eq!(before, after, "{role}: {from} -> {to}: dumps differ");
                let fsck = store.fsck(Default::default()).unwrap();
                assert!(fsck.is_clean(), "{role}: {from} -> {to}: {fsck:?}");
                drop(store);

                // And back again: the old backend was cleared, the round trip is exact.
                convert_store(&dir, &BackendChoice::default().role(role, from)).unwrap();
                let store = open_store(&dir, &BackendChoice::default()).unwrap();
                assert_eq!(store.dump().unwrap(), before, "{role}: {to} -> {from}");
            }
        }
    }
}

#[test]
fn all_metadata_roles_convert_at_once() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("store");
    let before = populate(&dir, &BackendChoice::default());
    convert_store(
        &dir,
        &BackendChoice::default()
            .metadata("lmdb")
            .role(Role::Blobs, "sqlite"),
    )
    .unwrap();
    let config = config_of(&dir);
    for role in [Role::Index, Role::Extra, Role::Kv] {
        assert_eq!(config.backend(role), "lmdb");
    }
    assert_eq!(config.backend(Role::Blobs), "sqlite");
    let store = open_store(&dir, &BackendChoice::default().metadata("lmdb")).unwrap();
    assert_eq!(store.dump().unwrap(), before);
}

#[test]
fn conversion_of_an_open_store_is_refused_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("store");
    populate(&dir, &BackendChoice::default());
    let config = config_of(&dir);
    let open = open_store(&dir, &BackendChoice::default()).unwrap();
    let error = convert_store(&dir, &BackendChoice::default().metadata("lmdb")).unwrap_err();
    assert!(error.to_string().contains("in use"), "{error}");
    assert_eq!(config_of(&dir), config);
    drop(open);
}

#[test]
fn unknown_target_backend_is_a_clear_error() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("store");
    populate(&dir, &BackendChoice::default());
    let error = convert_store(&dir, &BackendChoice::default().metadata("postgres")).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("postgres") && text.contains("sqlite"),
        "{text}"
    );
}

#[test]
fn leftovers_of_an_interrupted_conversion_are_cleared_and_the_store_unchanged() {
    use oci_store::traits::registry::{open_index, open_kv_store};
    use oci_store::traits::{BlobRecord, Digest};
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("store");
    let before = populate(&dir, &BackendChoice::default());
    // What an interrupted conversion to lmdb leaves: records in the target backends that
    // store.json does not point at yet.
    {
        let stray = Digest::of_bytes(oci_store::traits::Algorithm::Sha256, b"stray");
        let index = open_index("lmdb", &dir).unwrap();
        index
            .upsert(&BlobRecord {
                digest: stray.clone(),
                size: 5,
                media_type: "application/octet-stream".into(),
                created_unix_ms: 1,
            })
            .unwrap();
        open_kv_store("lmdb", &dir)
            .unwrap()
            .put("ref", "stray", b"x", Some(&stray))
            .unwrap();
    }
    let store = open_store(&dir, &BackendChoice::default()).unwrap();
    assert_eq!(
        store.dump().unwrap(),
        before,
        "the store still reads its old backends"
    );
    drop(store);
    convert_store(&dir, &BackendChoice::default().metadata("lmdb")).unwrap();
    let store = open_store(&dir, &BackendChoice::default()).unwrap();
    assert_eq!(
        store.dump().unwrap(),
        before,
        "stray target records were cleared"
    );
}
