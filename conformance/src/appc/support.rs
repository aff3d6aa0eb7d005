//! Helpers of the appc suite: ACIs built in memory (tar headers written by hand, so invalid
//! archives can be made as easily as valid ones), their compressions, and the flavour over the
//! store the matrix opens.

use std::io::Write;

use oci_store::stores::appc::{AppcStore, ImportOptions, ImportReport};
use serde_json::{json, Value};

use crate::Context;

/// The appc flavour over the store the matrix opens.
pub type Appc<'s> = AppcStore<'s>;

/// One tar member, written as given.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub kind: tar::EntryType,
    pub link: Option<String>,
    pub content: Vec<u8>,
}

/// An ACI under construction: members in order.
#[derive(Clone, Debug)]
pub struct Aci {
    pub members: Vec<Member>,
}

/// A manifest with `name` and `labels`, the rest minimal.
pub fn manifest(name: &str, labels: &[(&str, &str)]) -> Value {
    json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": name,
        "labels": labels.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
    })
}

impl Aci {
    /// `manifest` then `rootfs/`, nothing else.
    pub fn new(manifest: &Value) -> Aci {
        Aci::with_manifest_bytes(serde_json::to_vec(manifest).expect("serializes"))
    }

    pub fn with_manifest_bytes(manifest: Vec<u8>) -> Aci {
        Aci {
            members: Vec::new(),
        }
        .member("manifest", tar::EntryType::Regular, None, &manifest)
        .dir("rootfs")
    }

    pub fn member(
        mut self,
        name: &str,
        kind: tar::EntryType,
        link: Option<&str>,
        content: &[u8],
    ) -> Aci {
        self.members.push(Member {
            name: name.to_string(),
            kind,
            link: link.map(str::to_string),
            content: content.to_vec(),
        });
        self
    }

    pub fn dir(self, name: &str) -> Aci {
        self.member(name, tar::EntryType::Directory, None, b"")
    }

    pub fn file(self, name: &str, content: &[u8]) -> Aci {
        self.member(name, tar::EntryType::Regular, None, content)
    }

    pub fn symlink(self, name: &str, target: &str) -> Aci {
        self.member(name, tar::EntryType::Symlink, Some(target), b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> Aci {
        self.member(name, tar::EntryType::Link, Some(target), b"")
    }

    /// Drops every member called `name`.
    pub fn without(mut self, name: &str) -> Aci {
        self.members.retain(|m| m.name != name);
        self
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for member in &self.members {
            let mut header = tar::Header::new_old();
            {
                let bytes = header.as_old_mut();
                bytes.name[..member.name.len()].copy_from_slice(member.name.as_bytes());
                if let Some(link) = &member.link {
                    bytes.linkname[..link.len()].copy_from_slice(link.as_bytes());
                }
            }
            header.set_size(member.content.len() as u64);
            header.set_mode(if member.kind.is_dir() { 0o755 } else { 0o644 });
            header.set_mtime(1_500_000_000);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(member.kind);
            header.set_cksum();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(&member.content);
            let padding = (512 - member.content.len() % 512) % 512;
            out.extend(std::iter::repeat_n(0u8, padding));
        }
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// The compressions an ACI may come in, with what each makes of a tar.
/// Makes the compressed form of a tar.
pub type Compress = fn(&[u8]) -> Vec<u8>;

pub fn compressions() -> Vec<(&'static str, Compress)> {
    vec![
        ("plain", |tar| tar.to_vec()),
        ("gzip", gzip),
        ("bzip2", |tar| {
            let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            encoder.write_all(tar).expect("in memory");
            encoder.finish().expect("in memory")
        }),
        ("xz", |tar| {
            let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
            encoder.write_all(tar).expect("in memory");
            encoder.finish().expect("in memory")
        }),
    ]
}

pub fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(tar).expect("in memory");
    encoder.finish().expect("in memory")
}

/// `sha512-<hex>` of bytes: what the image ID of that tar must be.
pub fn image_id_of(tar: &[u8]) -> String {
    oci_store::Digest::of_bytes(oci_store::traits::Algorithm::Sha512, tar).dashed()
}

pub fn import(appc: &Appc<'_>, bytes: &[u8], what: &str) -> Result<ImportReport, String> {
    appc.import_reader(bytes, what, &ImportOptions::default())
        .context(format!("importing {what}"))
}

pub fn import_latest(appc: &Appc<'_>, bytes: &[u8], what: &str) -> Result<ImportReport, String> {
    appc.import_reader(bytes, what, &ImportOptions { latest: true })
        .context(format!("importing {what} as latest"))
}

/// A small valid image `name` with labels and one file whose content tells images apart.
pub fn simple_image(name: &str, labels: &[(&str, &str)], content: &str) -> Vec<u8> {
    Aci::new(&manifest(name, labels))
        .dir("rootfs/etc")
        .file("rootfs/etc/content", content.as_bytes())
        .tar()
}
