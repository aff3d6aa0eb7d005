//! One safe, rootless renderer of root file systems for every flavour: OCI layers (applied
//! lowest first, with whiteouts) and appc images (upper image first, `rootfs/` prefix, path
//! whitelist) go through the same [`apply_layer`].
//!
//! - [`apply_layer`]: a tar stream onto a target directory, no entry landing outside it
//!   (module `beneath` says how); [`ApplyOptions`] carry what differs per flavour.
//!   [`Render`] applies several layers and gives directories their modes only after the
//!   last (module `render` says why); no mode is ever set through a link (`nofollow`).
//! - Entry paths are limited to [`MAX_PATH_BYTES`] and [`MAX_DEPTH`]; every tree walk is a
//!   loop with a bounded number of open descriptors (`dir_cursor`).
//! - [`bounded_archive`] / [`BoundedTarReader`]: how every tar reader of the store (layers,
//!   oci-archives, ACIs) reads a tar stream: extended headers over [`TarHeaderLimits`] are
//!   refused before the `tar` crate reads them whole; [`short_name`] quotes archive names in
//!   messages.
//! - [`decompress`]: a layer's tar stream from its media type, checked by magic bytes.
//! - [`VerifyingReader`]: hashes a blob as it is read and fails on a mismatch, so what leaves
//!   the store is verified.
//! - [`tree_hash`] / [`verify_tree`]: a deterministic content hash of a rendered tree;
//!   [`copy_tree`] copies one, hashing what it copies.
//! - [`render_into_new_directory`]: all-or-nothing output into a directory the user names.
//! - [`TreeStore`]: rendered trees cached in the store directory, keyed by a flavour's string,
//!   rendered once under a per-key lock.
//!
//! Depends only on the base store's public API (locks, directory) and the traits' `Digest`.

mod apply;
mod archive_end;
mod beneath;
pub mod bounded_tar;
mod compression;
mod dir_cursor;
mod entry_meta;
mod entry_path;
mod error;
#[cfg(feature = "test-support")]
pub mod fuzzing;
mod new_target;
mod nofollow;
mod options;
mod render;
mod report;
mod short_name;
mod tree_copy;
mod tree_hash;
mod tree_store;
mod verify_reader;
mod whiteout;

pub use apply::ApplyReport;
pub use bounded_tar::{bounded_archive, TarHeaderError};
pub use compression::decompress;
pub use error::RootfsError;
pub use new_target::render_into_new_directory;
pub use options::{AbsoluteNames, ApplyOptions, EntryKind, Existing, Ownership};
pub use render::Render;
pub use short_name::{short_name, short_str};
pub use tree_hash::TreeSummary;
pub use tree_store::{LeftoverNotRemoved, RenderedTree, TreeStore};
// What the test suites reach besides the public API.
pub use verify_reader::VerifyingReader;
#[cfg(feature = "test-support")]
pub use {
    apply::apply_layer,
    beneath::remove_tree,
    bounded_tar::{BoundedTarReader, TarHeaderLimits},
    compression::Compression,
    entry_path::{MAX_DEPTH, MAX_PATH_BYTES},
    error::RootfsResult,
    options::{Devices, PathFilter},
    short_name::NAME_PREFIX,
    tree_copy::copy_tree,
    tree_hash::{tree_hash, verify_tree},
    tree_store::{private_dir, CopiedTree, LeftoverReport, TREES_DIR},
};
