//! Section `registry`: push and pull of the 200 MB multi-layer image against a local CNCF
//! distribution registry (Debian's `docker-registry`, started here on 127.0.0.1 with its own
//! storage), next to `skopeo copy` doing the same in the same run, and a re-pull of the image
//! the store has (which should cost a manifest GET, not a download).
//!
//! Every push goes to a registry of its own with empty storage (started untimed), so every
//! byte is sent: skopeo remembers where it saw blobs (its blob-info cache) and would mount them
//! from an earlier repository of the same registry instead. Every first pull goes into an
//! empty store (ours) or an empty layout directory (skopeo). `sync` before every pass.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::figures::{megabytes, Figure, Figures, Target};
use super::measure::{median, section_title, BenchResult};
use super::oci_cli;
use super::oci_import::before_pass;
use super::oci_inputs::{self, remove_if_present};
use super::peers::Peers;
use super::process::{self, on_path, Run};
use super::settings::Settings;

/// A registry of our own; killed when dropped. The `serve` section measures it too.
pub struct LocalRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl LocalRegistry {
    /// Starts `docker-registry` with its storage in `dir/registry-storage` and waits until it
    /// listens.
    pub fn start(dir: &Path) -> BenchResult<LocalRegistry> {
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("registry-storage").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let registry = LocalRegistry {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.address).is_err() {
            if Instant::now() > deadline {
                return Err("docker-registry did not start listening within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// The registry process's id (for its /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skopeo copy --quiet ARGS…`, timed.
pub fn skopeo(args: &[String]) -> BenchResult<Run> {
    let mut command = Command::new("skopeo");
    command.arg("copy").arg("--quiet").args(args);
    process::run(&mut command)
}

pub fn run(settings: &Settings) -> BenchResult<()> {
    section_title(&format!(
        "registry: push and pull of the {} MB image with a local distribution 2.8 registry, {} \
         rounds, median shown; `sync` before every pass",
        megabytes(settings.image_bytes),
        settings.rounds
    ));
    if !on_path("docker-registry") {
        println!(
            "  docker-registry not installed: section skipped (apt-get install docker-registry)"
        );
        return Ok(());
    }
    let peers = Peers::detect();
    let configs = oci_cli::configs(settings);
    let image = oci_inputs::image(
        &settings.data_dir,
        "latest",
        settings.image_bytes,
        4,
        settings.plot_bytes.len() as u64,
    )?;
    let scratch = tempfile::Builder::new()
        .prefix("reg-")
        .tempdir_in(&settings.data_dir)?;
    let registry = LocalRegistry::start(scratch.path())?;
    for config in &configs {
        let store = scratch.path().join(format!("store-{}", config.label));
        oci_cli::create_store(&store, *config)?;
        let layout = image.layout.to_string_lossy().into_owned();
        oci_cli::run(&store, *config, &["import", layout.as_str()])?;
    }
    // What every pull fetches: pushed once, untimed.
    let source = format!("{}/bench/source:1", registry.address);
    let first_store = scratch.path().join(format!("store-{}", configs[0].label));
    oci_cli::run(
        &first_store,
        configs[0],
        &["push", "latest", source.as_str()],
    )?;

    let pulled = scratch.path().join("pulled");
    let mut pushes: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    let mut pulls: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    let mut repulls: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    let (mut skopeo_pushes, mut skopeo_pulls) = (Vec::new(), Vec::new());
    for round in 0..settings.rounds {
        let turns = configs.len() + 1;
        for turn in 0..turns {
            let who = (turn + round) % turns;
            let push_dir = scratch.path().join("push-registry");
            remove_if_present(&push_dir)?;
            let push_registry = LocalRegistry::start(&push_dir)?;
            let repository = format!("{}/bench/pushed:1", push_registry.address);
            remove_if_present(&pulled)?;
            if who == configs.len() {
                if !peers.skopeo {
                    continue;
                }
                before_pass(&image.layout)?;
                skopeo_pushes.push(skopeo(&[
                    "--dest-tls-verify=false".to_string(),
                    format!("oci:{}:latest", image.layout.display()),
                    format!("docker://{repository}"),
                ])?);
                before_pass(&image.layout)?;
                skopeo_pulls.push(skopeo(&[
                    "--src-tls-verify=false".to_string(),
                    format!("docker://{source}"),
                    format!("oci:{}:latest", pulled.display()),
                ])?);
                let fetched = oci_inputs::blob_bytes(&pulled)?;
                if fetched != image.bytes {
                    return Err(
                        format!("skopeo pulled {fetched} bytes, not {}", image.bytes).into(),
                    );
                }
                continue;
            }
            let config = configs[who];
            let store = scratch.path().join(format!("store-{}", config.label));
            before_pass(&store.join("blobs"))?;
            pushes[who].push(oci_cli::run(
                &store,
                config,
                &["push", "latest", repository.as_str()],
            )?);
            oci_cli::create_store(&pulled, config)?;
            before_pass(&pulled)?;
            pulls[who].push(oci_cli::run(&pulled, config, &["pull", source.as_str()])?);
            let stored = oci_inputs::blob_bytes(&pulled)?;
            if stored != image.bytes {
                return Err(format!("our pull stored {stored} bytes, not {}", image.bytes).into());
            }
            before_pass(&pulled)?;
            repulls[who].push(oci_cli::run(&pulled, config, &["pull", source.as_str()])?);
        }
    }
    remove_if_present(&pulled)?;
    let seconds = |runs: &[Run]| median(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>());
    let skopeo_name = |what: &str| match peers.skopeo {
        true => format!("skopeo copy {what}"),
        false => "skopeo (not installed)".to_string(),
    };
    let mut figures = Figures::default();
    for (position, config) in configs.iter().enumerate() {
        let mb = megabytes(image.bytes);
        let rss = |runs: &[Run]| runs.iter().map(Run::max_rss_mib).reduce(f64::max);
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("push {mb} MB image"),
            ours: seconds(&pushes[position]),
            reference_name: skopeo_name("oci:->docker://"),
            reference: (!skopeo_pushes.is_empty()).then(|| seconds(&skopeo_pushes)),
            unit: "s",
            reference_lower_bound: false,
            target: Target::FasterBy(1.5),
            rss_mib: rss(&pushes[position]),
        });
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("pull {mb} MB image (verified)"),
            ours: seconds(&pulls[position]),
            reference_name: skopeo_name("docker://->oci:"),
            reference: (!skopeo_pulls.is_empty()).then(|| seconds(&skopeo_pulls)),
            unit: "s",
            reference_lower_bound: false,
            target: Target::FasterBy(1.5),
            rss_mib: rss(&pulls[position]),
        });
        figures.push(Figure {
            config: config.label.to_string(),
            work: "re-pull of the present image".to_string(),
            ours: seconds(&repulls[position]),
            reference_name: "our first pull".to_string(),
            reference: Some(seconds(&pulls[position])),
            unit: "s",
            reference_lower_bound: false,
            target: Target::RatioAtMost(0.05),
            rss_mib: rss(&repulls[position]),
        });
    }
    figures.print();
    drop(registry);
    Ok(())
}
