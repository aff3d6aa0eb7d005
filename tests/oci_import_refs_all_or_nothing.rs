//! `import --all` names every image or changes no ref: the refs land in one atomic key/value
//! batch, so when writing one of them fails none is written and the refs that existed keep
//! their values (no rollback that could overwrite what another process wrote meanwhile).

use oci_store::backends::fs::FsBlobStore;
use oci_store::backends::sqlite::{SqliteExtraData, SqliteIndex, SqliteKvStore};
use oci_store::store::Store;
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciStore};
use oci_store::traits::{
    Digest, KvEntry, KvKey, KvOp, KvOpOutcome, KvStore, SortedDigests, StorageError, StorageResult,
};
use std::sync::Arc;

/// The sqlite key/value store, except that writing the ref named `failing` fails, as a full
/// disk or a lost connection would. Every write is a batch (`put` and `compare_and_set` are
/// batches of one), so failing the batch fails every way of writing the ref.
struct FailingRefWrites {
    inner: SqliteKvStore,
    failing: &'static str,
}

impl KvStore for FailingRefWrites {
    fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>> {
        self.inner.get(data_type, key)
    }
    fn list(&self, data_type: &str, key_prefix: &str) -> StorageResult<Vec<(String, KvEntry)>> {
        self.inner.list(data_type, key_prefix)
    }
    fn data_types(&self) -> StorageResult<Vec<String>> {
        self.inner.data_types()
    }
    fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>> {
        self.inner.referencing(digest)
    }
    fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        self.inner.remove_referencing_many(digests)
    }
    fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>> {
        self.inner.sorted_referenced_digests()
    }
    fn restore(&self, data_type: &str, key: &str, entry: &KvEntry) -> StorageResult<()> {
        self.inner.restore(data_type, key, entry)
    }
    fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>> {
        let failing = ops.iter().any(|op| {
            matches!(op, KvOp::Put { .. } | KvOp::CompareAndSet { .. })
                && op.data_type() == "oci.ref"
                && op.key() == self.failing
        });
        if failing {
            return Err(StorageError::InvalidArgument(format!(
                "injected failure writing {}",
                self.failing
            )));
        }
        self.inner.write_batch(ops)
    }
}

#[test]
fn a_failed_ref_write_restores_the_refs_written_before_it() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("store");
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::from_parts(
        &dir,
        Arc::new(FsBlobStore::open(&dir).unwrap()),
        Arc::new(SqliteIndex::open(&dir).unwrap()),
        Arc::new(SqliteExtraData::open(&dir).unwrap()),
        Arc::new(FailingRefWrites {
            inner: SqliteKvStore::open(&dir).unwrap(),
            failing: "c:1",
        }),
    )
    .unwrap();
    let oci = OciStore::new(&store);

    // "a:1" exists before the import, pointing at an older image.
    let old = temp.path().join("old");
    LayoutBuilder::simple_image(&old, "a:1").unwrap();
    oci.import_layout(&old, &ImportOptions::default()).unwrap();
    let old_digest = oci.list_refs().unwrap()[0].digest.clone();

    // A layout naming a:1 (new image), b:1 and c:1; refs are written in name order.
    let layout = temp.path().join("three");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    for name in ["a:1", "b:1", "c:1"] {
        let layer = LayoutBuilder::layer_tar_gz(&[("name", name.as_bytes())]).unwrap();
        let image = builder.image("linux", "amd64", &[layer]).unwrap();
        builder.add_ref(Some(name), &image);
    }
    builder.finish().unwrap();

    let error = oci
        .import_layout(
            &layout,
            &ImportOptions {
                all: true,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    let refs = oci.list_refs().unwrap();
    let names: Vec<_> = refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a:1"], "only the ref that existed before is left");
    assert_eq!(
        refs[0].digest, old_digest,
        "a:1 points at its earlier image again"
    );
}
