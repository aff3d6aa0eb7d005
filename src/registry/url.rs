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

/// Where a request goes, as far as trusting it with credentials is concerned: scheme, host
/// and port (the scheme's default port when the URL names none). Two URLs are the same
/// server only when all three are equal: another port of the same host can be another
/// program, and `http` is not `https`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

/// The origin of an absolute `http`/`https` URL; `None` for anything else (another scheme, a
/// port that is not a number), which then gets no credentials.
pub fn origin(url: &str) -> Option<Origin> {
    let (scheme, authority) = scheme_and_authority(url)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let after_host = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(_, after)| after)?,
        None => authority.find(':').map_or("", |i| &authority[i..]),
    };
    let port = match after_host {
        "" | ":" => default_port,
        text => text.strip_prefix(':')?.parse().ok()?,
    };
    Some(Origin {
        host: super::reference::host_of(authority).to_ascii_lowercase(),
        scheme,
        port,
    })
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

    #[test]
    fn origins_are_scheme_host_and_port() {
        let origin = |url| origin(url).map(|o| format!("{} {} {}", o.scheme, o.host, o.port));
        assert_eq!(
            origin("https://Registry.Example/v2/").as_deref(),
            Some("https registry.example 443")
        );
        assert_eq!(
            origin("https://registry.example:443/v2/"),
            origin("https://registry.example/v2/")
        );
        assert_eq!(
            origin("http://127.0.0.1:5000/v2/x?y").as_deref(),
            Some("http 127.0.0.1 5000")
        );
        assert_eq!(
            origin("http://u:p@[::1]:8080/x").as_deref(),
            Some("http ::1 8080")
        );
        assert_eq!(origin("http://[::1]/x").as_deref(), Some("http ::1 80"));
        assert_ne!(
            origin("http://registry.example/v2/"),
            origin("https://registry.example/v2/")
        );
        assert_ne!(
            origin("http://127.0.0.1:5000/v2/"),
            origin("http://127.0.0.1:5001/v2/")
        );
        assert_eq!(origin("ftp://registry.example/x"), None);
        assert_eq!(origin("http://registry.example:port/x"), None);
        assert_eq!(origin("http://registry.example:99999/x"), None);
    }
}
