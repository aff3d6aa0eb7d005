//! Ref names, validated by the image-spec grammar of `org.opencontainers.image.ref.name`:
//!
//! ```text
//! ref       ::= component ("/" component)*
//! component ::= alphanum (separator alphanum)*
//! alphanum  ::= [A-Za-z0-9]+
//! separator ::= [-._:@+] | "--"
//! ```
//!
//! So `latest`, `v1.0`, `nginx:latest` and `example.com/app@v2` are valid; `..`, `a//b`,
//! `-x`, `a---b` and `a b` are not.

use std::fmt;

use super::error::{OciError, OciResult};

/// Longest ref name accepted; well under the key/value key limit.
pub const MAX_REF_NAME_LEN: usize = 1024;

/// A valid ref name (the image-spec's `org.opencontainers.image.ref.name` grammar, at most
/// 1024 bytes), e.g. `latest`, `nginx:latest`, `example.com/app@v2`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefName(String);

impl RefName {
    /// Validates `name`; [`OciError::InvalidRefName`] naming the rule when it breaks the grammar.
    pub fn parse(name: &str) -> OciResult<RefName> {
        validate(name).map_err(|reason| OciError::InvalidRefName {
            name: name.to_string(),
            reason,
        })?;
        Ok(RefName(name.to_string()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty".to_string());
    }
    if name.len() > MAX_REF_NAME_LEN {
        return Err(format!("longer than {MAX_REF_NAME_LEN} bytes"));
    }
    for component in name.split('/') {
        validate_component(component)?;
    }
    Ok(())
}

fn validate_component(component: &str) -> Result<(), String> {
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return Err("empty path component (leading, trailing or double '/')".to_string());
    }
    let mut position = 0;
    // alphanum (separator alphanum)*
    position = expect_alphanum(component, position)?;
    while position < bytes.len() {
        position = expect_separator(component, position)?;
        position = expect_alphanum(component, position)?;
    }
    Ok(())
}

fn expect_alphanum(component: &str, start: usize) -> Result<usize, String> {
    let bytes = component.as_bytes();
    let end = start
        + bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
    if end == start {
        let found = component[start..].chars().next();
        return Err(match found {
            Some(c) => format!("{c:?} in {component:?} must follow a letter or digit"),
            None => format!("{component:?} must end with a letter or digit"),
        });
    }
    Ok(end)
}

fn expect_separator(component: &str, start: usize) -> Result<usize, String> {
    let bytes = component.as_bytes();
    if bytes[start..].starts_with(b"--") {
        return Ok(start + 2);
    }
    if b"-._:@+".contains(&bytes[start]) {
        return Ok(start + 1);
    }
    let found = component[start..].chars().next().unwrap_or(' ');
    Err(format!(
        "{found:?} is not allowed (letters, digits and the separators - . _ : @ + --)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_grammar() {
        for name in [
            "latest",
            "v1.0",
            "nginx:latest",
            "example.com/app@v2",
            "a--b",
            "A+B_c",
            "1",
            "library/nginx:1.25-alpine",
        ] {
            assert!(RefName::parse(name).is_ok(), "{name} should be valid");
        }
    }

    #[test]
    fn refuses_what_the_grammar_does_not_produce() {
        for name in [
            "", "..", "a//b", "/a", "a/", "-x", "x-", "a---b", "a b", "a..b", "../etc", "é", "a\0b",
        ] {
            assert!(RefName::parse(name).is_err(), "{name:?} should be invalid");
        }
    }
}
