//! How the distribution API's repositories and tags map onto the store's refs (documented for
//! users in docs/SERVE.md, "Names").
//!
//! A ref is split at the last `:` after its last `/`: `REPO:TAG`, or a bare `REPO`, which is
//! `REPO:latest`. A `REPO` whose first component is a registry host (it has a `.` or a `:`, or
//! is `localhost`: what `pull HOST/REPO:TAG` stores) is also reachable without its host, as
//! containerd asks a mirror (`/v2/REPO/...?ns=HOST`). Names the distribution grammar cannot
//! express (upper case, `@`, ...) are reachable by digest only.

use std::collections::BTreeMap;

use super::error::ApiError;

/// Longest repository name accepted (the distribution spec's recommended limit of 255
/// characters for the whole `host/name`, with room for the host).
const MAX_REPOSITORY_LEN: usize = 255;
/// Longest tag (the spec's grammar: 128 characters).
const MAX_TAG_LEN: usize = 128;

/// Checks a repository name against the distribution spec's grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn validate_repository(name: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| ApiError::name_invalid(name, why);
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_REPOSITORY_LEN {
        return Err(invalid("longer than 255 characters"));
    }
    for component in name.split('/') {
        if !is_path_component(component) {
            return Err(invalid(
                "each /-separated component is lower-case letters and digits, joined by \
                 '.', '_', '__' or dashes",
            ));
        }
    }
    Ok(())
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alphanum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alphanum(first) || !alphanum(last) {
        return false;
    }
    // Separators between alphanumerics: one '.', one or two '_', or any number of '-'.
    let mut run: Vec<u8> = Vec::new();
    for b in bytes {
        if alphanum(b) {
            let valid_run = run.is_empty()
                || run == b"."
                || run == b"_"
                || run == b"__"
                || run.iter().all(|c| *c == b'-');
            if !valid_run {
                return false;
            }
            run.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            run.push(*b);
        } else {
            return false;
        }
    }
    true
}

/// Whether `tag` is a tag by the spec's grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    !bytes.is_empty()
        && bytes.len() <= MAX_TAG_LEN
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(allowed)
}

/// Whether a ref's first component names a registry host rather than a path.
fn is_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

/// Where one ref appears in the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefPlace {
    /// The repositories it is listed under (the full one, and without its host).
    pub repositories: Vec<String>,
    /// Its tag.
    pub tag: String,
}

/// The repositories and tag a ref appears under, or `None` when the distribution grammar
/// cannot express it (it stays reachable by digest).
pub fn place_of(ref_name: &str) -> Option<RefPlace> {
    let last_slash = ref_name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match ref_name[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (&ref_name[..colon], &ref_name[colon + 1..])
        }
        None => (ref_name, "latest"),
    };
    if !is_tag(tag) {
        return None;
    }
    let mut repositories = Vec::new();
    if validate_repository(repository).is_ok() {
        repositories.push(repository.to_string());
    }
    if let Some((host, rest)) = repository.split_once('/') {
        if is_host(host) && validate_repository(rest).is_ok() {
            repositories.push(rest.to_string());
        }
    }
    (!repositories.is_empty()).then(|| RefPlace {
        repositories,
        tag: tag.to_string(),
    })
}

/// The refs that may answer `repository:tag`, most specific first: with containerd's
/// `?ns=HOST`, `HOST/REPO:TAG`; then `REPO:TAG`; for `latest`, a bare `REPO`.
pub fn candidates(repository: &str, tag: &str, namespace: Option<&str>) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(host) = namespace {
        names.push(format!("{host}/{repository}:{tag}"));
    }
    names.push(format!("{repository}:{tag}"));
    if tag == "latest" {
        names.push(repository.to_string());
    }
    names
}

/// The ref a push of `repository:tag` writes.
pub fn ref_for_push(repository: &str, tag: &str) -> String {
    format!("{repository}:{tag}")
}

/// Every repository with its tags, each tag naming the ref it comes from, from a list of
/// ref names. When two refs give one repository the same tag (`REPO:TAG` and `HOST/REPO:TAG`
/// under `REPO`), the one a request would find first wins: the shorter name.
pub fn repositories(
    ref_names: impl IntoIterator<Item = String>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for name in ref_names {
        let Some(place) = place_of(&name) else {
            continue;
        };
        for repository in place.repositories {
            let tags = repositories.entry(repository).or_default();
            let keep_existing = tags
                .get(&place.tag)
                .is_some_and(|existing| existing.len() <= name.len());
            if !keep_existing {
                tags.insert(place.tag.clone(), name.clone());
            }
        }
    }
    repositories
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_follow_the_spec_grammar() {
        for valid in [
            "a",
            "library/alpine",
            "a.b_c__d---e/f0",
            "docker.io/library/x",
        ] {
            assert!(validate_repository(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "",
            "A",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a b",
            "..",
            "a/../b",
            "localhost:5000/a",
        ] {
            assert!(validate_repository(invalid).is_err(), "{invalid}");
        }
        assert!(validate_repository(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        assert!(
            is_tag("latest") && is_tag("_x") && is_tag("v1.0-rc_2") && is_tag(&"a".repeat(128))
        );
        assert!(
            !is_tag("")
                && !is_tag(".x")
                && !is_tag("-x")
                && !is_tag("a:b")
                && !is_tag(&"a".repeat(129))
        );
    }

    #[test]
    fn refs_are_placed_by_their_last_colon() {
        let place = |name| place_of(name).map(|p| (p.repositories, p.tag));
        let owned = |names: &[&str]| names.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(place("alpine:3"), Some((owned(&["alpine"]), "3".into())));
        assert_eq!(
            place("img-00001"),
            Some((owned(&["img-00001"]), "latest".into()))
        );
        assert_eq!(
            place("localhost:5000/demo/main:small"),
            Some((owned(&["demo/main"]), "small".into()))
        );
        assert_eq!(
            place("docker.io/library/alpine:3"),
            Some((
                owned(&["docker.io/library/alpine", "library/alpine"]),
                "3".into()
            ))
        );
        assert_eq!(place("Upper:1"), None);
        assert_eq!(place("example.com/app@v2"), None);
    }

    #[test]
    fn a_request_tries_the_namespace_then_the_plain_name() {
        assert_eq!(
            candidates("library/alpine", "latest", Some("docker.io")),
            [
                "docker.io/library/alpine:latest",
                "library/alpine:latest",
                "library/alpine"
            ]
        );
        assert_eq!(candidates("demo", "v1", None), ["demo:v1"]);
    }

    #[test]
    fn every_placed_ref_is_found_again_by_its_place() {
        let names = [
            "alpine:3",
            "img-1",
            "localhost:5000/demo/main:small",
            "docker.io/library/alpine:3",
        ];
        let listed = repositories(names.iter().map(ToString::to_string));
        for (repository, tags) in &listed {
            for (tag, name) in tags {
                let found = candidates(repository, tag, None).contains(name)
                    || place_of(name).is_some_and(|p| p.repositories.contains(repository));
                assert!(found, "{name} under {repository}:{tag}");
            }
        }
        assert_eq!(
            listed["demo/main"]["small"],
            "localhost:5000/demo/main:small"
        );
    }
}
