//! The bounded tar reader every tar reader uses, on arbitrary bytes: never panics, never
//! changes what an archive within the limits reads as (compared with the `tar` crate read
//! directly), and refuses only a header over its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_store::stores::rootfs::fuzzing::compare_bounded_and_plain;

fuzz_target!(|data: &[u8]| {
    let _ = compare_bounded_and_plain(data);
});
