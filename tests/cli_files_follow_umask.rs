//! Issue 7 item 6: files written for other tools — an exported layout's `index.json`,
//! `oci-layout` and blobs, an archive, the store's `store.json` — are created as `cp` creates
//! them, 0666 masked by the umask, and a replaced file keeps its mode. The umask is set in a
//! shell that then runs the binary, so the test process's own umask is never changed.

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::LayoutBuilder;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Runs `oci-store --store STORE ARGS` under `umask MASK`; it must succeed.
fn run_with_umask(store: &TestStore, mask: &str, args: &[&str]) {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_oci-store"))
        .arg("--store")
        .arg(store.path())
        .args(args)
        .env_remove("OCI_STORE_DIR")
        .output()
        .expect("running sh");
    assert!(
        output.status.success(),
        "umask {mask}: {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The permission bits, in octal as `ls` and `chmod` spell them.
fn mode(path: &Path) -> String {
    let mode = path
        .metadata()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", mode & 0o7777)
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Store, layout and archive made under `mask`; every file for other tools has `expected`.
fn files_for_other_tools_have(mask: &str, expected: &str) {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "app:1").unwrap();
    run_with_umask(&store, mask, &["import", path_str(&layout)]);
    assert_eq!(
        mode(&store.path().join("store.json")),
        expected,
        "store.json"
    );

    let out = store.scratch("out");
    run_with_umask(&store, mask, &["export", "--sref", "app:1", path_str(&out)]);
    let files = files_under(&out);
    assert_eq!(
        files.len(),
        6,
        "oci-layout, index.json and four blobs: {files:?}"
    );
    for file in files {
        assert_eq!(mode(&file), expected, "{}", file.display());
    }
    let archive = store.scratch("app.tar");
    run_with_umask(
        &store,
        mask,
        &["export", "--sref", "app:1", "--archive", path_str(&archive)],
    );
    assert_eq!(mode(&archive), expected, "the archive");
}

#[test]
fn under_umask_022_files_for_other_tools_are_0644() {
    files_for_other_tools_have("022", "644");
}

#[test]
fn under_umask_077_files_for_other_tools_are_0600() {
    files_for_other_tools_have("077", "600");
}

/// A layout another tool made (its `index.json` 0640, or 0644 while we run under umask 077)
/// keeps the mode of the files a merge replaces; so does an archive written over.
#[test]
fn a_replaced_file_keeps_its_mode() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "app:1").unwrap();
    run_with_umask(&store, "022", &["import", path_str(&layout)]);

    for (mask, kept) in [("022", 0o640), ("077", 0o644)] {
        let index = layout.join("index.json");
        std::fs::set_permissions(&index, std::fs::Permissions::from_mode(kept)).unwrap();
        run_with_umask(
            &store,
            mask,
            &[
                "export",
                "--sref",
                "app:1",
                "--dref",
                "merged",
                path_str(&layout),
            ],
        );
        assert_eq!(
            mode(&index),
            format!("{kept:o}"),
            "index.json merged under umask {mask}"
        );
        let text = std::fs::read_to_string(&index).unwrap();
        assert!(text.contains("merged"), "the merge happened: {text}");

        let archive = store.scratch(&format!("kept-{mask}.tar"));
        std::fs::write(&archive, b"an older archive").unwrap();
        std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(kept)).unwrap();
        run_with_umask(
            &store,
            mask,
            &["export", "--sref", "app:1", "--archive", path_str(&archive)],
        );
        assert_eq!(
            mode(&archive),
            format!("{kept:o}"),
            "archive replaced under umask {mask}"
        );
    }
}
