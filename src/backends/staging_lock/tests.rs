//! The staging rule, once for every backend: a live writer is never collected, a dead one is
//! collected at once, whatever moment it died at.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

fn swept(dir: &Path) -> (Vec<String>, HashSet<String>) {
    let mut dead = Vec::new();
    let listed = sweep_dead(dir, |found| {
        dead.push(found.id.clone());
        Ok(())
    })
    .unwrap();
    dead.sort();
    (dead, listed)
}

#[test]
fn a_live_writer_is_never_collected() {
    let dir = tempfile::tempdir().unwrap();
    let mut live = StagingLock::create(dir.path()).unwrap();
    live.write_all(b"staged bytes").unwrap();
    for _ in 0..3 {
        let (dead, listed) = swept(dir.path());
        assert!(dead.is_empty(), "{dead:?}");
        assert!(listed.contains(live.id()));
        assert!(live.path().is_file());
    }
    let path = live.path().to_path_buf();
    drop(live);
    assert!(
        !path.exists(),
        "a writer that ends removes its staging file"
    );
}

#[test]
fn a_dead_writer_is_collected_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut crashed = StagingLock::create(dir.path()).unwrap();
    crashed.write_all(&[7u8; 1000]).unwrap();
    let id = crashed.id().to_string();
    let path = crashed.abandon();
    assert!(path.is_file(), "a crash leaves the file");

    let mut bytes = 0;
    let listed = sweep_dead(dir.path(), |found| {
        assert_eq!(found.id, id);
        bytes = found.file_bytes;
        Ok(())
    })
    .unwrap();
    assert_eq!(bytes, 1000);
    assert!(listed.contains(&id));
    assert!(
        !path.exists(),
        "no grace period: removed by the first sweep"
    );
    assert_eq!(swept(dir.path()).0, Vec::<String>::new());
}

#[test]
fn a_crash_between_creating_the_file_and_staging_data_is_collected_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Died after `create` but before `flock`: an unlocked, empty file.
    let unlocked = dir.path().join(format!("before-lock{STAGING_SUFFIX}"));
    File::create(&unlocked).unwrap();
    // Died after locking but before staging anything.
    let locked_empty = StagingLock::create(dir.path()).unwrap();
    let locked_id = locked_empty.id().to_string();
    let locked_path = locked_empty.abandon();

    let (dead, _) = swept(dir.path());
    let mut expected = vec!["before-lock".to_string(), locked_id];
    expected.sort();
    assert_eq!(dead, expected);
    assert!(!unlocked.exists());
    assert!(!locked_path.exists());
}

#[test]
fn leftovers_of_older_versions_are_taken_by_the_same_rule() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "old-1.lock",
        "old-2.lock.new",
        "old-3.locking",
        "blob-x.partial",
    ] {
        File::create(dir.path().join(name)).unwrap();
    }
    let held = dir.path().join("held.lock");
    let held_file = File::create(&held).unwrap();
    fs2::FileExt::lock_exclusive(&held_file).unwrap();

    let (dead, listed) = swept(dir.path());
    assert_eq!(dead, vec!["blob-x", "old-1", "old-2", "old-3"]);
    assert!(listed.contains("held"));
    assert!(held.exists(), "a held lock file of any name is live");
}

#[test]
fn a_persisted_write_is_no_longer_staged() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let mut writer = StagingLock::create(&staging).unwrap();
    writer.write_all(b"content").unwrap();
    let target = dir.path().join("blob");
    writer.persist(&target).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"content");
    let (dead, listed) = swept(&staging);
    assert!(dead.is_empty() && listed.is_empty());
    // The lock left with the handle: the committed file is not held by anyone.
    let file = File::open(&target).unwrap();
    fs2::FileExt::try_lock_exclusive(&file).unwrap();
}

/// Writers start and end while a sweep runs in a loop: the sweep never reports a write whose
/// writer holds it, and no writer ever finds its staging file gone.
#[test]
fn sweeps_racing_writers_never_take_a_live_write() {
    let dir = tempfile::tempdir().unwrap();
    let live: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let (dir, live, stop) = (dir.path().to_path_buf(), live.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sweeps = 0u32;
            while !stop.load(Ordering::Relaxed) || sweeps == 0 {
                sweep_dead(&dir, |found| {
                    assert!(
                        !live.lock().unwrap().contains(&found.id),
                        "swept the live write {}",
                        found.id
                    );
                    Ok(())
                })
                .unwrap();
                sweeps += 1;
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (dir, live) = (dir.path().to_path_buf(), live.clone());
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let mut writer = StagingLock::create(&dir).unwrap();
                    live.lock().unwrap().insert(writer.id().to_string());
                    writer.write_all(b"x").unwrap();
                    assert!(names_file(writer.path(), writer.file()).unwrap());
                    live.lock().unwrap().remove(writer.id());
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    sweeper.join().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Set for the child started by `a_killed_writer_process_is_dead_at_once`.
const CHILD_DIR_VARIABLE: &str = "OCI_STORE_STAGING_TEST_CHILD_DIR";

/// Does nothing unless started as that child: stages a write, then dies holding it.
#[test]
fn child_process_dying_while_staging() {
    let Ok(dir) = std::env::var(CHILD_DIR_VARIABLE) else {
        return;
    };
    let mut writer = StagingLock::create(Path::new(&dir)).unwrap();
    writer.write_all(b"half a blob").unwrap();
    std::process::abort();
}

#[test]
fn a_killed_writer_process_is_dead_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "backends::staging_lock::tests::child_process_dying_while_staging",
            "--test-threads=1",
            "--quiet",
        ])
        .env(CHILD_DIR_VARIABLE, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let (dead, _) = swept(dir.path());
    assert_eq!(dead.len(), 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::of_bytes(crate::traits::Algorithm::Sha256, bytes)
}

#[test]
fn a_dead_resumable_write_is_taken_over_by_the_next_writer_of_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (wanted, other) = (digest_of(b"wanted"), digest_of(b"other"));
    assert!(StagingLock::adopt_dead(dir.path(), &wanted)
        .unwrap()
        .is_none());

    let mut dead = StagingLock::create_resumable(dir.path(), &wanted).unwrap();
    dead.write_all(b"kept bytes").unwrap();
    let dead_id = dead.id().to_string();
    let dead_path = dead.abandon();
    let mut other_writer = StagingLock::create_resumable(dir.path(), &other).unwrap();
    other_writer.write_all(b"another blob").unwrap();
    let other_path = other_writer.abandon();
    let live = StagingLock::create_resumable(dir.path(), &wanted).unwrap();

    let adopted = StagingLock::adopt_dead(dir.path(), &wanted)
        .unwrap()
        .expect("the dead write of the digest");
    assert_eq!(adopted.id(), dead_id, "the id goes with the staged data");
    assert_eq!(adopted.path(), dead_path);
    assert_eq!(std::fs::read(adopted.path()).unwrap(), b"kept bytes");
    assert!(
        StagingLock::adopt_dead(dir.path(), &wanted)
            .unwrap()
            .is_none(),
        "neither the adopted write nor the live one is taken again"
    );
    let (swept_ids, listed) = swept(dir.path());
    assert_eq!(
        swept_ids,
        vec![other_path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_string()],
        "a sweep takes the other digest's dead write, not the adopted or the live one"
    );
    assert!(listed.contains(&dead_id) && listed.contains(live.id()));
    drop(adopted);
    assert!(!dead_path.exists(), "an adopted write that ends is removed");
}

#[test]
fn a_swept_resumable_write_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let digest = digest_of(b"blob");
    let mut dead = StagingLock::create_resumable(dir.path(), &digest).unwrap();
    dead.write_all(b"part").unwrap();
    dead.abandon();
    assert_eq!(swept(dir.path()).0.len(), 1);
    assert!(StagingLock::adopt_dead(dir.path(), &digest)
        .unwrap()
        .is_none());
}
