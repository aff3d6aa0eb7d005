//! Tar and decompression bombs (issue 10, hostile corpus): each is refused through the
//! library naming the problem, in bounded time, the store unchanged. `hostile_cli` runs every
//! one through the CLI too, where the peak RSS is measured. The header bombs (extended tar
//! headers declaring 128 MiB, issue 16) go to every tar reader: oci-archive, ACI and layer.

mod hostile_support;

use hostile_support::{bombs, harness, header_bombs, Build};
use rstest::rstest;

#[rstest]
#[case::gzip_member_over_the_byte_limit(bombs::gzip_member_over_the_byte_limit)]
#[case::gzip_many_members_over_the_byte_limit(bombs::gzip_many_members_over_the_byte_limit)]
#[case::tar_bomb_of_entries(bombs::tar_bomb_of_entries)]
#[case::gzip_bomb_within_the_limits(bombs::gzip_bomb_within_the_limits)]
#[case::gzip_bomb_as_a_blob(bombs::gzip_bomb_as_a_blob)]
#[case::zstd_bomb(bombs::zstd_bomb)]
#[case::aci_gzip_bomb(bombs::aci_gzip_bomb)]
#[case::aci_bzip2_bomb(bombs::aci_bzip2_bomb)]
#[case::aci_xz_bomb(bombs::aci_xz_bomb)]
#[case::aci_xz_bomb_after_an_invalid_manifest(bombs::aci_xz_bomb_after_an_invalid_manifest)]
fn a_bomb_is_refused_and_changes_nothing(#[case] build: Build) {
    harness::refused_by_library(build);
}

/// Extended tar headers declaring 128 MiB (issue 16): refused on their header by every tar
/// reader, with a message of bounded length.
#[rstest]
#[case::archive_gnu_long_name_bomb(header_bombs::archive_gnu_long_name_bomb)]
#[case::archive_gnu_long_link_bomb(header_bombs::archive_gnu_long_link_bomb)]
#[case::archive_pax_header_bomb(header_bombs::archive_pax_header_bomb)]
#[case::archive_pax_global_header_bomb(header_bombs::archive_pax_global_header_bomb)]
#[case::archive_gnu_sparse_map_bomb(header_bombs::archive_gnu_sparse_map_bomb)]
#[case::aci_gnu_long_name_bomb(header_bombs::aci_gnu_long_name_bomb)]
#[case::aci_gnu_long_link_bomb(header_bombs::aci_gnu_long_link_bomb)]
#[case::aci_pax_header_bomb(header_bombs::aci_pax_header_bomb)]
#[case::aci_pax_global_header_bomb(header_bombs::aci_pax_global_header_bomb)]
#[case::aci_gnu_sparse_map_bomb(header_bombs::aci_gnu_sparse_map_bomb)]
#[case::layer_gnu_long_name_bomb(header_bombs::layer_gnu_long_name_bomb)]
#[case::layer_gnu_long_link_bomb(header_bombs::layer_gnu_long_link_bomb)]
#[case::layer_pax_header_bomb(header_bombs::layer_pax_header_bomb)]
#[case::layer_pax_global_header_bomb(header_bombs::layer_pax_global_header_bomb)]
#[case::layer_gnu_sparse_map_bomb(header_bombs::layer_gnu_sparse_map_bomb)]
fn a_header_bomb_is_refused_before_its_body_is_read(#[case] build: Build) {
    let error = harness::refused_by_library(build);
    assert!(
        error.len() < 2048,
        "the refusal is {} bytes long: {}…",
        error.len(),
        &error[..2048.min(error.len())]
    );
}
