//! The fixture every suite test receives: a fresh temporary directory and a way to open the
//! backend (or store) under test in it, as often as the test needs (reopen tests open twice).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use crate::check::TestResult;

type Opener<T> = Arc<dyn Fn(&Path) -> Result<T, String> + Send + Sync>;

pub struct Fixture<T> {
    dir: tempfile::TempDir,
    opener: Opener<T>,
}

/// One named test of a suite.
pub type SuiteTest<T> = (&'static str, fn(&Fixture<T>) -> TestResult);

impl<T> Fixture<T> {
    /// A fixture in a new, empty temporary directory. `open` is called with that directory
    /// each time the test opens the backend.
    pub fn new<E: std::fmt::Display>(
        open: impl Fn(&Path) -> Result<T, E> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("oci-store-conformance-")
            .tempdir()
            .map_err(|e| format!("creating the fixture's temporary directory: {e}"))?;
        let opener: Opener<T> = Arc::new(move |dir: &Path| {
            open(dir).map_err(|e| format!("opening the backend in {}: {e}", dir.display()))
        });
        Ok(Fixture { dir, opener })
    }

    /// Opens the backend under test in this fixture's directory.
    pub fn open(&self) -> Result<T, String> {
        (self.opener)(self.dir.path())
    }

    /// Opens the backend under test in another directory: for tests that need a second,
    /// independent store of the same kind (export from one, import into the other).
    pub fn open_in(&self, dir: &Path) -> Result<T, String> {
        (self.opener)(dir)
    }

    /// The directory the backend keeps its files in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs one test on a fresh fixture, turning a panic into a failure.
pub fn run_one<T, E: std::fmt::Display>(
    test: fn(&Fixture<T>) -> TestResult,
    open: impl Fn(&Path) -> Result<T, E> + Send + Sync + 'static,
) -> TestResult {
    let fixture = Fixture::new(open)?;
    match catch_unwind(AssertUnwindSafe(|| test(&fixture))) {
        Ok(result) => result,
        Err(panic) => Err(format!("panicked: {}", panic_message(&panic))),
    }
}

/// Runs every test of a suite, each on a fresh fixture, and reports all failures at once.
/// This is what a backend author calls from their own `#[test]`:
///
/// ```no_run
/// # use std::sync::Arc;
/// # use oci_store::traits::BlobStore;
/// # fn open_my_backend(dir: &std::path::Path) -> oci_store::traits::StorageResult<Arc<dyn BlobStore>> { todo!() }
/// oci_store_conformance::blob_store::run_all(open_my_backend).unwrap();
/// ```
pub fn run_suite<T, E: std::fmt::Display>(
    tests: Vec<SuiteTest<T>>,
    open: impl Fn(&Path) -> Result<T, E> + Clone + Send + Sync + 'static,
) -> TestResult {
    let failures: Vec<String> = tests
        .into_iter()
        .filter_map(|(name, test)| {
            run_one(test, open.clone())
                .err()
                .map(|message| format!("{name}: {message}"))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} test(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}
