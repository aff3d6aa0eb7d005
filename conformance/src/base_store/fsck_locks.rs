//! fsck hashes content without holding digest locks (a long hash must not stall writers and
//! deleters of that stripe), and looks again under the lock only at what seems wrong.

use std::sync::mpsc;
use std::time::Duration;

use oci_store::store::{LockGuard, LockMode};

use super::{write_bytes, StoreFixture};
use crate::check::TestResult;
use crate::{ensure, fail, Context};

/// With another holder keeping a healthy blob's stripe locked exclusively (a writer or a
/// delete in progress), fsck still finishes, and finds nothing wrong.
pub fn fsck_hashes_outside_digest_locks(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let digest = write_bytes(&store, b"a healthy blob", None)?.digest;
    let _held = LockGuard::acquire(
        &store.lock_paths().digest_lock(&digest),
        LockMode::Exclusive,
    )
    .context("locking the blob's stripe")?;
    let (done, finished) = mpsc::channel();
    let other = fixture.open()?;
    std::thread::spawn(move || {
        let _ = done.send(other.fsck(Default::default()).map_err(|e| e.to_string()));
    });
    match finished.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(report)) => ensure!(report.is_clean(), "fsck found problems: {report:?}"),
        Ok(Err(error)) => fail!("fsck failed: {error}"),
        Err(_) => fail!("fsck waited for a healthy blob's digest lock"),
    }
    Ok(())
}
