//! One work run with a fault in its way, then the checks every fault trial makes: the error
//! names the cause; what the work acknowledged is there (the work's own check); `fsck` finds
//! only repairable garbage and `fsck --repair` leaves nothing; once the fault is gone, the
//! same work succeeds and the store ends as a run without the fault leaves it.

use std::path::Path;
use std::sync::Arc;

use super::plan::{FaultKind, FaultPlan};
use super::small_filesystem::SmallFilesystem;
use crate::crash::snapshot::Snapshot;
use crate::crash::trial::Trial;
use crate::crash::verdict::fsck_repairs_to_clean;
use crate::crash::works::Work;
use crate::matrix::Combination;

/// What stands in the work's way.
pub enum Injection<'a> {
    /// Nothing: the reference run.
    None,
    /// The fault-injecting wrappers, failing as the plan says.
    Wrappers(Arc<FaultPlan>),
    /// A full real file system: the trial's directory is on `filesystem`, and the work gets
    /// only `headroom` bytes of free space.
    FullDisk {
        filesystem: &'a SmallFilesystem,
        headroom: u64,
    },
}

/// How a fault trial went.
#[derive(Debug)]
pub struct FaultOutcome {
    /// The error the work failed with (`None`: the fault missed, or was handled).
    pub error: Option<String>,
    /// The store after the second run and settling.
    pub snapshot: Snapshot,
}

/// Texts one of which a full-disk error must carry: the OS's words, SQLite's ("database or
/// disk is full"), or the backends' note that the file system is full.
const DISK_FULL_TEXTS: &[&str] = &["No space left on device", "is full"];

fn names_the_cause(error: &str, injection: &Injection) -> bool {
    match injection {
        Injection::None => false,
        Injection::Wrappers(plan) => match plan.kind() {
            FaultKind::Io => error.contains(&FaultKind::Io.description()),
            FaultKind::DiskFull => DISK_FULL_TEXTS.iter().any(|t| error.contains(t)),
        },
        Injection::FullDisk { .. } => DISK_FULL_TEXTS.iter().any(|t| error.contains(t)),
    }
}

/// Runs `work` in `dir` (set up afresh) with `injection` in its way, then checks it.
pub fn run_with_fault(
    work: &dyn Work,
    dir: &Path,
    combination: &Combination,
    injection: Injection,
) -> Result<FaultOutcome, String> {
    let trial = Trial::new(dir, combination, 0);
    work.setup(&trial).map_err(|e| format!("setup: {e}"))?;
    let faulty = match &injection {
        Injection::Wrappers(plan) => trial.clone().with_faults(plan),
        Injection::FullDisk {
            filesystem,
            headroom,
        } => {
            filesystem.leave_free(*headroom)?;
            trial.clone()
        }
        Injection::None => trial.clone(),
    };
    let result = work.run(&faulty);
    match &injection {
        Injection::Wrappers(plan) => plan.clear(),
        Injection::FullDisk { filesystem, .. } => filesystem.free()?,
        Injection::None => {}
    }
    drop(faulty);
    if let Err(error) = &result {
        if !names_the_cause(error, &injection) {
            return Err(format!("the work failed without naming the fault: {error}"));
        }
    }
    {
        let store = trial.open_store()?;
        work.check(&store, &trial, result.is_ok())
            .map_err(|e| format!("after the failed run ({result:?}): {e}"))?;
        fsck_repairs_to_clean(&store).map_err(|e| format!("after the failed run: {e}"))?;
    }
    let second = Trial::new(dir, combination, 1);
    work.run(&second)
        .map_err(|e| format!("the same work once the fault is gone: {e}"))?;
    let store = second.open_store()?;
    work.check(&store, &second, true)
        .map_err(|e| format!("after the second run: {e}"))?;
    work.settle(&store, &second)
        .map_err(|e| format!("settling: {e}"))?;
    fsck_repairs_to_clean(&store).map_err(|e| format!("after settling: {e}"))?;
    Ok(FaultOutcome {
        error: result.err(),
        snapshot: Snapshot::of(&store)?,
    })
}
