//! Layer archives for the rootfs tests, built header by header so that hostile entries
//! (`..`, absolute names, links anywhere) can be written: `tar::Builder`'s path setters refuse
//! them, which is right for a writer and useless for testing a reader.

#![allow(dead_code)] // each test file uses a different part of this

pub mod nobody;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use oci_store::stores::rootfs::{apply_layer, ApplyOptions, ApplyReport, RootfsResult};

/// One archive entry.
pub enum Item {
    File(&'static str, &'static [u8], u32),
    Dir(&'static str, u32),
    Symlink(&'static str, String),
    HardLink(&'static str, &'static str),
    Fifo(&'static str),
    CharDevice(&'static str, u32, u32),
}

pub use Item::*;

pub fn symlink(name: &'static str, target: &str) -> Item {
    Symlink(name, target.to_string())
}

/// A tar of `items` in order. Names and link names are written raw into the header.
pub fn layer(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_600_000_000);
        header.set_uid(0);
        header.set_gid(0);
        let (name, data): (&str, &[u8]) = match item {
            File(name, data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                (name, data)
            }
            Dir(name, mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                (name, b"")
            }
            Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                raw_link_name(&mut header, target);
                (name, b"")
            }
            HardLink(name, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                raw_link_name(&mut header, target);
                (name, b"")
            }
            Fifo(name) => {
                header.set_entry_type(tar::EntryType::Fifo);
                header.set_mode(0o640);
                (name, b"")
            }
            CharDevice(name, major, minor) => {
                header.set_entry_type(tar::EntryType::Char);
                header.set_mode(0o666);
                header.set_device_major(*major).unwrap();
                header.set_device_minor(*minor).unwrap();
                (name, b"")
            }
        };
        raw_name(&mut header, name);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder
            .append(&header, data)
            .expect("appending to a tar in memory");
    }
    builder.into_inner().expect("finishing a tar in memory")
}

fn raw_name(header: &mut tar::Header, name: &str) {
    let field = &mut header.as_gnu_mut().unwrap().name;
    assert!(name.len() < field.len(), "test names fit the header");
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

fn raw_link_name(header: &mut tar::Header, target: &str) {
    let field = &mut header.as_gnu_mut().unwrap().linkname;
    assert!(target.len() < field.len(), "test link names fit the header");
    field.fill(0);
    field[..target.len()].copy_from_slice(target.as_bytes());
}

/// A temp directory with an empty `target/` to render into and an `outside/` beside it
/// holding `secret`, which no render may change.
pub struct Scene {
    pub dir: tempfile::TempDir,
}

pub const SECRET: &[u8] = b"do not touch\n";

impl Scene {
    pub fn new() -> Scene {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("target")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), SECRET).unwrap();
        std::fs::set_permissions(
            dir.path().join("outside/secret"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        Scene { dir }
    }

    pub fn target(&self) -> std::path::PathBuf {
        self.dir.path().join("target")
    }

    pub fn outside(&self) -> std::path::PathBuf {
        self.dir.path().join("outside")
    }

    pub fn apply(&self, items: &[Item], options: &ApplyOptions) -> RootfsResult<ApplyReport> {
        apply_layer(&self.target(), &layer(items)[..], options)
    }

    /// Everything outside the target is as `new` made it.
    pub fn assert_outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            names,
            ["outside", "target"],
            "nothing new beside the target"
        );
        let outside: Vec<_> = std::fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(outside, ["secret"], "nothing new in outside/");
        let secret = self.outside().join("secret");
        assert_eq!(std::fs::read(&secret).unwrap(), SECRET);
        let metadata = std::fs::symlink_metadata(&secret).unwrap();
        assert_eq!(metadata.nlink(), 1, "no hard link to outside/secret");
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o644);
    }
}

/// Rootless options (what an unprivileged user gets), OCI rules.
pub fn rootless() -> ApplyOptions {
    ApplyOptions::rootless()
}

pub fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}
