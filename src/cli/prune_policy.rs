//! Retention policies as people write them, on the command line (`prune --until 7d`) and in
//! `[prune]` of the config file (`until = "7d"`): one parser for both, so a value means the
//! same wherever it is written.
//!
//! ```toml
//! [prune]
//! until = "30d"            # refs unused for longer may go
//! keep_last = 3            # the 3 most recently used of each repository stay
//! max_size = "50GiB"       # the store's budget
//! min_free = "10%"         # or "20GiB": free space to keep on the file system
//! high_watermark = "85%"   # start above 85% of the file system used...
//! low_watermark = "80%"    # ...and stop at 80% (default: 5 points under high)
//! filter = ["docker.io/*"] # only refs matching may go
//! after_pull = true        # `pull` prunes after a pull that succeeded
//! interval = "10m"         # `serve` prunes this often (and when a push fills the disk)
//! ```

use crate::store::retention::{FreeSpace, RetentionPolicy, Watermarks};

use super::duration::parse_duration;

/// The `[prune]` keys that are policies, in the order `config show` lists them.
pub const POLICY_KEYS: [&str; 7] = [
    "until",
    "keep_last",
    "max_size",
    "min_free",
    "high_watermark",
    "low_watermark",
    "filter",
];

/// Policies written key by key: checked as each is given, assembled by [`PolicyText::build`].
#[derive(Debug, Default, Clone)]
pub struct PolicyText {
    policy: RetentionPolicy,
    high: Option<f64>,
    low: Option<f64>,
}

impl PolicyText {
    /// Reads one policy: `key` as in the config file, `text` as typed (a `filter` may be given
    /// several times, or once with patterns separated by commas).
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), String> {
        let policy = &mut self.policy;
        match key {
            "until" => {
                let ms = parse_duration(text)?;
                policy.unused_for = Some(std::time::Duration::from_millis(ms.unsigned_abs()));
            }
            "keep_last" => {
                policy.keep_last = Some(text.parse::<usize>().map_err(|_| {
                    format!("{text:?} is not a count: give a whole number such as 3")
                })?);
            }
            "max_size" => policy.max_size = Some(parse_size(text)?),
            "min_free" => policy.min_free = Some(parse_free_space(text)?),
            "high_watermark" => self.high = Some(parse_percent(text)?),
            "low_watermark" => self.low = Some(parse_percent(text)?),
            "filter" => policy.filters.extend(
                text.split(',')
                    .map(str::trim)
                    .filter(|pattern| !pattern.is_empty())
                    .map(str::to_string),
            ),
            other => return Err(format!("{other:?} is not a prune policy")),
        }
        Ok(())
    }

    /// The policy, with its watermarks checked together.
    pub fn build(mut self) -> Result<RetentionPolicy, String> {
        self.policy.watermarks = match (self.high, self.low) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err("a low watermark needs a high one (high_watermark)".to_string())
            }
            (Some(high), low) => {
                let low = low.unwrap_or((high - 5.0).max(0.0));
                if low > high {
                    return Err(format!(
                        "the low watermark ({low}%) is above the high one ({high}%)"
                    ));
                }
                Some(Watermarks {
                    high_percent: high,
                    low_percent: low,
                })
            }
        };
        Ok(self.policy)
    }

    /// Whether any key was set.
    pub fn is_empty(&self) -> bool {
        self.policy == RetentionPolicy::default() && self.high.is_none() && self.low.is_none()
    }
}

/// `500`, `20KB`, `1.5GiB`, `10G`: bytes, decimal (kB, MB, GB, TB) or binary (KiB, MiB, GiB,
/// TiB, and K, M, G, T as Docker reads them) units.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("{text:?} is not a size such as 500MB, 20GiB or 1073741824");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(invalid()),
    };
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = (value * multiplier as f64).round();
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

/// `12%` of the file system, or a size.
pub fn parse_free_space(text: &str) -> Result<FreeSpace, String> {
    if text.trim_end().ends_with('%') {
        return parse_percent(text).map(FreeSpace::Percent);
    }
    parse_size(text).map(FreeSpace::Bytes)
}

/// `85%` or `85`: a percentage from 0 to 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    text.trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|percent| (0.0..=100.0).contains(percent))
        .ok_or_else(|| format!("{text:?} is not a percentage from 0 to 100 such as 85%"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_decimal_and_binary_units() {
        assert_eq!(parse_size("500").unwrap(), 500);
        assert_eq!(parse_size("20KB").unwrap(), 20_000);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("2 tb").unwrap(), 2_000_000_000_000);
        for bad in ["", "GiB", "-1", "1.2.3M", "10 parsecs"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policies_are_checked_as_written_and_watermarks_together() {
        let mut text = PolicyText::default();
        assert!(text.is_empty());
        text.set("until", "7d").unwrap();
        text.set("keep_last", "2").unwrap();
        text.set("min_free", "10%").unwrap();
        text.set("filter", "docker.io/*, quay.io/*").unwrap();
        text.set("high_watermark", "90%").unwrap();
        let policy = text.clone().build().unwrap();
        assert_eq!(
            policy.unused_for,
            Some(std::time::Duration::from_secs(7 * 86400))
        );
        assert_eq!(policy.keep_last, Some(2));
        assert_eq!(policy.min_free, Some(FreeSpace::Percent(10.0)));
        assert_eq!(policy.filters, ["docker.io/*", "quay.io/*"]);
        assert_eq!(policy.watermarks.unwrap().low_percent, 85.0);

        text.set("low_watermark", "95").unwrap();
        assert!(text.build().unwrap_err().contains("above the high one"));
        let mut low_only = PolicyText::default();
        low_only.set("low_watermark", "50%").unwrap();
        assert!(low_only.build().is_err());
        assert!(PolicyText::default().set("keep_last", "two").is_err());
        assert!(PolicyText::default().set("high_watermark", "120%").is_err());
        assert!(PolicyText::default().set("sometimes", "x").is_err());
    }
}
