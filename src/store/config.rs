//! `store.json`: the format version of a store directory and the backend chosen for each role.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{StoreError, StoreResult};
use super::fsutil::write_atomically;
use crate::traits::Role;
use crate::util::fsync::fsync_dir;
use crate::util::io_context::{IoContext, IoResultExt};

pub const CONFIG_FILE: &str = "store.json";
/// Version of the store's own format (`store.json` and what it promises about the data):
/// 1, blobs without holder marks; 2, every indexed blob has a holder (an owner mark or a
/// key/value reference). Older stores are upgraded by `super::upgrade` under the exclusive
/// store lock; newer ones are refused.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    pub format_version: u32,
    /// Backend name per role: `blobs`, `index`, `extra`, `kv`.
    pub backends: BTreeMap<String, String>,
}

impl Default for StoreConfig {
    /// The embedded default: content as files, metadata in SQLite. No server needed.
    fn default() -> Self {
        let mut backends = BTreeMap::new();
        backends.insert(Role::Blobs.name().to_string(), "fs".to_string());
        for role in [Role::Index, Role::Extra, Role::Kv] {
            backends.insert(role.name().to_string(), "sqlite".to_string());
        }
        StoreConfig {
            format_version: FORMAT_VERSION,
            backends,
        }
    }
}

impl StoreConfig {
    pub fn backend(&self, role: Role) -> &str {
        self.backends.get(role.name()).map_or("", String::as_str)
    }

    pub fn set_backend(&mut self, role: Role, name: &str) {
        self.backends
            .insert(role.name().to_string(), name.to_string());
    }

    pub fn path(store_dir: &Path) -> PathBuf {
        store_dir.join(CONFIG_FILE)
    }

    /// Reads `store.json`; `Ok(None)` when the directory holds no store yet.
    pub fn read(store_dir: &Path) -> StoreResult<Option<StoreConfig>> {
        let path = Self::path(store_dir);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::from(IoContext::new("reading", &path, e))),
        };
        let config: StoreConfig =
            serde_json::from_slice(&text).map_err(|e| StoreError::Config {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if config.format_version > FORMAT_VERSION {
            return Err(StoreError::Config {
                path,
                reason: format!(
                    "format version {}, but this oci-store supports {} at most: upgrade oci-store",
                    config.format_version, FORMAT_VERSION
                ),
            });
        }
        for role in Role::ALL {
            if config.backend(role).is_empty() {
                return Err(StoreError::Config {
                    path,
                    reason: format!("no backend recorded for {role}"),
                });
            }
        }
        Ok(Some(config))
    }

    /// Replaces `store.json` atomically (temp file, fsync, rename, fsync dir).
    pub fn write(&self, store_dir: &Path) -> StoreResult<()> {
        let path = Self::path(store_dir);
        let text = serde_json::to_vec_pretty(self).expect("config serializes");
        write_atomically(&path, |file| {
            file.write_all(&text)?;
            file.write_all(b"\n")
        })?;
        fsync_dir(store_dir).io_context("syncing directory", store_dir)?;
        Ok(())
    }
}
