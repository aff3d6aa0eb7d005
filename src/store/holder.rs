//! Holders: who keeps a blob in the store. A holder's hold is its owner mark, the extra data
//! type `owner.<name>` on the blob (DESIGN.md, "Flavours share one store"). This file is the
//! only place that builds or parses marks; everything else passes [`Holder`]s.
//!
//! The mark format is on disk in every store: it must never change.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use super::error::{StoreError, StoreResult};

/// Extra-data type prefix of owner marks.
const MARK_PREFIX: &str = "owner.";

impl Holder {
    /// The extra-data type prefix every owner mark starts with (`owner.`), for listings of
    /// marked blobs.
    pub(crate) const MARK_PREFIX: &'static str = MARK_PREFIX;
}

/// Longest holder name: its mark must fit the 128 characters of an extra data type.
const MAX_NAME: usize = 128 - MARK_PREFIX.len();

/// Between an operation's flavour and its id: `<flavour>-op.<id>`.
const OPERATION_INFIX: &str = "-op";

/// A holder of blobs: a flavour (`oci`, `appc`), the base store itself ([`Holder::BASE`]), a
/// running operation ([`Holder::operation`]), or any other validated name. Serialized (and
/// compared, and sorted) by its name; displayed as its mark, `owner.<name>`, the way
/// `blob info` lists it among a blob's extra data types.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Holder {
    name: Cow<'static, str>,
}

impl Holder {
    /// The holder of writes through the base store itself (`owner.base`): `Store::write`,
    /// `write_bytes`, `writer(..).commit()`, i.e. `blob put`. Only an explicit delete (`blob
    /// rm`, which releases it, or `Store::delete`) lets go of it.
    pub const BASE: Holder = Holder::flavour("base");

    /// A flavour's holder, for a `const`: `pub const HOLDER: Holder = Holder::flavour("oci");`.
    /// The name is checked when the constant is evaluated (a bad name fails the build).
    pub const fn flavour(name: &'static str) -> Holder {
        assert!(
            valid_name(name.as_bytes()),
            "holder names are 1-122 characters of [A-Za-z0-9._-:/+]"
        );
        Holder {
            name: Cow::Borrowed(name),
        }
    }

    /// A holder named at run time, by the rule of [`Holder::flavour`]: refused unless it is a
    /// name whose mark is a valid extra data type.
    pub fn named(name: impl Into<String>) -> StoreResult<Holder> {
        let name = name.into();
        if !valid_name(name.as_bytes()) {
            return Err(StoreError::Invalid(format!(
                "holder {name:?}: use 1-{MAX_NAME} characters of [A-Za-z0-9._-:/+]"
            )));
        }
        Ok(Holder {
            name: Cow::Owned(name),
        })
    }

    /// A name the store recorded itself from a holder (an operation's entry key, its
    /// flavour), read back: taken as it is, so what a crash left is cleared whatever it says.
    pub(super) fn recorded(name: String) -> Holder {
        Holder {
            name: Cow::Owned(name),
        }
    }

    /// The holder of this flavour's operation `id`, `<flavour>-op.<id>` (see
    /// [`Store::begin_operation`](super::Store::begin_operation), which checks it).
    pub fn operation(&self, id: &str) -> Holder {
        Holder {
            name: Cow::Owned(format!("{}{OPERATION_INFIX}.{id}", self.name)),
        }
    }

    /// The holder `<kind>.<id>`: one of many holders of a kind, such as the imports of
    /// versions before operations (`oci-import.<id>`). Not checked: the id is machine-made.
    pub fn scoped(kind: &str, id: &str) -> Holder {
        Holder {
            name: Cow::Owned(format!("{kind}.{id}")),
        }
    }

    /// The holder whose mark `data_type` is; `None` for any other extra data type.
    pub fn from_mark(data_type: &str) -> Option<Holder> {
        data_type.strip_prefix(MARK_PREFIX).map(|name| Holder {
            name: Cow::Owned(name.to_string()),
        })
    }

    /// Whether `data_type` is some holder's mark (an extra data type that holds its blob).
    pub fn is_mark(data_type: &str) -> bool {
        data_type.starts_with(MARK_PREFIX)
    }

    /// The name (`oci`, `base`, `oci-op.<id>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The owner mark, the extra data type that records this holder's hold: `owner.<name>`.
    pub fn mark(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Holder {
    /// The mark, `owner.<name>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MARK_PREFIX}{}", self.name)
    }
}

/// The rule of extra data type names (`data::validate_name`) for the name part of a mark,
/// usable in a `const`.
const fn valid_name(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > MAX_NAME {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        let valid =
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/' | b'+');
        if !valid {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of holder, with the mark the store has always written for it.
    fn every_kind() -> Vec<(Holder, &'static str)> {
        vec![
            (Holder::BASE, "owner.base"),
            (Holder::flavour("oci"), "owner.oci"),
            (Holder::flavour("appc"), "owner.appc"),
            (Holder::named("workload").unwrap(), "owner.workload"),
            (
                Holder::flavour("oci").operation("4242-1700000000-0"),
                "owner.oci-op.4242-1700000000-0",
            ),
            (
                Holder::scoped("oci-import", "1234-5"),
                "owner.oci-import.1234-5",
            ),
        ]
    }

    #[test]
    fn marks_are_the_format_stores_have_on_disk() {
        for (holder, mark) in every_kind() {
            assert_eq!(holder.mark(), mark, "{holder:?}");
            assert_eq!(holder.to_string(), mark, "{holder:?}");
        }
    }

    #[test]
    fn a_mark_round_trips() {
        for (holder, mark) in every_kind() {
            assert!(Holder::is_mark(mark));
            assert_eq!(Holder::from_mark(mark), Some(holder.clone()));
            assert_eq!(Holder::from_mark(&holder.mark()), Some(holder));
        }
    }

    #[test]
    fn other_extra_data_types_are_not_marks() {
        for data_type in ["last-used", "owner", "registry.origin", "ownerX.oci"] {
            assert!(!Holder::is_mark(data_type), "{data_type}");
            assert_eq!(Holder::from_mark(data_type), None, "{data_type}");
        }
    }

    #[test]
    fn a_name_is_compared_whatever_its_constructor() {
        assert_eq!(Holder::named("oci").unwrap(), Holder::flavour("oci"));
        assert_eq!(Holder::named("base").unwrap(), Holder::BASE);
    }

    #[test]
    fn a_name_that_makes_no_valid_mark_is_refused() {
        for name in ["", "with space", "new\nline", &"x".repeat(MAX_NAME + 1)] {
            assert!(Holder::named(name).is_err(), "{name:?}");
            assert!(!valid_name(name.as_bytes()), "{name:?}");
        }
        assert!(Holder::named("x".repeat(MAX_NAME)).is_ok());
        assert!(valid_name(b"oci-op.1-2-3"));
    }

    #[test]
    fn serialized_by_name() {
        let json = serde_json::to_string(&vec![Holder::BASE, Holder::flavour("oci")]).unwrap();
        assert_eq!(json, r#"["base","oci"]"#);
    }
}
