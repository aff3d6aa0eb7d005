//! Listings of digests in the index's key order (by digest string), for merging with the
//! index page by page without holding a store's worth of `Digest`s.
//!
//! Backends that keep digests in a sorted key space (SQLite, LMDB) page through it: a page at
//! a time is all that is held. The `fs` blob store, whose flat directories cannot be read in
//! order, sorts externally (`src/backends/fs/sorted_listing.rs`). The trait defaults, for
//! backends with neither, gather their `Vec` into [`CompactDigests`], the raw hash bytes
//! only: 32 bytes a sha256 digest instead of about 110 for a `Digest` on the heap.

use super::digest::{Algorithm, Digest};
use super::error::StorageResult;

/// How many digests a paged listing asks its backend for at a time.
pub const DIGEST_PAGE: usize = 4096;

/// Digests, sorted by digest string and without duplicates, as an iterator.
pub struct SortedDigests<'a> {
    source: Source<'a>,
}

/// Fetches the page of digests strictly after `after` (all from the start when `None`), in
/// order, at most `limit` of them.
pub type PageFetch<'a> = dyn FnMut(Option<&Digest>, usize) -> StorageResult<Vec<Digest>> + 'a;

enum Source<'a> {
    Paged {
        fetch: Box<PageFetch<'a>>,
        page: std::vec::IntoIter<Digest>,
        last: Option<Digest>,
        exhausted: bool,
    },
    Compact(CompactIter),
    Sorted(Box<dyn Iterator<Item = StorageResult<Digest>> + 'a>),
}

impl<'a> SortedDigests<'a> {
    /// A listing read one page at a time through `fetch`.
    pub fn paged(
        fetch: impl FnMut(Option<&Digest>, usize) -> StorageResult<Vec<Digest>> + 'a,
    ) -> Self {
        SortedDigests {
            source: Source::Paged {
                fetch: Box::new(fetch),
                page: Vec::new().into_iter(),
                last: None,
                exhausted: false,
            },
        }
    }

    /// A listing gathered whole (and sorted) beforehand.
    pub fn compact(digests: CompactDigests) -> SortedDigests<'static> {
        SortedDigests {
            source: Source::Compact(digests.into_sorted_iter()),
        }
    }

    /// A listing from an iterator that yields digests in order already.
    pub fn from_sorted_iter(iter: impl Iterator<Item = StorageResult<Digest>> + 'a) -> Self {
        SortedDigests {
            source: Source::Sorted(Box::new(iter)),
        }
    }

    /// A listing from an unordered `Vec`, for backends without a sorted listing of their own.
    pub fn from_unordered(digests: Vec<Digest>) -> SortedDigests<'static> {
        let mut compact = CompactDigests::default();
        for digest in &digests {
            compact.push(digest);
        }
        drop(digests);
        SortedDigests::compact(compact)
    }
}

impl SortedDigests<'_> {
    /// The whole listing as a `Vec`, for callers that need it at once (tests, dumps). GC and
    /// fsck never do this: they merge a page at a time.
    pub fn into_vec(self) -> StorageResult<Vec<Digest>> {
        self.collect()
    }
}

impl Iterator for SortedDigests<'_> {
    type Item = StorageResult<Digest>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Compact(iter) => iter.next().map(Ok),
            Source::Sorted(iter) => iter.next(),
            Source::Paged {
                fetch,
                page,
                last,
                exhausted,
            } => loop {
                if let Some(digest) = page.next() {
                    *last = Some(digest.clone());
                    return Some(Ok(digest));
                }
                if *exhausted {
                    return None;
                }
                match fetch(last.as_ref(), DIGEST_PAGE) {
                    Ok(next) => {
                        *exhausted = next.len() < DIGEST_PAGE;
                        *page = next.into_iter();
                    }
                    Err(error) => {
                        *exhausted = true;
                        return Some(Err(error));
                    }
                }
            },
        }
    }
}

/// A set of digests kept as raw hash bytes, sorted on demand.
#[derive(Default)]
pub struct CompactDigests {
    sha256: Vec<[u8; 32]>,
    sha512: Vec<[u8; 64]>,
}

impl CompactDigests {
    /// Adds a digest; duplicates are dropped when the set is sorted.
    pub fn push(&mut self, digest: &Digest) {
        let raw = digest.raw_bytes();
        match digest.algorithm() {
            Algorithm::Sha256 => self.sha256.push(raw.try_into().expect("32 bytes")),
            Algorithm::Sha512 => self.sha512.push(raw.try_into().expect("64 bytes")),
        }
    }

    /// How many digests were pushed, duplicates counted.
    pub fn len(&self) -> usize {
        self.sha256.len() + self.sha512.len()
    }

    /// Whether no digest was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digests in digest-string order: `sha256:` sorts before `sha512:`, and within an
    /// algorithm lowercase hex sorts as the bytes it encodes.
    fn into_sorted_iter(mut self) -> CompactIter {
        self.sha256.sort_unstable();
        self.sha256.dedup();
        self.sha512.sort_unstable();
        self.sha512.dedup();
        CompactIter {
            sha256: self.sha256.into_iter(),
            sha512: self.sha512.into_iter(),
        }
    }
}

struct CompactIter {
    sha256: std::vec::IntoIter<[u8; 32]>,
    sha512: std::vec::IntoIter<[u8; 64]>,
}

impl Iterator for CompactIter {
    type Item = Digest;

    fn next(&mut self) -> Option<Digest> {
        if let Some(raw) = self.sha256.next() {
            return Some(Digest::from_raw_bytes(Algorithm::Sha256, &raw));
        }
        self.sha512
            .next()
            .map(|raw| Digest::from_raw_bytes(Algorithm::Sha512, &raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8, algorithm: Algorithm) -> Digest {
        Digest::of_bytes(algorithm, &[n])
    }

    #[test]
    fn compact_listing_is_sorted_by_digest_string_without_duplicates() {
        let mut digests: Vec<Digest> = (0..50)
            .flat_map(|n| [digest(n, Algorithm::Sha512), digest(n, Algorithm::Sha256)])
            .collect();
        digests.push(digest(7, Algorithm::Sha256));
        let listed: Vec<Digest> = SortedDigests::from_unordered(digests.clone())
            .collect::<StorageResult<_>>()
            .unwrap();
        digests.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        digests.dedup();
        assert_eq!(listed, digests);
    }

    #[test]
    fn paged_listing_asks_for_each_page_after_the_last_digest() {
        let total = DIGEST_PAGE * 2 + 5;
        let mut many: Vec<Digest> = (0..total as u32)
            .map(|n| Digest::of_bytes(Algorithm::Sha256, &n.to_le_bytes()))
            .collect();
        many.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut calls = 0;
        let listed: Vec<Digest> = SortedDigests::paged(|after, limit| {
            calls += 1;
            let start = match after {
                None => 0,
                Some(after) => many.iter().position(|d| d == after).unwrap() + 1,
            };
            Ok(many[start..].iter().take(limit).cloned().collect())
        })
        .collect::<StorageResult<_>>()
        .unwrap();
        assert_eq!(calls, 3);
        assert_eq!(listed, many);
    }
}
