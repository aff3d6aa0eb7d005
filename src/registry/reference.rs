//! Image references: `REGISTRY/REPOSITORY[:TAG|@DIGEST]`, with the distribution spec's grammar
//! for repository names and tags. The registry part is always given (no default registry: a
//! store that caches in front of several registries must not guess which one was meant).

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
}

impl Reference {
    /// Parses `REGISTRY/REPO[:TAG|@DIGEST]`; without a tag or digest the tag is `latest`.
    pub fn parse(text: &str) -> RegistryResult<Reference> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let (registry, rest) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected REGISTRY/REPOSITORY[:TAG|@DIGEST]"))?;
        if !is_registry(registry) {
            return Err(invalid(
                "the first component must be a registry host[:port] (with a '.' or ':', or \
                 localhost)",
            ));
        }
        let (name, target) = match rest.split_once('@') {
            Some((name, digest)) => {
                let digest = Digest::parse(digest).map_err(|e| invalid(&e.to_string()))?;
                (name, Target::Digest(digest))
            }
            None => match rest.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => {
                    if !is_tag(tag) {
                        return Err(invalid(&format!(
                            "tag {tag:?} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"
                        )));
                    }
                    (name, Target::Tag(tag.to_string()))
                }
                _ => (rest, Target::Tag("latest".to_string())),
            },
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
        })
    }

    /// The same repository, another target.
    pub fn with_target(&self, target: Target) -> Reference {
        Reference {
            target,
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
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("10.0.0.1"));
        assert_eq!(host_of("[::1]:5000"), "::1");
    }
}
