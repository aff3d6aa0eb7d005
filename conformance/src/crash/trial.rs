//! One trial's directory: the store, the work's inputs and outputs, its acknowledgements and
//! the crash-point log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_store::{open_store, BackendChoice, Store};

use crate::faults::{faulty_store, FaultPlan};
use crate::matrix::Combination;

/// `<dir>/store`, `<dir>/inputs`, `<dir>/out`, `<dir>/acks`, `<dir>/crash.log`.
#[derive(Clone, Debug)]
pub struct Trial {
    pub dir: PathBuf,
    pub combination: Combination,
    /// 0 for the run a crash may interrupt, 1 for the run after it.
    pub attempt: u32,
    /// Faults injected into the store [`Trial::open_store`] opens (the faults test).
    pub faults: Option<Arc<FaultPlan>>,
}

impl Trial {
    pub fn new(dir: &Path, combination: &Combination, attempt: u32) -> Trial {
        Trial {
            dir: dir.to_path_buf(),
            combination: combination.clone(),
            attempt,
            faults: None,
        }
    }

    /// The same trial with `plan`'s faults in the store the work opens.
    pub fn with_faults(mut self, plan: &Arc<FaultPlan>) -> Trial {
        self.faults = Some(plan.clone());
        self
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }

    pub fn inputs(&self) -> PathBuf {
        self.dir.join("inputs")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("crash.log")
    }

    fn acks_path(&self) -> PathBuf {
        self.dir.join("acks")
    }

    /// Creates the store with the trial's backends (setup only).
    pub fn create_store(&self) -> Result<Store, String> {
        for dir in [self.inputs(), self.out()] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        self.combination
            .open(&self.store_dir())
            .map_err(|e| format!("creating the store: {e}"))
    }

    /// Opens the store by what its `store.json` records (a conversion may have changed it),
    /// over fault-injecting wrappers when the trial has faults.
    pub fn open_store(&self) -> Result<Store, String> {
        let store = open_store(&self.store_dir(), &BackendChoice::default())
            .map_err(|e| format!("opening the store: {e}"))?;
        match &self.faults {
            None => Ok(store),
            Some(plan) => {
                drop(store);
                faulty_store(&self.store_dir(), plan)
            }
        }
    }

    /// Records that a step of the work returned: what a caller was told is done. One
    /// `O_APPEND` write per line, in the page cache before the next step starts, so a SIGKILL
    /// after it cannot lose it.
    pub fn ack(&self, line: &str) -> Result<(), String> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.acks_path())
            .map_err(|e| format!("opening the acknowledgements: {e}"))?;
        file.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("writing an acknowledgement: {e}"))
    }

    /// Every acknowledgement so far, in order.
    pub fn acks(&self) -> Vec<String> {
        std::fs::read_to_string(self.acks_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn acked(&self, line: &str) -> bool {
        self.acks().iter().any(|ack| ack == line)
    }
}
