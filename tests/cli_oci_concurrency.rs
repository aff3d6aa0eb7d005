//! Several `oci-store` processes importing at once while another runs `oci-store gc` in a loop:
//! no import fails, nothing a ref reaches is ever lost, and afterwards every ref verifies and
//! the garbage is gone.
//!
//! Each importer flips its ref between two images on every round, so every round leaves the
//! previous image's own layer as garbage for a concurrent GC to sweep — while the shared base
//! layer (the same in every image) is being re-imported by another importer.

mod cli_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cli_support::{assert_success, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;

const IMPORTERS: usize = 4;
const ROUNDS: usize = 20;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp paths")
}

#[test]
fn imports_never_fail_and_refs_stay_complete_while_gc_loops() {
    race_imports_against_gc(None);
}

#[test]
fn imports_never_fail_and_refs_stay_complete_while_gc_loops_over_lmdb() {
    race_imports_against_gc(Some("lmdb"));
}

/// Runs `args` after the backend choice, if any: `--backend NAME args...`.
fn with_backend<'a>(backend: Option<&'a str>, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = match backend {
        Some(name) => vec!["--backend", name],
        None => Vec::new(),
    };
    full.extend_from_slice(args);
    full
}

fn race_imports_against_gc(backend: Option<&'static str>) {
    let store = Arc::new(TestStore::new());
    // Two images per importer; `simple_image` puts the name in one layer, so each differs in
    // that layer (and its manifest) and shares the base layer and the config with all others.
    let layouts: Vec<[PathBuf; 2]> = (0..IMPORTERS)
        .map(|importer| {
            [0, 1].map(|variant| {
                let path = store.scratch(&format!("layout-{importer}-{variant}"));
                LayoutBuilder::simple_image(&path, &format!("image-{importer}-{variant}"))
                    .expect("building a layout");
                path
            })
        })
        .collect();
    // Create the store before the race, so the processes race on content, not on creation.
    store.ok(&with_backend(backend, &["stats"]));

    let started = Instant::now();
    let importing = Arc::new(AtomicBool::new(true));
    let gc_runs = Arc::new(AtomicU64::new(0));
    let swept = Arc::new(AtomicU64::new(0));
    let gc_loop = {
        let (store, importing) = (store.clone(), importing.clone());
        let (gc_runs, swept) = (gc_runs.clone(), swept.clone());
        std::thread::spawn(move || {
            while importing.load(Ordering::SeqCst) {
                let report = store.json(&with_backend(backend, &["gc"]));
                let swept_now = report["swept"].as_array().map_or(0, Vec::len);
                swept.fetch_add(swept_now as u64, Ordering::SeqCst);
                gc_runs.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let importers: Vec<_> = layouts
        .iter()
        .cloned()
        .enumerate()
        .map(|(importer, layouts)| {
            let store = store.clone();
            std::thread::spawn(move || {
                let name = format!("worker-{importer}:latest");
                for round in 0..ROUNDS {
                    let layout = &layouts[round % 2];
                    let args =
                        with_backend(backend, &["import", "--dref", &name, path_str(layout)]);
                    let output = store.run(&args, b"");
                    assert_success(&args, &output);
                    // Between this process's import and its check, only GCs run on this ref:
                    // they must not take anything it reaches.
                    let check = with_backend(backend, &["check", name.as_str()]);
                    let output = store.run(&check, b"");
                    assert_success(&check, &output);
                }
            })
        })
        .collect();
    for importer in importers {
        importer
            .join()
            .expect("an importer failed (see its panic above)");
    }
    importing.store(false, Ordering::SeqCst);
    gc_loop
        .join()
        .expect("the gc loop failed (see its panic above)");
    let elapsed = started.elapsed();
    let (gc_runs, swept) = (gc_runs.load(Ordering::SeqCst), swept.load(Ordering::SeqCst));
    eprintln!(
        "{}: {IMPORTERS} importers x {ROUNDS} rounds, {gc_runs} gc runs sweeping {swept} blobs, \
         in {elapsed:?}",
        backend.unwrap_or("default")
    );
    assert!(gc_runs >= 1, "gc ran during the imports");
    assert!(
        swept > 0,
        "the concurrent gc runs swept replaced images: the race took place"
    );

    for importer in 0..IMPORTERS {
        let name = format!("worker-{importer}:latest");
        let report = store.json(&with_backend(backend, &["check", &name, "--verify"]));
        assert_eq!(report["missing"], serde_json::json!([]), "{name}: {report}");
        assert_eq!(report["corrupt"], serde_json::json!([]), "{name}: {report}");
        assert_eq!(report["blobs_present"], 4, "{name}: {report}");
    }

    // One more GC leaves exactly what the final refs reach: per importer its manifest and own
    // layer, plus the base layer and the config (same platform, no diff ids) they all share.
    store.ok(&with_backend(backend, &["gc"]));
    let listed = store.ok(&with_backend(backend, &["blob", "ls"]));
    assert_eq!(listed.lines().count(), IMPORTERS * 2 + 2, "{listed}");
    let fsck = store.ok(&with_backend(backend, &["fsck"]));
    assert!(fsck.contains("no problems"), "{fsck}");
}
