//! Tree hashes (deterministic, sensitive to every byte, mode, name and link) and the rendered
//! tree cache (one render per key however many ask at once, all or nothing, removal).

mod rootfs_support;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::rootfs::{
    apply_layer, tree_hash, verify_tree, Ownership, RootfsError, TreeStore, TREES_DIR,
};
use rootfs_support::*;

fn sample_layer() -> Vec<u8> {
    layer(&[
        Dir("etc", 0o755),
        File("etc/hostname", b"box\n", 0o644),
        File("etc/shadow", b"secret\n", 0o600),
        symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
        HardLink("etc/hostname-again", "etc/hostname"),
        Fifo("run-pipe"),
        Dir("empty", 0o700),
    ])
}

fn rendered() -> Scene {
    let scene = Scene::new();
    apply_layer(&scene.target(), &sample_layer()[..], &rootless()).unwrap();
    scene
}

#[test]
fn the_same_tree_hashes_the_same() {
    let (first, second) = (rendered(), rendered());
    let a = tree_hash(&first.target()).unwrap();
    let b = tree_hash(&second.target()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.entries, 7);
    assert_eq!(
        a.size,
        4 + 7,
        "hostname once (two names, one inode) and shadow"
    );
    assert!(a.hash.as_str().starts_with("sha256:"));
}

/// Something done to a rendered tree.
type Change = dyn Fn(&std::path::Path);

#[test]
fn every_kind_of_change_changes_the_hash() {
    let reference = tree_hash(&rendered().target()).unwrap().hash;
    let changes: Vec<(&str, Box<Change>)> = vec![
        (
            "a changed byte",
            Box::new(|t| std::fs::write(t.join("etc/shadow"), b"secreT\n").unwrap()),
        ),
        (
            "a changed mode",
            Box::new(|t| {
                std::fs::set_permissions(
                    t.join("etc/shadow"),
                    std::fs::Permissions::from_mode(0o640),
                )
                .unwrap();
            }),
        ),
        (
            "a directory mode",
            Box::new(|t| {
                std::fs::set_permissions(t.join("empty"), std::fs::Permissions::from_mode(0o755))
                    .unwrap();
            }),
        ),
        (
            "a link target",
            Box::new(|t| {
                std::fs::remove_file(t.join("etc/localtime")).unwrap();
                std::os::unix::fs::symlink("/usr/share/zoneinfo/CET", t.join("etc/localtime"))
                    .unwrap();
            }),
        ),
        (
            "a new empty file",
            Box::new(|t| std::fs::write(t.join("empty/new"), b"").unwrap()),
        ),
        (
            "a renamed file",
            Box::new(|t| std::fs::rename(t.join("etc/shadow"), t.join("etc/shadoW")).unwrap()),
        ),
        (
            "a file turned into a symlink",
            Box::new(|t| {
                std::fs::remove_file(t.join("etc/hostname-again")).unwrap();
                std::os::unix::fs::symlink("hostname", t.join("etc/hostname-again")).unwrap();
            }),
        ),
    ];
    for (what, change) in changes {
        let scene = rendered();
        change(&scene.target());
        let changed = tree_hash(&scene.target()).unwrap().hash;
        assert_ne!(changed, reference, "{what} must change the hash");
        let error = verify_tree(&scene.target(), &reference).unwrap_err();
        assert!(
            matches!(error, RootfsError::TreeMismatch { .. }),
            "{what}: {error}"
        );
    }
    verify_tree(&rendered().target(), &reference).expect("an unchanged tree verifies");
}

#[test]
fn the_hash_ignores_times() {
    let scene = rendered();
    let before = tree_hash(&scene.target()).unwrap().hash;
    let file = std::fs::File::options()
        .write(true)
        .open(scene.target().join("etc/hostname"))
        .unwrap();
    file.set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    assert_eq!(tree_hash(&scene.target()).unwrap().hash, before);
}

fn test_store() -> (tempfile::TempDir, oci_store::store::Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("store"), &BackendChoice::default()).unwrap();
    (dir, store)
}

#[test]
fn concurrent_renders_of_one_key_do_the_work_once() {
    let (_dir, store) = test_store();
    let trees = TreeStore::open(&store, "test").unwrap();
    let renders = AtomicUsize::new(0);
    let threads = 4;
    let barrier = Barrier::new(threads);
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    trees
                        .get_or_render("image-a,base-b", |rootfs| {
                            renders.fetch_add(1, Ordering::SeqCst);
                            // Long enough that the others arrive while it runs.
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            apply_layer(rootfs, &sample_layer()[..], &rootless()).map(|_| ())
                        })
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(renders.load(Ordering::SeqCst), 1, "rendered once");
    assert_eq!(results.iter().filter(|t| !t.reused).count(), 1);
    let first = &results[0];
    for tree in &results {
        assert_eq!((&tree.rootfs, &tree.hash), (&first.rootfs, &first.hash));
    }
    assert_eq!(first.hash, tree_hash(&first.rootfs).unwrap().hash);
    assert!(first
        .rootfs
        .starts_with(store.dir().join(TREES_DIR).join("test")));
    assert_eq!(
        std::fs::read(first.rootfs.join("etc/hostname")).unwrap(),
        b"box\n"
    );
    trees
        .verify("image-a,base-b")
        .expect("the cached tree verifies");
}

#[test]
fn a_failed_render_leaves_nothing_and_the_next_one_renders() {
    let (_dir, store) = test_store();
    let trees = TreeStore::open(&store, "test").unwrap();
    let hostile = layer(&[symlink("a", ".."), File("a/x", b"", 0o644)]);
    let error = trees
        .get_or_render("k", |rootfs| {
            apply_layer(rootfs, &hostile[..], &rootless()).map(|_| ())
        })
        .unwrap_err();
    assert!(matches!(error, RootfsError::Refused { .. }), "{error}");
    assert!(
        std::fs::read_dir(trees.dir()).unwrap().next().is_none(),
        "no tree, no temp dir"
    );
    assert!(trees.get("k").unwrap().is_none());
    let tree = trees
        .get_or_render("k", |rootfs| {
            apply_layer(rootfs, &sample_layer()[..], &rootless()).map(|_| ())
        })
        .unwrap();
    assert!(!tree.reused);
    assert_eq!(trees.get("k").unwrap().unwrap().hash, tree.hash);
}

#[test]
fn trees_are_listed_verified_and_removed() {
    let (_dir, store) = test_store();
    let trees = TreeStore::open(&store, "test").unwrap();
    for key in ["one", "two"] {
        trees
            .get_or_render(key, |rootfs| {
                apply_layer(
                    rootfs,
                    &layer(&[Dir("ro", 0o555), File("ro/f", b"x", 0o444)])[..],
                    &rootless(),
                )
                .map(|_| ())
            })
            .unwrap();
    }
    let listed: Vec<_> = trees.list().unwrap().into_iter().map(|t| t.key).collect();
    assert_eq!(listed, ["one", "two"]);

    let one = trees.get("one").unwrap().unwrap();
    std::fs::set_permissions(
        one.rootfs.join("ro"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(one.rootfs.join("ro/f"), b"y").unwrap();
    let error = trees.verify("one").unwrap_err();
    assert!(error.to_string().contains(one.hash.as_str()), "{error}");

    assert!(
        trees.remove("one").unwrap(),
        "read-only trees are removed too"
    );
    assert!(!trees.remove("one").unwrap());
    assert!(!one.dir.exists());
    let listed: Vec<_> = trees.list().unwrap().into_iter().map(|t| t.key).collect();
    assert_eq!(listed, ["two"]);
    assert_eq!(
        std::fs::read_dir(trees.dir()).unwrap().count(),
        1,
        "no trash left"
    );
}

#[test]
fn a_dead_renders_leftovers_are_cleared() {
    let (_dir, store) = test_store();
    let trees = TreeStore::open(&store, "test").unwrap();
    // What a crash mid-render leaves: a temp dir of the key, with a read-only directory.
    let tree = trees
        .get_or_render("k", |rootfs| {
            apply_layer(rootfs, &sample_layer()[..], &rootless()).map(|_| ())
        })
        .unwrap();
    let id = tree.dir.file_name().unwrap().to_string_lossy().into_owned();
    let leftover = trees.dir().join(format!(".tmp-{id}-1-2"));
    std::fs::create_dir_all(leftover.join("rootfs/ro")).unwrap();
    std::fs::set_permissions(
        leftover.join("rootfs/ro"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    trees.remove("k").unwrap();
    trees
        .get_or_render("k", |rootfs| {
            apply_layer(rootfs, &sample_layer()[..], &rootless()).map(|_| ())
        })
        .unwrap();
    assert!(!leftover.exists());
}

#[test]
fn flavour_names_are_checked() {
    let (_dir, store) = test_store();
    for bad in ["", "../x", "A", "a/b"] {
        assert!(TreeStore::open(&store, bad).is_err(), "{bad:?}");
    }
    let _ = Arc::new(TreeStore::open(&store, "appc").unwrap());
}

#[test]
fn a_tree_is_copied_out_whole_and_verified() {
    use std::os::unix::fs::MetadataExt;
    let (dir, store) = test_store();
    let trees = TreeStore::open(&store, "test").unwrap();
    let tree = trees
        .get_or_render("k", |rootfs| {
            let mut items = vec![Dir("ro", 0o555), File("ro/f", b"x", 0o444)];
            items.extend([
                File("etc/hostname", b"box\n", 0o644),
                HardLink("etc/hostname-again", "etc/hostname"),
                symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
                Fifo("pipe"),
                File("suid", b"s", 0o4755),
            ]);
            apply_layer(rootfs, &layer(&items)[..], &rootless()).map(|_| ())
        })
        .unwrap();
    let out = dir.path().join("out");
    let copied = trees.copy_out("k", &out, Ownership::CurrentUser).unwrap();
    assert_eq!(copied.summary.hash, tree.hash);
    assert_eq!(
        tree_hash(&out).unwrap().hash,
        tree.hash,
        "the copy is the same tree"
    );
    let a = std::fs::metadata(out.join("etc/hostname")).unwrap();
    let b = std::fs::metadata(out.join("etc/hostname-again")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard links stay links");
    assert_eq!(mode_of(&out.join("ro")), 0o555);
    assert_eq!(a.mtime(), 1_600_000_000, "times are kept");

    let error = trees
        .copy_out("k", &out, Ownership::CurrentUser)
        .unwrap_err();
    assert!(error.to_string().contains("not empty"), "{error}");
}

#[test]
fn a_tampered_cached_tree_is_not_copied_out() {
    let (dir, store) = test_store();
    let trees = TreeStore::open(&store, "test").unwrap();
    let tree = trees
        .get_or_render("k", |rootfs| {
            apply_layer(rootfs, &sample_layer()[..], &rootless()).map(|_| ())
        })
        .unwrap();
    std::fs::write(tree.rootfs.join("etc/hostname"), b"evil\n").unwrap();
    let out = dir.path().join("out");
    let error = trees
        .copy_out("k", &out, Ownership::CurrentUser)
        .unwrap_err();
    assert!(matches!(error, RootfsError::TreeMismatch { .. }), "{error}");
    assert!(!out.exists(), "nothing is left at the target");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["store"], "no staging directory left");
}
