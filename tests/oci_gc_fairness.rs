//! The OCI GC is not starved by a stream of overlapping imports: mutations enter the GC lock
//! through a turnstile that a waiting GC holds (flock alone grants new shared locks while an
//! exclusive one waits, so back-to-back imports could keep a GC out indefinitely).

use std::sync::atomic::{AtomicUsize, Ordering};

use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciStore};

const IMPORTERS: usize = 3;
/// Imports each importer may make before the test gives up on the GC getting in.
const IMPORT_CAP: usize = 400;
const GC_RUNS_WANTED: usize = 3;
/// Most imports a fair lock lets through while the GC runs its rounds: each GC waits only for
/// the imports already in flight (about 15 imports for 3 GCs here). Without the turnstile the
/// GC typically got in after hundreds, or never.
const FAIR_BOUND: usize = 120;

#[test]
fn gc_gets_in_between_back_to_back_imports() {
    let temp = tempfile::tempdir().unwrap();
    let store = open_store(&temp.path().join("store"), &BackendChoice::default()).unwrap();
    let layouts: Vec<_> = (0..IMPORTERS)
        .map(|i| {
            let dir = temp.path().join(format!("layout-{i}"));
            LayoutBuilder::simple_image(&dir, &format!("app-{i}:latest")).unwrap();
            dir
        })
        .collect();
    let gc_runs = AtomicUsize::new(0);
    let imports = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for layout in &layouts {
            let (store, gc_runs, imports) = (&store, &gc_runs, &imports);
            scope.spawn(move || {
                let oci = OciStore::new(store);
                for _ in 0..IMPORT_CAP {
                    if gc_runs.load(Ordering::SeqCst) >= GC_RUNS_WANTED {
                        return;
                    }
                    oci.import_layout(layout, &ImportOptions::default())
                        .expect("import");
                    imports.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        scope.spawn(|| {
            let oci = OciStore::new(&store);
            // Let the importers get going so the GC arrives while they overlap.
            while imports.load(Ordering::SeqCst) < IMPORTERS {
                std::thread::yield_now();
            }
            for _ in 0..GC_RUNS_WANTED {
                oci.gc(false).expect("gc");
                gc_runs.fetch_add(1, Ordering::SeqCst);
            }
        });
    });
    let done = gc_runs.load(Ordering::SeqCst);
    let imported = imports.load(Ordering::SeqCst);
    assert_eq!(
        done, GC_RUNS_WANTED,
        "the GC ran {done} times while importers made {imported} imports"
    );
    assert!(
        imported <= FAIR_BOUND,
        "{imported} imports went ahead while the GC waited for its {GC_RUNS_WANTED} runs: starved"
    );
    // Every image is still whole after the GCs ran between imports.
    let oci = OciStore::new(&store);
    for i in 0..IMPORTERS {
        let report = oci.check(&format!("app-{i}:latest"), true).unwrap();
        assert!(report.is_complete(), "{report:?}");
    }
}
