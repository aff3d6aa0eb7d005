//! Opening a store directory by what its `store.json` records, creating it on first use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::base::Store;
use super::config::StoreConfig;
use super::error::{StoreError, StoreResult};
use super::locks::{LockGuard, LockMode, LockPaths};
use super::upgrade::{self, UPGRADE_WAIT};
use crate::traits::registry::find_backend;
use crate::traits::registry::{open_blob_store, open_extra_data, open_index, open_kv_store};
use crate::traits::Role;
use crate::util::io_context::IoResultExt;

/// Backends asked for by the caller (config file, `--backend`, `--blobs`). For a new store they
/// choose what it is created with; for an existing one they must agree with `store.json`.
#[derive(Clone, Debug, Default)]
pub struct BackendChoice {
    /// Backend per role; roles left out take the default (or what the store records).
    pub roles: BTreeMap<Role, String>,
    /// Backends a new store is created with for roles `roles` leaves out (a user's config
    /// file): unlike `roles`, never compared with what an existing store records.
    pub new_store_defaults: BTreeMap<Role, String>,
}

impl BackendChoice {
    /// `--backend NAME`: every metadata role (index, extra data, key/value).
    pub fn metadata(mut self, name: &str) -> Self {
        for role in [Role::Index, Role::Extra, Role::Kv] {
            self.roles.insert(role, name.to_string());
        }
        self
    }

    /// The backend `name` for one role.
    pub fn role(mut self, role: Role, name: &str) -> Self {
        self.roles.insert(role, name.to_string());
        self
    }

    /// A backend for `role` if the store is new; an existing store keeps what it records.
    pub fn new_store_default(mut self, role: Role, name: &str) -> Self {
        self.new_store_defaults.insert(role, name.to_string());
        self
    }

    /// Whether no role was asked for (the store's recorded backends, or the defaults, are used).
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }
}

/// `$OCI_STORE_DIR`, else `$XDG_DATA_HOME/oci-store`, else `~/.local/share/oci-store`.
pub fn default_store_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OCI_STORE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(data_home) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(data_home).join("oci-store");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/oci-store")
}

/// Opens (or creates) the store in `dir`, upgrading its formats first when needed (waiting up
/// to 10 s, `UPGRADE_WAIT`, for other processes to close it).
pub fn open_store(dir: &Path, choice: &BackendChoice) -> StoreResult<Store> {
    open_store_waiting(dir, choice, UPGRADE_WAIT)
}

/// [`open_store`], waiting up to `upgrade_wait` for the exclusive store lock when the store
/// must be upgraded; then [`StoreError::UpgradeBlocked`].
pub fn open_store_waiting(
    dir: &Path,
    choice: &BackendChoice,
    upgrade_wait: Duration,
) -> StoreResult<Store> {
    std::fs::create_dir_all(dir).io_context("creating store directory", dir)?;
    let lock_path = LockPaths::store_lock(dir);
    let deadline = std::time::Instant::now() + CREATION_WAIT_LIMIT;
    loop {
        let store_lock = LockGuard::acquire(&lock_path, LockMode::Shared)?;
        if let Some(config) = StoreConfig::read(dir)? {
            if !upgrade::is_needed(dir, &config)? {
                return open_configured(dir, &config, choice, store_lock);
            }
            drop(store_lock);
            let exclusive = upgrade::lock_exclusive_for_upgrade(dir, &config, upgrade_wait)?;
            return upgrade_then_open(dir, choice, exclusive);
        }
        // Create under the exclusive store lock so two processes creating the same store at
        // once agree on one configuration. Only try for it: a process that won the race
        // holds the lock shared as long as it keeps the store open (a GC loop, a server), so
        // waiting for exclusive could wait that long. It has written store.json by then, so
        // look again instead.
        drop(store_lock);
        if let Some(exclusive) = LockGuard::try_acquire(&lock_path, LockMode::Exclusive)? {
            if StoreConfig::read(dir)?.is_none() {
                create_config(dir, choice)?;
            }
            return upgrade_then_open(dir, choice, exclusive);
        }
        if std::time::Instant::now() > deadline {
            // Someone keeps the store lock without ever writing store.json (an embedder that
            // opened the directory with `Store::from_parts`): say so rather than spin forever.
            return Err(StoreError::Busy {
                dir: dir.to_path_buf(),
                action: "creating store.json".to_string(),
            });
        }
        // A pause that differs per process, so two creators do not retry in lockstep.
        let jitter = u64::from(std::process::id() % 7);
        std::thread::sleep(CREATION_RETRY_PAUSE + std::time::Duration::from_millis(jitter));
    }
}

/// Holding the store lock exclusively: looks again at what needs upgrading (another process
/// may have done it while this one waited), upgrades it, opens the backends (creating the
/// files of a new store, so that no process ever sees them half made), and goes on with the
/// lock shared.
fn upgrade_then_open(
    dir: &Path,
    choice: &BackendChoice,
    exclusive: LockGuard,
) -> StoreResult<Store> {
    let config = StoreConfig::read(dir)?.ok_or_else(|| StoreError::Config {
        path: StoreConfig::path(dir),
        reason: "removed while the store was being opened".to_string(),
    })?;
    upgrade::run(dir, &config)?;
    let config = StoreConfig::read(dir)?.ok_or_else(|| StoreError::Config {
        path: StoreConfig::path(dir),
        reason: "removed while the store was being upgraded".to_string(),
    })?;
    open_configured(dir, &config, choice, exclusive)
}

/// How long to wait before looking again for the `store.json` another process is creating.
const CREATION_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);
/// How long another process may hold the store lock while no `store.json` appears.
const CREATION_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

fn create_config(dir: &Path, choice: &BackendChoice) -> StoreResult<StoreConfig> {
    let mut config = StoreConfig::default();
    let defaults = choice.new_store_defaults.iter();
    // Asked-for roles last, so they win over the defaults for new stores.
    for (role, name) in defaults.chain(&choice.roles) {
        find_backend(name, *role)?;
        config.set_backend(*role, name);
    }
    config.write(dir)?;
    Ok(config)
}

/// The exclusive store lock of the store at `dir` when nothing is stored in it (no indexed
/// blob, no key/value entry) and no other process has it open; `None` otherwise. A command that
/// created a store and then failed removes it while holding this, so nothing is left behind
/// and nobody else's store is touched.
pub fn lock_if_unused(dir: &Path) -> StoreResult<Option<LockGuard>> {
    let lock_path = LockPaths::store_lock(dir);
    let Some(exclusive) = LockGuard::try_acquire(&lock_path, LockMode::Exclusive)? else {
        return Ok(None);
    };
    let Some(config) = StoreConfig::read(dir)? else {
        return Ok(Some(exclusive));
    };
    let unused = {
        let index = open_index(config.backend(Role::Index), dir)?;
        let kv = open_kv_store(config.backend(Role::Kv), dir)?;
        let mut unused = index.totals()?.records == 0;
        for data_type in kv.data_types()? {
            unused &= kv.list(&data_type, "")?.is_empty();
        }
        unused
    };
    Ok(unused.then_some(exclusive))
}

fn open_configured(
    dir: &Path,
    config: &StoreConfig,
    choice: &BackendChoice,
    store_lock: LockGuard,
) -> StoreResult<Store> {
    for (role, requested) in &choice.roles {
        let recorded = config.backend(*role);
        if recorded != requested {
            return Err(StoreError::BackendMismatch {
                dir: dir.to_path_buf(),
                role: role.name(),
                recorded: recorded.to_string(),
                requested: requested.clone(),
            });
        }
    }
    let blobs = open_blob_store(config.backend(Role::Blobs), dir)?;
    let index = open_index(config.backend(Role::Index), dir)?;
    let extra = open_extra_data(config.backend(Role::Extra), dir)?;
    let kv = open_kv_store(config.backend(Role::Kv), dir)?;
    // Shared from here on (a no-op when it already is; after creating or upgrading the store
    // under the exclusive lock, the backends' files exist complete before anyone else looks).
    store_lock.downgrade()?;
    Store::from_parts_locked(dir, blobs, index, extra, kv, store_lock)
}
