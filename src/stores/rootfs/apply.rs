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
//! - directories are made `0700` and get their mode and mtime only when the whole render is
//!   in ([`Render::finish`]), so no other user can enter one meanwhile, and a read-only
//!   directory (`0555`) still receives its children when we are not root;
//! - FIFOs and device nodes get their owner, mode and times through an `O_PATH | O_NOFOLLOW`
//!   descriptor of the node just made (`nofollow`), never by a name a link could take.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, XattrFlags};

use super::archive_end::{ClosedArchive, EntryBounds};
use super::beneath::{
    file_type_at, make_owner_writable, open_child_dir, os, remove_all_at, Beneath, WalkError,
    WalkEvent, RENDERING_DIR_MODE,
};
use super::bounded_tar::bounded_archive;
use super::entry_meta::{read_meta, EntryMeta};
use super::entry_path::{classify_whiteout, RelativePath, Whiteout};
use super::error::{RootfsError, RootfsResult};
use super::nofollow::NodeHandle;
use super::options::{AbsoluteNames, ApplyOptions, Devices, EntryKind, Existing, Ownership};
use super::render::{timestamps, DeferredModes, Render};
pub use super::report::ApplyReport;
use super::short_name::short_name;

#[cfg(any(test, feature = "test-support"))]
/// Applies the tar stream `tar` (already decompressed: see [`super::decompress`]) to the
/// directory `target`, which must exist: a render of one layer ([`Render`] applies several,
/// giving directories their modes only after the last). On error the target holds part of
/// the layer: callers render into a directory of their own and discard it on failure.
pub fn apply_layer(
    target: &std::path::Path,
    tar: impl Read,
    options: &ApplyOptions,
) -> RootfsResult<ApplyReport> {
    let mut render = Render::begin(target)?;
    let report = render.apply_layer(tar, options)?;
    render.finish()?;
    Ok(report)
}

pub(super) fn apply_to(
    render: &mut Render,
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
    let mut applier = Applier {
        beneath: &render.beneath,
        deferred: &mut render.deferred,
        options,
        prefix,
        privileged: rustix::process::geteuid().is_root(),
        written: BTreeSet::new(),
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
    Ok(applier.report)
}

pub(super) struct Applier<'o> {
    pub(super) beneath: &'o Beneath,
    /// The render's record of directory modes, applied when it finishes.
    pub(super) deferred: &'o mut DeferredModes,
    pub(super) options: &'o ApplyOptions,
    pub(super) prefix: Option<RelativePath>,
    /// Root ignores permission bits: no directory needs opening up for us.
    pub(super) privileged: bool,
    /// Keys of the paths this layer created (entries and the parents made for them):
    /// whiteouts only remove what lower layers put there.
    pub(super) written: BTreeSet<Vec<u8>>,
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
            (Ok(Outcome::Removed) | Err(_), _) => None,
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
                    self.deferred.forget(path);
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
                    rustix::fs::mkdirat(
                        parent,
                        os(file_name),
                        Mode::from_raw_mode(RENDERING_DIR_MODE),
                    )
                    .map_err(at("creating the directory"))?;
                }
                let dir = open_child_dir(parent, file_name)
                    .map_err(|e| RootfsError::entry(name, "opening the directory", e))?;
                self.set_owner_fd(dir.as_fd(), meta, name)?;
                self.set_xattrs(dir.as_fd(), meta);
                self.deferred.entry(path, meta.mode, meta.mtime);
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
        let at = |context: &'static str| move |e: io::Error| RootfsError::entry(name, context, e);
        rustix::fs::mknodat(
            parent,
            os(file_name),
            file_type,
            Mode::from_raw_mode(0o600),
            device,
        )
        .map_err(|e| at("creating the node")(e.into()))?;
        // Everything after through a descriptor of the node itself: chmod by name would
        // follow a symlink put in its place (issue 16).
        let node =
            NodeHandle::open(parent, file_name, file_type).map_err(at("opening the node"))?;
        if self.options.ownership == Ownership::FromArchive {
            let (uid, gid) = owner(meta, name)?;
            node.set_owner(uid, gid).map_err(at("setting the owner"))?;
        }
        node.set_mode(meta.mode).map_err(at("setting the mode"))?;
        node.set_times(&timestamps(meta.mtime))
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
        let (written, deferred) = (&mut self.written, &mut *self.deferred);
        let opened = self
            .beneath
            .open_dir(parent_path, true, &mut |event| match event {
                WalkEvent::Created(path) => {
                    written.insert(path.key());
                    deferred.made(path);
                }
                WalkEvent::OpenedUp(path, mode) => deferred.opened_up(path, mode),
            });
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
            self.deferred.opened_up(path, mode);
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
        self.deferred
            .entry(&RelativePath::root(), meta.mode, meta.mtime);
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
