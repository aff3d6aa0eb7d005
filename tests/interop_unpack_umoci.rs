//! `umoci unpack --rootless` and our `unpack` of the same image give the same tree: names,
//! types, modes, contents, link targets and hard-link groups. The image is built by umoci
//! itself, with every construct the layer rules cover: symlinks (relative, absolute,
//! dangling), hard links, read-only and sticky directories, set-uid files, whiteouts of files
//! and directories, an opaque directory, and a layer umoci generated from a changed tree
//! (`repack`), whose deletions it writes as whiteouts.

mod cli_support;
mod interop_tools;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use cli_support::TestStore;
use interop_tools::{path_str, run_tool, tools_available};

fn write(path: &Path, content: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The first layer's content: a small distribution-like tree.
fn base_tree(root: &Path) {
    write(
        &root.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    );
    write(&root.join("etc/shadow"), b"root:*:19000::::::\n", 0o640);
    write(&root.join("etc/motd"), b"welcome\n", 0o644);
    write(&root.join("etc/ro/fixed.conf"), b"fixed\n", 0o444);
    chmod(&root.join("etc/ro"), 0o555);
    write(&root.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n", 0o755);
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool-again")).unwrap();
    write(&root.join("usr/bin/su"), b"setuid\n", 0o4755);
    write(&root.join("usr/lib/libx.so.1"), b"\x7fELF lib one\n", 0o644);
    symlink("libx.so.1", root.join("usr/lib/libx.so")).unwrap();
    write(&root.join("usr/lib/old/plugin.so"), b"old plugin\n", 0o644);
    symlink("/usr/share/zoneinfo/UTC", root.join("etc/localtime")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    symlink("../nowhere", root.join("etc/dangling")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    chmod(&root.join("tmp"), 0o1777);
    fs::create_dir_all(root.join("root")).unwrap();
    chmod(&root.join("root"), 0o700);
    write(&root.join("var/cache/apt/pkgcache.bin"), b"cache", 0o644);
    write(&root.join("var/log/empty"), b"", 0o600);
}

/// Builds the image at `layout:tag` with umoci; returns nothing, the layout is the result.
fn build_image(scratch: &Path, layout: &Path, tag: &str) {
    let image = format!("{}:{tag}", path_str(layout));
    run_tool("umoci", &["init", "--layout", path_str(layout)]);
    run_tool("umoci", &["new", "--image", &image]);

    // Layer 1: the base tree, inserted at the root.
    let base = scratch.join("base");
    base_tree(&base);
    run_tool(
        "umoci",
        &[
            "insert",
            "--rootless",
            "--image",
            &image,
            path_str(&base),
            "/",
        ],
    );

    // Layers 2 and 3: whiteouts of a file and of a directory.
    run_tool(
        "umoci",
        &[
            "insert",
            "--rootless",
            "--image",
            &image,
            "--whiteout",
            "/etc/motd",
        ],
    );
    run_tool(
        "umoci",
        &[
            "insert",
            "--rootless",
            "--image",
            &image,
            "--whiteout",
            "/var/cache",
        ],
    );

    // Layer 4: /usr/lib replaced whole (opaque): old/ and libx go, the new content stays.
    let lib = scratch.join("lib");
    write(&lib.join("libx.so.2"), b"\x7fELF lib two\n", 0o644);
    symlink("libx.so.2", lib.join("libx.so")).unwrap();
    run_tool(
        "umoci",
        &[
            "insert",
            "--rootless",
            "--image",
            &image,
            "--opaque",
            path_str(&lib),
            "/usr/lib",
        ],
    );

    // Layer 5: what umoci generates from a changed tree (repack).
    let bundle = scratch.join("bundle");
    run_tool(
        "umoci",
        &["unpack", "--rootless", "--image", &image, path_str(&bundle)],
    );
    let rootfs = bundle.join("rootfs");
    fs::remove_file(rootfs.join("usr/bin/tool-again")).unwrap();
    fs::remove_dir_all(rootfs.join("var/log")).unwrap();
    chmod(&rootfs.join("etc/shadow"), 0o600);
    write(&rootfs.join("etc/shadow"), b"root:!:19001::::::\n", 0o600);
    write(&rootfs.join("opt/app/data.txt"), b"app data\n", 0o644);
    fs::hard_link(
        rootfs.join("opt/app/data.txt"),
        rootfs.join("opt/app/data-link"),
    )
    .unwrap();
    fs::remove_file(rootfs.join("etc/localtime")).unwrap();
    symlink(
        "/usr/share/zoneinfo/Europe/Paris",
        rootfs.join("etc/localtime"),
    )
    .unwrap();
    run_tool("umoci", &["repack", "--image", &image, path_str(&bundle)]);
    run_tool("umoci", &["gc", "--layout", path_str(layout)]);
}

/// Every entry below `root` (root excluded): type and mode, content or link target.
fn describe_tree(root: &Path) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let mode = metadata.permissions().mode() & 0o7777;
            let file_type = metadata.file_type();
            let description = if file_type.is_dir() {
                pending.push(path.clone());
                format!("dir {mode:o}")
            } else if file_type.is_symlink() {
                format!("symlink -> {}", fs::read_link(&path).unwrap().display())
            } else if file_type.is_file() {
                let content = fs::read(&path).unwrap();
                format!("file {mode:o} {:?}", String::from_utf8_lossy(&content))
            } else {
                format!("other {:o} {mode:o}", metadata.mode() & 0o170000)
            };
            entries.insert(relative, description);
        }
    }
    entries
}

/// The groups of names that share an inode (hard links), each sorted.
fn hard_link_groups(root: &Path) -> BTreeSet<Vec<String>> {
    let mut by_inode: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for relative in describe_tree(root).keys() {
        let metadata = fs::symlink_metadata(root.join(relative)).unwrap();
        if metadata.file_type().is_file() {
            by_inode
                .entry(metadata.ino())
                .or_default()
                .push(relative.clone());
        }
    }
    by_inode
        .into_values()
        .filter(|names| names.len() > 1)
        .map(|mut names| {
            names.sort();
            names
        })
        .collect()
}

#[test]
fn our_unpack_matches_umoci_unpack() {
    let test = "our_unpack_matches_umoci_unpack";
    if !tools_available(test, &["umoci"]) {
        return;
    }
    let store = TestStore::new();
    let layout = store.scratch("layout");
    build_image(&store.scratch("build"), &layout, "latest");

    let bundle = store.scratch("umoci-bundle");
    run_tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:latest", path_str(&layout)),
            path_str(&bundle),
        ],
    );
    let theirs = bundle.join("rootfs");

    store.ok(&[
        "import",
        "--sref",
        "latest",
        "--dref",
        "interop:1",
        path_str(&layout),
    ]);
    let ours = store.scratch("ours");
    let report = store.json(&["unpack", "--rootless", "interop:1", path_str(&ours)]);
    assert_eq!(report["layers"].as_array().unwrap().len(), 5, "{report}");

    let (our_tree, their_tree) = (describe_tree(&ours), describe_tree(&theirs));
    assert_eq!(our_tree, their_tree);
    assert_eq!(hard_link_groups(&ours), hard_link_groups(&theirs));

    // And the tree is what the layers say, so the comparison is not of two empty trees.
    for (path, expected) in [
        ("etc/ro", "dir 555"),
        ("tmp", "dir 1777"),
        ("root", "dir 700"),
        ("usr/bin/su", "file 4755 \"setuid\\n\""),
        ("etc/shadow", "file 600 \"root:!:19001::::::\\n\""),
        ("usr/lib/libx.so", "symlink -> libx.so.2"),
        (
            "etc/localtime",
            "symlink -> /usr/share/zoneinfo/Europe/Paris",
        ),
        ("bin", "symlink -> usr/bin"),
    ] {
        assert_eq!(
            our_tree.get(path).map(String::as_str),
            Some(expected),
            "{path}"
        );
    }
    for gone in [
        "etc/motd",
        "var/cache",
        "var/log",
        "usr/lib/old",
        "usr/lib/libx.so.1",
        "usr/bin/tool-again",
    ] {
        assert!(!our_tree.contains_key(gone), "{gone} is whited out");
    }
    assert!(hard_link_groups(&ours).contains(&vec![
        "opt/app/data-link".to_string(),
        "opt/app/data.txt".to_string()
    ]));
    assert_eq!(
        fs::symlink_metadata(ours.join("etc/ro"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o555
    );
}
