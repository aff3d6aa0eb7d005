//! The OCI flavour suite: `OciStore` over the base store, run for every backend combination
//! (issue 4: "the OCI suite runs in the conformance matrix over every backend combination";
//! DESIGN.md invariants 5-7 as the OCI flavour sees them).
//!
//! - [`import_export`]: layouts, archives, pre-1.0 layouts, nested indexes, Docker media types,
//!   artifacts and referrers, refs.
//! - [`safety`]: bad input is refused and changes nothing, not even temporarily visible blobs.
//! - [`import_holds`]: what crashed imports held is let go by the next GC; archive limits.
//! - [`damage`]: `check` on a damaged store names what is missing or corrupt; export refuses
//!   to copy a damaged blob out.
//! - [`validation`]: imports are validated to the image-spec (an invalid corpus refused, valid
//!   images of every kind taken).
//! - [`gc`]: GC, leases, other flavours' marks, and concurrency within one process.
//!
//! The process half (importers beside a GC loop) is in `tests/multi_process.rs`, with the
//! `oci-import` and `oci-gc` modes of `conformance-worker`.
//!
//! Layouts are built with the library's own `LayoutBuilder` and kept small (layers of a few
//! dozen bytes): the suite runs once per combination.

pub mod damage;
pub mod gc;
pub mod import_export;
pub mod import_holds;
pub mod processes;
pub mod refs;
pub mod safety;
pub mod support;
pub mod validation;

use std::path::Path;

use oci_store::store::StoreResult;
use oci_store::Store;

use crate::base_store::StoreTest;
use crate::check::TestResult;
use crate::fixture::SuiteTest;

pub use damage::*;
pub use gc::*;
pub use import_export::*;
pub use import_holds::*;
pub use refs::*;
pub use safety::*;
pub use validation::*;

pub fn tests() -> Vec<SuiteTest<Store>> {
    crate::suite_list![StoreTest;
        round_trip_is_blob_for_blob,
        sref_dref_and_all_choose_refs,
        tag_and_remove_refs,
        ref_entries_record_what_list_shows,
        remove_refs_is_all_or_nothing,
        pre_1_0_layout_with_both_blob_forms,
        oci_archives_plain_and_gzip,
        nested_index_and_multi_arch,
        docker_media_types_and_absent_foreign_layer,
        artifacts_with_subject_are_referrers,
        subject_may_travel_without_its_image,
        one_blob_under_two_media_types,
        archive_traversal_and_absolute_paths_are_refused,
        symlinks_leading_out_are_refused,
        oversize_manifest_is_refused,
        wrong_digest_or_size_stores_nothing,
        invalid_ref_names_are_refused,
        malformed_layouts_get_clear_errors,
        failed_import_leaves_the_dump_unchanged,
        refused_import_beside_an_import_of_the_same_blobs,
        gc_keeps_what_refs_leases_and_referrers_reach,
        gc_never_removes_what_another_flavour_marks,
        gc_dry_run_lists_and_frees_nothing,
        concurrent_exports_into_one_layout_lose_nothing,
        leases_protect_blobs_without_refs,
        gc_never_sweeps_an_import_in_flight,
        gc_clears_holds_of_crashed_imports,
        archive_limits_are_enforced,
        archives_are_validated_like_directories,
        import_survives_another_flavour_letting_go,
        gc_leaves_entry_held_blobs_to_their_entry,
        gc_stops_on_storage_errors_and_sweeps_nothing,
        gc_refuses_when_a_ref_reaches_a_corrupt_document,
        gc_marks_from_recorded_links_and_records_missing_ones,
        check_verify_names_damaged_blobs,
        export_refuses_damaged_blobs,
        invalid_layouts_are_refused_naming_blob_and_rule,
        valid_images_of_every_kind_still_import,
    ]
}

/// Runs the whole OCI suite against a store opener, e.g.
/// `|dir| open_store(dir, &BackendChoice::default())`.
pub fn run_all(
    open: impl Fn(&Path) -> StoreResult<Store> + Clone + Send + Sync + 'static,
) -> TestResult {
    crate::run_suite(tests(), open)
}
