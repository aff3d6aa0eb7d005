//! The small grammars of the App Container spec, checked by hand (no regex engine needed):
//! AC identifiers, AC names, SemVer, RFC 3339 dates, http(s) URLs, environment names.

/// An AC identifier: `^[a-z0-9]+([-._~/][a-z0-9]+)*$`. Runs of alphanumerics joined by single
/// separators, so `a..b`, `a//b`, `-a` and `a/` are refused.
pub fn is_ac_identifier(text: &str) -> bool {
    is_joined_runs(text, b"-._~/")
}

/// An AC name (port and mount point names): `^[a-z0-9]+([-][a-z0-9]+)*$`.
pub fn is_ac_name(text: &str) -> bool {
    is_joined_runs(text, b"-")
}

fn is_joined_runs(text: &str, separators: &[u8]) -> bool {
    let mut previous_was_separator = true; // at the start a separator is not allowed
    for byte in text.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() {
            previous_was_separator = false;
        } else if separators.contains(&byte) && !previous_was_separator {
            previous_was_separator = true;
        } else {
            return false;
        }
    }
    !text.is_empty() && !previous_was_separator
}

/// SemVer 2.0.0: `MAJOR.MINOR.PATCH[-pre][+build]`, numbers without leading zeros; `0.0.0` is
/// refused, as the spec's `acVersion` may not be zero.
pub fn semver_problem(text: &str) -> Option<&'static str> {
    let (version, build) = match text.split_once('+') {
        Some((version, build)) => (version, Some(build)),
        None => (text, None),
    };
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() != 3 || !numbers.iter().all(|n| is_numeric_identifier(n)) {
        return Some("not MAJOR.MINOR.PATCH with numbers without leading zeros");
    }
    let dotted_ok = |part: &str, numeric_rule: bool| {
        part.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!numeric_rule
                    || !id.bytes().all(|b| b.is_ascii_digit())
                    || is_numeric_identifier(id))
        })
    };
    if pre.is_some_and(|pre| !dotted_ok(pre, true)) {
        return Some("bad pre-release part");
    }
    if build.is_some_and(|build| !dotted_ok(build, false)) {
        return Some("bad build metadata");
    }
    if numbers.iter().all(|n| *n == "0") {
        return Some("a version may not be zero");
    }
    None
}

fn is_numeric_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.len() <= 18
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, fields in range.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return false;
        }
        rest = &fraction[count..];
    }
    match rest {
        "Z" | "z" => true,
        offset if offset.len() == 6 && matches!(offset.as_bytes()[0], b'+' | b'-') => {
            let o = offset.as_bytes();
            o[3] == b':'
                && o[1..3].iter().chain(&o[4..6]).all(u8::is_ascii_digit)
                && offset[1..3].parse::<u32>().is_ok_and(|h| h <= 23)
                && offset[4..6].parse::<u32>().is_ok_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// An absolute `http` or `https` URL with a host and no whitespace.
pub fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let Some(rest) = rest else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An environment variable name: `^[A-Za-z_][A-Za-z_0-9.-]*$`.
pub fn is_environment_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// An absolute path with no `..` component.
pub fn is_clean_absolute_path(text: &str) -> bool {
    text.starts_with('/') && !text.split('/').any(|part| part == "..") && !text.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ac_identifiers_follow_the_spec_regex() {
        for good in ["a", "example.com/app", "a-b_c~d/e.f", "0"] {
            assert!(is_ac_identifier(good), "{good}");
        }
        for bad in ["", "a..b", "a//b", "-a", "a/", "A", "a b", "a_", "é"] {
            assert!(!is_ac_identifier(bad), "{bad}");
        }
        assert!(is_ac_name("http-port"));
        assert!(!is_ac_name("http.port"));
    }

    #[test]
    fn semver_refuses_zero_and_leading_zeros() {
        assert_eq!(semver_problem("0.8.11"), None);
        assert_eq!(semver_problem("1.0.0-rc.1+build.5"), None);
        for bad in ["0.0.0", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "x"] {
            assert!(semver_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn dates_and_urls() {
        assert!(is_rfc3339("2016-02-29T12:30:00Z"));
        assert!(is_rfc3339("2016-02-28T12:30:00.123+01:00"));
        for bad in [
            "2015-02-29T00:00:00Z",
            "2016-13-01T00:00:00Z",
            "yesterday",
            "2016-01-01",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
        assert!(is_http_url("https://example.com/x"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("https://"));
    }
}
