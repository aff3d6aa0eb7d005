//! Section `oci-export`: export of the 200 MB image from the store to a new layout directory
//! (every blob verified on its way out), next to `skopeo copy oci:->oci:` of the same image.

use super::figures::{megabytes, Figure, Figures, Target};
use super::measure::{median, section_title, BenchResult};
use super::oci_cli;
use super::oci_import::before_pass;
use super::oci_inputs::{self, remove_if_present};
use super::peers::{self, Peers};
use super::process::Run;
use super::settings::Settings;

pub fn run(settings: &Settings) -> BenchResult<()> {
    section_title(&format!(
        "oci-export: export of the {} MB image to a new layout directory, {} rounds, median \
         shown; store and source warm, `sync` before every pass",
        megabytes(settings.image_bytes),
        settings.rounds
    ));
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
        .prefix("exp-")
        .tempdir_in(&settings.data_dir)?;
    for config in &configs {
        let store = scratch.path().join(format!("store-{}", config.label));
        oci_cli::create_store(&store, *config)?;
        let layout = image.layout.to_string_lossy().into_owned();
        oci_cli::run(&store, *config, &["import", layout.as_str()])?;
    }
    let target = scratch.path().join("out");
    let mut skopeo: Vec<Run> = Vec::new();
    let mut ours: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    for round in 0..settings.rounds {
        let turns = configs.len() + 1;
        for turn in 0..turns {
            let who = (turn + round) % turns;
            remove_if_present(&target)?;
            if who == configs.len() {
                if peers.skopeo {
                    before_pass(&image.layout)?;
                    skopeo.push(peers::skopeo_copy(&image.layout, &image.ref_name, &target)?);
                }
            } else {
                let config = configs[who];
                let store = scratch.path().join(format!("store-{}", config.label));
                before_pass(&store.join("blobs"))?;
                let out = target.to_string_lossy().into_owned();
                ours[who].push(oci_cli::run(
                    &store,
                    config,
                    &["export", "--sref", image.ref_name.as_str(), out.as_str()],
                )?);
                let exported = oci_inputs::blob_bytes(&target)?;
                if exported != image.bytes {
                    return Err(format!(
                        "export wrote {exported} bytes of blobs, the image has {}",
                        image.bytes
                    )
                    .into());
                }
            }
        }
    }
    remove_if_present(&target)?;
    let seconds = |runs: &[Run]| median(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>());
    let reference = (!skopeo.is_empty()).then(|| seconds(&skopeo));
    let mut figures = Figures::default();
    for (config, runs) in configs.iter().zip(&ours) {
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!("export {} MB image (verified)", megabytes(image.bytes)),
            ours: seconds(runs),
            reference_name: if peers.skopeo {
                "skopeo copy oci:->oci:".to_string()
            } else {
                "skopeo (not installed)".to_string()
            },
            reference,
            unit: "s",
            reference_lower_bound: false,
            target: Target::FasterBy(2.0),
            rss_mib: runs.iter().map(Run::max_rss_mib).reduce(f64::max),
        });
    }
    figures.print();
    Ok(())
}
