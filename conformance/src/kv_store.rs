//! The `KvStore` suite: versions, compare-and-set, prefix listing in key order, entries that
//! reference blobs, verbatim restore, data types, atomic batches.

use std::path::Path;
use std::sync::Arc;

use oci_store::traits::{
    Algorithm, Digest, KvEntry, KvKey, KvOp, KvOpOutcome, KvStore, SortedDigests, StorageError,
    StorageResult, DIGEST_PAGE,
};

use crate::check::TestResult;
use crate::content::fake_digest;
use crate::fixture::{Fixture, SuiteTest};
use crate::{ensure, ensure_eq, fail, Context};

pub type KvFixture = Fixture<Arc<dyn KvStore>>;
pub type KvTest = fn(&KvFixture) -> TestResult;

pub fn tests() -> Vec<SuiteTest<Arc<dyn KvStore>>> {
    crate::suite_list![KvTest;
        versions_count_writes,
        compare_and_set,
        list_by_prefix_in_key_order,
        referencing,
        referencing_many_answers_like_referencing_in_order,
        sorted_referenced_digests_page_through_every_blob,
        rewrite_moves_reference,
        restore_verbatim,
        data_types_sorted,
        values_round_trip,
        long_keys,
        reopen_keeps_entries,
        batch_is_all_or_nothing,
        batch_operations_see_each_other,
    ]
}

pub fn run_all(
    open: impl Fn(&Path) -> StorageResult<Arc<dyn KvStore>> + Clone + Send + Sync + 'static,
) -> TestResult {
    crate::run_suite(tests(), open)
}

fn digest(n: u64) -> Digest {
    fake_digest(Algorithm::ALL[n as usize % 2], "", 2000 + n)
}

fn key(data_type: &str, key: &str) -> KvKey {
    KvKey {
        data_type: data_type.to_string(),
        key: key.to_string(),
    }
}

fn entry(value: &[u8], blob: Option<&Digest>, version: u64) -> KvEntry {
    KvEntry {
        value: value.to_vec(),
        blob: blob.cloned(),
        version,
    }
}

pub fn versions_count_writes(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    ensure_eq!(kv.get("ref", "a").context("get")?, None, "get() before put");
    for version in 1..=3u64 {
        let value = format!("v{version}");
        ensure_eq!(
            kv.put("ref", "a", value.as_bytes(), None).context("put")?,
            version,
            "version returned by put number {version}"
        );
        ensure_eq!(
            kv.get("ref", "a").context("get")?,
            Some(entry(value.as_bytes(), None, version)),
            "entry after put number {version}"
        );
    }
    ensure!(
        kv.remove("ref", "a").context("remove")?,
        "remove() returned false"
    );
    ensure!(
        !kv.remove("ref", "a").context("remove")?,
        "second remove() returned true"
    );
    ensure_eq!(
        kv.get("ref", "a").context("get")?,
        None,
        "get() after remove"
    );
    ensure_eq!(
        kv.put("ref", "a", b"again", None).context("put")?,
        1,
        "version of an entry created again after remove"
    );
    Ok(())
}

fn expect_conflict(
    result: StorageResult<u64>,
    expected: Option<u64>,
    found: Option<u64>,
    what: &str,
) -> TestResult {
    match result {
        Err(StorageError::VersionConflict {
            expected: got_expected,
            found: got_found,
            ..
        }) => {
            ensure_eq!(got_expected, expected, "{what}: VersionConflict.expected");
            ensure_eq!(got_found, found, "{what}: VersionConflict.found");
            Ok(())
        }
        Ok(version) => fail!("{what}: succeeded (version {version}) instead of a conflict"),
        Err(other) => fail!("{what}: expected VersionConflict, got: {other}"),
    }
}

pub fn compare_and_set(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    expect_conflict(
        kv.compare_and_set("ref", "k", b"x", None, Some(1)),
        Some(1),
        None,
        "compare_and_set(Some(1)) on a missing key",
    )?;
    ensure_eq!(
        kv.get("ref", "k").context("get")?,
        None,
        "a failed CAS created the key"
    );
    ensure_eq!(
        kv.compare_and_set("ref", "k", b"one", None, None)
            .context("create with None")?,
        1,
        "version of a CAS create"
    );
    expect_conflict(
        kv.compare_and_set("ref", "k", b"x", None, None),
        None,
        Some(1),
        "compare_and_set(None) on an existing key",
    )?;
    expect_conflict(
        kv.compare_and_set("ref", "k", b"x", None, Some(5)),
        Some(5),
        Some(1),
        "compare_and_set(Some(5)) at version 1",
    )?;
    ensure_eq!(
        kv.get("ref", "k").context("get")?,
        Some(entry(b"one", None, 1)),
        "entry after failed CAS"
    );
    let blob = digest(1);
    ensure_eq!(
        kv.compare_and_set("ref", "k", b"two", Some(&blob), Some(1))
            .context("CAS at 1")?,
        2,
        "version after CAS"
    );
    ensure_eq!(
        kv.get("ref", "k").context("get")?,
        Some(entry(b"two", Some(&blob), 2)),
        "entry after CAS"
    );
    ensure_eq!(
        kv.referencing(&blob).context("referencing")?,
        vec![key("ref", "k")],
        "a CAS write records its blob reference"
    );
    expect_conflict(
        kv.compare_and_set("ref", "k", b"x", None, Some(1)),
        Some(1),
        Some(2),
        "stale CAS",
    )?;
    Ok(())
}

pub fn list_by_prefix_in_key_order(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let keys = ["b", "a/b", "ab", "a", "a:c", "re", "\u{e9}t\u{e9}", "a/a"];
    for (n, k) in keys.iter().enumerate() {
        kv.put("ref", k, format!("{n}").as_bytes(), None)
            .context(format!("put {k}"))?;
    }
    kv.put("ref2", "a/z", b"other type", None).context("put")?;
    kv.put("re", "f/a", b"type that is a prefix", None)
        .context("put")?;
    let listed = |prefix: &str| -> Result<Vec<String>, String> {
        Ok(kv
            .list("ref", prefix)
            .context(format!("list(ref, {prefix:?})"))?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    };
    let mut all: Vec<String> = keys.iter().map(std::string::ToString::to_string).collect();
    all.sort();
    ensure_eq!(
        listed("")?,
        all,
        "every key of the type, byte order, no other type"
    );
    ensure_eq!(
        listed("a")?,
        vec!["a", "a/a", "a/b", "a:c", "ab"],
        "keys starting with a"
    );
    ensure_eq!(listed("a/")?, vec!["a/a", "a/b"], "keys starting with a/");
    ensure_eq!(listed("zz")?, Vec::<String>::new(), "no match");
    ensure_eq!(listed("\u{e9}")?, vec!["\u{e9}t\u{e9}"], "non-ASCII prefix");
    let entries = kv.list("ref", "a/b").context("list")?;
    ensure_eq!(
        entries,
        vec![("a/b".to_string(), entry(b"1", None, 1))],
        "list returns whole entries"
    );
    Ok(())
}

/// `sorted_referenced_digests` lists every referenced digest, in order, across more
/// than two pages, each digest once however many entries reference it.
pub fn sorted_referenced_digests_page_through_every_blob(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let blobs: Vec<Digest> = (0..(2 * DIGEST_PAGE + 3) as u64)
        .map(|n| digest(7000 + n))
        .collect();
    let mut ops: Vec<KvOp> = Vec::new();
    for (n, blob) in blobs.iter().enumerate() {
        for data_type in ["ref", "lease"] {
            ops.push(KvOp::Put {
                data_type: data_type.to_string(),
                key: format!("k{n}"),
                value: Vec::new(),
                blob: Some(blob.clone()),
            });
        }
    }
    ops.push(KvOp::Put {
        data_type: "ref".to_string(),
        key: "plain".to_string(),
        value: Vec::new(),
        blob: None,
    });
    kv.write_batch(&ops).context("write_batch")?;
    let listed: Vec<Digest> = kv
        .sorted_referenced_digests()
        .context("sorted_referenced_digests")?
        .collect::<StorageResult<_>>()
        .context("paging")?;
    let mut expected = blobs;
    expected.sort();
    ensure_eq!(listed.len(), expected.len(), "digests listed");
    ensure!(
        listed == expected,
        "sorted_referenced_digests() differs from the referenced digests, sorted"
    );
    Ok(())
}
/// `referencing_many` gives, in the order asked, what `referencing` gives for each digest, an
/// empty list for one nothing references, and a digest asked twice answered twice.
pub fn referencing_many_answers_like_referencing_in_order(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let (one, two, unreferenced) = (digest(21), digest(22), digest(23));
    kv.put("ref", "z", b"", Some(&one)).context("put")?;
    kv.put("cache", "m", b"", Some(&one)).context("put")?;
    kv.put("ref", "b", b"", Some(&two)).context("put")?;
    kv.put("ref", "plain", b"", None).context("put")?;
    let asked = vec![two.clone(), unreferenced, one.clone(), two];
    let mut expected = Vec::new();
    for digest in &asked {
        expected.push(kv.referencing(digest).context("referencing")?);
    }
    ensure_eq!(
        kv.referencing_many(&asked).context("referencing_many")?,
        expected,
        "referencing_many() against referencing() of each"
    );
    ensure_eq!(
        expected[2],
        vec![key("cache", "m"), key("ref", "z")],
        "both entries of the first digest, sorted"
    );
    Ok(())
}

pub fn referencing(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let (one, two, three) = (digest(1), digest(2), digest(3));
    kv.put("ref", "z", b"", Some(&one)).context("put")?;
    kv.put("ref", "a", b"", Some(&one)).context("put")?;
    kv.put("cache", "m", b"", Some(&one)).context("put")?;
    kv.put("ref", "b", b"", Some(&two)).context("put")?;
    kv.put("ref", "plain", b"", None).context("put")?;
    kv.put("lease", "l", b"", Some(&three)).context("put")?;
    ensure_eq!(
        kv.referencing(&one).context("referencing")?,
        vec![key("cache", "m"), key("ref", "a"), key("ref", "z")],
        "referencing(): sorted by data type then key"
    );
    let mut referenced = vec![one.clone(), two.clone(), three.clone()];
    referenced.sort();
    ensure_eq!(
        kv.sorted_referenced_digests()
            .and_then(SortedDigests::into_vec)
            .context("referenced_digests")?,
        referenced,
        "referenced_digests(): sorted, each once"
    );
    ensure_eq!(
        kv.remove_referencing(&one).context("remove_referencing")?,
        3,
        "removed"
    );
    ensure_eq!(
        kv.referencing(&one).context("referencing")?,
        Vec::<KvKey>::new(),
        "after"
    );
    ensure_eq!(
        kv.get("ref", "a").context("get")?,
        None,
        "a referencing entry survived"
    );
    ensure_eq!(
        kv.remove_referencing(&one).context("again")?,
        0,
        "second remove_referencing"
    );
    ensure!(
        kv.get("ref", "plain").context("get")?.is_some(),
        "an unrelated entry went"
    );
    ensure!(
        kv.get("ref", "b").context("get")?.is_some(),
        "an entry of another blob went"
    );
    kv.remove("lease", "l").context("remove")?;
    ensure_eq!(
        kv.sorted_referenced_digests()
            .and_then(SortedDigests::into_vec)
            .context("referenced_digests")?,
        vec![two],
        "referenced_digests() after removing entries"
    );
    Ok(())
}

/// Rewriting an entry moves or drops its reference: the reference list follows the entry.
pub fn rewrite_moves_reference(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let (old, new) = (digest(4), digest(5));
    kv.put("ref", "tag", b"1", Some(&old)).context("put")?;
    kv.put("ref", "tag", b"2", Some(&new))
        .context("put moving the reference")?;
    ensure_eq!(
        kv.referencing(&old).context("referencing")?,
        Vec::<KvKey>::new(),
        "old blob"
    );
    ensure_eq!(
        kv.referencing(&new).context("referencing")?,
        vec![key("ref", "tag")],
        "new"
    );
    kv.put("ref", "tag", b"3", None)
        .context("put without a reference")?;
    ensure_eq!(
        kv.referencing(&new).context("referencing")?,
        Vec::<KvKey>::new(),
        "dropped"
    );
    ensure_eq!(
        kv.sorted_referenced_digests()
            .and_then(SortedDigests::into_vec)
            .context("referenced_digests")?,
        Vec::<Digest>::new(),
        "referenced_digests() after dropping the reference"
    );
    ensure_eq!(
        kv.remove_referencing(&new).context("remove_referencing")?,
        0,
        "stale reference"
    );
    ensure_eq!(
        kv.get("ref", "tag").context("get")?.map(|e| e.version),
        Some(3),
        "entry kept"
    );
    Ok(())
}

pub fn restore_verbatim(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let blob = digest(6);
    let restored = entry(b"restored", Some(&blob), 42);
    kv.restore("ref", "r", &restored).context("restore")?;
    ensure_eq!(
        kv.get("ref", "r").context("get")?,
        Some(restored),
        "entry after restore"
    );
    ensure_eq!(
        kv.referencing(&blob).context("referencing")?,
        vec![key("ref", "r")],
        "refs"
    );
    ensure_eq!(
        kv.put("ref", "r", b"next", None).context("put")?,
        43,
        "put after restore"
    );
    let replaced = entry(b"older", None, 7);
    kv.restore("ref", "r", &replaced)
        .context("restore over an entry")?;
    ensure_eq!(
        kv.get("ref", "r").context("get")?,
        Some(replaced),
        "restore replaces"
    );
    ensure_eq!(
        kv.compare_and_set("ref", "r", b"cas", None, Some(7))
            .context("CAS after restore")?,
        8,
        "CAS against a restored version"
    );
    Ok(())
}

pub fn data_types_sorted(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    ensure_eq!(
        kv.data_types().context("data_types")?,
        Vec::<String>::new(),
        "empty store"
    );
    for (data_type, k) in [("zeta", "1"), ("alpha", "1"), ("alpha", "2"), ("mid", "1")] {
        kv.put(data_type, k, b"", None).context("put")?;
    }
    ensure_eq!(
        kv.data_types().context("data_types")?,
        vec!["alpha", "mid", "zeta"],
        "data_types(): sorted, each once"
    );
    kv.remove("mid", "1").context("remove")?;
    kv.remove("alpha", "1").context("remove")?;
    ensure_eq!(
        kv.data_types().context("data_types")?,
        vec!["alpha", "zeta"],
        "a type goes with its last entry"
    );
    Ok(())
}

pub fn values_round_trip(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let binary: Vec<u8> = (0..=255u8).collect();
    let large = crate::content::content(9, 200_000);
    for (k, value) in [("empty", &b""[..]), ("binary", &binary), ("large", &large)] {
        kv.put("values", k, value, None)
            .context(format!("put {k}"))?;
        ensure_eq!(
            kv.get("values", k).context("get")?.map(|e| e.value),
            Some(value.to_vec()),
            "value of {k}"
        );
    }
    Ok(())
}

pub fn reopen_keeps_entries(fixture: &KvFixture) -> TestResult {
    let blob = digest(7);
    {
        let kv = fixture.open()?;
        kv.put("ref", "kept", b"value", Some(&blob))
            .context("put")?;
        kv.put("ref", "kept", b"value 2", Some(&blob))
            .context("put")?;
    }
    let kv = fixture.open()?;
    ensure_eq!(
        kv.get("ref", "kept").context("get")?,
        Some(entry(b"value 2", Some(&blob), 2)),
        "entry after reopen"
    );
    ensure_eq!(
        kv.referencing(&blob).context("referencing")?,
        vec![key("ref", "kept")],
        "refs"
    );
    Ok(())
}

/// Keys as long as the base store accepts (4096 bytes), sharing prefixes longer than some
/// databases' key limits (LMDB: 511 bytes): each is its own entry, listed in key order.
pub fn long_keys(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let shared = "x".repeat(600);
    let blob = digest(8);
    let mut keys = vec![
        format!("{shared}b"),
        format!("{shared}a"),
        format!("{shared}{}", "y".repeat(100)),
        format!("{shared}a{}", "z".repeat(4096 - 602)),
        "x".repeat(599),
    ];
    for (n, k) in keys.iter().enumerate() {
        kv.put("long", k, n.to_string().as_bytes(), Some(&blob))
            .context(format!("put of a {}-byte key", k.len()))?;
    }
    for (n, k) in keys.iter().enumerate() {
        ensure_eq!(
            kv.get("long", k).context("get")?.map(|e| e.value),
            Some(n.to_string().into_bytes()),
            "value of the {}-byte key number {n}",
            k.len()
        );
    }
    keys.sort();
    let listed = |prefix: &str| -> Result<Vec<String>, String> {
        Ok(kv
            .list("long", prefix)
            .context(format!("list with a {}-byte prefix", prefix.len()))?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    };
    ensure_eq!(listed("")?, keys.clone(), "every long key, in order");
    ensure_eq!(
        listed(&shared)?,
        keys[1..].to_vec(),
        "keys under a 600-byte prefix"
    );
    ensure_eq!(
        listed(&format!("{shared}a"))?,
        vec![
            format!("{shared}a"),
            format!("{shared}a{}", "z".repeat(4096 - 602))
        ],
        "keys under a 601-byte prefix"
    );
    ensure_eq!(
        listed(&format!("{shared}y"))?,
        vec![format!("{shared}{}", "y".repeat(100))],
        "a key found by a prefix past the shared part"
    );
    let mut referencing: Vec<KvKey> = keys.iter().map(|k| key("long", k)).collect();
    referencing.sort();
    ensure_eq!(
        kv.referencing(&blob).context("referencing")?,
        referencing,
        "referencing"
    );
    ensure!(
        kv.remove("long", &keys[2]).context("remove")?,
        "remove of a long key"
    );
    ensure_eq!(
        kv.get("long", &keys[2]).context("get")?,
        None,
        "a removed long key"
    );
    ensure_eq!(
        listed("")?.len(),
        keys.len() - 1,
        "keys left after removing one"
    );
    Ok(())
}

fn put_op(data_type: &str, key: &str, value: &[u8], blob: Option<&Digest>) -> KvOp {
    KvOp::Put {
        data_type: data_type.to_string(),
        key: key.to_string(),
        value: value.to_vec(),
        blob: blob.cloned(),
    }
}

fn cas_op(data_type: &str, key: &str, value: &[u8], expected_version: Option<u64>) -> KvOp {
    KvOp::CompareAndSet {
        data_type: data_type.to_string(),
        key: key.to_string(),
        value: value.to_vec(),
        blob: None,
        expected_version,
    }
}

fn remove_op(data_type: &str, key: &str) -> KvOp {
    KvOp::Remove {
        data_type: data_type.to_string(),
        key: key.to_string(),
    }
}

/// Everything a key/value store holds, as its public reads see it.
type KvSnapshot = (Vec<(String, String, KvEntry)>, Vec<Digest>, Vec<Vec<KvKey>>);

fn snapshot(kv: &dyn KvStore, blobs: &[Digest]) -> Result<KvSnapshot, String> {
    let mut entries = Vec::new();
    for data_type in kv.data_types().context("data_types")? {
        for (key, entry) in kv.list(&data_type, "").context("list")? {
            entries.push((data_type.clone(), key, entry));
        }
    }
    let referencing = blobs
        .iter()
        .map(|digest| kv.referencing(digest).context("referencing"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        entries,
        kv.sorted_referenced_digests()
            .and_then(SortedDigests::into_vec)
            .context("referenced_digests")?,
        referencing,
    ))
}

/// A batch whose last operation fails (a compare-and-set on a stale version) writes nothing
/// of its earlier puts, overwrites, removals and reference changes, long (bucketed) keys
/// included; the same batch with the right version writes all of it.
pub fn batch_is_all_or_nothing(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    let (old_blob, new_blob) = (digest(20), digest(21));
    let long = format!("{}-long", "l".repeat(600));
    kv.put("ref", "kept", b"old", Some(&old_blob))
        .context("put")?;
    kv.put("ref", "gone", b"old", None).context("put")?;
    kv.put("ref", &long, b"old", Some(&old_blob))
        .context("put")?;
    kv.put("guard", "g", b"1", None).context("put")?;
    kv.put("guard", "g", b"2", None).context("put")?;
    let blobs = [old_blob.clone(), new_blob.clone()];
    let before = snapshot(kv.as_ref(), &blobs)?;

    let batch = |guard_version| {
        vec![
            put_op("ref", "new", b"new", Some(&new_blob)),
            put_op("ref", "kept", b"new", Some(&new_blob)),
            put_op("ref", &long, b"new", None),
            put_op("import", "fresh", b"", None),
            remove_op("ref", "gone"),
            cas_op("guard", "g", b"3", guard_version),
        ]
    };
    match kv.write_batch(&batch(Some(1))) {
        Err(StorageError::VersionConflict {
            expected: Some(1),
            found: Some(2),
            ..
        }) => {}
        other => fail!("a batch with a stale compare-and-set: expected a conflict, got {other:?}"),
    }
    ensure_eq!(
        snapshot(kv.as_ref(), &blobs)?,
        before,
        "the store after a refused batch"
    );

    let outcomes = kv.write_batch(&batch(Some(2))).context("write_batch")?;
    ensure_eq!(
        outcomes,
        vec![
            KvOpOutcome::Written(1),
            KvOpOutcome::Written(2),
            KvOpOutcome::Written(2),
            KvOpOutcome::Written(1),
            KvOpOutcome::Removed(true),
            KvOpOutcome::Written(3),
        ],
        "outcomes of the accepted batch"
    );
    ensure_eq!(
        kv.get("ref", "new").context("get")?,
        Some(entry(b"new", Some(&new_blob), 1)),
        "new entry"
    );
    ensure_eq!(
        kv.get("ref", &long).context("get")?,
        Some(entry(b"new", None, 2)),
        "long key"
    );
    ensure_eq!(kv.get("ref", "gone").context("get")?, None, "removed entry");
    ensure_eq!(
        kv.referencing(&old_blob).context("referencing")?,
        Vec::<KvKey>::new(),
        "references to the blob no entry names any more"
    );
    ensure_eq!(
        kv.referencing(&new_blob).context("referencing")?,
        vec![key("ref", "kept"), key("ref", "new")],
        "references to the new blob"
    );
    ensure_eq!(
        kv.data_types().context("data_types")?,
        vec!["guard", "import", "ref"],
        "data types"
    );
    Ok(())
}

/// Operations of one batch apply in order: a key written twice counts two versions, a
/// compare-and-set sees the version an earlier operation wrote, a removal lets the key start
/// again at version 1, and removing what is not there reports it. An empty batch is fine.
pub fn batch_operations_see_each_other(fixture: &KvFixture) -> TestResult {
    let kv = fixture.open()?;
    ensure_eq!(
        kv.write_batch(&[]).context("empty batch")?,
        Vec::<KvOpOutcome>::new(),
        "outcomes of an empty batch"
    );
    let outcomes = kv
        .write_batch(&[
            put_op("ref", "a", b"1", None),
            put_op("ref", "a", b"2", None),
            cas_op("ref", "a", b"3", Some(2)),
            cas_op("ref", "b", b"1", None),
            remove_op("ref", "b"),
            remove_op("ref", "b"),
            put_op("ref", "b", b"again", None),
        ])
        .context("write_batch")?;
    ensure_eq!(
        outcomes,
        vec![
            KvOpOutcome::Written(1),
            KvOpOutcome::Written(2),
            KvOpOutcome::Written(3),
            KvOpOutcome::Written(1),
            KvOpOutcome::Removed(true),
            KvOpOutcome::Removed(false),
            KvOpOutcome::Written(1),
        ],
        "outcomes"
    );
    ensure_eq!(
        kv.get("ref", "a").context("get")?,
        Some(entry(b"3", None, 3)),
        "a"
    );
    ensure_eq!(
        kv.get("ref", "b").context("get")?,
        Some(entry(b"again", None, 1)),
        "b"
    );
    // A conflict against a version written earlier in the same batch fails it all.
    let result = kv.write_batch(&[
        put_op("ref", "c", b"1", None),
        cas_op("ref", "c", b"2", None),
    ]);
    ensure!(
        matches!(result, Err(StorageError::VersionConflict { .. })),
        "a compare-and-set expecting no entry after a put of it: {result:?}"
    );
    ensure_eq!(
        kv.get("ref", "c").context("get")?,
        None,
        "c after the refused batch"
    );
    Ok(())
}
