//! Prefix searches as range scans: every string starting with `prefix` lies in
//! `[prefix, upper_bound)`, which SQLite answers from the primary-key B-tree.

/// The smallest string greater than every string that starts with `prefix`: the prefix with its
/// last character replaced by the next Unicode scalar value. `None` when there is none (empty
/// prefix, or only `char::MAX` characters): then the range has no upper end.
///
/// Correct for SQLite's default `BINARY` collation because UTF-8 byte order is code point order
/// and UTF-8 is prefix free.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut characters: Vec<char> = prefix.chars().collect();
    while let Some(last) = characters.pop() {
        if let Some(next) = next_char(last) {
            characters.push(next);
            return Some(characters.into_iter().collect());
        }
    }
    None
}

fn next_char(character: char) -> Option<char> {
    let mut code = u32::from(character) + 1;
    while code <= u32::from(char::MAX) {
        if let Some(next) = char::from_u32(code) {
            return Some(next);
        }
        // Skips the surrogate range, which holds no characters.
        code += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_the_last_character() {
        assert_eq!(
            prefix_upper_bound("sha256:abcf").as_deref(),
            Some("sha256:abcg")
        );
        assert_eq!(prefix_upper_bound("ref/é").as_deref(), Some("ref/ê"));
        assert_eq!(
            prefix_upper_bound("a\u{d7ff}").as_deref(),
            Some("a\u{e000}")
        );
    }

    #[test]
    fn carries_over_the_largest_character_and_has_no_bound_for_empty() {
        assert_eq!(prefix_upper_bound("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10ffff}"), None);
        assert_eq!(prefix_upper_bound(""), None);
    }

    #[test]
    fn bound_orders_after_every_extension_as_bytes() {
        let prefix = "tags/v1\u{7f}";
        let bound = prefix_upper_bound(prefix).unwrap();
        for extension in ["", "a", "\u{10ffff}\u{10ffff}", "\u{80}"] {
            let key = format!("{prefix}{extension}");
            assert!(key.as_bytes() < bound.as_bytes(), "{key:?}");
            assert!(key.as_bytes() >= prefix.as_bytes());
        }
        assert!("tags/v2".as_bytes() >= bound.as_bytes());
    }
}
