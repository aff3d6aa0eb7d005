//! `oci-archive`: a tar (plain or gzip) of an image layout. Extraction is defensive: entries
//! with absolute paths or `..`, links whose target leads out of the extraction directory, and
//! device or fifo entries are refused with an error naming the entry; nothing is written
//! outside the target directory.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::EntryType;

use super::error::{OciError, OciResult};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Extracts `archive` into `target` (an empty directory).
pub fn extract_archive(archive: &Path, target: &Path) -> OciResult<()> {
    let corrupt = |source: std::io::Error| OciError::CorruptArchive {
        path: archive.to_path_buf(),
        source,
    };
    let mut file = File::open(archive).map_err(|e| OciError::io("opening", archive, e))?;
    let mut magic = [0u8; 2];
    let gzip = matches!(file.read_exact(&mut magic), Ok(()) if magic == GZIP_MAGIC);
    file.seek(SeekFrom::Start(0))
        .map_err(|e| OciError::io("reading", archive, e))?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let root = target
        .canonicalize()
        .map_err(|e| OciError::io("opening", target, e))?;
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw_path = entry.path().map_err(corrupt)?.into_owned();
        let refuse = |reason: &str| OciError::UnsafeArchiveEntry {
            archive: archive.to_path_buf(),
            entry: raw_path.display().to_string(),
            reason: reason.to_string(),
        };
        let entry_type = entry.header().entry_type();
        if matches!(entry_type, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let relative = safe_relative(&raw_path)
            .ok_or_else(|| refuse("absolute paths and '..' components are not allowed"))?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let destination = root.join(&relative);
        match entry_type {
            EntryType::Directory => {
                create_parent_inside(&root, &destination.join("x"), &refuse)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                create_parent_inside(&root, &destination, &refuse)?;
                let mut out = create_fresh(&destination)?;
                std::io::copy(&mut entry, &mut out).map_err(corrupt)?;
            }
            EntryType::Link => {
                // A hard link names another archive member; copy it (never link to a file
                // outside, and no surprise shared inodes in the extraction).
                let target = entry
                    .link_name()
                    .map_err(corrupt)?
                    .ok_or_else(|| refuse("hard link without a target"))?;
                let target_relative = safe_relative(&target)
                    .ok_or_else(|| refuse("hard link target leads outside the archive"))?;
                let source = root.join(target_relative);
                let resolved = source
                    .canonicalize()
                    .map_err(|_| refuse("hard link target is not an earlier member"))?;
                if !resolved.starts_with(&root) || !resolved.is_file() {
                    return Err(refuse("hard link target leads outside the archive"));
                }
                create_parent_inside(&root, &destination, &refuse)?;
                let mut out = create_fresh(&destination)?;
                let mut input =
                    File::open(&resolved).map_err(|e| OciError::io("reading", &resolved, e))?;
                std::io::copy(&mut input, &mut out)
                    .map_err(|e| OciError::io("writing", &destination, e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(corrupt)?
                    .ok_or_else(|| refuse("symbolic link without a target"))?
                    .into_owned();
                if !symlink_stays_inside(&relative, &target) {
                    return Err(refuse(&format!(
                        "symbolic link to {} leads outside the archive",
                        target.display()
                    )));
                }
                create_parent_inside(&root, &destination, &refuse)?;
                remove_existing(&destination)?;
                std::os::unix::fs::symlink(&target, &destination)
                    .map_err(|e| OciError::io("creating symbolic link", &destination, e))?;
            }
            other => {
                return Err(refuse(&format!(
                    "entry type {other:?} has no place in an image layout"
                )))
            }
        }
    }
    Ok(())
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

/// Whether a relative symlink target, taken from the link's directory, stays inside the root
/// (checked lexically; what is read later is checked again after resolving).
fn symlink_stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for component in target.components() {
        match component {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Creates the parent directories of `path` and checks, after resolving symlinks made by
/// earlier entries, that they are inside the root.
fn create_parent_inside(
    root: &Path,
    path: &Path,
    refuse: &dyn Fn(&str) -> OciError,
) -> OciResult<()> {
    let parent = path.parent().unwrap_or(root);
    std::fs::create_dir_all(parent).map_err(|e| OciError::io("creating", parent, e))?;
    let resolved = parent
        .canonicalize()
        .map_err(|e| OciError::io("resolving", parent, e))?;
    if !resolved.starts_with(root) {
        return Err(refuse("its directory leads outside the archive"));
    }
    Ok(())
}

fn remove_existing(path: &Path) -> OciResult<()> {
    match path.symlink_metadata() {
        Ok(metadata) if metadata.is_dir() => Err(OciError::io(
            "extracting",
            path,
            std::io::Error::other("a directory is in the way"),
        )),
        Ok(_) => std::fs::remove_file(path).map_err(|e| OciError::io("replacing", path, e)),
        Err(_) => Ok(()),
    }
}

/// A new file at `path`; a later duplicate member replaces an earlier one (tar semantics),
/// and `create_new` never follows a symlink left at that path.
fn create_fresh(path: &Path) -> OciResult<File> {
    remove_existing(path)?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| OciError::io("creating", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_are_checked_from_the_link_directory() {
        assert!(symlink_stays_inside(
            Path::new("blobs/sha256/x"),
            Path::new("../y")
        ));
        assert!(symlink_stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(!symlink_stays_inside(Path::new("a"), Path::new("../c")));
        assert!(!symlink_stays_inside(
            Path::new("a/b"),
            Path::new("/etc/passwd")
        ));
        assert!(!symlink_stays_inside(
            Path::new("a/b"),
            Path::new("../../c")
        ));
    }

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
}
