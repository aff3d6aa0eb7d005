//! Tar bombs (more entries or declared bytes than the limits) and decompression bombs (gzip,
//! bzip2, xz, zstd of zeros, expansion ratios of 1000:1 and more). They are written as streams
//! (never held whole in memory) and are refused on their headers, by a limit, or after being
//! read as a stream: through the CLI the harness checks the peak RSS stays far below what
//! they expand to.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::acis::manifest;
use super::layouts::{blob_file, digest_of, valid};
use super::{Hostile, RawTar};

const MIB: u64 = 1 << 20;

/// A GNU tar header for a member `name` of `kind` and `size` bytes, owned by root, without
/// its checksum (the caller may still change it).
pub(super) fn gnu_header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(size);
    header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(kind);
    header
}

/// A tar header for a regular member (or `kind`) of `size` bytes.
fn header(name: &str, kind: tar::EntryType, size: u64) -> [u8; 512] {
    let mut header = gnu_header(name, kind, size);
    header.set_cksum();
    *header.as_bytes()
}

/// Writes a member of `size` zero bytes, in chunks.
fn zeros(out: &mut impl Write, name: &str, size: u64) {
    out.write_all(&header(name, tar::EntryType::Regular, size))
        .unwrap();
    let chunk = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB);
        out.write_all(&chunk[..n as usize]).unwrap();
        left -= n;
    }
    let padding = (512 - size % 512) % 512;
    out.write_all(&chunk[..padding as usize]).unwrap();
}

fn member(out: &mut impl Write, name: &str, data: &[u8]) {
    out.write_all(&header(name, tar::EntryType::Regular, data.len() as u64))
        .unwrap();
    out.write_all(data).unwrap();
    out.write_all(&vec![0u8; (512 - data.len() % 512) % 512])
        .unwrap();
}

fn end(out: &mut impl Write) {
    out.write_all(&[0u8; 1024]).unwrap();
}

fn gzip_file(path: &Path) -> flate2::write::GzEncoder<std::fs::File> {
    flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    )
}

/// The layout files of a valid image, as tar members (blobs too, unless `blobs` is false).
fn layout_members(out: &mut impl Write, dir: &Path, blobs: bool) -> String {
    let (layout, manifest) = valid(dir);
    let mut tar = RawTar::new();
    for name in ["oci-layout", "index.json"] {
        tar.file(name, &std::fs::read(layout.join(name)).unwrap());
    }
    if blobs {
        tar.layout(&layout.join("blobs"));
    }
    let mut bytes = tar.finish();
    bytes.truncate(bytes.len() - 1024);
    out.write_all(&bytes).unwrap();
    let _ = blob_file;
    digest_of(&manifest)
}

fn archive_path(dir: &Path) -> PathBuf {
    dir.join("bomb.tar.gz")
}

// ---- oci-archives ----

pub fn gzip_member_over_the_byte_limit(dir: &Path) -> Hostile {
    // 256 MiB of zeros in one member (about 250 KiB of gzip); the limit is 16 MiB: refused on
    // the member's header, before any of it is inflated.
    let path = archive_path(dir);
    let mut out = gzip_file(&path);
    layout_members(&mut out, dir, true);
    zeros(&mut out, "padding", 256 * MIB);
    end(&mut out);
    out.finish().unwrap();
    Hostile::oci(&path, &["bytes of content", "--max-archive-bytes"]).with_byte_limit(16 * MIB)
}

pub fn gzip_many_members_over_the_byte_limit(dir: &Path) -> Hostile {
    // 4096 members of 64 KiB zeros each: the declared bytes add up past the limit.
    let path = archive_path(dir);
    let mut out = gzip_file(&path);
    layout_members(&mut out, dir, true);
    for i in 0..4096 {
        zeros(&mut out, &format!("pad/{i}"), 64 * 1024);
    }
    end(&mut out);
    out.finish().unwrap();
    Hostile::oci(&path, &["bytes of content"]).with_byte_limit(16 * MIB)
}

pub fn tar_bomb_of_entries(dir: &Path) -> Hostile {
    // 200,000 empty directory entries (a few hundred KiB gzipped), over a 10,000 entry limit.
    let path = archive_path(dir);
    let mut out = gzip_file(&path);
    layout_members(&mut out, dir, true);
    for i in 0..200_000 {
        out.write_all(&header(&format!("d/{i}/"), tar::EntryType::Directory, 0))
            .unwrap();
    }
    end(&mut out);
    out.finish().unwrap();
    Hostile::oci(&path, &["entries", "--max-archive-entries"]).with_entry_limit(10_000)
}

pub fn gzip_bomb_within_the_limits(dir: &Path) -> Hostile {
    // 256 MiB of zeros (about 250 KiB gzipped) under the default limits, in a layout whose
    // manifest is missing: read through as a stream, then refused for the missing blob.
    let path = archive_path(dir);
    let mut out = gzip_file(&path);
    let manifest = layout_members(&mut out, dir, false);
    zeros(&mut out, "padding", 256 * MIB);
    end(&mut out);
    out.finish().unwrap();
    Hostile::oci(&path, &[&manifest, "missing"])
}

pub fn gzip_bomb_as_a_blob(dir: &Path) -> Hostile {
    // The manifest's blob member holds 128 MiB of zeros: streamed into staging, verified,
    // refused by digest, and the staged copy removed.
    let path = archive_path(dir);
    let mut out = gzip_file(&path);
    let manifest = layout_members(&mut out, dir, false);
    zeros(
        &mut out,
        &format!("blobs/sha256/{}", &manifest[7..]),
        128 * MIB,
    );
    end(&mut out);
    out.finish().unwrap();
    Hostile::oci(&path, &[&manifest])
}

pub fn zstd_bomb(dir: &Path) -> Hostile {
    // 1 GiB of zeros in zstd (about 40 KiB): an oci-archive is a plain or gzip tar, so this is
    // refused as unreadable without being inflated.
    let path = dir.join("bomb.tar.zst");
    let mut out = zstd::Encoder::new(std::fs::File::create(&path).unwrap(), 1).unwrap();
    layout_members(&mut out, dir, true);
    zeros(&mut out, "padding", 1024 * MIB);
    end(&mut out);
    out.finish().unwrap();
    Hostile::oci(&path, &["bomb.tar.zst"])
}

// ---- ACIs ----

/// An ACI with no manifest and one file of `size` zeros, written through `compress`.
fn aci_without_manifest(out: &mut impl Write, size: u64) {
    out.write_all(&header("rootfs/", tar::EntryType::Directory, 0))
        .unwrap();
    zeros(out, "rootfs/zeros", size);
    end(out);
}

pub fn aci_gzip_bomb(dir: &Path) -> Hostile {
    let path = dir.join("bomb.aci");
    let mut out = gzip_file(&path);
    aci_without_manifest(&mut out, 128 * MIB);
    out.finish().unwrap();
    Hostile::aci(&path, &["archive.manifest-missing"])
}

pub fn aci_bzip2_bomb(dir: &Path) -> Hostile {
    let path = dir.join("bomb.aci");
    let mut out = bzip2::write::BzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        bzip2::Compression::best(),
    );
    aci_without_manifest(&mut out, 128 * MIB);
    out.finish().unwrap();
    Hostile::aci(&path, &["archive.manifest-missing"])
}

pub fn aci_xz_bomb(dir: &Path) -> Hostile {
    let path = dir.join("bomb.aci");
    let mut out = liblzma::write::XzEncoder::new(std::fs::File::create(&path).unwrap(), 6);
    aci_without_manifest(&mut out, 128 * MIB);
    out.finish().unwrap();
    Hostile::aci(&path, &["archive.manifest-missing"])
}

pub fn aci_xz_bomb_after_an_invalid_manifest(dir: &Path) -> Hostile {
    // The manifest, first, breaks a rule; 256 MiB of zeros follow (about 40 KiB of xz).
    let path = dir.join("bomb.aci");
    let mut out = liblzma::write::XzEncoder::new(std::fs::File::create(&path).unwrap(), 6);
    let mut bad = manifest("example.com/bomb");
    bad["name"] = serde_json::json!("Not An Identifier");
    member(&mut out, "manifest", &serde_json::to_vec(&bad).unwrap());
    out.write_all(&header("rootfs/", tar::EntryType::Directory, 0))
        .unwrap();
    zeros(&mut out, "rootfs/zeros", 256 * MIB);
    end(&mut out);
    out.finish().unwrap();
    Hostile::aci(&path, &["manifest.name"])
}
