//! Applying one layer (a tar stream) to a target directory, safely and without privileges.
//!
//! Rules, each enforced here whatever the caller validated before:
//! - entry names are relative, with no `..` ([`RelativePath::parse`]);
//! - every parent is opened beneath the target without following links ([`Beneath`]); a
//!   parent that is a symlink or not a directory refuses the entry (with
//!   [`Existing::KeepExisting`], one an earlier image left there shadows it instead);
//! - an existing name is never opened for writing: it is removed and created anew
//!   (`O_CREAT | O_EXCL | O_NOFOLLOW`), so a symlink or hard link in its place is not written
//!   through;
//! - hard links name an existing non-directory inside the target, reached the same way, and
//!   are made with `linkat` (a link, not a copy);
//! - directories are made `0700` and get their mode and mtime after the whole layer is in, so
//!   a read-only directory (`0555`) still receives its children when we are not root.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};

use super::archive_end::{ClosedArchive, EntryBounds};
use super::beneath::{
    file_type_at, make_owner_writable, open_child_dir, os, remove_all_at, Beneath, WalkError,
    WalkEvent,
};
use super::bounded_tar::bounded_archive;
use super::entry_meta::{read_meta, EntryMeta};
use super::entry_path::{classify_whiteout, RelativePath, Whiteout};
use super::error::{RootfsError, RootfsResult};
use super::options::{AbsoluteNames, ApplyOptions, Devices, EntryKind, Existing, Ownership};
pub use super::report::ApplyReport;
use super::short_name::short_name;

/// Applies the tar stream `tar` (already decompressed: see [`super::decompress`]) to the
/// directory `target`, which must exist. On error the target holds part of the layer: callers
/// render into a directory of their own and discard it on failure.
pub fn apply_layer(
    target: &Path,
    tar: impl Read,
    options: &ApplyOptions,
) -> RootfsResult<ApplyReport> {
    if options.whiteouts && options.existing == Existing::KeepExisting {
        return Err(RootfsError::InvalidOptions(
            "whiteouts remove what lower layers put there, so they need lower layers applied \
             first (Existing::Overwrite)"
                .to_string(),
        ));
    }
    let prefix = match &options.strip_prefix {
        Some(prefix) => {
            let text = prefix.display().to_string();
            let parsed = RelativePath::parse(prefix.as_os_str().as_bytes(), &text)
                .map_err(|e| RootfsError::InvalidOptions(format!("strip_prefix: {e}")))?;
            Some(parsed)
        }
        None => None,
    };
    let beneath = Beneath::open(target)
        .map_err(|e| RootfsError::io("opening the render target", target, e))?;
    let mut applier = Applier {
        beneath,
        options,
        prefix,
        privileged: rustix::process::geteuid().is_root(),
        written: BTreeSet::new(),
        deferred_dirs: Vec::new(),
        skipped_devices: BTreeSet::new(),
        parent_cache: None,
        report: ApplyReport::default(),
        buffer: vec![0u8; 256 * 1024],
    };
    let bounds = Rc::new(Cell::new(EntryBounds::default()));
    let mut archive = bounded_archive(ClosedArchive::new(tar, bounds.clone()));
    for entry in archive.entries().map_err(RootfsError::archive)? {
        let entry = entry.map_err(RootfsError::archive)?;
        bounds.set(EntryBounds::of(entry.raw_file_position(), entry.size()));
        applier.apply_entry(entry)?;
    }
    applier.finish()
}

/// Metadata a directory gets once the layer is complete: an entry's, or (no mtime) the mode
/// a read-only directory had before we opened it up.
pub(super) struct DeferredDir {
    pub(super) path: RelativePath,
    pub(super) mode: u32,
    pub(super) mtime: Option<u64>,
}

impl DeferredDir {
    fn is_an_entrys(&self) -> bool {
        self.mtime.is_some()
    }
}

pub(super) struct Applier<'o> {
    pub(super) beneath: Beneath,
    pub(super) options: &'o ApplyOptions,
    pub(super) prefix: Option<RelativePath>,
    /// Root ignores permission bits: no directory needs opening up for us.
    pub(super) privileged: bool,
    /// Keys of the paths this layer created (entries and the parents made for them):
    /// whiteouts only remove what lower layers put there.
    pub(super) written: BTreeSet<Vec<u8>>,
    pub(super) deferred_dirs: Vec<DeferredDir>,
    /// Device nodes not created ([`Devices::Skip`]): hard links to them are skipped too.
    pub(super) skipped_devices: BTreeSet<Vec<u8>>,
    /// The parent directory of the last entry, reused while nothing was removed (archives
    /// list a directory's files together).
    pub(super) parent_cache: Option<(RelativePath, OwnedFd)>,
    pub(super) report: ApplyReport,
    pub(super) buffer: Vec<u8>,
}

impl Applier<'_> {
    fn apply_entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> RootfsResult<()> {
        self.report.entries += 1;
        let raw_name = entry.path_bytes().into_owned();
        let name = short_name(&raw_name);
        let Some(meta) = read_meta(&mut entry, &name, self.options.xattrs)? else {
            // A PAX global header: archive metadata, not a file.
            return Ok(());
        };
        let full_path = RelativePath::parse_with(&raw_name, &name, self.absolute_in_target())?;
        let Some(path) = self.strip(&full_path) else {
            self.report.outside_prefix += 1;
            return Ok(());
        };
        if self.options.whiteouts {
            if let (Some(file_name), Some(parent)) = (path.file_name(), path.parent()) {
                match classify_whiteout(file_name) {
                    Whiteout::None => {}
                    Whiteout::Reserved => {
                        self.report.reserved_whiteouts_ignored += 1;
                        return Ok(());
                    }
                    Whiteout::Opaque => return self.opaque(&parent, &name),
                    Whiteout::Remove(hidden) => {
                        let hidden = hidden.to_vec();
                        return self.whiteout(&parent, &hidden, &name);
                    }
                }
            }
        }
        if let Some(filter) = &self.options.path_filter {
            if !filter(&path.to_path_buf(), meta.kind) {
                self.report.filtered += 1;
                return Ok(());
            }
        }
        if path.is_root() {
            return self.root_entry(&meta, &name);
        }
        // Resolved before anything at `path` is removed: a link may not name itself.
        let link_source = match meta.kind {
            EntryKind::HardLink => match self.hard_link_source(&meta, &path, &name)? {
                Some(source) => Some(source),
                None => {
                    self.report.devices_skipped += 1;
                    return Ok(());
                }
            },
            _ => None,
        };
        let parent_path = path.parent().expect("not the root");
        let file_name = path.file_name().expect("not the root").to_vec();
        let Some(parent) = self.parent_dir(&parent_path, &name)? else {
            self.report.kept_existing += 1;
            return Ok(());
        };
        let result = self.replace_and_create(
            parent.as_fd(),
            &file_name,
            &path,
            &meta,
            link_source,
            &mut entry,
            &name,
        );
        self.parent_cache = match (result.as_ref(), self.parent_cache.take()) {
            // Something was removed: a cached descriptor could be of a directory no longer
            // in the tree.
            (Ok(Outcome::Removed), _) | (Err(_), _) => None,
            _ => Some((parent_path, parent)),
        };
        match result? {
            Outcome::Kept => self.report.kept_existing += 1,
            Outcome::Created | Outcome::Removed => {
                self.written.insert(path.key());
            }
        }
        Ok(())
    }

    fn absolute_in_target(&self) -> bool {
        self.options.absolute_names == AbsoluteNames::InTarget
    }

    fn strip(&self, path: &RelativePath) -> Option<RelativePath> {
        match &self.prefix {
            Some(prefix) => path.strip_prefix(prefix),
            None => Some(path.clone()),
        }
    }

    /// Makes the entry at `file_name` in `parent`, first removing what is there (or keeping
    /// it, per [`Existing`]).
    #[allow(clippy::too_many_arguments)]
    fn replace_and_create<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        file_name: &[u8],
        path: &RelativePath,
        meta: &EntryMeta,
        link_source: Option<(OwnedFd, Vec<u8>)>,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> RootfsResult<Outcome> {
        let existing =
            file_type_at(parent, file_name).map_err(|e| RootfsError::entry(name, "stat", e))?;
        let mut removed = false;
        if let Some(existing) = existing {
            let both_directories =
                existing == FileType::Directory && meta.kind == EntryKind::Directory;
            match self.options.existing {
                Existing::KeepExisting => return Ok(Outcome::Kept),
                Existing::Overwrite if both_directories => {}
                Existing::Overwrite => {
                    remove_all_at(parent, file_name).map_err(|e| {
                        RootfsError::entry(name, "removing what the entry replaces", e)
                    })?;
                    removed = true;
                }
            }
        }
        self.create(parent, file_name, path, meta, link_source, entry, name)?;
        Ok(if removed {
            Outcome::Removed
        } else {
            Outcome::Created
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn create<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        file_name: &[u8],
        path: &RelativePath,
        meta: &EntryMeta,
        link_source: Option<(OwnedFd, Vec<u8>)>,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> RootfsResult<()> {
        let at = |context: &'static str| {
            move |e: rustix::io::Errno| RootfsError::entry(name, context, e.into())
        };
        match meta.kind {
            EntryKind::File => {
                let fd = rustix::fs::openat(
                    parent,
                    os(file_name),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(at("creating the file"))?;
                let mut file = File::from(fd);
                let written = copy_content(entry, &mut file, &mut self.buffer)
                    .map_err(|e| RootfsError::entry(name, "writing the file", e))?;
                self.report.bytes += written;
                self.set_owner_fd(file.as_fd(), meta, name)?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(meta.mode))
                    .map_err(at("setting the mode"))?;
                self.set_xattrs(file.as_fd(), meta);
                rustix::fs::futimens(&file, &timestamps(meta.mtime))
                    .map_err(at("setting the mtime"))?;
                self.report.files += 1;
            }
            EntryKind::Directory => {
                if file_type_at(parent, file_name)
                    .map_err(|e| RootfsError::entry(name, "stat", e))?
                    .is_none()
                {
                    rustix::fs::mkdirat(parent, os(file_name), Mode::from_raw_mode(0o700))
                        .map_err(at("creating the directory"))?;
                }
                let dir = open_child_dir(parent, file_name)
                    .map_err(|e| RootfsError::entry(name, "opening the directory", e))?;
                self.set_owner_fd(dir.as_fd(), meta, name)?;
                self.set_xattrs(dir.as_fd(), meta);
                self.deferred_dirs.push(DeferredDir {
                    path: path.clone(),
                    mode: meta.mode,
                    mtime: Some(meta.mtime),
                });
                self.report.directories += 1;
            }
            EntryKind::Symlink => {
                let target = meta
                    .link_name
                    .as_deref()
                    .ok_or_else(|| RootfsError::refused(name, "a symlink without a target"))?;
                rustix::fs::symlinkat(os(target), parent, os(file_name))
                    .map_err(at("creating the symlink"))?;
                self.set_owner_at(parent, file_name, meta, name)?;
                rustix::fs::utimensat(
                    parent,
                    os(file_name),
                    &timestamps(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(at("setting the mtime"))?;
                self.report.symlinks += 1;
            }
            EntryKind::HardLink => {
                let (source_dir, source_name) = link_source.expect("resolved by the caller");
                rustix::fs::linkat(
                    &source_dir,
                    os(&source_name),
                    parent,
                    os(file_name),
                    // Without AT_SYMLINK_FOLLOW: a link to a symlink is a link to the symlink.
                    AtFlags::empty(),
                )
                .map_err(at("creating the hard link"))?;
                self.report.hard_links += 1;
            }
            EntryKind::Fifo => {
                self.make_node(parent, file_name, FileType::Fifo, 0, meta, name)?;
                self.report.fifos += 1;
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                if self.options.devices == Devices::Skip {
                    self.report.devices_skipped += 1;
                    self.skipped_devices.insert(path.key());
                    return Ok(());
                }
                let file_type = if meta.kind == EntryKind::CharDevice {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                let device = rustix::fs::makedev(meta.device.0, meta.device.1);
                self.make_node(parent, file_name, file_type, device, meta, name)?;
                self.report.devices_created += 1;
            }
        }
        Ok(())
    }

    fn make_node(
        &mut self,
        parent: BorrowedFd<'_>,
        file_name: &[u8],
        file_type: FileType,
        device: rustix::fs::Dev,
        meta: &EntryMeta,
        name: &str,
    ) -> RootfsResult<()> {
        let at = |context: &'static str| {
            move |e: rustix::io::Errno| RootfsError::entry(name, context, e.into())
        };
        rustix::fs::mknodat(
            parent,
            os(file_name),
            file_type,
            Mode::from_raw_mode(0o600),
            device,
        )
        .map_err(at("creating the node"))?;
        self.set_owner_at(parent, file_name, meta, name)?;
        // chmod has no no-follow form on Linux; the node was created by this very call
        // sequence (mknod fails on an existing name) in a target only the render uses.
        rustix::fs::chmodat(
            parent,
            os(file_name),
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .map_err(at("setting the mode"))?;
        rustix::fs::utimensat(
            parent,
            os(file_name),
            &timestamps(meta.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(at("setting the mtime"))?;
        Ok(())
    }

    /// The directory an entry goes into, made where missing. `None`: with
    /// [`Existing::KeepExisting`], a non-directory an earlier image put on the way shadows the
    /// entry.
    pub(super) fn parent_dir(
        &mut self,
        parent_path: &RelativePath,
        name: &str,
    ) -> RootfsResult<Option<OwnedFd>> {
        if let Some((cached_path, fd)) = self.parent_cache.take() {
            if &cached_path == parent_path {
                return Ok(Some(fd));
            }
        }
        let mut created = Vec::new();
        let mut opened_up = Vec::new();
        let opened = self
            .beneath
            .open_dir(parent_path, true, &mut |event| match event {
                WalkEvent::Created(path) => created.push(path.key()),
                WalkEvent::OpenedUp(path, mode) => opened_up.push((path.clone(), mode)),
            });
        self.written.extend(created);
        self.deferred_dirs
            .extend(opened_up.into_iter().map(|(path, mode)| DeferredDir {
                path,
                mode,
                mtime: None,
            }));
        match opened {
            Ok(fd) => {
                self.open_up(fd.as_fd(), parent_path, name)?;
                Ok(Some(fd))
            }
            Err(WalkError::Blocked { at, .. })
                if self.options.existing == Existing::KeepExisting
                    && !self.written.contains(&at.key()) =>
            {
                Ok(None)
            }
            Err(error) => Err(walk_error(error, name)),
        }
    }

    /// When we are not root, gives a directory an earlier layer made read-only back its owner
    /// write bit so the entry can be created in it; its mode is restored at the end.
    pub(super) fn open_up(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &RelativePath,
        name: &str,
    ) -> RootfsResult<()> {
        if self.privileged {
            return Ok(());
        }
        let original = make_owner_writable(dir)
            .map_err(|e| RootfsError::entry(name, "opening up a read-only parent", e))?;
        if let Some(mode) = original {
            self.deferred_dirs.push(DeferredDir {
                path: path.clone(),
                mode,
                mtime: None,
            });
        }
        Ok(())
    }

    /// Where a hard link points: its directory and name, or `None` when it names a device
    /// node this render skipped (the link goes the way of its target).
    fn hard_link_source(
        &mut self,
        meta: &EntryMeta,
        path: &RelativePath,
        name: &str,
    ) -> RootfsResult<Option<(OwnedFd, Vec<u8>)>> {
        let raw = meta
            .link_name
            .as_deref()
            .ok_or_else(|| RootfsError::refused(name, "a hard link without a target"))?;
        let shown = short_name(raw);
        let full =
            RelativePath::parse_with(raw, name, self.absolute_in_target()).map_err(|_| {
                RootfsError::refused(
                    name,
                    format!("hard link target {shown:?} is absolute or climbs out with `..`"),
                )
            })?;
        let source = self.strip(&full).ok_or_else(|| {
            RootfsError::refused(
                name,
                format!(
                    "hard link to {shown:?}, outside {}",
                    self.prefix
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            )
        })?;
        if &source == path {
            return Err(RootfsError::refused(name, "a hard link to itself"));
        }
        if self.skipped_devices.contains(&source.key()) {
            return Ok(None);
        }
        let (Some(source_parent), Some(source_name)) = (source.parent(), source.file_name()) else {
            return Err(RootfsError::refused(
                name,
                "a hard link to the root directory",
            ));
        };
        let source_name = source_name.to_vec();
        let dir = match self.beneath.open_dir(&source_parent, false, &mut |_| ()) {
            Ok(dir) => dir,
            Err(WalkError::Missing(_)) => {
                return Err(RootfsError::refused(
                    name,
                    format!("hard link to {shown:?}, which no earlier entry made"),
                ))
            }
            Err(error) => return Err(walk_error(error, name)),
        };
        match file_type_at(dir.as_fd(), &source_name)
            .map_err(|e| RootfsError::entry(name, "stat of the link target", e))?
        {
            None => Err(RootfsError::refused(
                name,
                format!("hard link to {shown:?}, which no earlier entry made"),
            )),
            Some(FileType::Directory) => Err(RootfsError::refused(
                name,
                format!("hard link to {shown:?}, a directory"),
            )),
            Some(_) => Ok(Some((dir, source_name))),
        }
    }

    /// The archive's own entry for the root (`./`): its metadata for the target directory.
    fn root_entry(&mut self, meta: &EntryMeta, name: &str) -> RootfsResult<()> {
        if meta.kind != EntryKind::Directory {
            return Err(RootfsError::refused(
                name,
                "the root of a layer must be a directory",
            ));
        }
        if self.options.existing == Existing::KeepExisting {
            self.report.kept_existing += 1;
            return Ok(());
        }
        let root = rustix::io::dup(self.beneath.root())
            .map_err(|e| RootfsError::entry(name, "opening the root", e.into()))?;
        self.set_owner_fd(root.as_fd(), meta, name)?;
        self.set_xattrs(root.as_fd(), meta);
        self.deferred_dirs.push(DeferredDir {
            path: RelativePath::root(),
            mode: meta.mode,
            mtime: Some(meta.mtime),
        });
        self.report.directories += 1;
        Ok(())
    }

    fn set_owner_fd(&self, fd: BorrowedFd<'_>, meta: &EntryMeta, name: &str) -> RootfsResult<()> {
        if self.options.ownership == Ownership::FromArchive {
            let (uid, gid) = owner(meta, name)?;
            rustix::fs::fchown(fd, Some(uid), Some(gid))
                .map_err(|e| RootfsError::entry(name, "setting the owner", e.into()))?;
        }
        Ok(())
    }

    fn set_owner_at(
        &self,
        dir: BorrowedFd<'_>,
        file_name: &[u8],
        meta: &EntryMeta,
        name: &str,
    ) -> RootfsResult<()> {
        if self.options.ownership == Ownership::FromArchive {
            let (uid, gid) = owner(meta, name)?;
            rustix::fs::chownat(
                dir,
                os(file_name),
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| RootfsError::entry(name, "setting the owner", e.into()))?;
        }
        Ok(())
    }

    fn set_xattrs(&mut self, fd: BorrowedFd<'_>, meta: &EntryMeta) {
        for (key, value) in &meta.xattrs {
            if rustix::fs::fsetxattr(fd, key.as_str(), value, XattrFlags::empty()).is_err() {
                self.report.xattrs_skipped += 1;
            }
        }
    }

    /// Gives directories their modes and mtimes, deepest first, so setting one does not
    /// disturb another (creating a child changes its parent's mtime; a read-only parent would
    /// stop the child's update).
    fn finish(mut self) -> RootfsResult<ApplyReport> {
        self.parent_cache = None;
        let mut deferred = std::mem::take(&mut self.deferred_dirs);
        // Deepest first. At one depth, restoring a mode we opened up comes before what an
        // entry asked for, so the entry wins whichever happened first; among entries the
        // sort is stable, so the later entry for a directory wins.
        deferred.sort_by_key(|dir| (std::cmp::Reverse(dir.path.depth()), dir.is_an_entrys()));
        for dir in deferred {
            let fd = match self.beneath.open_dir(&dir.path, false, &mut |_| ()) {
                Ok(fd) => fd,
                // Replaced by a later entry of the layer: that entry's metadata stands.
                Err(WalkError::Missing(_)) | Err(WalkError::Blocked { .. }) => continue,
                Err(error) => return Err(walk_error(error, &dir.path.to_string())),
            };
            let context = |what: &'static str| {
                let path = dir.path.to_string();
                move |e: rustix::io::Errno| RootfsError::entry(&path, what, e.into())
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(dir.mode))
                .map_err(context("setting the mode"))?;
            if let Some(mtime) = dir.mtime {
                rustix::fs::futimens(&fd, &timestamps(mtime))
                    .map_err(context("setting the mtime"))?;
            }
        }
        Ok(self.report)
    }
}

enum Outcome {
    Created,
    /// Created after removing what was there.
    Removed,
    Kept,
}

pub(super) fn walk_error(error: WalkError, name: &str) -> RootfsError {
    match error {
        WalkError::Blocked { at, symlink: true } => RootfsError::refused(
            name,
            format!("{at} is a symlink: entries are never written through links"),
        ),
        WalkError::Blocked { at, symlink: false } => {
            RootfsError::refused(name, format!("{at} is not a directory"))
        }
        WalkError::Missing(at) => RootfsError::refused(name, format!("{at} does not exist")),
        WalkError::Io(at, source) => RootfsError::entry(name, format!("opening {at}"), source),
    }
}

fn owner(meta: &EntryMeta, name: &str) -> RootfsResult<(rustix::fs::Uid, rustix::fs::Gid)> {
    let uid = u32::try_from(meta.uid)
        .map_err(|_| RootfsError::refused(name, format!("uid {} out of range", meta.uid)))?;
    let gid = u32::try_from(meta.gid)
        .map_err(|_| RootfsError::refused(name, format!("gid {} out of range", meta.gid)))?;
    Ok((
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    ))
}

fn timestamps(mtime: u64) -> Timestamps {
    let time = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

fn copy_content(reader: &mut impl Read, file: &mut File, buffer: &mut [u8]) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let read = match reader.read(buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        file.write_all(&buffer[..read])?;
        total += read as u64;
    }
}
