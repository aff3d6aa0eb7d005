//! Blob GET and HEAD, with `Range`. The body streams from the store in chunks read on the
//! blocking pool into a small pool of reused buffers (never the whole blob in memory, nothing
//! allocated per chunk), from a reader opened before the response starts and held to its end
//! (`Store::read_held`): a concurrent GC never takes the blob from under a client, and the
//! bytes sent are the bytes verified at commit.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::manifests::header_value;
use super::mirror;
use super::range::{self, RangeRequest};
use super::routes::Request;
use super::state::blocking;
use crate::traits::Digest;

/// How much one read of a blob sends.
const CHUNK: usize = 256 << 10;
/// Chunks read ahead of the mirror's slow clients.
const CHUNKS_AHEAD: usize = 4;
/// Read buffers of one response (see [`ChunkPool`]): its memory is at most `POOL × CHUNK`.
const POOL: usize = 4;
/// Buffers back in the pool before the reader fills them again.
const REFILL: usize = 2;

/// GET or HEAD of a blob by digest.
pub async fn get(request: &Request, repository: &str, digest: &str) -> Result<Response, ApiError> {
    let digest = Digest::parse(digest)
        .map_err(|e| ApiError::digest_invalid(format!("invalid digest {digest:?}: {e}")))?;
    let store = request.state.store;
    let lookup = digest.clone();
    let present = blocking(move || store.record(&lookup)).await?;
    let record = match present {
        Some(record) => record,
        None => {
            let mirrored = request
                .state
                .upstreams
                .for_namespace(request.param("ns"))
                .is_some();
            if !mirrored {
                return Err(ApiError::blob_unknown(&digest));
            }
            // Not here: the mirror brings it in. A whole GET streams it on as it arrives.
            let whole_get = request.method == axum::http::Method::GET
                && request.header(header::RANGE).is_none();
            if let Some(response) = fetch_through(request, repository, &digest, whole_get).await? {
                return Ok(response);
            }
            let lookup = digest.clone();
            blocking(move || store.record(&lookup))
                .await?
                .ok_or_else(|| ApiError::blob_unknown(&digest))?
        }
    };
    let size = record.size;
    super::manifests::record_use(store, None, digest.clone());
    let digest_header = header_value(digest.as_str())?;
    let (status, start, length) = match range::parse(request.header(header::RANGE), size) {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_INVALID",
                format!("blob {digest} has {size} bytes: the range asked for is outside it"),
            )
            .into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}"))?,
            );
            return Ok(response);
        }
    };
    let body = if request.method == axum::http::Method::HEAD || length == 0 {
        Body::empty()
    } else {
        stream_body(request, digest.clone(), start, length).await?
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, length.into());
    headers.insert(
        header::CONTENT_TYPE,
        header_value("application/octet-stream")?,
    );
    headers.insert(header::ACCEPT_RANGES, header_value("bytes")?);
    headers.insert(header::ETAG, header_value(&format!("\"{digest}\""))?);
    headers.insert("Docker-Content-Digest", digest_header);
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + length - 1;
        headers.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{end}/{size}"))?,
        );
    }
    Ok(response)
}

/// Brings a cold blob in from the mirror's upstream: one fetch, whoever else asks meanwhile
/// (the others wait for the fetch lock and then find it stored). With `stream`, the response
/// starts as soon as the download does and carries the bytes as they arrive; a client that
/// falls behind is served the rest from the store once the blob is committed (a slow client
/// never slows the fetch others wait for), and a digest mismatch aborts the response, with
/// nothing stored. Returns the response when it streamed one; `None` when the blob is now in
/// the store for the usual path.
async fn fetch_through(
    request: &Request,
    repository: &str,
    digest: &Digest,
    stream: bool,
) -> Result<Option<Response>, ApiError> {
    let state = request.state.clone();
    let store = state.store;
    let namespace = request.param("ns").map(str::to_string);
    let (repository, digest_owned) = (repository.to_string(), digest.clone());
    let write_timeout = state.options.io_timeout;
    let runtime = tokio::runtime::Handle::current();
    let (started_sender, started) = tokio::sync::oneshot::channel::<u64>();
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD * 16);
    let fetching = tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        let digest = digest_owned;
        let upstream = state
            .upstreams
            .for_namespace(namespace.as_deref())
            .ok_or_else(|| ApiError::blob_unknown(&digest))?;
        let mut started_sender = stream.then_some(started_sender);
        let mut began = false;
        let (mut sent, mut behind) = (0u64, !stream);
        // The latest piece waits until the next arrives, and the last until the blob is
        // verified: a client never has the whole body of a blob that does not match.
        let mut held_back: Option<Bytes> = None;
        let result = mirror::fetch_blob_streaming(
            store,
            upstream,
            &repository,
            &digest,
            |size| {
                if let Some(started) = started_sender.take() {
                    began = started.send(size).is_ok();
                }
            },
            |piece| {
                if behind || piece.is_empty() {
                    return;
                }
                let Some(previous) = held_back.replace(Bytes::copy_from_slice(piece)) else {
                    return;
                };
                let length = previous.len() as u64;
                match sender.try_send(Ok(previous)) {
                    Ok(()) => sent += length,
                    // The client reads slower than the upstream sends: it catches up from the
                    // store afterwards.
                    Err(_) => behind = true,
                }
            },
        );
        if !began {
            return result;
        }
        if let Err(error) = result {
            let _ = sender.blocking_send(Err(std::io::Error::other(error.message.clone())));
            return Err(error);
        }
        if let (false, Some(last)) = (behind, held_back) {
            let length = last.len() as u64;
            let delivered =
                runtime.block_on(tokio::time::timeout(write_timeout, sender.send(Ok(last))));
            if matches!(delivered, Ok(Ok(()))) {
                sent += length;
            } else {
                return Ok(());
            }
        }
        if behind {
            let mut reader = store.read_held(&digest)?;
            reader
                .seek(SeekFrom::Start(sent))
                .map_err(|e| ApiError::internal(format!("seeking in blob {digest}: {e}")))?;
            let mut chunk = vec![0; CHUNK];
            loop {
                let read = reader
                    .read(&mut chunk)
                    .map_err(|e| ApiError::internal(format!("reading blob {digest}: {e}")))?;
                if read == 0 {
                    break;
                }
                let piece = Ok(Bytes::copy_from_slice(&chunk[..read]));
                let delivered =
                    runtime.block_on(tokio::time::timeout(write_timeout, sender.send(piece)));
                if !matches!(delivered, Ok(Ok(()))) {
                    break;
                }
            }
        }
        Ok(())
    });
    // No size: no download began here (stored already, by another fetch, or an error).
    let Ok(size) = started.await else {
        return match fetching.await {
            Ok(Ok(())) => Ok(None),
            Ok(Err(error)) => Err(error),
            Err(join) => Err(ApiError::internal(format!("the fetch failed: {join}"))),
        };
    };
    let chunks = stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let mut response = (StatusCode::OK, Body::from_stream(chunks)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, size.into());
    headers.insert(
        header::CONTENT_TYPE,
        header_value("application/octet-stream")?,
    );
    headers.insert("Docker-Content-Digest", header_value(digest.as_str())?);
    Ok(Some(response))
}

/// Opens the blob (failing the request cleanly if it is gone), then streams `length` bytes
/// from `start` out of the held reader, on one blocking-pool thread for the whole response,
/// through the response's buffer pool.
async fn stream_body(
    request: &Request,
    digest: Digest,
    start: u64,
    length: u64,
) -> Result<Body, ApiError> {
    let store = request.state.store;
    let write_timeout = request.state.options.io_timeout;
    // Unbounded in name only: at most the pool's buffers are ever in it.
    let (sender, receiver) = mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
    let (opened_sender, opened) = tokio::sync::oneshot::channel::<Result<(), ApiError>>();
    tokio::task::spawn_blocking(move || {
        let mut reader = match store.read_held(&digest) {
            Ok(reader) => reader,
            Err(error) => {
                let _ = opened_sender.send(Err(error.into()));
                return;
            }
        };
        if let Err(error) = reader.seek(SeekFrom::Start(start)) {
            let _ = opened_sender.send(Err(ApiError::internal(format!(
                "seeking in blob {digest}: {error}"
            ))));
            return;
        }
        let _ = opened_sender.send(Ok(()));
        let pool = ChunkPool::new(length);
        let mut left = length;
        while left > 0 {
            // The client went away, or has taken nothing for the I/O timeout: stop. The
            // response then ends short of its length, and the connection with it.
            let Some(buffers) = pool.take(chunks_in(left), write_timeout, &sender) else {
                return;
            };
            for mut buffer in buffers {
                if left == 0 {
                    pool.give_back(buffer);
                    continue;
                }
                let wanted = buffer
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                let read = match reader.read(&mut buffer[..wanted]) {
                    Ok(0) => Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("blob {digest} ended {left} bytes early"),
                    )),
                    Ok(read) => Ok(read),
                    Err(error) => Err(error),
                };
                let chunk = match read {
                    Ok(read) => {
                        left -= read as u64;
                        Ok(Bytes::from_owner(PooledChunk {
                            buffer,
                            length: read,
                            pool: pool.clone(),
                        }))
                    }
                    // Ends the response early: the client sees a short body, never wrong bytes.
                    Err(error) => Err(error),
                };
                let failed = chunk.is_err();
                if sender.send(chunk).is_err() || failed {
                    return;
                }
            }
        }
    });
    match opened.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error),
        Err(_) => return Err(ApiError::internal("the blob reader stopped before opening")),
    }
    let chunks = stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok(Body::from_stream(chunks))
}

/// How many chunks `left` bytes take.
fn chunks_in(left: u64) -> usize {
    usize::try_from(left.div_ceil(CHUNK as u64)).unwrap_or(usize::MAX)
}

/// The read buffers of one response: allocated once (at most [`POOL`] of [`CHUNK`] bytes, fewer
/// and smaller for a small blob), lent to the body a chunk at a time and back when hyper has
/// written each. So a response holds at most `POOL × CHUNK` bytes whatever its client does,
/// and nothing is allocated or zeroed per chunk. The reader waits until at least [`REFILL`]
/// buffers are back and then reads into all of them in one go: one wake-up of the reading
/// thread per [`REFILL`] chunks sent.
struct ChunkPool {
    free: Mutex<Vec<Vec<u8>>>,
    returned: Condvar,
}

impl ChunkPool {
    fn new(length: u64) -> Arc<ChunkPool> {
        let size = usize::try_from(length).map_or(CHUNK, |length| length.min(CHUNK));
        let count = chunks_in(length).min(POOL);
        Arc::new(ChunkPool {
            free: Mutex::new((0..count).map(|_| vec![0; size]).collect()),
            returned: Condvar::new(),
        })
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every free buffer, once at least [`REFILL`] are (or all that `chunks_left` needs);
    /// `None` when the body is gone or no buffer came back for `timeout`.
    fn take<T>(
        &self,
        chunks_left: usize,
        timeout: Duration,
        sender: &mpsc::UnboundedSender<T>,
    ) -> Option<Vec<Vec<u8>>> {
        let needed = REFILL.min(chunks_left).max(1);
        let deadline = Instant::now() + timeout;
        let mut free = self.free();
        while free.len() < needed {
            if sender.is_closed() {
                return None;
            }
            let wait = deadline.checked_duration_since(Instant::now())?;
            free = self
                .returned
                .wait_timeout(free, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(std::mem::take(&mut *free))
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut free = self.free();
        free.push(buffer);
        if free.len() >= REFILL {
            self.returned.notify_one();
        }
    }
}

/// A chunk of a body: a pool buffer, given back when hyper drops it.
struct PooledChunk {
    buffer: Vec<u8>,
    length: usize,
    pool: Arc<ChunkPool>,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.length]
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}
