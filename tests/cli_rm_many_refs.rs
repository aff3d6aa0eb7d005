//! `rm --ref A --ref B ...` and `rm --from-file FILE` remove many refs in one call, all or
//! nothing: an unknown name refuses the whole call, naming it, and removes none.

mod cli_support;

use std::path::Path;

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::LayoutBuilder;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp paths")
}

fn store_with_refs(names: &[&str]) -> TestStore {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    for name in names {
        let layer = LayoutBuilder::layer_tar_gz(&[("file", name.as_bytes())]).unwrap();
        let image = builder.image("linux", "amd64", &[layer]).unwrap();
        builder.add_ref(Some(name), &image);
    }
    builder.finish().unwrap();
    store.ok(&["import", "--all", path_str(&layout)]);
    store
}

fn ref_names(store: &TestStore) -> Vec<String> {
    let listed = store.json(&["list"]);
    listed
        .as_array()
        .expect("list --json is an array")
        .iter()
        .map(|entry| entry["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn several_refs_and_a_file_of_refs_go_in_one_call() {
    let store = store_with_refs(&["a", "b", "c", "d", "e"]);
    let said = store.ok(&["rm", "--ref", "a", "--ref", "b"]);
    assert_eq!(said, "removed a\nremoved b\n");
    let file = store.scratch("refs.txt");
    std::fs::write(&file, "c\n\n  d  \n").unwrap();
    store.ok(&["rm", "--from-file", path_str(&file)]);
    assert_eq!(ref_names(&store), vec!["e"]);
}

#[test]
fn an_unknown_ref_refuses_the_whole_call() {
    let store = store_with_refs(&["a", "b"]);
    let stderr = store.fails(&["rm", "--ref", "a", "--ref", "nope", "--ref", "b"]);
    assert!(
        stderr.contains("nope"),
        "the unknown name is named: {stderr}"
    );
    let file = store.scratch("refs.txt");
    std::fs::write(&file, "b\nmissing\n").unwrap();
    let stderr = store.fails(&["rm", "--from-file", path_str(&file)]);
    assert!(stderr.contains("missing"), "{stderr}");
    assert_eq!(ref_names(&store), vec!["a", "b"], "nothing was removed");
}
