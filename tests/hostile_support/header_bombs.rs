//! Tar header bombs (issue 16): extended headers whose bodies a tar reader would hold whole in
//! memory (GNU long names and long links, PAX extended and global headers) declaring 128 MiB,
//! and a GNU sparse map of 128 MiB of extension blocks (which the tar crate turns into a list
//! of regions). Each is about 130 KiB of gzip. One of each in an `oci-archive` (`import`), in
//! an ACI (`appc import`) and in a layer (imported unread, refused by `unpack`): every tar
//! reader must refuse them on their header, so the CLI stays under [`HEADER_BOMB_MAX_RSS_KIB`].

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_store::stores::oci::layout_builder::LayoutBuilder;

use super::acis::manifest;
use super::bombs::gnu_header;
use super::layouts::valid;
use super::{Hostile, RawTar};

const MIB: u64 = 1 << 20;
/// What each bomb's extended header declares.
const BOMB_SIZE: u64 = 128 * MIB;
/// Peak RSS the CLI may reach refusing one (the bound).
pub const HEADER_BOMB_MAX_RSS_KIB: i64 = 64 * 1024;
/// The ref the layer bombs' images are imported under.
pub const LAYER_BOMB_REF: &str = "header-bomb:1";

#[derive(Clone, Copy)]
enum Extended {
    LongName,
    LongLink,
    Pax,
    PaxGlobal,
    SparseMap,
}

impl Extended {
    /// What the refusal must name: the kind of header and its limit.
    fn names(self) -> [&'static str; 2] {
        match self {
            Extended::LongName => ["GNU long name", "4096"],
            Extended::LongLink => ["GNU long link", "4096"],
            Extended::Pax => ["PAX extended header", "16384"],
            Extended::PaxGlobal => ["PAX global header", "16384"],
            Extended::SparseMap => ["GNU sparse map", "512 extension blocks"],
        }
    }
}

fn write_header(out: &mut impl Write, mut header: tar::Header) {
    header.set_cksum();
    out.write_all(header.as_bytes()).unwrap();
}

/// Writes `size` bytes of `byte`, then `last`, in chunks: never held whole in memory.
fn body(out: &mut impl Write, prefix: &[u8], byte: u8, size: u64, last: u8) {
    out.write_all(prefix).unwrap();
    let chunk = vec![byte; MIB as usize];
    let mut left = size - prefix.len() as u64 - 1;
    while left > 0 {
        let n = left.min(MIB);
        out.write_all(&chunk[..n as usize]).unwrap();
        left -= n;
    }
    out.write_all(&[last]).unwrap();
    out.write_all(&vec![0u8; ((512 - size % 512) % 512) as usize])
        .unwrap();
}

/// A PAX record `<length> <key>=<value>\n` of `size` bytes in all, value all `a`.
fn pax_record(out: &mut impl Write, key: &str, size: u64) {
    let prefix = format!("{size} {key}=");
    body(out, prefix.as_bytes(), b'a', size, b'\n');
}

/// The bomb, then the member it describes (named `member`, a file or, after a long link, a
/// symlink to `target`).
fn bomb(out: &mut impl Write, kind: Extended, member: &str, target: &str) {
    match kind {
        Extended::LongName => {
            write_header(
                out,
                gnu_header("././@LongLink", tar::EntryType::GNULongName, BOMB_SIZE),
            );
            let prefix = format!("{member}/");
            body(out, prefix.as_bytes(), b'a', BOMB_SIZE, 0);
        }
        Extended::LongLink => {
            write_header(
                out,
                gnu_header("././@LongLink", tar::EntryType::GNULongLink, BOMB_SIZE),
            );
            body(out, target.as_bytes(), b'a', BOMB_SIZE, 0);
        }
        Extended::Pax => {
            write_header(
                out,
                gnu_header("PaxHeaders/bomb", tar::EntryType::XHeader, BOMB_SIZE),
            );
            pax_record(out, "path", BOMB_SIZE);
        }
        Extended::PaxGlobal => {
            write_header(
                out,
                gnu_header("GlobalHead.0.0", tar::EntryType::XGlobalHeader, BOMB_SIZE),
            );
            pax_record(out, "comment", BOMB_SIZE);
        }
        Extended::SparseMap => {
            // A sparse file of no data whose map goes on for 128 MiB of extension blocks,
            // every region empty (the tar crate keeps one record per region).
            let mut sparse = gnu_header(member, tar::EntryType::GNUSparse, 0);
            let gnu = sparse.as_gnu_mut().unwrap();
            gnu.set_is_extended(true);
            gnu.set_real_size(0);
            write_header(out, sparse);
            let blocks = BOMB_SIZE / 512;
            let mut extension = tar::GnuExtSparseHeader::new();
            for region in &mut extension.sparse {
                region.set_offset(0);
                region.set_length(0);
            }
            for block in 0..blocks {
                extension.set_is_extended(block + 1 < blocks);
                out.write_all(extension.as_bytes()).unwrap();
            }
            return;
        }
    }
    let link = matches!(kind, Extended::LongLink);
    let mut entry = gnu_header(
        member,
        if link {
            tar::EntryType::Symlink
        } else {
            tar::EntryType::Regular
        },
        0,
    );
    if link {
        entry.set_link_name("short-target").unwrap();
    }
    write_header(out, entry);
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

/// An oci-archive of a valid layout with the bomb after its files.
fn in_archive(dir: &Path, kind: Extended) -> Hostile {
    let path = dir.join("bomb.tar.gz");
    let (layout, _) = valid(dir);
    let mut tar = RawTar::new();
    tar.layout(&layout);
    let mut bytes = tar.finish();
    bytes.truncate(bytes.len() - 1024);
    let mut out = gzip_file(&path);
    out.write_all(&bytes).unwrap();
    bomb(&mut out, kind, "extra", "target");
    end(&mut out);
    out.finish().unwrap();
    Hostile::oci(&path, &kind.names())
        .naming("bomb.tar.gz")
        .with_max_rss_kib(HEADER_BOMB_MAX_RSS_KIB)
}

/// An ACI whose first member is the bomb (the manifest and rootfs follow).
fn in_aci(dir: &Path, kind: Extended) -> Hostile {
    let path = dir.join("bomb.aci");
    let mut out = gzip_file(&path);
    bomb(&mut out, kind, "rootfs/extra", "rootfs/target");
    let mut tar = RawTar::new();
    tar.file(
        "manifest",
        &serde_json::to_vec(&manifest("example.com/header-bomb")).unwrap(),
    );
    tar.member("rootfs", tar::EntryType::Directory, None, b"");
    out.write_all(&tar.finish()).unwrap();
    out.finish().unwrap();
    Hostile::aci(&path, &kind.names())
        .naming("archive.tar-header-limit")
        .with_max_rss_kib(HEADER_BOMB_MAX_RSS_KIB)
}

/// A layout whose one image's layer holds the bomb: the import does not read layers, so it
/// is stored; `unpack` must refuse it.
fn in_layer(dir: &Path, kind: Extended) -> Hostile {
    let mut layer = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = RawTar::new();
    tar.file("etc/os-release", b"NAME=bomb\n");
    let bytes = tar.finish();
    layer.write_all(&bytes[..bytes.len() - 1024]).unwrap();
    bomb(&mut layer, kind, "extra", "target");
    end(&mut layer);
    let layer = layer.finish().unwrap();
    let layout: PathBuf = dir.join("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let image = builder.image("linux", "amd64", &[layer]).unwrap();
    builder.add_ref(Some(LAYER_BOMB_REF), &image);
    builder.finish().unwrap();
    Hostile::unpack(&layout, LAYER_BOMB_REF, &kind.names())
        .with_max_rss_kib(HEADER_BOMB_MAX_RSS_KIB)
}

pub fn archive_gnu_long_name_bomb(dir: &Path) -> Hostile {
    in_archive(dir, Extended::LongName)
}

pub fn archive_gnu_long_link_bomb(dir: &Path) -> Hostile {
    in_archive(dir, Extended::LongLink)
}

pub fn archive_pax_header_bomb(dir: &Path) -> Hostile {
    in_archive(dir, Extended::Pax)
}

pub fn archive_pax_global_header_bomb(dir: &Path) -> Hostile {
    in_archive(dir, Extended::PaxGlobal)
}

pub fn archive_gnu_sparse_map_bomb(dir: &Path) -> Hostile {
    in_archive(dir, Extended::SparseMap)
}

pub fn aci_gnu_long_name_bomb(dir: &Path) -> Hostile {
    in_aci(dir, Extended::LongName)
}

pub fn aci_gnu_long_link_bomb(dir: &Path) -> Hostile {
    in_aci(dir, Extended::LongLink)
}

pub fn aci_pax_header_bomb(dir: &Path) -> Hostile {
    in_aci(dir, Extended::Pax)
}

pub fn aci_pax_global_header_bomb(dir: &Path) -> Hostile {
    in_aci(dir, Extended::PaxGlobal)
}

pub fn aci_gnu_sparse_map_bomb(dir: &Path) -> Hostile {
    in_aci(dir, Extended::SparseMap)
}

pub fn layer_gnu_long_name_bomb(dir: &Path) -> Hostile {
    in_layer(dir, Extended::LongName)
}

pub fn layer_gnu_long_link_bomb(dir: &Path) -> Hostile {
    in_layer(dir, Extended::LongLink)
}

pub fn layer_pax_header_bomb(dir: &Path) -> Hostile {
    in_layer(dir, Extended::Pax)
}

pub fn layer_pax_global_header_bomb(dir: &Path) -> Hostile {
    in_layer(dir, Extended::PaxGlobal)
}

pub fn layer_gnu_sparse_map_bomb(dir: &Path) -> Hostile {
    in_layer(dir, Extended::SparseMap)
}
