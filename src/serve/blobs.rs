//! Blob GET and HEAD, with `Range`. The body streams from the store in chunks read on the
//! blocking pool (never the whole blob in memory), from a reader opened before the response
//! starts and held to its end (`Store::read_held`): a concurrent GC never takes the blob from
//! under a client, and the bytes sent are the bytes verified at commit.

use std::io::{Read, Seek, SeekFrom};

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
/// Chunks read ahead of a slow client: bounds the memory of one response to a few MiB.
const CHUNKS_AHEAD: usize = 4;

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
/// from `start` out of a blocking reader through a small channel.
async fn stream_body(
    request: &Request,
    digest: Digest,
    start: u64,
    length: u64,
) -> Result<Body, ApiError> {
    let store = request.state.store;
    let write_timeout = request.state.options.io_timeout;
    let runtime = tokio::runtime::Handle::current();
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD);
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
        let mut left = length;
        while left > 0 {
            let mut chunk = vec![0; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
            let read = match reader.read(&mut chunk) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("blob {digest} ended {left} bytes early"),
                )),
                Ok(read) => Ok(read),
                Err(error) => Err(error),
            };
            match read {
                Ok(read) => {
                    chunk.truncate(read);
                    left -= read as u64;
                    // The client went away, or has read nothing for the I/O timeout: stop. The
                    // response then ends short of its length, and the connection with it.
                    let sent = runtime.block_on(tokio::time::timeout(
                        write_timeout,
                        sender.send(Ok(Bytes::from(chunk))),
                    ));
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
                Err(error) => {
                    // Ends the response early: the client sees a short body, never wrong bytes.
                    let _ = sender.blocking_send(Err(error));
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
