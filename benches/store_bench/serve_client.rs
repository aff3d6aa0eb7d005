//! The `serve` section's HTTP client: blob pulls by several clients at once and runs of
//! manifest GETs or HEADs by tag, each client on its own keep-alive connection (ureq), reading
//! every body into one reused buffer and discarding it, so that the server is what is measured.

use std::io::Read;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::measure::{BenchResult, Latencies};

/// What a manifest GET or HEAD accepts: the OCI and Docker manifest and index types
/// (distribution answers an OCI manifest only to a client that accepts it).
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Bytes read per `read` call of a blob body.
const READ_BUFFER: usize = 256 << 10;

/// A blob an image's manifest names.
#[derive(Clone, Debug)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
}

/// A repository and tag on a server at `address` (`127.0.0.1:PORT`).
#[derive(Clone, Debug)]
pub struct Target {
    pub address: String,
    pub repository: String,
    pub tag: String,
}

impl Target {
    fn blob_url(&self, digest: &str) -> String {
        format!(
            "http://{}/v2/{}/blobs/{digest}",
            self.address, self.repository
        )
    }

    fn manifest_url(&self) -> String {
        format!(
            "http://{}/v2/{}/manifests/{}",
            self.address, self.repository, self.tag
        )
    }
}

/// The config and layers of the layout's first manifest: what a client pulling the image
/// GETs as blobs.
pub fn image_blobs(layout: &Path) -> BenchResult<Vec<Blob>> {
    let blob_path = |digest: &str| -> BenchResult<std::path::PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("{digest} in {} is not sha256", layout.display()))?;
        Ok(layout.join("blobs/sha256").join(hex))
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .ok_or_else(|| format!("no manifest in {}/index.json", layout.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(manifest_digest)?)?)?;
    let descriptors = std::iter::once(&manifest["config"]).chain(
        manifest["layers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default(),
    );
    descriptors
        .map(|descriptor| {
            let digest = descriptor["digest"]
                .as_str()
                .ok_or("a descriptor without a digest")?;
            let size = descriptor["size"]
                .as_u64()
                .ok_or("a descriptor without a size")?;
            Ok(Blob {
                digest: digest.to_string(),
                size,
            })
        })
        .collect()
}

/// One connection's client: no proxy (the servers are on loopback), HTTP errors as errors.
fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(true)
            .timeout_global(Some(Duration::from_secs(300)))
            .build(),
    )
}

/// `clients` clients, started together, each GETting every blob in `blobs` once on its own
/// connection; returns the wall time from the start to the last client's last byte. Every
/// body's length is checked; with `verify`, its digest too (for an untimed first pass: hashing
/// in the timed ones would measure the client).
pub fn pull(
    target: &Target,
    blobs: &[Blob],
    clients: usize,
    verify: bool,
) -> BenchResult<Duration> {
    let start = Barrier::new(clients + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    let agent = agent();
                    let mut buffer = vec![0; READ_BUFFER];
                    start.wait();
                    for blob in blobs {
                        get_blob(&agent, target, blob, &mut buffer, verify)?;
                    }
                    Ok(())
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "a pulling client panicked".to_string())??;
        }
        Ok(began.elapsed())
    })
}

fn get_blob(
    agent: &ureq::Agent,
    target: &Target,
    blob: &Blob,
    buffer: &mut [u8],
    verify: bool,
) -> Result<(), String> {
    let url = target.blob_url(&blob.digest);
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let mut reader = response.body_mut().as_reader();
    let mut hasher = verify.then(Sha256::new);
    let mut received = 0u64;
    loop {
        let read = reader
            .read(buffer)
            .map_err(|e| format!("reading {url} after {received} bytes: {e}"))?;
        if read == 0 {
            break;
        }
        if let Some(hasher) = &mut hasher {
            hasher.update(&buffer[..read]);
        }
        received += read as u64;
    }
    if received != blob.size {
        return Err(format!(
            "GET {url} sent {received} bytes, not {}",
            blob.size
        ));
    }
    if let Some(hasher) = hasher {
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        if digest != blob.digest {
            return Err(format!("GET {url} sent content of digest {digest}"));
        }
    }
    Ok(())
}

/// `count` GETs (or HEADs) of the manifest by tag, one after another on one connection,
/// after a few untimed ones that open it; returns the wall time of the `count` and each
/// request's latency.
pub fn manifest_requests(
    target: &Target,
    count: usize,
    head: bool,
) -> BenchResult<(Duration, Latencies)> {
    let agent = agent();
    let url = target.manifest_url();
    let mut buffer = vec![0; 64 << 10];
    let mut request = || -> BenchResult<()> {
        let builder = if head {
            agent.head(&url)
        } else {
            agent.get(&url)
        };
        let mut response = builder
            .header("Accept", MANIFEST_ACCEPT)
            .call()
            .map_err(|e| format!("{} {url}: {e}", if head { "HEAD" } else { "GET" }))?;
        if !response.headers().contains_key("docker-content-digest") {
            return Err(format!("{url} answered without Docker-Content-Digest").into());
        }
        if !head {
            let mut reader = response.body_mut().as_reader();
            let mut received = 0;
            loop {
                match reader.read(&mut buffer)? {
                    0 => break,
                    read => received += read,
                }
            }
            if received == 0 {
                return Err(format!("GET {url} sent an empty manifest").into());
            }
        }
        Ok(())
    };
    for _ in 0..10 {
        request()?;
    }
    let mut latencies = Vec::with_capacity(count);
    let began = Instant::now();
    for _ in 0..count {
        let sent = Instant::now();
        request()?;
        latencies.push(sent.elapsed());
    }
    Ok((began.elapsed(), Latencies::new(latencies)))
}
