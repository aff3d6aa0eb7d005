//! The appc flavour suite: `AppcStore` over the base store, run for every backend combination
//! (issue 8), and the appc and OCI flavours sharing one store.
//!
//! - [`images`]: import in every compression, keys, lookup, image info, last used, export.
//! - [`invalid`]: the corpus of invalid ACIs, each refused naming its rule, store unchanged.
//! - [`lifecycle`]: remote records, dependencies, removal, GC by age, cross-flavour.
//! - [`render`]: flattening with the shared renderer, path whitelists, the tree cache.
//!
//! Images are built in memory ([`support::Aci`]); real ones made by actool are imported by the
//! interop test `tests/appc_actool.rs`.

pub mod images;
pub mod invalid;
pub mod lifecycle;
pub mod render;
pub mod support;

use std::path::Path;

use oci_store::store::StoreResult;
use oci_store::Store;

use crate::base_store::StoreTest;
use crate::check::TestResult;
use crate::fixture::SuiteTest;

pub use images::*;
pub use invalid::*;
pub use lifecycle::*;
pub use render::*;

pub fn tests() -> Vec<SuiteTest<Store>> {
    crate::suite_list![StoreTest;
        every_compression_is_one_image_stored_once,
        keys_full_short_prefix_and_ambiguous,
        lookup_by_name_labels_latest_and_newest,
        info_ls_and_get_read_no_tars,
        last_used_follows_export_and_run_not_lookup,
        export_gives_the_same_bytes_and_id,
        concurrent_imports_of_one_image_store_it_once,
        invalid_acis_are_refused_naming_their_rule,
        stricter_than_actool_but_valid_neighbours_pass,
        a_fifo_where_the_aci_belongs_is_refused,
        remote_records_decide_and_go_with_their_image,
        dependency_check_is_recursive_cycle_safe_and_names_what_is_missing,
        remove_leaves_the_store_as_before,
        gc_by_age_keeps_recent_per_name_and_dependencies,
        flavours_share_one_store_and_never_collect_each_other,
        gc_racing_imports_leaves_whole_images_or_none,
        rm_racing_reimports_of_the_same_image,
        render_flattens_upper_first_and_honours_the_whitelist,
        trees_are_reused_verified_copied_and_go_with_their_images,
        render_names_a_missing_dependency,
        two_renders_at_once_render_once,
        dependencies_never_write_through_an_upper_symlink,
    ]
}

/// Runs the whole appc suite against a store opener.
pub fn run_all(
    open: impl Fn(&Path) -> StoreResult<Store> + Clone + Send + Sync + 'static,
) -> TestResult {
    crate::run_suite(tests(), open)
}
