//! Section `scale`: `gc`, `fsck` and `blob ls` (whole processes) on a store of 1,000,000
//! blobs against one of 100,000: time must grow at most linearly (≤ 11× for 10×) and memory
//! must stay bounded (here: ≤ 2× the small store's). Memory is shown two ways: the peak
//! RSS (`wait4`), which counts the database file pages mapped into the process (SQLite's
//! `mmap_size`, LMDB's map: page cache, shared and reclaimable), and the peak of the
//! process's own anonymous memory (`RssAnon`, heap and stacks), sampled while it runs.
//!
//! The stores are filled below the CLI, since a million single commits would take hours:
//! content files written straight into the `fs` layout (`blobs/sha256/<hex>`, the blob of
//! number n is its 8 little-endian bytes) once into a content directory, lent to the large
//! store and hard-linked into the small one, index records through `Index::upsert_many` in
//! digest order, and one key/value
//! entry per blob that references it (`bench.hold`, through `KvStore::write_batch`) as its
//! holder, so no GC may take it. Batches of 10,000. Removed after the section
//! unless `OCI_STORE_BENCH_KEEP=1` (then kept in `<data>/scale-…` for the next run).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_store::traits::{Algorithm, BlobRecord, Digest, KvOp, Role};
use oci_store::{open_store, BackendChoice};

use super::figures::{Figure, Figures, Target};
use super::measure::{grouped, median, section_title, timed, BenchResult};
use super::oci_cli::{self, Config};
use super::oci_inputs::remove_if_present;
use super::process::{self, Run};
use super::settings::Settings;

const BATCH: usize = 10_000;
const FILLED_MARKER: &str = "bench-filled";
const HOLD_TYPE: &str = "bench.hold";
/// 10× the blobs may cost at most this many times the time.
const TIME_TARGET: f64 = 11.0;
/// …and at most this many times the memory.
const MEMORY_TARGET: f64 = 2.0;

const COMMANDS: [(&str, &[&str]); 3] = [
    ("gc", &["gc"]),
    ("fsck", &["fsck"]),
    ("blob ls", &["blob", "ls"]),
];

pub fn run(settings: &Settings) -> BenchResult<()> {
    let large = settings.scale_blobs;
    let small = (large / 10).max(1);
    section_title(&format!(
        "scale: gc, fsck and blob ls on {} blobs against {} blobs, whole processes, {} round(s), \
         median shown; stores warm from their fill or the previous command",
        grouped(large as f64),
        grouped(small as f64),
        settings.heavy_rounds
    ));
    let mut figures = Figures::default();
    // One content directory of `large` files serves both sizes (the small store links the
    // first tenth of the numbers), and one configuration's stores exist at a time: about
    // 4 GB of 4 KiB blocks at scale 1 instead of twice that. Unless the stores are kept, the
    // large store takes the content directory itself (one rename in, one back), so its
    // million files are neither linked nor unlinked per configuration.
    let content = content_dir(settings, large)?;
    let lend = !settings.keep;
    for config in oci_cli::configs(settings) {
        let stores = [
            filled_store(settings, &content, config, small, false)?,
            filled_store(settings, &content, config, large, lend)?,
        ];
        let mut results: Vec<[Vec<Run>; 2]> = Vec::new();
        for (_, args) in COMMANDS {
            let mut per_size: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
            for (size, store) in stores.iter().enumerate() {
                for _ in 0..settings.heavy_rounds {
                    process::run(&mut Command::new("sync"))?;
                    let mut command = oci_cli::command(store, config, args);
                    command.env(process::SAMPLE_HEAP, "1");
                    per_size[size].push(process::run(&mut command)?);
                }
            }
            results.push(per_size);
        }
        if lend {
            std::fs::rename(stores[1].join("blobs/sha256"), &content)?;
        }
        if !settings.keep {
            for store in &stores {
                remove_if_present(store)?;
            }
        }
        for ((name, _), [small_runs, large_runs]) in COMMANDS.iter().zip(&results) {
            let secs = |runs: &[Run]| median(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>());
            let rss = |runs: &[Run]| runs.iter().map(Run::max_rss_mib).fold(0.0, f64::max);
            let heap = |runs: &[Run]| {
                runs.iter()
                    .filter_map(Run::peak_anon_mib)
                    .fold(0.0, f64::max)
            };
            // Each measure of the large store against the small one: what, in which unit, how
            // it is taken from the runs, and the growth it may show.
            let measures: [Measure; 3] = [
                ("time", "s", &secs, TIME_TARGET),
                ("peak RSS", "MiB", &rss, MEMORY_TARGET),
                ("peak heap", "MiB", &heap, MEMORY_TARGET),
            ];
            for (measure, unit, of, target) in measures {
                figures.push(Figure {
                    config: config.label.to_string(),
                    work: format!("{name}: {measure}, {} blobs", grouped(large as f64)),
                    ours: of(large_runs),
                    reference_name: format!("{} blobs", grouped(small as f64)),
                    reference: Some(of(small_runs)),
                    unit,
                    reference_lower_bound: false,
                    target: Target::RatioAtMost(target),
                    rss_mib: Some(rss(large_runs)),
                });
            }
        }
    }
    figures.print();
    if !settings.keep {
        remove_if_present(&content)?;
    }
    Ok(())
}

/// A measure of the scale section: its name, unit, how it is read from the runs, and how many
/// times the small store's value the large store's may be.
type Measure<'a> = (&'a str, &'static str, &'a dyn Fn(&[Run]) -> f64, f64);

fn digest_of(number: u64) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, &number.to_le_bytes())
}

/// The numbers 0..count in the order of their digests.
fn in_digest_order(count: usize) -> Vec<(u64, Digest)> {
    let mut all: Vec<(u64, Digest)> = (0..count as u64).map(|n| (n, digest_of(n))).collect();
    all.sort_by(|a, b| a.1.hex().cmp(b.1.hex()));
    all
}

/// `<data>/scale-content-N/`: the content files of blobs 0..N, written once.
fn content_dir(settings: &Settings, count: usize) -> BenchResult<PathBuf> {
    let dir = settings.data_dir.join(format!("scale-content-{count}"));
    if dir.exists() {
        return Ok(dir);
    }
    let partial = dir.with_extension("partial");
    remove_if_present(&partial)?;
    std::fs::create_dir_all(&partial)?;
    let (outcome, elapsed) = timed(|| -> BenchResult<()> {
        for n in 0..count as u64 {
            let mut file = std::fs::File::create(partial.join(digest_of(n).hex()))?;
            file.write_all(&n.to_le_bytes())?;
        }
        Ok(())
    });
    outcome?;
    process::run(&mut Command::new("sync"))?;
    std::fs::rename(&partial, &dir)?;
    println!(
        "  wrote {} content files in {:.1} s",
        grouped(count as f64),
        elapsed.as_secs_f64()
    );
    Ok(dir)
}

/// A store of `count` held, indexed blobs for `config`, reusing a previous run's.
fn filled_store(
    settings: &Settings,
    content: &Path,
    config: Config,
    count: usize,
    lend: bool,
) -> BenchResult<PathBuf> {
    let dir = settings
        .data_dir
        .join(format!("scale-{}-{count}", config.label));
    if std::fs::read_to_string(dir.join(FILLED_MARKER)).is_ok_and(|t| t.trim() == count.to_string())
    {
        return Ok(dir);
    }
    remove_if_present(&dir)?;
    let (outcome, elapsed) = timed(|| fill(&dir, content, config, count, lend));
    outcome?;
    process::run(&mut Command::new("sync"))?;
    std::fs::write(dir.join(FILLED_MARKER), count.to_string())?;
    println!(
        "  {}: filled a store of {} blobs in {:.1} s ({}, upsert_many, write_batch)",
        config.label,
        grouped(count as f64),
        elapsed.as_secs_f64(),
        if lend {
            "content directory moved in"
        } else {
            "hard links"
        }
    );
    Ok(dir)
}

/// `lend`: move the whole content directory in as the store's `blobs/sha256` (it must hold
/// exactly `count` files) instead of linking each file.
fn fill(dir: &Path, content: &Path, config: Config, count: usize, lend: bool) -> BenchResult<()> {
    let choice = BackendChoice::default()
        .metadata(config.metadata)
        .role(Role::Blobs, "fs");
    let store = open_store(dir, &choice)?;
    let blobs = dir.join("blobs/sha256");
    if lend {
        // The fresh store's blob directory is empty: remove_dir refuses anything else.
        if blobs.exists() {
            std::fs::remove_dir(&blobs)?;
        }
        std::fs::rename(content, &blobs)?;
    }
    let ordered = in_digest_order(count);
    for batch in ordered.chunks(BATCH) {
        if !lend {
            for (_, digest) in batch {
                std::fs::hard_link(content.join(digest.hex()), blobs.join(digest.hex()))?;
            }
        }
        let records: Vec<BlobRecord> = batch
            .iter()
            .map(|(n, digest)| BlobRecord {
                digest: digest.clone(),
                size: 8,
                media_type: "application/octet-stream".to_string(),
                created_unix_ms: 1_700_000_000_000 + *n as i64,
            })
            .collect();
        store.index().upsert_many(&records)?;
        let holds: Vec<KvOp> = batch
            .iter()
            .map(|(n, digest)| KvOp::Put {
                data_type: HOLD_TYPE.to_string(),
                key: format!("{n:07}"),
                value: Vec::new(),
                blob: Some(digest.clone()),
            })
            .collect();
        store.kv_store().write_batch(&holds)?;
    }
    Ok(())
}
