//! Durations as people type them: `30s`, `15m`, `24h`, `7d` or a number of seconds.

/// `30s`, `15m`, `24h`, `7d` or a number of seconds, as milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let (number, unit_ms) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1000),
        Some((i, 'm')) => (&text[..i], 60_000),
        Some((i, 'h')) => (&text[..i], 3_600_000),
        Some((i, 'd')) => (&text[..i], 86_400_000),
        _ => (text, 1000),
    };
    number
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(unit_ms))
        .ok_or_else(|| format!("{text:?} is not a duration such as 90s, 15m, 24h or 7d"))
}

/// Milliseconds in the largest unit that divides them exactly (`86400000` is `1d`).
pub fn format_duration(ms: i64) -> String {
    // The largest interval means "never" (`prune.last_used_interval = "off"`).
    if ms == i64::MAX {
        return "off".to_string();
    }
    for (unit, unit_ms) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms != 0 && ms % unit_ms == 0 {
            return format!("{}{unit}", ms / unit_ms);
        }
    }
    if ms == 0 {
        "0s".to_string()
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_through_their_largest_unit() {
        assert_eq!(parse_duration("24h"), Ok(86_400_000));
        assert_eq!(parse_duration("90"), Ok(90_000));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(format_duration(86_400_000), "1d");
        assert_eq!(format_duration(90_000), "90s");
        assert_eq!(format_duration(0), "0s");
    }
}
