//! Saying "the disk is full" when a backend's own error does not: SQLite reports a full disk
//! met while growing its shared-memory file as "disk I/O error", and LMDB reports a write cut
//! short by a full disk as `EIO`. When such an error comes, the backend asks here whether the
//! file system holding its files is full, and adds that to the error, so the user learns the
//! cause and the next step (free space, then retry: nothing was committed).

use std::path::Path;

/// Free space under which a file system counts as full for these notes: less than one
/// database page run, or what a failed write of one blob batch may have left.
const FULL_BELOW_BYTES: u64 = 1 << 20;

/// `Some("the file system holding <path> is full (<n> bytes free): free space and retry")`
/// when it has less than a mebibyte free; `None` otherwise or if it cannot be asked.
pub(crate) fn full_file_system_note(path: &Path) -> Option<String> {
    // The path itself may not exist yet (a database being created): ask its nearest parent.
    let existing = path.ancestors().find(|p| p.exists())?;
    let stat = rustix::fs::statvfs(existing).ok()?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    (free < FULL_BELOW_BYTES).then(|| {
        format!(
            "the file system holding {} is full ({free} bytes free): free space and retry",
            path.display()
        )
    })
}
