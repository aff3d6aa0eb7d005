//! Reading an OCI image layout directory: the v1.x form (`oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`) and the pre-1.0 form (`refs/<name>` descriptor files, blobs at
//! `blobs/<alg>/<hex>` or `blobs/<alg>-<hex>`). Every path read is checked to stay inside the
//! layout after symlinks are resolved, and only regular files are read: every file is opened
//! without blocking and checked on the open descriptor, so a FIFO, device or socket in place
//! of a file is refused at once instead of hanging the import.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, OciLayout};

use super::descriptor::{parse_descriptor, ref_name_of};
use super::error::{OciError, OciResult};
use super::graph::{verify_document, ContentSource, Fetched, MAX_DOCUMENT_SIZE};
use crate::traits::Digest;
use crate::util::io_context::{IoContext, IoResultExt};

pub const LAYOUT_FILE: &str = "oci-layout";
pub const INDEX_FILE: &str = "index.json";
pub const BLOBS_DIR: &str = "blobs";
pub const PRE_1_0_REFS_DIR: &str = "refs";

/// One entry of a layout's index (or one pre-1.0 ref file).
#[derive(Clone, Debug)]
pub struct LayoutEntry {
    pub name: Option<String>,
    pub descriptor: Descriptor,
}

#[derive(Debug)]
pub struct Layout {
    /// Canonical path of the layout directory.
    pub root: PathBuf,
    pub entries: Vec<LayoutEntry>,
    /// `blobs/` and `blobs/<alg>/`, canonical, for those that exist and resolve inside the
    /// layout: a blob file in one of them that is not itself a symlink has a known canonical
    /// path, so thousands of blobs are not each resolved component by component.
    canonical_dirs: Vec<(PathBuf, PathBuf)>,
}

impl Layout {
    pub fn open(path: &Path) -> OciResult<Layout> {
        let root = path.canonicalize().io_context("opening layout", path)?;
        let entries = if root.join(INDEX_FILE).exists() {
            read_v1_entries(&root)?
        } else if root.join(PRE_1_0_REFS_DIR).is_dir() {
            read_pre_1_0_entries(&root)?
        } else {
            return Err(OciError::NotALayout {
                path: path.to_path_buf(),
                reason: format!("neither {INDEX_FILE} nor a {PRE_1_0_REFS_DIR}/ directory"),
            });
        };
        let blobs = root.join(BLOBS_DIR);
        let canonical_dirs = std::iter::once(blobs.clone())
            .chain(
                crate::traits::Algorithm::ALL
                    .iter()
                    .map(|algorithm| blobs.join(algorithm.name())),
            )
            .filter_map(|dir| {
                let canonical = dir.canonicalize().ok()?;
                canonical.starts_with(&root).then_some((dir, canonical))
            })
            .collect();
        Ok(Layout {
            root,
            entries,
            canonical_dirs,
        })
    }

    /// Where the layout keeps a blob, if it has it: `blobs/<alg>/<hex>`, else the pre-1.0
    /// `blobs/<alg>-<hex>`. Refused if it resolves outside the layout.
    pub fn blob_path(&self, digest: &Digest) -> OciResult<Option<PathBuf>> {
        let blobs = self.root.join(BLOBS_DIR);
        for candidate in [
            blobs.join(digest.algorithm().name()).join(digest.hex()),
            blobs.join(digest.dashed()),
        ] {
            let Ok(metadata) = candidate.symlink_metadata() else {
                continue;
            };
            if !metadata.file_type().is_symlink() {
                if let Some(path) = self.in_canonical_dir(&candidate) {
                    return Ok(Some(path));
                }
            }
            return Ok(Some(resolve_inside(&self.root, &candidate)?));
        }
        Ok(None)
    }
}

impl Layout {
    /// The canonical path of `candidate`, which is no symlink, when its directory is one whose
    /// canonical form is known (and inside the layout).
    fn in_canonical_dir(&self, candidate: &Path) -> Option<PathBuf> {
        let (parent, name) = (candidate.parent()?, candidate.file_name()?);
        self.canonical_dirs
            .iter()
            .find(|(dir, _)| dir == parent)
            .map(|(_, canonical)| canonical.join(name))
    }
}

/// The canonical form of `path`, which must lie inside `root` (canonical).
pub fn resolve_inside(root: &Path, path: &Path) -> OciResult<PathBuf> {
    let resolved = path.canonicalize().io_context("resolving", path)?;
    if !resolved.starts_with(root) {
        return Err(OciError::PathOutsideLayout {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
        });
    }
    Ok(resolved)
}

/// Opens a file for reading if it is a regular file. `O_NONBLOCK` makes the open of a FIFO
/// return at once (a plain open waits for a writer, forever) and the type is checked on the
/// open descriptor, so nothing can be swapped in between; `O_NOFOLLOW` because callers pass
/// paths already resolved. On a regular file `O_NONBLOCK` changes nothing.
pub fn open_regular(path: &Path) -> OciResult<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .io_context("opening", path)?;
    let metadata = file.metadata().io_context("reading", path)?;
    if !metadata.is_file() {
        return Err(OciError::NotARegularFile {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

/// Reads a small regular file whole, refusing more than `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> OciResult<Vec<u8>> {
    let file = open_regular(path)?;
    read_to_limit(file, limit).map_err(|error| match error {
        ReadLimitError::Io(e) => OciError::from(IoContext::new("reading", path, e)),
        ReadLimitError::TooLarge => OciError::document(
            path.display().to_string(),
            format!("larger than {limit} bytes"),
        ),
    })
}

pub enum ReadLimitError {
    Io(std::io::Error),
    TooLarge,
}

/// Reads at most `limit` bytes; more is an error (nothing past `limit + 1` is read).
pub fn read_to_limit(reader: impl Read, limit: u64) -> Result<Vec<u8>, ReadLimitError> {
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadLimitError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadLimitError::TooLarge);
    }
    Ok(bytes)
}

fn read_v1_entries(root: &Path) -> OciResult<Vec<LayoutEntry>> {
    let layout_path =
        resolve_inside(root, &root.join(LAYOUT_FILE)).map_err(|_| OciError::NotALayout {
            path: root.to_path_buf(),
            reason: format!("no {LAYOUT_FILE} file"),
        })?;
    let layout_bytes = read_limited(&layout_path, MAX_DOCUMENT_SIZE)?;
    check_layout_file(&layout_bytes, &layout_path.display().to_string(), root)?;
    let index_path = resolve_inside(root, &root.join(INDEX_FILE))?;
    let index_bytes = read_limited(&index_path, MAX_DOCUMENT_SIZE)?;
    parse_index_entries(&index_bytes, &index_path.display().to_string())
}

/// Checks an `oci-layout` file (`name` says where it was read from; `root` is the layout).
pub fn check_layout_file(bytes: &[u8], name: &str, root: &Path) -> OciResult<()> {
    let layout: OciLayout =
        serde_json::from_slice(bytes).map_err(|e| OciError::document(name, e))?;
    if !layout.image_layout_version().starts_with("1.") {
        return Err(OciError::NotALayout {
            path: root.to_path_buf(),
            reason: format!(
                "imageLayoutVersion {:?} is not 1.x",
                layout.image_layout_version()
            ),
        });
    }
    Ok(())
}

/// The entries of a layout's `index.json` (`name` says where it was read from).
pub fn parse_index_entries(bytes: &[u8], name: &str) -> OciResult<Vec<LayoutEntry>> {
    let index: ImageIndex =
        serde_json::from_slice(bytes).map_err(|e| OciError::document(name, e))?;
    Ok(index
        .manifests()
        .iter()
        .map(|descriptor| LayoutEntry {
            name: ref_name_of(descriptor).map(str::to_string),
            descriptor: descriptor.clone(),
        })
        .collect())
}

/// One pre-1.0 `refs/<name>` file: a descriptor.
pub fn parse_ref_file(name: &str, bytes: &[u8], context: &str) -> OciResult<LayoutEntry> {
    Ok(LayoutEntry {
        name: Some(name.to_string()),
        descriptor: parse_descriptor(bytes, &format!("ref file {context}"))?,
    })
}

fn read_pre_1_0_entries(root: &Path) -> OciResult<Vec<LayoutEntry>> {
    let refs_dir = root.join(PRE_1_0_REFS_DIR);
    let listing = std::fs::read_dir(&refs_dir).io_context("listing", &refs_dir)?;
    let mut entries = Vec::new();
    for item in listing {
        let item = item.io_context("listing", &refs_dir)?;
        let path = resolve_inside(root, &item.path())?;
        if path.is_dir() {
            continue;
        }
        let name = item.file_name().to_string_lossy().into_owned();
        let bytes = read_limited(&path, MAX_DOCUMENT_SIZE)?;
        entries.push(parse_ref_file(&name, &bytes, &path.display().to_string())?);
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// A layout as a [`ContentSource`]: documents are read and verified; leaf blobs are checked
/// for presence and size (their digest is verified as they stream into the store).
pub struct LayoutSource<'a> {
    pub layout: &'a Layout,
}

impl ContentSource for LayoutSource<'_> {
    fn name(&self) -> String {
        format!("layout {}", self.layout.root.display())
    }

    fn strict(&self) -> bool {
        true
    }

    fn fetch(
        &mut self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Fetched> {
        let Some(path) = self.layout.blob_path(digest)? else {
            return Ok(Fetched::Absent);
        };
        let bad = |reason: String| OciError::BadBlob {
            digest: digest.clone(),
            path: path.clone(),
            reason,
        };
        if document {
            let bytes = read_limited(&path, MAX_DOCUMENT_SIZE)?;
            verify_document(digest, descriptor.size(), &bytes).map_err(bad)?;
            return Ok(Fetched::Document(bytes));
        }
        let metadata = path.metadata().io_context("reading", &path)?;
        if !metadata.is_file() {
            return Err(bad("not a regular file".to_string()));
        }
        if metadata.len() != descriptor.size() {
            return Err(bad(format!(
                "size is {} bytes, the descriptor says {}",
                metadata.len(),
                descriptor.size()
            )));
        }
        Ok(Fetched::Present)
    }
}
