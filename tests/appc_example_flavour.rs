//! Builds and runs the third flavour of docs/FLAVOURS.md (`examples/tagged_files.rs`) on
//! every metadata backend, so the guide's example keeps compiling and keeps working.

#[path = "../examples/tagged_files.rs"]
mod tagged_files;

#[test]
fn the_guide_example_flavour_runs() {
    for backend in ["sqlite", "lmdb"] {
        let dir = tempfile::tempdir().unwrap();
        let store = oci_store::open_store(
            dir.path(),
            &oci_store::BackendChoice::default().metadata(backend),
        )
        .unwrap();
        drop(store);
        tagged_files::demo(dir.path()).unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
}
