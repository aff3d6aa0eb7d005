//! Section `resolve`: latency of resolving partial digests against a large index, per index
//! backend. The index is filled through `Index::upsert_many` (the backend's own format, one
//! transaction per batch) and kept in the data directory for the next run.

use std::time::{Duration, Instant};

use oci_store::traits::registry::{backends_for, open_index};
use oci_store::traits::{Algorithm, BlobRecord, Digest, DigestPrefix, Index, Role};
use oci_store::{open_store, BackendChoice, Store, StoreError};

use super::measure::{grouped, rate, section_title, timed, BenchResult, Latencies, Random, Table};
use super::settings::Settings;

/// Records per `upsert_many` call (one transaction each) while filling.
const FILL_BATCH: usize = 10_000;
/// Single-commit upserts timed to show what filling one commit at a time would cost.
const SINGLE_UPSERTS: usize = 500;
/// Lookups run before timing, so the figures are of a warm page cache.
const WARM_UP_LOOKUPS: usize = 1_000;
/// As many candidates as `Store::resolve` asks for.
const PREFIX_LIMIT: usize = 11;
/// The target for p99 resolution latency.
const P99_TARGET_MICROS: f64 = 100.0;
/// Marks a completely filled index directory; holds the record count.
const FILLED_MARKER: &str = "bench-filled";

const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

pub fn run(settings: &Settings) -> BenchResult<()> {
    section_title(&format!(
        "resolve: bare-hex prefixes of 8-12 characters of existing digests, {} indexed blobs, \
         {} timed lookups after {} warm-up",
        grouped(settings.indexed_blobs as f64),
        grouped(settings.lookups as f64),
        grouped(WARM_UP_LOOKUPS as f64)
    ));
    let backends: Vec<&str> = backends_for(Role::Index)
        .into_iter()
        .filter(|name| settings.wants_backend(name))
        .collect();
    if backends.is_empty() {
        println!("  no index backend registered (or selected)");
        return Ok(());
    }
    std::fs::create_dir_all(&settings.data_dir)?;
    let mut table = Table::new(&[
        "backend",
        "call",
        "p50 µs",
        "p99 µs",
        "max µs",
        "mean µs",
        "ambiguous",
    ]);
    let mut notes = Vec::new();
    for backend in backends {
        let store = filled_store(settings, backend, &mut notes)?;
        let single_rate = single_upsert_rate(settings, backend)?;
        notes.push(format!(
            "  {backend}: Index::upsert one commit each: {} records/s, so {} records would take \
             {:.0} s that way",
            grouped(single_rate),
            grouped(settings.indexed_blobs as f64),
            settings.indexed_blobs as f64 / single_rate
        ));
        let resolve = time_lookups(settings, &store, Lookup::StoreResolve)?;
        let by_prefix = time_lookups(settings, &store, Lookup::IndexByPrefix)?;
        for (call, (latencies, ambiguous)) in [
            ("Store::resolve(hex)", &resolve),
            ("Index::by_prefix(sha256:hex)", &by_prefix),
        ] {
            table.row(vec![
                backend.to_string(),
                call.to_string(),
                format!("{:.1}", latencies.percentile_micros(50.0)),
                format!("{:.1}", latencies.percentile_micros(99.0)),
                format!("{:.1}", latencies.max_micros()),
                format!("{:.1}", latencies.mean_micros()),
                ambiguous.to_string(),
            ]);
        }
        let p99 = resolve.0.percentile_micros(99.0);
        notes.push(format!(
            "  {backend}: Store::resolve p99 {p99:.1} µs (target <= {P99_TARGET_MICROS:.0} µs): {}",
            if p99 <= P99_TARGET_MICROS {
                "met"
            } else {
                "MISSED"
            }
        ));
    }
    table.print();
    println!();
    for note in notes {
        println!("{note}");
    }
    Ok(())
}

/// The `number`th blob of the synthetic index. Deterministic, so lookups can name existing
/// digests without keeping a million of them in memory.
fn digest_of(number: u64) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, &number.to_le_bytes())
}

fn record_of(number: u64) -> BlobRecord {
    BlobRecord {
        digest: digest_of(number),
        size: 1024 + number.wrapping_mul(2_654_435_761) % 50_000_000,
        media_type: MEDIA_TYPES[(number % MEDIA_TYPES.len() as u64) as usize].to_string(),
        created_unix_ms: 1_700_000_000_000 + number as i64,
    }
}

/// A store whose index holds `settings.indexed_blobs` records, reusing a previous run's.
fn filled_store(settings: &Settings, backend: &str, notes: &mut Vec<String>) -> BenchResult<Store> {
    let count = settings.indexed_blobs;
    let dir = settings.data_dir.join(format!("resolve-{backend}-{count}"));
    let marker = dir.join(FILLED_MARKER);
    let choice = BackendChoice::default().metadata(backend);
    if std::fs::read_to_string(&marker).is_ok_and(|text| text.trim() == count.to_string()) {
        let store = open_store(&dir, &choice)?;
        if store.index().count()? == count as u64 {
            notes.push(format!(
                "  {backend}: index reused from {} (delete it to refill)",
                dir.display()
            ));
            return Ok(store);
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let store = open_store(&dir, &choice)?;
    let (outcome, elapsed) = timed(|| fill(store.index().as_ref(), count));
    outcome?;
    // Write the fill back now, so its writeback does not compete with the timed lookups.
    std::process::Command::new("sync").status()?;
    std::fs::write(&marker, count.to_string())?;
    notes.push(format!(
        "  {backend}: filled {} records in digest order with Index::upsert_many, batches of {}, \
         in {:.1} s ({} records/s)",
        grouped(count as f64),
        grouped(FILL_BATCH as f64),
        elapsed.as_secs_f64(),
        grouped(rate(count, elapsed))
    ));
    Ok(store)
}

/// Fills in digest order, as a bulk import would: inserting a million random keys one batch
/// at a time makes each transaction dirty pages all over both B-trees (minutes instead of
/// seconds), and the order does not change the depth of the tree that lookups walk.
fn fill(index: &dyn Index, count: usize) -> BenchResult<()> {
    let mut numbers: Vec<u64> = (0..count as u64).collect();
    numbers.sort_by_cached_key(|number| digest_of(*number).hex().to_string());
    for batch in numbers.chunks(FILL_BATCH) {
        let records: Vec<BlobRecord> = batch.iter().copied().map(record_of).collect();
        index.upsert_many(&records)?;
    }
    Ok(())
}

/// Commits per second of single `Index::upsert` calls on a fresh index.
fn single_upsert_rate(settings: &Settings, backend: &str) -> BenchResult<f64> {
    let scratch = tempfile::Builder::new()
        .prefix("upsert-")
        .tempdir_in(&settings.data_dir)?;
    let index = open_index(backend, scratch.path())?;
    let records: Vec<BlobRecord> = (0..SINGLE_UPSERTS as u64).map(record_of).collect();
    let (outcome, elapsed) = timed(|| records.iter().try_for_each(|r| index.upsert(r)));
    outcome?;
    drop(index);
    Ok(rate(SINGLE_UPSERTS, elapsed))
}

#[derive(Clone, Copy)]
enum Lookup {
    /// What a user typing a short id gets: parse, then a range scan per algorithm.
    StoreResolve,
    /// The index's range scan alone, algorithm given.
    IndexByPrefix,
}

/// Latencies of the timed lookups, and how many prefixes matched more than one digest.
fn time_lookups(
    settings: &Settings,
    store: &Store,
    lookup: Lookup,
) -> BenchResult<(Latencies, usize)> {
    let mut random = Random::seeded(42);
    let mut samples = Vec::with_capacity(settings.lookups);
    let mut ambiguous = 0;
    for attempt in 0..WARM_UP_LOOKUPS + settings.lookups {
        let expected = digest_of(random.below(settings.indexed_blobs as u64));
        let length = 8 + random.below(5) as usize;
        let hex = &expected.hex()[..length];
        let (found, elapsed) = match lookup {
            Lookup::StoreResolve => resolve_once(store, hex, &expected)?,
            Lookup::IndexByPrefix => by_prefix_once(store.index().as_ref(), hex, &expected)?,
        };
        if attempt >= WARM_UP_LOOKUPS {
            samples.push(elapsed);
            ambiguous += usize::from(found > 1);
        }
    }
    Ok((Latencies::new(samples), ambiguous))
}

/// Times one `Store::resolve`; returns how many digests matched.
fn resolve_once(store: &Store, hex: &str, expected: &Digest) -> BenchResult<(usize, Duration)> {
    let start = Instant::now();
    let outcome = store.resolve(hex);
    let elapsed = start.elapsed();
    match outcome {
        Ok(digest) if &digest == expected => Ok((1, elapsed)),
        Err(StoreError::Ambiguous { candidates, .. }) if candidates.contains(expected) => {
            Ok((candidates.len(), elapsed))
        }
        other => Err(format!("resolving {hex}: expected {expected}, got {other:?}").into()),
    }
}

/// Times one `Index::by_prefix`; returns how many digests matched.
fn by_prefix_once(
    index: &dyn Index,
    hex: &str,
    expected: &Digest,
) -> BenchResult<(usize, Duration)> {
    let prefix = DigestPrefix::parse(&format!("sha256:{hex}"))?;
    let start = Instant::now();
    let records = index.by_prefix(&prefix, PREFIX_LIMIT)?;
    let elapsed = start.elapsed();
    if !records.iter().any(|record| &record.digest == expected) {
        return Err(format!("by_prefix({prefix}) did not return {expected}").into());
    }
    Ok((records.len(), elapsed))
}
