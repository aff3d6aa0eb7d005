//! Bad OCI image layout directories: broken JSON, wrong digests and sizes, bad digest forms,
//! traversal in blob paths and ref names, links and special files out of the layout, size
//! limits, nesting and claimed cycles, and the image-spec's own kinds of invalid document.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{Descriptor, MAX_DOCUMENT_SIZE};
use oci_store::traits::{Algorithm, Digest};
use serde_json::{json, Value};

use super::Hostile;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A valid one-image layout at `dir/layout`; returns it and the manifest's descriptor.
pub fn valid(dir: &Path) -> (PathBuf, Descriptor) {
    let layout = dir.join("layout");
    let manifest = LayoutBuilder::simple_image(&layout, "hostile:1").expect("building");
    (layout, manifest)
}

pub fn digest_of(descriptor: &Descriptor) -> String {
    descriptor.digest().to_string()
}

pub fn blob_file(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("a digest");
    layout.join("blobs").join(algorithm).join(hex)
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("reading")).expect("JSON")
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec(value).unwrap()).expect("writing");
}

/// The manifest of a valid layout, as JSON.
fn manifest_json(layout: &Path, manifest: &Descriptor) -> Value {
    read_json(&blob_file(layout, &digest_of(manifest)))
}

/// The digest of the config or the first layer of a valid layout.
fn child(layout: &Path, manifest: &Descriptor, which: &str) -> (String, u64) {
    let value = manifest_json(layout, manifest);
    let descriptor = match which {
        "config" => &value["config"],
        // The second layer: the first is the same in every simple image, so a store that
        // already holds it never reads the layout's copy.
        _ => &value["layers"][1],
    };
    (
        descriptor["digest"].as_str().unwrap().to_string(),
        descriptor["size"].as_u64().unwrap(),
    )
}

/// A valid layout whose `index.json` is replaced by `bytes`.
fn index_bytes(dir: &Path, bytes: &[u8]) -> PathBuf {
    let (layout, _) = valid(dir);
    std::fs::write(layout.join("index.json"), bytes).expect("writing index.json");
    layout
}

/// A valid layout whose `index.json` entry is edited by `edit`.
fn index_entry(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let (layout, _) = valid(dir);
    let path = layout.join("index.json");
    let mut index = read_json(&path);
    edit(&mut index["manifests"][0]);
    write_json(&path, &index);
    layout
}

/// A layout whose one image has its manifest JSON edited by `edit` (written under its new
/// digest); returns the layout and the manifest's digest.
fn manifest_edit(dir: &Path, edit: impl FnOnce(&mut Value)) -> (PathBuf, String) {
    let (layout, manifest) = valid(dir);
    let mut value = manifest_json(&layout, &manifest);
    edit(&mut value);
    let digest = replace_root(&layout, OCI_MANIFEST, &serde_json::to_vec(&value).unwrap());
    (layout, digest)
}

/// Writes `bytes` as a blob and points the layout's `index.json` entry at it as `media_type`.
fn replace_root(layout: &Path, media_type: &str, bytes: &[u8]) -> String {
    let digest = Digest::of_bytes(Algorithm::Sha256, bytes).to_string();
    std::fs::write(blob_file(layout, &digest), bytes).expect("writing the blob");
    let path = layout.join("index.json");
    let mut index = read_json(&path);
    index["manifests"][0]["digest"] = json!(digest);
    index["manifests"][0]["size"] = json!(bytes.len());
    index["manifests"][0]["mediaType"] = json!(media_type);
    write_json(&path, &index);
    digest
}

/// An index document holding `entries`, named by `index.json` in place of the image.
fn index_edit(dir: &Path, edit: impl FnOnce(&mut Value, &Descriptor)) -> (PathBuf, String) {
    let (layout, manifest) = valid(dir);
    let mut value = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [serde_json::to_value(&manifest).unwrap()],
    });
    edit(&mut value, &manifest);
    let digest = replace_root(&layout, OCI_INDEX, &serde_json::to_vec(&value).unwrap());
    (layout, digest)
}

/// A config edited by `edit`, with the manifest rewritten to name it.
fn config_edit(dir: &Path, edit: impl FnOnce(&mut Value)) -> (PathBuf, String) {
    let (layout, manifest) = valid(dir);
    let (config_digest, _) = child(&layout, &manifest, "config");
    let mut config = read_json(&blob_file(&layout, &config_digest));
    edit(&mut config);
    let bytes = serde_json::to_vec(&config).unwrap();
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes).to_string();
    std::fs::write(blob_file(&layout, &digest), &bytes).unwrap();
    let mut value = manifest_json(&layout, &manifest);
    value["config"]["digest"] = json!(digest);
    value["config"]["size"] = json!(bytes.len());
    replace_root(&layout, OCI_MANIFEST, &serde_json::to_vec(&value).unwrap());
    (layout, digest)
}

fn flip_first_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("reading");
    bytes[0] ^= 0x20;
    std::fs::write(path, bytes).expect("writing");
}

pub fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let name = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0, "mkfifo");
}

pub fn mknod_char(path: &Path) -> bool {
    let _ = std::fs::remove_file(path);
    let name = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: as above; /dev/null's numbers (1, 3).
    unsafe { libc::mknod(name.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 3)) == 0 }
}

fn bind_socket(path: &Path) -> std::os::unix::net::UnixListener {
    let _ = std::fs::remove_file(path);
    std::os::unix::net::UnixListener::bind(path).expect("binding a socket")
}

// ---- malformed and truncated JSON ----

pub fn index_not_json(dir: &Path) -> Hostile {
    let layout = index_bytes(dir, b"{\"schemaVersion\": 2, \"manifests\": [");
    Hostile::oci(&layout, &["index.json", "malformed"])
}

pub fn index_truncated(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let bytes = std::fs::read(layout.join("index.json")).unwrap();
    std::fs::write(layout.join("index.json"), &bytes[..bytes.len() / 2]).unwrap();
    Hostile::oci(&layout, &["index.json", "EOF"])
}

pub fn index_empty_file(dir: &Path) -> Hostile {
    let layout = index_bytes(dir, b"");
    Hostile::oci(&layout, &["index.json", "EOF"])
}

pub fn index_is_an_array(dir: &Path) -> Hostile {
    let layout = index_bytes(dir, b"[]");
    Hostile::oci(&layout, &["index.json", "malformed"])
}

pub fn index_manifests_not_an_array(dir: &Path) -> Hostile {
    let layout = index_bytes(dir, br#"{"schemaVersion":2,"manifests":{"a":1}}"#);
    Hostile::oci(&layout, &["index.json", "malformed"])
}

pub fn index_missing(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    std::fs::remove_file(layout.join("index.json")).unwrap();
    Hostile::oci(&layout, &["index.json"])
}

pub fn index_ref_name_invalid_utf8(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let text = std::fs::read_to_string(layout.join("index.json")).unwrap();
    let bytes = text.replace("hostile:1", "hostile\u{1}").into_bytes();
    let at = bytes.iter().position(|b| *b == 1).unwrap();
    let mut bytes = bytes;
    bytes[at] = 0xff;
    std::fs::write(layout.join("index.json"), bytes).unwrap();
    Hostile::oci(&layout, &["index.json", "malformed"])
}

pub fn oci_layout_missing(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    std::fs::remove_file(layout.join("oci-layout")).unwrap();
    Hostile::oci(&layout, &["not an OCI image layout"])
}

pub fn oci_layout_not_json(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    std::fs::write(layout.join("oci-layout"), b"imageLayoutVersion=1.0.0").unwrap();
    Hostile::oci(&layout, &["oci-layout", "malformed"])
}

pub fn oci_layout_unknown_version(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    Hostile::oci(&layout, &["2.0.0"])
}

pub fn manifest_truncated(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let bytes = std::fs::read(blob_file(&layout, &digest_of(&manifest))).unwrap();
    // Truncated and named by its own digest, so only the JSON is wrong.
    let digest = replace_root(&layout, OCI_MANIFEST, &bytes[..bytes.len() - 7]);
    Hostile::oci(&layout, &[&digest, "not JSON"])
}

pub fn manifest_not_json(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let digest = replace_root(&layout, OCI_MANIFEST, b"\x00\x01 binary, not JSON");
    Hostile::oci(&layout, &[&digest, "not JSON"])
}

pub fn manifest_deeply_nested_json(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let mut value = manifest_json(&layout, &manifest);
    // 100,000 nested arrays in an unknown field: a recursive parser without a depth limit
    // would overflow its stack.
    value["annotations"] = json!({});
    let mut bytes = serde_json::to_vec(&value).unwrap();
    bytes.pop();
    bytes.extend_from_slice(b",\"deep\":");
    bytes.extend(std::iter::repeat_n(b'[', 100_000));
    bytes.extend(std::iter::repeat_n(b']', 100_000));
    bytes.push(b'}');
    let digest = replace_root(&layout, OCI_MANIFEST, &bytes);
    Hostile::oci(&layout, &[&digest, "recursion limit"])
}

pub fn index_deeply_nested_json(dir: &Path) -> Hostile {
    // 100,000 nested arrays where the index's entries belong.
    let mut bytes = b"{\"schemaVersion\":2,\"manifests\":".to_vec();
    bytes.extend(std::iter::repeat_n(b'[', 100_000));
    bytes.extend(std::iter::repeat_n(b']', 100_000));
    bytes.push(b'}');
    let layout = index_bytes(dir, &bytes);
    Hostile::oci(&layout, &["index.json", "malformed"])
}

pub fn config_not_json(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let bytes = b"{\"architecture\": \"amd64\", \"os\": ";
    let digest = Digest::of_bytes(Algorithm::Sha256, bytes).to_string();
    std::fs::write(blob_file(&layout, &digest), bytes).unwrap();
    let mut value = manifest_json(&layout, &manifest);
    value["config"]["digest"] = json!(digest);
    value["config"]["size"] = json!(bytes.len());
    replace_root(&layout, OCI_MANIFEST, &serde_json::to_vec(&value).unwrap());
    Hostile::oci(&layout, &[&digest, "not JSON"])
}

// ---- wrong digest, wrong size ----

pub fn manifest_wrong_digest(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    flip_first_byte(&blob_file(&layout, &digest_of(&manifest)));
    Hostile::oci(&layout, &[&digest_of(&manifest), "hashes to"])
}

pub fn manifest_size_too_big(dir: &Path) -> Hostile {
    let (_, manifest) = valid(dir);
    let layout = index_entry(dir, |entry| entry["size"] = json!(manifest.size() + 1));
    Hostile::oci(&layout, &[&digest_of(&manifest), "size"])
}

pub fn manifest_size_too_small(dir: &Path) -> Hostile {
    let (_, manifest) = valid(dir);
    let layout = index_entry(dir, |entry| entry["size"] = json!(manifest.size() - 1));
    Hostile::oci(&layout, &[&digest_of(&manifest), "size"])
}

pub fn config_wrong_digest(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (config, _) = child(&layout, &manifest, "config");
    flip_first_byte(&blob_file(&layout, &config));
    Hostile::oci(&layout, &[&config])
}

pub fn layer_wrong_digest(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (layer, _) = child(&layout, &manifest, "layer");
    flip_first_byte(&blob_file(&layout, &layer));
    Hostile::oci(&layout, &[&layer])
}

pub fn layer_wrong_size(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (layer, size) = child(&layout, &manifest, "layer");
    let mut value = manifest_json(&layout, &manifest);
    value["layers"][1]["size"] = json!(size + 100);
    replace_root(&layout, OCI_MANIFEST, &serde_json::to_vec(&value).unwrap());
    Hostile::oci(&layout, &[&layer, "size"])
}

pub fn layer_truncated(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (layer, size) = child(&layout, &manifest, "layer");
    let path = blob_file(&layout, &layer);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..size as usize / 2]).unwrap();
    Hostile::oci(&layout, &[&layer])
}

pub fn layer_missing(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (layer, _) = child(&layout, &manifest, "layer");
    std::fs::remove_file(blob_file(&layout, &layer)).unwrap();
    Hostile::oci(&layout, &[&layer, "missing"])
}

pub fn manifest_missing(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    std::fs::remove_file(blob_file(&layout, &digest_of(&manifest))).unwrap();
    Hostile::oci(&layout, &[&digest_of(&manifest), "missing"])
}

pub fn sha512_digest_of_other_content(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let fake = Digest::of_bytes(Algorithm::Sha512, b"something else").to_string();
    let bytes = std::fs::read(blob_file(&layout, &digest_of(&manifest))).unwrap();
    std::fs::create_dir_all(layout.join("blobs/sha512")).unwrap();
    std::fs::write(blob_file(&layout, &fake), &bytes).unwrap();
    let layout = index_entry(dir, |entry| entry["digest"] = json!(fake));
    Hostile::oci(&layout, &[&fake, "hashes to"])
}

// ---- digest forms ----

/// The `index.json` entry's digest set to `digest`: refused naming `index.json` and `problem`.
fn entry_digest(dir: &Path, digest: &str, problem: &str) -> Hostile {
    let digest = digest.to_string();
    let layout = index_entry(dir, |entry| entry["digest"] = json!(digest.clone()));
    Hostile::oci(&layout, &["index.json", problem])
}

pub fn digest_unknown_algorithm(dir: &Path) -> Hostile {
    let digest = "md5:d41d8cd98f00b204e9800998ecf8427e";
    let layout = index_entry(dir, |entry| entry["digest"] = json!(digest));
    Hostile::oci(&layout, &[digest, "unknown digest algorithm"])
}

pub fn digest_uppercase_hex(dir: &Path) -> Hostile {
    let (_, manifest) = valid(&dir.join("probe"));
    let upper = format!("sha256:{}", manifest.digest().digest().to_uppercase());
    entry_digest(dir, &upper, "non-hexadecimal")
}

pub fn digest_hex_too_short(dir: &Path) -> Hostile {
    entry_digest(dir, "sha256:abcdef", "length 6")
}

pub fn digest_hex_too_long(dir: &Path) -> Hostile {
    entry_digest(dir, &format!("sha256:{}", "a".repeat(65)), "length 65")
}

pub fn digest_without_algorithm(dir: &Path) -> Hostile {
    entry_digest(dir, &"a".repeat(64), "missing ':'")
}

pub fn digest_empty(dir: &Path) -> Hostile {
    let layout = index_entry(dir, |entry| entry["digest"] = json!(""));
    Hostile::oci(&layout, &["digest"])
}

pub fn digest_not_hex(dir: &Path) -> Hostile {
    entry_digest(
        dir,
        &format!("sha256:{}", "g".repeat(64)),
        "non-hexadecimal",
    )
}

pub fn digest_traversal(dir: &Path) -> Hostile {
    entry_digest(
        dir,
        "sha256:../../../../etc/passwd",
        "../../../../etc/passwd",
    )
}

pub fn digest_algorithm_traversal(dir: &Path) -> Hostile {
    entry_digest(
        dir,
        &format!("../../sha256:{}", "a".repeat(64)),
        "algorithm",
    )
}

pub fn digest_with_nul(dir: &Path) -> Hostile {
    entry_digest(
        dir,
        &format!("sha256:{}\u{0}", "a".repeat(64)),
        "Invalid encoded value",
    )
}

pub fn layer_digest_traversal(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| {
        m["layers"][0]["digest"] = json!("sha256:../../../../../etc/shadow");
    });
    Hostile::oci(&layout, &[&digest, "../../../../../etc/shadow"])
}

// ---- traversal and links in blob paths ----

/// A file outside the layout that links point at.
fn outside_file(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("outside-secret");
    std::fs::write(&path, bytes).unwrap();
    path
}

pub fn manifest_blob_symlink_out(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let path = blob_file(&layout, &digest_of(&manifest));
    let outside = outside_file(dir, &std::fs::read(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    Hostile::oci(&layout, &[&digest_of(&manifest)[7..]])
}

pub fn layer_blob_symlink_out(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (layer, _) = child(&layout, &manifest, "layer");
    let path = blob_file(&layout, &layer);
    let outside = outside_file(dir, &std::fs::read(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    Hostile::oci(&layout, &[&layer[7..]])
}

pub fn blobs_dir_symlink_out(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let outside = dir.join("outside-blobs");
    std::fs::rename(layout.join("blobs"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, layout.join("blobs")).unwrap();
    Hostile::oci(&layout, &["outside the layout"])
}

pub fn algorithm_dir_symlink_out(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let outside = dir.join("outside-sha256");
    std::fs::rename(layout.join("blobs/sha256"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, layout.join("blobs/sha256")).unwrap();
    Hostile::oci(&layout, &["outside the layout"])
}

pub fn index_symlink_out(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let outside = outside_file(dir, &std::fs::read(layout.join("index.json")).unwrap());
    std::fs::remove_file(layout.join("index.json")).unwrap();
    std::os::unix::fs::symlink(&outside, layout.join("index.json")).unwrap();
    Hostile::oci(&layout, &["index.json"])
}

pub fn oci_layout_symlink_out(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let outside = outside_file(dir, br#"{"imageLayoutVersion":"1.0.0"}"#);
    std::fs::remove_file(layout.join("oci-layout")).unwrap();
    std::os::unix::fs::symlink(&outside, layout.join("oci-layout")).unwrap();
    Hostile::oci(&layout, &["oci-layout"])
}

pub fn manifest_blob_symlink_to_etc_passwd(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let path = blob_file(&layout, &digest_of(&manifest));
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
    Hostile::oci(&layout, &[&digest_of(&manifest)[7..]])
}

pub fn layer_blob_hard_link_out(dir: &Path) -> Hostile {
    // A hard link is a regular file: it is read, and its content, not what it is linked to,
    // decides. Here it links a file outside with other content: refused by digest.
    let (layout, manifest) = valid(dir);
    let (layer, _) = child(&layout, &manifest, "layer");
    let path = blob_file(&layout, &layer);
    let outside = outside_file(dir, b"a secret outside the layout");
    std::fs::remove_file(&path).unwrap();
    std::fs::hard_link(&outside, &path).unwrap();
    Hostile::oci(&layout, &[&layer])
}

// ---- FIFOs, sockets, devices, directories where files belong ----

pub fn index_is_a_fifo(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    mkfifo(&layout.join("index.json"));
    Hostile::oci(&layout, &["index.json", "not a regular file"])
}

pub fn config_is_a_fifo(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (config, _) = child(&layout, &manifest, "config");
    mkfifo(&blob_file(&layout, &config));
    Hostile::oci(&layout, &[&config[7..], "not a regular file"])
}

pub fn layer_is_a_socket(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (layer, _) = child(&layout, &manifest, "layer");
    let socket = bind_socket(&blob_file(&layout, &layer));
    std::mem::forget(socket);
    Hostile::oci(&layout, &[&layer[7..], "not a regular file"])
}

pub fn layer_is_a_char_device(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let (layer, _) = child(&layout, &manifest, "layer");
    let path = blob_file(&layout, &layer);
    if !mknod_char(&path) {
        // Without CAP_MKNOD: a symlink to a device is the same hazard for a reader.
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    }
    Hostile::oci(&layout, &[&layer[7..]])
}

pub fn manifest_is_a_directory(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let path = blob_file(&layout, &digest_of(&manifest));
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    Hostile::oci(&layout, &[&digest_of(&manifest)[7..], "not a regular file"])
}

pub fn index_is_a_directory(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    std::fs::remove_file(layout.join("index.json")).unwrap();
    std::fs::create_dir(layout.join("index.json")).unwrap();
    Hostile::oci(&layout, &["index.json", "not a regular file"])
}

// ---- ref names ----

fn ref_name(dir: &Path, name: &str) -> Hostile {
    let name = name.to_string();
    let layout = index_entry(dir, |entry| {
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": name.clone()});
    });
    Hostile::oci(&layout, &["invalid ref name"])
}

pub fn ref_name_traversal(dir: &Path) -> Hostile {
    ref_name(dir, "../../../etc/passwd")
}

pub fn ref_name_absolute(dir: &Path) -> Hostile {
    ref_name(dir, "/etc/passwd")
}

pub fn ref_name_dot_dot_component(dir: &Path) -> Hostile {
    ref_name(dir, "app/../../escape")
}

pub fn ref_name_empty(dir: &Path) -> Hostile {
    ref_name(dir, "")
}

pub fn ref_name_with_nul(dir: &Path) -> Hostile {
    ref_name(dir, "app\u{0}evil")
}

pub fn ref_name_with_newline(dir: &Path) -> Hostile {
    ref_name(dir, "app\nimported evil")
}

pub fn ref_name_with_space(dir: &Path) -> Hostile {
    ref_name(dir, "app latest")
}

pub fn ref_name_too_long(dir: &Path) -> Hostile {
    ref_name(dir, &"a".repeat(1025))
}

pub fn ref_name_double_slash(dir: &Path) -> Hostile {
    ref_name(dir, "a//b")
}

pub fn ref_name_not_a_string(dir: &Path) -> Hostile {
    let layout = index_entry(dir, |entry| {
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": 7});
    });
    Hostile::oci(&layout, &["index.json", "malformed"])
}

pub fn pre_1_0_ref_file_traversal(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    std::fs::remove_file(layout.join("index.json")).unwrap();
    std::fs::remove_file(layout.join("oci-layout")).unwrap();
    std::fs::create_dir_all(layout.join("refs")).unwrap();
    std::fs::write(
        layout.join("refs").join(".."),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .ok();
    std::fs::write(
        layout.join("refs").join("bad name"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    Hostile::oci(&layout, &["bad name"])
}

pub fn pre_1_0_ref_file_not_json(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    std::fs::remove_file(layout.join("index.json")).unwrap();
    std::fs::remove_file(layout.join("oci-layout")).unwrap();
    std::fs::create_dir_all(layout.join("refs")).unwrap();
    std::fs::write(layout.join("refs/latest"), b"{\"digest\": ").unwrap();
    Hostile::oci(&layout, &["refs/latest", "malformed"])
}

// ---- size limits ----

pub fn index_json_over_the_limit(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let path = layout.join("index.json");
    let mut index = read_json(&path);
    index["annotations"] = json!({"padding": "x".repeat(MAX_DOCUMENT_SIZE as usize)});
    write_json(&path, &index);
    Hostile::oci(&layout, &["index.json", "larger than"])
}

pub fn manifest_over_the_limit(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| {
        m["annotations"] = json!({"padding": "x".repeat(MAX_DOCUMENT_SIZE as usize)});
    });
    Hostile::oci(&layout, &[&digest, "over the"])
}

pub fn index_over_the_limit(dir: &Path) -> Hostile {
    let (layout, digest) = index_edit(dir, |index, _| {
        index["annotations"] = json!({"padding": "x".repeat(MAX_DOCUMENT_SIZE as usize)});
    });
    Hostile::oci(&layout, &[&digest, "over the"])
}

pub fn manifest_size_claims_a_terabyte(dir: &Path) -> Hostile {
    let (_, manifest) = valid(dir);
    let layout = index_entry(dir, |entry| entry["size"] = json!(1u64 << 40));
    Hostile::oci(&layout, &[&digest_of(&manifest), "over the"])
}

pub fn config_over_the_limit(dir: &Path) -> Hostile {
    let (layout, digest) = config_edit(dir, |config| {
        config["padding"] = json!("x".repeat(MAX_DOCUMENT_SIZE as usize));
    });
    Hostile::oci(&layout, &[&digest, "over the"])
}

// ---- nesting and cycles ----

pub fn indexes_nested_too_deep(dir: &Path) -> Hostile {
    let (layout, manifest) = valid(dir);
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let mut top = manifest;
    for _ in 0..10 {
        top = builder
            .json_blob(
                OCI_INDEX,
                &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]}),
            )
            .unwrap();
    }
    let bytes = std::fs::read(blob_file(&layout, &digest_of(&top))).unwrap();
    replace_root(&layout, OCI_INDEX, &bytes);
    Hostile::oci(&layout, &["nested", "over the limit of 8"])
}

pub fn index_lists_itself(dir: &Path) -> Hostile {
    // Content addressing makes a true cycle impossible; a hostile layout can only claim one:
    // the index names a digest whose file lists that same digest.
    let (layout, _) = valid(dir);
    let claimed = Digest::of_bytes(Algorithm::Sha256, b"claimed").to_string();
    let cyclic = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": claimed, "size": 200}
    ]});
    let mut bytes = serde_json::to_vec(&cyclic).unwrap();
    bytes.resize(200, b' ');
    std::fs::write(blob_file(&layout, &claimed), &bytes).unwrap();
    let layout = index_entry(dir, |entry| {
        entry["digest"] = json!(claimed.clone());
        entry["size"] = json!(200);
        entry["mediaType"] = json!(OCI_INDEX);
    });
    Hostile::oci(&layout, &[&claimed, "hashes to"])
}

pub fn two_indexes_list_each_other(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let (a, b) = (
        Digest::of_bytes(Algorithm::Sha256, b"a").to_string(),
        Digest::of_bytes(Algorithm::Sha256, b"b").to_string(),
    );
    for (name, other) in [(&a, &b), (&b, &a)] {
        let mut bytes = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "digest": other, "size": 300}]}))
        .unwrap();
        bytes.resize(300, b' ');
        std::fs::write(blob_file(&layout, name), &bytes).unwrap();
    }
    let layout = index_entry(dir, |entry| {
        entry["digest"] = json!(a.clone());
        entry["size"] = json!(300);
        entry["mediaType"] = json!(OCI_INDEX);
    });
    Hostile::oci(&layout, &[&a, "hashes to"])
}

pub fn subject_cycle(dir: &Path) -> Hostile {
    // A manifest whose `subject` names itself (a claimed digest, as above), listed as the root.
    let (layout, manifest) = valid(dir);
    let value = manifest_json(&layout, &manifest);
    let claimed = Digest::of_bytes(Algorithm::Sha256, b"self").to_string();
    let mut cyclic = value.clone();
    cyclic["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": claimed, "size": 2000});
    let mut bytes = serde_json::to_vec(&cyclic).unwrap();
    bytes.resize(2000, b' ');
    std::fs::write(blob_file(&layout, &claimed), &bytes).unwrap();
    let layout = index_entry(dir, |entry| {
        entry["digest"] = json!(claimed.clone());
        entry["size"] = json!(2000);
    });
    Hostile::oci(&layout, &[&claimed, "hashes to"])
}

pub fn subject_of_a_valid_manifest_is_a_cycle(dir: &Path) -> Hostile {
    // A valid manifest (named by its true digest) whose subject claims a manifest whose
    // subject is the first one's digest: the walk meets the first digest again and the
    // claimed one fails its digest check.
    let claimed = Digest::of_bytes(Algorithm::Sha256, b"claimed subject").to_string();
    let (layout, root) = manifest_edit(dir, |m| {
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": claimed, "size": 900});
    });
    let mut back = read_json(&blob_file(&layout, &root));
    back["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": root, "size": 1});
    let mut bytes = serde_json::to_vec(&back).unwrap();
    bytes.resize(900, b' ');
    std::fs::write(blob_file(&layout, &claimed), &bytes).unwrap();
    Hostile::oci(&layout, &[&claimed, "hashes to"])
}

// ---- the image-spec's own kinds of invalid document (schema/*_test.go) ----

pub fn manifest_schema_version_1(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["schemaVersion"] = json!(1));
    Hostile::oci(&layout, &[&digest, "schemaVersion"])
}

pub fn manifest_schema_version_3(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["schemaVersion"] = json!(3));
    Hostile::oci(&layout, &[&digest, "schemaVersion"])
}

pub fn manifest_schema_version_string(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["schemaVersion"] = json!("2"));
    Hostile::oci(&layout, &[&digest, "schemaVersion"])
}

pub fn manifest_schema_version_missing(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| {
        m.as_object_mut().unwrap().remove("schemaVersion");
    });
    Hostile::oci(&layout, &[&digest, "schemaVersion"])
}

pub fn manifest_config_missing(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| {
        m.as_object_mut().unwrap().remove("config");
    });
    Hostile::oci(&layout, &[&digest, "config"])
}

pub fn manifest_config_media_type_missing(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| {
        m["config"].as_object_mut().unwrap().remove("mediaType");
    });
    Hostile::oci(&layout, &[&digest, "mediaType"])
}

pub fn manifest_layers_not_an_array(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["layers"] = json!({"0": m["layers"][0]}));
    Hostile::oci(&layout, &[&digest, "layers"])
}

pub fn manifest_layers_missing(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| {
        m.as_object_mut().unwrap().remove("layers");
    });
    Hostile::oci(&layout, &[&digest, "layers"])
}

pub fn manifest_layer_size_negative(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["layers"][0]["size"] = json!(-1));
    Hostile::oci(&layout, &[&digest, "size"])
}

pub fn manifest_layer_size_a_string(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["layers"][0]["size"] = json!("1024"));
    Hostile::oci(&layout, &[&digest, "size"])
}

pub fn manifest_layer_size_fractional(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["layers"][0]["size"] = json!(10.5));
    Hostile::oci(&layout, &[&digest, "size"])
}

pub fn manifest_layer_digest_bad_format(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| {
        m["layers"][0]["digest"] =
            json!("sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270-");
    });
    Hostile::oci(&layout, &[&digest, "digest"])
}

pub fn manifest_layer_media_type_invalid(dir: &Path) -> Hostile {
    let (layout, digest) =
        manifest_edit(dir, |m| m["layers"][0]["mediaType"] = json!("application"));
    Hostile::oci(&layout, &[&digest, "mediaType"])
}

pub fn manifest_config_digest_a_number(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["config"]["digest"] = json!(1234));
    Hostile::oci(&layout, &[&digest, "digest"])
}

pub fn manifest_annotation_value_not_a_string(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["annotations"] = json!({"key": 1}));
    Hostile::oci(&layout, &[&digest, "annotations"])
}

pub fn manifest_layer_urls_not_an_array(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["layers"][0]["urls"] = json!("http://x"));
    Hostile::oci(&layout, &[&digest, "urls"])
}

pub fn manifest_media_type_mismatch(dir: &Path) -> Hostile {
    let (layout, digest) = manifest_edit(dir, |m| m["mediaType"] = json!(OCI_INDEX));
    Hostile::oci(&layout, &[&digest, "media type"])
}

pub fn manifest_is_an_array(dir: &Path) -> Hostile {
    let (layout, _) = valid(dir);
    let digest = replace_root(&layout, OCI_MANIFEST, b"[1,2,3]");
    Hostile::oci(&layout, &[&digest, "object"])
}

pub fn index_manifests_missing(dir: &Path) -> Hostile {
    let (layout, digest) = index_edit(dir, |index, _| {
        index.as_object_mut().unwrap().remove("manifests");
    });
    Hostile::oci(&layout, &[&digest, "manifests"])
}

pub fn index_manifests_a_string(dir: &Path) -> Hostile {
    let (layout, digest) = index_edit(dir, |index, _| index["manifests"] = json!("none"));
    Hostile::oci(&layout, &[&digest, "manifests"])
}

pub fn index_platform_architecture_missing(dir: &Path) -> Hostile {
    let (layout, digest) = index_edit(dir, |index, _| {
        index["manifests"][0]["platform"] = json!({"os": "linux"});
    });
    Hostile::oci(&layout, &[&digest, "architecture"])
}

pub fn index_platform_os_a_number(dir: &Path) -> Hostile {
    let (layout, digest) = index_edit(dir, |index, _| {
        index["manifests"][0]["platform"] = json!({"os": 1, "architecture": "amd64"});
    });
    Hostile::oci(&layout, &[&digest, "os"])
}

pub fn index_entry_size_missing(dir: &Path) -> Hostile {
    let (layout, digest) = index_edit(dir, |index, _| {
        index["manifests"][0]
            .as_object_mut()
            .unwrap()
            .remove("size");
    });
    Hostile::oci(&layout, &[&digest, "size"])
}

pub fn index_schema_version_1(dir: &Path) -> Hostile {
    let (layout, digest) = index_edit(dir, |index, _| index["schemaVersion"] = json!(1));
    Hostile::oci(&layout, &[&digest, "schemaVersion"])
}

pub fn config_os_a_number(dir: &Path) -> Hostile {
    let (layout, digest) = config_edit(dir, |c| c["os"] = json!(123));
    Hostile::oci(&layout, &[&digest, "os"])
}

pub fn config_architecture_missing(dir: &Path) -> Hostile {
    let (layout, digest) = config_edit(dir, |c| {
        c.as_object_mut().unwrap().remove("architecture");
    });
    Hostile::oci(&layout, &[&digest, "architecture"])
}

pub fn config_env_entry_without_equals(dir: &Path) -> Hostile {
    let (layout, digest) = config_edit(dir, |c| c["config"]["Env"] = json!(["PATH"]));
    Hostile::oci(&layout, &[&digest, "NAME=VALUE"])
}

pub fn config_rootfs_type_wrong(dir: &Path) -> Hostile {
    let (layout, digest) = config_edit(dir, |c| c["rootfs"]["type"] = json!("overlay"));
    Hostile::oci(&layout, &[&digest, "rootfs"])
}

pub fn config_rootfs_missing(dir: &Path) -> Hostile {
    let (layout, digest) = config_edit(dir, |c| {
        c.as_object_mut().unwrap().remove("rootfs");
    });
    Hostile::oci(&layout, &[&digest, "rootfs"])
}
