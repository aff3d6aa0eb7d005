//! Printing results: text for people, or with `--json` exactly one JSON document per command.

use std::io::{self, BufWriter, IsTerminal, Read, Write};

use serde::Serialize;

use super::error::{CliError, CliResult};
use crate::store::StoreError;
use crate::util::io_context::IoContext;

/// Copy buffer for blob content on its way to stdout.
const COPY_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// One result: `value` as a JSON document, or what `human` writes.
    pub fn value<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> CliResult<()> {
        write_stdout(|out| {
            if self.json {
                serde_json::to_writer_pretty(&mut *out, value)?;
                writeln!(out)
            } else {
                human(out)
            }
        })
    }

    /// A list, printed as it is produced: a JSON array with one item per line, or one text
    /// line (or block) per item from `human`.
    pub fn list<T: Serialize>(
        &self,
        items: impl IntoIterator<Item = CliResult<T>>,
        mut human: impl FnMut(&mut dyn Write, &T) -> io::Result<()>,
    ) -> CliResult<()> {
        let stdout = io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        let mut first = true;
        if self.json {
            out.write_all(b"[").map_err(CliError::Output)?;
        }
        for item in items {
            let item = item?;
            let written = if self.json {
                let separator: &[u8] = if first { b"\n" } else { b",\n" };
                out.write_all(separator)
                    .and_then(|()| serde_json::to_writer(&mut out, &item).map_err(io::Error::from))
            } else {
                human(&mut out, &item)
            };
            written.map_err(CliError::Output)?;
            first = false;
        }
        if self.json {
            let end: &[u8] = if first { b"]\n" } else { b"\n]\n" };
            out.write_all(end).map_err(CliError::Output)?;
        }
        out.flush().map_err(CliError::Output)
    }

    /// Copies content (of the blob `source`) to stdout as it is read, never holding it whole.
    pub fn content(&self, reader: &mut dyn Read, source: &str) -> CliResult<u64> {
        let stdout = io::stdout();
        let mut out = BufWriter::with_capacity(COPY_BUFFER, stdout.lock());
        let mut buffer = vec![0u8; COPY_BUFFER];
        let mut total = 0u64;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::from(IoContext::new("reading blob", source, e)).into())
                }
            };
            out.write_all(&buffer[..read]).map_err(CliError::Output)?;
            total += read as u64;
        }
        out.flush().map_err(CliError::Output)?;
        Ok(total)
    }

    /// A stored value in text mode: its bytes exactly, so pipes get what was stored; a
    /// terminal also gets the line ended.
    pub fn write_value_bytes(out: &mut dyn Write, value: &[u8]) -> io::Result<()> {
        out.write_all(value)?;
        if io::stdout().is_terminal() && !value.ends_with(b"\n") {
            writeln!(out)?;
        }
        Ok(())
    }
}

fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> CliResult<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// A stored value in JSON: as text when it is UTF-8, else as hex.
#[derive(Debug, Clone, Serialize)]
pub struct ValueJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
}

impl ValueJson {
    pub fn new(bytes: &[u8]) -> ValueJson {
        match std::str::from_utf8(bytes) {
            Ok(text) => ValueJson {
                value: Some(text.to_string()),
                value_hex: None,
            },
            Err(_) => ValueJson {
                value: None,
                value_hex: Some(hex::encode(bytes)),
            },
        }
    }
}

/// A value on one line of text output: control characters and invalid UTF-8 escaped.
pub fn value_on_one_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

/// `1234567 bytes (1.2 MiB)`.
pub fn bytes_with_unit(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut scaled = bytes as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{bytes} bytes ({scaled:.1} {})", UNITS[unit])
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC (`2024-05-01T12:00:00.000Z`).
pub fn unix_ms_as_rfc3339(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm), so the
/// tool needs no date library for one timestamp.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps_in_utc() {
        assert_eq!(unix_ms_as_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            unix_ms_as_rfc3339(1_709_210_096_789),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(unix_ms_as_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn sizes_get_a_unit_from_one_kibibyte() {
        assert_eq!(bytes_with_unit(1023), "1023 bytes");
        assert_eq!(bytes_with_unit(1536), "1536 bytes (1.5 KiB)");
        assert_eq!(bytes_with_unit(3 << 30), "3221225472 bytes (3.0 GiB)");
    }

    #[test]
    fn binary_values_become_hex_in_json() {
        let text = serde_json::to_value(ValueJson::new(b"hi")).unwrap();
        assert_eq!(text, serde_json::json!({"value": "hi"}));
        let binary = serde_json::to_value(ValueJson::new(&[0xff, 0x00])).unwrap();
        assert_eq!(binary, serde_json::json!({"value_hex": "ff00"}));
    }
}
