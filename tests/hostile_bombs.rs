//! Tar and decompression bombs (issue 10, hostile corpus): each is refused through the
//! library naming the problem, in bounded time, the store unchanged. `hostile_cli` runs every
//! one through the CLI too, where the peak RSS is measured.

mod hostile_support;

use hostile_support::{bombs, harness, Build};
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
