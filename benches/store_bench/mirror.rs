//! Section `mirror`: `oci-store serve --mirror` as a pull-through cache against CNCF
//! distribution 2.8 in proxy mode (`proxy: remoteurl:`), both in front of the same upstream
//! (a plain `docker-registry` holding the 200 MB image, behind a counting proxy), in one run:
//! a cold pull by one client, a cold pull by 8 clients at once with the bytes the upstream
//! sent, and a warm pull after them.
//!
//! Every round starts each cache empty (a fresh store, fresh registry storage) twice: once for
//! the cold single pull, once for the 8 cold clients and the warm pull that follows them. A
//! pull is what a runtime does: the manifest by tag, then every blob it names (serve_client,
//! which discards the bytes after checking their length). Upstream bytes are counted at the
//! TCP level until the upstream has been quiet for a second, so a fetch a cache finishes in
//! the background after its client was answered counts with the pull that caused it. One
//! untimed, verified round (every body hashed, `check --verify` of our cached ref) comes
//! first. `sync` before every cold pull and before the warm one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::counting_proxy::{CountingProxy, Traffic};
use super::figures::{megabytes, Figure, Figures, Target as Goal};
use super::measure::{median, section_title, BenchResult};
use super::oci_cli::{self, Config};
use super::oci_inputs::{self, remove_if_present};
use super::process::{self, on_path};
use super::proxy_registry::ProxyRegistry;
use super::registry::LocalRegistry;
use super::serve_client::{self, Blob, Target};
use super::serve_server::OurServer;
use super::settings::Settings;

/// Where the upstream holds the image, and what the clients ask both caches for.
const REPOSITORY: &str = "bench/image";
const TAG: &str = "v1";
/// The mirrored host: requests without `?ns=` go to the first (only) mirror, and the image is
/// cached as the ref `up/bench/image:v1`.
const MIRROR_HOST: &str = "up";
/// Clients of the concurrent cold pull.
const CONCURRENT: usize = 8;
const DISTRIBUTION: &str = "distribution 2.8 proxy";
/// What a manifest GET accepts (the image is an OCI manifest; the Docker types as a runtime
/// sends them).
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
/// Upstream silence that ends a pull's count, and the longest wait for it.
const QUIET: Duration = Duration::from_secs(1);
const QUIET_LIMIT: Duration = Duration::from_secs(120);

/// A cache under test.
#[derive(Clone, Copy)]
enum Side {
    Ours(Config),
    Distribution,
}

impl Side {
    fn label(self) -> String {
        match self {
            Side::Ours(config) => config.label.to_string(),
            Side::Distribution => DISTRIBUTION.to_string(),
        }
    }
}

/// A running cache; stopped when dropped.
enum Cache {
    Ours(OurServer),
    Distribution(ProxyRegistry),
}

impl Cache {
    fn target(&self) -> Target {
        let address = match self {
            Cache::Ours(server) => server.address.clone(),
            Cache::Distribution(registry) => registry.address.clone(),
        };
        Target {
            address,
            repository: REPOSITORY.to_string(),
            tag: TAG.to_string(),
        }
    }
}

/// One pull's wall time and what the upstream sent for it.
#[derive(Clone, Copy)]
struct Measured {
    seconds: f64,
    upstream: Traffic,
}

/// What one cache did, one entry per round.
#[derive(Default)]
struct Results {
    cold_single: Vec<Measured>,
    cold_concurrent: Vec<Measured>,
    warm: Vec<Measured>,
}

/// What every pull needs: the image's blobs, its manifest digest and its size.
struct Image {
    blobs: Vec<Blob>,
    manifest_digest: String,
    /// Manifest, config and layers, bytes.
    bytes: u64,
}

pub fn run(settings: &Settings) -> BenchResult<()> {
    section_title(&format!(
        "mirror: `oci-store serve --mirror {MIRROR_HOST}=http://UPSTREAM` against {DISTRIBUTION} \
         mode, both in front of one local docker-registry with the {} MB image: cold pull by 1 \
         client, cold pull by {CONCURRENT} clients at once (upstream bytes counted), warm pull; \
         {} rounds, median shown",
        megabytes(settings.image_bytes),
        settings.rounds
    ));
    if !on_path("docker-registry") {
        println!(
            "  docker-registry not installed: section skipped (it is both the upstream and the \
             reference; apt-get install docker-registry)"
        );
        return Ok(());
    }
    let configs = oci_cli::configs(settings);
    if configs.is_empty() {
        println!("  no backend configuration selected (OCI_STORE_BENCH_BACKENDS): section skipped");
        return Ok(());
    }
    let input = oci_inputs::image(
        &settings.data_dir,
        "latest",
        settings.image_bytes,
        4,
        settings.plot_bytes.len() as u64,
    )?;
    let image = Image {
        blobs: serve_client::image_blobs(&input.layout)?,
        manifest_digest: manifest_digest(&input.layout)?,
        bytes: input.bytes,
    };
    let scratch = tempfile::Builder::new()
        .prefix("mirror-")
        .tempdir_in(&settings.data_dir)?;

    // The upstream, loaded untimed by our push, behind the counting proxy.
    let upstream = LocalRegistry::start(&scratch.path().join("upstream"))?;
    let loader = scratch.path().join("loader");
    oci_cli::create_store(&loader, configs[0])?;
    let layout = input.layout.to_string_lossy().into_owned();
    let reference = format!("{REPOSITORY}:{TAG}");
    oci_cli::run(
        &loader,
        configs[0],
        &["import", "--dref", reference.as_str(), layout.as_str()],
    )?;
    oci_cli::run(
        &loader,
        configs[0],
        &[
            "push",
            reference.as_str(),
            &format!("{}/{reference}", upstream.address),
        ],
    )?;
    remove_if_present(&loader)?;
    let proxy = CountingProxy::start(&upstream.address)?;
    let upstream_url = format!("http://{}", proxy.address);
    let _mirror_config = MirrorConfig::install(scratch.path(), &upstream_url)?;
    println!(
        "  our servers: oci-store serve with [[serve.mirror]] host = {MIRROR_HOST:?}, url = \
         {upstream_url:?} (= --mirror {MIRROR_HOST}={upstream_url}), tag TTL 5 min (default)"
    );

    let mut sides: Vec<Side> = configs.iter().copied().map(Side::Ours).collect();
    sides.push(Side::Distribution);
    let mut results: Vec<Results> = sides.iter().map(|_| Results::default()).collect();
    let cache_dir = scratch.path().join("cache");
    for side in &sides {
        one_round(*side, &cache_dir, &upstream_url, &proxy, &image, true)
            .map_err(|e| format!("{} (verified round): {e}", side.label()))?;
    }
    for round in 0..settings.rounds {
        for turn in 0..sides.len() {
            let who = (turn + round) % sides.len();
            let side = sides[who];
            let (single, concurrent, warm) =
                one_round(side, &cache_dir, &upstream_url, &proxy, &image, false)
                    .map_err(|e| format!("{}: {e}", side.label()))?;
            results[who].cold_single.push(single);
            results[who].cold_concurrent.push(concurrent);
            results[who].warm.push(warm);
        }
    }
    drop(proxy);
    drop(upstream);
    print_figures(&sides, &results, &image);
    Ok(())
}

/// One round of one cache: an empty cache for the cold single pull, another for the cold
/// concurrent pull and the warm pull after it. `verify` hashes every body (and checks our
/// cached ref): for the untimed round only, as hashing would measure the client.
fn one_round(
    side: Side,
    cache_dir: &Path,
    upstream_url: &str,
    proxy: &CountingProxy,
    image: &Image,
    verify: bool,
) -> BenchResult<(Measured, Measured, Measured)> {
    let cache = start_cache(side, cache_dir, upstream_url)?;
    let single = measured_pull(&cache, proxy, image, 1, verify)?;
    drop(cache);
    let cache = start_cache(side, cache_dir, upstream_url)?;
    let concurrent = measured_pull(&cache, proxy, image, CONCURRENT, verify)?;
    let warm = measured_pull(&cache, proxy, image, 1, verify)?;
    if let (true, Side::Ours(config)) = (verify, side) {
        oci_cli::run(
            cache_dir,
            config,
            &[
                "check",
                "--verify",
                &format!("{MIRROR_HOST}/{REPOSITORY}:{TAG}"),
            ],
        )
        .map_err(|e| format!("check --verify of the mirrored ref: {e}"))?;
    }
    drop(cache);
    remove_if_present(cache_dir)?;
    Ok((single, concurrent, warm))
}

/// An empty cache of `side` in `dir`, listening.
fn start_cache(side: Side, dir: &Path, upstream_url: &str) -> BenchResult<Cache> {
    remove_if_present(dir)?;
    Ok(match side {
        Side::Ours(config) => {
            oci_cli::create_store(dir, config)?;
            Cache::Ours(OurServer::start(dir, config, false)?)
        }
        Side::Distribution => Cache::Distribution(ProxyRegistry::start(dir, upstream_url)?),
    })
}

/// `sync`, then `clients` clients pulling the image from `cache` at once, timed; then the
/// upstream's traffic once it is quiet (untimed).
fn measured_pull(
    cache: &Cache,
    proxy: &CountingProxy,
    image: &Image,
    clients: usize,
    verify: bool,
) -> BenchResult<Measured> {
    process::run(&mut Command::new("sync"))?;
    proxy.take();
    let seconds = pull_image(&cache.target(), image, clients, verify)?.as_secs_f64();
    if !proxy.wait_until_quiet(QUIET, QUIET_LIMIT) {
        println!(
            "  (the upstream was still sending {} s after a pull: its count is cut there)",
            QUIET_LIMIT.as_secs()
        );
    }
    Ok(Measured {
        seconds,
        upstream: proxy.take(),
    })
}

/// `clients` clients pulling the image as a runtime does: each GETs the manifest by tag (all
/// at once), then each GETs every blob (all at once, serve_client). Wall time of both.
fn pull_image(
    target: &Target,
    image: &Image,
    clients: usize,
    verify: bool,
) -> BenchResult<Duration> {
    let began = Instant::now();
    std::thread::scope(|scope| -> BenchResult<()> {
        let getters: Vec<_> = (0..clients)
            .map(|_| scope.spawn(|| get_manifest(target, &image.manifest_digest)))
            .collect();
        for getter in getters {
            getter
                .join()
                .map_err(|_| "a manifest GET panicked".to_string())??;
        }
        Ok(())
    })?;
    serve_client::pull(target, &image.blobs, clients, verify)?;
    Ok(began.elapsed())
}

/// GET of the manifest by tag on a connection of its own; its body must hash to `expected`.
fn get_manifest(target: &Target, expected: &str) -> Result<(), String> {
    let url = format!(
        "http://{}/v2/{}/manifests/{}",
        target.address, target.repository, target.tag
    );
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(true)
            .timeout_global(Some(Duration::from_secs(300)))
            .build(),
    );
    let mut response = agent
        .get(&url)
        .header("Accept", MANIFEST_ACCEPT)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let body = response
        .body_mut()
        .read_to_vec()
        .map_err(|e| format!("reading {url}: {e}"))?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    if digest != expected {
        return Err(format!(
            "GET {url} sent a manifest of digest {digest}, not {expected}"
        ));
    }
    Ok(())
}

/// The digest of the first manifest of the layout's index.json.
fn manifest_digest(layout: &Path) -> BenchResult<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    Ok(index["manifests"][0]["digest"]
        .as_str()
        .ok_or_else(|| format!("no manifest in {}/index.json", layout.display()))?
        .to_string())
}

/// Our servers' mirror, as a config file (`[[serve.mirror]]`, what `--mirror HOST=URL`
/// sets): `OCI_STORE_CONFIG` names it for the section's `oci-store` processes, which
/// serve_server starts with fixed arguments. The previous value is put back when dropped.
struct MirrorConfig {
    previous: Option<std::ffi::OsString>,
}

impl MirrorConfig {
    const VARIABLE: &'static str = "OCI_STORE_CONFIG";

    fn install(dir: &Path, upstream_url: &str) -> BenchResult<MirrorConfig> {
        let file: PathBuf = dir.join("mirror-config.toml");
        std::fs::write(
            &file,
            format!("[[serve.mirror]]\nhost = \"{MIRROR_HOST}\"\nurl = \"{upstream_url}\"\n"),
        )?;
        let previous = std::env::var_os(Self::VARIABLE);
        std::env::set_var(Self::VARIABLE, &file);
        Ok(MirrorConfig { previous })
    }
}

impl Drop for MirrorConfig {
    fn drop(&mut self) {
        match &self.previous {
            Some(value) => std::env::set_var(Self::VARIABLE, value),
            None => std::env::remove_var(Self::VARIABLE),
        }
    }
}

fn print_figures(sides: &[Side], results: &[Results], image: &Image) {
    let reference = results.last();
    let blob_count = image.blobs.len() as f64;
    let seconds = |runs: &[Measured]| median(&runs.iter().map(|m| m.seconds).collect::<Vec<_>>());
    // The worst round: one refetch in one round is a defect.
    let image_multiple = |runs: &[Measured]| {
        runs.iter()
            .map(|m| m.upstream.bytes as f64 / image.bytes as f64)
            .fold(0.0, f64::max)
    };
    let gets_per_blob = |runs: &[Measured]| {
        runs.iter()
            .map(|m| m.upstream.blob_gets as f64 / blob_count)
            .fold(0.0, f64::max)
    };
    let requests = |runs: &[Measured]| {
        median(
            &runs
                .iter()
                .map(|m| m.upstream.requests as f64)
                .collect::<Vec<_>>(),
        )
    };
    let mb = megabytes(image.bytes);
    type Of = fn(&Results) -> &[Measured];
    let cold_single: Of = |r| &r.cold_single;
    let cold_concurrent: Of = |r| &r.cold_concurrent;
    let warm: Of = |r| &r.warm;
    let mut figures = Figures::default();
    for (side, ours) in sides.iter().zip(results).take(sides.len() - 1) {
        let mut row =
            |work: String, value: &dyn Fn(&Results) -> f64, unit: &'static str, target: Goal| {
                figures.push(Figure {
                    config: side.label(),
                    work,
                    ours: value(ours),
                    reference_name: DISTRIBUTION.to_string(),
                    reference: reference.map(value),
                    reference_lower_bound: false,
                    unit,
                    target,
                    rss_mib: None,
                });
            };
        row(
            format!("cold pull {mb} MB, 1 client"),
            &|r| seconds(cold_single(r)),
            "s",
            Goal::FasterBy(1.3),
        );
        row(
            "  upstream bytes / image (max)".to_string(),
            &|r| image_multiple(cold_single(r)),
            "x",
            Goal::None,
        );
        row(
            format!("cold pull {mb} MB, {CONCURRENT} clients at once"),
            &|r| seconds(cold_concurrent(r)),
            "s",
            Goal::FasterBy(1.3),
        );
        // Response heads and the manifest are a few kB of the 200 MB: 1.01 allows for them,
        // not for a second fetch of any layer.
        row(
            "  upstream bytes / image (max)".to_string(),
            &|r| image_multiple(cold_concurrent(r)),
            "x",
            Goal::AtMost(1.01),
        );
        row(
            "  upstream blob GETs per blob (max)".to_string(),
            &|r| gets_per_blob(cold_concurrent(r)),
            "x",
            Goal::AtMost(1.0),
        );
        row(
            "warm pull after them, 1 client".to_string(),
            &|r| seconds(warm(r)),
            "s",
            Goal::FasterBy(1.5),
        );
        row(
            "  upstream requests (median)".to_string(),
            &|r| requests(warm(r)),
            "req",
            Goal::None,
        );
    }
    figures.print();
}
