//! Bad ACIs: broken archives, escapes through paths and links, special entries, and manifests
//! that break the App Container spec (each names the rule it breaks).

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::{Hostile, RawTar};

pub fn manifest(name: &str) -> Value {
    json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": name,
        "labels": [
            {"name": "version", "value": "1.0.0"},
            {"name": "os", "value": "linux"},
            {"name": "arch", "value": "amd64"}
        ],
        "app": {"exec": ["/bin/app"], "user": "0", "group": "0"}
    })
}

/// `manifest` (given bytes), `rootfs/`, `rootfs/bin/`, `rootfs/bin/app`, then `extra`.
pub fn aci_with(manifest_bytes: &[u8], extra: impl FnOnce(&mut RawTar)) -> Vec<u8> {
    let mut tar = RawTar::new();
    tar.file("manifest", manifest_bytes);
    tar.member("rootfs/", tar::EntryType::Directory, None, b"");
    tar.member("rootfs/bin/", tar::EntryType::Directory, None, b"");
    tar.file("rootfs/bin/app", b"#!/bin/sh\n");
    extra(&mut tar);
    tar.finish()
}

pub fn valid_aci(name: &str) -> Vec<u8> {
    aci_with(&serde_json::to_vec(&manifest(name)).unwrap(), |_| {})
}

fn write(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join("image.aci");
    std::fs::write(&path, bytes).expect("writing the ACI");
    path
}

/// A valid image with extra members.
fn extra(dir: &Path, rule: &str, add: impl FnOnce(&mut RawTar)) -> Hostile {
    let bytes = aci_with(
        &serde_json::to_vec(&manifest("example.com/hostile")).unwrap(),
        add,
    );
    Hostile::aci(write(dir, &bytes), &[rule])
}

/// A valid image whose manifest is changed by `change`.
fn manifest_change(dir: &Path, rule: &str, change: impl FnOnce(&mut Value)) -> Hostile {
    let mut value = manifest("example.com/hostile");
    change(&mut value);
    let bytes = aci_with(&serde_json::to_vec(&value).unwrap(), |_| {});
    Hostile::aci(write(dir, &bytes), &[rule])
}

fn manifest_bytes(dir: &Path, rule: &str, bytes: &[u8]) -> Hostile {
    Hostile::aci(write(dir, &aci_with(bytes, |_| {})), &[rule])
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

// ---- broken archives ----

pub fn not_an_archive(dir: &Path) -> Hostile {
    Hostile::aci(
        write(dir, &b"not an archive at all ".repeat(50)),
        &["archive.corrupt"],
    )
}

pub fn empty_file(dir: &Path) -> Hostile {
    Hostile::aci(write(dir, b""), &["archive.manifest-missing"])
}

pub fn truncated_tar(dir: &Path) -> Hostile {
    let bytes = valid_aci("example.com/hostile");
    Hostile::aci(write(dir, &bytes[..600]), &["archive"])
}

pub fn truncated_gzip(dir: &Path) -> Hostile {
    let bytes = gzip(&valid_aci("example.com/hostile"));
    Hostile::aci(write(dir, &bytes[..bytes.len() / 2]), &["archive.corrupt"])
}

pub fn gzip_bad_checksum(dir: &Path) -> Hostile {
    let mut bytes = gzip(&valid_aci("example.com/hostile"));
    let crc = bytes.len() - 8;
    bytes[crc] ^= 0xff;
    Hostile::aci(write(dir, &bytes), &["archive.corrupt"])
}

pub fn truncated_xz(dir: &Path) -> Hostile {
    let tar = valid_aci("example.com/hostile");
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 6);
    encoder.write_all(&tar).unwrap();
    let bytes = encoder.finish().unwrap();
    Hostile::aci(write(dir, &bytes[..bytes.len() - 20]), &["archive.corrupt"])
}

pub fn truncated_bzip2(dir: &Path) -> Hostile {
    let tar = valid_aci("example.com/hostile");
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    encoder.write_all(&tar).unwrap();
    let bytes = encoder.finish().unwrap();
    Hostile::aci(write(dir, &bytes[..bytes.len() - 10]), &["archive.corrupt"])
}

pub fn bad_header_checksum(dir: &Path) -> Hostile {
    let mut bytes = valid_aci("example.com/hostile");
    bytes[148..156].copy_from_slice(b"0000000\0");
    Hostile::aci(write(dir, &bytes), &["archive"])
}

pub fn aci_is_a_fifo(dir: &Path) -> Hostile {
    let path = dir.join("image.aci");
    super::layouts::mkfifo(&path);
    Hostile::aci(&path, &["archive.regular-file"])
}

pub fn aci_is_a_directory(dir: &Path) -> Hostile {
    let path = dir.join("image.aci");
    std::fs::create_dir(&path).unwrap();
    Hostile::aci(&path, &["archive.regular-file"])
}

// ---- layout of the archive ----

pub fn manifest_missing(dir: &Path) -> Hostile {
    let mut tar = RawTar::new();
    tar.member("rootfs/", tar::EntryType::Directory, None, b"");
    Hostile::aci(write(dir, &tar.finish()), &["archive.manifest-missing"])
}

pub fn rootfs_missing(dir: &Path) -> Hostile {
    let mut tar = RawTar::new();
    tar.file(
        "manifest",
        &serde_json::to_vec(&manifest("example.com/hostile")).unwrap(),
    );
    Hostile::aci(write(dir, &tar.finish()), &["archive.rootfs-missing"])
}

pub fn rootfs_is_a_file(dir: &Path) -> Hostile {
    let mut tar = RawTar::new();
    tar.file(
        "manifest",
        &serde_json::to_vec(&manifest("example.com/hostile")).unwrap(),
    );
    tar.file("rootfs", b"not a directory");
    Hostile::aci(write(dir, &tar.finish()), &["archive.rootfs-directory"])
}

pub fn extra_top_level_file(dir: &Path) -> Hostile {
    extra(dir, "archive.top-level", |tar| tar.file("README", b"x"))
}

pub fn manifest_twice(dir: &Path) -> Hostile {
    extra(dir, "archive.duplicate-entry", |tar| {
        tar.file("manifest", b"{}");
    })
}

pub fn manifest_is_a_symlink(dir: &Path) -> Hostile {
    let mut tar = RawTar::new();
    tar.member(
        "manifest",
        tar::EntryType::Symlink,
        Some("/etc/passwd"),
        b"",
    );
    tar.member("rootfs/", tar::EntryType::Directory, None, b"");
    Hostile::aci(write(dir, &tar.finish()), &["archive.manifest-regular"])
}

pub fn manifest_over_the_limit(dir: &Path) -> Hostile {
    let mut value = manifest("example.com/hostile");
    value["annotations"] = json!([{"name": "padding", "value": "x".repeat(2 << 20)}]);
    manifest_bytes(
        dir,
        "archive.manifest-size",
        &serde_json::to_vec(&value).unwrap(),
    )
}

// ---- paths and links ----

pub fn absolute_member(dir: &Path) -> Hostile {
    extra(dir, "archive.path", |tar| tar.file("/etc/evil", b"x"))
}

pub fn dot_dot_member(dir: &Path) -> Hostile {
    extra(dir, "archive.path", |tar| {
        tar.file("rootfs/../../evil", b"x");
    })
}

pub fn non_utf8_member(dir: &Path) -> Hostile {
    let mut bytes = aci_with(
        &serde_json::to_vec(&manifest("example.com/hostile")).unwrap(),
        |tar| tar.file("rootfs/bin/aXb", b"x"),
    );
    // The fourth header's name: replace `X` by an invalid UTF-8 byte and fix the checksum.
    let header = bytes
        .chunks(512)
        .position(|block| block.starts_with(b"rootfs/bin/aXb"))
        .unwrap()
        * 512;
    bytes[header + 12] = 0xff;
    bytes[header + 148..header + 156].fill(b' ');
    let sum: u32 = bytes[header..header + 512]
        .iter()
        .map(|b| u32::from(*b))
        .sum();
    bytes[header + 148..header + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Hostile::aci(write(dir, &bytes), &["archive.path", "UTF-8"])
}

pub fn symlink_escapes_rootfs(dir: &Path) -> Hostile {
    extra(dir, "archive.symlink-escape", |tar| {
        tar.member(
            "rootfs/escape",
            tar::EntryType::Symlink,
            Some("../../../etc"),
            b"",
        );
    })
}

pub fn absolute_symlink_then_write_through_it(dir: &Path) -> Hostile {
    extra(dir, "archive.through-symlink", |tar| {
        tar.member("rootfs/etc", tar::EntryType::Symlink, Some("bin"), b"");
        tar.file("rootfs/etc/passwd", b"root::0:0::/:/bin/sh\n");
    })
}

pub fn hard_link_out_of_rootfs(dir: &Path) -> Hostile {
    extra(dir, "archive.path", |tar| {
        tar.member(
            "rootfs/passwd",
            tar::EntryType::Link,
            Some("../../etc/passwd"),
            b"",
        );
    })
}

pub fn hard_link_to_the_manifest(dir: &Path) -> Hostile {
    extra(dir, "archive.hardlink-manifest", |tar| {
        tar.member("rootfs/m", tar::EntryType::Link, Some("manifest"), b"");
    })
}

pub fn hard_link_to_a_missing_file(dir: &Path) -> Hostile {
    extra(dir, "archive.hardlink-target", |tar| {
        tar.member(
            "rootfs/l",
            tar::EntryType::Link,
            Some("rootfs/nothing"),
            b"",
        );
    })
}

pub fn manifest_is_a_char_device(dir: &Path) -> Hostile {
    // Devices under rootfs/ are image content (as actool allows); in the manifest's or the
    // rootfs's place they are refused. Made with tar headers: no privilege needed.
    let mut tar = RawTar::new();
    tar.member("manifest", tar::EntryType::Char, None, b"");
    tar.member("rootfs/", tar::EntryType::Directory, None, b"");
    Hostile::aci(write(dir, &tar.finish()), &["archive.manifest-regular"])
}

pub fn rootfs_is_a_block_device(dir: &Path) -> Hostile {
    let mut tar = RawTar::new();
    tar.file(
        "manifest",
        &serde_json::to_vec(&manifest("example.com/hostile")).unwrap(),
    );
    tar.member("rootfs", tar::EntryType::Block, None, b"");
    Hostile::aci(write(dir, &tar.finish()), &["archive.rootfs-directory"])
}

pub fn manifest_is_a_fifo(dir: &Path) -> Hostile {
    let mut tar = RawTar::new();
    tar.member("manifest", tar::EntryType::Fifo, None, b"");
    tar.member("rootfs/", tar::EntryType::Directory, None, b"");
    Hostile::aci(write(dir, &tar.finish()), &["archive.manifest-regular"])
}

pub fn unknown_entry_type(dir: &Path) -> Hostile {
    extra(dir, "archive.entry-type", |tar| {
        tar.member("rootfs/odd", tar::EntryType::new(b'Z'), None, b"");
    })
}

pub fn duplicate_rootfs_file(dir: &Path) -> Hostile {
    extra(dir, "archive.duplicate-entry", |tar| {
        tar.file("rootfs/bin/app", b"again");
    })
}

// ---- manifests ----

pub fn manifest_not_json(dir: &Path) -> Hostile {
    manifest_bytes(dir, "manifest.json", b"{\"acKind\": ")
}

pub fn manifest_an_array(dir: &Path) -> Hostile {
    manifest_bytes(dir, "manifest.json", b"[]")
}

pub fn manifest_deeply_nested(dir: &Path) -> Hostile {
    let mut bytes = b"{\"acKind\":\"ImageManifest\",\"deep\":".to_vec();
    bytes.extend(std::iter::repeat_n(b'[', 100_000));
    bytes.extend(std::iter::repeat_n(b']', 100_000));
    bytes.push(b'}');
    manifest_bytes(dir, "manifest.json", &bytes).naming("recursion limit")
}

pub fn ac_kind_wrong(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.acKind", |m| {
        m["acKind"] = json!("PodManifest");
    })
}

pub fn ac_version_not_semver(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.acVersion", |m| {
        m["acVersion"] = json!("latest");
    })
}

pub fn name_missing(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.name", |m| {
        m.as_object_mut().unwrap().remove("name");
    })
}

pub fn name_uppercase(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.name", |m| {
        m["name"] = json!("Example.com/App");
    })
}

pub fn name_traversal(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.name", |m| {
        m["name"] = json!("../../etc/passwd");
    })
}

pub fn name_empty(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.name", |m| m["name"] = json!(""))
}

pub fn name_a_number(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.schema", |m| m["name"] = json!(42))
}

pub fn label_name_invalid(dir: &Path) -> Hostile {
    manifest_change(dir, "labels.name", |m| {
        m["labels"] = json!([{"name": "Bad Label", "value": "x"}]);
    })
}

pub fn label_called_name(dir: &Path) -> Hostile {
    manifest_change(dir, "labels.reserved", |m| {
        m["labels"] = json!([{"name": "name", "value": "x"}]);
    })
}

pub fn label_twice(dir: &Path) -> Hostile {
    manifest_change(dir, "labels.unique", |m| {
        m["labels"] = json!([{"name": "version", "value": "1"}, {"name": "version", "value": "2"}]);
    })
}

pub fn label_os_unknown(dir: &Path) -> Hostile {
    manifest_change(dir, "labels.os", |m| {
        m["labels"] = json!([{"name": "os", "value": "plan9"}]);
    })
}

pub fn label_arch_wrong_for_os(dir: &Path) -> Hostile {
    manifest_change(dir, "labels.arch", |m| {
        m["labels"] = json!([{"name": "os", "value": "linux"}, {"name": "arch", "value": "sparc"}]);
    })
}

pub fn labels_not_an_array(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.schema", |m| {
        m["labels"] = json!({"version": "1"});
    })
}

pub fn annotation_created_not_a_date(dir: &Path) -> Hostile {
    manifest_change(dir, "annotations.created", |m| {
        m["annotations"] = json!([{"name": "created", "value": "yesterday"}]);
    })
}

pub fn annotation_homepage_not_a_url(dir: &Path) -> Hostile {
    manifest_change(dir, "annotations.url", |m| {
        m["annotations"] = json!([{"name": "homepage", "value": "javascript:alert(1)"}]);
    })
}

pub fn app_exec_relative(dir: &Path) -> Hostile {
    manifest_change(dir, "app.exec", |m| m["app"]["exec"] = json!(["bin/app"]))
}

pub fn app_user_missing(dir: &Path) -> Hostile {
    manifest_change(dir, "app.user", |m| {
        m["app"].as_object_mut().unwrap().remove("user");
    })
}

pub fn app_working_directory_relative(dir: &Path) -> Hostile {
    manifest_change(dir, "app.workingDirectory", |m| {
        m["app"]["workingDirectory"] = json!("tmp");
    })
}

pub fn app_port_out_of_range(dir: &Path) -> Hostile {
    manifest_change(dir, "app.ports", |m| {
        m["app"]["ports"] = json!([{"name": "http", "protocol": "tcp", "port": 70000}]);
    })
}

pub fn app_mount_point_relative(dir: &Path) -> Hostile {
    manifest_change(dir, "app.mountPoints", |m| {
        m["app"]["mountPoints"] = json!([{"name": "data", "path": "data"}]);
    })
}

pub fn app_isolator_unknown(dir: &Path) -> Hostile {
    manifest_change(dir, "app.isolators", |m| {
        m["app"]["isolators"] = json!([{"name": "os/linux/made-up", "value": {}}]);
    })
}

pub fn dependency_image_id_bad(dir: &Path) -> Hostile {
    manifest_change(dir, "dependencies.imageID", |m| {
        m["dependencies"] = json!([{"imageName": "example.com/base", "imageID": "sha512-xyz"}]);
    })
}

pub fn dependency_name_invalid(dir: &Path) -> Hostile {
    manifest_change(dir, "dependencies.imageName", |m| {
        m["dependencies"] = json!([{"imageName": "../base"}]);
    })
}

pub fn path_whitelist_relative(dir: &Path) -> Hostile {
    manifest_change(dir, "manifest.pathWhitelist", |m| {
        m["pathWhitelist"] = json!(["etc/../../x"]);
    })
}
