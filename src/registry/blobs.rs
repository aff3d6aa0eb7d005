//! Blob requests: a download that streams and resumes (Range) from what was delivered so far,
//! HEAD for presence, cross-repository mount, and uploads (POST, then one PUT or PATCH chunks
//! and a closing PUT).

use std::io::{self, Read};

use ureq::http::Method;
use ureq::BodyReader;

use super::client::{header, is_transient, Payload, RegistryClient};
use super::error::{RegistryError, RegistryResult};
use super::manifests::{pull_scope, push_scope};
use super::url;
use crate::traits::Digest;

/// A blob's content as it arrives, in order, exactly once per byte: when the connection breaks
/// (an error, or the end before `size` bytes), it asks again with `Range: bytes=<delivered>-`
/// and carries on, so what the store's writer has hashed so far is kept. A registry that
/// ignores the Range (200) has the bytes already delivered skipped. The digest and size are
/// checked by the store's writer, not here.
pub struct BlobDownload<'c> {
    client: &'c RegistryClient,
    url: String,
    scope: String,
    digest: Digest,
    repository: String,
    size: u64,
    delivered: u64,
    body: Option<BodyReader<'static>>,
    resumes_left: u32,
    /// Requests made (the first and each resume).
    pub requests: u32,
}

impl<'c> BlobDownload<'c> {
    pub fn new(
        client: &'c RegistryClient,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> BlobDownload<'c> {
        BlobDownload {
            client,
            url: client.url(&format!("{repository}/blobs/{digest}")),
            scope: pull_scope(repository),
            digest: digest.clone(),
            repository: repository.to_string(),
            size,
            delivered: 0,
            body: None,
            resumes_left: client.options().resumes,
            requests: 0,
        }
    }

    /// The download of the blob's bytes from `offset` on (`Range: bytes=<offset>-`): the
    /// first `offset` bytes are staged already, taken over from a killed pull. At the end
    /// already (`offset` = size), nothing is asked.
    pub fn resuming_from(mut self, offset: u64) -> BlobDownload<'c> {
        self.delivered = offset;
        self
    }

    fn blob_error(&self, reason: String) -> io::Error {
        io::Error::other(RegistryError::Blob {
            repository: self.repository.clone(),
            digest: self.digest.clone(),
            reason,
        })
    }

    /// Opens the body from `delivered` on.
    fn open(&mut self) -> io::Result<()> {
        let mut headers = Vec::new();
        if self.delivered > 0 {
            headers.push(("Range", format!("bytes={}-", self.delivered)));
        }
        self.requests += 1;
        let response = self
            .client
            .send(
                Method::GET,
                &self.url,
                &self.scope,
                &headers,
                Payload::Empty,
            )
            .map_err(io::Error::other)?;
        let status = response.status().as_u16();
        let skip = match status {
            200 => self.delivered,
            206 => {
                let range = header(&response, "content-range").unwrap_or_default();
                let start = range
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if start != Some(self.delivered) {
                    return Err(self.blob_error(format!(
                        "asked for bytes from {}, the registry sent {range:?}",
                        self.delivered
                    )));
                }
                0
            }
            404 => {
                return Err(self.blob_error(
                    "the registry does not have it (404); nothing was stored".to_string(),
                ))
            }
            _ => {
                let error = self.client.status_error("GET", &self.url, response);
                return Err(io::Error::other(error));
            }
        };
        let mut body = response.into_body().into_reader();
        if skip > 0 {
            let skipped = io::copy(&mut (&mut body).take(skip), &mut io::sink())?;
            if skipped != skip {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the registry's answer ended early",
                ));
            }
        }
        self.body = Some(body);
        Ok(())
    }

    /// Counts a failure against the resumes; the caller tries again unless none are left.
    fn interrupted(&mut self, error: io::Error) -> io::Result<()> {
        self.body = None;
        if self.resumes_left == 0 || !is_resumable(&error) {
            if error.get_ref().is_some_and(|e| e.is::<RegistryError>()) {
                return Err(error);
            }
            return Err(self.blob_error(format!(
                "{error} (after {} requests); nothing was stored",
                self.requests
            )));
        }
        self.resumes_left -= 1;
        std::thread::sleep(self.client.options().backoff);
        Ok(())
    }
}

fn is_resumable(error: &io::Error) -> bool {
    if let Some(inner) = error.get_ref() {
        if let Some(registry) = inner.downcast_ref::<RegistryError>() {
            return match registry {
                RegistryError::Transport { source, .. } => is_transient(source),
                _ => false,
            };
        }
        if let Some(ureq_error) = inner.downcast_ref::<ureq::Error>() {
            return is_transient(ureq_error);
        }
    }
    true
}

impl Read for BlobDownload<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        loop {
            if self.body.is_none() {
                // Once asked (a blob of 0 bytes too: it may be absent), or resumed at the end.
                if self.delivered >= self.size && (self.requests > 0 || self.delivered > 0) {
                    return Ok(0);
                }
                if let Err(error) = self.open() {
                    self.interrupted(error)?;
                    continue;
                }
            }
            let body = self.body.as_mut().expect("opened above");
            match body.read(buffer) {
                Ok(0) if self.delivered < self.size => {
                    let early = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the connection ended after {} bytes", self.delivered),
                    );
                    self.interrupted(early)?;
                }
                Ok(n) => {
                    self.delivered += n as u64;
                    return Ok(n);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => self.interrupted(error)?,
            }
        }
    }
}

/// Reads a small blob (a config) whole, at most `limit` bytes.
pub fn get_blob_bytes(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
    size: u64,
    limit: u64,
) -> RegistryResult<Vec<u8>> {
    if size > limit {
        return Err(RegistryError::TooLarge {
            reference: format!("{}/{repository}@{digest}", client.registry()),
            what: "the blob",
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    BlobDownload::new(client, repository, digest, size)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_to_registry(repository, digest, e))?;
    Ok(bytes)
}

/// An I/O error of a download as a registry error (the registry's own error when it is one).
pub fn io_to_registry(repository: &str, digest: &Digest, error: io::Error) -> RegistryError {
    if error.get_ref().is_some_and(|e| e.is::<RegistryError>()) {
        let inner = error.into_inner().expect("checked above");
        return *inner.downcast::<RegistryError>().expect("checked above");
    }
    RegistryError::Blob {
        repository: repository.to_string(),
        digest: digest.clone(),
        reason: error.to_string(),
    }
}

/// Streams a download into the store's staging through `writer`, after what it has already,
/// verified against what the writer expects: a failure of the download itself (which reaches
/// the writer as an I/O error) is reported as the registry's error for the blob, not as the
/// store's.
pub fn stage_download<'s>(
    writer: crate::store::StoreWriter<'s>,
    download: impl Read,
    repository: &str,
    digest: &Digest,
) -> RegistryResult<crate::store::StagedBlob<'s>> {
    writer.stage_from(download).map_err(|error| match error {
        crate::store::StoreError::Io(io)
            if io
                .io_error()
                .get_ref()
                .is_some_and(|e| e.is::<RegistryError>()) =>
        {
            io_to_registry(repository, digest, io.into_io_error())
        }
        other => other.into(),
    })
}

/// The size of the blob if the repository has it (HEAD).
pub fn blob_size(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
    scope: &str,
) -> RegistryResult<Option<u64>> {
    let target = client.url(&format!("{repository}/blobs/{digest}"));
    let response = client.send(Method::HEAD, &target, scope, &[], Payload::Empty)?;
    match response.status().as_u16() {
        200 => Ok(header(&response, "content-length").and_then(|v| v.parse().ok())),
        404 => Ok(None),
        _ => Err(client.status_error("HEAD", &target, response)),
    }
}

/// Where an upload goes on.
pub enum UploadStart {
    /// The registry mounted the blob from the other repository: nothing to send.
    Mounted,
    /// An upload session at this URL.
    Session(String),
}

/// POSTs an upload; with `mount_from`, asks to mount the blob from that repository instead
/// (201), falling back to the session the registry opens when it will not (202).
pub fn start_upload(
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
    mount_from: Option<&str>,
) -> RegistryResult<UploadStart> {
    let mut target = client.url(&format!("{repository}/blobs/uploads/"));
    let mut scope = push_scope(repository);
    if let Some(from) = mount_from {
        target = url::with_query(&target, "mount", digest.as_str());
        target = url::with_query(&target, "from", from);
        scope = format!("{scope} {}", pull_scope(from));
    }
    let response = client.send(Method::POST, &target, &scope, &[], Payload::Empty)?;
    match response.status().as_u16() {
        201 if mount_from.is_some() => Ok(UploadStart::Mounted),
        202 => {
            let location =
                header(&response, "location").ok_or_else(|| RegistryError::Protocol {
                    url: target.clone(),
                    reason: "an upload session without a Location".to_string(),
                })?;
            Ok(UploadStart::Session(url::resolve(&target, &location)))
        }
        _ => Err(client.status_error("POST", &target, response)),
    }
}

/// Sends `content` (exactly `size` bytes) to an upload session: in one PUT, or with
/// `chunk_size`, in PATCH chunks and a closing PUT. The registry checks the digest.
pub fn finish_upload(
    client: &RegistryClient,
    repository: &str,
    session: String,
    digest: &Digest,
    size: u64,
    content: &mut dyn Read,
    chunk_size: Option<u64>,
) -> RegistryResult<()> {
    let scope = push_scope(repository);
    let octets = ("Content-Type", "application/octet-stream".to_string());
    let mut location = session;
    let final_body_size = match chunk_size {
        None => size,
        Some(chunk) => {
            let chunk = chunk.max(1);
            let mut offset = 0;
            while offset < size {
                let length = chunk.min(size - offset);
                let mut part = (&mut *content).take(length);
                let range = format!("{offset}-{}", offset + length - 1);
                let response = client.send(
                    Method::PATCH,
                    &location,
                    &scope,
                    &[octets.clone(), ("Content-Range", range)],
                    Payload::Reader(&mut part, length),
                )?;
                if response.status().as_u16() != 202 {
                    return Err(client.status_error("PATCH", &location, response));
                }
                let next =
                    header(&response, "location").ok_or_else(|| RegistryError::Protocol {
                        url: location.clone(),
                        reason: "a chunk accepted without a Location".to_string(),
                    })?;
                location = url::resolve(&location, &next);
                offset += length;
            }
            0
        }
    };
    let target = url::with_query(&location, "digest", digest.as_str());
    let response = client.send(
        Method::PUT,
        &target,
        &scope,
        &[octets],
        Payload::Reader(content, final_body_size),
    )?;
    if response.status().as_u16() != 201 {
        return Err(client.status_error("PUT", &target, response));
    }
    Ok(())
}
