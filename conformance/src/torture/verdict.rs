//! The checker's judgement of one logged answer.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The answer is what the model allows.
    Fine,
    /// A failure the model predicts or concurrency explains (a blob deleted by another
    /// thread first, a compare-and-set race lost); the text names the class.
    Expected(&'static str),
    /// A failure nothing explains (an I/O error, a refused valid input).
    Unexpected(String),
    /// An answer that breaks an invariant: acknowledged data lost, wrong content, an
    /// incomplete ref, a damaged store.
    Violation(String),
}
