//! A ~2 KB gzip holding one 1 MiB member and 100 hard links to it (issue 7, item 3): the
//! import is refused at the first link having written almost nothing, and the store is
//! unchanged. The bytes this process writes are measured from `/proc/self/io`, so this file
//! holds this one test only (tests of one file run as threads of one process).

mod oci_archive_support;

use oci_archive_support::{disk_usage, RawTar};
use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciError, OciStore};
use oci_store::traits::{Algorithm, Digest};

const MIB: u64 = 1024 * 1024;

/// Bytes this process has passed to write(2) and friends so far.
fn bytes_written_by_this_process() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("reading /proc/self/io");
    io.lines()
        .find_map(|line| line.strip_prefix("wchar: "))
        .expect("a wchar line")
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn hard_links_are_refused_before_they_cost_anything() {
    let temp = tempfile::tempdir().unwrap();
    let store = open_store(&temp.path().join("store"), &BackendChoice::default()).unwrap();
    let layout = temp.path().join("layout");
    LayoutBuilder::simple_image(&layout, "bomb").unwrap();

    let payload = vec![0u8; MIB as usize];
    let payload_digest = Digest::of_bytes(Algorithm::Sha256, &payload);
    let payload_name = format!("blobs/sha256/{}", payload_digest.hex());
    let mut raw = RawTar::new();
    raw.layout(&layout);
    raw.file(&payload_name, &payload);
    for n in 0..100u64 {
        raw.member(
            &format!("links/{n:03}"),
            tar::EntryType::Link,
            Some(&payload_name),
            b"",
        );
    }
    let gzip = raw.finish_gzip();
    assert!(gzip.len() < 4096, "the bomb is {} bytes", gzip.len());
    let archive = temp.path().join("bomb.tar.gz");
    std::fs::write(&archive, &gzip).unwrap();

    let before = store.dump().unwrap();
    let usage_before = disk_usage(store.dir());
    let written_before = bytes_written_by_this_process();
    let result = OciStore::new(&store).import_layout(&archive, &ImportOptions::default());
    let written = bytes_written_by_this_process() - written_before;
    assert!(
        written < 4 * MIB,
        "the refused import wrote {written} bytes ({} MiB)",
        written / MIB
    );
    match result {
        Err(error @ OciError::UnsafeArchiveEntry { .. }) => {
            assert!(error.to_string().contains("hard link"), "{error}");
        }
        other => panic!("an archive of hard links: {other:?}"),
    }
    assert_eq!(store.dump().unwrap(), before, "the store changed");
    let usage_after = disk_usage(store.dir());
    assert!(
        usage_after < usage_before + MIB,
        "the store directory grew from {usage_before} to {usage_after} bytes"
    );
}
