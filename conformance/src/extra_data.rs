//! The `ExtraData` suite: `(digest, data type) -> bytes`, sorted listings, removal of a blob's
//! items. Digests are chosen directly (extra data never sees content).

use std::path::Path;
use std::sync::Arc;

use oci_store::traits::{
    Algorithm, Digest, ExtraData, ExtraOp, SortedDigests, StorageResult, DIGEST_PAGE,
};

use crate::check::TestResult;
use crate::content::{content, fake_digest};
use crate::fixture::{Fixture, SuiteTest};
use crate::{ensure, ensure_eq, Context};

pub type ExtraFixture = Fixture<Arc<dyn ExtraData>>;
pub type ExtraTest = fn(&ExtraFixture) -> TestResult;

pub fn tests() -> Vec<SuiteTest<Arc<dyn ExtraData>>> {
    crate::suite_list![ExtraTest;
        set_get_remove,
        values_round_trip,
        types_sorted,
        types_many_answers_like_types_in_order,
        remove_all,
        digests_sorted,
        sorted_digests_page_through_every_blob,
        digests_with_a_type_prefix_page_in_order,
        entries_of_type,
        reopen_keeps_items,
        batch_is_all_or_nothing,
        batch_applies_in_order,
    ]
}

pub fn run_all(
    open: impl Fn(&Path) -> StorageResult<Arc<dyn ExtraData>> + Clone + Send + Sync + 'static,
) -> TestResult {
    crate::run_suite(tests(), open)
}

fn digest(n: u64) -> Digest {
    fake_digest(Algorithm::ALL[n as usize % 2], "", 1000 + n)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(std::string::ToString::to_string).collect()
}

pub fn set_get_remove(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let blob = digest(1);
    ensure_eq!(
        extra.get(&blob, "last-used").context("get")?,
        None,
        "get() before set"
    );
    extra.set(&blob, "last-used", b"1").context("set")?;
    ensure_eq!(
        extra.get(&blob, "last-used").context("get")?,
        Some(b"1".to_vec()),
        "get() after set"
    );
    extra.set(&blob, "last-used", b"2").context("set again")?;
    ensure_eq!(
        extra.get(&blob, "last-used").context("get")?,
        Some(b"2".to_vec()),
        "get() after replace"
    );
    ensure_eq!(
        extra.get(&blob, "last").context("get")?,
        None,
        "a type prefix is another type"
    );
    ensure_eq!(
        extra.get(&digest(2), "last-used").context("get")?,
        None,
        "another digest"
    );
    ensure!(
        extra.remove(&blob, "last-used").context("remove")?,
        "remove() returned false"
    );
    ensure!(
        !extra.remove(&blob, "last-used").context("remove")?,
        "second remove() returned true"
    );
    ensure_eq!(
        extra.get(&blob, "last-used").context("get")?,
        None,
        "get() after remove"
    );
    ensure_eq!(
        extra.types(&blob).context("types")?,
        Vec::<String>::new(),
        "types() after remove"
    );
    Ok(())
}

pub fn values_round_trip(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let blob = digest(3);
    let binary: Vec<u8> = (0..=255u8).collect();
    let large = content(5, 100_000);
    for (data_type, value) in [("empty", &b""[..]), ("binary", &binary), ("large", &large)] {
        extra
            .set(&blob, data_type, value)
            .context(format!("set {data_type}"))?;
        ensure_eq!(
            extra.get(&blob, data_type).context("get")?,
            Some(value.to_vec()),
            "value of {data_type}"
        );
    }
    Ok(())
}

pub fn types_sorted(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let blob = digest(4);
    let other = digest(5);
    for data_type in ["zeta", "owner.oci", "alpha", "owner", "mid"] {
        extra
            .set(&blob, data_type, b"x")
            .context(format!("set {data_type}"))?;
    }
    extra
        .set(&other, "other", b"y")
        .context("set on another digest")?;
    ensure_eq!(
        extra.types(&blob).context("types")?,
        strings(&["alpha", "mid", "owner", "owner.oci", "zeta"]),
        "types() sorted, this digest only"
    );
    ensure_eq!(
        extra.types(&other).context("types")?,
        strings(&["other"]),
        "other digest"
    );
    ensure_eq!(
        extra.types(&digest(6)).context("types")?,
        Vec::<String>::new(),
        "no items"
    );
    Ok(())
}

/// `types_many` gives, in the order asked, what `types` gives for each blob, an empty list for
/// a blob without items, and a blob asked twice answered twice.
pub fn types_many_answers_like_types_in_order(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    for n in 0..20 {
        for data_type in ["owner.oci", "alpha", "zeta"]
            .iter()
            .take(1 + n as usize % 3)
        {
            extra
                .set(&digest(100 + n), data_type, b"x")
                .context(format!("set {data_type}"))?;
        }
    }
    let mut asked: Vec<Digest> = (0..20).rev().map(|n| digest(100 + n)).collect();
    asked.push(digest(500));
    asked.push(digest(104));
    let mut expected = Vec::new();
    for blob in &asked {
        expected.push(extra.types(blob).context("types")?);
    }
    ensure_eq!(
        extra.types_many(&asked).context("types_many")?,
        expected,
        "types_many() against types() of each"
    );
    ensure!(expected[20].is_empty(), "the unknown blob has no items");
    ensure_eq!(
        expected[2],
        strings(&["alpha", "owner.oci", "zeta"]),
        "the third asked (item 17) has three types, sorted"
    );
    Ok(())
}

pub fn remove_all(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let blob = digest(7);
    let other = digest(8);
    for data_type in ["a", "b", "c"] {
        extra.set(&blob, data_type, b"x").context("set")?;
    }
    extra.set(&other, "a", b"kept").context("set")?;
    ensure_eq!(
        extra.remove_all(&blob).context("remove_all")?,
        3,
        "items removed"
    );
    ensure_eq!(
        extra.types(&blob).context("types")?,
        Vec::<String>::new(),
        "types() after"
    );
    ensure_eq!(
        extra.get(&blob, "a").context("get")?,
        None,
        "get() after remove_all"
    );
    ensure_eq!(
        extra.remove_all(&blob).context("remove_all again")?,
        0,
        "second remove_all"
    );
    ensure_eq!(
        extra.get(&other, "a").context("get")?,
        Some(b"kept".to_vec()),
        "another digest's item after remove_all"
    );
    Ok(())
}

pub fn digests_sorted(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let mut expected: Vec<Digest> = (10..16).map(digest).collect();
    for blob in expected.iter().rev() {
        extra.set(blob, "one", b"1").context("set")?;
        extra.set(blob, "two", b"2").context("set")?;
    }
    expected.sort();
    ensure_eq!(
        extra
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("digests")?,
        expected,
        "digests(): sorted, each once"
    );
    let dropped = expected.remove(2);
    extra.remove(&dropped, "one").context("remove")?;
    ensure!(
        extra
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("digests")?
            .contains(&dropped),
        "{dropped} dropped from digests() while it still has an item"
    );
    extra.remove(&dropped, "two").context("remove")?;
    let removed_all = expected.remove(0);
    extra.remove_all(&removed_all).context("remove_all")?;
    ensure_eq!(
        extra
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("digests")?,
        expected,
        "digests() after removals"
    );
    Ok(())
}

/// `sorted_digests` lists every blob with extra data, in order, across more than two pages (the
/// paged listing of each backend asks for the page after the last digest it got).
pub fn sorted_digests_page_through_every_blob(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let blobs: Vec<Digest> = (0..(2 * DIGEST_PAGE + 3) as u64)
        .map(|n| digest(5000 + n))
        .collect();
    let ops: Vec<ExtraOp> = blobs
        .iter()
        .flat_map(|blob| {
            ["a", "b"].map(|data_type| ExtraOp::Set {
                digest: blob.clone(),
                data_type: data_type.to_string(),
                value: b"v".to_vec(),
            })
        })
        .collect();
    extra.write_batch(&ops).context("write_batch")?;
    let listed: Vec<Digest> = extra
        .sorted_digests()
        .context("sorted_digests")?
        .collect::<StorageResult<_>>()
        .context("paging")?;
    let mut expected = blobs;
    expected.sort();
    ensure_eq!(listed.len(), expected.len(), "digests listed");
    ensure!(
        listed == expected,
        "sorted_digests() differs from the digests, sorted"
    );
    Ok(())
}

/// `sorted_digests_with_type_prefix` lists, in order and across pages, exactly the blobs that
/// have an item whose type starts with the prefix (each once, whatever else they have).
pub fn digests_with_a_type_prefix_page_in_order(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let blobs: Vec<Digest> = (0..(2 * DIGEST_PAGE + 5) as u64)
        .map(|n| digest(9000 + n))
        .collect();
    // Every third blob has no mark; the others one or two (`owner.a`, `owner.b`), and all of
    // them types that sort around the prefix.
    let mut ops = Vec::new();
    let mut expected = Vec::new();
    for (n, blob) in blobs.iter().enumerate() {
        let mut types = vec!["ownerz", "owner", "last-used"];
        match n % 3 {
            0 => {}
            1 => types.push("owner.a"),
            _ => types.extend(["owner.a", "owner.b"]),
        }
        if n % 3 != 0 {
            expected.push(blob.clone());
        }
        ops.extend(types.into_iter().map(|data_type| ExtraOp::Set {
            digest: blob.clone(),
            data_type: data_type.to_string(),
            value: b"v".to_vec(),
        }));
    }
    extra.write_batch(&ops).context("write_batch")?;
    let listed: Vec<Digest> = extra
        .sorted_digests_with_type_prefix("owner.")
        .context("listing")?
        .collect::<StorageResult<_>>()
        .context("paging")?;
    expected.sort();
    ensure_eq!(listed.len(), expected.len(), "marked blobs listed");
    ensure!(
        listed == expected,
        "the listing differs from the marked blobs, sorted"
    );
    let none: Vec<Digest> = extra
        .sorted_digests_with_type_prefix("nothing.")
        .context("listing")?
        .collect::<StorageResult<_>>()
        .context("paging")?;
    ensure!(none.is_empty(), "a prefix no type has listed {none:?}");
    Ok(())
}

pub fn entries_of_type(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let mut expected = Vec::new();
    for n in 20..26u64 {
        let blob = digest(n);
        let value = format!("value {n}").into_bytes();
        extra.set(&blob, "owner.oci", &value).context("set")?;
        expected.push((blob.clone(), value));
        extra
            .set(&blob, "owner.oci2", b"other type")
            .context("set")?;
        extra.set(&blob, "owner", b"other type").context("set")?;
    }
    extra
        .set(&digest(30), "owner.appc", b"appc only")
        .context("set")?;
    expected.sort();
    ensure_eq!(
        extra
            .entries_of_type("owner.oci")
            .context("entries_of_type")?,
        expected,
        "entries_of_type: exact type, digest order"
    );
    ensure_eq!(
        extra
            .entries_of_type("missing")
            .context("entries_of_type")?,
        Vec::<(Digest, Vec<u8>)>::new(),
        "a type nobody has"
    );
    Ok(())
}

pub fn reopen_keeps_items(fixture: &ExtraFixture) -> TestResult {
    let blob = digest(40);
    {
        let extra = fixture.open()?;
        extra.set(&blob, "kept", b"value").context("set")?;
    }
    let extra = fixture.open()?;
    ensure_eq!(
        extra.get(&blob, "kept").context("get")?,
        Some(b"value".to_vec()),
        "item after reopen"
    );
    ensure_eq!(
        extra
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("digests")?,
        vec![blob],
        "digests() after reopen"
    );
    Ok(())
}

fn set_op(digest: &Digest, data_type: &str, value: &[u8]) -> ExtraOp {
    ExtraOp::Set {
        digest: digest.clone(),
        data_type: data_type.to_string(),
        value: value.to_vec(),
    }
}

fn remove_op(digest: &Digest, data_type: &str) -> ExtraOp {
    ExtraOp::Remove {
        digest: digest.clone(),
        data_type: data_type.to_string(),
    }
}

/// One item: (digest, data type, value).
type Item = (Digest, String, Option<Vec<u8>>);

/// Every item of every blob, sorted.
fn snapshot(extra: &dyn ExtraData) -> StorageResult<Vec<Item>> {
    let mut items = Vec::new();
    for digest in extra.sorted_digests().and_then(SortedDigests::into_vec)? {
        for data_type in extra.types(&digest)? {
            let value = extra.get(&digest, &data_type)?;
            items.push((digest.clone(), data_type, value));
        }
    }
    Ok(items)
}

/// A batch whose last operation is invalid (an empty data type) writes nothing of its sets,
/// overwrites and removals, on any blob; the same batch without it writes all of them.
pub fn batch_is_all_or_nothing(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let (a, b) = (digest(40), digest(41));
    extra.set(&a, "owner.oci", b"").context("set")?;
    extra.set(&a, "last-used", b"old").context("set")?;
    extra.set(&b, "owner.base", b"").context("set")?;
    let before = snapshot(extra.as_ref()).context("snapshot")?;
    let valid = vec![
        set_op(&b, "owner.oci", b""),
        set_op(&a, "last-used", b"new"),
        remove_op(&a, "owner.oci"),
        remove_op(&b, "absent"),
        set_op(&digest(42), "image-info", b"info"),
    ];
    let mut invalid = valid.clone();
    invalid.push(set_op(&b, "", b"x"));
    ensure!(
        extra.write_batch(&invalid).is_err(),
        "a batch with an empty data type was accepted"
    );
    ensure_eq!(
        snapshot(extra.as_ref()).context("snapshot")?,
        before,
        "items after a refused batch"
    );

    extra.write_batch(&valid).context("write_batch")?;
    ensure_eq!(
        extra.types(&a).context("types")?,
        strings(&["last-used"]),
        "types of the first blob after the batch"
    );
    ensure_eq!(
        extra.get(&a, "last-used").context("get")?,
        Some(b"new".to_vec()),
        "overwritten value"
    );
    ensure_eq!(
        extra.types(&b).context("types")?,
        strings(&["owner.base", "owner.oci"]),
        "types of the second blob after the batch"
    );
    ensure_eq!(
        extra.get(&digest(42), "image-info").context("get")?,
        Some(b"info".to_vec()),
        "item of a blob that had none"
    );
    extra.write_batch(&[]).context("empty batch")?;
    Ok(())
}

/// Operations of one batch apply in order, each seeing the ones before it.
pub fn batch_applies_in_order(fixture: &ExtraFixture) -> TestResult {
    let extra = fixture.open()?;
    let blob = digest(43);
    extra
        .write_batch(&[
            set_op(&blob, "gone", b"1"),
            remove_op(&blob, "gone"),
            remove_op(&blob, "back"),
            set_op(&blob, "back", b"2"),
            set_op(&blob, "twice", b"first"),
            set_op(&blob, "twice", b"second"),
        ])
        .context("write_batch")?;
    ensure_eq!(
        extra.types(&blob).context("types")?,
        strings(&["back", "twice"]),
        "types after the batch"
    );
    ensure_eq!(
        extra.get(&blob, "twice").context("get")?,
        Some(b"second".to_vec()),
        "value set twice"
    );
    Ok(())
}
