//! Rendering into a directory the user names, all or nothing: the directory must be new (or
//! empty), the tree is built in a staging directory beside it (same file system) and renamed
//! into place only when complete; on failure the staging directory goes.
//!
//! The staging directory is private (0700) and the tree is built in a directory inside it:
//! no other user can enter the tree while it is built (a root render sets owners and modes
//! there, see `render`), and the tree's own root is made with the umask, as `mkdir` would make
//! the target, so the directory the user gets follows their umask.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::beneath::remove_tree;
use super::error::{RootfsError, RootfsResult};
use crate::util::clock::now_unix_nanos;
use crate::util::io_context::{IoContext, IoResultExt};

/// Fills a new directory at `target` with `build` (given the staging directory), atomically.
pub fn render_into_new_directory<T, E: From<RootfsError>>(
    target: &Path,
    build: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    check_target(target)?;
    let staging = staging_dir(target)?;
    let tree = staging.join(TREE);
    let built = std::fs::create_dir(&tree)
        .map_err(|e| {
            RootfsError::from(IoContext::new("creating the render directory", &tree, e)).into()
        })
        .and_then(|()| build(&tree));
    let result = built.and_then(|value| {
        // rename(2) replaces an empty directory, so an empty target is taken over too.
        crate::crash_point!("rootfs.copy-out.before-rename");
        std::fs::rename(&tree, target)
            .io_context("moving the rendered tree into place", target)
            .map_err(RootfsError::from)?;
        Ok(value)
    });
    // Empty once the tree moved out; whatever a failure left otherwise.
    let _ = remove_tree(&staging);
    result
}

/// The target must be new (or an empty directory): a render never mixes with what is there.
fn check_target(target: &Path) -> RootfsResult<()> {
    let refuse = |reason: &str| RootfsError::Target {
        path: target.to_path_buf(),
        reason: reason.to_string(),
    };
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RootfsError::from(IoContext::new(
            "checking the render target",
            target,
            e,
        ))),
        Ok(metadata) if metadata.is_dir() => {
            let mut entries =
                std::fs::read_dir(target).io_context("checking the render target", target)?;
            match entries.next() {
                None => Ok(()),
                Some(_) => Err(refuse("it is not empty: render into a new directory")),
            }
        }
        Ok(_) => Err(refuse(
            "it exists and is not a directory: render into a new directory",
        )),
    }
}

/// The staging directory's tree, which becomes the target.
const TREE: &str = "tree";

/// A new private (0700) directory beside `target`.
fn staging_dir(target: &Path) -> RootfsResult<PathBuf> {
    let parent = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().ok_or_else(|| RootfsError::Target {
        path: target.to_path_buf(),
        reason: "it names no directory".to_string(),
    })?;
    let nanos = now_unix_nanos();
    let staging = parent.join(format!(
        ".{}.render-{}-{nanos}",
        name.to_string_lossy(),
        std::process::id()
    ));
    // The staging directory is ours, not the user's: a failure names the target and its
    // parent, what the user can act on.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| RootfsError::Target {
            path: target.to_path_buf(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("its parent directory {} does not exist", parent.display())
                }
                std::io::ErrorKind::PermissionDenied => format!(
                    "this user may not create directories in {}",
                    parent.display()
                ),
                _ => format!(
                    "cannot create a directory in {}: {}",
                    parent.display(),
                    crate::util::io_context::plain_io_message(&e)
                ),
            },
        })?;
    Ok(staging)
}
