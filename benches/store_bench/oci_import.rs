//! Sections `oci-import` and `oci-archive`: importing a 4-layer image, from its layout
//! directory and from its oci-archive, through the release binary, next to `cp -r` + `sync`
//! of its blobs, `skopeo copy oci:->oci:` and `ctr images import --no-unpack`, at the sizes
//! of the plot (the largest is the 200 MB image). Also the re-import of an image
//! already present. The archive section also imports the oci-archive from a pipe (`cat
//! ARCHIVE | oci-store import -`) and the same image as a legacy Docker archive (made by
//! `skopeo copy … docker-archive:`), next to `ctr images import` of that file. Draws the plot
//! of import time against image size.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::figures::{megabytes, Figure, Figures, Target};
use super::measure::{median, section_title, BenchResult, Table};
use super::oci_cli::{self, Config};
use super::oci_inputs::{self, remove_if_present, Image};
use super::peers::{self, Containerd, Peers};
use super::plot::{self, Series};
use super::process::Run;
use super::settings::Settings;

#[derive(Clone, Copy, Debug)]
enum Contender {
    CopySync,
    Skopeo,
    OursDir(Config),
    Ctr,
    OursArchive(Config),
    /// `cat ARCHIVE | oci-store import -`.
    OursStdin(Config),
    CtrDocker,
    OursDocker(Config),
}

impl Contender {
    fn label(self) -> String {
        match self {
            Contender::CopySync => "cp -r blobs + sync".to_string(),
            Contender::Skopeo => "skopeo copy oci:->oci:".to_string(),
            Contender::OursDir(c) => format!("oci-store import DIR ({})", c.label),
            Contender::Ctr => "ctr images import --no-unpack (archive)".to_string(),
            Contender::OursArchive(c) => format!("oci-store import ARCHIVE ({})", c.label),
            Contender::OursStdin(c) => format!("cat ARCHIVE | oci-store import - ({})", c.label),
            Contender::CtrDocker => "ctr images import --no-unpack (docker-archive)".to_string(),
            Contender::OursDocker(c) => {
                format!("oci-store import DOCKER-ARCHIVE ({})", c.label)
            }
        }
    }
}

/// Median seconds and the largest peak RSS of each contender at each size.
#[derive(Default)]
struct Results {
    runs: BTreeMap<(String, usize), Vec<Run>>,
}

impl Results {
    fn add(&mut self, contender: &str, size: usize, run: Run) {
        self.runs
            .entry((contender.to_string(), size))
            .or_default()
            .push(run);
    }

    fn seconds(&self, contender: &str, size: usize) -> Option<f64> {
        self.runs
            .get(&(contender.to_string(), size))
            .map(|runs| median(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>()))
    }

    fn rss_mib(&self, contender: &str, size: usize) -> Option<f64> {
        self.runs.get(&(contender.to_string(), size)).map(|runs| {
            runs.iter()
                .map(super::process::Run::max_rss_mib)
                .fold(0.0, f64::max)
        })
    }
}

pub fn run(settings: &Settings, directory: bool, archive: bool) -> BenchResult<()> {
    let sizes = &settings.plot_bytes;
    section_title(&format!(
        "{}: 4-layer images of {} MB (poorly compressible file trees), whole processes, \
         {} rounds, median shown; sources warm in the page cache, `sync` before every pass",
        match (directory, archive) {
            (true, true) => "oci-import + oci-archive",
            (true, false) => "oci-import",
            _ => "oci-archive",
        },
        sizes
            .iter()
            .map(|b| megabytes(*b))
            .collect::<Vec<_>>()
            .join("/"),
        settings.rounds
    ));
    let peers = Peers::detect();
    let configs = oci_cli::configs(settings);
    let mut contenders = Vec::new();
    if directory {
        contenders.push(Contender::CopySync);
        if peers.skopeo {
            contenders.push(Contender::Skopeo);
        }
        contenders.extend(configs.iter().map(|c| Contender::OursDir(*c)));
    }
    if archive {
        if peers.containerd {
            contenders.push(Contender::Ctr);
        }
        contenders.extend(configs.iter().map(|c| Contender::OursArchive(*c)));
        contenders.extend(configs.iter().map(|c| Contender::OursStdin(*c)));
        if peers.skopeo {
            if peers.containerd {
                contenders.push(Contender::CtrDocker);
            }
            contenders.extend(configs.iter().map(|c| Contender::OursDocker(*c)));
        }
        if !directory {
            // The archive target is also relative to the directory import of the same run.
            contenders.extend(configs.iter().map(|c| Contender::OursDir(*c)));
        }
    }
    let images: Vec<Image> = sizes
        .iter()
        .enumerate()
        .map(|(n, bytes)| oci_inputs::image(&settings.data_dir, "latest", *bytes, 4, n as u64 + 1))
        .collect::<BenchResult<_>>()?;
    let scratch = tempfile::Builder::new()
        .prefix("imp-")
        .tempdir_in(&settings.data_dir)?;
    let largest = images.len() - 1;
    let mut results = Results::default();
    for round in 0..settings.rounds {
        for (size, image) in images.iter().enumerate() {
            // Rotate who goes first, so no contender always meets the same disk state.
            let count = contenders.len();
            for turn in 0..count {
                let contender = contenders[(turn + round + size) % count];
                let (run, reimport) = pass(contender, image, scratch.path(), size == largest)?;
                results.add(&contender.label(), size, run);
                if let Some(again) = reimport {
                    results.add(&format!("re-import {}", contender.label()), size, again);
                }
            }
        }
    }
    print_sizes(&results, &contenders, &images);
    println!();
    let size_label = megabytes(images[largest].bytes);
    print_figures(
        &results,
        &configs,
        &peers,
        (directory, archive),
        largest,
        &size_label,
    );
    draw(settings, &results, &contenders, &images)?;
    Ok(())
}

/// One timed pass of `contender` over `image`; the directory import of the largest image is
/// followed by a timed re-import into the same store.
fn pass(
    contender: Contender,
    image: &Image,
    scratch: &Path,
    with_reimport: bool,
) -> BenchResult<(Run, Option<Run>)> {
    let source = match contender {
        Contender::Ctr | Contender::OursArchive(_) | Contender::OursStdin(_) => {
            image.archive.clone()
        }
        Contender::CtrDocker | Contender::OursDocker(_) => {
            oci_inputs::docker_archive(image)?.ok_or("the docker-archive input needs skopeo")?
        }
        _ => image.layout.clone(),
    };
    let target = scratch.join("target");
    remove_if_present(&target)?;
    match contender {
        Contender::OursDir(c)
        | Contender::OursArchive(c)
        | Contender::OursStdin(c)
        | Contender::OursDocker(c) => oci_cli::create_store(&target, c)?,
        _ => {}
    }
    let daemon = match contender {
        Contender::Ctr | Contender::CtrDocker => Some(Containerd::start(&scratch.join("ctrd"))?),
        _ => None,
    };
    before_pass(&source)?;
    let outcome = match contender {
        Contender::CopySync => (
            peers::copy_and_sync(&image.layout.join("blobs"), &target)?,
            None,
        ),
        Contender::Skopeo => (
            peers::skopeo_copy(&image.layout, &image.ref_name, &target)?,
            None,
        ),
        Contender::Ctr | Contender::CtrDocker => {
            let daemon = daemon.as_ref().expect("started above");
            let run = daemon.import(&source)?;
            if daemon.images()?.is_empty() {
                return Err("ctr images import created no image".into());
            }
            (run, None)
        }
        Contender::OursStdin(c) => {
            // A real pipe, as `docker save IMAGE | oci-store import -` gives one.
            let ours = oci_cli::command(&target, c, &["import", "-"]);
            let mut piped = Command::new("sh");
            piped
                .arg("-c")
                .arg("cat \"$0\" | \"$@\"")
                .arg(&source)
                .arg(ours.get_program())
                .args(ours.get_args());
            (super::process::run(&mut piped)?, None)
        }
        Contender::OursDir(c) | Contender::OursArchive(c) | Contender::OursDocker(c) => {
            let path = source.to_string_lossy().into_owned();
            let run = oci_cli::run(&target, c, &["import", path.as_str()])?;
            let again = if with_reimport && matches!(contender, Contender::OursDir(_)) {
                Some(oci_cli::run(&target, c, &["import", path.as_str()])?)
            } else {
                None
            };
            (run, again)
        }
    };
    drop(daemon);
    remove_if_present(&target)?;
    Ok(outcome)
}

/// Equal conditions for every pass: earlier passes' dirty pages written back (so their
/// writeback does not land inside this pass), and the source read once (warm).
pub fn before_pass(source: &Path) -> BenchResult<()> {
    super::process::run(&mut Command::new("sync"))?;
    oci_inputs::warm(source)
}

fn print_sizes(results: &Results, contenders: &[Contender], images: &[Image]) {
    let mut header = vec!["contender".to_string()];
    header.extend(images.iter().map(|i| format!("{} MB", megabytes(i.bytes))));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header_refs);
    for contender in contenders {
        let label = contender.label();
        let mut row = vec![label.clone()];
        for size in 0..images.len() {
            row.push(
                results
                    .seconds(&label, size)
                    .map_or("-".to_string(), |s| format!("{s:.3} s")),
            );
        }
        table.row(row);
    }
    println!("  import time by image size (median seconds):");
    table.print();
}

fn print_figures(
    results: &Results,
    configs: &[Config],
    peers: &Peers,
    (directory, archive): (bool, bool),
    size: usize,
    size_label: &str,
) {
    let import_work = format!("import {size_label} MB image (dir)");
    let mut figures = Figures::default();
    let copy = results.seconds(&Contender::CopySync.label(), size);
    let skopeo = results.seconds(&Contender::Skopeo.label(), size);
    let ctr = results.seconds(&Contender::Ctr.label(), size);
    for config in configs {
        let dir_label = Contender::OursDir(*config).label();
        let archive_label = Contender::OursArchive(*config).label();
        let Some(dir) = results.seconds(&dir_label, size) else {
            continue;
        };
        let figure = |work: &str, ours: f64, rss, reference_name: &str, reference, target| Figure {
            config: config.label.to_string(),
            work: work.to_string(),
            ours,
            reference_name: reference_name.to_string(),
            reference,
            unit: "s",
            reference_lower_bound: false,
            target,
            rss_mib: rss,
        };
        let dir_rss = results.rss_mib(&dir_label, size);
        if directory {
            figures.push(figure(
                &import_work,
                dir,
                dir_rss,
                "cp -r blobs + sync",
                copy,
                Target::RatioAtMost(1.0),
            ));
            figures.push(figure(
                &import_work,
                dir,
                dir_rss,
                if peers.skopeo {
                    "skopeo copy oci:->oci:"
                } else {
                    "skopeo (not installed)"
                },
                skopeo,
                Target::FasterBy(3.0),
            ));
            let reimport_label = format!("re-import {dir_label}");
            if let Some(again) = results.seconds(&reimport_label, size) {
                figures.push(figure(
                    "re-import, image present",
                    again,
                    results.rss_mib(&reimport_label, size),
                    "first import",
                    Some(dir),
                    Target::None,
                ));
            }
        }
        if archive {
            let arch = results.seconds(&archive_label, size);
            let stdin_label = Contender::OursStdin(*config).label();
            if let Some(piped) = results.seconds(&stdin_label, size) {
                figures.push(figure(
                    &format!("import {size_label} MB oci-archive from a pipe"),
                    piped,
                    results.rss_mib(&stdin_label, size),
                    "our oci-archive import",
                    arch,
                    Target::RatioAtMost(1.3),
                ));
            }
            let docker_label = Contender::OursDocker(*config).label();
            if let Some(docker) = results.seconds(&docker_label, size) {
                let rss = results.rss_mib(&docker_label, size);
                let work = format!("import {size_label} MB as docker-archive");
                figures.push(figure(
                    &work,
                    docker,
                    rss,
                    if peers.containerd {
                        "ctr images import --no-unpack"
                    } else {
                        "ctr (containerd not installed)"
                    },
                    results.seconds(&Contender::CtrDocker.label(), size),
                    Target::None,
                ));
                figures.push(figure(
                    &work,
                    docker,
                    rss,
                    "our oci-archive import",
                    arch,
                    Target::RatioAtMost(1.3),
                ));
            }
            if let Some(arch) = arch {
                let rss = results.rss_mib(&archive_label, size);
                figures.push(figure(
                    &format!("import {size_label} MB as oci-archive"),
                    arch,
                    rss,
                    if peers.containerd {
                        "ctr images import --no-unpack"
                    } else {
                        "ctr (containerd not installed)"
                    },
                    ctr,
                    Target::FasterBy(5.0),
                ));
                figures.push(figure(
                    &format!("import {size_label} MB as oci-archive"),
                    arch,
                    rss,
                    "our dir import",
                    Some(dir),
                    Target::RatioAtMost(1.3),
                ));
            }
        }
    }
    figures.print();
}

fn draw(
    settings: &Settings,
    results: &Results,
    contenders: &[Contender],
    images: &[Image],
) -> BenchResult<()> {
    let xs: Vec<f64> = images.iter().map(|i| i.bytes as f64 / 1e6).collect();
    let series: Vec<Series> = contenders
        .iter()
        .map(|c| Series {
            label: c.label(),
            values: (0..images.len())
                .map(|size| results.seconds(&c.label(), size))
                .collect(),
        })
        .collect();
    let png = plot::line_plot(
        &settings.data_dir,
        "oci-import-time",
        "Import time against image size (4-layer OCI image; whole processes, median)",
        "image size, MB (sum of blob sizes)",
        "seconds",
        &xs,
        &series,
    )?;
    if let Some(png) = png {
        println!();
        println!("  plot: {}", png.display());
    }
    Ok(())
}
