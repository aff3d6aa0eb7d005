//! Hostile `oci-archive`s (issue 7, item 3): links are refused and never followed, nothing is
//! created outside the store, duplicate layout files are refused, and every refusal leaves the
//! store's full dump byte-identical.

mod oci_archive_support;

use std::path::Path;

use oci_archive_support::{tree, RawTar};
use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciError, OciStore};
use oci_store::Store;

const LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A store with one image in it, deep inside `root` so an escape has room to land.
fn store_in(root: &Path) -> Store {
    let store = open_store(&root.join("one/two/three/store"), &BackendChoice::default()).unwrap();
    let existing = root.join("existing");
    LayoutBuilder::simple_image(&existing, "existing").unwrap();
    OciStore::new(&store)
        .import_layout(&existing, &ImportOptions::default())
        .unwrap();
    store
}

fn import(store: &Store, archive: &Path) -> Result<usize, OciError> {
    OciStore::new(store)
        .import_layout(archive, &ImportOptions::default())
        .map(|report| report.refs.len())
}

#[test]
fn a_symlink_chain_creates_nothing_outside_the_store() {
    let temp = tempfile::tempdir().unwrap();
    let sentinel = temp.path().join("sentinel");
    let store = store_in(&sentinel);
    let before_dump = store.dump().unwrap();

    // `l` leads back to the archive root (lexically inside), `l/m` climbs three levels from
    // there (lexically inside too, counted from `l/m`), and a directory under `l/m/` would then
    // be created three levels above the extraction directory.
    let deep = "a/b/c/d/e/f/g/h";
    let mut raw = RawTar::new();
    raw.file("oci-layout", LAYOUT_FILE);
    raw.member(
        &format!("{deep}/l"),
        tar::EntryType::Symlink,
        Some("../../../../../../../.."),
        b"",
    );
    raw.member(
        &format!("{deep}/l/m"),
        tar::EntryType::Symlink,
        Some("../../.."),
        b"",
    );
    raw.member(
        &format!("{deep}/l/m/escaped/"),
        tar::EntryType::Directory,
        None,
        b"",
    );
    raw.file(&format!("{deep}/l/m/escaped/file"), b"written outside");
    let archive = temp.path().join("chain.tar");
    std::fs::write(&archive, raw.finish()).unwrap();
    let before_tree = tree(temp.path(), store.dir());

    match import(&store, &archive) {
        Err(error @ OciError::UnsafeArchiveEntry { .. }) => assert!(
            error.to_string().contains(&format!("{deep}/l")),
            "the error does not name the link: {error}"
        ),
        other => panic!("a symlink chain: {other:?}"),
    }
    assert_eq!(
        tree(temp.path(), store.dir()),
        before_tree,
        "the import created files outside the store"
    );
    assert_eq!(store.dump().unwrap(), before_dump, "the store changed");
}

#[test]
fn links_devices_and_fifos_are_refused_by_name() {
    let temp = tempfile::tempdir().unwrap();
    let store = store_in(temp.path());
    let before = store.dump().unwrap();
    let layout = temp.path().join("layout");
    LayoutBuilder::simple_image(&layout, "linked").unwrap();
    for (kind, link) in [
        (tar::EntryType::Symlink, Some("index.json")),
        (tar::EntryType::Link, Some("index.json")),
        (tar::EntryType::Fifo, None),
        (tar::EntryType::Char, None),
        (tar::EntryType::Block, None),
    ] {
        let mut raw = RawTar::new();
        raw.layout(&layout);
        raw.member("extra-member", kind, link, b"");
        let archive = temp.path().join("links.tar");
        std::fs::write(&archive, raw.finish()).unwrap();
        match import(&store, &archive) {
            Err(error @ OciError::UnsafeArchiveEntry { .. }) => assert!(
                error.to_string().contains("extra-member"),
                "{kind:?}: the error does not name the member: {error}"
            ),
            other => panic!("a {kind:?} member: {other:?}"),
        }
        assert_eq!(store.dump().unwrap(), before, "{kind:?}: the store changed");
    }
}

#[test]
fn duplicate_layout_files_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let store = store_in(temp.path());
    let before = store.dump().unwrap();
    let layout = temp.path().join("layout");
    LayoutBuilder::simple_image(&layout, "twice").unwrap();
    for (name, second) in [
        (
            "index.json",
            br#"{"schemaVersion":2,"manifests":[]}"#.as_slice(),
        ),
        ("oci-layout", LAYOUT_FILE),
        (
            "./index.json",
            br#"{"schemaVersion":2,"manifests":[]}"#.as_slice(),
        ),
    ] {
        let mut raw = RawTar::new();
        raw.layout(&layout);
        raw.file(name, second);
        let archive = temp.path().join("twice.tar");
        std::fs::write(&archive, raw.finish()).unwrap();
        match import(&store, &archive) {
            Err(error @ OciError::UnsafeArchiveEntry { .. }) => assert!(
                error.to_string().contains(name.trim_start_matches("./")),
                "a second {name}: the error does not name it: {error}"
            ),
            other => panic!("a second {name}: {other:?}"),
        }
        assert_eq!(
            store.dump().unwrap(),
            before,
            "a second {name}: the store changed"
        );
    }
}
