//! Section `kv`: single-operation key/value commits and reads per metadata backend, next to the
//! raw library doing the same commit, and through the base store.

use std::path::Path;
use std::time::Duration;

use oci_store::traits::registry::{backends_for, open_kv_store};
use oci_store::traits::Role;
use oci_store::{open_store, BackendChoice, WriteOptions};

use super::kv_contenders::{KvContender, OurKvStore, OurStore};
use super::measure::{
    grouped, median, rate, ratio, section_title, timed, BenchResult, Random, Table,
};
use super::raw_lmdb::RawLmdb;
use super::raw_sqlite::RawSqlite;
use super::settings::Settings;

const DATA_TYPE: &str = "bench.ref";
/// About the size of a descriptor a ref points at.
const VALUE_LEN: usize = 160;
/// Puts (gets) a contender runs before the next one takes its turn.
const PUT_SLICE: usize = 50;
const GET_SLICE: usize = 1_000;
/// The target: our put commits at least this share of the raw commit rate.
const PUT_TARGET: f64 = 0.80;

struct Contender {
    label: &'static str,
    is_reference: bool,
    implementation: Box<dyn KvContender>,
    put_rates: Vec<f64>,
    get_rates: Vec<f64>,
}

pub fn run(settings: &Settings) -> BenchResult<()> {
    section_title(&format!(
        "kv: one entry per commit; {} puts and {} gets per contender and round (contenders \
         take turns every {PUT_SLICE} puts / {GET_SLICE} gets), {} rounds, median round shown",
        grouped(settings.kv_puts as f64),
        grouped(settings.kv_gets as f64),
        settings.rounds
    ));
    let backends: Vec<&str> = backends_for(Role::Kv)
        .into_iter()
        .filter(|name| settings.wants_backend(name))
        .collect();
    if backends.is_empty() {
        println!("  no key/value backend registered (or selected)");
        return Ok(());
    }
    std::fs::create_dir_all(&settings.data_dir)?;
    let scratch = tempfile::Builder::new()
        .prefix("kv-")
        .tempdir_in(&settings.data_dir)?;
    let mut table = Table::new(&["backend", "contender", "put/s", "vs raw", "get/s", "vs raw"]);
    let mut verdicts = Vec::new();
    for backend in backends {
        let mut contenders = open_contenders(backend, &scratch.path().join(backend))?;
        measure(settings, &mut contenders)?;
        let reference = contenders.iter().find(|c| c.is_reference);
        let reference_put = reference.map(|c| median(&c.put_rates));
        let reference_get = reference.map(|c| median(&c.get_rates));
        for contender in &contenders {
            let put = median(&contender.put_rates);
            let get = median(&contender.get_rates);
            table.row(vec![
                backend.to_string(),
                contender.label.to_string(),
                grouped(put),
                ratio(put, reference_put.filter(|_| !contender.is_reference)),
                grouped(get),
                ratio(get, reference_get.filter(|_| !contender.is_reference)),
            ]);
            if contender.label == "KvStore::put/get" {
                if let Some(reference_put) = reference_put {
                    let share = put / reference_put;
                    verdicts.push(format!(
                        "  {backend}: KvStore::put at {share:.2} of the raw commit rate \
                         (target >= {PUT_TARGET:.2}): {}",
                        if share >= PUT_TARGET { "met" } else { "MISSED" }
                    ));
                }
            }
        }
    }
    table.print();
    println!();
    for verdict in verdicts {
        println!("{verdict}");
    }
    Ok(())
}

/// The raw reference of `backend` (when there is one) first, then ours.
fn open_contenders(backend: &str, dir: &Path) -> BenchResult<Vec<Contender>> {
    let contender = |label, is_reference, implementation| Contender {
        label,
        is_reference,
        implementation,
        put_rates: Vec::new(),
        get_rates: Vec::new(),
    };
    let mut contenders = Vec::new();
    match backend {
        "sqlite" => contenders.push(contender(
            "raw rusqlite",
            true,
            Box::new(RawSqlite::open(&make_dir(dir, "raw")?)?) as Box<dyn KvContender>,
        )),
        "lmdb" => contenders.push(contender(
            "raw heed",
            true,
            Box::new(RawLmdb::open(&make_dir(dir, "raw")?)?),
        )),
        _ => {}
    }
    contenders.push(contender(
        "KvStore::put/get",
        false,
        Box::new(OurKvStore(open_kv_store(backend, &make_dir(dir, "kv")?)?)),
    ));
    let choice = BackendChoice::default().metadata(backend);
    contenders.push(contender(
        "Store::put_data/get_data",
        false,
        Box::new(OurStore {
            store: open_store(&make_dir(dir, "store")?, &choice)?,
            referenced_blob: None,
        }),
    ));
    let store = open_store(&make_dir(dir, "store-with-blob")?, &choice)?;
    let blob = store
        .write_bytes(b"the blob every entry references", &WriteOptions::default())?
        .digest;
    contenders.push(contender(
        "Store::put_data, blob ref",
        false,
        Box::new(OurStore {
            store,
            referenced_blob: Some(blob),
        }),
    ));
    Ok(contenders)
}

fn make_dir(parent: &Path, name: &str) -> BenchResult<std::path::PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Rounds of puts, then rounds of gets. Within a round the contenders take turns every
/// [`PUT_SLICE`] puts ([`GET_SLICE`] gets), the first of each turn rotating, so that load from
/// other processes (fsyncs above all) falls on every contender alike.
fn measure(settings: &Settings, contenders: &mut [Contender]) -> BenchResult<()> {
    let mut value = vec![0u8; VALUE_LEN];
    Random::seeded(7).fill(&mut value);
    for round in 0..settings.rounds {
        // Keys are made before timing starts, so only the store's work is timed.
        let keys: Vec<String> = (0..settings.kv_puts).map(|n| key_of(round, n)).collect();
        let elapsed = interleaved(contenders, keys.len(), PUT_SLICE, |contender, range| {
            for key in &keys[range] {
                contender
                    .implementation
                    .put(DATA_TYPE, key, &value)
                    .map_err(|e| format!("{}: put: {e}", contender.label))?;
            }
            Ok(())
        })?;
        for (contender, elapsed) in contenders.iter_mut().zip(elapsed) {
            contender.put_rates.push(rate(keys.len(), elapsed));
        }
    }
    for round in 0..settings.rounds {
        // Every contender reads the same keys, in the same order.
        let mut random = Random::seeded(round as u64);
        let keys: Vec<String> = (0..settings.kv_gets)
            .map(|_| {
                let written_round = random.below(settings.rounds as u64) as usize;
                key_of(
                    written_round,
                    random.below(settings.kv_puts as u64) as usize,
                )
            })
            .collect();
        let elapsed = interleaved(contenders, keys.len(), GET_SLICE, |contender, range| {
            for key in &keys[range] {
                let found = contender
                    .implementation
                    .get(DATA_TYPE, key)
                    .map_err(|e| format!("{}: get: {e}", contender.label))?;
                if !found {
                    let label = contender.label;
                    return Err(format!("{label}: {key} was written but is not found").into());
                }
            }
            Ok(())
        })?;
        for (contender, elapsed) in contenders.iter_mut().zip(elapsed) {
            contender.get_rates.push(rate(keys.len(), elapsed));
        }
    }
    Ok(())
}

/// Runs `work` on operations `0..operations` of every contender, in turns of `slice`
/// operations; returns each contender's total time.
fn interleaved(
    contenders: &mut [Contender],
    operations: usize,
    slice: usize,
    mut work: impl FnMut(&mut Contender, std::ops::Range<usize>) -> BenchResult<()>,
) -> BenchResult<Vec<Duration>> {
    let count = contenders.len();
    let mut elapsed = vec![Duration::ZERO; count];
    for (turn, start) in (0..operations).step_by(slice).enumerate() {
        let range = start..(start + slice).min(operations);
        for offset in 0..count {
            let position = (turn + offset) % count;
            let (outcome, spent) = timed(|| work(&mut contenders[position], range.clone()));
            outcome?;
            elapsed[position] += spent;
        }
    }
    Ok(elapsed)
}

fn key_of(round: usize, number: usize) -> String {
    format!("registry.example/bench/round-{round}:tag-{number:07}")
}
