//! Base-store works: writing blobs (one at a time and as a staged batch), the delete cascade
//! (delete, release, batched release), and the base GC over every kind of garbage.

use oci_store::store::{Holder, WriteOptions};
use oci_store::traits::Algorithm;
use oci_store::{Digest, Store};

use super::super::trial::Trial;
use super::super::verdict::blob_is_whole;
use super::Work;
use crate::check::TestResult;
use crate::content::content;
use crate::{ensure, Context};

/// Contents of the blob works: small, medium, one over 1 MiB (the fs backend syncs those
/// itself), sha256 and sha512.
fn blob_contents(seed: u64) -> Vec<(Digest, Vec<u8>)> {
    [100, 5_000, 70_000, 1_200_000, 300, 9_000]
        .iter()
        .enumerate()
        .map(|(n, size)| {
            let bytes = content(seed + n as u64, *size);
            let algorithm = if n % 3 == 2 {
                Algorithm::Sha512
            } else {
                Algorithm::Sha256
            };
            (Digest::of_bytes(algorithm, &bytes), bytes)
        })
        .collect()
}

fn options_for(digest: &Digest, bytes: &[u8]) -> WriteOptions {
    WriteOptions {
        media_type: Some("application/octet-stream".to_string()),
        expected_digest: Some(digest.clone()),
        expected_size: Some(bytes.len() as u64),
        ..WriteOptions::default()
    }
}

fn indexed(store: &Store, digest: &Digest) -> Result<bool, String> {
    store
        .contains(digest)
        .context(format!("looking up {digest}"))
}

/// Three blobs written one by one (`Store::write_bytes`), three staged and committed in one
/// batch (`Store::commit_staged`, as imports do).
pub struct BlobWrite;

impl Work for BlobWrite {
    fn name(&self) -> &'static str {
        "blob-write"
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        trial.create_store().map(drop)
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        let blobs = blob_contents(1000);
        for (digest, bytes) in &blobs[..3] {
            store
                .write_bytes(bytes, &options_for(digest, bytes))
                .context(format!("writing {digest}"))?;
            trial.ack(&format!("written {digest}"))?;
        }
        let mut staged = Vec::new();
        for (digest, bytes) in &blobs[3..] {
            staged.push(
                store
                    .stage(&bytes[..], &options_for(digest, bytes))
                    .context(format!("staging {digest}"))?,
            );
        }
        store
            .commit_staged(staged, &Holder::BASE)
            .context("committing the staged batch")?;
        for (digest, _) in &blobs[3..] {
            trial.ack(&format!("written {digest}"))?;
        }
        Ok(())
    }

    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult {
        for (digest, bytes) in blob_contents(1000) {
            let acked = trial.acked(&format!("written {digest}"));
            ensure!(
                !(acked || completed) || indexed(store, &digest)?,
                "{digest} was acknowledged as written but is not in the store"
            );
            if indexed(store, &digest)? {
                // Visible means whole, and held by the writer (nothing may collect it).
                blob_is_whole(store, &digest, &bytes)?;
                let holders = store.holders(&digest).context("holders")?;
                ensure!(
                    holders.owners.contains(&Holder::BASE),
                    "{digest} is indexed without the writer's hold: {holders}"
                );
            }
        }
        Ok(())
    }
}

const NOTE_TYPE: &str = "crash.note";
const REF_TYPE: &str = "crash.ref";

/// The delete cascade three ways: `Store::delete` of a blob with extra data and a key/value
/// entry; `Store::release` of the last hold; `Store::release_many` of three blobs, one of
/// which a key/value entry keeps.
pub struct BlobDelete;

/// Blob n has a note; blobs 0 and 4 also a key/value entry referencing them.
fn has_entry(n: usize) -> bool {
    n == 0 || n == 4
}

impl Work for BlobDelete {
    fn name(&self) -> &'static str {
        "blob-delete"
    }

    fn frees_space(&self) -> bool {
        true
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        for (n, (digest, bytes)) in blob_contents(2000).iter().enumerate().take(5) {
            store
                .write_bytes(bytes, &options_for(digest, bytes))
                .context("writing")?;
            store
                .set_extra(digest, NOTE_TYPE, b"note")
                .context("setting a note")?;
            if has_entry(n) {
                store
                    .put_data(REF_TYPE, &digest.hex()[..16], b"ref", Some(digest))
                    .context("putting an entry")?;
            }
        }
        Ok(())
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        let blobs: Vec<Digest> = blob_contents(2000).into_iter().map(|(d, _)| d).collect();
        store.delete(&blobs[0]).context("delete")?;
        trial.ack(&format!("deleted {}", blobs[0]))?;
        store.release(&blobs[1], &Holder::BASE).context("release")?;
        trial.ack(&format!("deleted {}", blobs[1]))?;
        store
            .release_many(&blobs[2..5], &Holder::BASE)
            .context("release_many")?;
        for digest in &blobs[2..4] {
            trial.ack(&format!("deleted {digest}"))?;
        }
        Ok(())
    }

    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult {
        for (n, (digest, bytes)) in blob_contents(2000).into_iter().enumerate().take(5) {
            let deleted = completed || trial.acked(&format!("deleted {digest}"));
            if n == 4 {
                // Released, but its key/value entry still holds it: it stays, whole.
                ensure!(
                    indexed(store, &digest)?,
                    "{digest}, still referenced, was lost"
                );
                blob_is_whole(store, &digest, &bytes)?;
                continue;
            }
            if deleted {
                ensure!(
                    !indexed(store, &digest)?,
                    "{digest} was acknowledged as deleted but is still indexed"
                );
                continue;
            }
            if indexed(store, &digest)? {
                // The delete commits at the index record, which goes first: a blob still
                // indexed has all its dependants.
                blob_is_whole(store, &digest, &bytes)?;
                ensure!(
                    store
                        .get_extra(&digest, NOTE_TYPE)
                        .context("note")?
                        .is_some(),
                    "{digest} is indexed but its extra data went"
                );
                if has_entry(n) {
                    ensure!(
                        store
                            .get_data(REF_TYPE, &digest.hex()[..16])
                            .context("entry")?
                            .is_some(),
                        "{digest} is indexed but the entry referencing it went"
                    );
                }
            }
        }
        Ok(())
    }
}

/// The base GC over every kind of garbage beside live blobs: unindexed content, orphan extra
/// data, a dangling key/value reference, indexed blobs nobody holds, a dead writer's staging.
pub struct BaseGc;

impl Work for BaseGc {
    fn name(&self) -> &'static str {
        "base-gc"
    }

    fn frees_space(&self) -> bool {
        true
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        let blobs = blob_contents(3000);
        for (digest, bytes) in &blobs {
            store
                .write_bytes(bytes, &options_for(digest, bytes))
                .context("writing")?;
        }
        // Garbage, made below the store's own methods (the traits), as crashes leave it.
        let unindexed = &blobs[0].0;
        store.index().remove(unindexed).context("unindexing")?;
        for (unheld, _) in &blobs[1..3] {
            store
                .extra_data()
                .remove(unheld, "owner.base")
                .context("dropping a hold")?;
        }
        let absent = Digest::of_bytes(Algorithm::Sha256, b"never stored");
        store
            .extra_data()
            .set(&absent, NOTE_TYPE, b"orphan")
            .context("orphan extra data")?;
        store
            .kv_store()
            .put(REF_TYPE, "dangling", b"", Some(&absent))
            .context("dangling entry")?;
        // A writer that never finishes: its staging is a dead ingest once this process ends.
        let mut writer = store
            .writer(&WriteOptions::default())
            .context("opening a writer")?;
        std::io::Write::write_all(&mut writer, b"never committed").context("writing")?;
        std::mem::forget(writer);
        Ok(())
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        store.gc(Default::default()).context("gc")?;
        Ok(())
    }

    fn check(&self, store: &Store, _trial: &Trial, completed: bool) -> TestResult {
        // The live blobs (held by owner.base) are never taken, wherever the GC stopped.
        for (digest, bytes) in &blob_contents(3000)[3..] {
            ensure!(indexed(store, digest)?, "gc removed the live blob {digest}");
            blob_is_whole(store, digest, bytes)?;
        }
        if completed {
            let fsck = store
                .fsck(Default::default())
                .context("fsck after a complete gc")?;
            ensure!(
                fsck.is_clean(),
                "a complete gc left garbage: {:?}",
                fsck.problems
            );
        }
        Ok(())
    }
}
