//! How a conformance test reports: `Err(message)` naming what went wrong and where.
//!
//! Tests return [`TestResult`] rather than panic so that a backend author who calls a suite
//! directly gets every failure as a value; a panic inside a backend is still caught by
//! [`crate::run_suite`] and by the test harness.

use std::fmt::Display;
use std::panic::Location;

/// `Ok(())` when the test passed; otherwise what failed, with the source location.
pub type TestResult = Result<(), String>;

/// Fails the test with a formatted message unless `condition` holds.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($message)+)));
        }
    };
}

/// Fails the test unless both sides are equal, showing both.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($message:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return Err(format!(
                        "{}:{}: {}\n   got: {:?}\n  want: {:?}",
                        file!(),
                        line!(),
                        format!($($message)+),
                        left,
                        right
                    ));
                }
            }
        }
    };
}

/// Fails the test with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($message:tt)+) => {
        return Err(format!("{}:{}: {}", file!(), line!(), format!($($message)+)))
    };
}

/// The `(name, function)` list of a suite, named after the functions:
/// `suite_list![StoreTest; write_info_read, delete_cascades]`.
#[macro_export]
macro_rules! suite_list {
    ($test_type:ty; $($test:ident),* $(,)?) => {
        vec![$((stringify!($test), $test as $test_type)),*]
    };
}

/// Turns any error into a test failure that says what the test was doing and where.
pub trait Context<T> {
    fn context(self, doing: impl Display) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    #[track_caller]
    fn context(self, doing: impl Display) -> Result<T, String> {
        let location = Location::caller();
        self.map_err(|error| {
            format!(
                "{}:{}: {doing}: unexpected error: {error}",
                location.file(),
                location.line()
            )
        })
    }
}
