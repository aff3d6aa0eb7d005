//! OCI whiteouts, as the image-spec's layer rules (and `umoci unpack`) apply them: `.wh.NAME`
//! removes NAME as lower layers left it, `.wh..wh..opq` empties its directory of what lower
//! layers put there. Neither touches what the layer itself wrote, wherever in the archive the
//! whiteout comes (the spec: whiteouts apply only to lower layers).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::FileType;

use super::apply::{walk_error, Applier};
use super::beneath::{
    child_names, file_type_at, make_owner_writable, open_child_dir, remove_all_at, WalkError,
};
use super::entry_path::RelativePath;
use super::error::{RootfsError, RootfsResult};

impl Applier<'_> {
    /// `.wh.NAME` in `parent`: NAME as lower layers left it goes.
    pub(super) fn whiteout(
        &mut self,
        parent: &RelativePath,
        hidden: &[u8],
        name: &str,
    ) -> RootfsResult<()> {
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(RootfsError::refused(
                name,
                "a whiteout must name an entry of its directory (not empty, `.` or `..`)",
            ));
        }
        self.parent_cache = None;
        let dir = match self.beneath.open_dir(parent, false, &mut |_| ()) {
            Ok(dir) => dir,
            // Nothing below it in lower layers: nothing to hide.
            Err(WalkError::Missing(_)) => {
                self.report.whiteouts += 1;
                return Ok(());
            }
            Err(error) => return Err(walk_error(error, name)),
        };
        self.open_up(dir.as_fd(), parent, name)?;
        self.remove_lower(dir.as_fd(), &parent.join(hidden))
            .map_err(|e| RootfsError::entry(name, "applying the whiteout", e))?;
        self.report.whiteouts += 1;
        Ok(())
    }

    /// `.wh..wh..opq` in `dir_path`: everything lower layers put in it goes; the directory
    /// itself stays (and exists afterwards).
    pub(super) fn opaque(&mut self, dir_path: &RelativePath, name: &str) -> RootfsResult<()> {
        self.parent_cache = None;
        let Some(dir) = self.parent_dir(dir_path, name)? else {
            return Ok(());
        };
        let children =
            child_names(dir.as_fd()).map_err(|e| RootfsError::entry(name, "listing", e))?;
        for child in children {
            self.remove_lower(dir.as_fd(), &dir_path.join(&child))
                .map_err(|e| RootfsError::entry(name, "applying the opaque whiteout", e))?;
        }
        self.report.opaque_directories += 1;
        Ok(())
    }

    /// Removes what lower layers left at `path` (an entry of `dir`), keeping whatever this
    /// layer wrote there or below it.
    fn remove_lower(&mut self, dir: BorrowedFd<'_>, path: &RelativePath) -> io::Result<()> {
        let name = path.file_name().expect("never the root").to_vec();
        if !self.written_at_or_below(path) {
            remove_all_at(dir, &name)?;
            self.deferred.forget(path);
            return Ok(());
        }
        if file_type_at(dir, &name)? != Some(FileType::Directory) {
            return Ok(());
        }
        let child = open_child_dir(dir, &name)?;
        if !self.privileged {
            if let Some(mode) = make_owner_writable(child.as_fd())? {
                self.deferred.opened_up(path, mode);
            }
        }
        for grandchild in child_names(child.as_fd())? {
            self.remove_lower(child.as_fd(), &path.join(&grandchild))?;
        }
        Ok(())
    }

    fn written_at_or_below(&self, path: &RelativePath) -> bool {
        let key = path.key();
        if self.written.contains(&key) {
            return true;
        }
        let mut below = key;
        below.push(b'/');
        self.written
            .range(below.clone()..)
            .next()
            .is_some_and(|first| first.starts_with(&below))
    }
}
