//! Entry point for the bounded tar reader's fuzz target (`fuzz/`). Not a stable API; hidden
//! from the docs.

use std::io::Read;

use super::bounded_tar::{bounded_archive, BoundedTarReader, TarHeaderError, TarHeaderLimits};

/// Most bytes of entry data compared per entry: the input is small, but a header may declare
/// any size.
const MAX_COMPARED: u64 = 1 << 20;

/// One entry as read: its type, path, link name, PAX records (keys and values run together)
/// and data.
#[derive(Debug, PartialEq, Eq)]
struct ReadEntry {
    kind: u8,
    path: Vec<u8>,
    link: Option<Vec<u8>>,
    pax: Vec<u8>,
    data: Vec<u8>,
}

/// What an archive reads as: its entries, and where reading failed.
#[derive(Debug, PartialEq, Eq)]
struct Reading {
    entries: Vec<ReadEntry>,
    error: Option<String>,
}

fn read_all<R: Read>(mut archive: tar::Archive<R>) -> Reading {
    let mut reading = Reading {
        entries: Vec::new(),
        error: None,
    };
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(error) => {
            reading.error = Some(error.to_string());
            return reading;
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                reading.error = Some(error.to_string());
                break;
            }
        };
        let kind = entry.header().entry_type().as_byte();
        let path = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let pax = match entry.pax_extensions() {
            Ok(Some(records)) => records
                .filter_map(|r| r.ok())
                .fold(Vec::new(), |mut all, r| {
                    all.extend_from_slice(r.key_bytes());
                    all.extend_from_slice(r.value_bytes());
                    all
                }),
            _ => Vec::new(),
        };
        let mut data = Vec::new();
        if let Err(error) = (&mut entry).take(MAX_COMPARED).read_to_end(&mut data) {
            reading.error = Some(error.to_string());
            break;
        }
        reading.entries.push(ReadEntry {
            kind,
            path,
            link,
            pax,
            data,
        });
    }
    reading
}

/// Reads `data` as a tar through the bounded reader and, separately, straight with the `tar`
/// crate. Panics if they disagree: where the bounded reader does not refuse, both read the same
/// entries; where it refuses, every entry before the refusal is the same, and the refusal
/// names a size over its limit. Returns the number of entries read, or the refusal.
pub fn compare_bounded_and_plain(data: &[u8]) -> Result<usize, String> {
    let bounded = read_all(bounded_archive(data));
    let plain = read_all(tar::Archive::new(data));
    let refusal = bounded.error.as_ref().and_then(|_| {
        let mut archive = bounded_archive(data);
        let error = match archive.entries() {
            Err(error) => error,
            Ok(entries) => entries.filter_map(Result::err).next()?,
        };
        TarHeaderError::find(&error).cloned()
    });
    check_header_positions(data);
    match refusal {
        None => {
            assert_eq!(
                bounded, plain,
                "the bounded reader changed what the archive reads as"
            );
            Ok(bounded.entries.len())
        }
        Some(refused) => {
            let limits = TarHeaderLimits::default();
            match &refused {
                TarHeaderError::TooLarge { size, limit, .. } => {
                    assert!(size > limit, "refused within the limit: {refused}");
                    assert!(*limit == limits.long_name || *limit == limits.pax_header);
                }
                TarHeaderError::SparseMapTooLong { limit, .. } => {
                    assert_eq!(*limit, limits.sparse_extension_blocks);
                }
            }
            assert!(
                plain.entries.starts_with(&bounded.entries),
                "the entries before the refusal differ"
            );
            Err(refused.to_string())
        }
    }
}

/// Every entry the crate returns starts at a header the bounded reader saw: it follows the
/// stream's headers where the crate finds them.
fn check_header_positions(data: &[u8]) {
    let mut archive = tar::Archive::new(BoundedTarReader::recording_headers(data));
    let mut positions = Vec::new();
    if let Ok(entries) = archive.entries() {
        for entry in entries {
            let Ok(entry) = entry else { break };
            positions.push(entry.raw_header_position());
        }
    }
    let guard = archive.into_inner();
    for position in positions {
        assert!(
            guard.headers_seen().contains(&position),
            "the crate read a header at {position} that the bounded reader did not see there \
             (it saw {:?})",
            guard.headers_seen()
        );
    }
}
