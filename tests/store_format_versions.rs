//! Format versions: every backend records the version of its on-disk format, refuses a newer
//! one naming the store, and is migrated only under the exclusive store lock, after a backup,
//! so a process that still has the store open never sees its format change underneath it.
//! Also the store-format migration 1 -> 2 (`store.json`), which gives blobs written before
//! the ownership rule the base store's holder mark.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_store::store::{
    locks::LockPaths, open_store, open_store_waiting, BackendChoice, LockGuard, LockMode,
    StoreConfig,
};
use oci_store::traits::registry::{open_blob_store, open_extra_data, open_index, open_kv_store};
use oci_store::traits::{Algorithm, BlobRecord, Digest, Expected, Role};

/// How long the other "process" keeps the store open while an upgrade waits.
const HOLD: Duration = Duration::from_millis(1500);

fn sqlite_version(database: &Path) -> u32 {
    let connection = rusqlite::Connection::open(database).unwrap();
    let has_table: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_version')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    if !has_table {
        return 0;
    }
    connection
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .unwrap()
}

fn backups(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir.join("backups")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn write_config(dir: &Path, metadata: &str, format_version: u32) {
    let mut config = StoreConfig::default();
    for role in [Role::Index, Role::Extra, Role::Kv] {
        config.set_backend(role, metadata);
    }
    config.format_version = format_version;
    std::fs::write(
        dir.join("store.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
}

/// A store whose SQLite database predates schema versioning (version 0: tables, no version).
fn sqlite_store_at_version_0(dir: &Path) -> std::path::PathBuf {
    write_config(dir, "sqlite", oci_store::store::FORMAT_VERSION);
    let database = dir.join("meta/sqlite/store.db");
    std::fs::create_dir_all(database.parent().unwrap()).unwrap();
    let connection = rusqlite::Connection::open(&database).unwrap();
    connection
        .execute_batch("CREATE TABLE legacy (note TEXT); INSERT INTO legacy VALUES ('kept');")
        .unwrap();
    database
}

/// Opens the store on another thread while this one keeps it open for [`HOLD`]; returns how
/// long the open took and its outcome.
fn open_while_held(dir: &Path, during_hold: impl FnOnce()) -> (Duration, Result<(), String>) {
    let holder = LockGuard::acquire(&LockPaths::store_lock(dir), LockMode::Shared).unwrap();
    let started = Instant::now();
    let opener = {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let outcome = open_store(&dir, &BackendChoice::default())
                .map(drop)
                .map_err(|e| e.to_string());
            (started.elapsed(), outcome)
        })
    };
    std::thread::sleep(HOLD);
    during_hold();
    assert!(
        !opener.is_finished(),
        "the upgrade must wait while another process has the store open"
    );
    drop(holder);
    opener.join().unwrap()
}

#[test]
fn sqlite_upgrade_waits_for_the_store_lock_then_migrates_after_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_store_at_version_0(dir.path());

    let (took, outcome) = open_while_held(dir.path(), || {
        assert_eq!(
            sqlite_version(&database),
            0,
            "migrated while the store was held"
        );
        assert!(backups(dir.path()).is_empty());
    });
    outcome.unwrap();
    assert!(
        took >= HOLD,
        "opened after {took:?}, while the store was held"
    );
    assert_eq!(sqlite_version(&database), 1);
    let found = backups(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("-sqlite-v0.db"), "{found:?}");
}

#[test]
fn an_upgrade_blocked_by_another_process_fails_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_store_at_version_0(dir.path());
    let holder = LockGuard::acquire(&LockPaths::store_lock(dir.path()), LockMode::Shared).unwrap();
    let started = Instant::now();
    let error = open_store_waiting(dir.path(), &BackendChoice::default(), HOLD)
        .err()
        .unwrap()
        .to_string();
    assert!(started.elapsed() >= HOLD);
    assert!(error.contains(&dir.path().display().to_string()), "{error}");
    assert!(error.contains("must be upgraded"), "{error}");
    assert!(error.contains("sqlite format 0 to 1"), "{error}");
    assert!(error.contains("close the other processes"), "{error}");
    assert!(error.contains("store.lock"), "{error}");
    assert_eq!(sqlite_version(&database), 0);
    assert!(backups(dir.path()).is_empty());
    // The other process still has its store: nothing took its lock away.
    drop(holder);
    drop(open_store(dir.path(), &BackendChoice::default()).unwrap());
    assert_eq!(sqlite_version(&database), 1);
}

#[test]
fn sqlite_backend_opened_directly_does_not_migrate_an_old_database() {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_store_at_version_0(dir.path());
    let error = open_index("sqlite", dir.path()).err().unwrap().to_string();
    assert!(error.contains("must be upgraded"), "{error}");
    assert!(error.contains("store.db"), "{error}");
    assert_eq!(sqlite_version(&database), 0);
}

fn assert_refuses_newer(error: &str, found: &str, supported: &str, names: &str) {
    assert!(error.contains(names), "{error}");
    assert!(error.contains(&format!("version {found}")), "{error}");
    assert!(error.contains(&format!("supports {supported}")), "{error}");
    assert!(error.contains("upgrade oci-store"), "{error}");
}

#[test]
fn a_newer_sqlite_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_store(dir.path(), &BackendChoice::default()).unwrap());
    let database = dir.path().join("meta/sqlite/store.db");
    rusqlite::Connection::open(&database)
        .unwrap()
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    let error = open_store(dir.path(), &BackendChoice::default())
        .err()
        .unwrap()
        .to_string();
    assert_refuses_newer(&error, "99", "1", &database.display().to_string());
    let direct = open_kv_store("sqlite", dir.path())
        .err()
        .unwrap()
        .to_string();
    assert_refuses_newer(&direct, "99", "1", "store.db");
    assert_eq!(sqlite_version(&database), 99);
    assert!(backups(dir.path()).is_empty());
}

#[test]
fn a_newer_fs_blob_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_store(dir.path(), &BackendChoice::default()).unwrap());
    let record = dir.path().join("blobs/format-version");
    assert_eq!(std::fs::read_to_string(&record).unwrap().trim(), "1");
    std::fs::write(&record, "7\n").unwrap();
    let error = open_store(dir.path(), &BackendChoice::default())
        .err()
        .unwrap()
        .to_string();
    assert_refuses_newer(
        &error,
        "7",
        "1",
        &dir.path().join("blobs").display().to_string(),
    );
    let direct = open_blob_store("fs", dir.path()).err().unwrap().to_string();
    assert_refuses_newer(&direct, "7", "1", "blobs");
}

#[test]
fn an_unrecorded_fs_layout_is_read_as_version_1_and_recorded_under_the_store_lock() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_store(dir.path(), &BackendChoice::default()).unwrap());
    let record = dir.path().join("blobs/format-version");
    std::fs::remove_file(&record).unwrap();
    // Opened directly, the layout of version 1 is used as it is, and not recorded.
    drop(open_blob_store("fs", dir.path()).unwrap());
    assert!(!record.exists());

    let (_, outcome) = open_while_held(dir.path(), || assert!(!record.exists()));
    outcome.unwrap();
    assert_eq!(std::fs::read_to_string(&record).unwrap().trim(), "1");
}

/// Reads, then replaces (`Some(Some(v))`: set, `Some(None)`: remove) the format record of the
/// store's LMDB environment, opened with heed directly (never while the library has it open in
/// this process).
fn lmdb_version_record(dir: &Path, replace: Option<Option<u32>>) -> Option<Vec<u8>> {
    use heed::types::Bytes;
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .max_dbs(16)
            .map_size(64 << 20)
            .open(dir.join("meta/lmdb"))
            .unwrap()
    };
    let wtxn = env.write_txn().unwrap();
    let format = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            let format = opener.create_database::<Bytes, Bytes>(wtxn, Some("format"))?;
            Ok(heed::CommitOrAbort::<_, ()>::Commit(format))
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env.write_txn().unwrap();
    let found = format.get(&wtxn, b"version").unwrap().map(<[u8]>::to_vec);
    match replace {
        Some(Some(version)) => format
            .put(&mut wtxn, b"version", &version.to_be_bytes())
            .unwrap(),
        Some(None) => drop(format.delete(&mut wtxn, b"version").unwrap()),
        None => {}
    }
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();
    found
}

/// Stores `bytes` as LMDB blob content the way format 1 did (chunks under the digest), with
/// heed directly.
fn put_format_1_blob(dir: &Path, bytes: &[u8]) -> Digest {
    use heed::types::Bytes;
    let digest = Digest::of_bytes(Algorithm::Sha256, bytes);
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .max_dbs(16)
            .map_size(64 << 20)
            .open(dir.join("meta/lmdb"))
            .unwrap()
    };
    let wtxn = env.write_txn().unwrap();
    let (contents, chunks) = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            let contents = opener.create_database::<Bytes, Bytes>(wtxn, Some("blob_contents"))?;
            let chunks = opener.create_database::<Bytes, Bytes>(wtxn, Some("blob_chunks"))?;
            Ok(heed::CommitOrAbort::<_, ()>::Commit((contents, chunks)))
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env.write_txn().unwrap();
    let chunk_size = 4u32;
    let mut record = (bytes.len() as u64).to_be_bytes().to_vec();
    record.extend_from_slice(&chunk_size.to_be_bytes());
    contents
        .put(&mut wtxn, digest.as_str().as_bytes(), &record)
        .unwrap();
    for (sequence, chunk) in bytes.chunks(chunk_size as usize).enumerate() {
        let mut key = digest.as_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&(sequence as u64).to_be_bytes());
        chunks.put(&mut wtxn, &key, chunk).unwrap();
    }
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();
    digest
}

/// Format 2 keeps committed chunks where they were staged; content stored by format 1 is read
/// as it is after the upgrade (which backs up and records 2), and deleted with its chunks.
#[test]
fn a_version_1_lmdb_environment_is_upgraded_to_2_and_its_blobs_read_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let choice = BackendChoice::default()
        .metadata("lmdb")
        .role(Role::Blobs, "lmdb");
    drop(open_store(dir.path(), &choice).unwrap());
    let bytes = b"content committed by format 1, in chunks of four bytes";
    let old = put_format_1_blob(dir.path(), bytes);
    lmdb_version_record(dir.path(), Some(Some(1)));

    let store = open_store(dir.path(), &choice).unwrap();
    let found = backups(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("-lmdb-v1.mdb"), "{found:?}");
    let blobs = store.blob_store();
    let mut read_back = Vec::new();
    std::io::Read::read_to_end(&mut blobs.open(&old).unwrap(), &mut read_back).unwrap();
    assert_eq!(read_back, bytes);
    // New content goes the format-2 way, beside the old.
    let mut writer = blobs.writer(Expected::default()).unwrap();
    writer.write_all(b"content of format 2").unwrap();
    let (new, _) = writer.commit().unwrap();
    assert!(blobs.delete(&old).unwrap());
    assert_eq!(
        blobs.sorted_digests().unwrap().into_vec().unwrap(),
        vec![new]
    );
    drop(store);
    let recorded = lmdb_version_record(dir.path(), None);
    assert_eq!(recorded.as_deref(), Some(&2u32.to_be_bytes()[..]));
}

fn lmdb_store(dir: &Path) {
    let choice = BackendChoice::default().metadata("lmdb");
    drop(open_store(dir, &choice).unwrap());
}

#[test]
fn a_newer_lmdb_environment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    lmdb_store(dir.path());
    lmdb_version_record(dir.path(), Some(Some(5)));
    let error = open_store(dir.path(), &BackendChoice::default())
        .err()
        .unwrap()
        .to_string();
    assert_refuses_newer(
        &error,
        "5",
        "2",
        &dir.path().join("meta/lmdb").display().to_string(),
    );
    let direct = open_index("lmdb", dir.path()).err().unwrap().to_string();
    assert_refuses_newer(&direct, "5", "2", "meta/lmdb");
}

#[test]
fn an_lmdb_environment_without_a_version_is_read_as_1_and_recorded_under_the_store_lock() {
    let dir = tempfile::tempdir().unwrap();
    lmdb_store(dir.path());
    let recorded = lmdb_version_record(dir.path(), Some(None));
    assert_eq!(recorded.as_deref(), Some(&2u32.to_be_bytes()[..]));

    let (_, outcome) = open_while_held(dir.path(), || assert!(backups(dir.path()).is_empty()));
    outcome.unwrap();
    // Read as version 1, whose layout version 2 reads as it is: recorded as 2.
    let recorded = lmdb_version_record(dir.path(), None);
    assert_eq!(recorded.as_deref(), Some(&2u32.to_be_bytes()[..]));
    // Backed up first: a compacted copy of the environment as it was.
    let found = backups(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("-lmdb-v1.mdb"), "{found:?}");
    assert!(
        std::fs::metadata(dir.path().join("backups").join(&found[0]))
            .unwrap()
            .len()
            > 0
    );
}

fn put_blob(dir: &Path, content: &[u8]) -> Digest {
    let blobs = open_blob_store("fs", dir).unwrap();
    let mut writer = blobs.writer(Expected::default()).unwrap();
    writer.write_all(content).unwrap();
    let (digest, size) = writer.commit().unwrap();
    open_index("sqlite", dir)
        .unwrap()
        .upsert(&BlobRecord {
            digest: digest.clone(),
            size,
            media_type: "application/octet-stream".to_string(),
            created_unix_ms: 0,
        })
        .unwrap();
    digest
}

#[test]
fn store_format_1_gives_unowned_blobs_the_base_owner_mark() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_store(dir.path(), &BackendChoice::default()).unwrap());
    // A store as written before holder marks: a user's `blob put` has no mark at all.
    let user_blob = put_blob(dir.path(), b"put by a user");
    let oci_blob = put_blob(dir.path(), b"held by the oci flavour");
    let referenced = put_blob(dir.path(), b"referenced by a kv entry");
    open_extra_data("sqlite", dir.path())
        .unwrap()
        .set(&oci_blob, "owner.oci", b"")
        .unwrap();
    open_kv_store("sqlite", dir.path())
        .unwrap()
        .put("refs", "latest", b"x", Some(&referenced))
        .unwrap();
    write_config(dir.path(), "sqlite", 1);
    assert_eq!(
        Digest::of_bytes(Algorithm::Sha256, b"put by a user"),
        user_blob
    );

    let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
    let extra = store.extra_data();
    assert_eq!(
        extra.types(&user_blob).unwrap(),
        vec!["owner.base".to_string()]
    );
    assert_eq!(
        extra.get(&user_blob, "owner.base").unwrap(),
        Some(Vec::new())
    );
    assert_eq!(
        extra.types(&oci_blob).unwrap(),
        vec!["owner.oci".to_string()]
    );
    // A blob an entry references is still the user's: removing the entry must not delete it.
    assert_eq!(
        extra.types(&referenced).unwrap(),
        vec!["owner.base".to_string()]
    );
    assert!(store.remove_data("refs", "latest").unwrap());
    assert!(store.contains(&referenced).unwrap());
    let config = StoreConfig::read(dir.path()).unwrap().unwrap();
    assert_eq!(config.format_version, 2);
}

#[test]
fn a_newer_store_json_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "sqlite", 99);
    let error = open_store(dir.path(), &BackendChoice::default())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("store.json"), "{error}");
    assert!(error.contains("version 99"), "{error}");
    assert!(error.contains("upgrade oci-store"), "{error}");
}

#[test]
fn backend_conversion_upgrades_the_store_first() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_store(dir.path(), &BackendChoice::default()).unwrap());
    let user_blob = put_blob(dir.path(), b"put before holder marks");
    write_config(dir.path(), "sqlite", 1);

    let report =
        oci_store::store::convert_store(dir.path(), &BackendChoice::default().metadata("lmdb"))
            .unwrap();
    assert_eq!(report.from.format_version, 2);
    assert_eq!(report.to.format_version, 2);
    let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
    assert_eq!(store.stats().unwrap().backends["extra"], "lmdb");
    assert_eq!(
        store.extra_data().types(&user_blob).unwrap(),
        vec!["owner.base".to_string()]
    );
}
