//! An ACI refused for its manifest is refused as soon as the manifest is read, not after the
//! rest of the archive (issue 10, decompression bombs): the import reads a stream that counts
//! what it hands out.

mod hostile_support;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hostile_support::acis::manifest;
use hostile_support::{harness, RawTar};
use oci_store::stores::appc::{AppcStore, ImportOptions};

/// A prefix, then zeros made as they are read (nothing held), counting every byte read.
struct CountingStream {
    prefix: Vec<u8>,
    zeros_left: u64,
    read: Arc<AtomicU64>,
}

impl Read for CountingStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = if !self.prefix.is_empty() {
            let n = buf.len().min(self.prefix.len());
            buf[..n].copy_from_slice(&self.prefix[..n]);
            self.prefix.drain(..n);
            n
        } else {
            let n = buf.len().min(self.zeros_left as usize);
            buf[..n].fill(0);
            self.zeros_left -= n as u64;
            n
        };
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn an_aci_with_an_invalid_first_manifest_is_refused_before_the_rest_is_read() {
    let prepared = harness::Prepared::new();
    let before = prepared.snapshot();
    let mut bad = manifest("example.com/bomb");
    bad["name"] = serde_json::json!("Not An Identifier");
    let mut tar = RawTar::new();
    tar.file("manifest", &serde_json::to_vec(&bad).unwrap());
    tar.member("rootfs/", tar::EntryType::Directory, None, b"");
    let mut prefix = tar.finish();
    prefix.truncate(prefix.len() - 1024);
    // Then a member that declares 256 MiB: the zeros that follow are its content.
    let size = 256u64 << 20;
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..12].copy_from_slice(b"rootfs/zeros");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    prefix.extend_from_slice(header.as_bytes());
    let read = Arc::new(AtomicU64::new(0));
    let stream = CountingStream {
        prefix,
        zeros_left: size + 1024,
        read: read.clone(),
    };
    let error = AppcStore::new(&prepared.store)
        .import_reader(stream, "the stream", &ImportOptions::default())
        .expect_err("an invalid manifest");
    assert!(error.to_string().contains("manifest.name"), "{error}");
    let consumed = read.load(Ordering::Relaxed);
    assert!(
        consumed < 16 << 20,
        "the import read {consumed} bytes before refusing a manifest it had at the start"
    );
    prepared.snapshot().assert_same(&before, "library");
}
