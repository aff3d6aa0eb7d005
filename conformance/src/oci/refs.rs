//! Refs: what `list` shows is kept in the ref entry (so listing reads no manifest), entries
//! from before that are still listed, and several refs are removed in one call, all or nothing.

use oci_store::stores::oci::{OciError, OciStore, PLATFORMS_FIELD, REF_DATA_TYPE};

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

/// Import and tag write the platforms into the ref entry, and `list` shows them; an entry
/// written without them (older versions) is listed with the platforms read from its image.
pub fn ref_entries_record_what_list_shows(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let images = layout_with_refs(&layout, &["app"])?;
    import_default(&oci, &layout)?;
    oci.tag("app", "app:copy").context("tag")?;
    for name in ["app", "app:copy"] {
        let Some(entry) = store.get_data(REF_DATA_TYPE, name).context("get_data")? else {
            fail!("no entry for ref {name}");
        };
        let value: serde_json::Value =
            serde_json::from_slice(&entry.value).context("the entry's JSON")?;
        ensure_eq!(
            value[PLATFORMS_FIELD].clone(),
            serde_json::json!(["linux/amd64"]),
            "platforms recorded in {name}"
        );
    }
    // An entry as older versions wrote it: the bare descriptor.
    let descriptor = serde_json::to_vec(&images[0]).context("descriptor JSON")?;
    let manifest = digest(&images[0])?;
    store
        .put_data(REF_DATA_TYPE, "old", &descriptor, Some(&manifest))
        .context("put an old entry")?;
    let refs = oci.list_refs().context("list_refs")?;
    ensure_eq!(refs.len(), 3, "refs");
    for info in &refs {
        ensure_eq!(
            info.platforms.clone(),
            vec!["linux/amd64"],
            "platforms of {}",
            info.name
        );
        ensure_eq!(&info.digest, &manifest, "digest of {}", info.name);
        ensure_eq!(info.size, images[0].size(), "size of {}", info.name);
    }
    Ok(())
}

/// `remove_refs`: a name that is not a ref refuses the call, naming it, and nothing changes;
/// otherwise all named refs go at once, and the rest stay.
pub fn remove_refs_is_all_or_nothing(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["a", "b", "c", "d"])?;
    import_all(&oci, &layout)?;

    let before = store.dump().context("dump")?;
    match oci.remove_refs(&["a", "missing", "b"]) {
        Err(OciError::RefNotFound(name)) => ensure_eq!(name, "missing", "the name refused"),
        other => fail!("an unknown ref was not refused: {other:?}"),
    }
    ensure!(
        store.dump().context("dump")? == before,
        "a refused remove_refs changed the store"
    );
    oci.remove_refs(&["a", "c", "a"]).context("remove_refs")?;
    ensure_eq!(ref_names(&oci)?, vec!["b", "d"], "refs left");
    let gc = oci.gc(false).context("gc")?;
    ensure_eq!(
        gc.swept.iter().filter(|swept| swept.deleted).count(),
        4,
        "the removed images' own manifest and layer (configs and base layer are shared)"
    );
    Ok(())
}
