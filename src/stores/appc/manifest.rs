//! The ImageManifest of an ACI, parsed and validated more strictly than actool: every rule has
//! a stable name (`manifest.name`, `labels.os`, …) that a refusal reports.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::syntax::*;
use crate::traits::{Algorithm, Digest};

/// Largest manifest accepted (rkt and actool read it whole, so do we: bounded).
pub const MAX_MANIFEST_SIZE: u64 = 1 << 20;

/// The `os` label values the spec allows, with the `arch` values allowed for each.
pub const OS_ARCH_TABLE: &[(&str, &[&str])] = &[
    (
        "linux",
        &[
            "amd64",
            "i386",
            "aarch64",
            "aarch64_be",
            "armv6l",
            "armv7l",
            "armv7b",
            "ppc64",
            "ppc64le",
            "s390x",
        ],
    ),
    ("freebsd", &["amd64", "i386", "arm"]),
    ("darwin", &["x86_64", "i386"]),
];

/// Isolator types the spec defines; others are refused.
pub const KNOWN_ISOLATORS: &[&str] = &[
    "resource/block-bandwidth",
    "resource/block-iops",
    "resource/cpu",
    "resource/memory",
    "resource/network-bandwidth",
    "os/linux/capabilities-retain-set",
    "os/linux/capabilities-remove-set",
    "os/linux/no-new-privileges",
    "os/linux/seccomp-remove-set",
    "os/linux/seccomp-retain-set",
    "os/linux/oom-score-adj",
    "os/linux/cpu-shares",
    "os/linux/selinux-context",
    "os/unix/sysctl",
];

/// An appc label (`version`, `os`, `arch`, ...): a name and its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The label's name, an AC identifier.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// An image another image depends on (the manifest's `dependencies`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The dependency's image name.
    #[serde(default)]
    pub image_name: String,
    /// Its image ID (`sha512-...`), when the manifest pins one.
    #[serde(default, rename = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The labels it must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    /// Its size in bytes, when the manifest gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    #[serde(default)]
    pub exec: Vec<String>,
    #[serde(default)]
    pub event_handlers: Vec<EventHandler>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default, rename = "supplementaryGIDs")]
    pub supplementary_gids: Vec<u32>,
    #[serde(default)]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub environment: Vec<NameValue>,
    #[serde(default)]
    pub mount_points: Vec<MountPoint>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub isolators: Vec<Isolator>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHandler {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub exec: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub port: u64,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub socket_activated: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Isolator {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: Value,
}

/// The fields of an ImageManifest this store uses or checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// `acKind`: must be `ImageManifest`.
    #[serde(default)]
    pub ac_kind: String,
    /// `acVersion`: the appc spec version the manifest follows (SemVer).
    #[serde(default)]
    pub ac_version: String,
    /// `name`: the image name, an AC identifier such as `example.com/app`.
    #[serde(default)]
    pub name: String,
    /// `labels`: name/value pairs such as `version`, `os`, `arch`.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// `app`: how to run the image, if it is runnable.
    #[serde(default)]
    pub app: Option<App>,
    /// `annotations`: free-form name/value metadata.
    #[serde(default)]
    pub annotations: Vec<NameValue>,
    /// `dependencies`: the images this one is layered on, lowest first.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// `pathWhitelist`: if not empty, the only paths of the rendered tree kept (absolute paths).
    #[serde(default)]
    pub path_whitelist: Vec<String>,
}

/// A broken rule: its stable name and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule's stable name.
    pub rule: &'static str,
    /// What was found.
    pub detail: String,
}

fn violation(rule: &'static str, detail: impl Into<String>) -> Result<(), Violation> {
    Err(Violation {
        rule,
        detail: detail.into(),
    })
}

impl ImageManifest {
    /// Parses and validates a manifest's bytes.
    pub fn parse(bytes: &[u8]) -> Result<(ImageManifest, Value), Violation> {
        let raw: Value = serde_json::from_slice(bytes).map_err(|e| Violation {
            rule: "manifest.json",
            detail: format!("not valid JSON: {e}"),
        })?;
        if !raw.is_object() {
            violation("manifest.json", "the manifest is not a JSON object")?;
        }
        let manifest: ImageManifest =
            serde_json::from_value(raw.clone()).map_err(|e| Violation {
                rule: "manifest.schema",
                detail: format!("a field has the wrong type: {e}"),
            })?;
        manifest.validate()?;
        Ok((manifest, raw))
    }

    /// Checks the manifest against the appc rules (kind, SemVer version, AC identifier names,
    /// labels, annotations, dependencies, whitelist, app); the first rule broken is returned.
    pub fn validate(&self) -> Result<(), Violation> {
        if self.ac_kind != "ImageManifest" {
            violation(
                "manifest.acKind",
                format!("acKind is {:?}, must be \"ImageManifest\"", self.ac_kind),
            )?;
        }
        if let Some(problem) = semver_problem(&self.ac_version) {
            violation(
                "manifest.acVersion",
                format!("acVersion {:?} is not a SemVer: {problem}", self.ac_version),
            )?;
        }
        if !is_ac_identifier(&self.name) {
            violation(
                "manifest.name",
                format!("name {:?} is not an AC identifier", self.name),
            )?;
        }
        validate_labels(&self.labels, "labels")?;
        validate_annotations(&self.annotations)?;
        for dependency in &self.dependencies {
            validate_dependency(dependency)?;
        }
        for path in &self.path_whitelist {
            if !is_clean_absolute_path(path) {
                violation(
                    "manifest.pathWhitelist",
                    format!("pathWhitelist entry {path:?} is not an absolute path without `..`"),
                )?;
            }
        }
        if let Some(app) = &self.app {
            validate_app(app)?;
        }
        Ok(())
    }

    /// The value of label `name`, if the manifest has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    /// The labels as a name-to-value map.
    pub fn labels_map(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    }
}

/// Labels of an image or of a dependency: AC identifier names, unique, none called `name`,
/// `os` and `arch` from the spec's table.
fn validate_labels(labels: &[Label], place: &str) -> Result<(), Violation> {
    let mut seen = HashSet::new();
    for label in labels {
        if !is_ac_identifier(&label.name) {
            violation(
                "labels.name",
                format!(
                    "{place}: label name {:?} is not an AC identifier",
                    label.name
                ),
            )?;
        }
        if label.name == "name" {
            violation(
                "labels.reserved",
                format!("{place}: a label may not be called \"name\""),
            )?;
        }
        if !seen.insert(label.name.as_str()) {
            violation(
                "labels.unique",
                format!("{place}: label {:?} appears twice", label.name),
            )?;
        }
    }
    let get = |name: &str| labels.iter().find(|l| l.name == name).map(|l| &l.value);
    if let Some(os) = get("os") {
        let Some((_, arches)) = OS_ARCH_TABLE.iter().find(|(name, _)| name == os) else {
            let known: Vec<&str> = OS_ARCH_TABLE.iter().map(|(name, _)| *name).collect();
            return violation(
                "labels.os",
                format!("{place}: os {os:?} is not one of {}", known.join(", ")),
            );
        };
        if let Some(arch) = get("arch") {
            if !arches.contains(&arch.as_str()) {
                violation(
                    "labels.arch",
                    format!(
                        "{place}: arch {arch:?} is not valid for os {os}: one of {}",
                        arches.join(", ")
                    ),
                )?;
            }
        }
    }
    Ok(())
}

fn validate_annotations(annotations: &[NameValue]) -> Result<(), Violation> {
    let mut seen = HashSet::new();
    for annotation in annotations {
        if !is_ac_identifier(&annotation.name) {
            violation(
                "annotations.name",
                format!(
                    "annotation name {:?} is not an AC identifier",
                    annotation.name
                ),
            )?;
        }
        if !seen.insert(annotation.name.as_str()) {
            violation(
                "annotations.unique",
                format!("annotation {:?} appears twice", annotation.name),
            )?;
        }
        match annotation.name.as_str() {
            "created" if !is_rfc3339(&annotation.value) => violation(
                "annotations.created",
                format!("created {:?} is not an RFC 3339 date", annotation.value),
            )?,
            "homepage" | "documentation" if !is_http_url(&annotation.value) => violation(
                "annotations.url",
                format!(
                    "{} {:?} is not an http(s) URL",
                    annotation.name, annotation.value
                ),
            )?,
            _ => {}
        }
    }
    Ok(())
}

fn validate_dependency(dependency: &Dependency) -> Result<(), Violation> {
    if dependency.image_name.is_empty() {
        violation("dependencies.imageName", "a dependency has no imageName")?;
    }
    if !is_ac_identifier(&dependency.image_name) {
        violation(
            "dependencies.imageName",
            format!(
                "dependency name {:?} is not an AC identifier",
                dependency.image_name
            ),
        )?;
    }
    if let Some(id) = &dependency.image_id {
        if parse_image_id(id).is_none() {
            violation(
                "dependencies.imageID",
                format!(
                    "dependency {}: imageID {id:?} is not sha512- and 128 hex digits",
                    dependency.image_name
                ),
            )?;
        }
    }
    validate_labels(
        &dependency.labels,
        &format!("dependency {}", dependency.image_name),
    )
}

/// An image ID as the spec writes it: `sha512-` and the full lowercase hex digest.
pub fn parse_image_id(text: &str) -> Option<Digest> {
    let hex = text.strip_prefix("sha512-")?;
    if hex.len() != Algorithm::Sha512.hex_len() {
        return None;
    }
    Digest::parse(text)
        .ok()
        .filter(|d| d.algorithm() == Algorithm::Sha512)
}

fn validate_app(app: &App) -> Result<(), Violation> {
    if let Some(first) = app.exec.first() {
        if !first.starts_with('/') {
            violation(
                "app.exec",
                format!("exec starts with {first:?}, not an absolute path"),
            )?;
        }
    }
    if app.user.as_deref().unwrap_or("").is_empty() {
        violation("app.user", "app.user is required")?;
    }
    if app.group.as_deref().unwrap_or("").is_empty() {
        violation("app.group", "app.group is required")?;
    }
    if let Some(dir) = &app.working_directory {
        if !dir.is_empty() && !is_clean_absolute_path(dir) {
            violation(
                "app.workingDirectory",
                format!("workingDirectory {dir:?} is not an absolute path"),
            )?;
        }
    }
    let mut handlers = HashSet::new();
    for handler in &app.event_handlers {
        if !matches!(handler.name.as_str(), "pre-start" | "post-stop") {
            violation(
                "app.eventHandlers",
                format!(
                    "event handler {:?} is not pre-start or post-stop",
                    handler.name
                ),
            )?;
        }
        if !handlers.insert(handler.name.as_str()) {
            violation(
                "app.eventHandlers",
                format!("event handler {} appears twice", handler.name),
            )?;
        }
        if handler.exec.is_empty() {
            violation(
                "app.eventHandlers",
                format!("event handler {} has an empty exec", handler.name),
            )?;
        }
    }
    let mut names = HashSet::new();
    for variable in &app.environment {
        if !is_environment_name(&variable.name) {
            violation(
                "app.environment",
                format!("environment variable name {:?} is not valid", variable.name),
            )?;
        }
        if !names.insert(variable.name.as_str()) {
            violation(
                "app.environment",
                format!("environment variable {} appears twice", variable.name),
            )?;
        }
    }
    let mut ports = HashSet::new();
    for port in &app.ports {
        if !is_ac_name(&port.name) {
            violation(
                "app.ports",
                format!("port name {:?} is not an AC name", port.name),
            )?;
        }
        if !ports.insert(port.name.as_str()) {
            violation("app.ports", format!("port {} appears twice", port.name))?;
        }
        if port.protocol.is_empty() {
            violation("app.ports", format!("port {} has no protocol", port.name))?;
        }
        if !(1..=65535).contains(&port.port) {
            violation(
                "app.ports",
                format!("port {}: {} is not in 1-65535", port.name, port.port),
            )?;
        }
        if let Some(count) = port.count {
            if count == 0 || port.port + count - 1 > 65535 {
                violation(
                    "app.ports",
                    format!("port {}: count {count} leaves 1-65535", port.name),
                )?;
            }
        }
    }
    let mut mounts = HashSet::new();
    for mount in &app.mount_points {
        if !is_ac_name(&mount.name) {
            violation(
                "app.mountPoints",
                format!("mount point name {:?} is not an AC name", mount.name),
            )?;
        }
        if !mounts.insert(mount.name.as_str()) {
            violation(
                "app.mountPoints",
                format!("mount point {} appears twice", mount.name),
            )?;
        }
        if !is_clean_absolute_path(&mount.path) {
            violation(
                "app.mountPoints",
                format!(
                    "mount point {}: path {:?} is not absolute",
                    mount.name, mount.path
                ),
            )?;
        }
    }
    let mut isolators = HashSet::new();
    for isolator in &app.isolators {
        if !KNOWN_ISOLATORS.contains(&isolator.name.as_str()) {
            violation(
                "app.isolators",
                format!("isolator {:?} is not one the spec defines", isolator.name),
            )?;
        }
        if isolator.value.is_null() {
            violation(
                "app.isolators",
                format!("isolator {} has no value", isolator.name),
            )?;
        }
        if !isolators.insert(isolator.name.as_str()) && isolator.name != "os/unix/sysctl" {
            violation(
                "app.isolators",
                format!("isolator {} appears twice", isolator.name),
            )?;
        }
    }
    Ok(())
}
