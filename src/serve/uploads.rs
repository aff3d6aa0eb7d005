//! Blob uploads (push): POST starts one (or uploads a whole blob with `?digest=`, or mounts
//! one the store has), PATCH appends a chunk, PUT ends it with the digest, GET says how far it
//! got, DELETE cancels it. An upload is one store operation for its whole life: the POST
//! begins it (`OciStore::begin_upload`), the bytes stream into a store writer in the store's
//! ingest area, and the PUT stages the blob (verified against the digest the client claims)
//! and commits it through that operation, kept for the upload timeout unless a manifest claims
//! it (`OciStore::receive_blob`). Nothing is visible as a ref until a manifest is pushed. An
//! upload cancelled, failed or idle for longer than the timeout is abandoned: its operation is
//! dropped and its staged bytes with it. A server killed mid-upload leaves operations of a dead
//! process and staged files of a dead writer, which gc clears.

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
use crate::stores::oci::{OciStore, UploadOperation};
use crate::traits::Digest;

/// An upload's store side: the operation it is, and the writer its bytes stream into.
struct Staging {
    operation: UploadOperation<'static>,
    writer: StoreWriter<'static>,
}

impl Staging {
    /// Begins an upload's operation and its staging writer (on the blocking pool).
    async fn begin(store: &'static Store) -> Result<Staging, ApiError> {
        blocking(move || -> Result<Staging, ApiError> {
            let operation = OciStore::new(store).begin_upload()?;
            let writer = store.writer(&WriteOptions::default())?;
            Ok(Staging { operation, writer })
        })
        .await
    }
}

/// Abandons an upload: its staged bytes go, and its operation lets go and removes its entry.
/// That writes to the store, so it runs on the blocking pool when there is one.
fn abandon(staging: Staging) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(move || drop(staging))),
        Err(_) => drop(staging),
    }
}

/// One upload in progress.
struct Session {
    repository: String,
    /// `None` only while a request is writing into it.
    staging: Option<Staging>,
    last_active: Instant,
}

impl Drop for Session {
    /// A session dropped with its upload (cancelled, expired, the server stopping) abandons it.
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            abandon(staging);
        }
    }
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

    /// Abandons the uploads idle for longer than `timeout`. An upload a request is writing
    /// into is busy, not idle.
    pub fn expire(&self, timeout: Duration) {
        self.lock().retain(|_, session| match session.try_lock() {
            Ok(session) => session.last_active.elapsed() < timeout,
            Err(_) => true,
        });
    }

    /// Abandons every upload no request is writing into, and waits until they are gone: what a
    /// stopping server does, so it leaves no operation and no staged bytes behind.
    pub async fn abandon_all(&self) {
        let sessions: Vec<_> = self.lock().drain().map(|(_, session)| session).collect();
        let staging: Vec<Staging> = sessions
            .iter()
            .filter_map(|session| session.try_lock().ok()?.staging.take())
            .collect();
        drop(sessions);
        let _ = blocking(move || -> Result<(), ApiError> {
            drop(staging);
            Ok(())
        })
        .await;
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
        let staging = Staging::begin(store).await?;
        let staging = write_body(staging, body, request.state.options.io_timeout).await?;
        let keep_for = request.state.options.upload_timeout;
        receive(store, staging, digest.clone(), keep_for).await?;
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
        staging: Some(Staging::begin(store).await?),
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
    let written = session
        .staging
        .as_ref()
        .map_or(0, |staging| staging.writer.written());
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
    let staging = session
        .staging
        .take()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    let written = staging.writer.written();
    if let Some(range) = request.header(header::CONTENT_RANGE) {
        let start = range
            .trim_start_matches("bytes ")
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(written) {
            session.staging = Some(staging);
            return Err(ApiError::upload_invalid(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!(
                    "Content-Range {range:?} does not start at {written}, where upload {id} is"
                ),
            ));
        }
    }
    let result = write_body(staging, body, request.state.options.io_timeout).await;
    session.last_active = Instant::now();
    match result {
        Ok(staging) => {
            let written = staging.writer.written();
            session.staging = Some(staging);
            progress_response(StatusCode::ACCEPTED, repository, id, written)
        }
        Err(error) => {
            // The upload was abandoned with the failure: its session goes too.
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
    let staging = session
        .staging
        .take()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    drop(session);
    request.state.uploads.remove(id);
    let staging = write_body(staging, body, request.state.options.io_timeout).await?;
    let keep_for = request.state.options.upload_timeout;
    receive(request.state.store, staging, digest.clone(), keep_for).await?;
    created_response(repository, &digest)
}

/// `DELETE`: cancels the upload: its operation is dropped, its staged bytes removed.
pub async fn cancel(request: &Request, id: &str) -> Result<Response, ApiError> {
    request.state.uploads.get(id)?;
    request.state.uploads.remove(id);
    Ok((StatusCode::NO_CONTENT, "").into_response())
}

/// Streams a request body into the upload's writer on the blocking pool; gives the upload
/// back, or abandons it when the body or the write fails.
async fn write_body(
    mut staging: Staging,
    body: Body,
    timeout: Duration,
) -> Result<Staging, ApiError> {
    let (sender, mut receiver) = mpsc::channel::<axum::body::Bytes>(4);
    let writing = tokio::task::spawn_blocking(move || -> Result<Staging, ApiError> {
        let writer = &mut staging.writer;
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
        Ok(staging)
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
    let staging = writing
        .await
        .map_err(|e| ApiError::internal(format!("the upload writer failed: {e}")))??;
    match failure {
        Some(error) => {
            abandon(staging);
            Err(error)
        }
        None => Ok(staging),
    }
}

/// Stages the blob, checks it is the one claimed, and commits it through the upload's
/// operation; any failure abandons the upload.
async fn receive(
    store: &'static Store,
    staging: Staging,
    claimed: Digest,
    keep_for: Duration,
) -> Result<(), ApiError> {
    blocking(move || -> Result<(), ApiError> {
        let Staging { operation, writer } = staging;
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
        OciStore::new(store).receive_blob(operation, staged, keep_for)?;
        Ok(())
    })
    .await
}
