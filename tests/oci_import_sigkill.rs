//! `import --all` of a layout naming 1,001 refs, killed with SIGKILL at moments spread over the
//! import: every trial leaves either none of the refs or all of them, never part (issue 7,
//! item 8: the refs land in one atomic key/value batch).

mod cli_support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::LayoutBuilder;

const REFS: usize = 1001;
const TRIALS: u32 = 6;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp paths")
}

fn ref_count(store: &TestStore) -> usize {
    store.json(&["list"]).as_array().expect("a list").len()
}

fn import_killed_after(store: &TestStore, layout: &Path, delay: Duration) -> bool {
    let mut child = store
        .command(&["import", "--all", path_str(layout)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting oci-store");
    let started = Instant::now();
    while started.elapsed() < delay {
        if child.try_wait().expect("polling the import").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("killing the import");
    child.wait().expect("reaping the import");
    true
}

#[test]
fn a_killed_import_all_leaves_no_ref_or_every_ref() {
    let layouts = TestStore::new();
    let layout = layouts.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).expect("layout");
    let layer = LayoutBuilder::layer_tar_gz(&[("file", b"content")]).expect("layer");
    let image = builder.image("linux", "amd64", &[layer]).expect("image");
    for n in 0..REFS {
        builder.add_ref(Some(&format!("image-{n}:latest")), &image);
    }
    builder.finish().expect("finishing the layout");

    // How long a whole import takes here: the kills are spread over that span.
    let timed = TestStore::new();
    timed.ok(&["stats"]);
    let started = Instant::now();
    timed.ok(&["import", "--all", path_str(&layout)]);
    let full = started.elapsed();
    assert_eq!(ref_count(&timed), REFS);

    let mut killed_midway = 0;
    for trial in 0..TRIALS {
        let store = TestStore::new();
        // Created beforehand, so the kill lands in the import, not in store creation.
        store.ok(&["stats"]);
        let delay = full.mul_f64(0.15 + 0.8 * f64::from(trial) / f64::from(TRIALS));
        if import_killed_after(&store, &layout, delay) {
            killed_midway += 1;
        }
        let refs = ref_count(&store);
        assert!(
            refs == 0 || refs == REFS,
            "trial {trial} (killed after {delay:?} of {full:?}): {refs} of {REFS} refs were written"
        );
        // What a killed import held goes at the next gc (its hold is stale then); what a
        // complete one wrote stays: one image (manifest, config, layer).
        store.ok(&["gc"]);
        let blobs = store.ok(&["blob", "ls"]).lines().count();
        let expected = if refs == 0 { 0 } else { 3 };
        assert_eq!(
            blobs, expected,
            "trial {trial}: blobs after gc with {refs} refs"
        );
        // The store stays usable: fsck is clean and a new import completes.
        let fsck = store.ok(&["fsck"]);
        assert!(fsck.contains("no problems"), "trial {trial}: {fsck}");
        store.ok(&["import", "--all", path_str(&layout)]);
        assert_eq!(
            ref_count(&store),
            REFS,
            "trial {trial}: import after the kill"
        );
    }
    assert!(
        killed_midway >= TRIALS / 2,
        "only {killed_midway} of {TRIALS} imports were still running when killed: the test \
         proves little"
    );
}
