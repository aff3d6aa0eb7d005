//! A local user must not turn a root render into a chmod of a host file (issue 16, item 1).
//!
//! The attack: layer 1 makes `w/` mode 0777, layer 2 holds 20,000 FIFOs all named `w/p`
//! (mode 0666), so the renderer removes and makes `w/p` again and again. A racer running as
//! nobody swaps each fresh FIFO for a symlink to a root-owned 0600 file; a chmod that follows
//! the name then makes that file 0666. The renderer must keep every directory of a render
//! 0700 until all layers are in (the racer cannot even enter) and change modes only through
//! descriptors that do not follow links.

mod rootfs_support;

use std::ffi::CStr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::oci::layout_builder::{LayoutBuilder, OCI_CONFIG};
use oci_store::stores::oci::{ImportOptions, OciStore, UnpackOptions};
use oci_store::traits::{Algorithm, Digest};
use rootfs_support::nobody::{c_path, can_switch_users, fork_as_nobody, kill};
use serde_json::json;

const FIFOS: usize = 20_000;
const UNPACKS: usize = 3;

fn header(name: &str, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_mtime(1_600_000_000);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header.set_path(name).unwrap();
    header.set_cksum();
    header
}

fn tar_of(headers: impl IntoIterator<Item = tar::Header>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for header in headers {
        builder.append(&header, &b""[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

/// `img:1`: layer 1 `w/` 0777, layer 2 [`FIFOS`] times `w/p` 0666.
fn import_image(store: &oci_store::Store, layout: &Path) {
    let layers = [
        tar_of([header("w/", tar::EntryType::Directory, 0o777)]),
        tar_of((0..FIFOS).map(|_| header("w/p", tar::EntryType::Fifo, 0o666))),
    ];
    let mut builder = LayoutBuilder::new(layout).unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in &layers {
        diff_ids.push(Digest::of_bytes(Algorithm::Sha256, tar).to_string());
        descriptors.push(
            builder
                .blob("application/vnd.oci.image.layer.v1.tar", tar)
                .unwrap(),
        );
    }
    let config = builder
        .json_blob(
            OCI_CONFIG,
            &json!({"architecture": "amd64", "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}),
        )
        .unwrap();
    let manifest = builder
        .json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config, "layers": descriptors}),
        )
        .unwrap();
    builder.add_ref(Some("img:1"), &manifest);
    builder.finish().unwrap();
    OciStore::new(store)
        .import_layout(layout, &ImportOptions::default())
        .unwrap();
}

/// getdents64 into `buffer`; calls `each` with every name but `.` and `..`.
fn for_each_name(fd: i32, buffer: &mut [u8], mut each: impl FnMut(&CStr)) {
    loop {
        // SAFETY: the buffer is ours and its length is passed.
        let read =
            unsafe { libc::syscall(libc::SYS_getdents64, fd, buffer.as_mut_ptr(), buffer.len()) };
        if read <= 0 {
            return;
        }
        let mut offset = 0usize;
        while offset < read as usize {
            let record_length =
                u16::from_ne_bytes([buffer[offset + 16], buffer[offset + 17]]) as usize;
            let name_bytes = &buffer[offset + 19..offset + record_length];
            if let Ok(name) = CStr::from_bytes_until_nul(name_bytes) {
                if name.to_bytes() != b"." && name.to_bytes() != b".." {
                    each(name);
                }
            }
            offset += record_length;
        }
    }
}

/// The racer, as nobody: finds a directory `w` one or two levels into any dot-directory of
/// `scene` (a render's staging directory) and, while that staging directory exists, replaces
/// `w/p` by a symlink to `secret` as fast as it can. Only raw system calls: it runs in a
/// forked child.
fn race(scene: &CStr, secret: &CStr) -> i32 {
    let mut buffer = [0u8; 4096];
    let mut inner = [0u8; 4096];
    let mut staging_names = [[0u8; 256]; 8];
    loop {
        // SAFETY (whole body): raw system calls on C strings and buffers we own.
        unsafe {
            let scene_fd = libc::open(scene.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            if scene_fd < 0 {
                return 1;
            }
            let mut count = 0;
            for_each_name(scene_fd, &mut buffer, |name| {
                let bytes = name.to_bytes_with_nul();
                if bytes[0] == b'.' && count < staging_names.len() && bytes.len() <= 256 {
                    staging_names[count][..bytes.len()].copy_from_slice(bytes);
                    count += 1;
                }
            });
            for staging in &staging_names[..count] {
                let staging = CStr::from_bytes_until_nul(staging).unwrap();
                let staging_fd = libc::openat(
                    scene_fd,
                    staging.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY,
                );
                if staging_fd < 0 {
                    continue;
                }
                let mut w = libc::openat(staging_fd, c"w".as_ptr(), libc::O_DIRECTORY);
                if w < 0 {
                    for_each_name(staging_fd, &mut inner, |child| {
                        if w < 0 {
                            let child_fd =
                                libc::openat(staging_fd, child.as_ptr(), libc::O_DIRECTORY);
                            if child_fd >= 0 {
                                w = libc::openat(child_fd, c"w".as_ptr(), libc::O_DIRECTORY);
                                libc::close(child_fd);
                            }
                        }
                    });
                }
                if w >= 0 {
                    while libc::faccessat(scene_fd, staging.as_ptr(), libc::F_OK, 0) == 0 {
                        for _ in 0..1000 {
                            // Made aside and renamed over: `p` is never missing, so the
                            // renderer's own calls on it do not fail first.
                            libc::symlinkat(secret.as_ptr(), w, c"q".as_ptr());
                            libc::renameat(w, c"q".as_ptr(), w, c"p".as_ptr());
                        }
                    }
                    libc::close(w);
                }
                libc::close(staging_fd);
            }
            libc::close(scene_fd);
        }
    }
}

#[test]
fn a_racing_local_user_cannot_redirect_a_chmod_through_a_symlink() {
    if !can_switch_users("the symlink race test") {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let scene = temp.path().join("scene");
    std::fs::create_dir(&scene).unwrap();
    // Where a user's unpack target often is: a directory others may enter.
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&scene, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = temp.path().join("secret");
    std::fs::write(&secret, b"root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    let store = open_store(&temp.path().join("store"), &BackendChoice::default()).unwrap();
    import_image(&store, &temp.path().join("layout"));

    let (scene_c, secret_c) = (c_path(&scene), c_path(&secret));
    let racer = fork_as_nobody(|| race(&scene_c, &secret_c));
    let mut outcomes = Vec::new();
    let mut failed = 0;
    for round in 0..UNPACKS {
        let target = scene.join("target");
        let result = OciStore::new(&store).unpack("img:1", &target, &UnpackOptions::default());
        let mode = std::fs::metadata(&secret).unwrap().mode() & 0o7777;
        outcomes.push(format!(
            "unpack {round}: {:?}, secret mode {mode:o}",
            result.as_ref().map(|_| ())
        ));
        if mode != 0o600 {
            kill(racer);
            panic!("the root-owned 0600 file became {mode:o} through the render: {outcomes:#?}");
        }
        if result.is_err() {
            // Interfered with but not (yet) redirected: try again, the mode is what counts.
            failed += 1;
            continue;
        }
        let w = std::fs::symlink_metadata(target.join("w")).unwrap();
        assert_eq!(
            w.mode() & 0o7777,
            0o777,
            "w gets its mode once the render is done"
        );
        let p = std::fs::symlink_metadata(target.join("w/p")).unwrap();
        assert!(p.file_type().is_fifo(), "w/p is the layer's FIFO");
        assert_eq!(p.mode() & 0o7777, 0o666);
        assert_eq!(p.uid(), 0, "w/p is not something the racer made");
        rootfs_support_remove(&target);
    }
    kill(racer);
    eprintln!("{outcomes:#?}");
    assert_eq!(failed, 0, "the racer broke unpacks: {outcomes:#?}");
}

fn rootfs_support_remove(target: &Path) {
    oci_store::stores::rootfs::remove_tree(target).unwrap();
}
