//! Validation of what an import brings in against the image-spec: manifests, indexes, the
//! (withdrawn) artifact manifest and image configs, every descriptor in them, and the nesting
//! of indexes. The graph walker runs it for sources that ask for it
//! ([`ContentSource::strict`](super::graph::ContentSource::strict): layouts and archives being
//! imported); the store's own walks (GC, check, export) stay lenient, so a document stored
//! before a rule existed never stops a GC.
//!
//! The rules are the image-spec's JSON schemas (`schema/*.json`) and its Go validator's
//! extra check (`Env` entries are `NAME=VALUE`), with these choices, made so that strict does
//! not mean brittle:
//!
//! - Unknown fields are allowed everywhere, and nothing is rewritten: the bytes are stored as
//!   they came. A field set to `null` counts as absent in configs (Go tools write `null` for
//!   an empty slice).
//! - `layers` may be empty: the prose says a manifest SHOULD have a layer, the schema's
//!   `minItems: 1` says MUST, and image-spec#1058 was closed pointing at the SHOULD; Docker
//!   writes `"layers": []` for `FROM scratch` images. `layers` must be present, an array.
//! - Configs are parsed only for the image config media types (OCI and Docker); any other
//!   config media type is opaque, as the spec requires. Docker configs get the type rules but
//!   not the required fields (Docker's format is older and looser: buildkit writes
//!   `"rootfs": {}` for an image without layers).
//! - Index nesting is limited to [`MAX_INDEX_NESTING`] levels.
//!
//! Each refusal is an [`OciError::SpecViolation`] naming the blob (digest, media type) and the
//! rule, with the JSON path of the offending value.

use oci_spec::image::{Descriptor, ImageConfiguration};
use serde_json::{Map, Value};

use super::descriptor::media_type_of;
use super::error::{OciError, OciResult};
use super::graph::{DocumentKind, DOCKER_MANIFEST, OCI_ARTIFACT_MANIFEST};
use crate::traits::Digest;

/// Indexes nested deeper than this are refused. Real layouts nest one or two (`index.json`
/// names an index that names manifests; `skopeo copy --all` and buildx attestations stay
/// there); eight leaves room for tools that wrap indexes in indexes, and stops a hostile chain
/// (a hundred indexes, each one small) long before it costs anything.
pub const MAX_INDEX_NESTING: usize = 8;

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The largest value of the schema's `int64` sizes.
const MAX_SIZE: u64 = i64::MAX as u64;

/// A broken rule: what is wrong, at which JSON path.
type Rule = Result<(), String>;

/// Whether blobs of this media type are image configs, which a strict walk reads and checks.
pub fn is_image_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// Checks a manifest, index or artifact manifest (already verified against its digest).
pub fn validate_document(
    kind: DocumentKind,
    media_type: &str,
    digest: &Digest,
    bytes: &[u8],
) -> OciResult<()> {
    document_rules(kind, media_type, bytes).map_err(|rule| violation(digest, media_type, rule))
}

/// Checks an image config (OCI or Docker; see [`is_image_config`]).
pub fn validate_config(media_type: &str, digest: &Digest, bytes: &[u8]) -> OciResult<()> {
    config_rules(media_type == OCI_CONFIG, bytes)
        .map_err(|rule| violation(digest, media_type, rule))
}

/// Checks a descriptor that does not come from a document: an entry of a layout's
/// `index.json` or a pre-1.0 ref file, in the form it was parsed into.
pub fn validate_root_descriptor(descriptor: &Descriptor, digest: &Digest) -> OciResult<()> {
    let value = serde_json::to_value(descriptor).expect("a descriptor always serializes");
    descriptor_rules(&value, "").map_err(|rule| {
        let rule = format!("as the layout's index names it: {rule}");
        violation(digest, &media_type_of(descriptor), rule)
    })
}

/// The refusal of a document nested too deep.
pub fn too_deep(digest: &Digest, media_type: &str, level: usize) -> OciError {
    violation(
        digest,
        media_type,
        format!("it is an index nested {level} levels deep, over the limit of {MAX_INDEX_NESTING}"),
    )
}

fn violation(digest: &Digest, media_type: &str, rule: String) -> OciError {
    OciError::SpecViolation {
        digest: digest.clone(),
        media_type: media_type.to_string(),
        rule,
    }
}

fn document_rules(kind: DocumentKind, media_type: &str, bytes: &[u8]) -> Rule {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON: {e}"))?;
    let document = object(&value, "the document")?;
    if kind != DocumentKind::ArtifactManifest {
        schema_version(document)?;
    }
    if let Some(own) = document.get("mediaType") {
        media_type_value(own, "mediaType")?;
    }
    let artifact_type = match document.get("artifactType") {
        Some(value) => Some(media_type_value(value, "artifactType")?),
        None => None,
    };
    if let Some(subject) = document.get("subject") {
        descriptor_rules(subject, "subject")?;
    }
    if let Some(annotations) = document.get("annotations") {
        string_map(annotations, "annotations")?;
    }
    match kind {
        DocumentKind::Manifest => {
            let config = required(document, "config", "")?;
            descriptor_rules(config, "config")?;
            let layers = required(document, "layers", "")?;
            descriptor_array(layers, "layers")?;
            let config_type = config.get("mediaType").and_then(Value::as_str);
            if media_type != DOCKER_MANIFEST
                && config_type == Some(OCI_EMPTY)
                && artifact_type.is_none()
            {
                return Err(format!(
                    "config.mediaType is {OCI_EMPTY}, which requires an artifactType"
                ));
            }
        }
        DocumentKind::Index => {
            let manifests = required(document, "manifests", "")?;
            descriptor_array(manifests, "manifests")?;
        }
        DocumentKind::ArtifactManifest => {
            debug_assert_eq!(media_type, OCI_ARTIFACT_MANIFEST);
            if let Some(blobs) = document.get("blobs") {
                descriptor_array(blobs, "blobs")?;
            }
        }
        DocumentKind::Leaf => {}
    }
    Ok(())
}

fn schema_version(document: &Map<String, Value>) -> Rule {
    match required(document, "schemaVersion", "")? {
        Value::Number(number) if number.as_u64() == Some(2) => Ok(()),
        other => Err(format!(
            "schemaVersion is {other}, it must be the integer 2"
        )),
    }
}

fn descriptor_array(value: &Value, path: &str) -> Rule {
    for (position, item) in array(value, path)?.iter().enumerate() {
        descriptor_rules(item, &format!("{path}[{position}]"))?;
    }
    Ok(())
}

/// The content descriptor schema, plus `platform` where an index entry has one.
fn descriptor_rules(value: &Value, path: &str) -> Rule {
    let descriptor = object(value, path)?;
    media_type_value(
        required(descriptor, "mediaType", path)?,
        &join(path, "mediaType"),
    )?;
    let size_path = join(path, "size");
    let size = match required(descriptor, "size", path)? {
        Value::Number(number) => number
            .as_u64()
            .filter(|size| *size <= MAX_SIZE)
            .ok_or_else(|| format!("{size_path} is {number}, it must be an integer from 0"))?,
        other => return Err(format!("{size_path} is {other}, it must be an integer")),
    };
    let digest_path = join(path, "digest");
    let digest = string(required(descriptor, "digest", path)?, &digest_path)?;
    digest_shape(digest).map_err(|reason| format!("{digest_path} {digest:?} {reason}"))?;
    if let Some(urls) = descriptor.get("urls") {
        let urls_path = join(path, "urls");
        for (position, url) in array(urls, &urls_path)?.iter().enumerate() {
            let url_path = format!("{urls_path}[{position}]");
            let url = string(url, &url_path)?;
            uri_shape(url).map_err(|reason| format!("{url_path} {url:?} {reason}"))?;
        }
    }
    if let Some(data) = descriptor.get("data") {
        let data_path = join(path, "data");
        embedded_data(string(data, &data_path)?, digest, size)
            .map_err(|reason| format!("{data_path} {reason}"))?;
    }
    if let Some(artifact_type) = descriptor.get("artifactType") {
        media_type_value(artifact_type, &join(path, "artifactType"))?;
    }
    if let Some(annotations) = descriptor.get("annotations") {
        string_map(annotations, &join(path, "annotations"))?;
    }
    if let Some(platform) = descriptor.get("platform") {
        platform_rules(platform, &join(path, "platform"))?;
    }
    Ok(())
}

fn platform_rules(value: &Value, path: &str) -> Rule {
    let platform = object(value, path)?;
    string(
        required(platform, "architecture", path)?,
        &join(path, "architecture"),
    )?;
    string(required(platform, "os", path)?, &join(path, "os"))?;
    optional_string(platform, "os.version", path)?;
    optional_string(platform, "variant", path)?;
    for name in ["os.features", "features"] {
        if let Some(features) = platform.get(name) {
            string_array(features, &join(path, name))?;
        }
    }
    Ok(())
}

/// The config schema and `Env` as `NAME=VALUE`; for OCI configs also the required fields and
/// oci-spec's own [`ImageConfiguration`] as the final word on the shape.
fn config_rules(oci: bool, bytes: &[u8]) -> Rule {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON: {e}"))?;
    let config = object(&value, "the config")?;
    let present = |name: &str| config.get(name).filter(|v| !v.is_null());
    for name in ["author", "architecture", "os", "variant", "os.version"] {
        if let Some(value) = present(name) {
            string(value, name)?;
        }
    }
    if let Some(created) = present("created") {
        date_time(created, "created")?;
    }
    if let Some(features) = present("os.features") {
        string_array(features, "os.features")?;
    }
    if let Some(execution) = present("config") {
        execution_rules(execution)?;
    }
    if let Some(rootfs) = present("rootfs") {
        let rootfs_object = object(rootfs, "rootfs")?;
        if let Some(kind) = rootfs_object.get("type").filter(|v| !v.is_null()) {
            if string(kind, "rootfs.type")? != "layers" {
                return Err(format!("rootfs.type is {kind}, it must be \"layers\""));
            }
        }
        if let Some(diff_ids) = rootfs_object.get("diff_ids").filter(|v| !v.is_null()) {
            string_array(diff_ids, "rootfs.diff_ids")?;
        }
    }
    if let Some(history) = present("history") {
        for (position, entry) in array(history, "history")?.iter().enumerate() {
            history_rules(entry, &format!("history[{position}]"))?;
        }
    }
    if oci {
        for name in ["architecture", "os", "rootfs"] {
            present(name).ok_or_else(|| format!("{name} is required"))?;
        }
        let rootfs = &config["rootfs"];
        for name in ["type", "diff_ids"] {
            rootfs
                .get(name)
                .filter(|v| !v.is_null())
                .ok_or_else(|| format!("rootfs.{name} is required"))?;
        }
        serde_json::from_value::<ImageConfiguration>(value.clone())
            .map_err(|e| format!("it does not parse as an image config: {e}"))?;
    }
    Ok(())
}

/// `config`: the execution parameters.
fn execution_rules(value: &Value) -> Rule {
    let execution = object(value, "config")?;
    let present = |name: &str| execution.get(name).filter(|v| !v.is_null());
    for name in ["User", "WorkingDir", "StopSignal"] {
        if let Some(value) = present(name) {
            string(value, &format!("config.{name}"))?;
        }
    }
    for name in ["Entrypoint", "Cmd"] {
        if let Some(value) = present(name) {
            string_array(value, &format!("config.{name}"))?;
        }
    }
    for name in ["ExposedPorts", "Volumes"] {
        if let Some(value) = present(name) {
            object_map(value, &format!("config.{name}"))?;
        }
    }
    if let Some(labels) = present("Labels") {
        string_map(labels, "config.Labels")?;
    }
    if let Some(escaped) = present("ArgsEscaped") {
        if !escaped.is_boolean() {
            return Err(format!(
                "config.ArgsEscaped is {escaped}, it must be a boolean"
            ));
        }
    }
    if let Some(env) = present("Env") {
        for (position, entry) in array(env, "config.Env")?.iter().enumerate() {
            let path = format!("config.Env[{position}]");
            let entry = string(entry, &path)?;
            match entry.split_once('=') {
                Some((name, _)) if !name.is_empty() => {}
                _ => return Err(format!("{path} {entry:?} is not of the form NAME=VALUE")),
            }
        }
    }
    Ok(())
}

fn history_rules(value: &Value, path: &str) -> Rule {
    let entry = object(value, path)?;
    let present = |name: &str| entry.get(name).filter(|v| !v.is_null());
    for name in ["author", "created_by", "comment"] {
        if let Some(value) = present(name) {
            string(value, &join(path, name))?;
        }
    }
    if let Some(created) = present("created") {
        date_time(created, &join(path, "created"))?;
    }
    if let Some(empty) = present("empty_layer") {
        if !empty.is_boolean() {
            return Err(format!(
                "{path}.empty_layer is {empty}, it must be a boolean"
            ));
        }
    }
    Ok(())
}

// ---- JSON shapes ----

fn join(path: &str, name: &str) -> String {
    match path {
        "" => name.to_string(),
        _ => format!("{path}.{name}"),
    }
}

fn required<'v>(
    object: &'v Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<&'v Value, String> {
    object
        .get(name)
        .ok_or_else(|| format!("{} is required", join(path, name)))
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{path} is {}, it must be an object", kind_of(value)))
}

fn array<'v>(value: &'v Value, path: &str) -> Result<&'v Vec<Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{path} is {}, it must be an array", kind_of(value)))
}

fn string<'v>(value: &'v Value, path: &str) -> Result<&'v str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("{path} is {}, it must be a string", kind_of(value)))
}

fn optional_string(object: &Map<String, Value>, name: &str, path: &str) -> Rule {
    match object.get(name) {
        Some(value) => string(value, &join(path, name)).map(|_| ()),
        None => Ok(()),
    }
}

fn string_array(value: &Value, path: &str) -> Rule {
    for (position, item) in array(value, path)?.iter().enumerate() {
        string(item, &format!("{path}[{position}]"))?;
    }
    Ok(())
}

/// An object whose values are strings (annotations, labels).
fn string_map(value: &Value, path: &str) -> Rule {
    for (key, item) in object(value, path)? {
        string(item, &format!("{path}[{key:?}]"))?;
    }
    Ok(())
}

/// An object whose values are objects (Go's `map[string]struct{}`: ports, volumes).
fn object_map(value: &Value, path: &str) -> Rule {
    for (key, item) in object(value, path)? {
        object(item, &format!("{path}[{key:?}]"))?;
    }
    Ok(())
}

/// A short description of a JSON value for messages: its type, and the value when small.
fn kind_of(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => return "an array".to_string(),
        Value::Object(_) => return "an object".to_string(),
    };
    let text = value.to_string();
    match text.len() <= 40 {
        true => format!("{kind} ({text})"),
        false => kind.to_string(),
    }
}

// ---- string grammars ----

fn media_type_value<'v>(value: &'v Value, path: &str) -> Result<&'v str, String> {
    let media_type = string(value, path)?;
    media_type_shape(media_type).map_err(|reason| format!("{path} {media_type:?} {reason}"))?;
    Ok(media_type)
}

/// RFC 6838 section 4.2 as the image-spec's schema writes it: `type/subtype`, each 1 to 127
/// characters, the first a letter or digit, the rest letters, digits or `!#$&^_.+-`.
pub fn media_type_shape(media_type: &str) -> Rule {
    let Some((kind, subtype)) = media_type.split_once('/') else {
        return Err("has no subtype (RFC 6838: type/subtype)".to_string());
    };
    for (part, name) in [(kind, "type"), (subtype, "subtype")] {
        let bytes = part.as_bytes();
        match bytes.first() {
            None => return Err(format!("has an empty {name} (RFC 6838)")),
            Some(first) if !first.is_ascii_alphanumeric() => {
                return Err(format!(
                    "has a {name} that starts with {:?}, not a letter or digit (RFC 6838)",
                    *first as char
                ))
            }
            Some(_) => {}
        }
        if bytes.len() > 127 {
            return Err(format!(
                "has a {name} of {} characters, over 127 (RFC 6838)",
                bytes.len()
            ));
        }
        if let Some(bad) = bytes
            .iter()
            .find(|b| !(b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(b)))
        {
            return Err(format!(
                "has {:?} in its {name}, a character RFC 6838 does not allow",
                *bad as char
            ));
        }
    }
    Ok(())
}

/// The descriptor schema's digest pattern: `algorithm:encoded`, the algorithm lowercase
/// components joined by one of `+._-`, the encoded part `[a-zA-Z0-9=_-]+`. (Whether the store
/// knows the algorithm is checked where the digest is parsed.)
fn digest_shape(digest: &str) -> Rule {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err("has no algorithm (algorithm:encoded)".to_string());
    };
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if !algorithm.split(['+', '.', '_', '-']).all(component) {
        return Err(format!("has an invalid algorithm {algorithm:?}"));
    }
    if encoded.is_empty()
        || !encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
    {
        return Err("has an invalid encoded part".to_string());
    }
    Ok(())
}

/// An absolute URI of RFC 3986: a scheme, `:`, then only characters a URI may hold, with
/// every `%` starting an escape of two hex digits.
fn uri_shape(uri: &str) -> Rule {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("is not a URI: it has no scheme (RFC 3986)".to_string());
    };
    let mut scheme_bytes = scheme.bytes();
    let scheme_ok = scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(format!(
            "is not a URI: {scheme:?} is not a scheme (RFC 3986)"
        ));
    }
    let bytes = rest.as_bytes();
    let mut position = 0;
    while position < bytes.len() {
        let byte = bytes[position];
        if byte == b'%' {
            let escape = bytes.get(position + 1..position + 3);
            if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return Err("is not a URI: a % is not followed by two hex digits".to_string());
            }
            position += 3;
            continue;
        }
        if !(byte.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&byte)) {
            return Err(format!(
                "is not a URI: {:?} is not allowed in a URI (RFC 3986)",
                byte as char
            ));
        }
        position += 1;
    }
    Ok(())
}

/// `data`: standard base64 with padding, whose decoded bytes are the content the descriptor
/// names (the spec says they MUST be identical).
fn embedded_data(data: &str, digest: &str, size: u64) -> Rule {
    let decoded = decode_base64(data).ok_or("is not base64 (standard alphabet, padded)")?;
    if decoded.len() as u64 != size {
        return Err(format!(
            "decodes to {} bytes, the descriptor says {size}",
            decoded.len()
        ));
    }
    // Checked only for algorithms the store knows; others are refused where parsed.
    if let Ok(expected) = Digest::parse(digest) {
        let actual = Digest::of_bytes(expected.algorithm(), &decoded);
        if actual != expected {
            return Err(format!("decodes to content that hashes to {actual}"));
        }
    }
    Ok(())
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |b: u8| -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.chunks(4).count();
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let padding = chunk.iter().rev().take_while(|b| **b == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != chunks) {
            return None;
        }
        let mut group = 0u32;
        for byte in &chunk[..4 - padding] {
            group = group << 6 | value(*byte)?;
        }
        group <<= 6 * padding as u32;
        let decoded = [(group >> 16) as u8, (group >> 8) as u8, group as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t`, `z` and a space for
/// `T` accepted, as RFC 3339 allows).
fn date_time(value: &Value, path: &str) -> Rule {
    let text = string(value, path)?;
    let refuse = || format!("{path} {text:?} is not an RFC 3339 date-time");
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    let at =
        |position: usize, allowed: &[u8]| bytes.get(position).is_some_and(|b| allowed.contains(b));
    let shape = digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt ")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19);
    if !shape {
        return Err(refuse());
    }
    let mut position = 19;
    if at(position, b".") {
        let fraction = bytes[position + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if fraction == 0 {
            return Err(refuse());
        }
        position += 1 + fraction;
    }
    let zone_ok = match bytes.get(position) {
        Some(b'Z' | b'z') => position + 1 == bytes.len(),
        Some(b'+' | b'-') => {
            position + 6 == bytes.len()
                && digits(position + 1..position + 3)
                && at(position + 3, b":")
                && digits(position + 4..position + 6)
        }
        _ => false,
    };
    if !zone_ok {
        return Err(refuse());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_grammar_follows_rfc_6838() {
        for valid in [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            &format!("{}/{}", "a".repeat(127), "b".repeat(127)),
        ] {
            assert_eq!(media_type_shape(valid), Ok(()), "{valid}");
        }
        for invalid in [
            "application",
            "",
            "/json",
            "application/",
            "+application/json",
            "application/.json",
            "application/json; charset=utf-8",
            &format!("{}/json", "a".repeat(128)),
            &format!("application/{}", "b".repeat(128)),
        ] {
            assert!(media_type_shape(invalid).is_err(), "{invalid}");
        }
    }

    #[test]
    fn uris_digests_dates_and_base64() {
        assert!(uri_shape("https://example.com/layer.tar?x=1#f").is_ok());
        assert!(uri_shape("https://example.com/a%20b").is_ok());
        for bad in [
            "value",
            "https://exa mple.com",
            "1http://x",
            "http://x/%zz",
            "://x",
        ] {
            assert!(uri_shape(bad).is_err(), "{bad}");
        }
        assert!(digest_shape("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564").is_ok());
        for bad in [
            "sha256",
            ":abc",
            "sha256:",
            "SHA256:abc",
            "sha256++x:abc",
            "sha256:a/b",
        ] {
            assert!(digest_shape(bad).is_err(), "{bad}");
        }
        for good in [
            "2015-10-31T22:22:56.015925234Z",
            "2023-01-01T00:00:00+02:00",
            "0001-01-01T00:00:00Z",
        ] {
            assert!(date_time(&Value::from(good), "created").is_ok(), "{good}");
        }
        for bad in [
            "yesterday",
            "2015-10-31",
            "2015-10-31T22:22:56",
            "2015-10-31T22:22:56.Z",
        ] {
            assert!(date_time(&Value::from(bad), "created").is_err(), "{bad}");
        }
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("e30=").as_deref(), Some(&b"{}"[..]));
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        for bad in ["aGVsbG8", "aGV=bG8=", "a===", "!!!!"] {
            assert!(decode_base64(bad).is_none(), "{bad}");
        }
    }
}
