//! Layer semantics of the renderer: OCI whiteouts and opaque directories, lower-first
//! overwrite and upper-first keep-existing, compression by media type, prefix and filter,
//! modes and times.

mod rootfs_support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_store::stores::rootfs::{
    apply_layer, decompress, ApplyOptions, EntryKind, Existing, RootfsError,
};
use rootfs_support::*;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_whiteout_removes_a_lower_file_and_a_lower_directory() {
    let scene = Scene::new();
    scene
        .apply(
            &[
                Dir("etc", 0o755),
                File("etc/passwd", b"root", 0o644),
                File("etc/group", b"root", 0o644),
                Dir("var/cache/apt", 0o755),
                File("var/cache/apt/pkgcache.bin", b"cache", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    let report = scene
        .apply(
            &[
                File("etc/.wh.passwd", b"", 0o644),
                File("var/.wh.cache", b"", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    assert_eq!(report.whiteouts, 2);
    assert_eq!(names(&scene.target().join("etc")), ["group"]);
    assert!(names(&scene.target().join("var")).is_empty());
    assert!(
        !scene.target().join("etc/.wh.passwd").exists(),
        "whiteouts are not content"
    );
}

#[test]
fn a_whiteout_hides_only_lower_layers() {
    let scene = Scene::new();
    scene
        .apply(
            &[
                File("a", b"lower", 0o644),
                Dir("d", 0o755),
                File("d/old", b"", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    // This layer writes `a` and `d/new`, then whites out both names: its own entries stay
    // (only a later layer can hide them), what the lower layer had under `d` goes.
    scene
        .apply(
            &[
                File("a", b"upper", 0o644),
                File("d/new", b"", 0o644),
                File(".wh.a", b"", 0o644),
                File(".wh.d", b"", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    assert_eq!(std::fs::read(scene.target().join("a")).unwrap(), b"upper");
    assert_eq!(names(&scene.target().join("d")), ["new"]);
}

#[test]
fn an_opaque_directory_hides_what_lower_layers_put_in_it() {
    let scene = Scene::new();
    scene
        .apply(
            &[
                Dir("opt/app", 0o755),
                File("opt/app/old-1", b"", 0o644),
                Dir("opt/app/old-dir", 0o755),
                File("opt/app/old-dir/x", b"", 0o644),
                File("opt/other", b"kept", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    let report = scene
        .apply(
            &[
                Dir("opt/app", 0o750),
                File("opt/app/new-before", b"", 0o644),
                File("opt/app/.wh..wh..opq", b"", 0o644),
                File("opt/app/new-after", b"", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    assert_eq!(report.opaque_directories, 1);
    assert_eq!(
        names(&scene.target().join("opt/app")),
        ["new-after", "new-before"]
    );
    assert_eq!(names(&scene.target().join("opt")), ["app", "other"]);
    assert_eq!(mode_of(&scene.target().join("opt/app")), 0o750);
}

#[test]
fn whiteout_names_are_plain_files_when_whiteouts_are_off() {
    let scene = Scene::new();
    scene.apply(&[File("a", b"", 0o644)], &rootless()).unwrap();
    scene
        .apply(
            &[File(".wh.a", b"", 0o644)],
            &rootless().with_whiteouts(false),
        )
        .unwrap();
    assert_eq!(names(&scene.target()), [".wh.a", "a"]);
}

#[test]
fn aufs_bookkeeping_names_are_ignored() {
    let scene = Scene::new();
    let report = scene
        .apply(
            &[Dir(".wh..wh.plnk", 0o700), File(".wh..wh.aufs", b"", 0o600)],
            &rootless(),
        )
        .unwrap();
    assert_eq!(report.reserved_whiteouts_ignored, 2);
    assert!(names(&scene.target()).is_empty());
}

#[test]
fn upper_layers_overwrite_and_change_types() {
    let scene = Scene::new();
    scene
        .apply(
            &[
                File("f", b"lower", 0o644),
                Dir("d", 0o755),
                File("d/x", b"", 0o644),
                File("to-dir", b"", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    scene
        .apply(
            &[
                File("f", b"upper", 0o600),
                File("d", b"now a file", 0o644),
                Dir("to-dir", 0o700),
            ],
            &rootless(),
        )
        .unwrap();
    assert_eq!(std::fs::read(scene.target().join("f")).unwrap(), b"upper");
    assert_eq!(mode_of(&scene.target().join("f")), 0o600);
    assert_eq!(
        std::fs::read(scene.target().join("d")).unwrap(),
        b"now a file"
    );
    assert!(scene.target().join("to-dir").is_dir());
}

#[test]
fn keep_existing_lets_the_upper_image_win() {
    // rkt's order: the upper image first, its dependencies after, never overwriting.
    let scene = Scene::new();
    let keep = rootless()
        .with_whiteouts(false)
        .with_existing(Existing::KeepExisting);
    scene
        .apply(
            &[
                File("etc/os-release", b"app", 0o644),
                File("bin", b"a file here", 0o644),
            ],
            &keep,
        )
        .unwrap();
    let report = scene
        .apply(
            &[
                File("etc/os-release", b"base", 0o600),
                File("etc/hostname", b"base", 0o644),
                Dir("bin", 0o755),
                File("bin/sh", b"shell", 0o755),
            ],
            &keep,
        )
        .unwrap();
    assert_eq!(
        std::fs::read(scene.target().join("etc/os-release")).unwrap(),
        b"app"
    );
    assert_eq!(mode_of(&scene.target().join("etc/os-release")), 0o644);
    assert_eq!(
        std::fs::read(scene.target().join("etc/hostname")).unwrap(),
        b"base"
    );
    assert_eq!(
        std::fs::read(scene.target().join("bin")).unwrap(),
        b"a file here"
    );
    assert_eq!(
        report.kept_existing, 3,
        "os-release, bin and bin/sh (shadowed by the file)"
    );
}

#[test]
fn keep_existing_with_whiteouts_is_refused() {
    let scene = Scene::new();
    let error = scene
        .apply(
            &[File("a", b"", 0o644)],
            &rootless().with_existing(Existing::KeepExisting),
        )
        .unwrap_err();
    assert!(matches!(error, RootfsError::InvalidOptions(_)), "{error}");
}

#[test]
fn keep_existing_still_refuses_links_the_same_image_made() {
    let scene = Scene::new();
    let keep = rootless()
        .with_whiteouts(false)
        .with_existing(Existing::KeepExisting);
    let outside = scene.outside().display().to_string();
    let error = scene
        .apply(
            &[symlink("a", &outside), File("a/secret", b"x", 0o644)],
            &keep,
        )
        .unwrap_err();
    assert!(error.to_string().contains("a is a symlink"), "{error}");
    scene.assert_outside_untouched();
}

#[test]
fn a_prefix_is_stripped_and_entries_outside_it_are_not_written() {
    let scene = Scene::new();
    let options = rootless().with_whiteouts(false).with_strip_prefix("rootfs");
    let report = scene
        .apply(
            &[
                File("manifest", b"{}", 0o644),
                Dir("rootfs", 0o755),
                File("rootfs/etc/hostname", b"box", 0o644),
                File("rootfsevil/x", b"x", 0o644),
                HardLink("rootfs/link-to-hostname", "rootfs/etc/hostname"),
            ],
            &options,
        )
        .unwrap();
    assert_eq!(report.outside_prefix, 2);
    assert_eq!(names(&scene.target()), ["etc", "link-to-hostname"]);
    let error = scene
        .apply(
            &[
                File("manifest", b"{}", 0o644),
                HardLink("rootfs/m", "manifest"),
            ],
            &options,
        )
        .unwrap_err();
    assert!(error.to_string().contains("outside rootfs"), "{error}");
}

#[test]
fn the_path_filter_decides_per_entry() {
    let scene = Scene::new();
    let options = rootless().with_path_filter(|path, kind| {
        kind == EntryKind::Directory || path == Path::new("usr/bin/keep")
    });
    let report = scene
        .apply(
            &[
                Dir("usr", 0o755),
                Dir("usr/bin", 0o755),
                File("usr/bin/keep", b"", 0o755),
                File("usr/bin/drop", b"", 0o755),
            ],
            &options,
        )
        .unwrap();
    assert_eq!(report.filtered, 1);
    assert_eq!(names(&scene.target().join("usr/bin")), ["keep"]);
}

#[test]
fn modes_times_and_fifos_are_kept() {
    let scene = Scene::new();
    scene
        .apply(
            &[
                Dir("ro", 0o555),
                File("ro/inside", b"x", 0o4755),
                Dir("sticky", 0o1777),
                Fifo("pipe"),
                symlink("link", "ro/inside"),
            ],
            &rootless(),
        )
        .unwrap();
    let target = scene.target();
    assert_eq!(
        mode_of(&target.join("ro")),
        0o555,
        "read-only directory still got its child"
    );
    assert_eq!(mode_of(&target.join("ro/inside")), 0o4755);
    assert_eq!(mode_of(&target.join("sticky")), 0o1777);
    assert_eq!(mode_of(&target.join("pipe")), 0o640);
    assert!(std::fs::symlink_metadata(target.join("pipe"))
        .unwrap()
        .file_type()
        .is_fifo_like());
    assert_eq!(
        std::fs::read_link(target.join("link")).unwrap(),
        Path::new("ro/inside")
    );
    for path in ["ro", "ro/inside", "sticky", "pipe", "link"] {
        let mtime = std::fs::symlink_metadata(target.join(path))
            .unwrap()
            .mtime();
        assert_eq!(mtime, 1_600_000_000, "{path}");
    }
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

#[test]
fn a_later_layer_writes_into_a_read_only_directory() {
    let scene = Scene::new();
    scene.apply(&[Dir("ro", 0o555)], &rootless()).unwrap();
    scene
        .apply(
            &[
                File("ro/later", b"x", 0o644),
                File("ro/.wh.nothing", b"", 0o644),
            ],
            &rootless(),
        )
        .unwrap();
    assert_eq!(names(&scene.target().join("ro")), ["later"]);
    assert_eq!(mode_of(&scene.target().join("ro")), 0o555);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn gzip_and_zstd_layers_apply_like_plain_ones() {
    let items = || {
        [
            Dir("etc", 0o755),
            File("etc/motd", b"compressed hello", 0o644),
            symlink("m", "etc/motd"),
        ]
    };
    let tar = layer(&items());
    let cases = [
        ("application/vnd.oci.image.layer.v1.tar", tar.clone()),
        ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(&tar)),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            gzip(&tar),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            zstd::encode_all(&tar[..], 3).unwrap(),
        ),
    ];
    let mut hashes = Vec::new();
    for (media_type, blob) in cases {
        let scene = Scene::new();
        let stream = decompress(&blob[..], Some(media_type), "test layer").unwrap();
        apply_layer(&scene.target(), stream, &rootless()).unwrap();
        assert_eq!(
            std::fs::read(scene.target().join("etc/motd")).unwrap(),
            b"compressed hello",
            "{media_type}"
        );
        hashes.push(
            oci_store::stores::rootfs::tree_hash(&scene.target())
                .unwrap()
                .hash,
        );
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 1, "every compression renders the same tree");
}

#[test]
fn compressed_content_under_a_plain_media_type_is_refused() {
    let blob = zstd::encode_all(&layer(&[File("a", b"", 0o644)])[..], 3).unwrap();
    let error = decompress(
        &blob[..],
        Some("application/vnd.oci.image.layer.v1.tar+gzip"),
        "sha256:feed",
    )
    .err()
    .unwrap();
    assert!(
        error
            .to_string()
            .contains("declares gzip, but the content is zstd"),
        "{error}"
    );
    let error = decompress(
        &blob[..],
        Some("application/vnd.oci.image.config.v1+json"),
        "sha256:feed",
    )
    .err()
    .unwrap();
    assert!(
        matches!(error, RootfsError::UnsupportedMediaType { .. }),
        "{error}"
    );
    // Without a media type (appc), the magic bytes decide.
    let scene = Scene::new();
    apply_layer(
        &scene.target(),
        decompress(&blob[..], None, "x").unwrap(),
        &ApplyOptions::rootless(),
    )
    .unwrap();
    assert!(scene.target().join("a").is_file());
}

#[test]
fn a_corrupt_archive_is_an_error() {
    let mut tar = layer(&[File("a", b"some content", 0o644)]);
    tar[148] ^= 0xff; // the header checksum
    let scene = Scene::new();
    let error = apply_layer(&scene.target(), &tar[..], &rootless()).unwrap_err();
    assert!(matches!(error, RootfsError::Archive(_)), "{error}");
}

#[test]
fn root_entry_sets_the_target_mode() {
    let scene = Scene::new();
    scene
        .apply(&[Dir("./", 0o750), File("./a", b"", 0o644)], &rootless())
        .unwrap();
    assert_eq!(mode_of(&scene.target()), 0o750);
    let metadata = std::fs::metadata(scene.target().join("a")).unwrap();
    assert_eq!(
        metadata.uid(),
        rustix::process::geteuid().as_raw(),
        "rootless: ours"
    );
}

#[test]
fn an_archive_that_stops_after_its_last_entry_is_complete() {
    // umoci 0.4 never closes its tar writer: no padding after the last file, no end blocks.
    let tar = layer(&[Dir("etc", 0o755), File("etc/x", b"hi\n", 0o644)]);
    let unclosed = &tar[..512 * 2 + 3];
    let scene = Scene::new();
    apply_layer(&scene.target(), unclosed, &rootless()).expect("read as Go's archive/tar reads it");
    assert_eq!(
        std::fs::read(scene.target().join("etc/x")).unwrap(),
        b"hi\n"
    );
    // Cut inside the file's data: truncated, an error.
    let scene = Scene::new();
    let error = apply_layer(&scene.target(), &tar[..512 * 2 + 2], &rootless()).unwrap_err();
    assert!(matches!(error, RootfsError::Archive(_)), "{error}");
    // Cut inside a header: an error too.
    let scene = Scene::new();
    let error = apply_layer(&scene.target(), &tar[..512 + 100], &rootless()).unwrap_err();
    assert!(matches!(error, RootfsError::Archive(_)), "{error}");
}

fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    build(&mut builder);
    builder.into_inner().unwrap()
}

fn regular_header(size: u64, uid: u64, gid: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(uid);
    header.set_gid(gid);
    header
}

#[test]
fn xattrs_are_applied_only_when_asked() {
    let tar = tar_with(|builder| {
        builder
            .append_pax_extensions([("SCHILY.xattr.user.origin", &b"layer"[..])])
            .unwrap();
        let mut header = regular_header(1, 0, 0);
        builder
            .append_data(&mut header, "tagged", &b"x"[..])
            .unwrap();
    });
    let read = |path: &Path| {
        let mut value = [0u8; 64];
        rustix::fs::getxattr(path, "user.origin", &mut value[..])
            .ok()
            .map(|n| value[..n].to_vec())
    };
    let scene = Scene::new();
    let options = ApplyOptions {
        xattrs: true,
        ..rootless()
    };
    let report = apply_layer(&scene.target(), &tar[..], &options).unwrap();
    assert_eq!(report.xattrs_skipped, 0);
    assert_eq!(
        read(&scene.target().join("tagged")).as_deref(),
        Some(&b"layer"[..])
    );

    let scene = Scene::new();
    apply_layer(&scene.target(), &tar[..], &rootless()).unwrap();
    assert_eq!(read(&scene.target().join("tagged")), None, "off by default");
}

#[test]
fn owners_come_from_the_archive_only_when_privileged() {
    let tar = tar_with(|builder| {
        let mut header = regular_header(1, 1234, 5678);
        builder
            .append_data(&mut header, "owned", &b"x"[..])
            .unwrap();
    });
    let scene = Scene::new();
    apply_layer(&scene.target(), &tar[..], &rootless()).unwrap();
    let metadata = std::fs::metadata(scene.target().join("owned")).unwrap();
    assert_eq!(
        metadata.uid(),
        rustix::process::geteuid().as_raw(),
        "rootless: ours"
    );

    let scene = Scene::new();
    let result = apply_layer(&scene.target(), &tar[..], &ApplyOptions::privileged());
    if rustix::process::geteuid().is_root() {
        result.unwrap();
        let metadata = std::fs::metadata(scene.target().join("owned")).unwrap();
        assert_eq!((metadata.uid(), metadata.gid()), (1234, 5678));
    } else {
        let error = result.unwrap_err().to_string();
        assert!(error.contains("setting the owner"), "{error}");
    }
}
