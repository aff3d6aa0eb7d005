//! Directory fsync: makes the entries of a directory (a rename into it, an unlink from it)
//! survive a crash. Callers add the context their layer's error names.

use std::path::Path;

pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
