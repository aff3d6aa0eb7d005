//! Sections `oci-all`, `oci-list`, `oci-rm` and `oci-gc` over a layout of many small tagged
//! images sharing base layers (5,000 at scale 1): `import --all` against `cp -r` + `sync` of
//! the layout, `list` against `umoci ls`, `rm --ref` of a tenth of the refs in one call
//! against one call per ref, and `gc` after removing that tenth against `umoci gc` on the
//! same layout with the same tags removed; `prune` to a size budget a tenth under the store's
//! size (the plan alone, and its execution against `gc` of the same victims removed by `rm`).
//! The store the last `import --all` made is kept
//! (`<data>/oci-many-store-…`) for the other three, which work on copies of it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::figures::{megabytes, Figure, Figures, Target};
use super::measure::{median, section_title, BenchResult};
use super::oci_cli::{self, Config};
use super::oci_import::before_pass;
use super::oci_inputs::{self, remove_if_present, ManyLayout};
use super::peers::{self, Peers};
use super::process::{self, Run};
use super::settings::Settings;

/// The sections that share the imported stores.
pub const SECTIONS: [&str; 5] = ["oci-all", "oci-list", "oci-rm", "oci-gc", "oci-prune"];

/// Prefix of the cached imported stores in the data directory.
const STORE_PREFIX: &str = "oci-many-store-";

/// Marks a cached store whose `import --all` completed.
const IMPORTED_MARKER: &str = "bench-imported";

fn layout(settings: &Settings) -> BenchResult<ManyLayout> {
    oci_inputs::many_layout(
        &settings.data_dir,
        settings.many_images,
        settings.many_base_bytes,
        settings.many_own_bytes,
    )
}

fn title(settings: &Settings, section: &str, what: &str, layout: &ManyLayout, rounds: usize) {
    section_title(&format!(
        "{section}: {what}; layout of {} tagged images ({} blobs, {} MB), {rounds} round(s), \
         median shown",
        layout.tags.len(),
        layout.blobs,
        megabytes(layout.bytes)
    ));
    let _ = settings;
}

fn cached_store(settings: &Settings, config: Config, layout: &ManyLayout) -> PathBuf {
    settings.data_dir.join(format!(
        "{STORE_PREFIX}{}-{}-{}",
        config.label,
        layout.tags.len(),
        layout.bytes
    ))
}

/// The cached store of `config` with the whole layout imported, importing it when missing.
fn imported_store(
    settings: &Settings,
    config: Config,
    layout: &ManyLayout,
) -> BenchResult<PathBuf> {
    let store = cached_store(settings, config, layout);
    if store.join(IMPORTED_MARKER).exists() {
        return Ok(store);
    }
    remove_if_present(&store)?;
    let partial = store.with_extension("partial");
    remove_if_present(&partial)?;
    oci_cli::create_store(&partial, config)?;
    import_all(&partial, config, layout)?;
    keep(&partial, &store)?;
    Ok(store)
}

fn import_all(store: &Path, config: Config, layout: &ManyLayout) -> BenchResult<Run> {
    let path = layout.layout.to_string_lossy().into_owned();
    oci_cli::run(store, config, &["import", "--all", path.as_str()])
}

fn keep(store: &Path, cached: &Path) -> BenchResult<()> {
    std::fs::write(store.join(IMPORTED_MARKER), "")?;
    remove_if_present(cached)?;
    std::fs::rename(store, cached)?;
    Ok(())
}

/// Removes every cached imported store (and any partial one).
pub fn remove_cached_stores(settings: &Settings) -> BenchResult<()> {
    for entry in std::fs::read_dir(&settings.data_dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(STORE_PREFIX)
        {
            remove_if_present(&entry.path())?;
        }
    }
    Ok(())
}

/// `cp -a` (untimed) of a cached store or layout into `dest`, synced.
fn copy_of(source: &Path, dest: &Path) -> BenchResult<()> {
    remove_if_present(dest)?;
    process::run(Command::new("cp").arg("-a").arg(source).arg(dest))?;
    process::run(&mut Command::new("sync"))?;
    Ok(())
}

fn seconds(runs: &[Run]) -> f64 {
    median(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>())
}

fn peak(runs: &[Run]) -> Option<f64> {
    runs.iter().map(Run::max_rss_mib).reduce(f64::max)
}

/// The first tenth of the tags (what `rm` and `gc` remove) and the second tenth.
fn tenths(layout: &ManyLayout) -> (Vec<String>, Vec<String>) {
    let k = (layout.tags.len() / 10).max(1);
    (
        layout.tags[..k].to_vec(),
        layout.tags[k..(2 * k).min(layout.tags.len())].to_vec(),
    )
}

pub fn run_import_all(settings: &Settings) -> BenchResult<()> {
    let layout = layout(settings)?;
    let rounds = settings.heavy_rounds;
    title(
        settings,
        "oci-all",
        "`import --all` into an empty store",
        &layout,
        rounds,
    );
    let configs = oci_cli::configs(settings);
    let scratch = tempfile::Builder::new()
        .prefix("all-")
        .tempdir_in(&settings.data_dir)?;
    let target = scratch.path().join("target");
    let mut copies = Vec::new();
    let mut ours: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        let turns = configs.len() + 1;
        for turn in 0..turns {
            let who = (turn + round) % turns;
            remove_if_present(&target)?;
            if who == configs.len() {
                before_pass(&layout.layout)?;
                copies.push(peers::copy_and_sync(&layout.layout, &target)?);
                remove_if_present(&target)?;
                continue;
            }
            let config = configs[who];
            oci_cli::create_store(&target, config)?;
            before_pass(&layout.layout)?;
            ours[who].push(import_all(&target, config, &layout)?);
            if round + 1 == rounds {
                keep(&target, &cached_store(settings, config, &layout))?;
            }
        }
    }
    remove_if_present(&target)?;
    let mut figures = Figures::default();
    for (config, runs) in configs.iter().zip(&ours) {
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("import --all, {} images", layout.tags.len()),
            ours: seconds(runs),
            reference_name: "cp -r layout + sync".to_string(),
            reference: Some(seconds(&copies)),
            unit: "s",
            reference_lower_bound: false,
            target: Target::RatioAtMost(2.0),
            rss_mib: peak(runs),
        });
    }
    figures.print();
    Ok(())
}

pub fn run_list(settings: &Settings) -> BenchResult<()> {
    let layout = layout(settings)?;
    let rounds = settings.rounds.max(5);
    title(
        settings,
        "oci-list",
        "`list` of every ref, whole process, output to /dev/null",
        &layout,
        rounds,
    );
    let peers = Peers::detect();
    let configs = oci_cli::configs(settings);
    let stores: Vec<PathBuf> = configs
        .iter()
        .map(|c| imported_store(settings, *c, &layout))
        .collect::<BenchResult<_>>()?;
    let mut umoci = Vec::new();
    let mut ours: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    // One untimed pass each first: both read warm files.
    for round in 0..=rounds {
        for (n, config) in configs.iter().enumerate() {
            let run = oci_cli::run(&stores[n], *config, &["list"])?;
            if round > 0 {
                ours[n].push(run);
            }
        }
        if peers.umoci {
            let run = process::run(
                Command::new("umoci")
                    .arg("ls")
                    .arg("--layout")
                    .arg(&layout.layout),
            )?;
            if round > 0 {
                umoci.push(run);
            }
        }
    }
    let reference = (!umoci.is_empty()).then(|| seconds(&umoci) * 1e3);
    let reference_name = if peers.umoci {
        "umoci ls"
    } else {
        "umoci (not installed)"
    };
    let mut figures = Figures::default();
    for (config, runs) in configs.iter().zip(&ours) {
        for target in [Target::RatioAtMost(1.0), Target::AtMost(30.0)] {
            figures.push(Figure {
                config: config.label.to_string(),
                work: format!("list, {} refs", layout.tags.len()),
                ours: seconds(runs) * 1e3,
                reference_name: reference_name.to_string(),
                reference,
                unit: "ms",
                reference_lower_bound: false,
                target,
                rss_mib: peak(runs),
            });
        }
    }
    figures.print();
    Ok(())
}

pub fn run_remove(settings: &Settings) -> BenchResult<()> {
    let layout = layout(settings)?;
    let rounds = settings.heavy_rounds;
    let (first, second) = tenths(&layout);
    title(
        settings,
        "oci-rm",
        &format!(
            "`rm --ref` of {} refs in one call against {} single calls",
            first.len(),
            second.len()
        ),
        &layout,
        rounds,
    );
    let multi = oci_cli::multi_remove()?;
    if multi.is_none() {
        println!(
            "  rm of several refs in one call: not available (`oci-store rm --help` lists \
             neither --from-file nor a repeatable --ref); only the single calls are timed"
        );
    }
    let configs = oci_cli::configs(settings);
    let scratch = tempfile::Builder::new()
        .prefix("rm-")
        .tempdir_in(&settings.data_dir)?;
    let store = scratch.path().join("store");
    let mut figures = Figures::default();
    for config in &configs {
        let cached = imported_store(settings, *config, &layout)?;
        let mut one_call = Vec::new();
        let mut singles = Vec::new();
        for _ in 0..rounds {
            copy_of(&cached, &store)?;
            if let Some(how) = multi {
                one_call.push(oci_cli::remove_refs(
                    &store,
                    *config,
                    how,
                    &first,
                    scratch.path(),
                )?);
            }
            let mut total = Run {
                seconds: 0.0,
                max_rss_kib: 0,
                cpu_seconds: 0.0,
                peak_anon_kib: None,
            };
            for name in &second {
                let run = oci_cli::run(&store, *config, &["rm", "--ref", name.as_str()])?;
                total.seconds += run.seconds;
                total.max_rss_kib = total.max_rss_kib.max(run.max_rss_kib);
                total.cpu_seconds += run.cpu_seconds;
            }
            singles.push(total);
        }
        let reference = Some(seconds(&singles));
        let work = format!("rm --ref of {} refs, one call", first.len());
        figures.push(Figure {
            config: config.label.to_string(),
            work: if multi.is_some() {
                work
            } else {
                format!("{work}: not available")
            },
            ours: if multi.is_some() {
                seconds(&one_call)
            } else {
                f64::NAN
            },
            reference_name: format!("{} single rm calls", second.len()),
            reference,
            unit: "s",
            reference_lower_bound: false,
            target: Target::FasterBy(20.0),
            rss_mib: peak(&one_call),
        });
    }
    remove_if_present(&store)?;
    figures.print();
    Ok(())
}

pub fn run_gc(settings: &Settings) -> BenchResult<()> {
    let layout = layout(settings)?;
    let rounds = settings.heavy_rounds;
    let (removed, _) = tenths(&layout);
    title(
        settings,
        "oci-gc",
        &format!(
            "`gc` after removing {} of the tags (untimed)",
            removed.len()
        ),
        &layout,
        rounds,
    );
    let peers = Peers::detect();
    let multi = oci_cli::multi_remove()?;
    let configs = oci_cli::configs(settings);
    let scratch = tempfile::Builder::new()
        .prefix("gc-")
        .tempdir_in(&settings.data_dir)?;
    let copy = scratch.path().join("copy");
    // Each removed image frees its own layer, config and manifest.
    let expected_blobs = layout.blobs - 3 * removed.len();
    let mut umoci = Vec::new();
    let mut umoci_stopped = false;
    if peers.umoci {
        for _ in 0..rounds {
            copy_of(&layout.layout, &copy)?;
            drop_tags(&copy, &removed)?;
            process::run(&mut Command::new("sync"))?;
            let mut gc = Command::new("umoci");
            gc.arg("gc").arg("--layout").arg(&copy);
            match process::run_limited(&gc, settings.peer_limit)? {
                Some(run) => {
                    umoci.push(run);
                    check_blob_count("umoci gc", &copy.join("blobs/sha256"), expected_blobs)?;
                }
                None => {
                    println!(
                        "  umoci gc stopped after {} s (OCI_STORE_BENCH_PEER_LIMIT): its time \
                         is a lower bound",
                        settings.peer_limit.as_secs()
                    );
                    umoci_stopped = true;
                    break;
                }
            }
        }
    }
    let reference = if umoci_stopped {
        Some(settings.peer_limit.as_secs_f64())
    } else {
        (!umoci.is_empty()).then(|| seconds(&umoci))
    };
    let mut figures = Figures::default();
    for config in &configs {
        let cached = imported_store(settings, *config, &layout)?;
        let mut runs = Vec::new();
        let mut victims: Vec<PathBuf> = Vec::new();
        for _ in 0..rounds {
            copy_of(&cached, &copy)?;
            match multi {
                Some(how) => {
                    oci_cli::remove_refs(&copy, *config, how, &removed, scratch.path())?;
                }
                None => {
                    for name in &removed {
                        oci_cli::run(&copy, *config, &["rm", "--ref", name.as_str()])?;
                    }
                }
            }
            process::run(&mut Command::new("sync"))?;
            let before = blob_files(&copy)?;
            runs.push(oci_cli::run(&copy, *config, &["gc"])?);
            check_blob_count("oci-store gc", &copy.join("blobs/sha256"), expected_blobs)?;
            let after = blob_files(&copy)?;
            victims = before.difference(&after).cloned().collect();
        }
        // The least deleting those blobs can cost: `rm` of the very files the gc removed, and
        // `sync`, on a fresh copy with the same refs removed.
        let mut rm_runs = Vec::new();
        for _ in 0..rounds {
            copy_of(&cached, &copy)?;
            process::run(&mut Command::new("sync"))?;
            let files: Vec<PathBuf> = victims.iter().map(|name| copy.join(name)).collect();
            rm_runs.push(rm_and_sync(&files, scratch.path())?);
        }
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("gc of {} blobs", victims.len()),
            ours: seconds(&runs),
            reference_name: "rm + sync of them".to_string(),
            reference: Some(seconds(&rm_runs)),
            unit: "s",
            reference_lower_bound: false,
            target: Target::RatioAtMost(1.5),
            rss_mib: peak(&runs),
        });
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("gc after rm of {} tags", removed.len()),
            ours: seconds(&runs),
            reference_name: if peers.umoci {
                "umoci gc"
            } else {
                "umoci (not installed)"
            }
            .to_string(),
            reference,
            unit: "s",
            reference_lower_bound: umoci_stopped,
            target: Target::FasterBy(20.0),
            rss_mib: peak(&runs),
        });
    }
    remove_if_present(&copy)?;
    figures.print();
    Ok(())
}

/// `prune --max-size` of 90% of the store: the plan (`--dry-run`) against a target of 200 ms,
/// and its execution against `rm` of the same victims then `gc` (what a prune costs beyond
/// the GC it runs).
pub fn run_prune(settings: &Settings) -> BenchResult<()> {
    let layout = layout(settings)?;
    let rounds = settings.heavy_rounds;
    title(
        settings,
        "oci-prune",
        "`prune --max-size` of 90% of the store's bytes (every ref as recent as the next: \
         least recently used ties go by name)",
        &layout,
        rounds,
    );
    let configs = oci_cli::configs(settings);
    let multi = oci_cli::multi_remove()?.unwrap_or(oci_cli::MultiRemove::RepeatedRef);
    let scratch = tempfile::Builder::new()
        .prefix("prune-")
        .tempdir_in(&settings.data_dir)?;
    let copy = scratch.path().join("copy");
    // Every use written and none recent: all refs are candidates.
    let prune = |store: &Path, config: Config, args: &[&str]| {
        let mut command = oci_cli::command(store, config, args);
        command.env("OCI_STORE_LAST_USED_INTERVAL", "0s");
        command
    };
    let mut figures = Figures::default();
    for config in &configs {
        let cached = imported_store(settings, *config, &layout)?;
        let stats: serde_json::Value = serde_json::from_str(&process::output(
            &mut oci_cli::command(&cached, *config, &["--json", "stats"]),
        )?)?;
        let bytes = stats["bytes"].as_u64().ok_or("stats printed no bytes")?;
        let budget = (bytes / 10 * 9).to_string();
        let args = ["prune", "--max-size", budget.as_str()];
        let dry = ["prune", "--dry-run", "--max-size", budget.as_str()];
        let plan: serde_json::Value = serde_json::from_str(&process::output(&mut prune(
            &cached,
            *config,
            &[
                "--json",
                "prune",
                "--dry-run",
                "--max-size",
                budget.as_str(),
            ],
        ))?)?;
        let victims: Vec<String> = plan["plan"]["victims"]
            .as_array()
            .ok_or("no victims in the plan")?
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect();
        let (mut plans, mut executions, mut gcs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            copy_of(&cached, &copy)?;
            process::run(&mut Command::new("sync"))?;
            plans.push(process::run(&mut prune(&copy, *config, &dry))?);
            executions.push(process::run(&mut prune(&copy, *config, &args))?);
            copy_of(&cached, &copy)?;
            oci_cli::remove_refs(&copy, *config, multi, &victims, scratch.path())?;
            process::run(&mut Command::new("sync"))?;
            gcs.push(oci_cli::run(&copy, *config, &["gc"])?);
        }
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("plan: {} of {} refs", victims.len(), layout.tags.len()),
            ours: seconds(&plans) * 1000.0,
            reference_name: "-".to_string(),
            reference: None,
            unit: "ms",
            reference_lower_bound: false,
            target: Target::AtMost(200.0),
            rss_mib: peak(&plans),
        });
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("prune of {} refs", victims.len()),
            ours: seconds(&executions),
            reference_name: "rm + gc of them".to_string(),
            reference: Some(seconds(&gcs)),
            unit: "s",
            reference_lower_bound: false,
            target: Target::RatioAtMost(2.0),
            rss_mib: peak(&executions),
        });
    }
    remove_if_present(&copy)?;
    figures.print();
    Ok(())
}

/// The blob files of a store or layout, relative to it.
fn blob_files(root: &Path) -> BenchResult<std::collections::BTreeSet<PathBuf>> {
    let mut files = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root.join("blobs/sha256"))? {
        files.insert(Path::new("blobs/sha256").join(entry?.file_name()));
    }
    Ok(files)
}

/// `rm` of `files` then `sync`, timed as one command.
fn rm_and_sync(files: &[PathBuf], scratch: &Path) -> BenchResult<Run> {
    let list = scratch.join("victims.txt");
    let text: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    std::fs::write(&list, text.join("\n"))?;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("xargs rm -f < \"$1\" && sync")
        .arg("sh")
        .arg(&list);
    process::run(&mut command)
}

/// Removes the `index.json` entries named by `tags` (what `umoci rm` would do, untimed).
fn drop_tags(layout: &Path, tags: &[String]) -> BenchResult<()> {
    let path = layout.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let manifests = index["manifests"]
        .as_array_mut()
        .ok_or("index.json has no manifests array")?;
    manifests.retain(|entry| {
        let name = entry["annotations"]["org.opencontainers.image.ref.name"].as_str();
        !name.is_some_and(|name| tags.iter().any(|tag| tag == name))
    });
    std::fs::write(&path, serde_json::to_vec(&index)?)?;
    Ok(())
}

/// A GC that kept or removed the wrong blobs would make its time meaningless.
fn check_blob_count(who: &str, dir: &Path, expected: usize) -> BenchResult<()> {
    let found = std::fs::read_dir(dir)?.count();
    if found != expected {
        return Err(format!(
            "{who} left {found} blobs in {}, expected {expected}",
            dir.display()
        )
        .into());
    }
    Ok(())
}
