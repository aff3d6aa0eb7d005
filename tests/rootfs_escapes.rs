//! No layer entry lands outside the render target, whatever links earlier entries made.
//! Each test renders a hostile layer into `target/` beside an `outside/secret` and checks the
//! refusal names the entry and rule, and that nothing outside changed.

mod rootfs_support;

use std::os::unix::fs::MetadataExt;

use oci_store::stores::rootfs::{ApplyOptions, RootfsError};
use rootfs_support::*;

fn refused(scene: &Scene, items: &[Item], entry: &str, rule: &str) {
    match scene.apply(items, &rootless()) {
        Err(RootfsError::Refused {
            entry: named,
            rule: why,
        }) => {
            assert_eq!(named, entry);
            assert!(why.contains(rule), "rule {why:?} should mention {rule:?}");
        }
        other => panic!("entry {entry} should be refused ({rule}), got {other:?}"),
    }
    scene.assert_outside_untouched();
}

#[test]
fn parent_components_are_refused() {
    let scene = Scene::new();
    refused(
        &scene,
        &[File("../outside/secret", b"x", 0o644)],
        "../outside/secret",
        "`..`",
    );
    refused(
        &scene,
        &[File("a/../../x", b"x", 0o644)],
        "a/../../x",
        "`..`",
    );
    refused(&scene, &[Dir("..", 0o755)], "..", "`..`");
}

#[test]
fn absolute_paths_are_refused() {
    let scene = Scene::new();
    let name: &'static str =
        Box::leak(format!("{}/secret", scene.outside().display()).into_boxed_str());
    refused(&scene, &[File(name, b"x", 0o644)], name, "absolute");
}

#[test]
fn a_symlink_to_the_parent_is_not_followed() {
    let scene = Scene::new();
    refused(
        &scene,
        &[symlink("a", ".."), File("a/outside/secret", b"x", 0o644)],
        "a/outside/secret",
        "a is a symlink",
    );
}

#[test]
fn a_chain_of_symlinks_is_not_followed() {
    let scene = Scene::new();
    refused(
        &scene,
        &[
            Dir("d", 0o755),
            symlink("d/up", ".."),
            symlink("a", "d/up/.."),
            File("a/outside/secret", b"x", 0o644),
        ],
        "a/outside/secret",
        "a is a symlink",
    );
}

#[test]
fn an_absolute_symlink_is_not_followed() {
    let scene = Scene::new();
    let outside = scene.outside().display().to_string();
    refused(
        &scene,
        &[
            Dir("a", 0o755),
            symlink("a/b", &outside),
            File("a/b/secret", b"x", 0o644),
        ],
        "a/b/secret",
        "a/b is a symlink",
    );
    // The same with /etc: never written through, even as root.
    let scene = Scene::new();
    let before = std::fs::read("/etc/passwd").unwrap();
    refused(
        &scene,
        &[symlink("etc", "/etc"), File("etc/passwd", b"x", 0o644)],
        "etc/passwd",
        "etc is a symlink",
    );
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), before);
}

#[test]
fn a_file_replacing_a_symlink_is_not_written_through_it() {
    let scene = Scene::new();
    let secret = scene.outside().join("secret").display().to_string();
    let report = scene
        .apply(
            &[symlink("a", &secret), File("a", b"new content", 0o600)],
            &rootless(),
        )
        .expect("a file may replace a symlink");
    assert_eq!(report.files, 1);
    let a = scene.target().join("a");
    assert!(std::fs::symlink_metadata(&a).unwrap().is_file());
    assert_eq!(std::fs::read(&a).unwrap(), b"new content");
    scene.assert_outside_untouched();
}

#[test]
fn a_symlink_a_lower_layer_made_is_not_followed_either() {
    let scene = Scene::new();
    let outside = scene.outside().display().to_string();
    scene
        .apply(&[symlink("lib", &outside)], &rootless())
        .unwrap();
    refused(
        &scene,
        &[File("lib/secret", b"x", 0o644)],
        "lib/secret",
        "lib is a symlink",
    );
    refused(
        &scene,
        &[Dir("lib/sub", 0o755)],
        "lib/sub",
        "lib is a symlink",
    );
}

#[test]
fn hard_links_to_outside_are_refused() {
    let scene = Scene::new();
    refused(
        &scene,
        &[HardLink("h", "../outside/secret")],
        "h",
        "absolute or climbs out",
    );
    let absolute: &'static str =
        Box::leak(format!("{}/secret", scene.outside().display()).into_boxed_str());
    refused(
        &scene,
        &[HardLink("h", absolute)],
        "h",
        "absolute or climbs out",
    );
    let outside = scene.outside().display().to_string();
    refused(
        &scene,
        &[symlink("s", &outside), HardLink("h", "s/secret")],
        "h",
        "s is a symlink",
    );
    refused(
        &scene,
        &[HardLink("h", "missing")],
        "h",
        "no earlier entry made",
    );
    refused(
        &scene,
        &[Dir("d", 0o755), HardLink("h", "d")],
        "h",
        "a directory",
    );
}

#[test]
fn hard_links_inside_are_links_not_copies() {
    let scene = Scene::new();
    let report = scene
        .apply(
            &[
                File("a", b"shared", 0o640),
                Dir("d", 0o755),
                HardLink("d/b", "a"),
            ],
            &rootless(),
        )
        .unwrap();
    assert_eq!(report.hard_links, 1);
    let a = std::fs::metadata(scene.target().join("a")).unwrap();
    let b = std::fs::metadata(scene.target().join("d/b")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
}

#[test]
fn a_hard_link_to_a_symlink_links_the_symlink() {
    let scene = Scene::new();
    let secret = scene.outside().join("secret").display().to_string();
    scene
        .apply(&[symlink("s", &secret), HardLink("h", "s")], &rootless())
        .unwrap();
    let h = std::fs::symlink_metadata(scene.target().join("h")).unwrap();
    assert!(
        h.file_type().is_symlink(),
        "the link is of the symlink itself"
    );
    scene.assert_outside_untouched();
}

#[test]
fn a_file_replacing_a_hard_link_leaves_the_other_name_alone() {
    let scene = Scene::new();
    scene
        .apply(
            &[
                File("a", b"original", 0o644),
                HardLink("b", "a"),
                File("b", b"replaced", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    assert_eq!(
        std::fs::read(scene.target().join("a")).unwrap(),
        b"original"
    );
    assert_eq!(
        std::fs::read(scene.target().join("b")).unwrap(),
        b"replaced"
    );
}

#[test]
fn whiteouts_of_dot_and_dot_dot_are_refused() {
    let scene = Scene::new();
    refused(
        &scene,
        &[File(".wh...", b"", 0o644)],
        ".wh...",
        "not empty, `.` or `..`",
    );
    refused(
        &scene,
        &[Dir("a", 0o755), File("a/.wh..", b"", 0o644)],
        "a/.wh..",
        "`.`",
    );
    refused(&scene, &[File("a/.wh.", b"", 0o644)], "a/.wh.", "empty");
    assert!(scene.target().exists());
}

#[test]
fn a_whiteout_below_a_symlink_is_refused() {
    let scene = Scene::new();
    let outside = scene.outside().display().to_string();
    scene.apply(&[symlink("s", &outside)], &rootless()).unwrap();
    refused(
        &scene,
        &[File("s/.wh.secret", b"", 0o644)],
        "s/.wh.secret",
        "s is a symlink",
    );
    refused(
        &scene,
        &[File("s/.wh..wh..opq", b"", 0o644)],
        "s/.wh..wh..opq",
        "s is a symlink",
    );
}

#[test]
fn device_files_are_skipped_rootless() {
    let scene = Scene::new();
    let report = scene
        .apply(
            &[
                CharDevice("null", 1, 3),
                HardLink("null-again", "null"),
                File("after", b"x", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    assert_eq!(
        report.devices_skipped, 2,
        "the device and the hard link to it"
    );
    assert!(!scene.target().join("null-again").exists());
    assert_eq!(report.devices_created, 0);
    assert!(!scene.target().join("null").exists());
    assert!(scene.target().join("after").exists(), "the render goes on");
}

#[test]
fn device_files_are_created_only_with_privileges() {
    let scene = Scene::new();
    let result = scene.apply(&[CharDevice("null", 1, 3)], &ApplyOptions::privileged());
    if rustix::process::geteuid().is_root() {
        let report = result.expect("root may create device nodes");
        assert_eq!(report.devices_created, 1);
        let metadata = std::fs::symlink_metadata(scene.target().join("null")).unwrap();
        assert_eq!(metadata.rdev(), rustix::fs::makedev(1, 3));
    } else {
        let error = result
            .expect_err("mknod of a device needs root")
            .to_string();
        assert!(error.contains("null"), "{error}");
    }
}

#[test]
fn unsupported_entry_types_are_refused() {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::new(b'Z'));
    header.set_path("odd").unwrap();
    header.set_size(0);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b""[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let scene = Scene::new();
    let error = oci_store::stores::rootfs::apply_layer(&scene.target(), &tar[..], &rootless())
        .expect_err("an unknown entry type is not written");
    let message = error.to_string();
    assert!(
        message.contains("\"odd\"") && message.contains("entry type"),
        "{message}"
    );
}
