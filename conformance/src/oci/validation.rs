//! Validation to the image-spec (issue 7 item 9): a corpus of invalid layouts — rebuilt from
//! the kinds of invalid case the image-spec's own schema tests use (`schema/*_test.go`) and
//! more by hand — each refused with an error naming the blob and the rule, the store's full
//! dump unchanged; and valid images of every kind a strict importer must not refuse (Docker
//! media types and configs, artifacts, the withdrawn artifact manifest, no layers, unknown
//! fields, the limits themselves), which import with their bytes kept as they came.
//!
//! Every layout is built here with the library's [`LayoutBuilder`] from a valid image that one
//! case then breaks in one place.

use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{Descriptor, OciStore, MAX_DOCUMENT_SIZE};
use serde_json::{json, Value};

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, Context};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The nesting limit the store documents (`MAX_INDEX_NESTING`); fixed here so that the test
/// states the contract rather than reading it back.
const INDEX_NESTING_LIMIT: usize = 8;

type Edit = Box<dyn Fn(&mut Value)>;
type Build = Box<dyn Fn(&mut LayoutBuilder) -> Result<Built, String>>;

/// What a case built: the descriptor `index.json` names, and the blob whose rule it breaks.
struct Built {
    top: Descriptor,
    blamed: Descriptor,
}

struct Case {
    name: String,
    /// A word of the rule the error must state.
    rule: &'static str,
    build: Build,
}

fn edit(f: impl Fn(&mut Value) + 'static) -> Edit {
    Box::new(f)
}

fn json_blob(
    builder: &mut LayoutBuilder,
    media_type: &str,
    value: &Value,
) -> Result<Descriptor, String> {
    builder
        .json_blob(media_type, value)
        .context(format!("writing a {media_type} blob"))
}

fn raw_blob(
    builder: &mut LayoutBuilder,
    media_type: &str,
    bytes: &[u8],
) -> Result<Descriptor, String> {
    builder
        .blob(media_type, bytes)
        .context(format!("writing a {media_type} blob"))
}

fn descriptor_value(descriptor: &Descriptor) -> Value {
    serde_json::to_value(descriptor).expect("a descriptor serializes")
}

/// A valid OCI config with every optional field the schema types, for cases to break.
fn valid_config() -> Value {
    json!({
        "created": "2015-10-31T22:22:56.015925234Z",
        "author": "Alyssa P. Hacker <alyspdev@example.com>",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "alice",
            "ExposedPorts": { "8080/tcp": {} },
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FOO=a=b", "EMPTY="],
            "Entrypoint": ["/bin/my-app-binary"],
            "Cmd": ["--foreground", "--config", "/etc/my-app.d/default.cfg"],
            "Volumes": { "/var/job-result-data": {} },
            "WorkingDir": "/home/alice",
            "Labels": { "com.example.project.git.url": "https://example.com/project.git" },
            "StopSignal": "SIGTERM",
            "ArgsEscaped": true
        },
        "rootfs": { "diff_ids": ["sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1"], "type": "layers" },
        "history": [
            { "created": "2015-10-31T22:22:54.690851953Z", "created_by": "/bin/sh -c #(nop) ADD file in /", "empty_layer": false },
            { "created": "2015-10-31T22:22:55+01:00", "author": "alice", "comment": "a comment", "empty_layer": true }
        ]
    })
}

/// Writes config, one layer and a manifest (`manifest_edit` applied last); returns the
/// manifest and config descriptors.
fn image(
    builder: &mut LayoutBuilder,
    config_media_type: &str,
    config: &[u8],
    manifest_edit: &dyn Fn(&mut Value),
) -> Result<(Descriptor, Descriptor), String> {
    let config = raw_blob(builder, config_media_type, config)?;
    let layer = raw_blob(builder, OCI_LAYER, &layer("validation")?)?;
    // The empty descriptor's content, for cases that name it.
    raw_blob(builder, OCI_EMPTY, b"{}")?;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor_value(&config),
        "layers": [descriptor_value(&layer)],
    });
    manifest_edit(&mut manifest);
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or(OCI_MANIFEST)
        .to_string();
    let manifest = json_blob(builder, &media_type, &manifest)?;
    Ok((manifest, config))
}

fn config_bytes(config_edit: &dyn Fn(&mut Value)) -> Vec<u8> {
    let mut config = valid_config();
    config_edit(&mut config);
    serde_json::to_vec(&config).expect("JSON serializes")
}

/// A case whose OCI config breaks a rule (the config is the blob to blame).
fn config_case(name: &str, rule: &'static str, config_edit: Edit) -> Case {
    config_bytes_case(name, rule, OCI_CONFIG, move || config_bytes(&config_edit))
}

fn config_bytes_case(
    name: &str,
    rule: &'static str,
    media_type: &'static str,
    bytes: impl Fn() -> Vec<u8> + 'static,
) -> Case {
    Case {
        name: format!("config: {name}"),
        rule,
        build: Box::new(move |builder| {
            let (manifest, config) = image(builder, media_type, &bytes(), &|_| {})?;
            Ok(Built {
                top: manifest,
                blamed: config,
            })
        }),
    }
}

/// A case whose manifest breaks a rule.
fn manifest_case(name: &str, rule: &'static str, manifest_edit: Edit) -> Case {
    Case {
        name: format!("manifest: {name}"),
        rule,
        build: Box::new(move |builder| {
            let config = config_bytes(&|_| {});
            let (manifest, _) = image(builder, OCI_CONFIG, &config, &*manifest_edit)?;
            Ok(Built {
                top: manifest.clone(),
                blamed: manifest,
            })
        }),
    }
}

/// An index over one valid manifest, with its entry carrying a platform; `index_edit` breaks it.
fn index_case(
    name: &str,
    rule: &'static str,
    index_media_type: &'static str,
    index_edit: Edit,
) -> Case {
    Case {
        name: format!("index: {name}"),
        rule,
        build: Box::new(move |builder| {
            let config = config_bytes(&|_| {});
            let (manifest, _) = image(builder, OCI_CONFIG, &config, &|_| {})?;
            let mut entry = descriptor_value(&manifest);
            entry["platform"] = json!({ "architecture": "amd64", "os": "linux" });
            let mut index = json!({
                "schemaVersion": 2,
                "mediaType": index_media_type,
                "manifests": [entry],
            });
            index_edit(&mut index);
            let index = json_blob(builder, index_media_type, &index)?;
            Ok(Built {
                top: index.clone(),
                blamed: index,
            })
        }),
    }
}

/// A valid manifest named by an `index.json` entry that `entry_edit` breaks.
fn entry_case(
    name: &str,
    rule: &'static str,
    entry_edit: impl Fn(&mut Descriptor) + 'static,
) -> Case {
    Case {
        name: format!("index.json entry: {name}"),
        rule,
        build: Box::new(move |builder| {
            let config = config_bytes(&|_| {});
            let (manifest, _) = image(builder, OCI_CONFIG, &config, &|_| {})?;
            // Named as the entry names it: the same digest, under the broken media type.
            let mut top = manifest;
            entry_edit(&mut top);
            Ok(Built {
                top: top.clone(),
                blamed: top,
            })
        }),
    }
}

/// A chain of `depth` indexes over one manifest; returns the outermost and all of them,
/// outermost first.
fn index_chain(builder: &mut LayoutBuilder, depth: usize) -> Result<Vec<Descriptor>, String> {
    let config = config_bytes(&|_| {});
    let (manifest, _) = image(builder, OCI_CONFIG, &config, &|_| {})?;
    let mut chain = Vec::new();
    let mut inner = manifest;
    for _ in 0..depth {
        inner = json_blob(
            builder,
            OCI_INDEX,
            &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor_value(&inner)] }),
        )?;
        chain.push(inner.clone());
    }
    chain.reverse();
    Ok(chain)
}

fn nested_case(depth: usize) -> Case {
    Case {
        name: format!("{depth} nested indexes"),
        rule: "nested",
        build: Box::new(move |builder| {
            let chain = index_chain(builder, depth)?;
            Ok(Built {
                top: chain[0].clone(),
                // The first index past the limit, counting from the one index.json names.
                blamed: chain[INDEX_NESTING_LIMIT].clone(),
            })
        }),
    }
}

fn set(path: &'static [&'static str], value: Value) -> Edit {
    edit(move |document| {
        let mut target = document;
        for key in &path[..path.len() - 1] {
            target = match key.parse::<usize>() {
                Ok(position) => &mut target[position],
                Err(_) => &mut target[*key],
            };
        }
        let last = path[path.len() - 1];
        match last.parse::<usize>() {
            Ok(position) => target[position] = value.clone(),
            Err(_) => target[last] = value.clone(),
        }
    })
}

fn remove(path: &'static [&'static str]) -> Edit {
    edit(move |document| {
        let mut target = document;
        for key in &path[..path.len() - 1] {
            target = match key.parse::<usize>() {
                Ok(position) => &mut target[position],
                Err(_) => &mut target[*key],
            };
        }
        if let Some(object) = target.as_object_mut() {
            object.remove(path[path.len() - 1]);
        }
    })
}

fn long(length: usize) -> String {
    "a".repeat(length)
}

/// The invalid corpus.
fn invalid_cases() -> Vec<Case> {
    let too_long_type = format!("{}/json", long(128));
    let too_long_subtype = format!("application/{}", long(128));
    vec![
        // Image configs: not JSON, wrong types (the schema tests' cases and more), required
        // fields, Env entries.
        config_bytes_case("not JSON", "not JSON", OCI_CONFIG, || {
            b"{ this is not json".to_vec()
        }),
        config_bytes_case("an array", "must be an object", OCI_CONFIG, || {
            b"[]".to_vec()
        }),
        config_bytes_case("a string", "must be an object", OCI_CONFIG, || {
            b"\"config\"".to_vec()
        }),
        config_case("os is a number", "os is a number", set(&["os"], json!(123))),
        config_case(
            "architecture is a number",
            "architecture is a number",
            set(&["architecture"], json!(64)),
        ),
        config_case(
            "variant is a number",
            "variant is a number",
            set(&["variant"], json!(8)),
        ),
        config_case(
            "author is an object",
            "author is an object",
            set(&["author"], json!({})),
        ),
        config_case(
            "os.version is a number",
            "os.version",
            set(&["os.version"], json!(10)),
        ),
        config_case(
            "os.features is a string",
            "os.features",
            set(&["os.features"], json!("win32k")),
        ),
        config_case(
            "created is a number",
            "created is a number",
            set(&["created"], json!(1446330176)),
        ),
        config_case(
            "created is not a date-time",
            "RFC 3339",
            set(&["created"], json!("yesterday")),
        ),
        config_case(
            "config is a string",
            "config is a string",
            set(&["config"], json!("none")),
        ),
        config_case(
            "config.User is a number",
            "config.User",
            set(&["config", "User"], json!(1000)),
        ),
        config_case(
            "config.Env is a string",
            "config.Env",
            set(&["config", "Env"], json!("A=B")),
        ),
        config_case(
            "config.Env holds a number",
            "config.Env[0]",
            set(&["config", "Env"], json!([7353])),
        ),
        config_case(
            "config.Env entry without =",
            "NAME=VALUE",
            set(&["config", "Env"], json!(["foo"])),
        ),
        config_case(
            "config.Env entry with no name",
            "NAME=VALUE",
            set(&["config", "Env"], json!(["=value"])),
        ),
        config_case(
            "config.Entrypoint is a string",
            "config.Entrypoint",
            set(&["config", "Entrypoint"], json!("/bin/sh")),
        ),
        config_case(
            "config.Cmd holds a number",
            "config.Cmd[0]",
            set(&["config", "Cmd"], json!([1])),
        ),
        config_case(
            "config.Volumes is an array",
            "config.Volumes",
            set(&["config", "Volumes"], json!(["/data"])),
        ),
        config_case(
            "config.Volumes value is a string",
            "config.Volumes",
            set(&["config", "Volumes"], json!({"/data": "yes"})),
        ),
        config_case(
            "config.ExposedPorts is an array",
            "config.ExposedPorts",
            set(&["config", "ExposedPorts"], json!(["80/tcp"])),
        ),
        config_case(
            "config.WorkingDir is a number",
            "config.WorkingDir",
            set(&["config", "WorkingDir"], json!(0)),
        ),
        config_case(
            "config.Labels value is a number",
            "config.Labels",
            set(&["config", "Labels"], json!({"a": 1})),
        ),
        config_case(
            "config.StopSignal is a number",
            "config.StopSignal",
            set(&["config", "StopSignal"], json!(15)),
        ),
        config_case(
            "config.ArgsEscaped is a string",
            "config.ArgsEscaped",
            set(&["config", "ArgsEscaped"], json!("true")),
        ),
        config_case(
            "rootfs is missing",
            "rootfs is required",
            remove(&["rootfs"]),
        ),
        config_case(
            "architecture is missing",
            "architecture is required",
            remove(&["architecture"]),
        ),
        config_case("os is missing", "os is required", remove(&["os"])),
        config_case(
            "rootfs.type is not layers",
            "rootfs.type",
            set(&["rootfs", "type"], json!("tarballs")),
        ),
        config_case(
            "rootfs.type is missing",
            "rootfs.type is required",
            remove(&["rootfs", "type"]),
        ),
        config_case(
            "rootfs.diff_ids is a string",
            "rootfs.diff_ids",
            set(&["rootfs", "diff_ids"], json!("sha256:abc")),
        ),
        config_case(
            "rootfs.diff_ids is missing",
            "rootfs.diff_ids is required",
            remove(&["rootfs", "diff_ids"]),
        ),
        config_case(
            "history is a string",
            "history is a string",
            set(&["history"], json!("a long story")),
        ),
        config_case(
            "history entry is a string",
            "history[0]",
            set(&["history", "0"], json!("built")),
        ),
        config_case(
            "history created_by is a number",
            "history[0].created_by",
            set(&["history", "0", "created_by"], json!(1)),
        ),
        config_case(
            "history empty_layer is a string",
            "history[1].empty_layer",
            set(&["history", "1", "empty_layer"], json!("yes")),
        ),
        config_case(
            "history created is not a date-time",
            "RFC 3339",
            set(&["history", "0", "created"], json!("2015-10-31")),
        ),
        config_bytes_case("Docker config: not JSON", "not JSON", DOCKER_CONFIG, || {
            b"not json".to_vec()
        }),
        config_bytes_case(
            "Docker config: Env entry without =",
            "NAME=VALUE",
            DOCKER_CONFIG,
            || config_bytes(&|c| c["config"]["Env"] = json!(["PATH"])),
        ),
        config_bytes_case(
            "Docker config: os is a number",
            "os is a number",
            DOCKER_CONFIG,
            || config_bytes(&|c| c["os"] = json!(1)),
        ),
        // Manifests.
        manifest_case(
            "schemaVersion is missing",
            "schemaVersion is required",
            remove(&["schemaVersion"]),
        ),
        manifest_case(
            "schemaVersion is 1",
            "schemaVersion",
            set(&["schemaVersion"], json!(1)),
        ),
        manifest_case(
            "schemaVersion is a string",
            "schemaVersion",
            set(&["schemaVersion"], json!("2")),
        ),
        manifest_case("config is missing", "config", remove(&["config"])),
        manifest_case(
            "config is a string",
            "config",
            set(&["config"], json!("sha256:abc")),
        ),
        manifest_case(
            "config.size is a string",
            "config.size",
            set(&["config", "size"], json!("7023")),
        ),
        manifest_case(
            "config.size is negative",
            "config.size",
            set(&["config", "size"], json!(-1)),
        ),
        manifest_case(
            "config.size is a fraction",
            "config.size",
            set(&["config", "size"], json!(1.5)),
        ),
        manifest_case(
            "config.digest is missing",
            "config.digest is required",
            remove(&["config", "digest"]),
        ),
        manifest_case(
            "config.mediaType is missing",
            "config.mediaType is required",
            remove(&["config", "mediaType"]),
        ),
        manifest_case(
            "config.mediaType has no subtype",
            "no subtype",
            set(&["config", "mediaType"], json!("application")),
        ),
        manifest_case(
            "layers is missing",
            "layers is required",
            remove(&["layers"]),
        ),
        manifest_case(
            "layers is an object",
            "layers is an object",
            set(&["layers"], json!({})),
        ),
        manifest_case(
            "layers is null",
            "layers is null",
            set(&["layers"], Value::Null),
        ),
        manifest_case(
            "layer size is a string",
            "layers[0].size",
            set(&["layers", "0", "size"], json!("32654")),
        ),
        manifest_case(
            "layer is a string",
            "layers[0]",
            set(&["layers", "0"], json!("layer.tar")),
        ),
        manifest_case(
            "layer mediaType has no subtype",
            "no subtype",
            set(&["layers", "0", "mediaType"], json!("application")),
        ),
        manifest_case(
            "layer mediaType starts with +",
            "starts with",
            set(
                &["layers", "0", "mediaType"],
                json!("+application/vnd.oci.image.layer.v1.tar"),
            ),
        ),
        manifest_case(
            "layer mediaType subtype starts with .",
            "starts with",
            set(&["layers", "0", "mediaType"], json!("application/.tar")),
        ),
        manifest_case(
            "layer mediaType type over 127 characters",
            "over 127",
            set(&["layers", "0", "mediaType"], json!(too_long_type)),
        ),
        manifest_case(
            "layer mediaType subtype over 127 characters",
            "over 127",
            set(&["layers", "0", "mediaType"], json!(too_long_subtype)),
        ),
        manifest_case(
            "layer mediaType with a parameter",
            "does not allow",
            set(
                &["layers", "0", "mediaType"],
                json!("application/vnd.oci.image.layer.v1.tar; q=1"),
            ),
        ),
        manifest_case(
            "layer mediaType is empty",
            "no subtype",
            set(&["layers", "0", "mediaType"], json!("")),
        ),
        manifest_case(
            "layer urls entry is not a URI",
            "not a URI",
            set(&["layers", "0", "urls"], json!(["value"])),
        ),
        manifest_case(
            "layer urls entry with a space",
            "not a URI",
            set(
                &["layers", "0", "urls"],
                json!(["https://exa mple.com/layer"]),
            ),
        ),
        manifest_case(
            "layer urls entry with a bad escape",
            "not a URI",
            set(&["layers", "0", "urls"], json!(["https://example.com/%zz"])),
        ),
        manifest_case(
            "layer urls is a string",
            "layers[0].urls",
            set(&["layers", "0", "urls"], json!("https://example.com/layer")),
        ),
        manifest_case(
            "layer urls entry is a number",
            "layers[0].urls[0]",
            set(&["layers", "0", "urls"], json!([1])),
        ),
        manifest_case(
            "layer digest has no algorithm",
            "layers[0].digest",
            set(
                &["layers", "0", "digest"],
                json!(":5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"),
            ),
        ),
        manifest_case(
            "layer data is not base64",
            "not base64",
            set(&["layers", "0", "data"], json!("e30")),
        ),
        manifest_case(
            "layer data is not the content",
            "decodes to",
            set(&["layers", "0", "data"], json!("e30=")),
        ),
        manifest_case(
            "layer annotations value is a number",
            "layers[0].annotations",
            set(&["layers", "0", "annotations"], json!({"a": 1})),
        ),
        manifest_case(
            "layer artifactType breaks RFC 6838",
            "layers[0].artifactType",
            set(&["layers", "0", "artifactType"], json!("application/+json")),
        ),
        manifest_case(
            "annotations is an array",
            "annotations is an array",
            set(&["annotations"], json!(["a"])),
        ),
        manifest_case(
            "annotations value is a boolean",
            "annotations",
            set(
                &["annotations"],
                json!({"org.opencontainers.image.created": true}),
            ),
        ),
        manifest_case(
            "artifactType has no subtype",
            "artifactType",
            set(&["artifactType"], json!("signature")),
        ),
        manifest_case(
            "mediaType breaks RFC 6838 in document and descriptor",
            "no subtype",
            edit(|m| m["mediaType"] = json!("manifest")),
        ),
        manifest_case(
            "subject is a string",
            "subject is a string",
            set(&["subject"], json!("sha256:abc")),
        ),
        manifest_case(
            "subject has no size",
            "subject.size is required",
            edit(
                |m| m["subject"] = json!({ "mediaType": OCI_MANIFEST, "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270" }),
            ),
        ),
        manifest_case(
            "empty config without artifactType",
            "requires an artifactType",
            edit(
                |m| m["config"] = json!({ "mediaType": OCI_EMPTY, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2, "data": "e30=" }),
            ),
        ),
        manifest_case(
            "not an object",
            "must be an object",
            edit(|m| *m = json!([m.clone()])),
        ),
        manifest_case(
            "Docker manifest: schemaVersion is missing",
            "schemaVersion is required",
            edit(|m| {
                m["mediaType"] = json!(DOCKER_MANIFEST);
                m.as_object_mut().map(|o| o.remove("schemaVersion"));
            }),
        ),
        manifest_case(
            "Docker manifest: layers is missing",
            "layers is required",
            edit(|m| {
                m["mediaType"] = json!(DOCKER_MANIFEST);
                m.as_object_mut().map(|o| o.remove("layers"));
            }),
        ),
        manifest_case(
            "artifact manifest: blobs is an object",
            "blobs is an object",
            edit(
                |m| *m = json!({ "mediaType": OCI_ARTIFACT_MANIFEST, "artifactType": "application/vnd.example.sbom", "blobs": { "a": m["layers"][0].clone() } }),
            ),
        ),
        manifest_case(
            "artifact manifest: blob mediaType has no subtype",
            "blobs[0].mediaType",
            edit(|m| {
                let mut blob = m["layers"][0].clone();
                blob["mediaType"] = json!("sbom");
                *m = json!({ "mediaType": OCI_ARTIFACT_MANIFEST, "artifactType": "application/vnd.example.sbom", "blobs": [blob] });
            }),
        ),
        manifest_case(
            "artifact manifest: artifactType starts with -",
            "artifactType",
            edit(
                |m| *m = json!({ "mediaType": OCI_ARTIFACT_MANIFEST, "artifactType": "-application/sbom", "blobs": [m["layers"][0].clone()] }),
            ),
        ),
        // Indexes.
        index_case(
            "entry mediaType is invalid",
            "manifests[0].mediaType",
            OCI_INDEX,
            set(&["manifests", "0", "mediaType"], json!("invalid")),
        ),
        index_case(
            "entry mediaType is empty",
            "manifests[0].mediaType",
            OCI_INDEX,
            set(&["manifests", "0", "mediaType"], json!("")),
        ),
        index_case(
            "entry size is a string",
            "manifests[0].size",
            OCI_INDEX,
            set(&["manifests", "0", "size"], json!("7682")),
        ),
        index_case(
            "entry digest is missing",
            "manifests[0].digest is required",
            OCI_INDEX,
            remove(&["manifests", "0", "digest"]),
        ),
        index_case(
            "platform without architecture",
            "architecture is required",
            OCI_INDEX,
            remove(&["manifests", "0", "platform", "architecture"]),
        ),
        index_case(
            "platform os is a number",
            "platform.os",
            OCI_INDEX,
            set(&["manifests", "0", "platform", "os"], json!(1)),
        ),
        index_case(
            "platform os.features is a string",
            "os.features",
            OCI_INDEX,
            set(
                &["manifests", "0", "platform", "os.features"],
                json!("win32k"),
            ),
        ),
        index_case(
            "platform is a string",
            "platform is a string",
            OCI_INDEX,
            set(&["manifests", "0", "platform"], json!("linux/amd64")),
        ),
        index_case(
            "manifests is missing",
            "manifests is required",
            OCI_INDEX,
            remove(&["manifests"]),
        ),
        index_case(
            "manifests is an object",
            "manifests is an object",
            OCI_INDEX,
            set(&["manifests"], json!({})),
        ),
        index_case(
            "schemaVersion is missing",
            "schemaVersion is required",
            OCI_INDEX,
            remove(&["schemaVersion"]),
        ),
        index_case(
            "artifactType breaks RFC 6838",
            "artifactType",
            OCI_INDEX,
            set(&["artifactType"], json!("application/")),
        ),
        index_case(
            "subject is a number",
            "subject is a number",
            OCI_INDEX,
            set(&["subject"], json!(1)),
        ),
        index_case(
            "annotations value is an object",
            "annotations",
            OCI_INDEX,
            set(&["annotations"], json!({"a": {}})),
        ),
        index_case(
            "Docker list: entry mediaType is invalid",
            "manifests[0].mediaType",
            DOCKER_LIST,
            set(&["manifests", "0", "mediaType"], json!("docker")),
        ),
        nested_case(100),
        nested_case(INDEX_NESTING_LIMIT + 1),
        // index.json entries (the layout's own descriptors).
        entry_case("mediaType has no subtype", "no subtype", |d| {
            d.set_media_type("application".into());
        }),
        entry_case("mediaType starts with _", "starts with", |d| {
            d.set_media_type("_application/json".into());
        }),
        entry_case("urls entry is not a URI", "not a URI", |d| {
            d.set_urls(Some(vec!["value".to_string()]));
        }),
        entry_case("artifactType has no subtype", "artifactType", |d| {
            d.set_artifact_type(Some("sbom".into()));
        }),
    ]
}

/// Builds each case in a layout of its own, imports it, and checks the refusal.
pub fn invalid_layouts_are_refused_naming_blob_and_rule(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    // Something stored already, so that "unchanged" is not just "empty".
    let existing = path_in(&dir, "existing");
    simple_image(&existing, "existing:1")?;
    import_default(&oci, &existing)?;
    let before = store.dump().context("dumping the store")?;

    let cases = invalid_cases();
    ensure!(cases.len() >= 61, "the corpus has {} cases", cases.len());
    let mut accepted = Vec::new();
    let mut unclear = Vec::new();
    let mut changed = Vec::new();
    let mut before = before;
    for (position, case) in cases.iter().enumerate() {
        let layout = path_in(&dir, &format!("case-{position}"));
        let mut builder = new_builder(&layout)?;
        let built = (case.build)(&mut builder).context(format!("building {}", case.name))?;
        builder.add_ref(Some("case:1"), &built.top);
        finish(&builder)?;
        let result = import_default(&oci, &layout);
        let after = store.dump().context("dumping the store")?;
        match result {
            Ok(report) => {
                accepted.push(format!("{}: {report:?}", case.name));
                // Go on from what the accepted import stored, to count every case.
                before = after;
                continue;
            }
            Err(error) => {
                let digest = digest_string(&built.blamed);
                let media_type = built.blamed.media_type().to_string();
                let named = error.contains(&digest) && error.contains(&media_type);
                if !(named && error.contains(case.rule)) {
                    unclear.push(format!(
                        "{}: the error should name {media_type} {digest} and say {:?}: {error}",
                        case.name, case.rule
                    ));
                }
            }
        }
        if after != before {
            changed.push(case.name.clone());
        }
    }
    ensure!(
        accepted.is_empty() && unclear.is_empty() && changed.is_empty(),
        "of {} invalid layouts, {} were accepted:\n  {}\n{} refused without naming the blob \
         and the rule:\n  {}\nand {} refused but changed the store: {changed:?}",
        cases.len(),
        accepted.len(),
        accepted.join("\n  "),
        unclear.len(),
        unclear.join("\n  "),
        changed.len(),
    );
    Ok(())
}

/// Valid images a strict importer must take: each imports, and its manifest and config are
/// stored byte for byte as they came (unknown fields kept).
fn valid_cases() -> Vec<(&'static str, Build)> {
    vec![
        (
            "the full OCI config and manifest",
            Box::new(|b| {
                let (manifest, _) = image(b, OCI_CONFIG, &config_bytes(&|_| {}), &|m| {
                    m["annotations"] =
                        json!({ "org.opencontainers.image.created": "2024-01-01T00:00:00Z" });
                })?;
                Ok(Built {
                    top: manifest.clone(),
                    blamed: manifest,
                })
            }),
        ),
        (
            "only the required config fields",
            Box::new(|b| {
                let config = json!({ "architecture": "arm64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": [] } });
                let (manifest, config) = image(
                    b,
                    OCI_CONFIG,
                    &serde_json::to_vec(&config).expect("JSON"),
                    &|_| {},
                )?;
                Ok(Built {
                    top: manifest,
                    blamed: config,
                })
            }),
        ),
        (
            "unknown fields everywhere, and nulls in a config",
            Box::new(|b| {
                let config = config_bytes(&|c| {
                    c["com.example.future"] = json!({ "nested": [1, 2] });
                    c["config"]["Healthcheck"] = json!({ "Test": ["CMD", "true"] });
                    c["config"]["Entrypoint"] = Value::Null;
                    c["config"]["Env"] = Value::Null;
                    c["config"]["Labels"] = Value::Null;
                });
                let (manifest, config) = image(b, OCI_CONFIG, &config, &|m| {
                    m["com.example.extra"] = json!("kept");
                    m["layers"][0]["com.example.per-layer"] = json!(true);
                })?;
                Ok(Built {
                    top: manifest,
                    blamed: config,
                })
            }),
        ),
        (
            "no layers (layers: [], see image-spec#1058)",
            Box::new(|b| {
                let (manifest, _) = image(b, OCI_CONFIG, &config_bytes(&|_| {}), &|m| {
                    m["layers"] = json!([]);
                })?;
                Ok(Built {
                    top: manifest.clone(),
                    blamed: manifest,
                })
            }),
        ),
        (
            "media types of the longest type and subtype",
            Box::new(|b| {
                let long_type = format!("{}/{}", long(127), long(127));
                let (manifest, _) = image(b, OCI_CONFIG, &config_bytes(&|_| {}), &|m| {
                    m["layers"][0]["mediaType"] = json!(long_type.clone());
                })?;
                Ok(Built {
                    top: manifest.clone(),
                    blamed: manifest,
                })
            }),
        ),
        (
            "Docker schema2 manifest and config, with Docker's nulls and no rootfs",
            Box::new(|b| {
                let config = json!({
                    "architecture": "amd64", "os": "linux", "created": "2023-05-01T10:00:00.123456789Z",
                    "docker_version": "24.0.0", "container_config": { "Cmd": null, "Image": "" },
                    "config": { "Env": ["PATH=/bin"], "Cmd": null, "Entrypoint": null, "OnBuild": null, "Volumes": null, "Labels": null },
                    "rootfs": {}, "history": null
                });
                let config = raw_blob(
                    b,
                    DOCKER_CONFIG,
                    &serde_json::to_vec(&config).expect("JSON"),
                )?;
                let layer = raw_blob(b, DOCKER_LAYER, &layer("docker")?)?;
                let manifest = json_blob(
                    b,
                    DOCKER_MANIFEST,
                    &json!({
                        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                        "config": descriptor_value(&config), "layers": [descriptor_value(&layer)],
                    }),
                )?;
                let list = json_blob(
                    b,
                    DOCKER_LIST,
                    &json!({
                        "schemaVersion": 2, "mediaType": DOCKER_LIST,
                        "manifests": [{ "mediaType": DOCKER_MANIFEST, "digest": digest_string(&manifest), "size": manifest.size(),
                                        "platform": { "architecture": "amd64", "os": "linux", "features": ["sse4"] } }],
                    }),
                )?;
                Ok(Built {
                    top: list,
                    blamed: config,
                })
            }),
        ),
        (
            "an artifact: artifactType and the empty config, with data",
            Box::new(|b| {
                let empty = raw_blob(b, OCI_EMPTY, b"{}")?;
                let mut empty_value = descriptor_value(&empty);
                empty_value["data"] = json!("e30=");
                let payload = raw_blob(
                    b,
                    "application/vnd.example.sbom.v1+json",
                    b"{\"packages\":[]}",
                )?;
                let manifest = json_blob(
                    b,
                    OCI_MANIFEST,
                    &json!({
                        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom.v1+json",
                        "config": empty_value, "layers": [descriptor_value(&payload)],
                    }),
                )?;
                Ok(Built {
                    top: manifest.clone(),
                    blamed: manifest,
                })
            }),
        ),
        (
            "an artifact with an opaque config media type",
            Box::new(|b| {
                let config = raw_blob(
                    b,
                    "application/vnd.cncf.helm.config.v1+json",
                    b"not json, and not ours to parse",
                )?;
                let chart = raw_blob(
                    b,
                    "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    &layer("chart")?,
                )?;
                let manifest = json_blob(
                    b,
                    OCI_MANIFEST,
                    &json!({
                        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": descriptor_value(&config), "layers": [descriptor_value(&chart)],
                    }),
                )?;
                Ok(Built {
                    top: manifest.clone(),
                    blamed: manifest,
                })
            }),
        ),
        (
            "the withdrawn artifact manifest with blobs and a subject",
            Box::new(|b| {
                let (image_manifest, _) = image(b, OCI_CONFIG, &config_bytes(&|_| {}), &|_| {})?;
                let blob = raw_blob(b, "application/vnd.example.signature", b"signed")?;
                let manifest = json_blob(
                    b,
                    OCI_ARTIFACT_MANIFEST,
                    &json!({
                        "mediaType": OCI_ARTIFACT_MANIFEST, "artifactType": "application/vnd.example.signature",
                        "blobs": [descriptor_value(&blob)], "subject": descriptor_value(&image_manifest),
                        "annotations": { "org.example.signed-by": "alice" },
                    }),
                )?;
                Ok(Built {
                    top: manifest.clone(),
                    blamed: manifest,
                })
            }),
        ),
        (
            "a non-distributable layer with urls, absent",
            Box::new(|b| {
                let foreign = json!({
                    "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                    "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270", "size": 1234,
                    "urls": ["https://mcr.microsoft.com/v2/windows/blobs/sha256:5b0bcabd?x=a%20b"],
                });
                let (manifest, _) = image(b, OCI_CONFIG, &config_bytes(&|_| {}), &|m| {
                    m["layers"]
                        .as_array_mut()
                        .expect("layers")
                        .push(foreign.clone());
                })?;
                Ok(Built {
                    top: manifest.clone(),
                    blamed: manifest,
                })
            }),
        ),
        (
            "an index with a subject, artifactType and platform details",
            Box::new(|b| {
                let (manifest, _) = image(b, OCI_CONFIG, &config_bytes(&|_| {}), &|_| {})?;
                let (other, _) = image(
                    b,
                    OCI_CONFIG,
                    &config_bytes(&|c| c["os"] = json!("windows")),
                    &|_| {},
                )?;
                let mut entry = descriptor_value(&manifest);
                entry["platform"] = json!({ "architecture": "arm64", "os": "linux", "variant": "v8", "os.features": [] });
                let mut windows = descriptor_value(&other);
                windows["platform"] = json!({ "architecture": "amd64", "os": "windows", "os.version": "10.0.14393.1066", "os.features": ["win32k"] });
                let index = json_blob(
                    b,
                    OCI_INDEX,
                    &json!({
                        "schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "application/vnd.example.bundle",
                        "manifests": [entry, windows], "subject": descriptor_value(&manifest),
                    }),
                )?;
                Ok(Built {
                    top: index.clone(),
                    blamed: index,
                })
            }),
        ),
        (
            "indexes nested to the limit",
            Box::new(|b| {
                let chain = index_chain(b, INDEX_NESTING_LIMIT)?;
                Ok(Built {
                    top: chain[0].clone(),
                    blamed: chain[INDEX_NESTING_LIMIT - 1].clone(),
                })
            }),
        ),
    ]
}

pub fn valid_images_of_every_kind_still_import(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    for (position, (name, build)) in valid_cases().into_iter().enumerate() {
        let layout = path_in(&dir, &format!("valid-{position}"));
        let mut builder = new_builder(&layout)?;
        let built = build(&mut builder).context(format!("building {name}"))?;
        let reference = format!("valid:{position}");
        builder.add_ref(Some(&reference), &built.top);
        finish(&builder)?;
        import_default(&oci, &layout).context(format!("{name}: a valid image was refused"))?;
        let check = oci
            .check(&reference, true)
            .context(format!("{name}: checking"))?;
        ensure!(
            check.is_complete(),
            "{name}: imported incomplete: {check:?}"
        );
        // The blob the case is about, stored as it came: unknown fields and nulls kept.
        let wanted = digest(&built.blamed)?;
        let stored = store
            .read_to_vec(&wanted, MAX_DOCUMENT_SIZE)
            .context(format!("{name}: reading {wanted} back"))?;
        let original =
            std::fs::read(blob_path_in(&layout, &wanted)).context("reading the layout blob")?;
        ensure!(
            stored == original,
            "{name}: {wanted} was not stored verbatim"
        );
    }
    Ok(())
}
