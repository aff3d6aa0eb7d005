//! Reading an ACI once: the compression is detected by magic bytes, the decompressed tar is
//! teed into the store writer (whose hash becomes the image ID) while its entries are checked
//! from the same stream, and the manifest is kept for validation. The tar is read through the
//! store's bounded tar reader ([`bounded_archive`]): an extended header over its limit is
//! refused (rule `archive.tar-header-limit`) before it is read. Messages quote names short.

use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};

use super::manifest::{ImageManifest, Violation, MAX_MANIFEST_SIZE};
use crate::stores::rootfs::{bounded_archive, short_name, short_str, TarHeaderError};
pub use crate::util::compression::Compression;
use crate::util::compression::{open_by_magic, GzipMembers};

/// What an ACI may be compressed with; other magic bytes are read as a plain tar.
const ACI_COMPRESSIONS: &[Compression] = &[Compression::Gzip, Compression::Bzip2, Compression::Xz];

/// The uncompressed tar stream of an ACI, whatever its compression. Multi-member readers:
/// `cat a.gz b.gz` is one valid gzip stream.
pub fn decompressed<'r>(input: impl Read + 'r) -> io::Result<(Compression, Box<dyn Read + 'r>)> {
    let buffered = BufReader::with_capacity(1 << 16, input);
    open_by_magic(buffered, ACI_COMPRESSIONS, GzipMembers::All)
}

/// Reads from `inner` and writes every byte read into `sink`; a sink failure is kept apart so
/// the caller can tell a store error from a corrupt input.
pub struct Tee<R, W> {
    inner: R,
    sink: W,
    pub sink_error: Option<io::Error>,
}

impl<R: Read, W: Write> Tee<R, W> {
    pub fn new(inner: R, sink: W) -> Self {
        Tee {
            inner,
            sink,
            sink_error: None,
        }
    }

    /// Reads the rest of the stream (trailing blocks after the tar's end are part of the image
    /// ID too) and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.sink)
    }
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Err(error) = self.sink.write_all(&buf[..read]) {
            let copy = io::Error::new(error.kind(), error.to_string());
            self.sink_error = Some(error);
            return Err(copy);
        }
        Ok(read)
    }
}

/// What the entry check found: the manifest, validated, and its JSON as it came.
pub struct ArchiveFacts {
    pub manifest: (ImageManifest, serde_json::Value),
}

fn refuse<T>(rule: &'static str, detail: impl Into<String>) -> Result<T, Violation> {
    Err(Violation {
        rule,
        detail: detail.into(),
    })
}

/// An archive path in its normal form (`rootfs/etc/hosts`): relative, no empty, `.` or `..`
/// components; a leading `./` and a trailing `/` are dropped. `None` is the archive root (`.`).
pub fn normalize(raw: &[u8]) -> Result<Option<String>, Violation> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return refuse(
            "archive.path",
            format!("entry {:?} is not UTF-8", short_name(raw)),
        );
    };
    let shown = short_str(text);
    if text.starts_with('/') {
        return refuse(
            "archive.path",
            format!("entry {shown:?} is an absolute path"),
        );
    }
    let trimmed = text.strip_prefix("./").unwrap_or(text);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() || trimmed == "." {
        return Ok(None);
    }
    for component in trimmed.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return refuse(
                "archive.path",
                format!("entry {shown:?} has an empty, `.` or `..` component"),
            );
        }
    }
    Ok(Some(trimmed.to_string()))
}

/// Whether a symlink at `link` (a normal path under `rootfs/`) with a relative `target` stays
/// inside `rootfs/` when resolved by name. Absolute targets are resolved at the rootfs root.
fn symlink_stays_inside(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    // Depth below rootfs/ of the link's directory.
    let mut depth = link.split('/').count() as i64 - 2;
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// Checks every entry of the tar read from `tar_stream`, stricter than actool: exactly
/// `manifest` (a regular file) and `rootfs/` at the top, no duplicates, no path leaving
/// `rootfs/` through `..`, a symlink or a hard link.
pub fn check_entries(tar_stream: impl Read) -> Result<ArchiveFacts, ArchiveFailure> {
    let mut archive = bounded_archive(tar_stream);
    let mut seen: HashSet<String> = HashSet::new();
    let mut symlinks: HashSet<String> = HashSet::new();
    let mut linkable: HashSet<String> = HashSet::new();
    let mut manifest: Option<(ImageManifest, serde_json::Value)> = None;
    let mut rootfs_seen = false;
    for entry in archive.entries().map_err(ArchiveFailure::read)? {
        let mut entry = entry.map_err(ArchiveFailure::read)?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let raw_path = entry.path_bytes().into_owned();
        // Numeric fields a renderer needs must parse now, not fail a render later.
        let header = entry.header();
        if let Err(error) = header
            .mode()
            .and(header.uid())
            .and(header.gid())
            .and(header.mtime())
        {
            refuse(
                "archive.header",
                format!("entry {:?}: {error}", short_name(&raw_path)),
            )?;
        }
        let Some(path) = normalize(&raw_path)? else {
            if !kind.is_dir() {
                refuse("archive.path", "the archive root `.` is not a directory")?;
            }
            continue;
        };
        let shown = short_str(&path);
        if !seen.insert(path.clone()) {
            refuse(
                "archive.duplicate-entry",
                format!("entry {shown:?} appears twice"),
            )?;
        }
        let top = path.split('/').next().unwrap_or_default();
        match (top, path.as_str()) {
            ("manifest", "manifest") => {
                if kind != tar::EntryType::Regular && kind != tar::EntryType::Continuous {
                    refuse(
                        "archive.manifest-regular",
                        format!("manifest is a {kind:?} entry, not a regular file"),
                    )?;
                }
                let size = entry.header().size().map_err(ArchiveFailure::read)?;
                if size > MAX_MANIFEST_SIZE {
                    refuse(
                        "archive.manifest-size",
                        format!(
                            "manifest is {size} bytes, over the {MAX_MANIFEST_SIZE} byte limit"
                        ),
                    )?;
                }
                let mut bytes = Vec::with_capacity(size as usize);
                (&mut entry)
                    .take(MAX_MANIFEST_SIZE)
                    .read_to_end(&mut bytes)
                    .map_err(ArchiveFailure::read)?;
                if (bytes.len() as u64) < size {
                    return Err(ArchiveFailure::read(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the archive ends inside the manifest ({} of {size} bytes)",
                            bytes.len()
                        ),
                    )));
                }
                // Validated as soon as it is read: an image refused for its manifest is
                // refused before the rest of the archive (which may be gigabytes) is read.
                manifest = Some(ImageManifest::parse(&bytes)?);
                continue;
            }
            ("rootfs", _) => {}
            _ => refuse(
                "archive.top-level",
                format!("entry {shown:?} is neither manifest nor under rootfs/"),
            )?,
        }
        rootfs_seen = true;
        if path == "rootfs" && !kind.is_dir() {
            refuse(
                "archive.rootfs-directory",
                format!("rootfs is a {kind:?} entry, not a directory"),
            )?;
        }
        // Nothing may be written through a symlink the archive made.
        let mut ancestor = String::new();
        for component in path.split('/') {
            if !ancestor.is_empty() && symlinks.contains(&ancestor) {
                refuse(
                    "archive.through-symlink",
                    format!(
                        "entry {shown:?} lies under the symlink {:?}",
                        short_str(&ancestor)
                    ),
                )?;
            }
            if !ancestor.is_empty() {
                ancestor.push('/');
            }
            ancestor.push_str(component);
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                linkable.insert(path);
            }
            tar::EntryType::Directory => {}
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                linkable.insert(path);
            }
            tar::EntryType::Symlink => {
                let target = link_target(&entry, &path)?;
                if target.is_empty() || !symlink_stays_inside(&path, &target) {
                    refuse(
                        "archive.symlink-escape",
                        format!(
                            "symlink {shown:?} -> {:?} leads out of rootfs/",
                            short_str(&target)
                        ),
                    )?;
                }
                symlinks.insert(path.clone());
                linkable.insert(path);
            }
            tar::EntryType::Link => {
                let raw_target = link_target(&entry, &path)?;
                let target = normalize(raw_target.as_bytes())?.unwrap_or_default();
                if target == "manifest" {
                    refuse(
                        "archive.hardlink-manifest",
                        format!("hard link {shown:?} points at the manifest"),
                    )?;
                }
                if !target.starts_with("rootfs/") || !linkable.contains(&target) {
                    refuse(
                        "archive.hardlink-target",
                        format!(
                            "hard link {shown:?} -> {:?} does not name an earlier file under rootfs/",
                            short_str(&raw_target)
                        ),
                    )?;
                }
                linkable.insert(path);
            }
            other => refuse(
                "archive.entry-type",
                format!("entry {shown:?} has the unsupported type {other:?}"),
            )?,
        }
    }
    let Some(manifest) = manifest else {
        return Ok(refuse(
            "archive.manifest-missing",
            "the archive has no manifest file",
        )?);
    };
    if !rootfs_seen {
        refuse(
            "archive.rootfs-missing",
            "the archive has no rootfs/ directory",
        )?;
    }
    Ok(ArchiveFacts { manifest })
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, path: &str) -> Result<String, Violation> {
    let Some(target) = entry.link_name_bytes() else {
        return refuse(
            "archive.path",
            format!("link {:?} has no target", short_str(path)),
        );
    };
    match std::str::from_utf8(&target) {
        Ok(text) if !text.contains('\0') => Ok(text.to_string()),
        _ => refuse(
            "archive.path",
            format!("link {:?} has a target that is not UTF-8", short_str(path)),
        ),
    }
}

/// The rule an image breaks with an extended tar header over its limit.
pub const TAR_HEADER_LIMIT_RULE: &str = "archive.tar-header-limit";

/// Why reading an archive stopped: a rule it broke, or a read error (corrupt compression or
/// tar framing, or a failed store write, which the caller tells apart through the [`Tee`]).
#[derive(Debug)]
pub enum ArchiveFailure {
    Violation(Violation),
    Read(io::Error),
    /// An extended tar header over its limit, refused before it was read.
    HeaderLimit(TarHeaderError),
}

impl ArchiveFailure {
    /// A read error, or the bounded tar reader's refusal inside one.
    pub fn read(error: io::Error) -> Self {
        match TarHeaderError::find(&error) {
            Some(refused) => ArchiveFailure::HeaderLimit(refused.clone()),
            None => ArchiveFailure::Read(error),
        }
    }
}

impl From<Violation> for ArchiveFailure {
    fn from(violation: Violation) -> Self {
        ArchiveFailure::Violation(violation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(
            normalize(b"./rootfs/a/").unwrap().as_deref(),
            Some("rootfs/a")
        );
        assert_eq!(normalize(b"./").unwrap(), None);
        for bad in [&b"/etc"[..], b"rootfs/../x", b"rootfs//x", b"rootfs/./x"] {
            assert_eq!(normalize(bad).unwrap_err().rule, "archive.path");
        }
    }

    #[test]
    fn symlink_depth() {
        assert!(symlink_stays_inside("rootfs/a/b", "../c"));
        assert!(symlink_stays_inside("rootfs/a", "/etc/passwd"));
        assert!(!symlink_stays_inside("rootfs/a", "../x"));
        assert!(!symlink_stays_inside("rootfs/a/b", "c/../../../x"));
    }
}
