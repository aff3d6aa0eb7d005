//! What a store holds, without what differs between two correct runs of the same work (times,
//! versions, random lease ids' values): two runs that should end alike compare equal.

use serde::{Deserialize, Serialize};

use oci_store::Store;

/// Extra-data types whose values hold times.
const TIMED_EXTRA: &[&str] = &["appc.info", "appc.last-used", "store.last-used"];
/// Key/value types whose values hold times.
const TIMED_DATA: &[&str] = &[
    "oci.lease",
    "oci.import",
    "store.operation",
    "store.last-used",
];

/// (data type, key, referenced blob, value unless timed).
pub type DataEntry = (String, String, Option<String>, Option<Vec<u8>>);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// (digest, size, media type) of each index record.
    pub records: Vec<(String, u64, String)>,
    /// (digest, data type, value unless timed).
    pub extra_data: Vec<(String, String, Option<Vec<u8>>)>,
    pub data: Vec<DataEntry>,
    /// Digests of stored content.
    pub content: Vec<String>,
    /// Every name in the appc tree cache (`trees/appc`), leftovers included.
    pub trees: Vec<String>,
}

impl Snapshot {
    pub fn of(store: &Store) -> Result<Snapshot, String> {
        let dump = store
            .dump()
            .map_err(|e| format!("dumping the store: {e}"))?;
        let mut snapshot = Snapshot {
            records: dump
                .records
                .iter()
                .map(|r| (r.digest.to_string(), r.size, r.media_type.clone()))
                .collect(),
            extra_data: dump
                .extra_data
                .into_iter()
                .map(|(digest, data_type, value)| {
                    let value = (!TIMED_EXTRA.contains(&data_type.as_str())).then_some(value);
                    (digest.to_string(), data_type, value)
                })
                .collect(),
            data: dump
                .data
                .into_iter()
                .map(|(data_type, key, entry)| {
                    let value =
                        (!TIMED_DATA.contains(&data_type.as_str())).then(|| entry.value.clone());
                    let blob = entry.blob.as_ref().map(std::string::ToString::to_string);
                    (data_type, key, blob, value)
                })
                .collect(),
            content: dump
                .content
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            trees: tree_names(store),
        };
        snapshot.records.sort();
        snapshot.extra_data.sort();
        snapshot.data.sort();
        snapshot.content.sort();
        Ok(snapshot)
    }

    /// What differs, for a failure message (empty when equal).
    pub fn differences(&self, reference: &Snapshot) -> Vec<String> {
        fn diff<T: std::fmt::Debug + PartialEq>(
            what: &str,
            got: &[T],
            want: &[T],
            out: &mut Vec<String>,
        ) {
            for item in got.iter().filter(|item| !want.contains(item)) {
                out.push(format!("{what} not in the clean run: {item:?}"));
            }
            for item in want.iter().filter(|item| !got.contains(item)) {
                out.push(format!("{what} missing (the clean run has it): {item:?}"));
            }
        }
        let mut out = Vec::new();
        diff("record", &self.records, &reference.records, &mut out);
        diff(
            "extra data",
            &self.extra_data,
            &reference.extra_data,
            &mut out,
        );
        diff("key/value entry", &self.data, &reference.data, &mut out);
        diff("content", &self.content, &reference.content, &mut out);
        diff("tree cache entry", &self.trees, &reference.trees, &mut out);
        out
    }
}

fn tree_names(store: &Store) -> Vec<String> {
    let dir = store.dir().join("trees").join("appc");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
