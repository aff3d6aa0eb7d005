//! Tests of the SQLite blob store: chunking, reading and seeking, mismatches, clean-up.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::blob_store::SqliteBlobStore;
use crate::traits::{Algorithm, BlobStore, Digest, Expected, StorageError};

/// Content that differs at every offset, so a wrong seek shows.
fn content(length: usize) -> Vec<u8> {
    (0..length).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn count_rows(store: &SqliteBlobStore, table: &str) -> i64 {
    store
        .database
        .read(String::new, |c| {
            c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        })
        .unwrap()
}

fn assert_nothing_staged(store: &SqliteBlobStore, dir: &Path) {
    for table in ["staging", "staged_chunks"] {
        assert_eq!(count_rows(store, table), 0, "rows left in {table}");
    }
    let lock_files = std::fs::read_dir(dir.join("meta/sqlite/staging"))
        .unwrap()
        .count();
    assert_eq!(lock_files, 0, "staging lock files left");
}

fn write_blob(store: &SqliteBlobStore, bytes: &[u8], piece: usize) -> Digest {
    let mut writer = store.writer(Expected::default()).unwrap();
    for part in bytes.chunks(piece) {
        writer.write_all(part).unwrap();
    }
    writer.commit().unwrap().0
}

#[test]
fn multi_chunk_blob_reads_back_and_seeks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteBlobStore::open_with_chunk_size(dir.path(), 1000).unwrap();
    let bytes = content(3500);
    let digest = Digest::of_bytes(Algorithm::Sha512, &bytes);

    let mut writer = store
        .writer(Expected {
            digest: Some(digest.clone()),
            size: Some(3500),
            algorithm: None,
        })
        .unwrap();
    for part in bytes.chunks(333) {
        writer.write_all(part).unwrap();
    }
    assert_eq!(writer.written(), 3500);
    assert_eq!(writer.commit().unwrap(), (digest.clone(), 3500));

    let lengths: Vec<i64> = store
        .database
        .read(String::new, |c| {
            c.prepare(
                "SELECT length(data) FROM blob_chunks JOIN chunk_data USING (chunk_id)
                 WHERE digest = ?1 ORDER BY seq",
            )?
            .query_map([digest.as_str()], |r| r.get(0))?
            .collect()
        })
        .unwrap();
    assert_eq!(lengths, vec![1000, 1000, 1000, 500]);
    assert_nothing_staged(&store, dir.path());
    assert_eq!(store.size(&digest).unwrap(), Some(3500));
    assert_eq!(
        store.sorted_digests().unwrap().into_vec().unwrap(),
        vec![digest.clone()]
    );

    let mut reader = store.open(&digest).unwrap();
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert_eq!(all, bytes);

    let mut ten = [0u8; 10];
    assert_eq!(reader.seek(SeekFrom::Start(2995)).unwrap(), 2995);
    reader.read_exact(&mut ten).unwrap();
    assert_eq!(ten, bytes[2995..3005]);
    assert_eq!(reader.seek(SeekFrom::Current(-1005)).unwrap(), 2000);
    reader.read_exact(&mut ten).unwrap();
    assert_eq!(ten, bytes[2000..2010]);
    assert_eq!(reader.seek(SeekFrom::End(-5)).unwrap(), 3495);
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, bytes[3495..]);
    assert_eq!(reader.seek(SeekFrom::End(10)).unwrap(), 3510);
    assert_eq!(reader.read(&mut ten).unwrap(), 0);
    assert!(reader.seek(SeekFrom::Current(-4000)).is_err());
}

#[test]
fn default_chunk_size_round_trips_a_few_mebibytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteBlobStore::open(dir.path()).unwrap();
    let bytes = content(2 * 1024 * 1024 + 12345);
    let digest = write_blob(&store, &bytes, 64 * 1024);
    assert_eq!(digest, Digest::of_bytes(Algorithm::Sha256, &bytes));
    assert_eq!(count_rows(&store, "blob_chunks"), 3);
    let mut all = Vec::new();
    store.open(&digest).unwrap().read_to_end(&mut all).unwrap();
    assert!(all == bytes);
}

#[test]
fn mismatches_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteBlobStore::open_with_chunk_size(dir.path(), 100).unwrap();
    let bytes = content(450);
    let wrong = Digest::of_bytes(Algorithm::Sha256, b"something else");

    let mut writer = store
        .writer(Expected {
            digest: Some(wrong.clone()),
            size: None,
            algorithm: None,
        })
        .unwrap();
    writer.write_all(&bytes).unwrap();
    match writer.finish() {
        Err(StorageError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, Digest::of_bytes(Algorithm::Sha256, &bytes));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(writer.write_all(b"more").is_err());
    assert!(writer.commit().is_err());

    let mut short = store
        .writer(Expected {
            digest: None,
            size: Some(451),
            algorithm: None,
        })
        .unwrap();
    short.write_all(&bytes).unwrap();
    assert!(matches!(
        short.finish(),
        Err(StorageError::SizeMismatch {
            expected: 451,
            actual: 450,
            ..
        })
    ));
    drop(short);

    let mut long = store
        .writer(Expected {
            digest: None,
            size: Some(300),
            algorithm: None,
        })
        .unwrap();
    long.write_all(&bytes[..250]).unwrap();
    let error = long.write_all(&bytes[250..]).unwrap_err();
    let inner = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<StorageError>());
    assert!(
        matches!(
            inner,
            Some(StorageError::SizeMismatch {
                expected: 300,
                actual: 450,
                ..
            })
        ),
        "{error}"
    );
    drop(long);

    assert_nothing_staged(&store, dir.path());
    assert_eq!(count_rows(&store, "chunk_data"), 0);
    assert!(store
        .sorted_digests()
        .unwrap()
        .into_vec()
        .unwrap()
        .is_empty());
    assert!(!store.contains(&wrong).unwrap());
}

#[test]
fn duplicate_commit_keeps_one_copy_and_drop_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteBlobStore::open_with_chunk_size(dir.path(), 100).unwrap();
    let bytes = content(250);
    let first = write_blob(&store, &bytes, 7);
    let second = write_blob(&store, &bytes, 250);
    assert_eq!(first, second);
    assert_eq!(count_rows(&store, "chunk_data"), 3);

    let mut aborted = store.writer(Expected::default()).unwrap();
    aborted.write_all(&content(1000)).unwrap();
    assert!(count_rows(&store, "staged_chunks") > 0);
    drop(aborted);
    assert_nothing_staged(&store, dir.path());
    assert_eq!(count_rows(&store, "chunk_data"), 3);

    let empty = write_blob(&store, b"", 1);
    assert_eq!(store.size(&empty).unwrap(), Some(0));
    let mut read = Vec::new();
    store.open(&empty).unwrap().read_to_end(&mut read).unwrap();
    assert!(read.is_empty());

    assert!(store.delete(&first).unwrap());
    assert!(!store.delete(&first).unwrap());
    assert_eq!(count_rows(&store, "chunk_data"), 0);
    assert!(matches!(store.open(&first), Err(StorageError::BlobNotFound(d)) if d == first));
    assert_eq!(store.size(&first).unwrap(), None);
}

#[test]
fn dead_ingests_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteBlobStore::open_with_chunk_size(dir.path(), 100).unwrap();

    // A writer of a crashed process: rows without a held lock.
    store
        .database
        .write(super::connection::Durability::Full, String::new, |t| {
            t.execute_batch(
                "INSERT INTO staging VALUES ('crashed', 999999, 0);
                 INSERT INTO chunk_data (chunk_id, data) VALUES (9001, zeroblob(100)), (9002, zeroblob(20));
                 INSERT INTO staged_chunks VALUES ('crashed', 0, 9001), ('crashed', 1, 9002);",
            )?;
            Ok(())
        })
        .unwrap();
    let mut live = store.writer(Expected::default()).unwrap();
    live.write_all(&content(250)).unwrap();

    assert_eq!(store.remove_dead_ingests().unwrap(), (1, 120));
    assert_eq!(store.remove_dead_ingests().unwrap(), (0, 0));
    assert_eq!(count_rows(&store, "staging"), 1);

    live.write_all(&content(10)).unwrap();
    let (digest, size) = live.commit().unwrap();
    assert_eq!(size, 260);
    assert!(store.contains(&digest).unwrap());
    assert_nothing_staged(&store, dir.path());
}

#[test]
fn many_threads_write_and_read_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let handles: Vec<_> = (0..6)
        .map(|thread| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = SqliteBlobStore::open_with_chunk_size(&path, 512).unwrap();
                for round in 0..5 {
                    // Half the writes share content with another thread.
                    let bytes = content(1000 + (thread % 3) * 700 + round);
                    let digest = write_blob(&store, &bytes, 300);
                    let mut read = Vec::new();
                    store.open(&digest).unwrap().read_to_end(&mut read).unwrap();
                    assert!(read == bytes);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let store = SqliteBlobStore::open(&path).unwrap();
    assert_eq!(
        store.sorted_digests().unwrap().into_vec().unwrap().len(),
        15
    );
    assert_nothing_staged(&store, &path);
}

/// Set in child processes of [`many_processes_share_one_database`]: the store directory.
const CHILD_STORE_VARIABLE: &str = "OCI_STORE_SQLITE_TEST_CHILD_STORE";
const PROCESSES: usize = 6;
const INCREMENTS_PER_PROCESS: u64 = 15;

/// What each child process does on the shared store: open it (all at once, so the schema
/// creation races), bump a counter with compare-and-set, and write blobs, one shared by all.
fn child_process_work(dir: &Path) {
    use super::kv_store::SqliteKvStore;
    use crate::traits::KvStore;

    let kv = SqliteKvStore::open(dir).unwrap();
    let blobs = SqliteBlobStore::open_with_chunk_size(dir, 256).unwrap();
    let mut done = 0;
    while done < INCREMENTS_PER_PROCESS {
        let current = kv.get("test", "counter").unwrap();
        let (count, version) = match &current {
            None => (0, None),
            Some(entry) => (
                String::from_utf8(entry.value.clone())
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
                Some(entry.version),
            ),
        };
        let next = (count + 1).to_string();
        match kv.compare_and_set("test", "counter", next.as_bytes(), None, version) {
            Ok(_) => done += 1,
            Err(StorageError::VersionConflict { .. }) => continue,
            Err(other) => panic!("{other}"),
        }
    }
    write_blob(&blobs, &content(1000), 100);
    write_blob(
        &blobs,
        format!("process {}", std::process::id()).as_bytes(),
        3,
    );
}

#[test]
fn many_processes_share_one_database() {
    use super::kv_store::SqliteKvStore;
    use crate::traits::KvStore;

    if let Some(dir) = std::env::var_os(CHILD_STORE_VARIABLE) {
        child_process_work(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let module = module_path!().split_once("::").unwrap().1;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    &format!("{module}::many_processes_share_one_database"),
                    "--test-threads=1",
                    "--quiet",
                ])
                .env(CHILD_STORE_VARIABLE, dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child process failed");
    }

    let kv = SqliteKvStore::open(dir.path()).unwrap();
    let counter = kv.get("test", "counter").unwrap().unwrap();
    let total = PROCESSES as u64 * INCREMENTS_PER_PROCESS;
    assert_eq!(counter.value, total.to_string().into_bytes());
    assert_eq!(counter.version, total);
    let blobs = SqliteBlobStore::open(dir.path()).unwrap();
    assert_eq!(
        blobs.sorted_digests().unwrap().into_vec().unwrap().len(),
        PROCESSES + 1
    );
    assert_nothing_staged(&blobs, dir.path());
    assert!(!dir.path().join("backups").exists());
}
