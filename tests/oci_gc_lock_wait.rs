//! A GC that cannot get the GC lock gives up after a bounded wait (issue 7, item 5): one hung
//! mutation (an import stuck reading a FIFO) must not freeze every OCI mutation of every
//! process behind a waiting GC. While it waits, new mutations still queue behind it (the
//! fairness tests/oci_gc_fairness.rs checks); when it gives up, they proceed.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oci_store::store::{open_store, BackendChoice, LockGuard, LockMode};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciStore, GC_LOCK, GC_TURNSTILE};

const GC_BUDGET: Duration = Duration::from_secs(2);
/// Far more than any step here takes, so a hang fails the test instead of blocking it.
const HANG: Duration = Duration::from_secs(30);

#[test]
fn a_gc_blocked_by_a_hung_mutation_gives_up_and_lets_other_mutations_through() {
    let temp = tempfile::tempdir().unwrap();
    let store =
        Arc::new(open_store(&temp.path().join("store"), &BackendChoice::default()).unwrap());
    let layout = temp.path().join("layout");
    LayoutBuilder::simple_image(&layout, "app:1").unwrap();
    OciStore::new(&store)
        .import_layout(&layout, &ImportOptions::default())
        .unwrap();
    let locks = store.lock_paths().clone();

    // The hung mutation: it holds the GC lock shared, as every import does, and never ends.
    let hung = LockGuard::acquire(&locks.named(GC_LOCK), LockMode::Shared).unwrap();

    let (gc_done, gc_result) = mpsc::channel();
    let gc_store = Arc::clone(&store);
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = OciStore::new(&gc_store)
            .with_gc_lock_wait(GC_BUDGET)
            .gc(false)
            .map(|_| ())
            .map_err(|e| e.to_string());
        let _ = gc_done.send((result, started.elapsed()));
    });
    // The GC is waiting once it holds the turnstile.
    let waiting_since = Instant::now();
    while LockGuard::try_acquire(&locks.named(GC_TURNSTILE), LockMode::Shared)
        .unwrap()
        .is_some()
    {
        assert!(
            waiting_since.elapsed() < HANG,
            "the GC never took the turnstile"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    // An unrelated mutation arrives while the GC waits.
    let (tag_done, tag_result) = mpsc::channel();
    let tag_store = Arc::clone(&store);
    std::thread::spawn(move || {
        let result = OciStore::new(&tag_store)
            .tag("app:1", "app:2")
            .map_err(|e| e.to_string());
        let _ = tag_done.send(result);
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        tag_result.try_recv().is_err(),
        "the tag went ahead of the waiting GC: new mutations must queue behind it"
    );

    let (result, waited) = gc_result
        .recv_timeout(HANG)
        .expect("the GC is still waiting for the hung mutation: it must give up");
    let message = result.expect_err("the GC ran although a mutation held its lock");
    assert!(
        message.contains("could not start")
            && message.contains("gc-oci.lock")
            && message.contains("retry"),
        "{message}"
    );
    assert!(
        waited >= GC_BUDGET && waited < GC_BUDGET + Duration::from_secs(5),
        "the GC gave up after {waited:?}, its budget is {GC_BUDGET:?}"
    );
    tag_result
        .recv_timeout(HANG)
        .expect("the tag is still blocked after the GC gave up")
        .expect("tag");
    let oci = OciStore::new(&store);
    assert!(oci.get_ref("app:2").is_ok(), "the tag did not land");

    // Once the hung mutation ends, a GC runs and keeps both refs' image.
    drop(hung);
    let report = oci.gc(false).expect("gc");
    assert!(report.swept.is_empty(), "{report:?}");
}
