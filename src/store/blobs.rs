//! Writing, reading, resolving and listing blobs.

use std::io::{Read, Write};

use super::base::Store;
use super::error::{StoreError, StoreResult};
use super::holder::Holder;
use super::staged::StagedBlob;
use crate::traits::{
    Algorithm, BlobRead, BlobRecord, BlobStore, BlobWriter, Digest, DigestPrefix, Expected, Index,
    RecordPages, StorageError, DEFAULT_MEDIA_TYPE,
};
use crate::util::io_context::IoContext;

/// How a blob is written.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Recorded in the index; `application/octet-stream` when absent.
    pub media_type: Option<String>,
    /// Checked against the content; a mismatch stores nothing.
    pub expected_digest: Option<Digest>,
    /// Checked against the content's size in bytes; a mismatch stores nothing.
    pub expected_size: Option<u64>,
    /// Who holds the blob once it is written: its owner mark is recorded in the same locked
    /// step as the commit, also when the content was already stored, so there is no moment
    /// at which the blob is indexed but unheld (another flavour's GC could take it) and no
    /// crash that leaves it so. The base store itself ([`Holder::BASE`]) when absent: the
    /// blob is then kept until an explicit delete lets go of it, whatever flavours do.
    pub holder: Option<Holder>,
    /// The digest algorithm when no expected digest names one (content identified by a
    /// sha512 only known once read, such as an appc image ID); sha256 when absent.
    pub algorithm: Option<Algorithm>,
}

impl WriteOptions {
    fn holder_or_base(&self) -> &Holder {
        static BASE: Holder = Holder::BASE;
        self.holder.as_ref().unwrap_or(&BASE)
    }
}

/// Most candidates an ambiguity error lists.
const AMBIGUOUS_LIST_LIMIT: usize = 10;
/// Copy buffer: large enough that hashing and syscalls, not the loop, set the pace.
pub(super) const COPY_BUFFER: usize = 1 << 20;

/// A streaming write into the store: write the bytes, then [`StoreWriter::commit`].
/// Dropping it without commit stores nothing.
pub struct StoreWriter<'s> {
    writer: Box<dyn BlobWriter + 's>,
    store: &'s Store,
    media_type: String,
    /// What the content is checked against, for messages and the copy buffer's size.
    expected_digest: Option<Digest>,
    expected_size: Option<u64>,
    /// The holder whose owner mark the blob gets in the same locked step as its commit: the
    /// base store itself ([`Holder::BASE`]) unless a flavour writes ([`StoreWriter::owned_by`]).
    holder: Holder,
}

impl Write for StoreWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl<'s> StoreWriter<'s> {
    /// Bytes written so far: for a [`Store::resumable_writer`], those a killed writer of the
    /// same blob staged, at first.
    pub fn written(&self) -> u64 {
        self.writer.written()
    }

    /// Streams `content` to its end into the blob, after what was written so far, then ends
    /// it as [`Store::stage`] does (verified; made durable with the batch it is committed in).
    pub fn stage_from(mut self, mut content: impl Read) -> StoreResult<StagedBlob<'s>> {
        // No larger than the rest is expected to be: zeroing a large buffer per small blob
        // costs more than copying the blob. One byte more, so the end shows in one read.
        let capacity = self.expected_size.map_or(COPY_BUFFER, |size| {
            (size.saturating_sub(self.written()) as usize)
                .saturating_add(1)
                .min(COPY_BUFFER)
        });
        let mut buffer = vec![0u8; capacity];
        loop {
            let read = match content.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::from(IoContext::new(
                        "reading content",
                        "<input>",
                        e,
                    )))
                }
            };
            self.write_all(&buffer[..read])
                .map_err(|e| write_error(e, self.expected_digest.as_ref()))?;
        }
        self.stage_unsynced()
    }

    /// Gives the blob `holder`'s owner mark as part of the commit, instead of the one its
    /// [`WriteOptions::holder`] named.
    pub fn owned_by(mut self, holder: &Holder) -> Self {
        self.holder = holder.clone();
        self
    }

    /// Verifies, commits the content under its digest, then indexes it (DESIGN.md invariant 1:
    /// content first), recording its holder in the same step: [`Store::commit_staged`] with a
    /// batch of one. Only this blob's digest lock is held, and only after streaming ended.
    pub fn commit(self) -> StoreResult<BlobRecord> {
        let (store, holder) = (self.store, self.holder.clone());
        let staged = self.stage()?;
        let mut records = store.commit_staged(vec![staged], &holder)?;
        Ok(records.remove(0))
    }

    /// Ends the content (verified, durable in staging) without committing it, for an
    /// [`Operation`](super::Operation) to commit under its hold.
    pub fn stage(mut self) -> StoreResult<StagedBlob<'s>> {
        let (digest, size) = self.writer.finish()?;
        Ok(StagedBlob::finished(
            self.writer,
            digest,
            size,
            self.media_type,
        ))
    }

    /// Ends the content (verified) without committing it, leaving it to
    /// [`Store::commit_staged`] to make a batch durable at once.
    pub(super) fn stage_unsynced(mut self) -> StoreResult<StagedBlob<'s>> {
        let (digest, size) = self.writer.finish_unsynced()?;
        Ok(StagedBlob::finished(
            self.writer,
            digest,
            size,
            self.media_type,
        ))
    }
}

impl Store {
    /// Starts a streaming write: write the bytes, then [`StoreWriter::commit`] (or stage).
    pub fn writer(&self, options: &WriteOptions) -> StoreResult<StoreWriter<'_>> {
        self.start_writer(options, |blobs, expected| blobs.writer(expected))
    }

    /// [`Store::writer`] for a blob whose digest is known ([`WriteOptions::expected_digest`]),
    /// that takes over what a killed writer of the same blob staged, in any process
    /// ([`BlobStore::resumable_writer`]): [`StoreWriter::written`] says how many bytes it has
    /// already, and what is written to it goes on from there (a download asks for the rest
    /// only). Those bytes are hashed again, so the digest check covers them: content that is
    /// not the blob fails when the writer ends, and nothing is kept. What a killed writer
    /// staged stays garbage for [`Store::gc`] until a writer takes it over. The caller makes
    /// sure no other resumable writer of the digest runs at the same time, in any process (a
    /// pull holds the digest's fetch lock). Without an expected digest, a plain writer.
    pub fn resumable_writer(&self, options: &WriteOptions) -> StoreResult<StoreWriter<'_>> {
        self.start_writer(options, |blobs, expected| blobs.resumable_writer(expected))
    }

    fn start_writer<'s>(
        &'s self,
        options: &WriteOptions,
        start: impl FnOnce(
            &'s dyn BlobStore,
            Expected,
        ) -> crate::traits::StorageResult<Box<dyn BlobWriter + 's>>,
    ) -> StoreResult<StoreWriter<'s>> {
        if let Some(media_type) = &options.media_type {
            validate_media_type(media_type)?;
        }
        let expected = Expected {
            digest: options.expected_digest.clone(),
            size: options.expected_size,
            algorithm: options.algorithm,
        };
        Ok(StoreWriter {
            writer: start(&*self.blobs, expected)?,
            expected_digest: options.expected_digest.clone(),
            expected_size: options.expected_size,
            store: self,
            holder: options.holder_or_base().clone(),
            media_type: options
                .media_type
                .clone()
                .unwrap_or_else(|| DEFAULT_MEDIA_TYPE.to_string()),
        })
    }

    /// Streams `content` into the store and indexes it, recording its
    /// holder ([`WriteOptions::holder`], the base store by default) in the same locked step,
    /// also when the content was already stored.
    pub fn write(&self, content: impl Read, options: &WriteOptions) -> StoreResult<BlobRecord> {
        self.write_held(content, options, options.holder_or_base())
    }

    /// [`Store::write`] of content already in memory.
    pub fn write_bytes(&self, bytes: &[u8], options: &WriteOptions) -> StoreResult<BlobRecord> {
        self.write(bytes, options)
    }

    /// Marks an indexed, present blob as held by `holder`, deciding under its exclusive digest
    /// lock; `None` when the blob is not (or no longer) there, for the caller to write it.
    pub fn claim_existing(
        &self,
        digest: &Digest,
        holder: &Holder,
    ) -> StoreResult<Option<BlobRecord>> {
        self.claim_existing_of_size(digest, holder, None)
    }

    /// [`Store::claim_existing`] that marks only a blob of `expected_size` (when given): a
    /// write whose expected size contradicts the stored blob fails, and must leave no mark.
    fn claim_existing_of_size(
        &self,
        digest: &Digest,
        holder: &Holder,
        expected_size: Option<u64>,
    ) -> StoreResult<Option<BlobRecord>> {
        let mut found = self.claim_existing_many(&[(digest.clone(), expected_size)], holder)?;
        Ok(found.remove(0))
    }

    /// Writes and records `holder`'s mark in the commit's locked step.
    fn write_held(
        &self,
        content: impl Read,
        options: &WriteOptions,
        holder: &Holder,
    ) -> StoreResult<BlobRecord> {
        // A blob that is already there with the expected digest (and size) is not read again;
        // it gets the holder's mark all the same.
        if let Some(expected) = &options.expected_digest {
            if let Some(record) =
                self.claim_existing_of_size(expected, holder, options.expected_size)?
            {
                return Ok(record);
            }
        }
        let staged = self.stage(content, options)?;
        let mut records = self.commit_staged(vec![staged], holder)?;
        Ok(records.remove(0))
    }

    /// The index record of a blob; `None` when it is not indexed (its content is not looked
    /// at: see [`Store::contains`]).
    pub fn record(&self, digest: &Digest) -> StoreResult<Option<BlobRecord>> {
        Ok(self.index.get(digest)?)
    }

    /// The record of a blob that is indexed and whose content is present.
    pub(super) fn existing(&self, digest: &Digest) -> StoreResult<Option<BlobRecord>> {
        match self.index.get(digest)? {
            Some(record) if self.blobs.contains(digest)? => Ok(Some(record)),
            _ => Ok(None),
        }
    }

    /// Opens an indexed blob for reading.
    pub fn read(&self, digest: &Digest) -> StoreResult<Box<dyn BlobRead + '_>> {
        if self.index.get(digest)?.is_none() {
            return Err(StoreError::NotFound(digest.to_string()));
        }
        match self.blobs.open(digest) {
            Ok(reader) => Ok(reader),
            // Deleted between the two calls: report it as absent, like any missing blob.
            Err(StorageError::BlobNotFound(_)) => Err(StoreError::NotFound(digest.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a whole blob into memory; for small documents (manifests, configs) only.
    pub fn read_to_vec(&self, digest: &Digest, limit: u64) -> StoreResult<Vec<u8>> {
        let record = self.info(digest)?;
        self.read_indexed_to_vec(digest, record.size, limit)
    }

    /// [`Store::read_to_vec`] of a blob whose index record the caller has read already (its
    /// size `indexed_size`): the content only, no index lookup. Content gone since the record
    /// was read is [`StoreError::NotFound`].
    pub(crate) fn read_indexed_to_vec(
        &self,
        digest: &Digest,
        indexed_size: u64,
        limit: u64,
    ) -> StoreResult<Vec<u8>> {
        if indexed_size > limit {
            return Err(StoreError::Invalid(format!(
                "blob {digest} is {indexed_size} bytes, over the {limit} byte limit for documents"
            )));
        }
        let mut bytes = Vec::with_capacity(indexed_size as usize);
        let reader = match self.blobs.open(digest) {
            Ok(reader) => reader,
            Err(StorageError::BlobNotFound(_)) => {
                return Err(StoreError::NotFound(digest.to_string()))
            }
            Err(error) => return Err(error.into()),
        };
        // Bounded by the limit, not the record: content larger than its record (damaged
        // outside the store) must not be read whole into memory.
        reader
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| IoContext::new("reading blob", digest.to_string(), e))?;
        // A length other than the record's is left for the caller's digest check to report.
        Ok(bytes)
    }

    /// Whether a blob with this digest is indexed.
    pub fn contains(&self, digest: &Digest) -> StoreResult<bool> {
        Ok(self.index.get(digest)?.is_some())
    }

    /// The index record of a blob; [`StoreError::NotFound`] when it is not indexed.
    pub fn info(&self, digest: &Digest) -> StoreResult<BlobRecord> {
        self.index
            .get(digest)?
            .ok_or_else(|| StoreError::NotFound(digest.to_string()))
    }

    /// Resolves what a user typed: a full digest (`sha256:…`, `sha256-…`), or a prefix of one
    /// (`sha256:0c45e8`, `sha256-0c45e8`, bare `0c45e8`). Several matches: an error that lists
    /// them.
    pub fn resolve(&self, reference: &str) -> StoreResult<Digest> {
        let prefix = DigestPrefix::parse(reference).map_err(StorageError::from)?;
        if let Some(digest) = prefix.as_complete() {
            return match self.index.get(&digest)? {
                Some(_) => Ok(digest),
                None => Err(StoreError::NotFound(reference.to_string())),
            };
        }
        let mut matches = self.index.by_prefix(&prefix, AMBIGUOUS_LIST_LIMIT + 1)?;
        match matches.len() {
            0 => Err(StoreError::NotFound(reference.to_string())),
            1 => Ok(matches.remove(0).digest),
            n => {
                matches.truncate(AMBIGUOUS_LIST_LIMIT);
                Err(StoreError::Ambiguous {
                    reference: reference.to_string(),
                    candidates: matches.into_iter().map(|r| r.digest).collect(),
                    more: n > AMBIGUOUS_LIST_LIMIT,
                })
            }
        }
    }

    /// Every indexed blob in digest order, or those of one media type.
    pub fn list(&self, media_type: Option<&str>) -> StoreResult<Vec<BlobRecord>> {
        match media_type {
            Some(media_type) => Ok(self.index.by_media_type(media_type)?),
            None => Ok(self.records().collect::<Result<_, _>>()?),
        }
    }

    /// Iterates every record page by page.
    pub fn records(&self) -> RecordPages<'_, dyn Index> {
        RecordPages::new(&*self.index, 1000)
    }
}

pub(super) fn write_error(error: std::io::Error, expected: Option<&Digest>) -> StoreError {
    // Backends report verification failures (size exceeded) through the io::Error of `write`;
    // surface the storage error they carry.
    if error
        .get_ref()
        .is_some_and(|inner| inner.is::<StorageError>())
    {
        let inner = error.into_inner().expect("checked above");
        return StoreError::Storage(*inner.downcast::<StorageError>().expect("checked above"));
    }
    let blob = match expected {
        Some(digest) => format!("blob {digest}"),
        None => "a new blob".to_string(),
    };
    StoreError::from(IoContext::new(
        format!("writing {blob} into the store"),
        "ingest",
        error,
    ))
}

/// RFC 6838 shape: `type/subtype` with restricted characters, bounded length.
pub fn validate_media_type(media_type: &str) -> StoreResult<()> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match media_type.split_once('/') {
        Some((kind, subtype)) if valid_part(kind) && valid_part(subtype) => Ok(()),
        _ => Err(StoreError::Invalid(format!(
            "media type {media_type:?} is not of the form type/subtype"
        ))),
    }
}
