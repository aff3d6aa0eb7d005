//! Blob uploads (push): POST starts one (or uploads a whole blob with `?digest=`, or mounts
//! one the store has), PATCH appends a chunk, PUT ends it with the digest, GET says how far it
//! got, DELETE cancels it. The bytes stream into a store writer in the store's ingest area;
//! the PUT stages the blob (verified against the digest the client claims) and the OCI flavour
//! commits it as one operation, kept for the upload timeout unless a manifest claims it
//! (`OciStore::receive_blob`). Nothing is visible as a ref until a manifest is pushed. An
//! upload idle for longer than the timeout is dropped (its staged bytes with it); a server
//! killed mid-upload leaves staged files of a dead writer, which gc removes.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::manifests::header_value;
use super::routes::Request;
use super::state::blocking;
use crate::store::{Store, StoreWriter, WriteOptions};
use crate::stores::oci::OciStore;
use crate::traits::Digest;

/// One upload in progress.
struct Session {
    repository: String,
    /// `None` only while a request is writing into it.
    writer: Option<StoreWriter<'static>>,
    last_active: Instant,
}

/// The uploads of one server, by id.
#[derive(Default)]
pub struct Uploads {
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
}

impl Uploads {
    fn get(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<Session>>, ApiError> {
        self.lock()
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::upload_unknown(id))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Session>>>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many uploads are open.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Drops the uploads idle for longer than `timeout` (their staged bytes go with their
    /// writers). An upload a request is writing into is busy, not idle.
    pub fn expire(&self, timeout: Duration) {
        self.lock().retain(|_, session| match session.try_lock() {
            Ok(session) => session.last_active.elapsed() < timeout,
            Err(_) => true,
        });
    }
}

/// A new upload id: 128 random bits, so one client cannot guess another's upload.
fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(format!("no random upload id: {e}")))?;
    Ok(hex::encode(bytes))
}

fn upload_location(repository: &str, id: &str) -> String {
    format!("/v2/{repository}/blobs/uploads/{id}")
}

/// `202 Accepted` with where the upload is and how much of it the server has.
fn progress_response(
    status: StatusCode,
    repository: &str,
    id: &str,
    written: u64,
) -> Result<Response, ApiError> {
    let mut response = (status, "").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&upload_location(repository, id))?,
    );
    // Inclusive byte range received; "0-0" before the first byte, as distribution answers.
    headers.insert(
        header::RANGE,
        header_value(&format!("0-{}", written.saturating_sub(1)))?,
    );
    headers.insert("Docker-Upload-UUID", header_value(id)?);
    headers.insert(header::CONTENT_LENGTH, 0.into());
    Ok(response)
}

fn created_response(repository: &str, digest: &Digest) -> Result<Response, ApiError> {
    let mut response = (StatusCode::CREATED, "").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        header_value(&format!("/v2/{repository}/blobs/{digest}"))?,
    );
    headers.insert("Docker-Content-Digest", header_value(digest.as_str())?);
    headers.insert(header::CONTENT_LENGTH, 0.into());
    Ok(response)
}

fn claimed_digest(request: &Request) -> Result<Option<Digest>, ApiError> {
    request
        .param("digest")
        .map(|text| {
            Digest::parse(text)
                .map_err(|e| ApiError::digest_invalid(format!("invalid digest {text:?}: {e}")))
        })
        .transpose()
}

fn new_writer(store: &'static Store) -> Result<StoreWriter<'static>, ApiError> {
    Ok(store.writer(&WriteOptions::default())?)
}

/// `POST /v2/<name>/blobs/uploads/`: a mount, a whole blob (`?digest=`), or a new upload.
pub async fn start(request: &Request, repository: &str, body: Body) -> Result<Response, ApiError> {
    let store = request.state.store;
    if let Some(mount) = request.param("mount") {
        let digest = Digest::parse(mount)
            .map_err(|e| ApiError::digest_invalid(format!("invalid digest {mount:?}: {e}")))?;
        let lookup = digest.clone();
        if blocking(move || store.record(&lookup)).await?.is_some() {
            return created_response(repository, &digest);
        }
        // Not here: fall back to a new upload, as the spec allows.
    }
    if let Some(digest) = claimed_digest(request)? {
        let writer = write_body(new_writer(store)?, body, request.state.options.io_timeout).await?;
        let keep_for = request.state.options.upload_timeout;
        receive(store, writer, digest.clone(), keep_for).await?;
        return created_response(repository, &digest);
    }
    let uploads = &request.state.uploads;
    if uploads.open() >= request.state.options.max_uploads {
        return Err(ApiError::too_many(format!(
            "{} uploads are open, this server's limit: finish or cancel some, or retry later",
            request.state.options.max_uploads
        )));
    }
    let id = new_id()?;
    let session = Session {
        repository: repository.to_string(),
        writer: Some(new_writer(store)?),
        last_active: Instant::now(),
    };
    uploads
        .lock()
        .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(session)));
    progress_response(StatusCode::ACCEPTED, repository, &id, 0)
}

/// `GET` of an upload: how far it got.
pub async fn status(request: &Request, repository: &str, id: &str) -> Result<Response, ApiError> {
    let session = request.state.uploads.get(id)?;
    let session = session.lock().await;
    check_repository(&session, repository, id)?;
    let written = session.writer.as_ref().map_or(0, StoreWriter::written);
    progress_response(StatusCode::NO_CONTENT, repository, id, written)
}

fn check_repository(session: &Session, repository: &str, id: &str) -> Result<(), ApiError> {
    if session.repository == repository {
        Ok(())
    } else {
        Err(ApiError::upload_unknown(id))
    }
}

/// `PATCH`: appends the body; a `Content-Range` must start where the upload is (416 if not).
pub async fn append(
    request: &Request,
    repository: &str,
    id: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let session = request.state.uploads.get(id)?;
    let mut session = session.lock().await;
    check_repository(&session, repository, id)?;
    let writer = session
        .writer
        .take()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    let written = writer.written();
    if let Some(range) = request.header(header::CONTENT_RANGE) {
        let start = range
            .trim_start_matches("bytes ")
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(written) {
            session.writer = Some(writer);
            return Err(ApiError::upload_invalid(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!(
                    "Content-Range {range:?} does not start at {written}, where upload {id} is"
                ),
            ));
        }
    }
    let result = write_body(writer, body, request.state.options.io_timeout).await;
    session.last_active = Instant::now();
    match result {
        Ok(writer) => {
            let written = writer.written();
            session.writer = Some(writer);
            progress_response(StatusCode::ACCEPTED, repository, id, written)
        }
        Err(error) => {
            // The writer is gone with the failure: so is the upload.
            drop(session);
            request.state.uploads.remove(id);
            Err(error)
        }
    }
}

/// `PUT ?digest=`: appends the body, verifies and commits the blob, ends the upload.
pub async fn finish(
    request: &Request,
    repository: &str,
    id: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let digest = claimed_digest(request)?.ok_or_else(|| {
        ApiError::digest_invalid("PUT ending an upload needs ?digest=<the blob's digest>")
    })?;
    let session = request.state.uploads.get(id)?;
    let mut session = session.lock().await;
    check_repository(&session, repository, id)?;
    let writer = session
        .writer
        .take()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    drop(session);
    request.state.uploads.remove(id);
    let writer = write_body(writer, body, request.state.options.io_timeout).await?;
    let keep_for = request.state.options.upload_timeout;
    receive(request.state.store, writer, digest.clone(), keep_for).await?;
    created_response(repository, &digest)
}

/// `DELETE`: cancels the upload; its staged bytes are removed.
pub async fn cancel(request: &Request, id: &str) -> Result<Response, ApiError> {
    request.state.uploads.get(id)?;
    request.state.uploads.remove(id);
    Ok((StatusCode::NO_CONTENT, "").into_response())
}

/// Streams a request body into `writer` on the blocking pool; gives the writer back.
async fn write_body(
    mut writer: StoreWriter<'static>,
    body: Body,
    timeout: Duration,
) -> Result<StoreWriter<'static>, ApiError> {
    let (sender, mut receiver) = mpsc::channel::<axum::body::Bytes>(4);
    let writing = tokio::task::spawn_blocking(move || -> Result<StoreWriter<'static>, ApiError> {
        while let Some(chunk) = receiver.blocking_recv() {
            writer.write_all(&chunk).map_err(|e| {
                ApiError::internal(format!("writing an upload into the store: {e}"))
            })?;
        }
        // What the request sent goes to the staging file now, not at the next request: an
        // idle upload holds no buffered bytes in memory, and the staged size is what it says.
        writer
            .flush()
            .map_err(|e| ApiError::internal(format!("writing an upload into the store: {e}")))?;
        Ok(writer)
    });
    let mut chunks = body.into_data_stream();
    let mut failure = None;
    loop {
        // A client that sends nothing for the I/O timeout loses the request and its upload.
        let Ok(next) = tokio::time::timeout(timeout, chunks.next()).await else {
            failure = Some(ApiError::upload_invalid(
                StatusCode::REQUEST_TIMEOUT,
                format!("no bytes of the upload's body for {} s", timeout.as_secs()),
            ));
            break;
        };
        let Some(chunk) = next else {
            break;
        };
        match chunk {
            Ok(chunk) => {
                if sender.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                failure = Some(ApiError::upload_invalid(
                    StatusCode::BAD_REQUEST,
                    format!("reading the upload's body: {error}"),
                ));
                break;
            }
        }
    }
    drop(sender);
    let writer = writing
        .await
        .map_err(|e| ApiError::internal(format!("the upload writer failed: {e}")))??;
    match failure {
        Some(error) => Err(error),
        None => Ok(writer),
    }
}

/// Stages the blob, checks it is the one claimed, and commits it through the OCI flavour.
async fn receive(
    store: &'static Store,
    writer: StoreWriter<'static>,
    claimed: Digest,
    keep_for: Duration,
) -> Result<(), ApiError> {
    blocking(move || -> Result<(), ApiError> {
        let staged = writer.stage()?;
        if staged.digest().algorithm() != claimed.algorithm() {
            return Err(ApiError::digest_invalid(format!(
                "digest {claimed}: this server checks uploads with {}",
                staged.digest().algorithm().name()
            )));
        }
        if staged.digest() != &claimed {
            return Err(ApiError::digest_invalid(format!(
                "the uploaded bytes have digest {}, not {claimed}: nothing was stored",
                staged.digest()
            )));
        }
        OciStore::new(store).receive_blob(staged, keep_for)?;
        Ok(())
    })
    .await
}
