//! The file system a store lives on: its size and what is available, for `--min-free` and the
//! watermarks.

use std::path::Path;

use serde::Serialize;

use crate::store::{StoreError, StoreResult};
use crate::util::io_context::IoContext;

/// Size and available bytes of a file system (what `df` shows; available to an unprivileged
/// user, so reserved blocks count as used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FsSpace {
    /// The file system's size in bytes.
    pub total_bytes: u64,
    /// Bytes available to the store's user.
    pub available_bytes: u64,
}

impl FsSpace {
    /// The file system holding `dir`.
    pub fn of(dir: &Path) -> StoreResult<FsSpace> {
        let stat = rustix::fs::statvfs(dir).map_err(|errno| {
            StoreError::Io(IoContext::new(
                "reading the size of the file system of",
                dir,
                errno.into(),
            ))
        })?;
        Ok(FsSpace {
            total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
            available_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
        })
    }

    /// Bytes in use, as `df` counts them against the size.
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.available_bytes)
    }
}
