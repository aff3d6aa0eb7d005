//! The registry's format hooks for the `sqlite` backend: the schema version of
//! `meta/sqlite/store.db`, its backup, and its migration (see [`super::migrations`]).

use std::path::{Path, PathBuf};

use super::connection::{
    backups_dir, database_dir, database_path, open_connection, sqlite_error_at,
};
use super::migrations::{backup_database, migrate, read_version, status as schema_status, Upgrade};
use super::schema::MIGRATIONS;
use crate::traits::{FormatStatus, StorageResult};
use crate::util::io_context::IoResultExt;

pub(super) fn status(store_dir: &Path) -> StorageResult<FormatStatus> {
    schema_status(&database_path(store_dir), MIGRATIONS)
}

/// Copies the database into `backups/` (`<unix-ms>-sqlite-v<version>.db`).
pub(super) fn back_up(store_dir: &Path) -> StorageResult<Option<PathBuf>> {
    let path = database_path(store_dir);
    if !path.exists() {
        return Ok(None);
    }
    let connection = open_connection(&path)?;
    let version = read_version(&connection).map_err(|e| {
        sqlite_error_at(
            &path,
            format!("reading the schema version of {}", path.display()),
            e,
        )
    })?;
    drop(connection);
    backup_database(&path, &backups_dir(store_dir), version).map(Some)
}

/// Backs up and migrates the database to the current schema (under the exclusive store lock).
pub(super) fn upgrade(store_dir: &Path) -> StorageResult<()> {
    let dir = database_dir(store_dir);
    std::fs::create_dir_all(&dir).io_context("creating the sqlite database folder", &dir)?;
    let path = database_path(store_dir);
    let mut connection = open_connection(&path)?;
    migrate(
        &mut connection,
        &path,
        &backups_dir(store_dir),
        MIGRATIONS,
        Upgrade::Migrate,
    )
}
