//! Retention (DESIGN.md, "Serving, mirroring and retention"): one engine that decides which of
//! a flavour's names (refs, images) go when a cache must shrink, for every flavour.
//!
//! - A flavour supplies an [`Inventory`]: its names with what each reaches, when each was last
//!   used (`Store::record_use`) and whether it is pinned, plus the blobs other roots keep
//!   (leases and the like).
//! - [`plan`] applies a [`RetentionPolicy`] to it: pins, recent uses, `--filter` and
//!   `--keep-last` protect; `--until` narrows what may go; a size goal (`--max-size`,
//!   `--min-free`, watermarks) says how much must go. Victims come least recently used first,
//!   each with its reasons and the bytes it frees: only blobs no surviving name, no other root
//!   and no other holder keeps.
//! - The flavour executes a plan through its own GC, under its GC lock, re-checking each victim
//!   there (still the same target, not pinned, not used since the plan) so a use or a re-tag
//!   that raced the plan wins.
//!
//! Pins are key/value entries `store.pin/<holder>/<name>` ([`Store::pin`]).
//!
//! [`Store::pin`]: crate::Store::pin

mod pins;
mod plan;
mod policy;
mod space;

pub(crate) use pins::{pin_key, PIN_TYPE};
pub use plan::{plan, Candidate, Inventory, Plan, Protected, Reason, Victim};
pub use policy::{FreeSpace, RetentionPolicy, Watermarks};
pub use space::FsSpace;
