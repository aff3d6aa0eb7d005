//! The little URL handling the client needs: splitting `scheme://authority/path?query`, and
//! resolving a `Location` header against the URL it came with.

/// `(scheme, authority)` of an absolute URL.
pub fn scheme_and_authority(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    Some((scheme, authority))
}

/// The host of an absolute URL's authority (without port, brackets or user info).
pub fn host(url: &str) -> Option<String> {
    let (_, authority) = scheme_and_authority(url)?;
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    Some(super::reference::host_of(authority).to_ascii_lowercase())
}

/// `location` resolved against `base`: absolute as is, `/path` on `base`'s origin, anything
/// else relative to `base`'s directory.
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let Some((scheme, authority)) = scheme_and_authority(base) else {
        return location.to_string();
    };
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path_end = base.find('?').unwrap_or(base.len());
    let directory = &base[..path_end];
    let directory = &directory[..directory.rfind('/').map_or(directory.len(), |i| i + 1)];
    format!("{directory}{location}")
}

/// `url` with `name=value` added to its query (value percent-encoded).
pub fn with_query(url: &str, name: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{name}={}", encode(value))
}

/// Percent-encodes everything but the unreserved characters.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_locations() {
        let base = "http://127.0.0.1:5000/v2/app/blobs/uploads/";
        assert_eq!(
            resolve(base, "/v2/app/blobs/uploads/x?_state=1"),
            "http://127.0.0.1:5000/v2/app/blobs/uploads/x?_state=1"
        );
        assert_eq!(resolve(base, "https://s3/x"), "https://s3/x");
        assert_eq!(
            resolve(base, "x"),
            "http://127.0.0.1:5000/v2/app/blobs/uploads/x"
        );
        assert_eq!(
            host("https://User@Example.com:443/x").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            with_query("http://h/p?a=1", "digest", "sha256:ab"),
            "http://h/p?a=1&digest=sha256%3Aab"
        );
    }
}
