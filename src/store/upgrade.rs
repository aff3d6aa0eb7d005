//! Upgrading a store's on-disk formats, under the exclusive store lock.
//!
//! Every backend records the version of its format (the registry's [`FormatHooks`]), and
//! `store.json` records the version of the store's own format. A process running older code
//! must never see a format change under it, and the only thing every process holds while it
//! has a store open is the shared store lock. So an upgrade runs only under the exclusive store
//! lock: when opening finds something to upgrade, it lets go of its shared lock, waits a bounded
//! time for the exclusive one (and fails, saying who to close, if other processes keep the store
//! open), looks again (another process may have upgraded meanwhile), backs up, upgrades, and
//! goes on with the shared lock. Backend conversion runs the same upgrade under its own
//! exclusive lock first.
//!
//! Store format versions: 1, blobs without holder marks; 2, every indexed blob has a holder
//! (an owner mark `owner.<name>` or a key/value entry referencing it). 1 -> 2 gives every
//! indexed blob without an owner mark the base store's mark, so a user's `blob put` from
//! before stays the user's — also one a key/value entry references: that entry is not the
//! user's only hold, and removing it must not delete the blob.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::config::{StoreConfig, FORMAT_VERSION};
use super::error::{StoreError, StoreResult};
use super::holder::Holder;
use super::locks::{LockGuard, LockMode, LockPaths};
use crate::traits::registry::{
    backend_named, open_blob_store, open_extra_data, open_index, open_kv_store,
    refuse_unknown_format,
};
use crate::traits::{FormatStatus, RecordPages, Role};

/// How long opening waits for other processes to close the store when it must be upgraded.
pub const UPGRADE_WAIT: Duration = Duration::from_secs(10);

/// How often the exclusive store lock is tried while waiting for it.
const UPGRADE_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// One thing that must be upgraded before the store is used.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// A backend's files (`name`, as the registry knows it).
    Backend { name: String, status: FormatStatus },
    /// `store.json` and what its format version promises.
    Store { from: u32 },
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::Backend {
                name,
                status: FormatStatus::NeedsMigration { from, to },
            } => format!("{name} format {from} to {to}"),
            Step::Backend { name, .. } => format!("{name} format (record its version)"),
            Step::Store { from } => format!("store format {from} to {FORMAT_VERSION}"),
        }
    }
}

/// What must be upgraded in the store `config` describes; refuses formats newer than this code.
fn plan(dir: &Path, config: &StoreConfig) -> StoreResult<Vec<Step>> {
    let mut names: Vec<&str> = Role::ALL.iter().map(|role| config.backend(*role)).collect();
    names.sort_unstable();
    names.dedup();
    let mut steps = Vec::new();
    for name in names {
        let backend = backend_named(name)?;
        let status = (backend.format.status)(dir)?;
        if let FormatStatus::Newer { .. } = status {
            return Err(refusal_of_newer(dir, config, backend.name, status));
        }
        if status.needs_upgrade() {
            steps.push(Step::Backend {
                name: name.to_string(),
                status,
            });
        }
    }
    if config.format_version < FORMAT_VERSION {
        steps.push(Step::Store {
            from: config.format_version,
        });
    }
    Ok(steps)
}

/// The backend's own refusal, which names its files and the versions: opening it for a role
/// it fills in this store must refuse a newer format.
fn refusal_of_newer(
    dir: &Path,
    config: &StoreConfig,
    name: &'static str,
    status: FormatStatus,
) -> StoreError {
    let role = Role::ALL
        .into_iter()
        .find(|role| config.backend(*role) == name)
        .expect("the name comes from the config");
    let opened = match role {
        Role::Blobs => open_blob_store(name, dir).map(drop),
        Role::Index => open_index(name, dir).map(drop),
        Role::Extra => open_extra_data(name, dir).map(drop),
        Role::Kv => open_kv_store(name, dir).map(drop),
    };
    match opened {
        Err(refusal) => refusal.into(),
        Ok(()) => match refuse_unknown_format(name, "backend files in", dir, status) {
            Err(refusal) => refusal.into(),
            Ok(()) => unreachable!("a newer format is always refused"),
        },
    }
}

/// Whether the store `config` describes needs an upgrade (checked under the shared lock).
pub(super) fn is_needed(dir: &Path, config: &StoreConfig) -> StoreResult<bool> {
    Ok(!plan(dir, config)?.is_empty())
}

/// Takes the store lock exclusive within `wait`, or fails naming what must be upgraded.
pub(super) fn lock_exclusive_for_upgrade(
    dir: &Path,
    config: &StoreConfig,
    wait: Duration,
) -> StoreResult<LockGuard> {
    let lock_path = LockPaths::store_lock(dir);
    let deadline = Instant::now() + wait;
    loop {
        if let Some(exclusive) = LockGuard::try_acquire(&lock_path, LockMode::Exclusive)? {
            return Ok(exclusive);
        }
        if Instant::now() >= deadline {
            let steps = plan(dir, config)?;
            return Err(StoreError::UpgradeBlocked {
                dir: dir.to_path_buf(),
                upgrade: steps
                    .iter()
                    .map(Step::describe)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        std::thread::sleep(UPGRADE_RETRY_PAUSE);
    }
}

/// Runs every upgrade the store needs. The caller holds the store lock exclusively.
pub(super) fn run(dir: &Path, config: &StoreConfig) -> StoreResult<()> {
    for step in plan(dir, config)? {
        match step {
            Step::Backend { name, .. } => (backend_named(&name)?.format.upgrade)(dir)?,
            Step::Store { from } => upgrade_store_format(dir, config, from)?,
        }
    }
    Ok(())
}

/// `store.json` 1 -> 2: every indexed blob with no holder gets the base store's mark, then
/// `store.json` is rewritten (atomically) with the new version. A crash in between leaves
/// version 1, and the upgrade runs again (setting a mark twice changes nothing).
fn upgrade_store_format(dir: &Path, config: &StoreConfig, from: u32) -> StoreResult<()> {
    if from < 2 {
        back_up_metadata(dir, config)?;
        crate::crash_point!("upgrade.store.after-backup");
        give_unowned_blobs_the_base_mark(dir, config)?;
        crate::crash_point!("upgrade.store.after-marks");
    }
    let mut upgraded = config.clone();
    upgraded.format_version = FORMAT_VERSION;
    upgraded.write(dir)
}

/// Backups of the metadata backends the store upgrade changes (extra data, where marks go).
fn back_up_metadata(dir: &Path, config: &StoreConfig) -> StoreResult<Vec<PathBuf>> {
    let backend = backend_named(config.backend(Role::Extra))?;
    Ok((backend.format.back_up)(dir)?.into_iter().collect())
}

fn give_unowned_blobs_the_base_mark(dir: &Path, config: &StoreConfig) -> StoreResult<()> {
    let index = open_index(config.backend(Role::Index), dir)?;
    let extra = open_extra_data(config.backend(Role::Extra), dir)?;
    let base_mark = Holder::BASE.mark();
    for record in RecordPages::new(&*index, 1000) {
        let digest = record?.digest;
        let has_owner = extra
            .types(&digest)?
            .iter()
            .any(|data_type| Holder::is_mark(data_type));
        if !has_owner {
            extra.set(&digest, &base_mark, b"")?;
            crate::crash_point!("upgrade.store.after-one-mark");
        }
    }
    Ok(())
}
