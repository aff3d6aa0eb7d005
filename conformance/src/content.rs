//! Deterministic test content and small I/O helpers shared by the suites.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use oci_store::traits::{Algorithm, Digest};

pub const MIB: usize = 1 << 20;

/// A small seeded generator (SplitMix64): the same seed gives the same run on every backend,
/// so a failure can be replayed. Not for anything but tests.
#[derive(Clone, Debug)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        SeededRandom { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// `len` pseudo-random bytes determined by `seed`.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    SeededRandom::new(seed ^ 0x5eed_c047_e47a_0001).fill(&mut bytes);
    bytes
}

/// A digest with the given hex start, padded deterministically to full length: index, extra
/// data and key/value backends never see content, so their tests choose digests directly.
pub fn fake_digest(algorithm: Algorithm, hex_start: &str, seed: u64) -> Digest {
    let mut hex = hex_start.to_string();
    let mut random = SeededRandom::new(seed);
    while hex.len() < algorithm.hex_len() {
        hex.push(char::from_digit(random.below(16) as u32, 16).expect("digit below 16"));
    }
    hex.truncate(algorithm.hex_len());
    Digest::parse(&format!("{}:{hex}", algorithm.name())).expect("built a valid digest")
}

/// Writes `bytes` in chunks of irregular sizes, so backends that buffer or chunk internally
/// see writes that straddle their boundaries.
pub fn write_in_chunks(writer: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    const CHUNK_SIZES: [usize; 6] = [1, 7, 4096, 65_537, 3, 300_001];
    let mut offset = 0;
    let mut turn = 0;
    while offset < bytes.len() {
        let end = (offset + CHUNK_SIZES[turn % CHUNK_SIZES.len()]).min(bytes.len());
        writer.write_all(&bytes[offset..end])?;
        offset = end;
        turn += 1;
    }
    Ok(())
}

pub fn read_all(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Hashes a reader with the digest's algorithm; returns the digest and size read.
pub fn hash_reader(mut reader: impl Read, algorithm: Algorithm) -> std::io::Result<(Digest, u64)> {
    let mut hasher = algorithm.hasher();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok((hasher.finish(), size));
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
}

/// Every regular file under `dir`, relative to it. Used to notice files a failed or aborted
/// write left behind, whatever the backend's layout.
pub fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(_) => {
                    files.insert(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
                }
                Err(_) => {}
            }
        }
    }
    files
}

/// Sorted copy, for comparing lists whose order a trait leaves open.
pub fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut copy = items.to_vec();
    copy.sort();
    copy
}
