//! Cleaning up after imports that crashed: their `oci.import/<id>` entries and the holds
//! (`owner.oci-import.<id>`) they left on blobs (see [`super::import_session`]).

use super::error::OciResult;
use super::import_session::{import_holder, IMPORT_DATA_TYPE};
use super::OciStore;
use crate::traits::{BlobStore, ExtraData, Index, KvStore};

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> OciStore<'_, B, I, X, K> {
    /// Lets go of every blob held by a recorded import and removes the records; returns how
    /// many imports were cleared. Only under the flavour GC lock held exclusive: every import
    /// holds it shared while it runs, so every record found then is stale. A blob nothing
    /// else holds is deleted; one an import had marked `owner.oci` (it crashed while
    /// committing) stays for the OCI GC to judge like any other.
    pub(super) fn clear_stale_import_holds(&self) -> OciResult<u64> {
        let mut cleared = 0;
        for (id, _) in self.store.list_data(IMPORT_DATA_TYPE, "")? {
            let holder = import_holder(&id);
            self.store
                .release_many(&self.store.owned_by(&holder)?, &holder)?;
            crate::crash_point!("oci.gc.stale-import.after-release");
            self.store.remove_data(IMPORT_DATA_TYPE, &id)?;
            cleared += 1;
        }
        Ok(cleared)
    }
}
