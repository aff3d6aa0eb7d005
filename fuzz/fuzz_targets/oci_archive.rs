//! `oci-archive` reading as an import runs it (gzip by magic, every member, the layout files,
//! the index), on arbitrary bytes written to a file: never panics, never reads past its limits.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use oci_store::stores::oci::fuzzing::{read_oci_archive, ArchiveLimits};

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("a temp file");
    file.write_all(data).expect("writing the input");
    let limits = ArchiveLimits {
        max_entries: 10_000,
        max_bytes: 64 << 20,
    };
    let _ = read_oci_archive(file.path(), limits);
});
