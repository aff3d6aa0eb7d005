//! Bad `oci-archive`s: broken framing and compression, traversal, links, devices and FIFOs as
//! tar entries, duplicate and oversized layout files, wrong blob content and names, long-name
//! and PAX tricks, and other compressions than the two an oci-archive may have.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_store::stores::oci::MAX_DOCUMENT_SIZE;
use oci_store::traits::{Algorithm, Digest};

use super::layouts::{blob_file, digest_of, read_json, valid};
use super::{Hostile, RawTar};

/// A tar of a valid one-image layout, plus whatever `add` appends.
fn archive_with(dir: &Path, add: impl FnOnce(&mut RawTar, &Path)) -> Vec<u8> {
    let (layout, _) = valid(dir);
    let mut tar = RawTar::new();
    tar.layout(&layout);
    add(&mut tar, &layout);
    tar.finish()
}

fn write(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("image.tar");
    std::fs::write(&path, bytes).expect("writing the archive");
    path
}

fn refused_member(dir: &Path, member: &str, kind: tar::EntryType, link: Option<&str>) -> Hostile {
    let bytes = archive_with(dir, |tar, _| tar.member(member, kind, link, b""));
    Hostile::oci(write(dir, &bytes), &[member, "refused"])
}

/// A one-image layout tarred by hand, each file under `name_of(relative path)`.
fn renamed(dir: &Path, name_of: impl Fn(&str) -> String) -> Vec<u8> {
    let (layout, _) = valid(dir);
    let mut files = Vec::new();
    for entry in walk(&layout) {
        files.push(entry);
    }
    files.sort();
    let mut tar = RawTar::new();
    for relative in files {
        let bytes = std::fs::read(layout.join(&relative)).unwrap();
        tar.file(&name_of(&relative), &bytes);
    }
    tar.finish()
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
    }
    out
}

// ---- framing and compression ----

pub fn not_a_tar(dir: &Path) -> Hostile {
    let path = write(dir, &b"definitely not a tar archive\n".repeat(40));
    Hostile::oci(&path, &["image.tar"])
}

pub fn truncated_tar(dir: &Path) -> Hostile {
    let bytes = archive_with(dir, |_, _| {});
    let path = write(dir, &bytes[..bytes.len() / 2 + 100]);
    Hostile::oci(&path, &["image.tar"])
}

pub fn truncated_gzip(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let mut tar = RawTar::new();
    tar.layout(&layout);
    let bytes = tar.finish_gzip();
    let path = write(dir, &bytes[..bytes.len() * 2 / 3]);
    Hostile::oci(&path, &["image.tar", "deflate"])
}

pub fn gzip_bad_crc(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let mut tar = RawTar::new();
    tar.layout(&layout);
    let mut bytes = tar.finish_gzip();
    let crc = bytes.len() - 8;
    bytes[crc] ^= 0xff;
    let path = write(dir, &bytes);
    Hostile::oci(&path, &["image.tar", "corrupt"])
}

pub fn bad_header_checksum(dir: &Path) -> Hostile {
    let mut bytes = archive_with(dir, |_, _| {});
    bytes[148..156].copy_from_slice(b"0000000\0");
    let path = write(dir, &bytes);
    Hostile::oci(&path, &["image.tar", "corrupt"])
}

/// A zstd archive (read since issue 21) cut short: the decoder's error, naming the archive.
pub fn truncated_zstd(dir: &Path) -> Hostile {
    let bytes = zstd::encode_all(&archive_with(dir, |_, _| {})[..], 3).unwrap();
    Hostile::oci(write(dir, &bytes[..bytes.len() * 2 / 3]), &["image.tar"])
}

pub fn xz_compressed(dir: &Path) -> Hostile {
    let tar = archive_with(dir, |_, _| {});
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 6);
    encoder.write_all(&tar).unwrap();
    Hostile::oci(write(dir, &encoder.finish().unwrap()), &["image.tar"])
}

pub fn empty_archive(dir: &Path) -> Hostile {
    Hostile::oci(write(dir, &[0u8; 1024]), &["image.tar", "no layout"])
}

// ---- traversal ----

pub fn dot_dot_member(dir: &Path) -> Hostile {
    let bytes = archive_with(dir, |tar, _| tar.file("../../escaped", b"x"));
    Hostile::oci(write(dir, &bytes), &["../../escaped", "'..'"])
}

pub fn absolute_member(dir: &Path) -> Hostile {
    let bytes = archive_with(dir, |tar, _| tar.file("/tmp/escaped", b"x"));
    Hostile::oci(write(dir, &bytes), &["/tmp/escaped", "absolute"])
}

pub fn blob_member_with_dot_dot(dir: &Path) -> Hostile {
    let bytes = renamed(dir, |name| {
        name.replace("blobs/sha256/", "blobs/sha256/../../../")
    });
    Hostile::oci(write(dir, &bytes), &["../../../", "'..'"])
}

pub fn gnu_long_name_traversal(dir: &Path) -> Hostile {
    let bytes = archive_with(dir, |tar, _| {
        tar.member(
            "././@LongLink",
            tar::EntryType::GNULongName,
            None,
            b"../../long-escape\0",
        );
        tar.file("placeholder", b"x");
    });
    Hostile::oci(write(dir, &bytes), &["long-escape", "'..'"])
}

pub fn pax_path_traversal(dir: &Path) -> Hostile {
    let record = "path=../../pax-escape\n";
    let line = format!("{} {record}", record.len() + 3);
    let bytes = archive_with(dir, |tar, _| {
        tar.member("pax-header", tar::EntryType::XHeader, None, line.as_bytes());
        tar.file("placeholder", b"x");
    });
    Hostile::oci(write(dir, &bytes), &["pax-escape", "'..'"])
}

// ---- links, devices, FIFOs as entries ----

pub fn symlink_to_etc_passwd(dir: &Path) -> Hostile {
    refused_member(
        dir,
        "blobs/sha256/link",
        tar::EntryType::Symlink,
        Some("/etc/passwd"),
    )
}

pub fn symlink_blobs_dir(dir: &Path) -> Hostile {
    // `blobs` a link out, then a blob "inside" it: refused at the link, nothing followed.
    let (layout, manifest) = valid(dir);
    let mut tar = RawTar::new();
    tar.member("blobs", tar::EntryType::Symlink, Some("/tmp"), b"");
    let digest = digest_of(&manifest);
    tar.file(
        &format!("blobs/sha256/{}", &digest[7..]),
        &std::fs::read(blob_file(&layout, &digest)).unwrap(),
    );
    tar.file(
        "index.json",
        &std::fs::read(layout.join("index.json")).unwrap(),
    );
    Hostile::oci(write(dir, &tar.finish()), &["blobs", "symbolic links"])
}

pub fn hard_link_to_etc_passwd(dir: &Path) -> Hostile {
    refused_member(
        dir,
        "blobs/sha256/hard",
        tar::EntryType::Link,
        Some("/etc/passwd"),
    )
}

pub fn hard_link_to_a_blob(dir: &Path) -> Hostile {
    let (_, manifest) = valid(&dir.join("probe"));
    let target = format!("blobs/sha256/{}", &digest_of(&manifest)[7..]);
    refused_member(
        dir,
        "blobs/sha256/copy",
        tar::EntryType::Link,
        Some(&target),
    )
}

pub fn char_device_entry(dir: &Path) -> Hostile {
    refused_member(dir, "dev/zero", tar::EntryType::Char, None)
}

pub fn block_device_entry(dir: &Path) -> Hostile {
    refused_member(dir, "dev/sda", tar::EntryType::Block, None)
}

pub fn fifo_entry(dir: &Path) -> Hostile {
    refused_member(dir, "index.json.fifo", tar::EntryType::Fifo, None)
}

pub fn fifo_as_index(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let mut tar = RawTar::new();
    tar.file(
        "oci-layout",
        &std::fs::read(layout.join("oci-layout")).unwrap(),
    );
    tar.member("index.json", tar::EntryType::Fifo, None, b"");
    Hostile::oci(write(dir, &tar.finish()), &["index.json", "refused"])
}

pub fn sparse_entry_without_its_map(dir: &Path) -> Hostile {
    let bytes = archive_with(dir, |tar, _| {
        tar.member("sparse-file", tar::EntryType::GNUSparse, None, b"");
    });
    Hostile::oci(write(dir, &bytes), &["image.tar", "corrupt"])
}

pub fn unknown_entry_type(dir: &Path) -> Hostile {
    refused_member(dir, "odd-entry", tar::EntryType::new(b'Z'), None)
}

pub fn junk_after_the_end(dir: &Path) -> Hostile {
    // 2 MiB after the tar's end-of-archive blocks (gzipped, a few KiB): a tar writer pads to
    // its record size, never this much.
    let (layout, _) = valid(dir);
    let mut tar = RawTar::new();
    tar.layout(&layout);
    let mut bytes = tar.finish();
    bytes.extend(std::iter::repeat_n(0x5a, 2 << 20));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&bytes).unwrap();
    let path = write(dir, &encoder.finish().unwrap());
    Hostile::oci(&path, &["image.tar", "follow the end"])
}

// ---- layout files ----

pub fn index_twice(dir: &Path) -> Hostile {
    let bytes = archive_with(dir, |tar, layout| {
        tar.file(
            "index.json",
            &std::fs::read(layout.join("index.json")).unwrap(),
        );
    });
    Hostile::oci(write(dir, &bytes), &["index.json", "second"])
}

pub fn index_over_the_limit(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let mut index = read_json(&layout.join("index.json"));
    index["annotations"] = serde_json::json!({"pad": "x".repeat(MAX_DOCUMENT_SIZE as usize)});
    let mut tar = RawTar::new();
    tar.file(
        "oci-layout",
        &std::fs::read(layout.join("oci-layout")).unwrap(),
    );
    tar.file("index.json", &serde_json::to_vec(&index).unwrap());
    Hostile::oci(write(dir, &tar.finish()), &["index.json"])
}

pub fn index_without_oci_layout(dir: &Path) -> Hostile {
    let bytes = renamed(dir, |name| {
        if name == "oci-layout" {
            "not-oci-layout".to_string()
        } else {
            name.to_string()
        }
    });
    Hostile::oci(write(dir, &bytes), &["oci-layout"])
}

pub fn index_not_json(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let mut tar = RawTar::new();
    tar.file(
        "oci-layout",
        &std::fs::read(layout.join("oci-layout")).unwrap(),
    );
    tar.file("index.json", b"{\"manifests\": [ ");
    Hostile::oci(write(dir, &tar.finish()), &["index.json", "malformed"])
}

// ---- blob members ----

pub fn blob_member_wrong_content(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let digest = digest_of(&manifest);
    let mut tar = RawTar::new();
    for name in ["oci-layout", "index.json"] {
        tar.file(name, &std::fs::read(layout.join(name)).unwrap());
    }
    let mut bytes = std::fs::read(blob_file(&layout, &digest)).unwrap();
    bytes[0] ^= 0x20;
    tar.file(&format!("blobs/sha256/{}", &digest[7..]), &bytes);
    Hostile::oci(write(dir, &tar.finish()), &[&digest])
}

pub fn blob_member_uppercase_name(dir: &Path) -> Hostile {
    // Blob members under a name that is not a digest are not blobs: the manifest is missing.
    let (_, manifest) = valid(&dir.join("probe"));
    let bytes = renamed(dir, |name| match name.strip_prefix("blobs/sha256/") {
        Some(hex) => format!("blobs/sha256/{}", hex.to_uppercase()),
        None => name.to_string(),
    });
    Hostile::oci(write(dir, &bytes), &[&digest_of(&manifest), "missing"])
}

pub fn blob_member_unknown_algorithm(dir: &Path) -> Hostile {
    let (_, manifest) = valid(&dir.join("probe"));
    let bytes = renamed(dir, |name| name.replace("blobs/sha256/", "blobs/md5/"));
    Hostile::oci(write(dir, &bytes), &[&digest_of(&manifest), "missing"])
}

pub fn blob_member_declares_a_terabyte(dir: &Path) -> Hostile {
    // A header that claims 2 TiB of content: refused on the header, nothing read.
    let mut bytes = archive_with(dir, |tar, _| tar.file("blobs/sha256/huge", b""));
    let header = bytes
        .chunks(512)
        .position(|block| block.starts_with(b"blobs/sha256/huge"))
        .unwrap()
        * 512;
    let mut header_bytes = tar::Header::new_gnu();
    header_bytes
        .as_mut_bytes()
        .copy_from_slice(&bytes[header..header + 512]);
    header_bytes.set_size(2 << 40);
    header_bytes.set_cksum();
    bytes[header..header + 512].copy_from_slice(header_bytes.as_bytes());
    Hostile::oci(
        write(dir, &bytes),
        &["image.tar", "bytes of content", "--max-archive-bytes"],
    )
}

pub fn blob_of_other_digest(dir: &Path) -> Hostile {
    // A blob stored under the digest of other content, named by nothing: still verified.
    let fake = Digest::of_bytes(Algorithm::Sha256, b"other").to_string();
    let bytes = archive_with(dir, |tar, _| {
        tar.file(
            &format!("blobs/sha256/{}", &fake[7..]),
            b"not the content it names",
        );
    });
    Hostile::oci(write(dir, &bytes), &[&fake])
}
