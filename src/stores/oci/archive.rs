//! `oci-archive`: a tar (plain or gzip, told apart by magic) of an image layout, read member by
//! member once and never extracted.
//!
//! - Regular members named `blobs/<alg>/<hex>` (or the pre-1.0 `blobs/<alg>-<hex>`) are handed
//!   to a sink as they are read, with the digest their name gives and the size their header
//!   gives: the import streams them straight into the store, verified as they stream.
//! - `oci-layout`, `index.json` and pre-1.0 `refs/<name>` are kept in memory (at most
//!   [`MAX_DOCUMENT_SIZE`] each); a second copy of one is refused, since which one counts would
//!   otherwise be a guess.
//! - Directory entries and other regular members are skipped. Symbolic and hard links,
//!   devices, FIFOs and other special entries are refused with an error naming the member, as
//!   are absolute paths and `..`: nothing is ever created from a member, so no path is ever
//!   resolved through a link the archive made, and a hard link is never copied.
//! - The number of entries and the bytes they declare are bounded ([`ArchiveLimits`]), and so
//!   are extended headers (GNU long names, PAX headers): the tar stream is read through the
//!   store's one bounded tar reader ([`bounded_archive`]), which refuses one over its limit
//!   before reading it. Messages quote member names short ([`short_name`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::error::{OciError, OciResult};
use super::graph::MAX_DOCUMENT_SIZE;
use super::layout::{
    check_layout_file, open_regular, parse_index_entries, parse_ref_file, read_to_limit,
    LayoutEntry, ReadLimitError, BLOBS_DIR, INDEX_FILE, LAYOUT_FILE, PRE_1_0_REFS_DIR,
};
use crate::stores::rootfs::{bounded_archive, short_name, TarHeaderError};
use crate::traits::Digest;
use crate::util::compression::{open_by_magic, Compression, GzipMembers};

/// How much of an archive is read before it is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Tar entries of any kind (headers), directories included.
    pub max_entries: u64,
    /// Bytes of member content, as the headers declare them.
    pub max_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 1_000_000,
            max_bytes: 1 << 40,
        }
    }
}

/// A blob member that was read (and handed to the sink).
#[derive(Clone, Debug)]
pub struct ArchiveBlob {
    pub member: String,
    pub size: u64,
}

/// What an archive holds, once read.
#[derive(Debug, Default)]
pub struct ArchiveContents {
    pub layout_file: Option<Vec<u8>>,
    pub index: Option<Vec<u8>>,
    /// Pre-1.0 `refs/<name>` files.
    pub refs: Vec<(String, Vec<u8>)>,
    pub blobs: HashMap<Digest, ArchiveBlob>,
}

impl ArchiveContents {
    /// The layout's entries: from `index.json` (v1.x, which needs `oci-layout`) or from the
    /// pre-1.0 ref files.
    pub fn entries(&self, archive: &Path) -> OciResult<Vec<LayoutEntry>> {
        let member = |name: &str| format!("{}:{name}", archive.display());
        if let Some(index) = &self.index {
            let Some(layout_file) = &self.layout_file else {
                return Err(OciError::NotALayout {
                    path: archive.to_path_buf(),
                    reason: format!("the archive has {INDEX_FILE} but no {LAYOUT_FILE}"),
                });
            };
            check_layout_file(layout_file, &member(LAYOUT_FILE), archive)?;
            return parse_index_entries(index, &member(INDEX_FILE));
        }
        if self.refs.is_empty() {
            return Err(OciError::NotALayout {
                path: archive.to_path_buf(),
                reason: format!(
                    "the archive holds no layout: neither {INDEX_FILE} nor {PRE_1_0_REFS_DIR}/ \
                     files"
                ),
            });
        }
        let mut entries = self
            .refs
            .iter()
            .map(|(name, bytes)| {
                parse_ref_file(name, bytes, &member(&format!("{PRE_1_0_REFS_DIR}/{name}")))
            })
            .collect::<OciResult<Vec<_>>>()?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
}

/// Receives each blob member as it is read: its digest (from its name), its size (from its
/// header) and its content, to be read to the end or not at all.
pub type BlobSink<'a> = dyn FnMut(&Digest, u64, &str, &mut dyn Read) -> OciResult<()> + 'a;

/// Reads `archive` once, member by member, handing blob members to `sink`.
pub fn read_archive(
    archive: &Path,
    limits: &ArchiveLimits,
    sink: &mut BlobSink<'_>,
) -> OciResult<ArchiveContents> {
    let corrupt = |source: std::io::Error| match TarHeaderError::find(&source) {
        Some(refused) => OciError::TarHeaderLimit {
            archive: archive.to_path_buf(),
            source: refused.clone(),
        },
        None => OciError::CorruptArchive {
            path: archive.to_path_buf(),
            source,
        },
    };
    let mut file = open_regular(archive)?;
    let reader = decompressed(&mut file).map_err(corrupt)?;
    let mut tar = bounded_archive(reader);
    let mut contents = ArchiveContents::default();
    let (mut entries, mut bytes) = (0u64, 0u64);
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        entries += 1;
        if entries > limits.max_entries {
            return Err(OciError::ArchiveLimit {
                archive: archive.to_path_buf(),
                what: "entries",
                limit: limits.max_entries,
                flag: "--max-archive-entries",
                option: "max_archive_entries",
            });
        }
        let size = entry.header().entry_size().map_err(corrupt)?;
        bytes = bytes.saturating_add(size);
        if bytes > limits.max_bytes {
            return Err(OciError::ArchiveLimit {
                archive: archive.to_path_buf(),
                what: "bytes of content",
                limit: limits.max_bytes,
                flag: "--max-archive-bytes",
                option: "max_archive_bytes",
            });
        }
        let raw_path = entry.path().map_err(corrupt)?.into_owned();
        let refuse = |reason: String| OciError::UnsafeArchiveEntry {
            archive: archive.to_path_buf(),
            entry: short_name(raw_path.as_os_str().as_bytes()),
            reason,
        };
        let entry_type = entry.header().entry_type();
        match entry_type {
            // Extended headers; the tar reader applies what they say to the next entry.
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            EntryType::Directory | EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink => {
                return Err(refuse(
                    "symbolic links are not read from archives (an image layout needs none)"
                        .to_string(),
                ))
            }
            EntryType::Link => {
                return Err(refuse(
                    "hard links are not read from archives (an image layout needs none)"
                        .to_string(),
                ))
            }
            other => {
                return Err(refuse(format!(
                    "entry type {other:?} has no place in an image layout"
                )))
            }
        }
        let relative = safe_relative(&raw_path)
            .ok_or_else(|| refuse("absolute paths and '..' components are not allowed".into()))?;
        if entry_type == EntryType::Directory {
            continue;
        }
        let Some(name) = relative.to_str() else {
            continue;
        };
        match member_kind(name) {
            Member::LayoutFile => keep_once(
                &mut contents.layout_file,
                &mut entry,
                name,
                &refuse,
                &corrupt,
            )?,
            Member::Index => keep_once(&mut contents.index, &mut entry, name, &refuse, &corrupt)?,
            Member::Ref(ref_name) => {
                if contents.refs.iter().any(|(known, _)| known == ref_name) {
                    return Err(refuse(format!("a second {name} in the archive")));
                }
                let bytes = read_small(&mut entry, name, &refuse, &corrupt)?;
                contents.refs.push((ref_name.to_string(), bytes));
            }
            Member::Blob(digest) => {
                // A second copy of a blob adds nothing: the first was verified.
                if contents.blobs.contains_key(&digest) {
                    continue;
                }
                sink(&digest, size, name, &mut entry)?;
                contents.blobs.insert(
                    digest,
                    ArchiveBlob {
                        member: name.to_string(),
                        size,
                    },
                );
            }
            Member::Other => {}
        }
    }
    read_to_the_end(tar.into_inner().into_inner()).map_err(corrupt)?;
    Ok(contents)
}

/// Most bytes that may follow a tar's end-of-archive blocks: writers pad to their record size
/// (10 KiB by default, `tar -b` up to a few hundred KiB), never more.
pub const MAX_TRAILING_BYTES: u64 = 1 << 20;

/// Reads what follows the tar's end, so that a gzip archive's trailer (its CRC and length)
/// is checked: the tar reader stops at the end-of-archive blocks, and a corrupt archive must
/// not pass because the damage lies past them. More than [`MAX_TRAILING_BYTES`] there is not
/// padding: refused, without reading on.
fn read_to_the_end(rest: impl Read) -> std::io::Result<()> {
    let trailing = std::io::copy(&mut rest.take(MAX_TRAILING_BYTES + 1), &mut std::io::sink())?;
    if trailing > MAX_TRAILING_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("more than {MAX_TRAILING_BYTES} bytes follow the end of the tar"),
        ));
    }
    Ok(())
}

/// The archive's tar stream: gunzipped when it starts with the gzip magic (its first member
/// only, as `docker save | gzip` writes one), read as it is otherwise.
/// A read error here is the archive's, like one met later in the tar stream.
fn decompressed<'f>(file: &'f mut File) -> std::io::Result<Box<dyn Read + 'f>> {
    let (_, stream) = open_by_magic(
        BufReader::new(file),
        &[Compression::Gzip],
        GzipMembers::First,
    )?;
    Ok(stream)
}

enum Member<'n> {
    LayoutFile,
    Index,
    Ref(&'n str),
    Blob(Digest),
    Other,
}

/// What a member's (normalised, relative) name makes it.
fn member_kind(name: &str) -> Member<'_> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [LAYOUT_FILE] => Member::LayoutFile,
        [INDEX_FILE] => Member::Index,
        [PRE_1_0_REFS_DIR, ref_name] => Member::Ref(ref_name),
        [BLOBS_DIR, algorithm, hex] => {
            Digest::parse(&format!("{algorithm}:{hex}")).map_or(Member::Other, Member::Blob)
        }
        // Pre-1.0 `blobs/sha256-<hex>`.
        [BLOBS_DIR, dashed] if dashed.contains('-') => {
            Digest::parse(dashed).map_or(Member::Other, Member::Blob)
        }
        _ => Member::Other,
    }
}

fn keep_once(
    slot: &mut Option<Vec<u8>>,
    entry: &mut dyn Read,
    name: &str,
    refuse: &dyn Fn(String) -> OciError,
    corrupt: &dyn Fn(std::io::Error) -> OciError,
) -> OciResult<()> {
    if slot.is_some() {
        return Err(refuse(format!("a second {name} in the archive")));
    }
    *slot = Some(read_small(entry, name, refuse, corrupt)?);
    Ok(())
}

fn read_small(
    entry: &mut dyn Read,
    name: &str,
    refuse: &dyn Fn(String) -> OciError,
    corrupt: &dyn Fn(std::io::Error) -> OciError,
) -> OciResult<Vec<u8>> {
    read_to_limit(entry, MAX_DOCUMENT_SIZE).map_err(|error| match error {
        ReadLimitError::Io(e) => corrupt(e),
        ReadLimitError::TooLarge => {
            refuse(format!("{name} is larger than {MAX_DOCUMENT_SIZE} bytes"))
        }
    })
}

/// The path with `.` removed, or `None` if it is absolute or has `..`.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_paths_are_not_relative() {
        assert!(safe_relative(Path::new("../x")).is_none());
        assert!(safe_relative(Path::new("/x")).is_none());
        assert!(safe_relative(Path::new("a/../../x")).is_none());
        assert_eq!(
            safe_relative(Path::new("./a/b")).unwrap(),
            PathBuf::from("a/b")
        );
    }

    #[test]
    fn member_names_are_told_apart() {
        let hex = "a".repeat(64);
        assert!(matches!(member_kind("oci-layout"), Member::LayoutFile));
        assert!(matches!(member_kind("index.json"), Member::Index));
        assert!(matches!(member_kind("refs/v1"), Member::Ref("v1")));
        assert!(matches!(
            member_kind(&format!("blobs/sha256/{hex}")),
            Member::Blob(_)
        ));
        assert!(matches!(
            member_kind(&format!("blobs/sha256-{hex}")),
            Member::Blob(_)
        ));
        assert!(matches!(member_kind("blobs/sha256/short"), Member::Other));
        assert!(matches!(member_kind("blobs/md5/abc"), Member::Other));
        assert!(matches!(member_kind("refs/a/b"), Member::Other));
        assert!(matches!(member_kind("other/index.json"), Member::Other));
    }
}
