//! Store benchmarks with a reference measured in the same run: each figure is printed next to
//! what the underlying library or coreutils achieve doing the same work, and their ratio.
//!
//! ```text
//! cargo bench --bench store_bench -- oci           # the OCI figures of issue 9, both configs
//! cargo bench --bench store_bench                  # every section
//! cargo bench --bench store_bench -- kv resolve    # some sections (or OCI_STORE_BENCH=kv,blobs)
//! cargo bench --bench store_bench -- serve         # `oci-store serve` against distribution
//! cargo bench --bench store_bench -- mirror        # `serve --mirror` against distribution's proxy
//! OCI_STORE_BENCH_SCALE=0.1 cargo bench --bench store_bench   # smaller N everywhere
//! ```
//!
//! Other knobs: `OCI_STORE_BENCH_ROUNDS` (default 3), `OCI_STORE_BENCH_HEAVY_ROUNDS` (1),
//! `OCI_STORE_BENCH_BACKENDS` (e.g. `lmdb`), `OCI_STORE_BENCH_PEER_LIMIT` (60 s),
//! `OCI_STORE_BENCH_KEEP` (keep the multi-GB scratch stores), `OCI_STORE_BENCH_DATA` (default
//! `target/bench-data`: inputs, caches, the plot). Peers: scripts/bench-setup.sh. See
//! docs/BENCHMARKS.md.

#[path = "store_bench/blobs.rs"]
mod blobs;
#[path = "store_bench/counting_proxy.rs"]
mod counting_proxy;
#[path = "store_bench/figures.rs"]
mod figures;
#[path = "store_bench/kv.rs"]
mod kv;
#[path = "store_bench/kv_contenders.rs"]
mod kv_contenders;
#[path = "store_bench/measure.rs"]
mod measure;
#[path = "store_bench/mirror.rs"]
mod mirror;
#[path = "store_bench/oci_cli.rs"]
mod oci_cli;
#[path = "store_bench/oci_concurrent.rs"]
mod oci_concurrent;
#[path = "store_bench/oci_export.rs"]
mod oci_export;
#[path = "store_bench/oci_import.rs"]
mod oci_import;
#[path = "store_bench/oci_inputs.rs"]
mod oci_inputs;
#[path = "store_bench/oci_many.rs"]
mod oci_many;
#[path = "store_bench/oci_rss.rs"]
mod oci_rss;
#[path = "store_bench/oci_scale.rs"]
mod oci_scale;
#[path = "store_bench/peers.rs"]
mod peers;
#[path = "store_bench/plot.rs"]
mod plot;
#[path = "store_bench/process.rs"]
mod process;
#[path = "store_bench/proxy_registry.rs"]
mod proxy_registry;
#[path = "store_bench/raw_lmdb.rs"]
mod raw_lmdb;
#[path = "store_bench/raw_sqlite.rs"]
mod raw_sqlite;
#[path = "store_bench/registry.rs"]
mod registry;
#[path = "store_bench/resolve.rs"]
mod resolve;
#[path = "store_bench/serve.rs"]
mod serve;
#[path = "store_bench/serve_client.rs"]
mod serve_client;
#[path = "store_bench/serve_server.rs"]
mod serve_server;
#[path = "store_bench/settings.rs"]
mod settings;

use oci_store::traits::registry::registered_backends;

use measure::{grouped, BenchResult};
use settings::Settings;

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some(process::MEASURE_CHILD) {
        process::measure_child(&arguments[1..]);
    }
    if let Err(error) = run() {
        eprintln!("store_bench: {error}");
        std::process::exit(1);
    }
}

fn run() -> BenchResult<()> {
    let settings = Settings::from_environment()?;
    print_header(&settings);
    let wants = |name: &str| settings.sections.iter().any(|s| s == name);
    let mut imports_done = false;
    let whole_run = std::time::Instant::now();
    for (position, section) in settings.sections.iter().enumerate() {
        let started = std::time::Instant::now();
        match section.as_str() {
            "kv" => kv::run(&settings)?,
            "resolve" => resolve::run(&settings)?,
            "blobs" => blobs::run(&settings)?,
            // One loop measures both, so their ratios come from the same passes.
            "oci-import" | "oci-archive" if !imports_done => {
                imports_done = true;
                oci_import::run(&settings, wants("oci-import"), wants("oci-archive"))?;
            }
            "oci-import" | "oci-archive" => {}
            "oci-export" => oci_export::run(&settings)?,
            "oci-all" => oci_many::run_import_all(&settings)?,
            "oci-list" => oci_many::run_list(&settings)?,
            "oci-rm" => oci_many::run_remove(&settings)?,
            "oci-gc" => oci_many::run_gc(&settings)?,
            "oci-prune" => oci_many::run_prune(&settings)?,
            "rss" => oci_rss::run(&settings)?,
            "concurrent" => oci_concurrent::run(&settings)?,
            "scale" => oci_scale::run(&settings)?,
            "registry" => registry::run(&settings)?,
            "serve" => serve::run(&settings)?,
            "mirror" => mirror::run(&settings)?,
            other => unreachable!("section {other} was validated by Settings"),
        }
        // The imported many-image stores serve the sections after `oci-all`: drop them once
        // the last of those has run, so the data directory stays small.
        let later = &settings.sections[position + 1..];
        if oci_many::SECTIONS.contains(&section.as_str())
            && !later
                .iter()
                .any(|s| oci_many::SECTIONS.contains(&s.as_str()))
            && !settings.keep
        {
            oci_many::remove_cached_stores(&settings)?;
        }
        // (`oci-archive` after `oci-import` ran inside it and takes no time of its own.)
        if started.elapsed().as_secs_f64() >= 0.05 {
            println!(
                "  ({section}: {:.0} s, building or reusing its inputs included)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!();
    println!(
        "  whole run: {:.1} min",
        whole_run.elapsed().as_secs_f64() / 60.0
    );
    println!("  load average at the end: {}", load_average());
    Ok(())
}

fn print_header(settings: &Settings) {
    let backends: Vec<&str> = registered_backends().iter().map(|r| r.name).collect();
    println!("oci-store benchmarks");
    println!("  machine:  {} cores, {}", cores(), cpu_model());
    // Other processes competing for the cores or the disk skew every figure: say so.
    println!("  load average at the start: {}", load_average());
    println!(
        "  sections: {}; backends: {}{}",
        settings.sections.join(" "),
        backends.join(", "),
        match &settings.backends {
            Some(only) => format!(" (selected: {})", only.join(", ")),
            None => String::new(),
        }
    );
    println!(
        "  scale {} (kv {} puts/round, {} indexed blobs, {} MiB blob), {} rounds, data in {}",
        settings.scale,
        grouped(settings.kv_puts as f64),
        grouped(settings.indexed_blobs as f64),
        settings.blob_bytes / (1024 * 1024),
        settings.rounds,
        settings.data_dir.display()
    );
    if settings
        .sections
        .iter()
        .any(|s| settings::OCI_SECTIONS.contains(&s.as_str()))
    {
        println!(
            "  oci: images of {} MB (4 layers), {} images in the many-image layout, {} MiB \
             layer for rss, {} blobs for scale; {} rounds, {} for the long ones \
             (OCI_STORE_BENCH_HEAVY_ROUNDS); oci-store = {}",
            settings
                .plot_bytes
                .iter()
                .map(|b| figures::megabytes(*b))
                .collect::<Vec<_>>()
                .join("/"),
            grouped(settings.many_images as f64),
            settings.large_layer_bytes / (1024 * 1024),
            grouped(settings.scale_blobs as f64),
            settings.rounds,
            settings.heavy_rounds,
            oci_cli::binary().display()
        );
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, usize::from)
}

/// The 1, 5 and 15 minute load averages of /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_string(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// `model name` of /proc/cpuinfo (what `lscpu` shows), or `unknown CPU`.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}
