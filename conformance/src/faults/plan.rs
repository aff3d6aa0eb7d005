//! Which call fails, and how.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use oci_store::traits::{StorageError, StorageResult};
use oci_store::IoContext;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `EIO` on one call (any call), then the device works again.
    Io,
    /// `ENOSPC` on a writing call and every writing call after it, until [`FaultPlan::clear`].
    DiskFull,
}

impl FaultKind {
    pub fn errno(self) -> i32 {
        match self {
            FaultKind::Io => libc::EIO,
            FaultKind::DiskFull => libc::ENOSPC,
        }
    }

    /// What the operating system calls it: the text a clear error must carry.
    pub fn description(self) -> String {
        std::io::Error::from_raw_os_error(self.errno())
            .to_string()
            .split(" (os error")
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// Whether a call reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug)]
pub struct FaultPlan {
    kind: FaultKind,
    /// Eligible calls made so far.
    calls: AtomicU64,
    /// The first eligible call that fails (`u64::MAX`: none).
    fail_at: u64,
    cleared: AtomicBool,
    injected: AtomicU64,
}

impl FaultPlan {
    /// Fails nothing; counts the calls a fault of `kind` could hit.
    pub fn counting(kind: FaultKind) -> Arc<FaultPlan> {
        Self::failing_at(kind, u64::MAX)
    }

    /// Fails eligible call number `call` (from 0), and for [`FaultKind::DiskFull`] every
    /// writing call after it until [`FaultPlan::clear`].
    pub fn failing_at(kind: FaultKind, call: u64) -> Arc<FaultPlan> {
        Arc::new(FaultPlan {
            kind,
            calls: AtomicU64::new(0),
            fail_at: call,
            cleared: AtomicBool::new(false),
            injected: AtomicU64::new(0),
        })
    }

    pub fn kind(&self) -> FaultKind {
        self.kind
    }

    /// The device recovered, space returned: nothing fails from now on.
    pub fn clear(&self) {
        self.cleared.store(true, Ordering::SeqCst);
    }

    /// Eligible calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    fn fails(&self, access: Access) -> bool {
        if self.kind == FaultKind::DiskFull && access == Access::Read {
            return false;
        }
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let fails = !self.cleared.load(Ordering::SeqCst)
            && match self.kind {
                FaultKind::Io => call == self.fail_at,
                FaultKind::DiskFull => call >= self.fail_at,
            };
        if fails {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        fails
    }

    /// For `Write::write`: the bare OS error, as a file would return it.
    pub(super) fn check_io(&self, access: Access) -> std::io::Result<()> {
        if self.fails(access) {
            return Err(std::io::Error::from_raw_os_error(self.kind.errno()));
        }
        Ok(())
    }

    pub(super) fn check(&self, access: Access, what: &str) -> StorageResult<()> {
        if self.fails(access) {
            return Err(StorageError::from(IoContext::new(
                format!("{what} (injected fault)"),
                "<fault>",
                std::io::Error::from_raw_os_error(self.kind.errno()),
            )));
        }
        Ok(())
    }
}
