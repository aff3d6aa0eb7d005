//! What a prune is asked to do: the policies, as flags and `[prune]` in the config file give
//! them.

use std::time::Duration;

use serde::Serialize;

/// Free space to keep on the store's file system.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeSpace {
    /// At least this many bytes available.
    Bytes(u64),
    /// At least this percentage of the file system available.
    Percent(f64),
}

impl FreeSpace {
    /// The bytes this asks for on a file system of `total` bytes.
    pub fn bytes_of(self, total: u64) -> u64 {
        match self {
            FreeSpace::Bytes(bytes) => bytes,
            FreeSpace::Percent(percent) => percent_of(percent, total),
        }
    }
}

/// Kubelet-style thresholds on the file system's use, in percent: above `high`, names go until
/// the use is at `low` or below.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Watermarks {
    /// Start when more than this percentage of the file system is used.
    pub high_percent: f64,
    /// Then stop once this percentage or less is used.
    pub low_percent: f64,
}

/// The policies of one prune. Several combine: protections (pins, recent use, `filters`,
/// `keep_last`) always hold; `unused_for` narrows what may go; with a size goal (`max_size`,
/// `min_free`, `watermarks`) names go least recently used first only until the goal is met,
/// without one every name that may go does.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetentionPolicy {
    /// Only names unused for longer than this may go (`--until`).
    pub unused_for: Option<Duration>,
    /// The most recently used this many names of each repository (group) stay (`--keep-last`).
    pub keep_last: Option<usize>,
    /// The store's blobs may take at most this many bytes (`--max-size`).
    pub max_size: Option<u64>,
    /// The file system must keep this much free (`--min-free`).
    pub min_free: Option<FreeSpace>,
    /// Start above the high watermark, stop at the low one.
    pub watermarks: Option<Watermarks>,
    /// When not empty, only names matching one of these patterns (`*` for any run of
    /// characters) may go (`--filter`).
    pub filters: Vec<String>,
    /// Names used within this long ago stay whatever the policies say: a use within a
    /// last-use interval may not have been written yet (`prune.last_used_interval`).
    pub recent: Duration,
}

impl RetentionPolicy {
    /// Whether any policy says something may go (filters and `recent` alone do not).
    pub fn removes_anything(&self) -> bool {
        self.unused_for.is_some() || self.keep_last.is_some() || self.has_size_goal()
    }

    /// Whether a size goal decides how much goes.
    pub fn has_size_goal(&self) -> bool {
        self.max_size.is_some() || self.min_free.is_some() || self.watermarks.is_some()
    }

    /// Whether `name` passes the filters (every name does without filters).
    pub fn selects(&self, name: &str) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|pattern| glob_matches(pattern, name))
    }
}

/// `percent` of `total`, rounded up (a threshold is met only when really met).
pub(super) fn percent_of(percent: f64, total: u64) -> u64 {
    let value = (total as f64 * percent.clamp(0.0, 100.0) / 100.0).ceil();
    if value >= u64::MAX as f64 {
        u64::MAX
    } else {
        value as u64
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (also `/`
/// and `:`) and everything else for itself.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_anything() {
        assert!(glob_matches("docker.io/*", "docker.io/library/alpine:3"));
        assert!(glob_matches("*:latest", "app:latest"));
        assert!(glob_matches("a*b*c", "abc"));
        assert!(glob_matches("a*b*c", "a-b-b-c"));
        assert!(glob_matches("exact", "exact"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("exact", "exact2"));
        assert!(!glob_matches("a*b*c", "acb"));
        assert!(!glob_matches("ab*ab", "ab"));
        assert!(!glob_matches("docker.io/*", "quay.io/x"));
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(percent_of(10.0, 1000), 100);
        assert_eq!(percent_of(33.3, 10), 4);
        assert_eq!(percent_of(150.0, 10), 10);
        assert_eq!(FreeSpace::Bytes(7).bytes_of(1), 7);
    }
}
