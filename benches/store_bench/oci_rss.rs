//! Section `rss`: peak resident set of the `oci-store import` process (getrusage of the
//! child) importing an image whose single layer is 1 GiB: memory must not grow with the blob.

use super::figures::{Figure, Figures, Target};
use super::measure::{median, section_title, BenchResult};
use super::oci_cli;
use super::oci_import::before_pass;
use super::oci_inputs::{self, remove_if_present};
use super::settings::Settings;

/// The bound on the import's peak RSS.
const RSS_TARGET_MIB: f64 = 32.0;

pub fn run(settings: &Settings) -> BenchResult<()> {
    let image = oci_inputs::large_layer_image(&settings.data_dir, settings.large_layer_bytes)?;
    section_title(&format!(
        "rss: peak RSS of `oci-store import` of an image with one {:.0} MiB layer, {} round(s)",
        settings.large_layer_bytes as f64 / 1048576.0,
        settings.heavy_rounds
    ));
    let scratch = tempfile::Builder::new()
        .prefix("rss-")
        .tempdir_in(&settings.data_dir)?;
    let store = scratch.path().join("store");
    let layout = image.layout.to_string_lossy().into_owned();
    let mut figures = Figures::default();
    for config in oci_cli::configs(settings) {
        let mut runs = Vec::new();
        for _ in 0..settings.heavy_rounds {
            remove_if_present(&store)?;
            oci_cli::create_store(&store, config)?;
            before_pass(&image.layout)?;
            runs.push(oci_cli::run(&store, config, &["import", layout.as_str()])?);
        }
        remove_if_present(&store)?;
        let peak = runs
            .iter()
            .map(super::process::Run::max_rss_mib)
            .fold(0.0, f64::max);
        let seconds = median(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>());
        figures.push(Figure {
            config: config.label.to_string(),
            work: format!(
                "import, {:.0} MiB layer, in {seconds:.2} s",
                image.bytes as f64 / 1048576.0
            ),
            ours: peak,
            reference_name: "-".to_string(),
            reference: None,
            unit: "MiB",
            reference_lower_bound: false,
            target: Target::AtMost(RSS_TARGET_MIB),
            rss_mib: Some(peak),
        });
    }
    figures.print();
    if !settings.keep {
        // 1 GiB: rebuilt in seconds, not worth the disk between runs.
        remove_if_present(image.layout.parent().ok_or("layout without parent")?)?;
    }
    Ok(())
}
