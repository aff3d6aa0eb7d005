//! Image references: `REGISTRY/REPOSITORY[:TAG][@DIGEST]`, with the distribution spec's grammar
//! for repository names and tags, spelled as docker, skopeo and crane spell them. The library's
//! [`Reference::parse`] wants the registry written; [`Reference::parse_with_default`] takes a
//! short name (`alpine`, `team/app:1`) as one of a default registry (the command line's
//! `default_registry` setting, `docker.io` unless configured, with Docker Hub's `library/`).
//! `name:tag@digest` pulls the digest and keeps the tag as the name.

use std::fmt;

use super::error::{RegistryError, RegistryResult};
use crate::traits::Digest;

/// What a reference names in its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    Digest(Digest),
}

impl Target {
    /// The path segment of `/v2/<name>/manifests/<reference>`.
    pub fn as_path(&self) -> String {
        match self {
            Target::Tag(tag) => tag.clone(),
            Target::Digest(digest) => digest.to_string(),
        }
    }
}

/// An image reference: `REGISTRY/REPOSITORY[:TAG|@DIGEST]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written.
    pub registry: String,
    /// The repository path, e.g. `library/alpine`.
    pub repository: String,
    /// The tag or digest named (`latest` when neither was written).
    pub target: Target,
    /// The tag written beside a digest (`name:tag@digest`): the digest decides what is
    /// fetched, the tag is kept to name it.
    pub kept_tag: Option<String>,
}

impl Reference {
    /// Parses `REGISTRY/REPO[:TAG][@DIGEST]`; without a tag or digest the tag is `latest`.
    pub fn parse(text: &str) -> RegistryResult<Reference> {
        Reference::parse_with_default(text, None)
    }

    /// Parses `[REGISTRY/]REPO[:TAG][@DIGEST]`: a first component that is not a registry
    /// host (no `.` or `:`, not `localhost`) means `default_registry`, when one is given.
    pub fn parse_with_default(
        text: &str,
        default_registry: Option<&str>,
    ) -> RegistryResult<Reference> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(invalid(&format!(
                "a reference has no URL scheme: leave out {scheme}:// and write \
                 HOST[:PORT]/REPOSITORY[:TAG] (plain HTTP is used for a loopback registry, or \
                 with --insecure)"
            )));
        }
        let (registry, rest) = match text.split_once('/') {
            Some((first, rest)) if is_registry(first) => (first, rest),
            _ => match default_registry {
                Some(default) => (default, text),
                None => {
                    return Err(invalid(if text.contains('/') {
                        "the first component must be a registry host[:port] (with a '.' or \
                         ':', or localhost)"
                    } else {
                        "expected REGISTRY/REPOSITORY[:TAG][@DIGEST]"
                    }))
                }
            },
        };
        let (rest, digest) = match rest.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest).map_err(|e| invalid(&e.to_string()))?;
                (rest, Some(digest))
            }
            None => (rest, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => {
                if !is_tag(tag) {
                    return Err(invalid(&format!(
                        "tag {tag:?} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"
                    )));
                }
                (name, Some(tag.to_string()))
            }
            _ => (rest, None),
        };
        let (target, kept_tag) = match (digest, tag) {
            (Some(digest), tag) => (Target::Digest(digest), tag),
            (None, Some(tag)) => (Target::Tag(tag), None),
            (None, None) => (Target::Tag("latest".to_string()), None),
        };
        // Docker Hub's official images live under `library/`.
        let name = match registry {
            "docker.io" | "index.docker.io" if !name.contains('/') => format!("library/{name}"),
            _ => name.to_string(),
        };
        let name = name.as_str();
        if !is_repository(name) {
            return Err(invalid(&format!(
                "repository {name:?} must be lowercase components of [a-z0-9] joined by ., _, __ \
                 or -, separated by /"
            )));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: name.to_string(),
            target,
            kept_tag,
        })
    }

    /// The name a pulled image is stored under by default: the reference as written, fully
    /// qualified; `name:tag@digest` keeps `name:tag`.
    pub fn ref_name(&self) -> String {
        match &self.kept_tag {
            Some(tag) => format!("{}/{}:{tag}", self.registry, self.repository),
            None => self.to_string(),
        }
    }

    /// The same repository, another target.
    pub fn with_target(&self, target: Target) -> Reference {
        Reference {
            target,
            kept_tag: None,
            ..self.clone()
        }
    }

    /// The host without the port, for the loopback check.
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match &self.target {
            Target::Tag(tag) => write!(f, ":{tag}"),
            Target::Digest(digest) => write!(f, "@{digest}"),
        }
    }
}

/// `host` of `host[:port]`, `[v6]:port` included.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether plain HTTP may be used without `--insecure`: the traffic never leaves the host.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Whether `text` reads as a registry `host[:port]`: it has a `.` or `:`, or is `localhost`.
pub fn is_registry_host(text: &str) -> bool {
    is_registry(text)
}

fn is_registry(text: &str) -> bool {
    !text.is_empty()
        && (text.contains('.') || text.contains(':') || text == "localhost")
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
}

fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b))
}

fn is_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(is_path_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut position = 0;
    while position < bytes.len() {
        if alnum(&bytes[position]) {
            position += 1;
            continue;
        }
        let start = position;
        while position < bytes.len() && !alnum(&bytes[position]) {
            position += 1;
        }
        let separator = &component[start..position];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_digests_and_ports() {
        let r = Reference::parse("127.0.0.1:5000/team/app:v1.2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.target, Target::Tag("v1.2".into()));
        assert_eq!(r.host(), "127.0.0.1");
        let r = Reference::parse("localhost/app").unwrap();
        assert_eq!(r.target, Target::Tag("latest".into()));
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("example.com/app@{digest}")).unwrap();
        assert_eq!(r.target, Target::Digest(Digest::parse(&digest).unwrap()));
        assert_eq!(r.to_string(), format!("example.com/app@{digest}"));
        let hub = Reference::parse("docker.io/alpine:3").unwrap();
        assert_eq!(hub.repository, "library/alpine");
    }

    #[test]
    fn refuses_what_the_grammar_refuses() {
        for bad in [
            "app:1",
            "example.com/App:1",
            "example.com/app:-x",
            "example.com/a//b",
            "example.com/app@sha256:xyz",
            "example.com/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn name_tag_at_digest_pulls_the_digest_and_keeps_the_tag() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/demo/main:small@{digest}")).unwrap();
        assert_eq!(r.repository, "demo/main");
        assert_eq!(r.target, Target::Digest(Digest::parse(&digest).unwrap()));
        assert_eq!(r.ref_name(), "127.0.0.1:5000/demo/main:small");
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/demo/main@{digest}"));
    }

    #[test]
    fn short_names_take_the_default_registry() {
        let r = Reference::parse_with_default("alpine", Some("docker.io")).unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        let r = Reference::parse_with_default("team/app:1", Some("registry.example")).unwrap();
        assert_eq!(r.to_string(), "registry.example/team/app:1");
        let r = Reference::parse_with_default("localhost:5000/app", Some("docker.io")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert!(Reference::parse_with_default("alpine", None).is_err());
    }

    #[test]
    fn a_url_scheme_is_refused_as_such() {
        let error = Reference::parse_with_default("http://127.0.0.1:5000/app:1", Some("docker.io"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no URL scheme"), "{error}");
        assert!(!error.contains("lowercase"), "{error}");
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("10.0.0.1"));
        assert_eq!(host_of("[::1]:5000"), "::1");
    }
}
