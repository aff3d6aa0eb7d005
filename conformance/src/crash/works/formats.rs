//! Format works: the store-format upgrade 1 -> 2 with the backends' own format records
//! (fs `blobs/format-version`, the LMDB `format` record), the SQLite schema migration of an
//! unversioned database, and a backend conversion of every role.

use std::path::Path;

use oci_store::store::{convert_store, Holder, StoreConfig, WriteOptions, FORMAT_VERSION};
use oci_store::traits::registry::{
    backends_for, open_blob_store, open_extra_data, open_index, open_kv_store,
};
use oci_store::traits::{Role, SortedDigests};
use oci_store::{BackendChoice, Store};

use super::super::snapshot::Snapshot;
use super::super::trial::Trial;
use super::Work;
use crate::check::TestResult;
use crate::content::content;
use crate::matrix::Combination;
use crate::oci::support::layout_with_refs;
use crate::{ensure, ensure_eq, Context};

/// Base blobs, an entry referencing one, and an OCI image: what the format works carry over.
fn fill(store: &Store, trial: &Trial) -> Result<Vec<oci_store::Digest>, String> {
    let mut written = Vec::new();
    for n in 0..3u64 {
        let bytes = content(4000 + n, 2_000 + 50_000 * n as usize);
        written.push(
            store
                .write_bytes(&bytes, &WriteOptions::default())
                .context("writing")?
                .digest,
        );
    }
    store
        .put_data("crash.ref", "first", b"kept", Some(&written[0]))
        .context("putting an entry")?;
    let layout = trial.inputs().join("layout");
    layout_with_refs(&layout, &["crash/a:1"])?;
    oci_store::stores::oci::OciStore::new(store)
        .import_layout(
            &layout,
            &oci_store::stores::oci::ImportOptions {
                all: true,
                ..Default::default()
            },
        )
        .context("importing")?;
    Ok(written)
}

fn expected_path(trial: &Trial) -> std::path::PathBuf {
    trial.inputs().join("expected.json")
}

fn save_expected(store: &Store, trial: &Trial) -> Result<(), String> {
    let json = serde_json::to_vec(&Snapshot::of(store)?).context("serializing")?;
    std::fs::write(expected_path(trial), json).context("saving the expected snapshot")
}

/// The store's contents now are what they were before the work: nothing lost or added.
fn unchanged(store: &Store, trial: &Trial) -> TestResult {
    let saved = std::fs::read(expected_path(trial)).context("reading the expected snapshot")?;
    let expected: Snapshot = serde_json::from_slice(&saved).context("parsing")?;
    let differences = Snapshot::of(store)?.differences(&expected);
    ensure!(
        differences.is_empty(),
        "the store's contents changed:\n{}",
        differences.join("\n")
    );
    Ok(())
}

/// Removes the version record of the store's LMDB environment, as oci-store versions before
/// format records left it (opened with heed directly, the store closed).
fn forget_lmdb_format(store_dir: &Path) -> Result<(), String> {
    use heed::types::Bytes;
    let path = store_dir.join("meta/lmdb");
    // SAFETY: no other handle to this environment is open in this process.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .max_dbs(16)
            .map_size(1 << 30)
            .open(&path)
    }
    .context("opening the LMDB environment")?;
    let wtxn = env.write_txn().context("write transaction")?;
    let format = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            let format = opener.create_database::<Bytes, Bytes>(wtxn, Some("format"))?;
            Ok(heed::CommitOrAbort::<_, ()>::Commit(format))
        })
        .context("opening the format database")?
        .unwrap_commit();
    let mut wtxn = env.write_txn().context("write transaction")?;
    format.delete(&mut wtxn, b"version").context("deleting")?;
    wtxn.commit().context("committing")?;
    env.prepare_for_closing().wait();
    Ok(())
}

/// A store written before holder marks and format records: `store.json` at format 1, the
/// base store's marks missing, no fs `format-version`, no LMDB format record.
pub struct StoreUpgrade;

impl Work for StoreUpgrade {
    fn name(&self) -> &'static str {
        "store-upgrade"
    }

    fn runs_on_the_trial_store(&self) -> bool {
        false
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        let written = fill(&store, trial)?;
        save_expected(&store, trial)?;
        for digest in &written {
            store
                .extra_data()
                .remove(digest, &Holder::BASE.mark())
                .context("removing a mark")?;
        }
        drop(store);
        let dir = trial.store_dir();
        let mut config = StoreConfig::read(&dir)
            .context("reading store.json")?
            .ok_or("no store.json")?;
        config.format_version = 1;
        config.write(&dir).context("writing store.json")?;
        if config.backend(Role::Blobs) == "fs" {
            std::fs::remove_file(dir.join("blobs/format-version"))
                .context("removing blobs/format-version")?;
        }
        if config.backend(Role::Index) == "lmdb" {
            forget_lmdb_format(&dir)?;
        }
        Ok(())
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        // Opening upgrades.
        trial.open_store().map(drop)
    }

    fn check(&self, store: &Store, trial: &Trial, _completed: bool) -> TestResult {
        // The harness reopened the store, which finished any interrupted upgrade.
        let config = StoreConfig::read(&trial.store_dir())
            .context("reading store.json")?
            .ok_or("no store.json")?;
        ensure_eq!(config.format_version, FORMAT_VERSION, "store format");
        if config.backend(Role::Blobs) == "fs" {
            ensure!(
                trial.store_dir().join("blobs/format-version").exists(),
                "the fs format was not recorded"
            );
        }
        unchanged(store, trial)
    }
}

/// A SQLite database from before schema versions (tables, no `schema_version`): migrated on
/// open, after a backup, keeping what it held.
pub struct SqliteMigration;

impl Work for SqliteMigration {
    fn name(&self) -> &'static str {
        "sqlite-migration"
    }

    fn runs_on_the_trial_store(&self) -> bool {
        false
    }

    fn applies_to(&self, combination: &Combination) -> bool {
        combination.index == "sqlite"
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let dir = trial.store_dir();
        let mut config = StoreConfig::default();
        let choice = trial.combination.choice();
        for (role, name) in &choice.roles {
            config.set_backend(*role, name);
        }
        std::fs::create_dir_all(dir.join("meta/sqlite")).context("creating the store")?;
        config.write(&dir).context("writing store.json")?;
        let connection = rusqlite::Connection::open(dir.join("meta/sqlite/store.db"))
            .context("creating the database")?;
        connection
            .execute_batch("CREATE TABLE legacy (note TEXT); INSERT INTO legacy VALUES ('kept');")
            .context("filling the database")?;
        Ok(())
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        trial.open_store().map(drop)
    }

    fn check(&self, _store: &Store, trial: &Trial, _completed: bool) -> TestResult {
        let connection = rusqlite::Connection::open(trial.store_dir().join("meta/sqlite/store.db"))
            .context("opening the database")?;
        let note: String = connection
            .query_row("SELECT note FROM legacy", [], |row| row.get(0))
            .context("reading what the database held")?;
        ensure_eq!(note, "kept", "the legacy table's row");
        let version: u32 = connection
            .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
            .context("reading the schema version")?;
        ensure_eq!(version, 1, "schema version after the reopen");
        Ok(())
    }
}

/// `backend convert` of every role: metadata to the other metadata backend, blobs into it.
pub struct Conversion;

fn conversion_target(combination: &Combination) -> Option<&'static str> {
    backends_for(Role::Index).into_iter().find(|name| {
        *name != combination.index
            && backends_for(Role::Extra).contains(name)
            && backends_for(Role::Kv).contains(name)
            && backends_for(Role::Blobs).contains(name)
    })
}

fn target_choice(target: &str) -> BackendChoice {
    BackendChoice::default()
        .metadata(target)
        .role(Role::Blobs, target)
}

impl Work for Conversion {
    fn name(&self) -> &'static str {
        "conversion"
    }

    fn runs_on_the_trial_store(&self) -> bool {
        false
    }

    fn applies_to(&self, combination: &Combination) -> bool {
        conversion_target(combination).is_some()
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        fill(&store, trial)?;
        save_expected(&store, trial)
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let target = conversion_target(&trial.combination).ok_or("no target")?;
        convert_store(&trial.store_dir(), &target_choice(target))
            .map(drop)
            .context("converting")
    }

    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult {
        let target = conversion_target(&trial.combination).ok_or("no target")?;
        let config = StoreConfig::read(&trial.store_dir())
            .context("reading store.json")?
            .ok_or("no store.json")?;
        let source = &trial.combination;
        let recorded: Vec<&str> = Role::ALL.iter().map(|role| config.backend(*role)).collect();
        let before = [source.blobs, source.index, source.extra, source.kv];
        ensure!(
            recorded == before || recorded.iter().all(|name| *name == target),
            "store.json names a mix of backends: {recorded:?}"
        );
        ensure!(
            !completed || recorded.iter().all(|name| *name == target),
            "the conversion completed but store.json names {recorded:?}"
        );
        unchanged(store, trial)
    }

    fn settle(&self, _store: &Store, trial: &Trial) -> TestResult {
        // Once converted, the old backends keep nothing: a conversion frees what it moved.
        let dir = trial.store_dir();
        let source = &trial.combination;
        let leftovers = [
            (
                "blobs",
                open_blob_store(source.blobs, &dir)
                    .and_then(|b| b.sorted_digests().and_then(SortedDigests::into_vec))
                    .map(|d| d.len()),
            ),
            (
                "index",
                open_index(source.index, &dir)
                    .and_then(|i| i.count())
                    .map(|n| n as usize),
            ),
            (
                "extra data",
                open_extra_data(source.extra, &dir)
                    .and_then(|x| x.sorted_digests().and_then(SortedDigests::into_vec))
                    .map(|d| d.len()),
            ),
            (
                "key/value",
                open_kv_store(source.kv, &dir)
                    .and_then(|k| k.data_types())
                    .map(|t| t.len()),
            ),
        ];
        for (what, left) in leftovers {
            let left = left.context(format!("opening the old {what} backend"))?;
            ensure!(
                left == 0,
                "the old {what} backend still holds {left} after the conversion"
            );
        }
        Ok(())
    }
}
