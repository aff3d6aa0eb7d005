//! The OCI flavour's commands: `import`, `export`, `list`, `tag`, `rm`, `check`, `referrers`,
//! `lease` and the top-level `gc`. Each opens the store, wraps it in [`OciStore`] and prints
//! what the library returns.

mod cat;
mod check;
mod du;
mod export;
mod gc;
mod import;
mod inspect;
mod lease;
mod prune;
mod referrers;
mod refs;
mod unpack;

pub use cat::CatCommand;
pub use check::CheckCommand;
pub use du::DuCommand;
pub use export::ExportCommand;
pub use gc::plural;
pub use gc::GcCommand;
pub use import::ImportCommand;
pub use inspect::InspectCommand;
pub use lease::LeaseCommand;
pub use prune::{PinCommand, PruneCommand, UnpinCommand};
pub use referrers::ReferrersCommand;
pub use refs::{ListCommand, RemoveCommand, TagCommand};
pub use unpack::UnpackCommand;

use super::error::CliResult;
use crate::store::Store;
use crate::traits::{Digest, DigestPrefix};

/// A digest the user typed: taken as it is when complete (it need not be stored: a lease may
/// name a blob not written yet, a subject may be absent), else resolved as a unique prefix of a
/// stored one.
fn digest_argument(store: &Store, text: &str) -> CliResult<Digest> {
    if let Some(digest) = DigestPrefix::parse(text)?.as_complete() {
        return Ok(digest);
    }
    Ok(store.resolve(text)?)
}
