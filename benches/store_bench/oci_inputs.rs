//! The OCI inputs the OCI sections import, built once and kept in `<data>/oci-inputs/`:
//! multi-layer images of poorly compressible file trees (as a layout directory and as an
//! oci-archive), a layout of many small tagged images sharing base layers, and an image with
//! one large uncompressed layer. Each is built under a `.partial` name and renamed when
//! complete, so an interrupted build is redone, never used.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use oci_store::stores::oci::layout_builder::{LayoutBuilder, OCI_CONFIG, OCI_LAYER_GZIP};
use oci_store::stores::oci::Descriptor;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::measure::{BenchResult, Random};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// An image in a layout of its own, and the same layout as an oci-archive.
#[derive(Clone, Debug)]
pub struct Image {
    pub layout: PathBuf,
    pub archive: PathBuf,
    /// The layout's ref name (`org.opencontainers.image.ref.name`).
    pub ref_name: String,
    /// Sum of the blob sizes (what an import stores).
    pub bytes: u64,
}

/// A layout of many tagged images.
#[derive(Clone, Debug)]
pub struct ManyLayout {
    pub layout: PathBuf,
    pub tags: Vec<String>,
    pub blobs: usize,
    pub bytes: u64,
}

fn inputs_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("oci-inputs")
}

/// A 4-layer (or `layers`-layer) gzip image of about `bytes`, content seeded by `seed`.
pub fn image(
    data_dir: &Path,
    ref_name: &str,
    bytes: u64,
    layers: usize,
    seed: u64,
) -> BenchResult<Image> {
    let dir = inputs_dir(data_dir).join(format!("image-{ref_name}-{bytes}-{layers}-{seed}"));
    let image = Image {
        layout: dir.join("layout"),
        archive: dir.join("image.tar"),
        ref_name: ref_name.to_string(),
        bytes: 0,
    };
    if !dir.exists() {
        let partial = dir.with_extension("partial");
        remove_if_present(&partial)?;
        let mut builder = LayoutBuilder::new(partial.join("layout"))?;
        let mut random = Random::seeded(seed);
        let sizes = vec![bytes / layers as u64; layers];
        let manifest = write_image(&mut builder, &mut random, &sizes, true)?;
        builder.add_ref(Some(ref_name), &manifest);
        builder.finish()?;
        write_archive(&partial.join("layout"), &partial.join("image.tar"))?;
        std::fs::rename(&partial, &dir)?;
    }
    Ok(Image {
        bytes: blob_bytes(&image.layout)?,
        ..image
    })
}

/// One image whose single layer is an uncompressed tar of about `bytes` (no archive).
pub fn large_layer_image(data_dir: &Path, bytes: u64) -> BenchResult<Image> {
    let dir = inputs_dir(data_dir).join(format!("large-layer-{bytes}"));
    let image = Image {
        layout: dir.join("layout"),
        archive: PathBuf::new(),
        ref_name: "large".to_string(),
        bytes: 0,
    };
    if !dir.exists() {
        let partial = dir.with_extension("partial");
        remove_if_present(&partial)?;
        let mut builder = LayoutBuilder::new(partial.join("layout"))?;
        let mut random = Random::seeded(bytes ^ 0x1a7e);
        let manifest = write_image(&mut builder, &mut random, &[bytes], false)?;
        builder.add_ref(Some("large"), &manifest);
        builder.finish()?;
        std::fs::rename(&partial, &dir)?;
    }
    Ok(Image {
        bytes: blob_bytes(&image.layout)?,
        ..image
    })
}

/// `count` images tagged `img-NNNNN`, each with three shared base layers (`base_bytes` in
/// all) and one small layer, config and manifest of its own: `3 + 3 * count` blobs.
pub fn many_layout(
    data_dir: &Path,
    count: usize,
    base_bytes: u64,
    own_bytes: u64,
) -> BenchResult<ManyLayout> {
    let dir = inputs_dir(data_dir).join(format!("many-{count}-{base_bytes}-{own_bytes}"));
    let tags: Vec<String> = (0..count).map(|n| format!("img-{n:05}")).collect();
    if !dir.exists() {
        let partial = dir.with_extension("partial");
        remove_if_present(&partial)?;
        let mut builder = LayoutBuilder::new(partial.join("layout"))?;
        let mut random = Random::seeded(5_000);
        let mut base = Vec::new();
        for _ in 0..3 {
            base.push(layer_blob(&mut builder, &mut random, base_bytes / 3, true)?);
        }
        for tag in &tags {
            let own = layer_blob(&mut builder, &mut random, own_bytes, true)?;
            let layers: Vec<(Descriptor, String)> =
                base.iter().cloned().chain(std::iter::once(own)).collect();
            let manifest = image_documents(&mut builder, &layers, tag)?;
            builder.add_ref(Some(tag), &manifest);
        }
        builder.finish()?;
        std::fs::rename(&partial, &dir)?;
    }
    let layout = dir.join("layout");
    Ok(ManyLayout {
        blobs: std::fs::read_dir(layout.join("blobs/sha256"))?.count(),
        bytes: blob_bytes(&layout)?,
        layout,
        tags,
    })
}

/// Layers of the given sizes, a config naming their diff ids, and a manifest.
fn write_image(
    builder: &mut LayoutBuilder,
    random: &mut Random,
    sizes: &[u64],
    gzip: bool,
) -> BenchResult<Descriptor> {
    let mut layers = Vec::new();
    for size in sizes {
        layers.push(layer_blob(builder, random, *size, gzip)?);
    }
    image_documents(builder, &layers, "bench")
}

/// Config and manifest over `layers` (descriptor, diff id); `label` makes them unique.
fn image_documents(
    builder: &mut LayoutBuilder,
    layers: &[(Descriptor, String)],
    label: &str,
) -> BenchResult<Descriptor> {
    let diff_ids: Vec<&String> = layers.iter().map(|(_, diff_id)| diff_id).collect();
    let config = builder.json_blob(
        OCI_CONFIG,
        &json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": { "Labels": { "bench.image": label } },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        }),
    )?;
    let descriptors: Vec<&Descriptor> = layers.iter().map(|(d, _)| d).collect();
    Ok(builder.json_blob(
        OCI_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": descriptors,
        }),
    )?)
}

/// Streams a layer into the layout: a tar of a file tree of about `bytes`, gzip-compressed
/// (fast level) when `gzip` (poorly compressible: about 0.9 of that stored). Returns its descriptor and diff id.
fn layer_blob(
    builder: &mut LayoutBuilder,
    random: &mut Random,
    bytes: u64,
    gzip: bool,
) -> BenchResult<(Descriptor, String)> {
    let blobs = builder.root().join("blobs/sha256");
    let temporary = blobs.join(".layer.partial");
    let file = BufWriter::with_capacity(1 << 20, File::create(&temporary)?);
    let stored = Hashing::new(file);
    let (stored, tar_digest) = if gzip {
        let encoder = GzEncoder::new(stored, flate2::Compression::fast());
        let tar_side = write_tree(Hashing::new(encoder), random, bytes, |h| h.count)?;
        let (encoder, tar_digest) = tar_side.finish();
        (encoder.finish()?, Some(tar_digest))
    } else {
        (write_tree(stored, random, bytes, |h| h.count)?, None)
    };
    let (file, digest) = stored.finish();
    file.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    // Uncompressed, the stored bytes are the tar itself: the diff id is the digest.
    let diff_id = tar_digest.unwrap_or_else(|| digest.clone());
    let size = std::fs::metadata(&temporary)?.len();
    let hex = digest.trim_start_matches("sha256:");
    std::fs::rename(&temporary, blobs.join(hex))?;
    let media_type = if gzip { OCI_LAYER_GZIP } else { OCI_LAYER_TAR };
    let descriptor: Descriptor = serde_json::from_value(json!({
        "mediaType": media_type,
        "digest": digest,
        "size": size,
    }))?;
    Ok((descriptor, diff_id))
}

/// Writes a tar of directories and files into `out` until `written(out)` (the bytes of the
/// tar, before compression) reaches `target`. File sizes are log-uniform from 256 B to 2 MiB,
/// at most what is left; four of five files are random bytes (binaries, compressed assets),
/// one is text-like, so the whole compresses poorly, as real layers of binaries do.
fn write_tree<W: Write>(
    out: W,
    random: &mut Random,
    target: u64,
    written: impl Fn(&W) -> u64,
) -> BenchResult<W> {
    let mut tar = tar::Builder::new(out);
    let mut files = 0u64;
    let mut content = Vec::new();
    loop {
        let written = written(tar.get_ref());
        if written >= target {
            break;
        }
        let dir = format!(
            "usr/lib/pkg{:03}/sub{:02}",
            random.below(400),
            random.below(20)
        );
        // No file larger than what is left, so small layers stay small.
        let size = log_uniform(random, 256, 2 << 20).min((target - written).max(256)) as usize;
        content.resize(size, 0);
        if random.below(5) == 0 {
            fill_text(random, &mut content);
        } else {
            random.fill(&mut content);
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(size as u64);
        header.set_mode(if random.below(4) == 0 { 0o755 } else { 0o644 });
        header.set_mtime(1_700_000_000);
        tar.append_data(&mut header, format!("{dir}/file{files:06}"), &content[..])?;
        files += 1;
    }
    Ok(tar.into_inner()?)
}

fn log_uniform(random: &mut Random, low: u64, high: u64) -> u64 {
    let unit = random.below(1 << 30) as f64 / (1u64 << 30) as f64;
    ((low as f64).ln() + unit * ((high as f64).ln() - (low as f64).ln())).exp() as u64
}

const WORDS: [&str; 16] = [
    "config", "library", "version", "error", "return", "value", "struct", "module", "import",
    "static", "buffer", "socket", "thread", "string", "default", "handler",
];

/// Text-like bytes: words, numbers and newlines (compresses about 3 to 1).
fn fill_text(random: &mut Random, content: &mut [u8]) {
    let mut position = 0;
    while position < content.len() {
        let word = if random.below(3) == 0 {
            format!("{} ", random.below(100_000))
        } else {
            let mut word = WORDS[random.below(16) as usize].to_string();
            word.push(if random.below(8) == 0 { '\n' } else { ' ' });
            word
        };
        let take = word.len().min(content.len() - position);
        content[position..position + take].copy_from_slice(&word.as_bytes()[..take]);
        position += take;
    }
}

/// A writer that hashes (sha256) and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer and `sha256:<hex>` of everything written.
    fn finish(self) -> (W, String) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An oci-archive (plain tar) of `layout`: `oci-layout`, `index.json`, then the blobs.
pub fn write_archive(layout: &Path, archive: &Path) -> BenchResult<()> {
    let file = BufWriter::with_capacity(1 << 20, File::create(archive)?);
    let mut tar = tar::Builder::new(file);
    tar.append_path_with_name(layout.join("oci-layout"), "oci-layout")?;
    tar.append_path_with_name(layout.join("index.json"), "index.json")?;
    tar.append_dir("blobs", layout.join("blobs"))?;
    tar.append_dir("blobs/sha256", layout.join("blobs/sha256"))?;
    let mut names: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        tar.append_path_with_name(
            layout.join("blobs/sha256").join(&name),
            format!("blobs/sha256/{name}"),
        )?;
    }
    tar.into_inner()?
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()?;
    Ok(())
}

/// The image as a legacy Docker archive (`manifest.json`, `<hex>.json`, layers as
/// uncompressed tars with `<id>/layer.tar` links, as `docker save` before 25 and `podman
/// save` write it), made once by `skopeo copy oci: docker-archive:` beside the oci-archive;
/// `None` without skopeo.
pub fn docker_archive(image: &Image) -> BenchResult<Option<PathBuf>> {
    let Some(dir) = image.archive.parent() else {
        return Ok(None);
    };
    let archive = dir.join("image.docker.tar");
    if archive.exists() {
        return Ok(Some(archive));
    }
    if !super::process::on_path("skopeo") {
        return Ok(None);
    }
    let partial = dir.join("image.docker.tar.partial");
    remove_if_present(&partial)?;
    super::process::run(
        std::process::Command::new("skopeo")
            .arg("copy")
            .arg("--quiet")
            .arg(format!("oci:{}:{}", image.layout.display(), image.ref_name))
            .arg(format!(
                "docker-archive:{}:bench/image:latest",
                partial.display()
            )),
    )?;
    File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &archive)?;
    Ok(Some(archive))
}

/// Sum of the sizes of `layout/blobs/sha256/*`.
pub fn blob_bytes(layout: &Path) -> BenchResult<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(layout.join("blobs/sha256"))? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// Reads every file under `dir` once, so a timed pass finds it in the page cache, as the
/// pass before it did.
pub fn warm(dir: &Path) -> BenchResult<()> {
    if dir.is_file() {
        std::io::copy(&mut File::open(dir)?, &mut std::io::sink())?;
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        warm(&entry?.path())?;
    }
    Ok(())
}

pub fn remove_if_present(path: &Path) -> BenchResult<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", path.display()).into()),
    }
}
