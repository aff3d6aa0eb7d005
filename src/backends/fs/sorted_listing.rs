//! The `fs` store's listing in digest order, in bounded memory.
//!
//! Blob files live in one flat directory per algorithm, which `read_dir` returns in hash
//! order. To hand GC and fsck a sorted listing without holding a store's worth of digests,
//! the names are sorted the way external sorts do: in runs of [`RUN_LEN`] records, each run
//! sorted and written to an unnamed temporary file beside the staging files (nothing is left
//! if the process dies), then the runs merged as they are read back. A listing that fits in
//! one run never touches a file. Memory: one run (about 4 MiB) while gathering, a 64 KiB
//! read buffer per run while merging (16 runs at 1,000,000 blobs).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::traits::{Algorithm, Digest, SortedDigests, StorageError, StorageResult};
use crate::util::io_context::IoContext;

/// Records per sorted run.
const RUN_LEN: usize = 65_536;

/// A digest as a fixed-size record whose byte order is the digest-string order: the
/// algorithm's rank (`sha256` before `sha512`), then the hash bytes, zero-padded to 64.
type Record = [u8; 65];

fn record_of(digest: &Digest) -> Record {
    let mut record = [0u8; 65];
    record[0] = match digest.algorithm() {
        Algorithm::Sha256 => 0,
        Algorithm::Sha512 => 1,
    };
    let raw = digest.raw_bytes();
    record[1..=raw.len()].copy_from_slice(&raw);
    record
}

fn digest_of(record: &Record) -> Digest {
    match record[0] {
        0 => Digest::from_raw_bytes(Algorithm::Sha256, &record[1..33]),
        _ => Digest::from_raw_bytes(Algorithm::Sha512, &record[1..65]),
    }
}

/// Gathers digests in any order and lists them sorted, without duplicates.
pub(super) struct ExternalSort {
    spill_dir: PathBuf,
    run: Vec<Record>,
    spilled: Vec<File>,
}

impl ExternalSort {
    /// Runs that do not fit in memory go to unnamed files in `spill_dir`.
    pub(super) fn new(spill_dir: &Path) -> ExternalSort {
        ExternalSort {
            spill_dir: spill_dir.to_path_buf(),
            run: Vec::new(),
            spilled: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, digest: &Digest) -> StorageResult<()> {
        self.run.push(record_of(digest));
        if self.run.len() >= RUN_LEN {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> StorageResult<()> {
        let error = |source| {
            StorageError::from(IoContext::new(
                "sorting the blob listing",
                &self.spill_dir,
                source,
            ))
        };
        sort_run(&mut self.run);
        let file = tempfile::tempfile_in(&self.spill_dir).map_err(error)?;
        let mut writer = BufWriter::new(file);
        for record in &self.run {
            writer.write_all(record).map_err(error)?;
        }
        let mut file = writer.into_inner().map_err(|e| error(e.into_error()))?;
        file.rewind().map_err(error)?;
        self.spilled.push(file);
        self.run.clear();
        Ok(())
    }

    /// The digests in order.
    pub(super) fn finish(mut self) -> StorageResult<SortedDigests<'static>> {
        if self.spilled.is_empty() {
            sort_run(&mut self.run);
            return Ok(SortedDigests::from_sorted_iter(
                self.run.into_iter().map(|record| Ok(digest_of(&record))),
            ));
        }
        if !self.run.is_empty() {
            self.spill()?;
        }
        let mut merge = Merge {
            runs: self
                .spilled
                .into_iter()
                .map(|file| BufReader::with_capacity(64 * 1024, file))
                .collect(),
            heads: BinaryHeap::new(),
            last: None,
            spill_dir: self.spill_dir,
        };
        for run in 0..merge.runs.len() {
            merge.advance(run)?;
        }
        Ok(SortedDigests::from_sorted_iter(merge))
    }
}

fn sort_run(run: &mut Vec<Record>) {
    run.sort_unstable();
    run.dedup();
}

/// A k-way merge of sorted runs read back from their files.
struct Merge {
    runs: Vec<BufReader<File>>,
    /// The smallest unread record of each run that has one, with the run's number.
    heads: BinaryHeap<Reverse<(Record, usize)>>,
    last: Option<Record>,
    spill_dir: PathBuf,
}

impl Merge {
    /// Reads the next record of `run` into the heap, if it has one.
    fn advance(&mut self, run: usize) -> StorageResult<()> {
        let mut record = [0u8; 65];
        match self.runs[run].read_exact(&mut record) {
            Ok(()) => {
                self.heads.push(Reverse((record, run)));
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
            Err(source) => Err(StorageError::from(IoContext::new(
                "reading back the sorted blob listing",
                &self.spill_dir,
                source,
            ))),
        }
    }
}

impl Iterator for Merge {
    type Item = StorageResult<Digest>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Reverse((record, run)) = self.heads.pop()?;
            if let Err(error) = self.advance(run) {
                self.heads.clear();
                return Some(Err(error));
            }
            // The same digest may head several runs (listed twice while files were renamed).
            if self.last == Some(record) {
                continue;
            }
            self.last = Some(record);
            return Some(Ok(digest_of(&record)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_runs_merge_into_one_sorted_listing_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let mut sort = ExternalSort::new(dir.path());
        let count = RUN_LEN * 2 + 100;
        let mut expected = Vec::new();
        for n in 0..count as u32 {
            let algorithm = if n % 7 == 0 {
                Algorithm::Sha512
            } else {
                Algorithm::Sha256
            };
            let digest = Digest::of_bytes(algorithm, &n.to_le_bytes());
            sort.push(&digest).unwrap();
            // Some digests listed twice, in different runs.
            if n % 1000 == 0 {
                sort.push(&digest).unwrap();
            }
            expected.push(digest);
        }
        assert_eq!(sort.spilled.len(), 2, "runs written to files");
        let listed: Vec<Digest> = sort
            .finish()
            .unwrap()
            .collect::<StorageResult<_>>()
            .unwrap();
        expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(listed.len(), expected.len());
        assert!(
            listed == expected,
            "merge order differs from digest-string order"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "spill files are unnamed"
        );
    }

    #[test]
    fn a_listing_that_fits_one_run_is_sorted_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut sort = ExternalSort::new(dir.path());
        let digests: Vec<Digest> = (0..50u8)
            .map(|n| Digest::of_bytes(Algorithm::ALL[n as usize % 2], &[n]))
            .collect();
        for digest in digests.iter().rev() {
            sort.push(digest).unwrap();
        }
        assert!(sort.spilled.is_empty());
        let listed: Vec<Digest> = sort
            .finish()
            .unwrap()
            .collect::<StorageResult<_>>()
            .unwrap();
        let mut expected = digests;
        expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(listed, expected);
    }
}
