//! A cached tree's hash covers its root's mode, so the cache makes that mode itself rather
//! than take it from the umask. Alone in its test binary: the umask is per process, and no
//! other test may create files while it is changed.

mod rootfs_support;

use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::rootfs::{apply_layer, TreeStore};
use rootfs_support::*;

#[test]
fn a_cached_trees_hash_does_not_depend_on_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("store"), &BackendChoice::default()).unwrap();
    let trees = TreeStore::open(&store, "test").unwrap();
    let tar = layer(&[Dir("etc", 0o755), File("etc/hostname", b"box\n", 0o644)]);
    let render = |key: &str| {
        trees
            .get_or_render(key, |rootfs| {
                apply_layer(rootfs, &tar[..], &rootless()).map(|_| ())
            })
            .unwrap()
    };
    let previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let strict = render("strict");
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o002));
    let loose = render("loose");
    rustix::process::umask(previous);
    assert_eq!(strict.hash, loose.hash);
    assert_eq!(mode_of(&strict.rootfs), 0o755);
}
