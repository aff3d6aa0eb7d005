//! Bad `oci-archive`s (issue 10, hostile corpus): each is refused through the library
//! with an error naming the problem, in bounded time, nothing created outside the store, the
//! store unchanged.

mod hostile_support;

use hostile_support::{archives, harness, Build};
use rstest::rstest;

#[rstest]
#[case::not_a_tar(archives::not_a_tar)]
#[case::truncated_tar(archives::truncated_tar)]
#[case::truncated_gzip(archives::truncated_gzip)]
#[case::gzip_bad_crc(archives::gzip_bad_crc)]
#[case::bad_header_checksum(archives::bad_header_checksum)]
#[case::truncated_zstd(archives::truncated_zstd)]
#[case::xz_compressed(archives::xz_compressed)]
#[case::empty_archive(archives::empty_archive)]
#[case::dot_dot_member(archives::dot_dot_member)]
#[case::absolute_member(archives::absolute_member)]
#[case::blob_member_with_dot_dot(archives::blob_member_with_dot_dot)]
#[case::gnu_long_name_traversal(archives::gnu_long_name_traversal)]
#[case::pax_path_traversal(archives::pax_path_traversal)]
#[case::symlink_to_etc_passwd(archives::symlink_to_etc_passwd)]
#[case::symlink_blobs_dir(archives::symlink_blobs_dir)]
#[case::hard_link_to_etc_passwd(archives::hard_link_to_etc_passwd)]
#[case::hard_link_to_a_blob(archives::hard_link_to_a_blob)]
#[case::char_device_entry(archives::char_device_entry)]
#[case::block_device_entry(archives::block_device_entry)]
#[case::fifo_entry(archives::fifo_entry)]
#[case::fifo_as_index(archives::fifo_as_index)]
#[case::sparse_entry_without_its_map(archives::sparse_entry_without_its_map)]
#[case::unknown_entry_type(archives::unknown_entry_type)]
#[case::junk_after_the_end(archives::junk_after_the_end)]
#[case::index_twice(archives::index_twice)]
#[case::index_over_the_limit(archives::index_over_the_limit)]
#[case::index_without_oci_layout(archives::index_without_oci_layout)]
#[case::index_not_json(archives::index_not_json)]
#[case::blob_member_wrong_content(archives::blob_member_wrong_content)]
#[case::blob_member_uppercase_name(archives::blob_member_uppercase_name)]
#[case::blob_member_unknown_algorithm(archives::blob_member_unknown_algorithm)]
#[case::blob_member_declares_a_terabyte(archives::blob_member_declares_a_terabyte)]
#[case::blob_of_other_digest(archives::blob_of_other_digest)]
fn a_bad_archive_is_refused_and_changes_nothing(#[case] build: Build) {
    harness::refused_by_library(build);
}
