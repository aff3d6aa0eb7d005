//! Making many staged files durable with one `syncfs(2)` instead of one `fsync` each: on ext4
//! a lone fsync of a small new file costs a journal commit (milliseconds), so an import of
//! thousands of small blobs would spend most of its time there.
//!
//! A writer that defers its sync notes the clock when it was created and when it finished.
//! [`FilesystemSync::sync`] reads the clock, then syncs the filesystem: every writer that
//! finished before that reading had written everything before the syncfs began, so it is
//! durable once the syncfs succeeds. Errors: syncfs reports each writeback error of the
//! filesystem once per open descriptor since it was opened (Linux 5.8 and later), and ours is
//! opened with the store, before any write. One error may have been another file's; it could
//! also have been that of a writer still running, which a later sync would wrongly cover. So
//! once an error is seen, no writer alive at that moment counts as covered: each syncs its own
//! file, whose descriptor reports its own errors. Anything not covered falls back to `fsync`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::traits::{StorageError, StorageResult};
use crate::util::io_context::{IoContext, IoResultExt};

/// Clock readings of one writer: when it was created and when it finished writing.
#[derive(Clone, Copy, Debug)]
pub(super) struct WriterTimes {
    pub(super) started: u64,
    pub(super) finished: u64,
}

#[derive(Debug, Default)]
struct SyncRecord {
    /// Writers that finished at or before this reading are durable.
    synced_through: u64,
    /// A writeback error was seen at this reading: writers started at or before it are not
    /// covered by any sync.
    error_seen_at: u64,
}

#[derive(Debug)]
pub(super) struct FilesystemSync {
    /// A descriptor on the store's filesystem, opened before any of our writes.
    directory: File,
    path: PathBuf,
    clock: AtomicU64,
    /// Also orders the syncs of this process, so errors are seen in order.
    record: Mutex<SyncRecord>,
}

impl FilesystemSync {
    pub(super) fn open(dir: &Path) -> StorageResult<FilesystemSync> {
        let directory = File::open(dir).io_context("opening the directory", dir)?;
        Ok(FilesystemSync {
            directory,
            path: dir.to_path_buf(),
            // Starts above the zeroes of the record, so nothing is covered before a sync.
            clock: AtomicU64::new(1),
            record: Mutex::new(SyncRecord::default()),
        })
    }

    /// The clock, for a writer to note when it starts and when it finishes.
    pub(super) fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Whether a successful sync made the writer's content durable.
    pub(super) fn covers(&self, times: WriterTimes) -> bool {
        let record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        times.finished <= record.synced_through && times.started > record.error_seen_at
    }

    /// Syncs the whole filesystem; afterwards every writer that finished before the call is
    /// covered, unless an error was reported.
    pub(super) fn sync(&self) -> StorageResult<()> {
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        let reading = self.clock.fetch_add(1, Ordering::SeqCst);
        match sync_filesystem(&self.directory) {
            Ok(true) => {
                record.synced_through = record.synced_through.max(reading);
                Ok(())
            }
            // No syncfs here: nothing is covered, every writer syncs its own file.
            Ok(false) => Ok(()),
            Err(source) => {
                record.error_seen_at = self.clock.load(Ordering::SeqCst);
                Err(StorageError::from(IoContext::new(
                    "syncing the filesystem of",
                    &self.path,
                    source,
                )))
            }
        }
    }
}

/// `syncfs(2)`; `Ok(false)` where the system has none.
#[cfg(target_os = "linux")]
fn sync_filesystem(directory: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `directory` keeps open.
    if unsafe { libc::syncfs(directory.as_raw_fd()) } == 0 {
        Ok(true)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(_directory: &File) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_covers_writers_that_finished_before_it_only() {
        let dir = tempfile::tempdir().unwrap();
        let sync = FilesystemSync::open(dir.path()).unwrap();
        let before = WriterTimes {
            started: sync.now(),
            finished: sync.now(),
        };
        assert!(!sync.covers(before), "nothing is covered before a sync");
        let running_since = sync.now();
        sync.sync().unwrap();
        assert!(sync.covers(before));
        let after = WriterTimes {
            started: running_since,
            finished: sync.now(),
        };
        assert!(!sync.covers(after), "finished after the sync began");
    }

    #[test]
    fn after_an_error_no_writer_alive_then_is_covered() {
        let dir = tempfile::tempdir().unwrap();
        let sync = FilesystemSync::open(dir.path()).unwrap();
        let times = WriterTimes {
            started: sync.now(),
            finished: sync.now(),
        };
        // As `sync` records an error it saw.
        sync.record.lock().unwrap().error_seen_at = sync.now();
        sync.sync().unwrap();
        assert!(!sync.covers(times));
        let later = sync.now() + 1;
        sync.clock.store(later, Ordering::SeqCst);
        let fresh = WriterTimes {
            started: later,
            finished: later,
        };
        sync.sync().unwrap();
        assert!(sync.covers(fresh));
    }
}
