//! Every generator of the corpus by name, for the seed writer (`hostile_seeds`), which also
//! checks that each generator here is registered and is a test case in its test file.

use super::{acis, archives, bombs, header_bombs, layouts, Build};

pub const LAYOUTS: &[(&str, Build)] = &[
    ("index_not_json", layouts::index_not_json),
    ("index_truncated", layouts::index_truncated),
    ("index_empty_file", layouts::index_empty_file),
    ("index_is_an_array", layouts::index_is_an_array),
    (
        "index_manifests_not_an_array",
        layouts::index_manifests_not_an_array,
    ),
    ("index_missing", layouts::index_missing),
    (
        "index_ref_name_invalid_utf8",
        layouts::index_ref_name_invalid_utf8,
    ),
    ("oci_layout_missing", layouts::oci_layout_missing),
    ("oci_layout_not_json", layouts::oci_layout_not_json),
    (
        "oci_layout_unknown_version",
        layouts::oci_layout_unknown_version,
    ),
    ("manifest_truncated", layouts::manifest_truncated),
    ("manifest_not_json", layouts::manifest_not_json),
    (
        "manifest_deeply_nested_json",
        layouts::manifest_deeply_nested_json,
    ),
    (
        "index_deeply_nested_json",
        layouts::index_deeply_nested_json,
    ),
    ("config_not_json", layouts::config_not_json),
    ("manifest_wrong_digest", layouts::manifest_wrong_digest),
    ("manifest_size_too_big", layouts::manifest_size_too_big),
    ("manifest_size_too_small", layouts::manifest_size_too_small),
    ("config_wrong_digest", layouts::config_wrong_digest),
    ("layer_wrong_digest", layouts::layer_wrong_digest),
    ("layer_wrong_size", layouts::layer_wrong_size),
    ("layer_truncated", layouts::layer_truncated),
    ("layer_missing", layouts::layer_missing),
    ("manifest_missing", layouts::manifest_missing),
    (
        "sha512_digest_of_other_content",
        layouts::sha512_digest_of_other_content,
    ),
    (
        "digest_unknown_algorithm",
        layouts::digest_unknown_algorithm,
    ),
    ("digest_uppercase_hex", layouts::digest_uppercase_hex),
    ("digest_hex_too_short", layouts::digest_hex_too_short),
    ("digest_hex_too_long", layouts::digest_hex_too_long),
    (
        "digest_without_algorithm",
        layouts::digest_without_algorithm,
    ),
    ("digest_empty", layouts::digest_empty),
    ("digest_not_hex", layouts::digest_not_hex),
    ("digest_traversal", layouts::digest_traversal),
    (
        "digest_algorithm_traversal",
        layouts::digest_algorithm_traversal,
    ),
    ("digest_with_nul", layouts::digest_with_nul),
    ("layer_digest_traversal", layouts::layer_digest_traversal),
    (
        "manifest_blob_symlink_out",
        layouts::manifest_blob_symlink_out,
    ),
    ("layer_blob_symlink_out", layouts::layer_blob_symlink_out),
    ("blobs_dir_symlink_out", layouts::blobs_dir_symlink_out),
    (
        "algorithm_dir_symlink_out",
        layouts::algorithm_dir_symlink_out,
    ),
    ("index_symlink_out", layouts::index_symlink_out),
    ("oci_layout_symlink_out", layouts::oci_layout_symlink_out),
    (
        "manifest_blob_symlink_to_etc_passwd",
        layouts::manifest_blob_symlink_to_etc_passwd,
    ),
    (
        "layer_blob_hard_link_out",
        layouts::layer_blob_hard_link_out,
    ),
    ("index_is_a_fifo", layouts::index_is_a_fifo),
    ("config_is_a_fifo", layouts::config_is_a_fifo),
    ("layer_is_a_socket", layouts::layer_is_a_socket),
    ("layer_is_a_char_device", layouts::layer_is_a_char_device),
    ("manifest_is_a_directory", layouts::manifest_is_a_directory),
    ("index_is_a_directory", layouts::index_is_a_directory),
    ("ref_name_traversal", layouts::ref_name_traversal),
    ("ref_name_absolute", layouts::ref_name_absolute),
    (
        "ref_name_dot_dot_component",
        layouts::ref_name_dot_dot_component,
    ),
    ("ref_name_empty", layouts::ref_name_empty),
    ("ref_name_with_nul", layouts::ref_name_with_nul),
    ("ref_name_with_newline", layouts::ref_name_with_newline),
    ("ref_name_with_space", layouts::ref_name_with_space),
    ("ref_name_too_long", layouts::ref_name_too_long),
    ("ref_name_double_slash", layouts::ref_name_double_slash),
    ("ref_name_not_a_string", layouts::ref_name_not_a_string),
    (
        "pre_1_0_ref_file_traversal",
        layouts::pre_1_0_ref_file_traversal,
    ),
    (
        "pre_1_0_ref_file_not_json",
        layouts::pre_1_0_ref_file_not_json,
    ),
    (
        "index_json_over_the_limit",
        layouts::index_json_over_the_limit,
    ),
    ("manifest_over_the_limit", layouts::manifest_over_the_limit),
    ("index_over_the_limit", layouts::index_over_the_limit),
    (
        "manifest_size_claims_a_terabyte",
        layouts::manifest_size_claims_a_terabyte,
    ),
    ("config_over_the_limit", layouts::config_over_the_limit),
    ("indexes_nested_too_deep", layouts::indexes_nested_too_deep),
    ("index_lists_itself", layouts::index_lists_itself),
    (
        "two_indexes_list_each_other",
        layouts::two_indexes_list_each_other,
    ),
    ("subject_cycle", layouts::subject_cycle),
    (
        "subject_of_a_valid_manifest_is_a_cycle",
        layouts::subject_of_a_valid_manifest_is_a_cycle,
    ),
    (
        "manifest_schema_version_1",
        layouts::manifest_schema_version_1,
    ),
    (
        "manifest_schema_version_3",
        layouts::manifest_schema_version_3,
    ),
    (
        "manifest_schema_version_string",
        layouts::manifest_schema_version_string,
    ),
    (
        "manifest_schema_version_missing",
        layouts::manifest_schema_version_missing,
    ),
    ("manifest_config_missing", layouts::manifest_config_missing),
    (
        "manifest_config_media_type_missing",
        layouts::manifest_config_media_type_missing,
    ),
    (
        "manifest_layers_not_an_array",
        layouts::manifest_layers_not_an_array,
    ),
    ("manifest_layers_missing", layouts::manifest_layers_missing),
    (
        "manifest_layer_size_negative",
        layouts::manifest_layer_size_negative,
    ),
    (
        "manifest_layer_size_a_string",
        layouts::manifest_layer_size_a_string,
    ),
    (
        "manifest_layer_size_fractional",
        layouts::manifest_layer_size_fractional,
    ),
    (
        "manifest_layer_digest_bad_format",
        layouts::manifest_layer_digest_bad_format,
    ),
    (
        "manifest_layer_media_type_invalid",
        layouts::manifest_layer_media_type_invalid,
    ),
    (
        "manifest_config_digest_a_number",
        layouts::manifest_config_digest_a_number,
    ),
    (
        "manifest_annotation_value_not_a_string",
        layouts::manifest_annotation_value_not_a_string,
    ),
    (
        "manifest_layer_urls_not_an_array",
        layouts::manifest_layer_urls_not_an_array,
    ),
    (
        "manifest_media_type_mismatch",
        layouts::manifest_media_type_mismatch,
    ),
    ("manifest_is_an_array", layouts::manifest_is_an_array),
    ("index_manifests_missing", layouts::index_manifests_missing),
    (
        "index_manifests_a_string",
        layouts::index_manifests_a_string,
    ),
    (
        "index_platform_architecture_missing",
        layouts::index_platform_architecture_missing,
    ),
    (
        "index_platform_os_a_number",
        layouts::index_platform_os_a_number,
    ),
    (
        "index_entry_size_missing",
        layouts::index_entry_size_missing,
    ),
    ("index_schema_version_1", layouts::index_schema_version_1),
    ("config_os_a_number", layouts::config_os_a_number),
    (
        "config_architecture_missing",
        layouts::config_architecture_missing,
    ),
    (
        "config_env_entry_without_equals",
        layouts::config_env_entry_without_equals,
    ),
    (
        "config_rootfs_type_wrong",
        layouts::config_rootfs_type_wrong,
    ),
    ("config_rootfs_missing", layouts::config_rootfs_missing),
];

pub const ARCHIVES: &[(&str, Build)] = &[
    ("not_a_tar", archives::not_a_tar),
    ("truncated_tar", archives::truncated_tar),
    ("truncated_gzip", archives::truncated_gzip),
    ("gzip_bad_crc", archives::gzip_bad_crc),
    ("bad_header_checksum", archives::bad_header_checksum),
    ("truncated_zstd", archives::truncated_zstd),
    ("xz_compressed", archives::xz_compressed),
    ("empty_archive", archives::empty_archive),
    ("dot_dot_member", archives::dot_dot_member),
    ("absolute_member", archives::absolute_member),
    (
        "blob_member_with_dot_dot",
        archives::blob_member_with_dot_dot,
    ),
    ("gnu_long_name_traversal", archives::gnu_long_name_traversal),
    ("pax_path_traversal", archives::pax_path_traversal),
    ("symlink_to_etc_passwd", archives::symlink_to_etc_passwd),
    ("symlink_blobs_dir", archives::symlink_blobs_dir),
    ("hard_link_to_etc_passwd", archives::hard_link_to_etc_passwd),
    ("hard_link_to_a_blob", archives::hard_link_to_a_blob),
    ("char_device_entry", archives::char_device_entry),
    ("block_device_entry", archives::block_device_entry),
    ("fifo_entry", archives::fifo_entry),
    ("fifo_as_index", archives::fifo_as_index),
    (
        "sparse_entry_without_its_map",
        archives::sparse_entry_without_its_map,
    ),
    ("unknown_entry_type", archives::unknown_entry_type),
    ("junk_after_the_end", archives::junk_after_the_end),
    ("index_twice", archives::index_twice),
    ("index_over_the_limit", archives::index_over_the_limit),
    (
        "index_without_oci_layout",
        archives::index_without_oci_layout,
    ),
    ("index_not_json", archives::index_not_json),
    (
        "blob_member_wrong_content",
        archives::blob_member_wrong_content,
    ),
    (
        "blob_member_uppercase_name",
        archives::blob_member_uppercase_name,
    ),
    (
        "blob_member_unknown_algorithm",
        archives::blob_member_unknown_algorithm,
    ),
    (
        "blob_member_declares_a_terabyte",
        archives::blob_member_declares_a_terabyte,
    ),
    ("blob_of_other_digest", archives::blob_of_other_digest),
];

pub const ACIS: &[(&str, Build)] = &[
    ("not_an_archive", acis::not_an_archive),
    ("empty_file", acis::empty_file),
    ("truncated_tar", acis::truncated_tar),
    ("truncated_gzip", acis::truncated_gzip),
    ("gzip_bad_checksum", acis::gzip_bad_checksum),
    ("truncated_xz", acis::truncated_xz),
    ("truncated_bzip2", acis::truncated_bzip2),
    ("bad_header_checksum", acis::bad_header_checksum),
    ("aci_is_a_fifo", acis::aci_is_a_fifo),
    ("aci_is_a_directory", acis::aci_is_a_directory),
    ("manifest_missing", acis::manifest_missing),
    ("rootfs_missing", acis::rootfs_missing),
    ("rootfs_is_a_file", acis::rootfs_is_a_file),
    ("extra_top_level_file", acis::extra_top_level_file),
    ("manifest_twice", acis::manifest_twice),
    ("manifest_is_a_symlink", acis::manifest_is_a_symlink),
    ("manifest_over_the_limit", acis::manifest_over_the_limit),
    ("absolute_member", acis::absolute_member),
    ("dot_dot_member", acis::dot_dot_member),
    ("non_utf8_member", acis::non_utf8_member),
    ("symlink_escapes_rootfs", acis::symlink_escapes_rootfs),
    (
        "absolute_symlink_then_write_through_it",
        acis::absolute_symlink_then_write_through_it,
    ),
    ("hard_link_out_of_rootfs", acis::hard_link_out_of_rootfs),
    ("hard_link_to_the_manifest", acis::hard_link_to_the_manifest),
    (
        "hard_link_to_a_missing_file",
        acis::hard_link_to_a_missing_file,
    ),
    ("manifest_is_a_char_device", acis::manifest_is_a_char_device),
    ("rootfs_is_a_block_device", acis::rootfs_is_a_block_device),
    ("manifest_is_a_fifo", acis::manifest_is_a_fifo),
    ("unknown_entry_type", acis::unknown_entry_type),
    ("duplicate_rootfs_file", acis::duplicate_rootfs_file),
    ("manifest_not_json", acis::manifest_not_json),
    ("manifest_an_array", acis::manifest_an_array),
    ("manifest_deeply_nested", acis::manifest_deeply_nested),
    ("ac_kind_wrong", acis::ac_kind_wrong),
    ("ac_version_not_semver", acis::ac_version_not_semver),
    ("name_missing", acis::name_missing),
    ("name_uppercase", acis::name_uppercase),
    ("name_traversal", acis::name_traversal),
    ("name_empty", acis::name_empty),
    ("name_a_number", acis::name_a_number),
    ("label_name_invalid", acis::label_name_invalid),
    ("label_called_name", acis::label_called_name),
    ("label_twice", acis::label_twice),
    ("label_os_unknown", acis::label_os_unknown),
    ("label_arch_wrong_for_os", acis::label_arch_wrong_for_os),
    ("labels_not_an_array", acis::labels_not_an_array),
    (
        "annotation_created_not_a_date",
        acis::annotation_created_not_a_date,
    ),
    (
        "annotation_homepage_not_a_url",
        acis::annotation_homepage_not_a_url,
    ),
    ("app_exec_relative", acis::app_exec_relative),
    ("app_user_missing", acis::app_user_missing),
    (
        "app_working_directory_relative",
        acis::app_working_directory_relative,
    ),
    ("app_port_out_of_range", acis::app_port_out_of_range),
    ("app_mount_point_relative", acis::app_mount_point_relative),
    ("app_isolator_unknown", acis::app_isolator_unknown),
    ("dependency_image_id_bad", acis::dependency_image_id_bad),
    ("dependency_name_invalid", acis::dependency_name_invalid),
    ("path_whitelist_relative", acis::path_whitelist_relative),
];

pub const BOMBS: &[(&str, Build)] = &[
    (
        "gzip_member_over_the_byte_limit",
        bombs::gzip_member_over_the_byte_limit,
    ),
    (
        "gzip_many_members_over_the_byte_limit",
        bombs::gzip_many_members_over_the_byte_limit,
    ),
    ("tar_bomb_of_entries", bombs::tar_bomb_of_entries),
    (
        "gzip_bomb_within_the_limits",
        bombs::gzip_bomb_within_the_limits,
    ),
    ("gzip_bomb_as_a_blob", bombs::gzip_bomb_as_a_blob),
    ("zstd_bomb", bombs::zstd_bomb),
    ("aci_gzip_bomb", bombs::aci_gzip_bomb),
    ("aci_bzip2_bomb", bombs::aci_bzip2_bomb),
    ("aci_xz_bomb", bombs::aci_xz_bomb),
    (
        "aci_xz_bomb_after_an_invalid_manifest",
        bombs::aci_xz_bomb_after_an_invalid_manifest,
    ),
];

pub const HEADER_BOMBS: &[(&str, Build)] = &[
    (
        "archive_gnu_long_name_bomb",
        header_bombs::archive_gnu_long_name_bomb,
    ),
    (
        "archive_gnu_long_link_bomb",
        header_bombs::archive_gnu_long_link_bomb,
    ),
    (
        "archive_pax_header_bomb",
        header_bombs::archive_pax_header_bomb,
    ),
    (
        "archive_pax_global_header_bomb",
        header_bombs::archive_pax_global_header_bomb,
    ),
    (
        "archive_gnu_sparse_map_bomb",
        header_bombs::archive_gnu_sparse_map_bomb,
    ),
    (
        "aci_gnu_long_name_bomb",
        header_bombs::aci_gnu_long_name_bomb,
    ),
    (
        "aci_gnu_long_link_bomb",
        header_bombs::aci_gnu_long_link_bomb,
    ),
    ("aci_pax_header_bomb", header_bombs::aci_pax_header_bomb),
    (
        "aci_pax_global_header_bomb",
        header_bombs::aci_pax_global_header_bomb,
    ),
    (
        "aci_gnu_sparse_map_bomb",
        header_bombs::aci_gnu_sparse_map_bomb,
    ),
    (
        "layer_gnu_long_name_bomb",
        header_bombs::layer_gnu_long_name_bomb,
    ),
    (
        "layer_gnu_long_link_bomb",
        header_bombs::layer_gnu_long_link_bomb,
    ),
    ("layer_pax_header_bomb", header_bombs::layer_pax_header_bomb),
    (
        "layer_pax_global_header_bomb",
        header_bombs::layer_pax_global_header_bomb,
    ),
    (
        "layer_gnu_sparse_map_bomb",
        header_bombs::layer_gnu_sparse_map_bomb,
    ),
];
