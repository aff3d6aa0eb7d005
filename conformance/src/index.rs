//! The `Index` suite: records by digest, prefix range scans, media types, paging, counts.
//! Digests are chosen directly (an index never sees content), so prefixes can be controlled.

use std::path::Path;
use std::sync::Arc;

use oci_store::traits::{
    Algorithm, BlobRecord, Digest, DigestPrefix, Index, RecordPages, StorageResult,
};

use crate::check::TestResult;
use crate::content::{fake_digest, SeededRandom};
use crate::fixture::{Fixture, SuiteTest};
use crate::{ensure, ensure_eq, Context};

pub type IndexFixture = Fixture<Arc<dyn Index>>;
pub type IndexTest = fn(&IndexFixture) -> TestResult;

pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub fn tests() -> Vec<SuiteTest<Arc<dyn Index>>> {
    crate::suite_list![IndexTest;
        upsert_get_remove,
        get_many_answers_like_get_in_order,
        prefix_range,
        prefix_range_edges,
        by_media_type,
        paging,
        count_and_total_size,
        reopen_keeps_records,
    ]
}

pub fn run_all(
    open: impl Fn(&Path) -> StorageResult<Arc<dyn Index>> + Clone + Send + Sync + 'static,
) -> TestResult {
    crate::run_suite(tests(), open)
}

pub fn record(digest: &Digest, size: u64, media_type: &str) -> BlobRecord {
    BlobRecord {
        digest: digest.clone(),
        size,
        media_type: media_type.to_string(),
        created_unix_ms: 1_700_000_000_000 + size as i64,
    }
}

fn upsert_all(index: &dyn Index, records: &[BlobRecord]) -> TestResult {
    for record in records {
        index
            .upsert(record)
            .context(format!("upserting {}", record.digest))?;
    }
    Ok(())
}

fn digests_of(records: &[BlobRecord]) -> Vec<Digest> {
    records.iter().map(|r| r.digest.clone()).collect()
}

fn prefix(text: &str) -> Result<DigestPrefix, String> {
    DigestPrefix::parse(text).context(format!("parsing prefix {text}"))
}

pub fn upsert_get_remove(fixture: &IndexFixture) -> TestResult {
    let index = fixture.open()?;
    let digest = fake_digest(Algorithm::Sha256, "", 1);
    ensure_eq!(
        index.get(&digest).context("get")?,
        None,
        "get() before upsert"
    );
    let first = record(&digest, 1234, LAYER);
    index.upsert(&first).context("upsert")?;
    ensure_eq!(
        index.get(&digest).context("get")?,
        Some(first.clone()),
        "get() after upsert"
    );

    let replaced = BlobRecord {
        media_type: MANIFEST.to_string(),
        size: 99,
        created_unix_ms: 42,
        ..first
    };
    index.upsert(&replaced).context("upsert replacing")?;
    ensure_eq!(
        index.get(&digest).context("get")?,
        Some(replaced),
        "get() after replace"
    );

    let big = record(&fake_digest(Algorithm::Sha512, "", 2), 5_000_000_000, LAYER);
    index.upsert(&big).context("upsert of a 5 GB record")?;
    ensure_eq!(
        index.get(&big.digest).context("get")?,
        Some(big.clone()),
        "sizes over 4 GiB"
    );

    ensure!(
        index.remove(&digest).context("remove")?,
        "remove() of a record returned false"
    );
    ensure!(
        !index.remove(&digest).context("remove")?,
        "second remove() returned true"
    );
    ensure_eq!(
        index.get(&digest).context("get")?,
        None,
        "get() after remove"
    );
    ensure_eq!(
        index.get(&big.digest).context("get")?,
        Some(big),
        "other record after remove"
    );
    Ok(())
}

/// `get_many` gives, in the order asked, what `get` gives for each digest: records, `None` for
/// digests never indexed or removed, and a digest asked twice answered twice.
pub fn get_many_answers_like_get_in_order(fixture: &IndexFixture) -> TestResult {
    let index = fixture.open()?;
    let records: Vec<BlobRecord> = (0..40)
        .map(|n| {
            record(
                &fake_digest(Algorithm::ALL[n % 2], "", 500 + n as u64),
                n as u64,
                LAYER,
            )
        })
        .collect();
    upsert_all(&*index, &records)?;
    index.remove(&records[3].digest).context("remove")?;
    let mut asked: Vec<Digest> = digests_of(&records).into_iter().rev().collect();
    asked.push(fake_digest(Algorithm::Sha256, "", 9_999));
    asked.push(records[7].digest.clone());
    let mut expected = Vec::new();
    for digest in &asked {
        expected.push(index.get(digest).context("get")?);
    }
    ensure_eq!(
        index.get_many(&asked).context("get_many")?,
        expected,
        "get_many() against get() of each"
    );
    ensure_eq!(
        expected.iter().filter(|found| found.is_none()).count(),
        2,
        "the removed record and the never indexed one are absent"
    );
    ensure_eq!(
        index.get_many(&[]).context("get_many of nothing")?,
        Vec::<Option<BlobRecord>>::new(),
        "get_many() of no digests"
    );
    Ok(())
}

pub fn prefix_range(fixture: &IndexFixture) -> TestResult {
    let index = fixture.open()?;
    let a = fake_digest(Algorithm::Sha256, "abcd00", 1);
    let b = fake_digest(Algorithm::Sha256, "abcd11", 2);
    let c = fake_digest(Algorithm::Sha512, "abcd22", 3);
    let d = fake_digest(Algorithm::Sha512, "abcdff", 4);
    let near = fake_digest(Algorithm::Sha256, "abce00", 5);
    let inside = fake_digest(Algorithm::Sha256, "00abcd", 6);
    let below = fake_digest(Algorithm::Sha256, "abcc", 7);
    let all = [&d, &near, &a, &inside, &c, &b, &below];
    for (position, digest) in all.iter().enumerate() {
        index
            .upsert(&record(digest, position as u64 + 1, LAYER))
            .context(format!("upsert {digest}"))?;
    }
    let scan = |text: &str, limit: usize| -> Result<Vec<Digest>, String> {
        let records = index
            .by_prefix(&prefix(text)?, limit)
            .context(format!("by_prefix({text}, {limit})"))?;
        Ok(digests_of(&records))
    };
    let every = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    ensure_eq!(
        scan("abcd", 100)?,
        every,
        "bare prefix matches both algorithms, in order"
    );
    ensure_eq!(
        scan("sha256:abcd", 100)?,
        vec![a.clone(), b.clone()],
        "sha256:abcd"
    );
    ensure_eq!(
        scan("sha512-abcd", 100)?,
        vec![c.clone(), d.clone()],
        "sha512-abcd"
    );
    ensure_eq!(scan("abcd", 1)?, vec![a.clone()], "limit 1");
    ensure_eq!(scan("abcd", 3)?, every[..3].to_vec(), "limit 3");
    ensure_eq!(scan("abcd1", 100)?, vec![b.clone()], "odd-length prefix");
    ensure_eq!(
        scan(a.as_str(), 100)?,
        vec![a.clone()],
        "full digest as prefix"
    );
    ensure_eq!(
        scan("0123", 100)?,
        Vec::<Digest>::new(),
        "prefix without match"
    );
    let records = index
        .by_prefix(&prefix("sha256:abcd00")?, 10)
        .context("by_prefix")?;
    ensure_eq!(
        records,
        vec![record(&a, 3, LAYER)],
        "by_prefix returns whole records"
    );
    Ok(())
}

/// Range ends a range scan can get wrong: all-`f` prefixes (no next key), neighbours that
/// differ in the last character, an algorithm name that is itself a prefix of the key space.
pub fn prefix_range_edges(fixture: &IndexFixture) -> TestResult {
    let index = fixture.open()?;
    let top256 = Digest::parse(&format!("sha256:{}", "f".repeat(64))).context("all-f digest")?;
    let top512 = Digest::parse(&format!("sha512:{}", "f".repeat(128))).context("all-f digest")?;
    let under = fake_digest(Algorithm::Sha256, "fffe", 1);
    let bottom = Digest::parse(&format!("sha512:{}", "0".repeat(128))).context("all-0 digest")?;
    upsert_all(
        &*index,
        &[
            record(&top256, 1, LAYER),
            record(&top512, 2, LAYER),
            record(&under, 3, LAYER),
            record(&bottom, 4, LAYER),
        ],
    )?;
    let scan = |text: &str| -> Result<Vec<Digest>, String> {
        Ok(digests_of(
            &index
                .by_prefix(&prefix(text)?, 100)
                .context(format!("by_prefix({text})"))?,
        ))
    };
    ensure_eq!(scan("ffff")?, vec![top256.clone(), top512.clone()], "ffff");
    ensure_eq!(scan("sha256:ffff")?, vec![top256.clone()], "sha256:ffff");
    ensure_eq!(scan("fffe")?, vec![under.clone()], "fffe");
    ensure_eq!(scan("0000")?, vec![bottom.clone()], "0000");
    ensure_eq!(scan("sha256:0000")?, Vec::<Digest>::new(), "sha256:0000");
    Ok(())
}

pub fn by_media_type(fixture: &IndexFixture) -> TestResult {
    let index = fixture.open()?;
    let records: Vec<BlobRecord> = (0..9u64)
        .map(|n| {
            let media_type = [LAYER, LAYER_GZIP, MANIFEST][n as usize % 3];
            let algorithm = Algorithm::ALL[n as usize % 2];
            record(&fake_digest(algorithm, "", 100 + n), n + 1, media_type)
        })
        .collect();
    upsert_all(&*index, &records)?;
    for media_type in [LAYER, LAYER_GZIP, MANIFEST] {
        let mut expected: Vec<BlobRecord> = records
            .iter()
            .filter(|r| r.media_type == media_type)
            .cloned()
            .collect();
        expected.sort_by(|x, y| x.digest.cmp(&y.digest));
        ensure_eq!(
            index.by_media_type(media_type).context("by_media_type")?,
            expected,
            "by_media_type({media_type}): exact match, digest order"
        );
    }
    ensure_eq!(
        index
            .by_media_type("application/vnd.oci.image")
            .context("by_media_type")?,
        Vec::<BlobRecord>::new(),
        "a media type prefix matches nothing"
    );
    // Replacing a record moves it to its new media type.
    let moved = BlobRecord {
        media_type: MANIFEST.to_string(),
        ..records[0].clone()
    };
    index.upsert(&moved).context("upsert")?;
    ensure!(
        !digests_of(&index.by_media_type(LAYER).context("by_media_type")?).contains(&moved.digest),
        "{} still listed under its old media type",
        moved.digest
    );
    ensure!(
        index
            .by_media_type(MANIFEST)
            .context("by_media_type")?
            .contains(&moved),
        "{} not listed under its new media type",
        moved.digest
    );
    // Removing a record removes it from its media type.
    index.remove(&moved.digest).context("remove")?;
    ensure!(
        !digests_of(&index.by_media_type(MANIFEST).context("by_media_type")?)
            .contains(&moved.digest),
        "{} listed by media type after remove",
        moved.digest
    );
    Ok(())
}

pub fn paging(fixture: &IndexFixture) -> TestResult {
    let index = fixture.open()?;
    let mut random = SeededRandom::new(77);
    let mut records: Vec<BlobRecord> = (0..25u64)
        .map(|n| {
            let algorithm = Algorithm::ALL[random.below(2) as usize];
            record(&fake_digest(algorithm, "", 200 + n), n + 1, LAYER)
        })
        .collect();
    upsert_all(&*index, &records)?;
    records.sort_by(|x, y| x.digest.cmp(&y.digest));

    ensure_eq!(
        index.page(None, 10).context("page 1")?,
        records[..10].to_vec(),
        "first page"
    );
    ensure_eq!(
        index.page(Some(&records[9].digest), 10).context("page 2")?,
        records[10..20].to_vec(),
        "second page"
    );
    ensure_eq!(
        index
            .page(Some(&records[19].digest), 10)
            .context("page 3")?,
        records[20..].to_vec(),
        "last, partial page"
    );
    ensure_eq!(
        index
            .page(Some(&records[24].digest), 10)
            .context("page after last")?,
        Vec::<BlobRecord>::new(),
        "page after the last record"
    );
    // `after` need not be indexed: the page starts after where it would be.
    let removed = records.remove(12);
    index.remove(&removed.digest).context("remove")?;
    ensure_eq!(
        index
            .page(Some(&removed.digest), 3)
            .context("page after a removed digest")?,
        records[12..15].to_vec(),
        "page after a digest that is not indexed"
    );
    let iterated: Vec<BlobRecord> = RecordPages::new(&*index, 7)
        .collect::<Result<_, _>>()
        .context("iterating with RecordPages")?;
    ensure_eq!(iterated, records, "RecordPages over pages of 7");
    let exact: Vec<BlobRecord> = RecordPages::new(&*index, 24)
        .collect::<Result<_, _>>()
        .context("iterating with RecordPages")?;
    ensure_eq!(
        exact,
        records,
        "RecordPages with a page size equal to the count"
    );
    Ok(())
}

pub fn count_and_total_size(fixture: &IndexFixture) -> TestResult {
    let index = fixture.open()?;
    let totals = |index: &dyn Index| -> Result<(u64, u64), String> {
        Ok((
            index.count().context("count")?,
            index.total_size().context("total_size")?,
        ))
    };
    ensure_eq!(totals(&*index)?, (0, 0), "an empty index");
    let a = record(&fake_digest(Algorithm::Sha256, "", 1), 10, LAYER);
    let b = record(&fake_digest(Algorithm::Sha512, "", 2), 20, LAYER);
    let c = record(
        &fake_digest(Algorithm::Sha256, "", 3),
        5_000_000_000,
        MANIFEST,
    );
    upsert_all(&*index, &[a.clone(), b.clone(), c.clone()])?;
    ensure_eq!(totals(&*index)?, (3, 5_000_000_030), "after three upserts");
    index
        .upsert(&BlobRecord {
            size: 25,
            ..b.clone()
        })
        .context("replace")?;
    ensure_eq!(
        totals(&*index)?,
        (3, 5_000_000_035),
        "after replacing a record"
    );
    index.upsert(&a).context("same record again")?;
    ensure_eq!(
        totals(&*index)?,
        (3, 5_000_000_035),
        "after upserting an identical record"
    );
    index.remove(&c.digest).context("remove")?;
    ensure_eq!(totals(&*index)?, (2, 35), "after remove");
    index.remove(&c.digest).context("remove again")?;
    ensure_eq!(totals(&*index)?, (2, 35), "after removing a missing record");
    Ok(())
}

pub fn reopen_keeps_records(fixture: &IndexFixture) -> TestResult {
    let kept = record(&fake_digest(Algorithm::Sha512, "beef", 1), 77, MANIFEST);
    {
        let index = fixture.open()?;
        index.upsert(&kept).context("upsert")?;
    }
    let index = fixture.open()?;
    ensure_eq!(
        index.get(&kept.digest).context("get")?,
        Some(kept.clone()),
        "after reopen"
    );
    ensure_eq!(
        index.by_prefix(&prefix("beef")?, 10).context("by_prefix")?,
        vec![kept],
        "prefix scan after reopen"
    );
    Ok(())
}
