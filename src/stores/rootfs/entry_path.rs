//! Archive entry names turned into checked relative paths: no absolute paths, no `..`, no
//! path of [`MAX_PATH_BYTES`] or more and none deeper than [`MAX_DEPTH`], the optional prefix
//! taken off. The renderer only ever opens these one component at a time.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::{RootfsError, RootfsResult};
use super::short_name::short_str;

/// Longest entry path (after normalising, relative to the target) a layer may hold, in bytes:
/// Linux's `PATH_MAX` (4096, the terminating NUL included), so every path the renderer makes
/// is one the rest of the system can name.
pub const MAX_PATH_BYTES: usize = 4095;

/// Most components an entry path may have. A path within [`MAX_PATH_BYTES`] has at most 2048
/// (`a/a/…`); the limit is stated on its own so a reader need not work it out.
pub const MAX_DEPTH: usize = 2048;

/// A path below the target: zero or more plain components (no `.`, `..`, `/` or NUL).
/// Zero components is the target itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelativePath {
    components: Vec<Vec<u8>>,
}

impl RelativePath {
    pub fn root() -> RelativePath {
        RelativePath {
            components: Vec::new(),
        }
    }

    /// Checks an archive name. `entry` is how the error names it.
    pub fn parse(name: &[u8], entry: &str) -> RootfsResult<RelativePath> {
        Self::parse_with(name, entry, false)
    }

    /// [`RelativePath::parse`] that, with `absolute_in_target`, takes a leading `/` as the
    /// target's root instead of refusing it.
    pub fn parse_with(
        name: &[u8],
        entry: &str,
        absolute_in_target: bool,
    ) -> RootfsResult<RelativePath> {
        if name.first() == Some(&b'/') && !absolute_in_target {
            return Err(RootfsError::refused(
                &short_str(entry),
                "absolute path (entries must be relative to the root)",
            ));
        }
        if name.contains(&0) {
            return Err(RootfsError::refused(
                &short_str(entry),
                "NUL byte in the path",
            ));
        }
        let mut components = Vec::new();
        let mut length = 0usize;
        for component in name.split(|&b| b == b'/') {
            match component {
                b"" | b"." => {}
                b".." => {
                    return Err(RootfsError::refused(
                        &short_str(entry),
                        "`..` component (entries may not climb out of the root)",
                    ))
                }
                plain => {
                    // Checked as we go: a name of megabytes is refused having cost no more
                    // than the limit.
                    length += plain.len() + usize::from(!components.is_empty());
                    if length > MAX_PATH_BYTES {
                        return Err(RootfsError::refused(
                            &short_str(entry),
                            format!(
                                "path too long (over {MAX_PATH_BYTES} bytes, Linux's PATH_MAX)"
                            ),
                        ));
                    }
                    if components.len() == MAX_DEPTH {
                        return Err(RootfsError::refused(
                            &short_str(entry),
                            format!("path too deep (over {MAX_DEPTH} directories)"),
                        ));
                    }
                    components.push(plain.to_vec());
                }
            }
        }
        Ok(RelativePath { components })
    }

    /// The path with `prefix` taken off; `None` when it is not under (or equal to) `prefix`.
    /// Component-wise: `rootfsevil/x` is not under `rootfs`.
    pub fn strip_prefix(&self, prefix: &RelativePath) -> Option<RelativePath> {
        if self.components.len() < prefix.components.len()
            || self.components[..prefix.components.len()] != prefix.components[..]
        {
            return None;
        }
        Some(RelativePath {
            components: self.components[prefix.components.len()..].to_vec(),
        })
    }

    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    pub fn components(&self) -> &[Vec<u8>] {
        &self.components
    }

    /// The last component; `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        self.components.last().map(Vec::as_slice)
    }

    pub fn parent(&self) -> Option<RelativePath> {
        let (_, parent) = self.components.split_last()?;
        Some(RelativePath {
            components: parent.to_vec(),
        })
    }

    /// Adds `name` at the end (the walk's one growing path).
    pub fn push(&mut self, name: &[u8]) {
        self.components.push(name.to_vec());
    }

    pub fn join(&self, name: &[u8]) -> RelativePath {
        let mut components = self.components.clone();
        components.push(name.to_vec());
        RelativePath { components }
    }

    /// `a/b/c` as bytes: the key of the "written by this layer" set. Byte order of keys puts
    /// every descendant of `a/b` in the range starting at `a/b/`.
    pub fn key(&self) -> Vec<u8> {
        self.components.join(&b'/')
    }

    pub fn to_path_buf(&self) -> PathBuf {
        Path::new(OsStr::from_bytes(&self.key())).to_path_buf()
    }
}

impl std::fmt::Display for RelativePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        f.write_str(&String::from_utf8_lossy(&self.key()))
    }
}

/// What the name of an entry means under OCI whiteout rules.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// Not a whiteout name.
    None,
    /// `.wh..wh..opq`: the parent directory hides everything lower layers put in it.
    Opaque,
    /// `.wh.NAME`: NAME of lower layers is removed.
    Remove(&'a [u8]),
    /// Another `.wh..wh.` name: aufs bookkeeping (`.wh..wh.plnk`), never content.
    Reserved,
}

pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";

pub fn classify_whiteout(name: &[u8]) -> Whiteout<'_> {
    if name == OPAQUE_WHITEOUT {
        return Whiteout::Opaque;
    }
    if name.starts_with(b".wh..wh.") {
        return Whiteout::Reserved;
    }
    match name.strip_prefix(WHITEOUT_PREFIX) {
        Some(hidden) => Whiteout::Remove(hidden),
        None => Whiteout::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> RootfsResult<RelativePath> {
        RelativePath::parse(name.as_bytes(), name)
    }

    #[test]
    fn plain_and_dot_components_normalise() {
        assert_eq!(parse("./a//b/./c/").unwrap().to_string(), "a/b/c");
        assert!(parse("./").unwrap().is_root());
    }

    #[test]
    fn absolute_and_parent_components_are_refused() {
        for name in ["/etc/passwd", "a/../../b", "..", "a/..", "../x"] {
            let error = parse(name).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
    }

    #[test]
    fn absolute_names_may_be_read_as_rooted_in_the_target() {
        let parsed = RelativePath::parse_with(b"/etc/passwd", "/etc/passwd", true).unwrap();
        assert_eq!(parsed.to_string(), "etc/passwd");
        assert!(RelativePath::parse_with(b"/", "/", true).unwrap().is_root());
        assert!(RelativePath::parse_with(b"/../etc", "/../etc", true).is_err());
    }

    #[test]
    fn prefix_is_stripped_component_wise() {
        let prefix = parse("rootfs").unwrap();
        assert_eq!(
            parse("rootfs/etc/x")
                .unwrap()
                .strip_prefix(&prefix)
                .unwrap()
                .to_string(),
            "etc/x"
        );
        assert!(parse("rootfs")
            .unwrap()
            .strip_prefix(&prefix)
            .unwrap()
            .is_root());
        assert_eq!(parse("rootfsevil/x").unwrap().strip_prefix(&prefix), None);
        assert_eq!(parse("manifest").unwrap().strip_prefix(&prefix), None);
    }

    #[test]
    fn paths_past_the_limits_are_refused_naming_a_short_prefix() {
        let within = format!("{}f", "a/".repeat(MAX_PATH_BYTES / 2 - 1));
        assert!(within.len() <= MAX_PATH_BYTES);
        assert_eq!(
            parse(&within).unwrap().components().len(),
            MAX_PATH_BYTES / 2
        );
        for (name, rule) in [
            (format!("{}f", "a/".repeat(20_000)), "too long"),
            (format!("x{}", "/".repeat(10)).repeat(3000), "too long"),
            (format!("{}/b", "x".repeat(5000)), "too long"),
        ] {
            let error = parse(&name).unwrap_err().to_string();
            assert!(error.contains(rule), "{error}");
            assert!(error.len() < 300, "{error}");
            assert!(error.contains(&name[..32]), "{error}");
        }
    }

    #[test]
    fn whiteout_names_are_classified() {
        assert_eq!(classify_whiteout(b".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(classify_whiteout(b".wh..wh.plnk"), Whiteout::Reserved);
        assert_eq!(classify_whiteout(b".wh.etc"), Whiteout::Remove(b"etc"));
        assert_eq!(classify_whiteout(b"etc"), Whiteout::None);
    }
}
