//! Section `blobs`: streaming a large random file into the store and back out, per blob
//! backend, next to coreutils doing the same work on the same file in the same run:
//! `sha256sum` + `cp` + `sync FILE` (hash, copy, make durable) for writes, `cat > /dev/null`
//! for reads.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_store::traits::registry::{backends_for, find_backend};
use oci_store::traits::{Digest, Role};
use oci_store::{open_store, BackendChoice, Store, WriteOptions};

use super::measure::{
    grouped, median, megabytes_per_second, ratio, section_title, timed, BenchResult, Random, Table,
};
use super::settings::Settings;

/// Read buffer of our read loop, as large as the store's own copy buffer.
const READ_BUFFER: usize = 1 << 20;

/// Seconds of one round, per step.
#[derive(Default)]
struct Round {
    ours_write: f64,
    ours_read: f64,
    sha256sum: f64,
    cp: f64,
    sync: f64,
    cat: f64,
}

pub fn run(settings: &Settings) -> BenchResult<()> {
    let mib = settings.blob_bytes / (1024 * 1024);
    section_title(&format!(
        "blobs: write and read one {mib} MiB random file, {} rounds, median round shown \
         (MB/s = 10^6 bytes per second)",
        settings.rounds
    ));
    let backends: Vec<&str> = backends_for(Role::Blobs)
        .into_iter()
        .filter(|name| settings.wants_backend(name))
        .collect();
    if backends.is_empty() {
        println!("  no blob backend registered (or selected)");
        return Ok(());
    }
    std::fs::create_dir_all(&settings.data_dir)?;
    let source = random_file(&settings.data_dir, settings.blob_bytes)?;
    let bytes = settings.blob_bytes;
    let mut table = Table::new(&["backend", "ours", "MB/s", "reference", "MB/s", "ours/ref"]);
    let mut components =
        Table::new(&["backend", "sha256sum MB/s", "cp MB/s", "sync s", "metadata"]);
    for backend in backends {
        let metadata = metadata_backend_for(backend)?;
        let scratch = tempfile::Builder::new()
            .prefix("blobs-")
            .tempdir_in(&settings.data_dir)?;
        let choice = BackendChoice::default()
            .metadata(metadata)
            .role(Role::Blobs, backend);
        let store = open_store(&scratch.path().join("store"), &choice)?;
        let copy = scratch.path().join("copy");
        let rounds: Vec<Round> = (0..settings.rounds)
            .map(|number| run_round(&store, &source, &copy, number))
            .collect::<BenchResult<_>>()?;
        let seconds =
            |step: fn(&Round) -> f64| median(&rounds.iter().map(step).collect::<Vec<_>>());
        let speed = |secs: f64| megabytes_per_second(bytes, Duration::from_secs_f64(secs));
        let ours_write = speed(seconds(|r| r.ours_write));
        let reference_write = speed(seconds(|r| r.sha256sum + r.cp + r.sync));
        let ours_read = speed(seconds(|r| r.ours_read));
        let reference_read = speed(seconds(|r| r.cat));
        table.row(vec![
            backend.to_string(),
            "Store::write".to_string(),
            grouped(ours_write),
            "sha256sum + cp + sync".to_string(),
            grouped(reference_write),
            ratio(ours_write, Some(reference_write)),
        ]);
        table.row(vec![
            backend.to_string(),
            "Store::read".to_string(),
            grouped(ours_read),
            "cat > /dev/null".to_string(),
            grouped(reference_read),
            ratio(ours_read, Some(reference_read)),
        ]);
        components.row(vec![
            backend.to_string(),
            grouped(speed(seconds(|r| r.sha256sum))),
            grouped(speed(seconds(|r| r.cp))),
            format!("{:.2}", seconds(|r| r.sync)),
            metadata.to_string(),
        ]);
    }
    table.print();
    println!();
    println!("  reference steps (median) and the metadata backend of each store:");
    components.print();
    Ok(())
}

/// Index, extra data and key/value of the store under test: the blob backend itself when it
/// fills those roles, else the default metadata backend (sqlite), else any registered one.
fn metadata_backend_for(blob_backend: &str) -> BenchResult<&'static str> {
    let candidates = [blob_backend, "sqlite"];
    if let Some(found) = candidates
        .iter()
        .find_map(|name| find_backend(name, Role::Index).ok())
    {
        return Ok(found.name);
    }
    backends_for(Role::Index)
        .first()
        .copied()
        .ok_or_else(|| "no index backend registered".into())
}

/// One round: reference and ours (alternating which goes first), then both reads, then the
/// blob and the copy are removed so the next round writes again.
fn run_round(store: &Store, source: &Path, copy: &Path, number: usize) -> BenchResult<Round> {
    let mut round = Round::default();
    let mut expected_hex = String::new();
    let mut digest = None;
    let ours_first = !number.is_multiple_of(2);
    for ours_turn in [ours_first, !ours_first] {
        if ours_turn {
            let content = File::open(source)?;
            let (record, elapsed) = timed(|| store.write(content, &WriteOptions::default()));
            round.ours_write = elapsed.as_secs_f64();
            digest = Some(record?.digest);
        } else {
            let (hex, elapsed) = timed(|| sha256sum(source));
            expected_hex = hex?;
            round.sha256sum = elapsed.as_secs_f64();
            round.cp = run_tool(Command::new("cp").arg(source).arg(copy))?;
            round.sync = run_tool(Command::new("sync").arg(copy))?;
        }
    }
    let digest: Digest = digest.ok_or("no digest written")?;
    if digest.hex() != expected_hex {
        return Err(format!("store wrote {digest}, sha256sum says {expected_hex}").into());
    }
    for ours_turn in [ours_first, !ours_first] {
        if ours_turn {
            let (read, elapsed) = timed(|| read_all(store, &digest));
            round.ours_read = elapsed.as_secs_f64();
            let read = read?;
            let expected = std::fs::metadata(source)?.len();
            if read != expected {
                return Err(format!("read {read} bytes of {digest}, expected {expected}").into());
            }
        } else {
            round.cat = run_tool(Command::new("cat").arg(copy).stdout(Stdio::null()))?;
        }
    }
    store.delete(&digest)?;
    std::fs::remove_file(copy)?;
    Ok(round)
}

fn read_all(store: &Store, digest: &Digest) -> BenchResult<u64> {
    let mut reader = store.read(digest)?;
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buffer)? {
            0 => return Ok(total),
            read => total += read as u64,
        }
    }
}

/// Runs a coreutils command to completion; its wall time in seconds.
fn run_tool(command: &mut Command) -> BenchResult<f64> {
    let (status, elapsed) = timed(|| command.status());
    let status = status.map_err(|e| format!("running {command:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{command:?} failed: {status}").into());
    }
    Ok(elapsed.as_secs_f64())
}

/// The hex sha256 of `path` as printed by `sha256sum`.
fn sha256sum(path: &Path) -> BenchResult<String> {
    let output = Command::new("sha256sum").arg(path).output()?;
    if !output.status.success() {
        return Err(format!("sha256sum {} failed: {}", path.display(), output.status).into());
    }
    let text = String::from_utf8(output.stdout)?;
    text.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum printed nothing for {}", path.display()).into())
}

/// `random-<bytes>.bin` in the data directory, written once and reused (deterministic content).
fn random_file(data_dir: &Path, bytes: u64) -> BenchResult<PathBuf> {
    let path = data_dir.join(format!("random-{bytes}.bin"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes) {
        return Ok(path);
    }
    let partial = path.with_extension("partial");
    let mut out = BufWriter::new(File::create(&partial)?);
    let mut random = Random::seeded(bytes);
    let mut chunk = vec![0u8; READ_BUFFER];
    let mut left = bytes;
    while left > 0 {
        let size = left.min(chunk.len() as u64) as usize;
        random.fill(&mut chunk[..size]);
        out.write_all(&chunk[..size])?;
        left -= size as u64;
    }
    out.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}
