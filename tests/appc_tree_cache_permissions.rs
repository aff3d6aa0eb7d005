//! The appc tree cache must not hand a root render's setuid binaries and device nodes to
//! other users (issue 16, item 2; the class of Moby CVE-2021-41091). As root, an ACI with a
//! setuid-root binary and a 0666 character device (1:3) is rendered into a store in a
//! world-readable directory; as nobody, neither may be reached. The store's directories that
//! hold trees, renders in progress and blob ingest are the owner's alone (0700).

mod rootfs_support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::appc::{AppcStore, ImportOptions};
use rootfs_support::nobody::{
    c_path, can_switch_users, fork_as_nobody, open_errno, stat_errno, wait_exit,
};
use serde_json::json;

fn aci() -> Vec<u8> {
    let manifest = json!({
        "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/suid",
        "labels": [{"name": "version", "value": "1.0.0"}, {"name": "os", "value": "linux"}],
    });
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_mtime(1_500_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(data.len() as u64);
        if kind == tar::EntryType::Char {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        }
        builder.append_data(&mut header, path, data).unwrap();
    };
    append(
        "manifest",
        tar::EntryType::Regular,
        0o644,
        &serde_json::to_vec(&manifest).unwrap(),
    );
    append("rootfs", tar::EntryType::Directory, 0o755, b"");
    append(
        "rootfs/id-suid",
        tar::EntryType::Regular,
        0o4755,
        b"#!/bin/sh\nid\n",
    );
    append("rootfs/null", tar::EntryType::Char, 0o666, b"");
    builder.into_inner().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_root_render_in_the_cache_is_out_of_other_users_reach() {
    if !can_switch_users("the tree cache permission test") {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let store_dir = temp.path().join("store");
    let store = open_store(&store_dir, &BackendChoice::default()).unwrap();
    let file = temp.path().join("suid.aci");
    std::fs::write(&file, aci()).unwrap();
    let appc = AppcStore::new(&store);
    appc.import_file(&file, &ImportOptions::default()).unwrap();
    let report = appc.render("example.com/suid", None).unwrap();

    // The render kept what root asked for: the test would prove nothing otherwise.
    let suid = report.tree.rootfs.join("id-suid");
    let device = report.tree.rootfs.join("null");
    assert_eq!(mode(&suid), 0o4755);
    assert_eq!(std::fs::metadata(&suid).unwrap().uid(), 0);
    assert!(std::fs::symlink_metadata(&device)
        .unwrap()
        .file_type()
        .is_char_device());

    let (suid_c, device_c, rootfs_c) =
        (c_path(&suid), c_path(&device), c_path(&report.tree.rootfs));
    let child = fork_as_nobody(|| {
        let mut reached = 0;
        if stat_errno(&rootfs_c) == 0 {
            reached |= 1;
        }
        if stat_errno(&suid_c) == 0 {
            reached |= 2;
        }
        if open_errno(&device_c, libc::O_RDWR) == 0 {
            reached |= 4;
        }
        reached
    });
    let reached = wait_exit(child);
    assert_eq!(
        reached,
        0,
        "nobody reached (1: the tree, 2: the setuid binary, 4: the device) {reached:#b} in {}",
        report.tree.rootfs.display()
    );

    for dir in ["trees", "trees/appc", "ingest"] {
        assert_eq!(mode(&store_dir.join(dir)), 0o700, "{dir}");
    }
    assert_eq!(mode(&report.tree.dir), 0o700, "the tree's own directory");
}

/// A store an older version made, with its directories 0755, is tightened when opened.
#[test]
fn an_older_stores_open_directories_are_tightened() {
    let temp = tempfile::tempdir().unwrap();
    let store_dir = temp.path().join("store");
    drop(open_store(&store_dir, &BackendChoice::default()).unwrap());
    for dir in ["trees/appc", "ingest"] {
        std::fs::create_dir_all(store_dir.join(dir)).unwrap();
    }
    for dir in ["trees", "trees/appc", "ingest"] {
        std::fs::set_permissions(store_dir.join(dir), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let store = open_store(&store_dir, &BackendChoice::default()).unwrap();
    let file = temp.path().join("suid.aci");
    std::fs::write(&file, aci()).unwrap();
    AppcStore::new(&store)
        .import_file(&file, &ImportOptions::default())
        .unwrap();
    AppcStore::new(&store)
        .render("example.com/suid", None)
        .unwrap();
    for dir in ["trees", "trees/appc", "ingest"] {
        assert_eq!(mode(&store_dir.join(dir)), 0o700, "{dir}");
    }
}
