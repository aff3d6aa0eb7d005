//! Hand-made tar archives for the archive tests: members are written as given (the tar crate
//! refuses `..` and links when building, which is what these tests need to send).

#![allow(dead_code)] // each test file uses a different part of this

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RawTar {
    bytes: Vec<u8>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar { bytes: Vec::new() }
    }

    pub fn member(&mut self, name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        {
            let raw = header.as_old_mut();
            assert!(
                name.len() < raw.name.len(),
                "name too long for the test tar"
            );
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        header.set_size(data.len() as u64);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        // Numeric fields filled as every tar writer does (an ACI reader needs the owner).
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(kind);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, padding));
    }

    pub fn file(&mut self, name: &str, data: &[u8]) {
        self.member(name, tar::EntryType::Regular, None, data);
    }

    /// Every regular file of a layout directory, under its relative path.
    pub fn layout(&mut self, root: &Path) {
        let mut files = Vec::new();
        collect(root, root, &mut files);
        files.sort();
        for relative in files {
            let data = std::fs::read(root.join(&relative)).expect("reading a layout file");
            self.file(relative.to_str().expect("UTF-8 names"), &data);
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend(std::iter::repeat_n(0u8, 1024));
        self.bytes
    }

    pub fn finish_gzip(self) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&self.finish()).expect("compressing");
        encoder.finish().expect("compressing")
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("listing") {
        let path = entry.expect("listing").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            files.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

/// Every path under `dir` except those under `except`, sorted.
pub fn tree(dir: &Path, except: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    walk(dir, except, &mut paths);
    paths.sort();
    paths
}

fn walk(dir: &Path, except: &Path, paths: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("listing").path();
        if path.starts_with(except) {
            continue;
        }
        paths.push(path.clone());
        if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            walk(&path, except, paths);
        }
    }
}

/// Bytes of every file under `dir`.
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let metadata = entry.path().symlink_metadata().expect("stat");
            total += if metadata.is_dir() {
                disk_usage(&entry.path())
            } else {
                metadata.len()
            };
        }
    }
    total
}
