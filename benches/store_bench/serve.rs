//! Section `serve`: `oci-store serve` against CNCF distribution 2.8 (Debian's
//! `docker-registry`, started by the `registry` section's code on 127.0.0.1 with storage of its
//! own), both serving the 200 MB image, in one run: its blobs pulled by 1, 4 and 16 clients at
//! once, 1,000 manifest GETs and 1,000 HEADs by tag, the server's peak RSS during the 16-client
//! pull, and a push of the image with `skopeo copy` to each.
//!
//! Distribution is loaded by `skopeo copy` and our stores by `oci-store import` (untimed), so
//! both serve the same bytes. The clients (serve_client) discard what they read. Every push
//! goes to an empty server started for it (a fresh store, a fresh registry), so every byte is
//! sent; `sync` before every push.

use std::path::Path;

use super::figures::{megabytes, Figure, Figures, Target as Goal};
use super::measure::{grouped, median, megabytes_per_second, rate, section_title, BenchResult};
use super::oci_cli::{self, Config};
use super::oci_import::before_pass;
use super::oci_inputs::{self, remove_if_present};
use super::process::on_path;
use super::registry::{skopeo, LocalRegistry};
use super::serve_client::{self, Blob, Target};
use super::serve_server::{cpu_seconds, peak_rss_mib, reset_peak_rss, OurServer};
use super::settings::Settings;

/// Clients pulling the image's blobs at once.
const CLIENTS: [usize; 3] = [1, 4, 16];
/// Manifest GETs, and HEADs, by tag per round (not scaled: the sample of the p99).
const MANIFEST_REQUESTS: usize = 1_000;
/// Where both servers hold the image.
const REPOSITORY: &str = "bench/image";
const TAG: &str = "v1";
const DISTRIBUTION: &str = "distribution 2.8";

/// One server under test and what was measured of it, one entry per round.
struct Contender {
    label: String,
    target: Target,
    pid: u32,
    /// MB/s per entry of [`CLIENTS`].
    pulls: [Vec<f64>; CLIENTS.len()],
    /// Requests/s and p99 in ms.
    gets: Vec<(f64, f64)>,
    heads: Vec<(f64, f64)>,
    /// The server's CPU time per GB (10^9 bytes) sent over the pulls of one round, ms.
    cpu_per_gb: Vec<f64>,
    /// Peak RSS during the 16-client pull, MiB.
    peak_rss: Vec<f64>,
    pushes: Vec<f64>,
}

impl Contender {
    fn new(label: &str, address: &str, pid: u32) -> Contender {
        Contender {
            label: label.to_string(),
            target: Target {
                address: address.to_string(),
                repository: REPOSITORY.to_string(),
                tag: TAG.to_string(),
            },
            pid,
            pulls: Default::default(),
            cpu_per_gb: Vec::new(),
            gets: Vec::new(),
            heads: Vec::new(),
            peak_rss: Vec::new(),
            pushes: Vec::new(),
        }
    }
}

pub fn run(settings: &Settings) -> BenchResult<()> {
    section_title(&format!(
        "serve: `oci-store serve` against a local {DISTRIBUTION} serving the {} MB image: \
         blob pulls by {} clients, {} manifest GETs and HEADs by tag, peak RSS, skopeo push; \
         {} rounds, median shown",
        megabytes(settings.image_bytes),
        CLIENTS.map(|c| c.to_string()).join("/"),
        grouped(MANIFEST_REQUESTS as f64),
        settings.rounds
    ));
    let have_registry = on_path("docker-registry");
    let have_skopeo = on_path("skopeo");
    if !have_registry {
        println!(
            "  docker-registry not installed: the section's reference ({DISTRIBUTION}) is \
             skipped (apt-get install docker-registry)"
        );
    }
    if !have_skopeo {
        println!("  skopeo not installed: the push figures are skipped (apt-get install skopeo)");
    }
    let configs = oci_cli::configs(settings);
    if configs.is_empty() {
        println!("  no backend configuration selected (OCI_STORE_BENCH_BACKENDS): section skipped");
        return Ok(());
    }
    let image = oci_inputs::image(
        &settings.data_dir,
        "latest",
        settings.image_bytes,
        4,
        settings.plot_bytes.len() as u64,
    )?;
    let blobs = serve_client::image_blobs(&image.layout)?;
    let scratch = tempfile::Builder::new()
        .prefix("serve-")
        .tempdir_in(&settings.data_dir)?;
    let reference = format!("{REPOSITORY}:{TAG}");
    let layout = image.layout.to_string_lossy().into_owned();

    // Both sides loaded untimed with the same image.
    let mut servers = Vec::new();
    let mut contenders = Vec::new();
    for config in &configs {
        let store = scratch.path().join(format!("store-{}", config.label));
        oci_cli::create_store(&store, *config)?;
        oci_cli::run(
            &store,
            *config,
            &["import", "--dref", reference.as_str(), layout.as_str()],
        )?;
        let server = OurServer::start(&store, *config, false)?;
        contenders.push(Contender::new(config.label, &server.address, server.pid()));
        servers.push(server);
    }
    let registry = match have_registry {
        true => {
            let registry = LocalRegistry::start(&scratch.path().join("distribution"))?;
            let destination = format!("{}/{reference}", registry.address);
            let first = scratch.path().join(format!("store-{}", configs[0].label));
            load_distribution(&image.layout, &destination, (&first, configs[0]))?;
            contenders.push(Contender::new(
                DISTRIBUTION,
                &registry.address,
                registry.pid(),
            ));
            Some(registry)
        }
        false => None,
    };

    // An untimed, verified pull from each: checks both serve the image's bytes, and brings
    // their files into the page cache, where every timed pull finds them.
    for contender in &contenders {
        serve_client::pull(&contender.target, &blobs, 1, true)
            .map_err(|e| format!("{}: {e}", contender.label))?;
    }
    let pulled: u64 = blobs.iter().map(|b| b.size).sum();
    let turns = contenders.len();
    for round in 0..settings.rounds {
        for turn in 0..turns {
            let contender = &mut contenders[(turn + round) % turns];
            measure_reads(contender, &blobs, pulled)?;
        }
    }
    if have_skopeo {
        for round in 0..settings.rounds {
            let turns = configs.len() + usize::from(registry.is_some());
            for turn in 0..turns {
                let who = (turn + round) % turns;
                let seconds = push(&image.layout, scratch.path(), configs.get(who).copied())?;
                contenders[who].pushes.push(seconds);
            }
        }
    }
    drop(servers);
    drop(registry);
    print_figures(&contenders, configs.len(), pulled);
    let first = scratch.path().join(format!("store-{}", configs[0].label));
    measure_recording(settings, &first, configs[0])
}

/// What recording last uses costs the server: 1,000 manifest HEADs by tag with recording as
/// configured by default (each ref written at most every 5 minutes), every use written
/// (`0s`), and off, from three servers on one store, in alternating turns.
fn measure_recording(settings: &Settings, store: &Path, config: Config) -> BenchResult<()> {
    const INTERVAL_ENV: &str = "OCI_STORE_LAST_USED_INTERVAL";
    let kinds = [
        ("default (5m)", None),
        ("every use (0s)", Some("0s")),
        ("off", Some("off")),
    ];
    let mut servers = Vec::new();
    for (_, interval) in kinds {
        let env: Vec<(&str, &str)> = interval.map(|i| (INTERVAL_ENV, i)).into_iter().collect();
        servers.push(OurServer::start_with_env(store, config, false, &env)?);
    }
    let targets: Vec<Target> = servers
        .iter()
        .map(|server| Target {
            address: server.address.clone(),
            repository: REPOSITORY.to_string(),
            tag: TAG.to_string(),
        })
        .collect();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for round in 0..settings.rounds.max(3) {
        for turn in 0..kinds.len() {
            let which = (turn + round) % kinds.len();
            let (elapsed, _) =
                serve_client::manifest_requests(&targets[which], MANIFEST_REQUESTS, true)?;
            rates[which].push(rate(MANIFEST_REQUESTS, elapsed));
        }
    }
    drop(servers);
    let off = median(&rates[2]);
    let mut figures = Figures::default();
    for (position, (label, _)) in kinds.iter().enumerate().take(2) {
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!(
                "{} manifest HEADs, last uses recorded: {label}",
                grouped(MANIFEST_REQUESTS as f64)
            ),
            ours: median(&rates[position]),
            reference_name: "recording off".to_string(),
            reference: Some(off),
            reference_lower_bound: false,
            unit: "req/s",
            // The default is the promise (at most 5% slower); writing every use is shown.
            target: if position == 0 {
                Goal::RatioAtLeast(0.95)
            } else {
                Goal::None
            },
            rss_mib: None,
        });
    }
    figures.print();
    Ok(())
}

/// Loads distribution with the image: `skopeo copy` (as a user would), or our own push
/// when skopeo is missing.
fn load_distribution(
    layout: &Path,
    destination: &str,
    (our_store, config): (&Path, Config),
) -> BenchResult<()> {
    if on_path("skopeo") {
        skopeo(&[
            "--dest-tls-verify=false".to_string(),
            format!("oci:{}:latest", layout.display()),
            format!("docker://{destination}"),
        ])?;
    } else {
        oci_cli::run(
            our_store,
            config,
            &["push", &format!("{REPOSITORY}:{TAG}"), destination],
        )?;
    }
    Ok(())
}

/// One round of the read figures of one server: pulls at each concurrency (peak RSS over the
/// 16-client one), then the manifest GETs and HEADs.
fn measure_reads(contender: &mut Contender, blobs: &[Blob], pulled: u64) -> BenchResult<()> {
    let cpu_before = cpu_seconds(contender.pid)?;
    for (position, clients) in CLIENTS.into_iter().enumerate() {
        let last = position == CLIENTS.len() - 1;
        let reset = last && reset_peak_rss(contender.pid);
        let elapsed = serve_client::pull(&contender.target, blobs, clients, false)
            .map_err(|e| format!("{}: {e}", contender.label))?;
        contender.pulls[position].push(megabytes_per_second(pulled * clients as u64, elapsed));
        if last {
            if !reset {
                println!(
                    "  (could not reset the peak RSS of {}: its figure covers its whole life)",
                    contender.label
                );
            }
            contender.peak_rss.push(peak_rss_mib(contender.pid)?);
        }
    }
    let sent = pulled * CLIENTS.iter().sum::<usize>() as u64;
    contender
        .cpu_per_gb
        .push((cpu_seconds(contender.pid)? - cpu_before) * 1e3 / (sent as f64 / 1e9));
    for head in [false, true] {
        let (elapsed, latencies) =
            serve_client::manifest_requests(&contender.target, MANIFEST_REQUESTS, head)
                .map_err(|e| format!("{}: {e}", contender.label))?;
        let figure = (
            rate(MANIFEST_REQUESTS, elapsed),
            latencies.percentile_micros(99.0) / 1e3,
        );
        match head {
            false => contender.gets.push(figure),
            true => contender.heads.push(figure),
        }
    }
    Ok(())
}

/// One timed `skopeo copy oci:LAYOUT:latest docker://ADDR/REPO:TAG` to an empty server: ours
/// on a fresh store with `config`, or (None) a fresh distribution. Seconds.
fn push(layout: &Path, scratch: &Path, config: Option<Config>) -> BenchResult<f64> {
    let dir = scratch.join("push");
    remove_if_present(&dir)?;
    let arguments = |address: &str| {
        [
            "--dest-tls-verify=false".to_string(),
            format!("oci:{}:latest", layout.display()),
            format!("docker://{address}/{REPOSITORY}:{TAG}"),
        ]
    };
    let seconds = match config {
        Some(config) => {
            oci_cli::create_store(&dir, config)?;
            let server = OurServer::start(&dir, config, true)?;
            before_pass(layout)?;
            let run = skopeo(&arguments(&server.address))?;
            drop(server);
            run.seconds
        }
        None => {
            let registry = LocalRegistry::start(&dir)?;
            before_pass(layout)?;
            let run = skopeo(&arguments(&registry.address))?;
            drop(registry);
            run.seconds
        }
    };
    remove_if_present(&dir)?;
    Ok(seconds)
}

fn print_figures(contenders: &[Contender], ours: usize, pulled: u64) {
    let reference = contenders.get(ours);
    let reference_name = match reference {
        Some(_) => DISTRIBUTION.to_string(),
        None => format!("{DISTRIBUTION} (not installed)"),
    };
    let middle = |values: &[f64]| match values {
        [] => None,
        values => Some(median(values)),
    };
    let mut figures = Figures::default();
    for contender in &contenders[..ours] {
        let mut row = |work: String,
                       value: &dyn Fn(&Contender) -> Option<f64>,
                       unit: &'static str,
                       target: Goal| {
            let Some(ours) = value(contender) else {
                return;
            };
            figures.push(Figure {
                config: contender.label.clone(),
                work,
                ours,
                reference_name: reference_name.clone(),
                reference: reference.and_then(value),
                reference_lower_bound: false,
                unit,
                target,
                rss_mib: None,
            });
        };
        for (position, clients) in CLIENTS.into_iter().enumerate() {
            row(
                format!(
                    "pull {} MB of blobs, {clients} client{}",
                    megabytes(pulled),
                    if clients == 1 { "" } else { "s" }
                ),
                &|c| middle(&c.pulls[position]),
                "MB/s",
                Goal::RatioAtLeast(1.0),
            );
        }
        row(
            "server CPU per GB sent (pulls)".to_string(),
            &|c| middle(&c.cpu_per_gb),
            "ms/GB",
            Goal::None,
        );
        let requests = grouped(MANIFEST_REQUESTS as f64);
        for (name, of) in [
            (
                "GET",
                (|c: &Contender| &c.gets) as fn(&Contender) -> &Vec<(f64, f64)>,
            ),
            ("HEAD", |c: &Contender| &c.heads),
        ] {
            row(
                format!("{requests} manifest {name}s by tag: rate"),
                &|c| middle(&of(c).iter().map(|f| f.0).collect::<Vec<_>>()),
                "req/s",
                Goal::RatioAtLeast(1.5),
            );
            row(
                format!("{requests} manifest {name}s by tag: p99"),
                &|c| middle(&of(c).iter().map(|f| f.1).collect::<Vec<_>>()),
                "ms",
                Goal::RatioAtMost(1.0),
            );
        }
        row(
            format!("peak RSS, {}-client pull (max)", CLIENTS[CLIENTS.len() - 1]),
            &|c| c.peak_rss.iter().copied().reduce(f64::max),
            "MiB",
            Goal::AtMost(64.0),
        );
        row(
            format!("push {} MB image (skopeo copy)", megabytes(pulled)),
            &|c| middle(&c.pushes),
            "s",
            Goal::FasterBy(1.2),
        );
    }
    figures.print();
}
