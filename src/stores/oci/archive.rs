//! Image archives: a tar (plain, gzip or zstd, told apart by magic) of an image layout
//! (`oci-archive`), a Docker 25 `docker save` archive (the same layout plus the legacy entries),
//! or a legacy Docker archive (`manifest.json`; converted by [`super::docker_archive`]), read
//! member by member once, from a file or a pipe, and never extracted.
//!
//! - Regular members named `blobs/<alg>/<hex>` (or the pre-1.0 `blobs/<alg>-<hex>`) are handed
//!   to a sink as they are read, with the digest their name gives and the size their header
//!   gives: the import streams them straight into the store, verified as they stream.
//! - `oci-layout`, `index.json` and pre-1.0 `refs/<name>` are kept in memory (at most
//!   [`MAX_DOCUMENT_SIZE`] each); a second copy of one is refused, since which one counts would
//!   otherwise be a guess.
//! - `manifest.json` (the Docker archive's) is kept in memory like `index.json`; `repositories`
//!   (the older Docker name list, which `manifest.json` repeats) and directories are skipped.
//! - Every other regular member is handed to the sink too, with no digest to expect: the
//!   import stages it and the store computes its digest. Members come in any order and a pipe
//!   cannot be read twice, so a legacy archive's configs and layers are in the store (verified
//!   later, against their names and diff IDs) before `manifest.json`, which names them, may
//!   have been read; what nothing names is let go of at the end.
//! - A symbolic link is recorded, never followed here: only one among the legacy entries
//!   (not `blobs/`, `index.json`, `oci-layout`, `refs/`, `manifest.json`), whose target,
//!   taken from the link's own directory, stays inside the archive. It is only ever resolved
//!   to another member of the same archive, by name ([`ArchiveContents::resolve`]); an
//!   archive without `manifest.json` (an image layout alone) has no use for one and is refused
//!   when it has one. Hard links,
//!   devices, FIFOs and other special entries are refused with an error naming the member, as
//!   are absolute paths and `..`: nothing is ever created from a member, so no path is ever
//!   resolved on the file system, and a hard link is never copied.
//! - The number of entries and the bytes they declare are bounded ([`ArchiveLimits`]), and so
//!   are extended headers (GNU long names, PAX headers): the tar stream is read through the
//!   store's one bounded tar reader ([`bounded_archive`]), which refuses one over its limit
//!   before reading it. Messages quote member names short ([`short_name`]).

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::error::{OciError, OciResult};
use super::graph::MAX_DOCUMENT_SIZE;
use super::layout::{
    check_layout_file, parse_index_entries, parse_ref_file, read_to_limit, LayoutEntry,
    ReadLimitError, BLOBS_DIR, INDEX_FILE, LAYOUT_FILE, PRE_1_0_REFS_DIR,
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

/// A regular member that is not named by digest (a legacy Docker archive's config or layer,
/// or anything else), as the store computed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveMember {
    pub digest: Digest,
    pub size: u64,
}

/// The Docker archive's list of images.
pub const DOCKER_MANIFEST_FILE: &str = "manifest.json";
/// The older Docker archive's list of names, which `manifest.json` repeats: skipped.
pub const DOCKER_REPOSITORIES_FILE: &str = "repositories";
/// Most symbolic links followed from one name.
const MAX_LINK_HOPS: usize = 16;

/// What an archive holds, once read.
#[derive(Debug, Default)]
pub struct ArchiveContents {
    pub layout_file: Option<Vec<u8>>,
    pub index: Option<Vec<u8>>,
    /// Pre-1.0 `refs/<name>` files.
    pub refs: Vec<(String, Vec<u8>)>,
    pub blobs: HashMap<Digest, ArchiveBlob>,
    /// A Docker archive's `manifest.json`.
    pub docker_manifest: Option<Vec<u8>>,
    /// Other regular members, by normalised name.
    pub members: HashMap<String, ArchiveMember>,
    /// Symbolic links among the legacy entries: name to target, both normalised names of
    /// members, the target taken from the link's directory and known to stay inside.
    pub links: HashMap<String, String>,
}

/// Why a name in an archive does not lead to a member.
#[derive(Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// Nothing of that name (or a link leads to nothing).
    Missing { name: String },
    /// Links lead in a circle or too far.
    TooManyLinks,
    /// Not a normalised relative name (absolute, `..`).
    Unsafe,
}

impl ArchiveContents {
    /// The regular member that `name` (as a legacy `manifest.json` gives it) is, following
    /// symbolic links among the archive's own members only: its digest and size.
    pub fn resolve(&self, name: &str) -> Result<ArchiveMember, ResolveError> {
        let mut name = safe_relative(Path::new(name))
            .and_then(|path| path.to_str().map(str::to_string))
            .ok_or(ResolveError::Unsafe)?;
        for _ in 0..=MAX_LINK_HOPS {
            if let Member::Blob(digest) = member_kind(&name) {
                if let Some(blob) = self.blobs.get(&digest) {
                    return Ok(ArchiveMember {
                        digest,
                        size: blob.size,
                    });
                }
            }
            if let Some(member) = self.members.get(&name) {
                return Ok(member.clone());
            }
            match self.links.get(&name) {
                Some(target) => name = target.clone(),
                None => return Err(ResolveError::Missing { name }),
            }
        }
        Err(ResolveError::TooManyLinks)
    }
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

/// A member handed to the sink: its digest when its name gives one (`blobs/<alg>/<hex>`), its
/// size (from its header) and its normalised name.
pub struct SinkMember<'m> {
    pub expected: Option<&'m Digest>,
    pub size: u64,
    pub name: &'m str,
}

/// Receives each blob member and each other regular member as it is read, with its content,
/// to be read to the end or not at all (only when its digest is known). Returns the digest
/// of what it stored.
pub type BlobSink<'a> = dyn FnMut(&SinkMember<'_>, &mut dyn Read) -> OciResult<Digest> + 'a;

/// Reads the archive `input` (named `archive` in messages: a path, or what stands for
/// standard input) once, member by member, handing blob and other regular members to `sink`.
pub fn read_archive(
    archive: &Path,
    input: impl Read,
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
    let mut input = input;
    let reader = decompressed(&mut input).map_err(corrupt)?;
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
            EntryType::Symlink => {}
            EntryType::Link => {
                return Err(refuse(
                    "hard links are not read from archives (neither an image layout nor a \
                     Docker archive needs one)"
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
        if entry_type == EntryType::Symlink {
            let target = entry.link_name().map_err(corrupt)?.unwrap_or_default();
            let target = link_target(name, &target).map_err(refuse)?;
            if contents.links.contains_key(name) || contents.members.contains_key(name) {
                return Err(refuse(format!("a second {name} in the archive")));
            }
            contents.links.insert(name.to_string(), target);
            continue;
        }
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
                let member = SinkMember {
                    expected: Some(&digest),
                    size,
                    name,
                };
                sink(&member, &mut entry)?;
                contents.blobs.insert(
                    digest,
                    ArchiveBlob {
                        member: name.to_string(),
                        size,
                    },
                );
            }
            Member::DockerManifest => keep_once(
                &mut contents.docker_manifest,
                &mut entry,
                name,
                &refuse,
                &corrupt,
            )?,
            Member::Skipped => {}
            Member::Other => {
                if contents.links.contains_key(name) || contents.members.contains_key(name) {
                    return Err(refuse(format!("a second {name} in the archive")));
                }
                let member = SinkMember {
                    expected: None,
                    size,
                    name,
                };
                let digest = sink(&member, &mut entry)?;
                contents
                    .members
                    .insert(name.to_string(), ArchiveMember { digest, size });
            }
        }
    }
    read_to_the_end(tar.into_inner().into_inner()).map_err(corrupt)?;
    // Members come in any order: only at the end is it known whether links were among a
    // Docker archive's legacy entries. An image layout alone needs none.
    if contents.docker_manifest.is_none() {
        if let Some(name) = contents.links.keys().min() {
            return Err(OciError::UnsafeArchiveEntry {
                archive: archive.to_path_buf(),
                entry: short_name(name.as_bytes()),
                reason: format!(
                    "symbolic links are only read among a Docker archive's legacy entries, and \
                     this archive has no {DOCKER_MANIFEST_FILE} (an image layout needs none)"
                ),
            });
        }
    }
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
/// only, as `docker save | gzip` writes one), decoded when it starts with the zstd magic
/// (`docker save | zstd`), read as it is otherwise.
/// A read error here is the archive's, like one met later in the tar stream.
fn decompressed<'f>(input: &'f mut dyn Read) -> std::io::Result<Box<dyn Read + 'f>> {
    let (_, stream) = open_by_magic(
        BufReader::with_capacity(1 << 16, input),
        &[Compression::Gzip, Compression::Zstd],
        GzipMembers::First,
    )?;
    Ok(stream)
}

/// The member a symbolic link named `name` points to, as a normalised name: `target` taken
/// from the link's directory. Refused (the reason returned) when the link is not among the
/// legacy entries, or its target is absolute or climbs out of the archive.
fn link_target(name: &str, target: &Path) -> Result<String, String> {
    if !matches!(member_kind(name), Member::Other) {
        return Err(
            "symbolic links are only read among a Docker archive's legacy entries, never where \
             an image layout or manifest.json belongs"
                .to_string(),
        );
    }
    let outside = || {
        format!(
            "symbolic link to {:?} leads outside the archive: a link is only ever resolved to \
             another member of the same archive",
            short_name(target.as_os_str().as_bytes())
        )
    };
    let mut resolved: Vec<String> = name.split('/').map(str::to_string).collect();
    resolved.pop();
    for component in target.components() {
        match component {
            Component::Normal(part) => {
                resolved.push(part.to_str().ok_or_else(outside)?.to_string());
            }
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop().ok_or_else(outside)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    if resolved.is_empty() {
        return Err(outside());
    }
    Ok(resolved.join("/"))
}

enum Member<'n> {
    LayoutFile,
    Index,
    Ref(&'n str),
    Blob(Digest),
    DockerManifest,
    /// Read past: `repositories`, and what under `blobs/` or `refs/` is not a layout member.
    Skipped,
    Other,
}

/// What a member's (normalised, relative) name makes it.
fn member_kind(name: &str) -> Member<'_> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [LAYOUT_FILE] => Member::LayoutFile,
        [INDEX_FILE] => Member::Index,
        [DOCKER_MANIFEST_FILE] => Member::DockerManifest,
        [DOCKER_REPOSITORIES_FILE] => Member::Skipped,
        [PRE_1_0_REFS_DIR, ref_name] => Member::Ref(ref_name),
        // What does not parse as a digest under `blobs/` is no member of the layout, but
        // not a legacy entry either: skipped, as before there were legacy entries.
        [BLOBS_DIR, algorithm, hex] => {
            Digest::parse(&format!("{algorithm}:{hex}")).map_or(Member::Skipped, Member::Blob)
        }
        // Pre-1.0 `blobs/sha256-<hex>`.
        [BLOBS_DIR, dashed] if dashed.contains('-') => {
            Digest::parse(dashed).map_or(Member::Skipped, Member::Blob)
        }
        [BLOBS_DIR | PRE_1_0_REFS_DIR, ..] => Member::Skipped,
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
        assert!(matches!(member_kind("blobs/sha256/short"), Member::Skipped));
        assert!(matches!(member_kind("blobs/md5/abc"), Member::Skipped));
        assert!(matches!(member_kind("refs/a/b"), Member::Skipped));
        assert!(matches!(
            member_kind("manifest.json"),
            Member::DockerManifest
        ));
        assert!(matches!(member_kind("abc/layer.tar"), Member::Other));
        assert!(matches!(member_kind("other/index.json"), Member::Other));
    }

    #[test]
    fn link_targets_stay_inside_and_among_legacy_entries() {
        let hex = "b".repeat(64);
        assert_eq!(
            link_target(
                "abc/layer.tar",
                Path::new(&format!("../blobs/sha256/{hex}"))
            )
            .unwrap(),
            format!("blobs/sha256/{hex}")
        );
        assert_eq!(
            link_target("abc/layer.tar", Path::new("./x.tar")).unwrap(),
            "abc/x.tar"
        );
        assert!(link_target("abc/layer.tar", Path::new("../../etc/passwd")).is_err());
        assert!(link_target("abc/layer.tar", Path::new("/etc/passwd")).is_err());
        assert!(link_target("abc/layer.tar", Path::new("..")).is_err());
        assert!(link_target("index.json", Path::new("x")).is_err());
        assert!(link_target(&format!("blobs/sha256/{hex}"), Path::new("x")).is_err());
        assert!(link_target("manifest.json", Path::new("x")).is_err());
    }

    #[test]
    fn names_resolve_through_links_to_members_only() {
        let digest = Digest::parse(&format!("sha256:{}", "c".repeat(64))).unwrap();
        let mut contents = ArchiveContents::default();
        contents.members.insert(
            "c.tar".to_string(),
            ArchiveMember {
                digest: digest.clone(),
                size: 3,
            },
        );
        contents
            .links
            .insert("id/layer.tar".to_string(), "c.tar".to_string());
        contents
            .links
            .insert("loop/a".to_string(), "loop/a".to_string());
        assert_eq!(contents.resolve("./id/layer.tar").unwrap().digest, digest);
        assert_eq!(contents.resolve("loop/a"), Err(ResolveError::TooManyLinks));
        assert!(matches!(
            contents.resolve("missing"),
            Err(ResolveError::Missing { .. })
        ));
        assert_eq!(contents.resolve("../c.tar"), Err(ResolveError::Unsafe));
    }
}
