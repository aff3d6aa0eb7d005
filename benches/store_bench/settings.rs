//! What to run and how big: sections from the command line or `OCI_STORE_BENCH`, sizes scaled
//! by `OCI_STORE_BENCH_SCALE`, and where cached data lives.

use std::path::PathBuf;

use super::measure::BenchResult;

/// The sections, in the order they run when none is named.
pub const SECTIONS: [&str; 17] = [
    "kv",
    "resolve",
    "blobs",
    "oci-import",
    "oci-archive",
    "oci-export",
    "oci-all",
    "oci-list",
    "oci-rm",
    "oci-gc",
    "oci-prune",
    "rss",
    "concurrent",
    "scale",
    "registry",
    "serve",
    "mirror",
];

/// `oci` on the command line stands for every OCI section.
pub const OCI_SECTIONS: [&str; 11] = [
    "oci-import",
    "oci-archive",
    "oci-export",
    "oci-all",
    "oci-list",
    "oci-rm",
    "oci-gc",
    "oci-prune",
    "rss",
    "concurrent",
    "scale",
];

/// Single-op key/value commits per round and contender.
const KV_PUTS: f64 = 2_000.0;
/// Key/value reads per contender.
const KV_GETS: f64 = 20_000.0;
/// Records in the index that partial digests are resolved against.
const INDEXED_BLOBS: f64 = 1_000_000.0;
/// Size of the blob written and read per round.
const BLOB_MIB: f64 = 256.0;
/// The multi-layer image of the OCI sections, 10^6 bytes; the plot also imports the smaller
/// sizes.
const IMAGE_MB: f64 = 200.0;
const PLOT_MB: [f64; 4] = [25.0, 50.0, 100.0, 200.0];
/// The layout of many small tagged images: images, bytes of the three shared base layers,
/// bytes of each image's own layer (5,000 × 86 kB + 30 MB ≈ the 463 MB).
const MANY_IMAGES: f64 = 5_000.0;
const MANY_BASE_MB: f64 = 30.0;
const MANY_OWN_BYTES: u64 = 86_000;
/// The layer whose import's peak RSS is measured.
const LARGE_LAYER_MIB: f64 = 1024.0;
/// Each of the four images imported at once.
const CONCURRENT_MB: f64 = 50.0;
/// Blobs of the large store of the `scale` section (the small one has a tenth).
const SCALE_BLOBS: f64 = 1_000_000.0;

pub struct Settings {
    pub sections: Vec<String>,
    /// Only these backends, when given (`OCI_STORE_BENCH_BACKENDS=lmdb,fs`).
    pub backends: Option<Vec<String>>,
    pub scale: f64,
    pub rounds: usize,
    /// Rounds of the long OCI measurements (`oci-all`, `oci-rm`, `oci-gc`, `rss`, `scale`).
    pub heavy_rounds: usize,
    pub image_bytes: u64,
    pub plot_bytes: Vec<u64>,
    pub many_images: usize,
    pub many_base_bytes: u64,
    pub many_own_bytes: u64,
    pub large_layer_bytes: u64,
    pub concurrent_image_bytes: u64,
    pub scale_blobs: usize,
    pub kv_puts: usize,
    pub kv_gets: usize,
    pub indexed_blobs: usize,
    /// Timed resolutions per index backend (not scaled: it is the sample size of the
    /// percentiles, not a load).
    pub lookups: usize,
    pub blob_bytes: u64,
    /// Where filled indexes, the random blob and scratch stores are kept.
    pub data_dir: PathBuf,
    /// Keep the multi-GB stores (many-image stores, the scale stores, the 1 GiB layer) after
    /// their sections for a quicker rerun (`OCI_STORE_BENCH_KEEP=1`); by default only the
    /// input images (under 2 GB) stay.
    pub keep: bool,
    /// A peer run longer than this is stopped and its time taken as a lower bound
    /// (`OCI_STORE_BENCH_PEER_LIMIT`, seconds: `umoci gc` on the 5,000-image layout took
    /// more than 5 minutes here).
    pub peer_limit: std::time::Duration,
}

impl Settings {
    pub fn from_environment() -> BenchResult<Settings> {
        let scale = number_variable("OCI_STORE_BENCH_SCALE", 1.0)?;
        if scale <= 0.0 {
            return Err("OCI_STORE_BENCH_SCALE must be positive".into());
        }
        let rounds = number_variable("OCI_STORE_BENCH_ROUNDS", 3.0)?.max(1.0) as usize;
        let heavy_rounds = number_variable("OCI_STORE_BENCH_HEAVY_ROUNDS", 1.0)?.max(1.0) as usize;
        let scaled = |base: f64| ((base * scale).round() as usize).max(1);
        let megabytes = |mb: f64| (mb * scale * 1e6).round().max(100_000.0) as u64;
        Ok(Settings {
            heavy_rounds,
            image_bytes: megabytes(IMAGE_MB),
            plot_bytes: PLOT_MB.iter().map(|mb| megabytes(*mb)).collect(),
            many_images: scaled(MANY_IMAGES).max(20),
            many_base_bytes: megabytes(MANY_BASE_MB),
            many_own_bytes: MANY_OWN_BYTES,
            large_layer_bytes: megabytes(LARGE_LAYER_MIB * 1.048_576),
            concurrent_image_bytes: megabytes(CONCURRENT_MB),
            scale_blobs: scaled(SCALE_BLOBS).max(1_000),
            sections: requested_sections()?,
            backends: std::env::var("OCI_STORE_BENCH_BACKENDS")
                .ok()
                .filter(|names| !names.trim().is_empty())
                .map(|names| split_names(&names)),
            scale,
            rounds,
            kv_puts: scaled(KV_PUTS),
            kv_gets: scaled(KV_GETS),
            indexed_blobs: scaled(INDEXED_BLOBS),
            lookups: 10_000,
            blob_bytes: scaled(BLOB_MIB) as u64 * 1024 * 1024,
            data_dir: data_dir()?,
            keep: number_variable("OCI_STORE_BENCH_KEEP", 0.0)? != 0.0,
            peer_limit: std::time::Duration::from_secs(
                number_variable("OCI_STORE_BENCH_PEER_LIMIT", 60.0)?.max(1.0) as u64,
            ),
        })
    }

    pub fn wants_backend(&self, name: &str) -> bool {
        self.backends
            .as_ref()
            .is_none_or(|names| names.iter().any(|wanted| wanted == name))
    }
}

/// Section names given as arguments (cargo adds `--bench`, which is skipped), else in
/// `OCI_STORE_BENCH`, else all of them.
fn requested_sections() -> BenchResult<Vec<String>> {
    let mut names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with('-'))
        .flat_map(|argument| split_names(&argument))
        .collect();
    if names.is_empty() {
        names = std::env::var("OCI_STORE_BENCH")
            .map(|value| split_names(&value))
            .unwrap_or_default();
    }
    if names.is_empty() {
        return Ok(SECTIONS
            .iter()
            .map(std::string::ToString::to_string)
            .collect());
    }
    let names: Vec<String> = names
        .into_iter()
        .flat_map(|name| match name.as_str() {
            "oci" => OCI_SECTIONS
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            _ => vec![name],
        })
        .collect();
    if let Some(unknown) = names.iter().find(|name| !SECTIONS.contains(&name.as_str())) {
        return Err(format!(
            "unknown section {unknown:?}; the sections are: {} (and `oci` for all oci ones)",
            SECTIONS.join(", ")
        )
        .into());
    }
    Ok(names)
}

fn split_names(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

fn number_variable(name: &str, default: f64) -> BenchResult<f64> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a number").into()),
        _ => Ok(default),
    }
}

/// `OCI_STORE_BENCH_DATA`, else `bench-data/` in the target directory this binary was built
/// in (`target/release/deps/store_bench-…` → `target/bench-data`).
fn data_dir() -> BenchResult<PathBuf> {
    if let Some(dir) = std::env::var_os("OCI_STORE_BENCH_DATA").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let executable = std::env::current_exe()?;
    let target = executable
        .ancestors()
        .nth(3)
        .ok_or("cannot find the target directory above the bench executable")?;
    Ok(target.join("bench-data"))
}
