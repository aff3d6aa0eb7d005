//! Docker archives (issue 21): Docker 25 `docker save` archives (an OCI layout plus the legacy
//! entries, `<id>/layer.tar` symbolic links included) and legacy ones (`manifest.json`,
//! `<hex>.json`, `<id>/layer.tar`), built here byte by byte as those tools write them (no
//! Docker daemon is needed); plain, gzip and zstd; from files and from standard input, members
//! in any order; several images at once, all or nothing; `export --format docker-archive`
//! read back; hostile variants refused with the store's full dump byte-identical.

mod cli_support;
mod oci_archive_support;

use std::io::Write;
use std::path::Path;

use cli_support::{sha256, TestStore};
use oci_archive_support::{tree, RawTar};
use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::oci::{ImportOptions, OciError, OciStore};
use oci_store::Store;
use serde_json::{json, Value};
use tar::EntryType;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn hex(digest: &str) -> &str {
    &digest[7..]
}

/// An uncompressed layer tar holding `files`.
fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, path, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// One image: its config and its layers as the archive stores them (plain or gzip), with the
/// diff IDs of their uncompressed content.
#[derive(Clone)]
struct Image {
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
    tags: Vec<String>,
}

impl Image {
    fn new(seed: &str, layer_count: usize, tags: &[&str]) -> Image {
        Image::with_layers(seed, layer_count, tags, |layer| layer)
    }

    fn with_layers(
        seed: &str,
        layer_count: usize,
        tags: &[&str],
        store_as: impl Fn(Vec<u8>) -> Vec<u8>,
    ) -> Image {
        let plain: Vec<Vec<u8>> = (0..layer_count)
            .map(|i| {
                let content = format!("{seed} layer {i}\n");
                layer_tar(&[(&format!("etc/{seed}-{i}"), content.as_bytes())])
            })
            .collect();
        let diff_ids: Vec<String> = plain.iter().map(|layer| sha256(layer)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [format!("SEED={seed}")]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        Image {
            config,
            layers: plain.into_iter().map(store_as).collect(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn config_digest(&self) -> String {
        sha256(&self.config)
    }

    /// The OCI manifest Docker 25 writes for it (uncompressed layers).
    fn oci_manifest(&self) -> Vec<u8> {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|layer| {
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": sha256(layer), "size": layer.len()})
            })
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.config_digest(), "size": self.config.len()},
            "layers": layers,
        }))
        .unwrap()
    }
}

/// A member to write: name, kind, link target, content.
type Member = (String, EntryType, Option<String>, Vec<u8>);

fn file(name: impl Into<String>, data: &[u8]) -> Member {
    (name.into(), EntryType::Regular, None, data.to_vec())
}

fn link(name: impl Into<String>, target: impl Into<String>) -> Member {
    (
        name.into(),
        EntryType::Symlink,
        Some(target.into()),
        Vec::new(),
    )
}

fn write_tar(members: &[Member]) -> Vec<u8> {
    let mut tar = RawTar::new();
    for (name, kind, target, data) in members {
        tar.member(name, *kind, target.as_deref(), data);
    }
    tar.finish()
}

/// A legacy layer directory's id: any 64 hex digits, as Docker's chain IDs are.
fn layer_id(image: &Image, position: usize) -> String {
    hex(&sha256(
        format!("{}-{position}", image.config_digest()).as_bytes(),
    ))
    .to_string()
}

/// What Docker 25 `docker save` writes: the OCI layout, `manifest.json` naming `blobs/`, and
/// the legacy `<id>/layer.tar` as symbolic links into `blobs/`.
fn docker25_members(images: &[Image]) -> Vec<Member> {
    let mut members = vec![file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)];
    let mut index_entries = Vec::new();
    let mut manifest_json = Vec::new();
    for image in images {
        let manifest = image.oci_manifest();
        let mut annotations = serde_json::Map::new();
        if let Some(tag) = image.tags.first() {
            annotations.insert(
                "io.containerd.image.name".into(),
                json!(format!("docker.io/library/{tag}")),
            );
            annotations.insert(
                "org.opencontainers.image.ref.name".into(),
                json!(tag.split(':').nth(1).unwrap()),
            );
        }
        index_entries.push(
            json!({"mediaType": OCI_MANIFEST, "digest": sha256(&manifest),
                                  "size": manifest.len(), "annotations": annotations}),
        );
        members.push(file(
            format!("blobs/sha256/{}", hex(&sha256(&manifest))),
            &manifest,
        ));
        members.push(file(
            format!("blobs/sha256/{}", hex(&image.config_digest())),
            &image.config,
        ));
        let mut layer_names = Vec::new();
        for (position, layer) in image.layers.iter().enumerate() {
            let blob = format!("blobs/sha256/{}", hex(&sha256(layer)));
            members.push(file(blob.clone(), layer));
            let id = layer_id(image, position);
            members.push((format!("{id}/"), EntryType::Directory, None, Vec::new()));
            members.push(file(format!("{id}/VERSION"), b"1.0"));
            members.push(file(format!("{id}/json"), br#"{"id":"x"}"#));
            members.push(link(format!("{id}/layer.tar"), format!("../{blob}")));
            layer_names.push(blob);
        }
        manifest_json.push(json!({
            "Config": format!("blobs/sha256/{}", hex(&image.config_digest())),
            "RepoTags": image.tags,
            "Layers": layer_names,
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": index_entries});
    members.push(file("index.json", &serde_json::to_vec(&index).unwrap()));
    members.push(file(
        "manifest.json",
        &serde_json::to_vec(&manifest_json).unwrap(),
    ));
    members.push(file("repositories", b"{}"));
    members
}

/// What Docker before 25 (and `podman save`) writes: `<config hex>.json`, `<id>/layer.tar`
/// as regular files, `manifest.json` naming them.
fn legacy_members(images: &[Image]) -> Vec<Member> {
    let mut members = Vec::new();
    let mut manifest_json = Vec::new();
    for image in images {
        let config_name = format!("{}.json", hex(&image.config_digest()));
        members.push(file(config_name.clone(), &image.config));
        let mut layer_names = Vec::new();
        for (position, layer) in image.layers.iter().enumerate() {
            let id = layer_id(image, position);
            members.push(file(format!("{id}/VERSION"), b"1.0"));
            members.push(file(format!("{id}/json"), br#"{"id":"x"}"#));
            members.push(file(format!("{id}/layer.tar"), layer));
            layer_names.push(format!("{id}/layer.tar"));
        }
        manifest_json.push(json!({
            "Config": config_name,
            "RepoTags": if image.tags.is_empty() { Value::Null } else { json!(image.tags) },
            "Layers": layer_names,
        }));
    }
    members.push(file(
        "manifest.json",
        &serde_json::to_vec(&manifest_json).unwrap(),
    ));
    members
}

fn with_manifest_json(members: &mut [Member], manifest: Value) {
    let entry = members.iter_mut().find(|m| m.0 == "manifest.json").unwrap();
    entry.3 = serde_json::to_vec(&manifest).unwrap();
}

fn manifest_json_of(members: &[Member]) -> Value {
    let entry = members.iter().find(|m| m.0 == "manifest.json").unwrap();
    serde_json::from_slice(&entry.3).unwrap()
}

fn new_store(dir: &Path) -> Store {
    open_store(&dir.join("store"), &BackendChoice::default()).unwrap()
}

fn import_bytes(
    store: &Store,
    dir: &Path,
    bytes: &[u8],
) -> Result<Vec<(String, String)>, OciError> {
    let path = dir.join("archive.tar");
    std::fs::write(&path, bytes).unwrap();
    OciStore::new(store)
        .import_layout(&path, &ImportOptions::default())
        .map(|report| {
            report
                .refs
                .into_iter()
                .map(|r| (r.name, r.digest.to_string()))
                .collect()
        })
}

fn assert_verified(store: &Store, name: &str) {
    let report = OciStore::new(store).check(name, true).unwrap();
    assert!(
        report.missing.is_empty() && report.corrupt.is_empty(),
        "{name}: {report:?}"
    );
}

#[test]
fn a_docker_25_archive_imports_its_oci_layout_named_by_repo_tags() {
    let temp = tempfile::tempdir().unwrap();
    let store = new_store(temp.path());
    let image = Image::new("alpha", 2, &["alpha:1.0", "alpha:latest"]);
    let manifest_digest = sha256(&image.oci_manifest());
    let mut members = docker25_members(std::slice::from_ref(&image));
    std::fs::write(temp.path().join("archive.tar"), b"").unwrap();
    let before = tree(temp.path(), &temp.path().join("store"));
    let refs = import_bytes(&store, temp.path(), &write_tar(&members)).unwrap();
    assert_eq!(
        refs,
        vec![
            (
                "docker.io/library/alpha:1.0".to_string(),
                manifest_digest.clone()
            ),
            (
                "docker.io/library/alpha:latest".to_string(),
                manifest_digest.clone()
            ),
        ]
    );
    assert_verified(&store, "docker.io/library/alpha:1.0");
    // The links were read as names: nothing was created beside the store.
    let after = tree(temp.path(), &temp.path().join("store"));
    assert_eq!(before, after);

    // Members in the opposite order (manifest.json and index.json first, blobs last).
    let other = new_store(&temp.path().join("reversed"));
    members.reverse();
    let refs = import_bytes(&other, &temp.path().join("reversed"), &write_tar(&members)).unwrap();
    assert_eq!(refs[0].1, manifest_digest);
}

#[test]
fn a_legacy_archive_is_converted_with_its_layers_checked_against_the_diff_ids() {
    let temp = tempfile::tempdir().unwrap();
    let store = new_store(temp.path());
    let plain = Image::new("beta", 3, &["example.com/team/beta:2"]);
    let refs = import_bytes(
        &store,
        temp.path(),
        &write_tar(&legacy_members(std::slice::from_ref(&plain))),
    )
    .unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].0, "example.com/team/beta:2");
    assert_verified(&store, "example.com/team/beta:2");
    let manifest: Value = serde_json::from_slice(
        &store
            .read_to_vec(&refs[0].1.parse().unwrap(), 1 << 20)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(manifest["config"]["digest"], plain.config_digest().as_str());
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = plain.layers.iter().map(|l| sha256(l)).collect();
    assert_eq!(layers, expected);

    // Gzip layers keep their compressed digests and get the gzip media type; zstd ones make
    // an OCI manifest. Both are checked against the uncompressed diff IDs.
    for (seed, compress, layer_type) in [
        (
            "gamma",
            gzip as fn(&[u8]) -> Vec<u8>,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        (
            "delta",
            zstd as fn(&[u8]) -> Vec<u8>,
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    ] {
        let tag = format!("{seed}:1");
        let image = Image::with_layers(seed, 2, &[tag.as_str()], |layer| compress(&layer));
        let refs =
            import_bytes(&store, temp.path(), &write_tar(&legacy_members(&[image]))).unwrap();
        let name = format!("docker.io/library/{tag}");
        assert_eq!(refs[0].0, name);
        assert_verified(&store, &name);
        let manifest: Value = serde_json::from_slice(
            &store
                .read_to_vec(&refs[0].1.parse().unwrap(), 1 << 20)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["layers"][0]["mediaType"], layer_type, "{seed}");
    }
}

#[test]
fn whole_archives_compressed_with_gzip_or_zstd_import_from_files_and_stdin() {
    let image = Image::new("epsilon", 2, &["epsilon:3"]);
    let digest = sha256(&image.oci_manifest());
    let docker25 = write_tar(&docker25_members(std::slice::from_ref(&image)));
    let legacy = write_tar(&legacy_members(std::slice::from_ref(&image)));
    for (what, bytes) in [
        ("docker25.tar.gz", gzip(&docker25)),
        ("docker25.tar.zst", zstd(&docker25)),
        ("legacy.tar.gz", gzip(&legacy)),
        ("legacy.tar.zst", zstd(&legacy)),
        ("legacy.tar", legacy.clone()),
    ] {
        let store = TestStore::new();
        let path = store.scratch(what);
        std::fs::write(&path, &bytes).unwrap();
        let from_file = store.json(&["import", path.to_str().unwrap()]);
        assert_eq!(
            from_file["refs"][0]["name"], "docker.io/library/epsilon:3",
            "{what}"
        );
        if what.starts_with("docker25") {
            assert_eq!(from_file["refs"][0]["digest"], digest.as_str(), "{what}");
        }
        let piped = TestStore::new();
        let output = piped.run(&["--json", "import", "--dref", "piped:1", "-"], &bytes);
        assert!(
            output.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["refs"][0]["name"], "piped:1", "{what}");
        assert_eq!(
            report["refs"][0]["digest"], from_file["refs"][0]["digest"],
            "{what}"
        );
    }
}

#[test]
fn several_images_import_together_or_not_at_all() {
    let temp = tempfile::tempdir().unwrap();
    let store = new_store(temp.path());
    let one = Image::new("one", 2, &["one:1", "one:latest"]);
    let two = Image::new("two", 1, &["quay.io/org/two:2"]);
    let untagged = Image::new("three", 1, &[]);
    let members = legacy_members(&[one.clone(), two.clone(), untagged]);
    let refs = import_bytes(&store, temp.path(), &write_tar(&members)).unwrap();
    let names: Vec<&str> = refs.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "docker.io/library/one:1",
            "docker.io/library/one:latest",
            "quay.io/org/two:2"
        ]
    );
    // One of them picked by its name as the archive gives it, and renamed.
    let picked = new_store(&temp.path().join("picked"));
    let path = temp.path().join("archive.tar");
    let options = ImportOptions {
        sref: Some("one:1".to_string()),
        dref: Some("mine:1".to_string()),
        ..ImportOptions::default()
    };
    let report = OciStore::new(&picked)
        .import_layout(&path, &options)
        .unwrap();
    assert_eq!(report.refs.len(), 1);
    assert_eq!(report.refs[0].name, "mine:1");

    // The second image's layer does not match its diff ID: neither image is imported.
    let fresh = new_store(&temp.path().join("fresh"));
    let dump = fresh.dump().unwrap();
    let mut broken = two.clone();
    broken.layers[0] = layer_tar(&[("etc/other", b"not the layer the config lists\n")]);
    let members = legacy_members(&[one, broken]);
    let error = import_bytes(&fresh, &temp.path().join("fresh"), &write_tar(&members)).unwrap_err();
    assert!(
        matches!(error, OciError::LayerDiffIdMismatch { .. }),
        "{error}"
    );
    assert_eq!(fresh.dump().unwrap(), dump);
}

/// Each hostile variant: refused by the library with an error naming what it must, and the
/// store (which holds an image already) byte-identical afterwards.
fn assert_refused(members: Vec<Member>, names: &[&str], check: impl Fn(&OciError) -> bool) {
    let temp = tempfile::tempdir().unwrap();
    let store = new_store(&temp.path().join("deep/er"));
    import_bytes(
        &store,
        temp.path(),
        &write_tar(&legacy_members(&[Image::new("kept", 1, &["kept:1"])])),
    )
    .unwrap();
    let dump = store.dump().unwrap();
    let before = tree(temp.path(), &temp.path().join("deep/er/store"));
    let error = import_bytes(&store, temp.path(), &write_tar(&members)).unwrap_err();
    let message = error.to_string();
    assert!(check(&error), "unexpected error: {message}");
    for name in names {
        assert!(message.contains(name), "{message:?} does not name {name:?}");
    }
    assert_eq!(store.dump().unwrap(), dump, "{message}");
    assert_eq!(
        tree(temp.path(), &temp.path().join("deep/er/store")),
        before
    );
}

#[test]
fn a_symlink_member_pointing_outside_is_refused() {
    let image = Image::new("evil", 1, &["evil:1"]);
    for target in ["../../../../etc/passwd", "/etc/passwd", "../.."] {
        let mut members = docker25_members(std::slice::from_ref(&image));
        let id = layer_id(&image, 0);
        members.retain(|m| m.0 != format!("{id}/layer.tar"));
        members.push(link(format!("{id}/layer.tar"), target));
        assert_refused(members, &["layer.tar", "outside the archive"], |e| {
            matches!(e, OciError::UnsafeArchiveEntry { .. })
        });
    }
    // A link where the layout belongs is never read, whatever it points to.
    let mut members = docker25_members(std::slice::from_ref(&image));
    members.retain(|m| m.0 != "index.json");
    members.push(link("index.json", "manifest.json"));
    assert_refused(members, &["index.json", "symbolic links"], |e| {
        matches!(e, OciError::UnsafeArchiveEntry { .. })
    });
    // A legacy layer that is a link to a member the archive lacks, or to itself.
    let mut members = legacy_members(std::slice::from_ref(&image));
    let id = layer_id(&image, 0);
    members.retain(|m| m.0 != format!("{id}/layer.tar"));
    members.push(link(format!("{id}/layer.tar"), "../absent.tar"));
    assert_refused(
        members,
        &["layer.tar", "absent.tar", "manifest.json"],
        |e| matches!(e, OciError::DockerArchiveMember { .. }),
    );
    let mut members = legacy_members(std::slice::from_ref(&image));
    members.retain(|m| m.0 != format!("{id}/layer.tar"));
    members.push(link(format!("{id}/layer.tar"), "layer.tar"));
    assert_refused(members, &["layer.tar", "circle"], |e| {
        matches!(e, OciError::DockerArchiveMember { .. })
    });
}

#[test]
fn a_manifest_json_naming_a_missing_layer_is_refused() {
    let image = Image::new("gap", 2, &["gap:1"]);
    let mut members = legacy_members(std::slice::from_ref(&image));
    let mut manifest = manifest_json_of(&members);
    manifest[0]["Layers"][1] = json!("nowhere/layer.tar");
    with_manifest_json(&mut members, manifest);
    assert_refused(
        members,
        &[
            "nowhere/layer.tar",
            "manifest.json image 1 Layers[1]",
            "no such member",
        ],
        |e| matches!(e, OciError::DockerArchiveMember { .. }),
    );
    // Fewer layers than the config's diff IDs.
    let mut members = legacy_members(std::slice::from_ref(&image));
    let mut manifest = manifest_json_of(&members);
    manifest[0]["Layers"].as_array_mut().unwrap().pop();
    with_manifest_json(&mut members, manifest);
    assert_refused(members, &["2 diff IDs", "1 layers"], |e| {
        matches!(e, OciError::DockerArchiveMember { .. })
    });
}

#[test]
fn a_layer_whose_diff_id_does_not_match_is_refused() {
    let image = Image::new("liar", 2, &["liar:1"]);
    let mut members = legacy_members(std::slice::from_ref(&image));
    let id = layer_id(&image, 1);
    let entry = members
        .iter_mut()
        .find(|m| m.0 == format!("{id}/layer.tar"))
        .unwrap();
    entry.3 = gzip(&layer_tar(&[("etc/swapped", b"swapped\n")]));
    assert_refused(members, &["layer.tar", "position 1", "diff_ids"], |e| {
        matches!(e, OciError::LayerDiffIdMismatch { position: 1, .. })
    });
    // A config that is not what its name says.
    let mut members = legacy_members(std::slice::from_ref(&image));
    let config = members
        .iter_mut()
        .find(|m| m.0.ends_with(".json") && m.0.len() == 69)
        .unwrap();
    config.3 = serde_json::to_vec(&json!({"rootfs": {"type": "layers", "diff_ids": []}})).unwrap();
    assert_refused(members, &[".json", "its content is"], |e| {
        matches!(e, OciError::DockerArchiveMember { .. })
    });
}

#[test]
fn export_as_docker_archive_round_trips_through_files_and_stdout() {
    let store = TestStore::new();
    let image = Image::new("zeta", 2, &["zeta:1"]);
    let archive = store.scratch("in.tar");
    std::fs::write(
        &archive,
        write_tar(&legacy_members(std::slice::from_ref(&image))),
    )
    .unwrap();
    let imported = store.json(&["import", archive.to_str().unwrap()]);
    let digest = imported["refs"][0]["digest"].as_str().unwrap().to_string();

    let out = store.scratch("out.tar");
    store.ok(&[
        "export",
        "--sref",
        "docker.io/library/zeta:1",
        "--format",
        "docker-archive",
        out.to_str().unwrap(),
    ]);
    let to_stdout = store.ok_bytes(&[
        "export",
        "--sref",
        "docker.io/library/zeta:1",
        "--format",
        "docker-archive",
        "-",
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), to_stdout);
    let mut reader = tar::Archive::new(to_stdout.as_slice());
    let mut manifest_json = None;
    let mut names = Vec::new();
    for entry in reader.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        if name == "manifest.json" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            manifest_json = Some(serde_json::from_slice::<Value>(&bytes).unwrap());
        }
        names.push(name);
    }
    let manifest_json = manifest_json.expect("a manifest.json");
    assert_eq!(manifest_json[0]["RepoTags"], json!(["zeta:1"]));
    assert_eq!(
        manifest_json[0]["Config"],
        format!("blobs/sha256/{}", hex(&image.config_digest()))
    );
    for layer in manifest_json[0]["Layers"].as_array().unwrap() {
        assert!(names.contains(&layer.as_str().unwrap().to_string()));
    }
    assert!(names.contains(&"index.json".to_string()) && names.contains(&"oci-layout".to_string()));

    // Read back, from a pipe: the same image under the same name (its layout used).
    let again = TestStore::new();
    let output = again.run(&["--json", "import", "-"], &to_stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["refs"][0]["name"], "docker.io/library/zeta:1");
    assert_eq!(report["refs"][0]["digest"], digest.as_str());

    // An oci-archive to stdout too.
    let oci = store.ok_bytes(&[
        "export",
        "--sref",
        "docker.io/library/zeta:1",
        "--archive",
        "-",
    ]);
    let output = again.run(&["--json", "import", "--dref", "o:1", "-"], &oci);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_import_from_stdin_stays_within_the_memory_of_a_file_import() {
    // One 48 MiB layer: a stream buffered whole would show it in the peak RSS.
    let size = 48 << 20;
    let mut content = cli_support::pseudo_random_bytes(size, 21);
    content.truncate(size);
    let layer = layer_tar(&[("big", &content)]);
    drop(content);
    let mut image = Image::new("big", 1, &["big:1"]);
    let diff_id = sha256(&layer);
    image.config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    image.layers = vec![layer];
    let bytes = write_tar(&legacy_members(&[image]));
    let from_file = TestStore::new();
    let path = from_file.scratch("big.tar");
    std::fs::write(&path, &bytes).unwrap();
    let file_peak = peak_rss_kib(&from_file, &["import", path.to_str().unwrap()], None);
    let piped = TestStore::new();
    let stdin_peak = peak_rss_kib(&piped, &["import", "-"], Some(bytes));
    eprintln!("peak RSS importing a 48 MiB layer: from stdin {stdin_peak} KiB, from a file {file_peak} KiB");
    let limit_kib = 40 * 1024;
    assert!(
        stdin_peak < limit_kib && file_peak < limit_kib,
        "peak RSS: from stdin {stdin_peak} KiB, from a file {file_peak} KiB, over {limit_kib} \
         KiB for a 48 MiB layer"
    );
    assert!(
        stdin_peak <= file_peak + 8 * 1024,
        "from stdin {stdin_peak} KiB, from a file {file_peak} KiB"
    );
}

/// Runs the CLI (stdin fed from a thread when given) and samples its `VmHWM` until it exits.
fn peak_rss_kib(store: &TestStore, args: &[&str], stdin: Option<Vec<u8>>) -> i64 {
    let mut command = store.command(args);
    command
        .stdin(match stdin {
            Some(_) => std::process::Stdio::piped(),
            None => std::process::Stdio::null(),
        })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let value = text
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            peak = peak.max(value);
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            assert!(status.success(), "{args:?}: {stderr}");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if let Some(feeder) = feeder {
        feeder.join().unwrap();
    }
    peak
}

#[test]
fn an_index_exports_as_a_docker_archive_of_this_machine_s_platform() {
    use oci_store::oci::{ExportFormat, ExportTarget};
    use oci_store::stores::oci::layout_builder::LayoutBuilder;
    let temp = tempfile::tempdir().unwrap();
    let store = new_store(temp.path());
    let layout = temp.path().join("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let other = if host == "amd64" { "arm64" } else { "amd64" };
    let layer = |text: &[u8]| LayoutBuilder::layer_tar_gz(&[("etc/platform", text)]).unwrap();
    let mine = builder
        .runnable_image("linux", host, &[layer(b"mine\n")])
        .unwrap();
    let theirs = builder
        .runnable_image("linux", other, &[layer(b"theirs\n")])
        .unwrap();
    let index = builder
        .index(&[(theirs, "linux", other), (mine.clone(), "linux", host)])
        .unwrap();
    builder.add_ref(Some("multi:1"), &index);
    builder.finish().unwrap();
    let oci = OciStore::new(&store);
    oci.import_layout(&layout, &ImportOptions::default())
        .unwrap();

    let mut out = Vec::new();
    let report = oci
        .export_to(
            "multi:1",
            None,
            ExportTarget::ArchiveStream {
                out: &mut out,
                name: Path::new("<memory>"),
            },
            ExportFormat::DockerArchive,
        )
        .unwrap();
    assert_eq!(report.digest.to_string(), index.digest().to_string());
    let mut archive = tar::Archive::new(out.as_slice());
    let mut manifest_json = Value::Null;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("manifest.json") {
            manifest_json = serde_json::from_reader(&mut entry).unwrap();
        }
    }
    let mine_bytes = store
        .read_to_vec(&mine.digest().to_string().parse().unwrap(), 1 << 20)
        .unwrap();
    let mine_manifest: Value = serde_json::from_slice(&mine_bytes).unwrap();
    let config = mine_manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(
        manifest_json[0]["Config"],
        format!("blobs/sha256/{}", hex(config))
    );
    assert_eq!(manifest_json[0]["RepoTags"], json!(["multi:1"]));
    // Read back: the whole index, under the normalised name.
    let again = new_store(&temp.path().join("again"));
    let refs = import_bytes(&again, temp.path(), &out).unwrap();
    assert_eq!(
        refs,
        vec![(
            "docker.io/library/multi:1".to_string(),
            index.digest().to_string()
        )]
    );

    // A docker-archive is a tar: a directory target is refused before anything is written.
    let directory = temp.path().join("not-written");
    let error = oci
        .export_to(
            "multi:1",
            None,
            ExportTarget::Directory(&directory),
            ExportFormat::DockerArchive,
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("docker-archive is a tar"),
        "{error}"
    );
    assert!(!directory.exists());
}
