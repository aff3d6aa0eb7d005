//! Pins: names no retention policy removes, kept as key/value entries
//! `store.pin/<holder>/<name>` so every process and flavour reads them the same way. A pin says
//! nothing about the name's existence: the flavour checks that when pinning, and forgets the
//! pin when the name is removed explicitly.

use std::collections::HashSet;

use crate::store::{Holder, Store, StoreResult};

/// Key/value data type of pins.
pub const PIN_TYPE: &str = "store.pin";

pub(crate) fn pin_key(holder: &Holder, name: &str) -> String {
    format!("{}/{name}", holder.name())
}

impl Store {
    /// Pins `holder`'s `name`: no retention policy removes it until [`Store::unpin`].
    pub fn pin(&self, holder: &Holder, name: &str) -> StoreResult<()> {
        self.put_data(PIN_TYPE, &pin_key(holder, name), b"", None)?;
        Ok(())
    }

    /// Unpins `holder`'s `name`; whether it was pinned.
    pub fn unpin(&self, holder: &Holder, name: &str) -> StoreResult<bool> {
        self.remove_data(PIN_TYPE, &pin_key(holder, name))
    }

    /// Every pinned name of `holder`.
    pub fn pinned(&self, holder: &Holder) -> StoreResult<HashSet<String>> {
        let prefix = format!("{}/", holder.name());
        Ok(self
            .list_data(PIN_TYPE, &prefix)?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    /// Whether `holder`'s `name` is pinned.
    pub fn is_pinned(&self, holder: &Holder, name: &str) -> StoreResult<bool> {
        Ok(self.get_data(PIN_TYPE, &pin_key(holder, name))?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{open_store, BackendChoice, Holder};

    #[test]
    fn pins_are_per_holder_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
        let oci = Holder::flavour("oci");
        let appc = Holder::flavour("appc");
        store.pin(&oci, "app:1").unwrap();
        store.pin(&oci, "app:1").unwrap();
        assert!(store.is_pinned(&oci, "app:1").unwrap());
        assert!(!store.is_pinned(&appc, "app:1").unwrap());
        assert_eq!(store.pinned(&oci).unwrap().len(), 1);
        assert!(store.unpin(&oci, "app:1").unwrap());
        assert!(!store.unpin(&oci, "app:1").unwrap());
        assert!(store.pinned(&oci).unwrap().is_empty());
    }
}
