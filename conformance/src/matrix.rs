//! The matrix: every registered backend for each per-trait suite, every combination of
//! backends for the base-store and OCI suites. Built from the registry at run time, so registering a
//! backend (`inventory::submit!`) is all it takes for it to be tested.

use std::path::Path;
use std::sync::Arc;

use oci_store::traits::registry::{
    backends_for, open_blob_store, open_extra_data, open_index, open_kv_store,
};
use oci_store::traits::Role;
use oci_store::{open_store, BackendChoice};

use crate::check::TestResult;
use crate::fixture::{run_one, SuiteTest};

/// One backend per role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Combination {
    pub blobs: &'static str,
    pub index: &'static str,
    pub extra: &'static str,
    pub kv: &'static str,
}

impl Combination {
    /// `blobs=fs,index=sqlite,extra=lmdb,kv=sqlite`.
    pub fn label(&self) -> String {
        format!(
            "blobs={},index={},extra={},kv={}",
            self.blobs, self.index, self.extra, self.kv
        )
    }

    pub fn choice(&self) -> BackendChoice {
        BackendChoice::default()
            .role(Role::Blobs, self.blobs)
            .role(Role::Index, self.index)
            .role(Role::Extra, self.extra)
            .role(Role::Kv, self.kv)
    }

    /// Opens (creating on first use) the store in `dir` with these backends.
    pub fn open(&self, dir: &Path) -> oci_store::StoreResult<oci_store::Store> {
        open_store(dir, &self.choice())
    }
}

/// Every combination of registered backends: blobs × index × extra × kv.
pub fn combinations() -> Vec<Combination> {
    let mut all = Vec::new();
    for blobs in backends_for(Role::Blobs) {
        for index in backends_for(Role::Index) {
            for extra in backends_for(Role::Extra) {
                for kv in backends_for(Role::Kv) {
                    all.push(Combination {
                        blobs,
                        index,
                        extra,
                        kv,
                    });
                }
            }
        }
    }
    all
}

/// One combination per backend that fills every metadata role (index, extra, kv), with `fs`
/// blobs when registered (else the first blob backend): what the multi-process test runs.
pub fn metadata_combinations() -> Vec<Combination> {
    let blob_backends = backends_for(Role::Blobs);
    let Some(blobs) = blob_backends
        .iter()
        .copied()
        .find(|name| *name == "fs")
        .or_else(|| blob_backends.first().copied())
    else {
        return Vec::new();
    };
    backends_for(Role::Index)
        .into_iter()
        .filter(|name| {
            backends_for(Role::Extra).contains(name) && backends_for(Role::Kv).contains(name)
        })
        .map(|name| Combination {
            blobs,
            index: name,
            extra: name,
            kv: name,
        })
        .collect()
}

/// What the multi-process tests run: [`metadata_combinations`], plus each backend that fills
/// every role (blobs included) alone, so database blob stores meet other processes too.
pub fn multi_process_combinations() -> Vec<Combination> {
    let mut all = metadata_combinations();
    for name in backends_for(Role::Blobs) {
        let fills_all = [Role::Index, Role::Extra, Role::Kv]
            .into_iter()
            .all(|role| backends_for(role).contains(&name));
        let combination = Combination {
            blobs: name,
            index: name,
            extra: name,
            kv: name,
        };
        if fills_all && !all.contains(&combination) {
            all.push(combination);
        }
    }
    all
}

/// A test ready to run: its full name and how to run it on a fresh fixture.
pub struct Case {
    pub name: String,
    run: Box<dyn FnOnce() -> TestResult + Send>,
}

impl Case {
    pub fn new(name: String, run: impl FnOnce() -> TestResult + Send + 'static) -> Self {
        Case {
            name,
            run: Box::new(run),
        }
    }

    pub fn run(self) -> TestResult {
        (self.run)()
    }
}

fn suite_cases<T: 'static, E: std::fmt::Display + 'static>(
    prefix: &str,
    suite: &str,
    tests: Vec<SuiteTest<T>>,
    open: impl Fn(&Path) -> Result<T, E> + Clone + Send + Sync + 'static,
) -> Vec<Case> {
    tests
        .into_iter()
        .map(|(name, test)| {
            let open = open.clone();
            Case::new(format!("{prefix}::{suite}::{name}"), move || {
                run_one(test, open)
            })
        })
        .collect()
}

/// Every case of the matrix, named `<backends>::<suite>::<test>`:
/// `digest::known_vectors`, `blobs=fs::blob_store::delete`, `index=sqlite::index::paging`,
/// `blobs=fs,index=sqlite,extra=lmdb,kv=sqlite::base_store::delete_cascades`,
/// `blobs=fs,index=sqlite,extra=lmdb,kv=sqlite::oci::gc_dry_run_lists_and_frees_nothing`.
pub fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = crate::digest::tests()
        .into_iter()
        .map(|(name, test)| Case::new(format!("digest::{name}"), test))
        .collect();
    for name in backends_for(Role::Blobs) {
        cases.extend(suite_cases(
            &format!("blobs={name}"),
            "blob_store",
            crate::blob_store::tests(),
            move |dir: &Path| open_blob_store(name, dir),
        ));
    }
    for name in backends_for(Role::Index) {
        cases.extend(suite_cases(
            &format!("index={name}"),
            "index",
            crate::index::tests(),
            move |dir: &Path| open_index(name, dir),
        ));
    }
    for name in backends_for(Role::Extra) {
        cases.extend(suite_cases(
            &format!("extra={name}"),
            "extra_data",
            crate::extra_data::tests(),
            move |dir: &Path| open_extra_data(name, dir),
        ));
    }
    for name in backends_for(Role::Kv) {
        cases.extend(suite_cases(
            &format!("kv={name}"),
            "kv_store",
            crate::kv_store::tests(),
            move |dir: &Path| open_kv_store(name, dir),
        ));
    }
    for combination in combinations() {
        let label = combination.label();
        let combination = Arc::new(combination);
        let for_base = Arc::clone(&combination);
        cases.extend(suite_cases(
            &label,
            "base_store",
            crate::base_store::tests(),
            move |dir: &Path| for_base.open(dir),
        ));
        let for_oci = Arc::clone(&combination);
        cases.extend(suite_cases(
            &label,
            "oci",
            crate::oci::tests(),
            move |dir: &Path| for_oci.open(dir),
        ));
        cases.extend(suite_cases(
            &label,
            "appc",
            crate::appc::tests(),
            move |dir: &Path| combination.open(dir),
        ));
    }
    cases
}
