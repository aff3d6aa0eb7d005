//! How a layer is applied: what the caller decides per flavour (OCI: lower layers first, upper
//! overwrites, whiteouts; appc: upper image first, lower ones never overwrite, `rootfs/`
//! prefix, path whitelist), and what depends on who we run as.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What an entry does when its path already exists in the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Existing {
    /// The entry replaces what is there (a directory over a directory keeps the children and
    /// takes the new metadata). OCI: layers are applied lowest first.
    #[default]
    Overwrite,
    /// What is there stays, the entry is skipped. appc (rkt): the upper image is rendered
    /// first and its dependencies fill in only what it does not have.
    KeepExisting,
}

/// What a name with a leading `/` means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbsoluteNames {
    /// Refused (appc: an ACI's names are relative to the archive).
    Refuse,
    /// Relative to the target, as `umoci`, containerd and GNU tar read it (umoci itself writes
    /// the root of an inserted tree as `/`). Never an escape: every walk starts at the
    /// target, and `..` is still refused.
    InTarget,
}

/// Whose files the rendered tree holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// The uid/gid of each entry (needs root, or CAP_CHOWN).
    FromArchive,
    /// The user running the render owns everything (rootless).
    CurrentUser,
}

/// What happens to character and block device entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Devices {
    /// `mknod` them (needs root; fails otherwise).
    Create,
    /// Skip them and count them in [`super::ApplyReport::devices_skipped`] (rootless: an
    /// unprivileged user cannot create them, and `umoci unpack --rootless` skips them too).
    Skip,
}

/// The kind of an archive entry, as the path filter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    HardLink,
    Fifo,
    CharDevice,
    BlockDevice,
}

/// Decides per entry whether it is written: gets the path relative to the target (after
/// `strip_prefix`, no leading `/`; empty for the root itself) and the entry's kind.
pub type PathFilter = Arc<dyn Fn(&Path, EntryKind) -> bool + Send + Sync>;

/// Options of [`super::apply_layer`]. `ApplyOptions::default()` is the OCI layer rule for the
/// user we run as (see [`ApplyOptions::for_current_user`]).
#[derive(Clone)]
pub struct ApplyOptions {
    /// Only entries under this relative directory are written, with it taken off (appc:
    /// `rootfs`). Others are counted in `outside_prefix` and not written; the caller's
    /// validation decides whether they are an error.
    pub strip_prefix: Option<PathBuf>,
    /// OCI whiteouts: `.wh.NAME` removes NAME of lower layers, `.wh..wh..opq` makes its
    /// directory opaque. Off: such names are ordinary files. Needs [`Existing::Overwrite`].
    pub whiteouts: bool,
    pub existing: Existing,
    /// Entry and hard-link names with a leading `/`.
    pub absolute_names: AbsoluteNames,
    pub ownership: Ownership,
    pub devices: Devices,
    /// Apply `SCHILY.xattr.*` PAX records. `user.*` always; others (security, trusted) need
    /// privileges and are skipped (counted) where the kernel refuses them.
    pub xattrs: bool,
    pub path_filter: Option<PathFilter>,
}

impl ApplyOptions {
    /// Owners and device nodes only when running as root (euid 0); rootless otherwise.
    pub fn for_current_user() -> ApplyOptions {
        if rustix::process::geteuid().is_root() {
            ApplyOptions::privileged()
        } else {
            ApplyOptions::rootless()
        }
    }

    /// Everything as the running user, device nodes skipped: what an unprivileged user can do,
    /// whoever runs it (like `umoci unpack --rootless`).
    pub fn rootless() -> ApplyOptions {
        ApplyOptions {
            strip_prefix: None,
            whiteouts: true,
            existing: Existing::Overwrite,
            absolute_names: AbsoluteNames::Refuse,
            ownership: Ownership::CurrentUser,
            devices: Devices::Skip,
            xattrs: false,
            path_filter: None,
        }
    }

    /// Owners from the archive, device nodes created: needs root.
    pub fn privileged() -> ApplyOptions {
        ApplyOptions {
            ownership: Ownership::FromArchive,
            devices: Devices::Create,
            ..ApplyOptions::rootless()
        }
    }

    pub fn with_strip_prefix(mut self, prefix: impl Into<PathBuf>) -> Self {
        self.strip_prefix = Some(prefix.into());
        self
    }

    pub fn with_whiteouts(mut self, whiteouts: bool) -> Self {
        self.whiteouts = whiteouts;
        self
    }

    pub fn with_existing(mut self, existing: Existing) -> Self {
        self.existing = existing;
        self
    }

    pub fn with_absolute_names(mut self, absolute_names: AbsoluteNames) -> Self {
        self.absolute_names = absolute_names;
        self
    }

    pub fn with_path_filter(
        mut self,
        filter: impl Fn(&Path, EntryKind) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.path_filter = Some(Arc::new(filter));
        self
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions::for_current_user()
    }
}

impl fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("strip_prefix", &self.strip_prefix)
            .field("whiteouts", &self.whiteouts)
            .field("existing", &self.existing)
            .field("absolute_names", &self.absolute_names)
            .field("ownership", &self.ownership)
            .field("devices", &self.devices)
            .field("xattrs", &self.xattrs)
            .field("path_filter", &self.path_filter.as_ref().map(|_| "<fn>"))
            .finish()
    }
}
