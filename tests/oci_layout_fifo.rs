//! A FIFO (or any non-regular file) where a layout has a file: the import fails in bounded
//! time with an error naming the path, and the store is unchanged (issue 7, item 5; DESIGN.md
//! invariant 7). Each import runs in its own thread with a deadline, so a hang shows as a
//! failure instead of a test run that never ends.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciStore};

const DEADLINE: Duration = Duration::from_secs(20);

fn make_fifo(path: &Path) {
    std::fs::remove_file(path).expect("removing the file the FIFO replaces");
    let name = CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: `name` is a valid NUL-terminated path that lives across the call.
    let result = unsafe { libc::mkfifo(name.as_ptr(), 0o644) };
    assert_eq!(result, 0, "mkfifo {}", path.display());
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("a digest");
    layout.join("blobs").join(algorithm).join(hex)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("reading")).expect("JSON")
}

/// The path in a fresh one-image layout that `what` names.
fn target(layout: &Path, what: &str) -> PathBuf {
    let index = json(&layout.join("index.json"));
    let manifest_path = blob_path(layout, index["manifests"][0]["digest"].as_str().unwrap());
    let manifest = json(&manifest_path);
    match what {
        "index.json" | "oci-layout" => layout.join(what),
        "manifest" => manifest_path,
        "config" => blob_path(layout, manifest["config"]["digest"].as_str().unwrap()),
        "layer" => blob_path(layout, manifest["layers"][0]["digest"].as_str().unwrap()),
        other => panic!("unknown target {other}"),
    }
}

#[test]
fn a_fifo_in_a_layout_fails_fast_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let store_dir = temp.path().join("store");
    let store = open_store(&store_dir, &BackendChoice::default()).unwrap();
    let oci = OciStore::new(&store);
    let existing = temp.path().join("existing");
    LayoutBuilder::simple_image(&existing, "existing").unwrap();
    oci.import_layout(&existing, &ImportOptions::default())
        .unwrap();
    let before = store.dump().unwrap();

    for what in ["index.json", "oci-layout", "manifest", "config", "layer"] {
        let layout = temp.path().join(format!("layout-{what}"));
        LayoutBuilder::simple_image(&layout, "fifo").unwrap();
        let fifo = target(&layout, what);
        make_fifo(&fifo);

        let (sender, receiver) = mpsc::channel();
        let (dir, source) = (store_dir.clone(), layout.clone());
        std::thread::spawn(move || {
            let store = open_store(&dir, &BackendChoice::default()).unwrap();
            let result = OciStore::new(&store)
                .import_layout(&source, &ImportOptions::default())
                .map(|report| report.refs.len())
                .map_err(|error| error.to_string());
            let _ = sender.send(result);
        });
        let Ok(result) = receiver.recv_timeout(DEADLINE) else {
            // Let the stuck reader go (a writer that closes at once gives it EOF) before
            // failing, so the hung thread does not outlive the test holding locks.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo);
            panic!("a FIFO as the {what}: the import did not finish within {DEADLINE:?}");
        };
        let error = match result {
            Err(error) => error,
            Ok(refs) => panic!("a FIFO as the {what}: the import succeeded ({refs} refs)"),
        };
        assert!(
            error.contains(&fifo.display().to_string()) || error.contains(what),
            "a FIFO as the {what}: the error does not name it: {error}"
        );
        assert!(
            error.contains("not a regular file"),
            "a FIFO as the {what}: {error}"
        );
        assert_eq!(
            store.dump().unwrap(),
            before,
            "a FIFO as the {what}: the store changed"
        );
    }
}
