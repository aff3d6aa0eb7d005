//! What applying a layer did: counts a caller can report, warn about (devices skipped) or
//! add up over several layers.

use serde::Serialize;

/// What one [`apply_layer`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Archive entries read (whatever became of them).
    pub entries: u64,
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    pub fifos: u64,
    pub devices_created: u64,
    /// Character and block devices not created ([`Devices::Skip`]): a warning, not an error.
    pub devices_skipped: u64,
    /// `.wh.NAME` entries applied.
    pub whiteouts: u64,
    /// `.wh..wh..opq` entries applied.
    pub opaque_directories: u64,
    /// Other `.wh..wh.` names (aufs bookkeeping), ignored.
    pub reserved_whiteouts_ignored: u64,
    /// Entries the path filter left out.
    pub filtered: u64,
    /// Entries outside `strip_prefix`, not written.
    pub outside_prefix: u64,
    /// Entries not written because the path already existed ([`Existing::KeepExisting`]) or
    /// lies below a non-directory an earlier image put there.
    pub kept_existing: u64,
    /// Extended attributes the kernel refused (unprivileged namespaces, unsupported fs).
    pub xattrs_skipped: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

impl ApplyReport {
    /// Adds another layer's counts to these.
    pub fn add(&mut self, other: &ApplyReport) {
        self.entries += other.entries;
        self.files += other.files;
        self.directories += other.directories;
        self.symlinks += other.symlinks;
        self.hard_links += other.hard_links;
        self.fifos += other.fifos;
        self.devices_created += other.devices_created;
        self.devices_skipped += other.devices_skipped;
        self.whiteouts += other.whiteouts;
        self.opaque_directories += other.opaque_directories;
        self.reserved_whiteouts_ignored += other.reserved_whiteouts_ignored;
        self.filtered += other.filtered;
        self.outside_prefix += other.outside_prefix;
        self.kept_existing += other.kept_existing;
        self.xattrs_skipped += other.xattrs_skipped;
        self.bytes += other.bytes;
    }
}
