//! Section `concurrent`: four processes importing four different images into one store at
//! once, against one process importing one of them: all must succeed, and the total
//! throughput (4 images over the wall time of all four) must be ≥ 1.5× that of one.
//!
//! Beside it, what bounds that ratio: `cp -r` + `sync` of the same four images' blobs (the
//! disk's limit for the same bytes) and the cores each side kept busy (CPU time over wall
//! time, from `wait4`).

use std::path::Path;
use std::time::Instant;

use super::figures::{megabytes, Figure, Figures, Target};
use super::measure::{median, section_title, BenchResult};
use super::oci_cli::{self, Config};
use super::oci_import::before_pass;
use super::oci_inputs::{self, remove_if_present, Image};
use super::peers;
use super::process::{self, Run};
use super::settings::Settings;

const PROCESSES: usize = 4;
const THROUGHPUT_TARGET: f64 = 1.5;

pub fn run(settings: &Settings) -> BenchResult<()> {
    let images: Vec<Image> = (0..PROCESSES)
        .map(|n| {
            oci_inputs::image(
                &settings.data_dir,
                &format!("c{n}"),
                settings.concurrent_image_bytes,
                4,
                100 + n as u64,
            )
        })
        .collect::<BenchResult<_>>()?;
    section_title(&format!(
        "concurrent: {PROCESSES} processes importing {PROCESSES} different {} MB images into one \
         store at once, against one process importing one, {} rounds, median shown",
        megabytes(images[0].bytes),
        settings.rounds
    ));
    let scratch = tempfile::Builder::new()
        .prefix("conc-")
        .tempdir_in(&settings.data_dir)?;
    let store = scratch.path().join("store");
    let mut figures = Figures::default();
    for config in oci_cli::configs(settings) {
        let mut single = Vec::new();
        let mut single_cores = Vec::new();
        let mut together = Vec::new();
        let mut together_cores = Vec::new();
        let mut disk = Vec::new();
        let mut failure = None;
        for _ in 0..settings.rounds {
            remove_if_present(&store)?;
            oci_cli::create_store(&store, config)?;
            warm_all(&images)?;
            let layout = images[0].layout.to_string_lossy().into_owned();
            let alone = oci_cli::run(&store, config, &["import", layout.as_str()])?;
            single.push(alone.seconds);
            single_cores.push(alone.cpu_seconds / alone.seconds);
            remove_if_present(&store)?;
            oci_cli::create_store(&store, config)?;
            warm_all(&images)?;
            match all_at_once(&store, config, &images) {
                Ok((seconds, cpu_seconds)) => {
                    together.push(seconds);
                    together_cores.push(cpu_seconds / seconds);
                }
                Err(error) => failure = Some(error.to_string()),
            }
            remove_if_present(&store)?;
            warm_all(&images)?;
            disk.push(copy_all_and_sync(&images, scratch.path())?.seconds);
        }
        remove_if_present(&store)?;
        let one = median(&single);
        let all = median(&together);
        println!(
            "  {}: cores kept busy (CPU time / wall): one import alone {:.2}, four at once {:.2}, \
             of {} cores",
            config.label,
            median(&single_cores),
            median(&together_cores),
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        );
        if let Some(error) = &failure {
            println!("  {}: a concurrent import FAILED: {error}", config.label);
        }
        // Throughput in images per second: 4 images over the wall time of all four, against
        // one image over the time of one alone.
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("{PROCESSES} at once {all:.2} s, one alone {one:.2} s: images/s"),
            ours: if failure.is_some() || together.is_empty() {
                f64::NAN
            } else {
                PROCESSES as f64 / all
            },
            reference_name: "one process, one image".to_string(),
            reference: Some(1.0 / one),
            unit: "img/s",
            reference_lower_bound: false,
            target: Target::RatioAtLeast(THROUGHPUT_TARGET),
            rss_mib: None,
        });
        // The same four images' bytes through the disk without a store: how close the four
        // imports come to what the disk allows.
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("wall time of {PROCESSES} imports at once"),
            ours: if failure.is_some() { f64::NAN } else { all },
            reference_name: format!("cp -r + sync, {PROCESSES} images' blobs"),
            reference: Some(median(&disk)),
            unit: "s",
            reference_lower_bound: false,
            target: Target::None,
            rss_mib: None,
        });
    }
    figures.print();
    Ok(())
}

fn warm_all(images: &[Image]) -> BenchResult<()> {
    for image in images {
        before_pass(&image.layout)?;
    }
    Ok(())
}

/// `cp -r` of every image's blobs into `scratch`, then `sync` of every copied file and
/// directory; the copies are removed after.
fn copy_all_and_sync(images: &[Image], scratch: &Path) -> BenchResult<Run> {
    let copies = scratch.join("copies");
    std::fs::create_dir(&copies)?;
    let mut total = Run {
        seconds: 0.0,
        max_rss_kib: 0,
        cpu_seconds: 0.0,
        peak_anon_kib: None,
    };
    for (n, image) in images.iter().enumerate() {
        let copy = process::run(
            std::process::Command::new("cp")
                .arg("-r")
                .arg(image.layout.join("blobs"))
                .arg(copies.join(n.to_string())),
        )?;
        total.seconds += copy.seconds;
        total.cpu_seconds += copy.cpu_seconds;
    }
    let sync = peers::sync_tree(&copies)?;
    total.seconds += sync.seconds;
    total.cpu_seconds += sync.cpu_seconds;
    std::fs::remove_dir_all(&copies)?;
    Ok(total)
}

/// Wall time from starting all imports to the end of the last, and the CPU seconds of all of
/// them; fails if any failed.
fn all_at_once(store: &Path, config: Config, images: &[Image]) -> BenchResult<(f64, f64)> {
    let start = Instant::now();
    let mut running = Vec::new();
    for image in images {
        let layout = image.layout.to_string_lossy().into_owned();
        let command = oci_cli::command(store, config, &["import", layout.as_str()]);
        let mut command = command;
        let started = process::spawn(&mut command)?;
        running.push((command, started));
    }
    let mut errors = Vec::new();
    let mut cpu_seconds = 0.0;
    for (command, started) in running {
        match process::finish(&command, started) {
            Ok(run) => cpu_seconds += run.cpu_seconds,
            Err(error) => errors.push(error.to_string()),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if !errors.is_empty() {
        return Err(errors.join("; ").into());
    }
    Ok((seconds, cpu_seconds))
}
