//! Finding images: by key (full ID, rkt's 71-character form, a unique prefix of at least
//! `sha512-` and 2 hex digits, or a name) and by name and labels.

use super::error::{AppcError, AppcResult};
use super::info::ImageInfo;
use super::syntax::is_ac_identifier;
use super::{AppcStore, HOLDER};
use crate::traits::{Algorithm, Digest};

/// Shortest ID prefix accepted after `sha512-`.
pub const MIN_KEY_HEX: usize = 2;
/// Shortest bare hex ID prefix (without `sha512-`), as the OCI commands' digest prefixes.
pub const MIN_BARE_HEX: usize = 4;
/// Most candidates an ambiguity error lists.
const AMBIGUOUS_LIST_LIMIT: usize = 10;

/// Labels a lookup asks for: every one must match.
pub type LabelQuery = Vec<(String, String)>;

/// Orders of `ls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// By image ID (`id`).
    Id,
    /// By image name (`name`).
    Name,
    /// By `version` label, images without one first (`version`).
    Version,
    /// Oldest import first (`import-time`, `imported`).
    ImportTime,
    /// Least recently used first, never-used images first (`last-used`, `used`).
    LastUsed,
    /// Smallest first (`size`).
    Size,
}

impl std::str::FromStr for SortKey {
    type Err = AppcError;
    fn from_str(text: &str) -> AppcResult<SortKey> {
        Ok(match text {
            "id" => SortKey::Id,
            "name" => SortKey::Name,
            "version" => SortKey::Version,
            "import-time" | "imported" => SortKey::ImportTime,
            "last-used" | "used" => SortKey::LastUsed,
            "size" => SortKey::Size,
            other => {
                return Err(AppcError::Invalid(format!(
                    "sort key {other:?}: use id, name, version, import-time, last-used or size"
                )))
            }
        })
    }
}

impl AppcStore<'_> {
    /// The image a key names: an ID or ID prefix (`sha512-…`), else an image name (the image
    /// `get NAME` would choose).
    pub fn resolve_key(&self, key: &str) -> AppcResult<Digest> {
        let id_part = key
            .strip_prefix("sha512-")
            .or_else(|| key.strip_prefix("sha512:"));
        // Bare hex (`b10fdc`), as the OCI commands take digests: an ID prefix when an image
        // has it, else a name (an image may be called `cafe`).
        let bare_hex = key.len() >= MIN_BARE_HEX
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match id_part {
            Some(hex) => self.resolve_id_prefix(key, hex),
            None if bare_hex => match self.resolve_id_prefix(key, key) {
                Err(AppcError::ImageNotFound(_)) if is_ac_identifier(key) => {
                    Ok(self.find(key, &[])?.digest()?)
                }
                other => other,
            },
            None if is_ac_identifier(key) => Ok(self.find(key, &[])?.digest()?),
            None => Err(AppcError::InvalidKey {
                key: key.to_string(),
                reason: "neither sha512-<hex> nor an image name".to_string(),
            }),
        }
    }

    fn resolve_id_prefix(&self, key: &str, hex: &str) -> AppcResult<Digest> {
        let valid_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid_hex || hex.len() < MIN_KEY_HEX || hex.len() > Algorithm::Sha512.hex_len() {
            return Err(AppcError::InvalidKey {
                key: key.to_string(),
                reason: format!(
                    "an image ID is sha512- and {MIN_KEY_HEX} to 128 lowercase hex digits"
                ),
            });
        }
        if hex.len() == Algorithm::Sha512.hex_len() {
            let digest = Digest::parse(&format!("sha512:{hex}"))
                .map_err(|e| AppcError::Invalid(e.to_string()))?;
            return match self.read_info(&digest)? {
                Some(_) if self.store.contains(&digest)? => Ok(digest),
                _ => Err(AppcError::ImageNotFound(key.to_string())),
            };
        }
        // The images this flavour holds, not every sha512 blob of the store.
        let mut matches: Vec<Digest> = Vec::new();
        for digest in self.store.owned_by(&HOLDER)? {
            if digest.algorithm() == Algorithm::Sha512
                && digest.hex().starts_with(hex)
                && self.read_info(&digest)?.is_some()
                && self.store.contains(&digest)?
            {
                matches.push(digest);
            }
        }
        match matches.len() {
            0 => Err(AppcError::ImageNotFound(key.to_string())),
            1 => Ok(matches.remove(0)),
            n => {
                let mut candidates: Vec<String> = matches
                    .iter()
                    .take(AMBIGUOUS_LIST_LIMIT)
                    .map(Digest::dashed)
                    .collect();
                if n > AMBIGUOUS_LIST_LIMIT {
                    candidates.push(format!("and {} more", n - AMBIGUOUS_LIST_LIMIT));
                }
                Err(AppcError::AmbiguousKey {
                    key: key.to_string(),
                    candidates,
                })
            }
        }
    }

    /// The info of the image a key names.
    pub fn info(&self, key: &str) -> AppcResult<ImageInfo> {
        let digest = self.resolve_key(key)?;
        self.read_info(&digest)?
            .ok_or_else(|| AppcError::ImageNotFound(key.to_string()))
    }

    /// The image `name` with every asked label: without a `version` label, images marked
    /// latest win; ties go to the newest import. Does not record a use (see
    /// [`AppcStore::get_to_run`]).
    pub fn find(&self, name: &str, labels: &[(String, String)]) -> AppcResult<ImageInfo> {
        let asks_version = labels.iter().any(|(k, _)| k == "version");
        self.all_infos()?
            .into_iter()
            .filter(|info| {
                info.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| info.labels.get(k).is_some_and(|have| have == v))
            })
            .max_by(|a, b| {
                let latest = |info: &ImageInfo| !asks_version && info.latest;
                latest(a)
                    .cmp(&latest(b))
                    .then(a.import_time_ms.cmp(&b.import_time_ms))
                    .then(a.id.cmp(&b.id))
            })
            .ok_or_else(|| {
                let asked: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if asked.is_empty() {
                    AppcError::ImageNotFound(name.to_string())
                } else {
                    AppcError::ImageNotFound(format!("{name} with {}", asked.join(",")))
                }
            })
    }

    /// [`AppcStore::find`] for running the image: records the use.
    pub fn get_to_run(&self, name: &str, labels: &[(String, String)]) -> AppcResult<ImageInfo> {
        let mut info = self.find(name, labels)?;
        let digest = info.digest()?;
        self.touch(&digest)?;
        info.last_used_ms = self.read_info(&digest)?.and_then(|i| i.last_used_ms);
        Ok(info)
    }

    /// Every image, in the asked order (ties by ID).
    pub fn list(&self, sort: SortKey) -> AppcResult<Vec<ImageInfo>> {
        let mut infos = self.all_infos()?;
        infos.sort_by(|a, b| {
            let order = match sort {
                SortKey::Id => std::cmp::Ordering::Equal,
                SortKey::Name => a.name.cmp(&b.name),
                SortKey::Version => a.version().cmp(&b.version()),
                SortKey::ImportTime => a.import_time_ms.cmp(&b.import_time_ms),
                SortKey::LastUsed => a.last_used_ms.cmp(&b.last_used_ms),
                SortKey::Size => a.size.cmp(&b.size),
            };
            order.then(a.id.cmp(&b.id))
        });
        Ok(infos)
    }
}
