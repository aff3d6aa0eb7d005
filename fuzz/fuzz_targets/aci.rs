//! ACI validation as an import runs it (decompression by magic, every tar entry, the manifest),
//! on arbitrary bytes: never panics, and gives either an image name or a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_store::stores::appc::fuzzing::check_aci;

fuzz_target!(|data: &[u8]| {
    match check_aci(data) {
        Ok(name) => assert!(!name.is_empty()),
        Err(reason) => assert!(!reason.is_empty()),
    }
});
