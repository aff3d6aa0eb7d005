//! How error messages quote a name read from an archive: names come from the input, and an
//! input may hold a name of kilobytes (a PAX path, a GNU long name up to the limits of
//! [`super::bounded_tar`]). A message shows its first [`NAME_PREFIX`] bytes and its length,
//! so it stays one readable line whatever the archive holds.

/// Bytes of a name a message shows.
pub const NAME_PREFIX: usize = 100;

/// `name` as a message shows it: whole when it has at most [`NAME_PREFIX`] bytes, otherwise
/// its first [`NAME_PREFIX`] bytes (cut back to a whole character) then `… (N bytes)`. Bytes
/// that are not UTF-8 show as U+FFFD.
pub fn short_name(name: &[u8]) -> String {
    if name.len() <= NAME_PREFIX {
        return String::from_utf8_lossy(name).into_owned();
    }
    let mut end = NAME_PREFIX;
    // Cut before a UTF-8 continuation byte, not inside a character (at most 3 steps back).
    while end > NAME_PREFIX - 3 && name[end] & 0b1100_0000 == 0b1000_0000 {
        end -= 1;
    }
    format!(
        "{}… ({} bytes)",
        String::from_utf8_lossy(&name[..end]),
        name.len()
    )
}

/// [`short_name`] of a name already decoded.
pub fn short_str(name: &str) -> String {
    short_name(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_shown_whole() {
        assert_eq!(short_name(b"rootfs/etc/hosts"), "rootfs/etc/hosts");
        let exactly = "a".repeat(NAME_PREFIX);
        assert_eq!(short_str(&exactly), exactly);
    }

    #[test]
    fn long_names_show_a_prefix_and_their_length() {
        let long = "b".repeat(5000);
        let shown = short_str(&long);
        assert_eq!(shown, format!("{}… (5000 bytes)", "b".repeat(NAME_PREFIX)));
    }

    #[test]
    fn a_character_is_not_cut_in_two() {
        // 99 ASCII bytes then `é` (2 bytes) straddling the cut.
        let name = format!("{}é{}", "c".repeat(99), "d".repeat(50));
        let shown = short_str(&name);
        assert!(shown.starts_with(&"c".repeat(99)), "{shown}");
        assert!(!shown.contains('\u{FFFD}'), "{shown}");
        assert!(shown.ends_with("… (151 bytes)"), "{shown}");
    }
}
