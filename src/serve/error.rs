//! Errors of the server: [`ServeError`] for starting and running it, [`ApiError`] for one
//! request, answered with the distribution spec's JSON error body and status.

use std::io;
use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;
use crate::stores::oci::OciError;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening address could not be bound.
    #[error("listening on {address}: {source} (is another server using the port? choose another with --listen)")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// A non-loopback address without TLS and without `--insecure`.
    #[error("refusing to listen on {address} without TLS: clients on other machines would send and receive images in clear text; listen on 127.0.0.1, or pass --insecure to accept that")]
    InsecureListen {
        /// The address asked for.
        address: String,
    },
    /// `LISTEN_FDS` was set but did not describe a usable socket.
    #[error("systemd socket activation: {0}")]
    SocketActivation(String),
    /// A file the server needs could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The htpasswd file is not one the server can use.
    #[error("htpasswd file {path}, line {line}: {message}")]
    Htpasswd {
        /// The file.
        path: PathBuf,
        /// The line (0: the file as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `--mirror` upstream could not be set up.
    #[error("mirror {host}: {message}")]
    Mirror {
        /// The mirrored host.
        host: String,
        /// What is wrong.
        message: String,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The async runtime could not start.
    #[error("starting the server's runtime: {0}")]
    Runtime(io::Error),
}

/// Result of starting or running the server.
pub type ServeResult<T> = Result<T, ServeError>;

/// One request's failure: a distribution spec error code, its status and a message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The spec's code (`MANIFEST_UNKNOWN`, `NAME_INVALID`, ...).
    pub code: &'static str,
    /// What went wrong, naming the repository, tag or digest.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `NAME_INVALID` (400): a repository name the grammar forbids.
    pub fn name_invalid(name: &str, why: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name {name:?}: {why}"),
        )
    }

    /// `NAME_UNKNOWN` (404).
    pub fn name_unknown(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name:?} is not known to this registry"),
        )
    }

    /// `MANIFEST_UNKNOWN` (404).
    pub fn manifest_unknown(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest unknown: {what}"),
        )
    }

    /// `BLOB_UNKNOWN` (404).
    pub fn blob_unknown(digest: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob unknown to registry: {digest}"),
        )
    }

    /// `DIGEST_INVALID` (400).
    pub fn digest_invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }

    /// `BLOB_UPLOAD_UNKNOWN` (404).
    pub fn upload_unknown(id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!("blob upload unknown to registry: {id} (expired, finished or cancelled; start a new one with POST)"),
        )
    }

    /// `BLOB_UPLOAD_INVALID` (400, or 416 for a chunk out of order).
    pub fn upload_invalid(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(status, "BLOB_UPLOAD_INVALID", message)
    }

    /// `UNSUPPORTED` (405): push or delete while the server does not accept them.
    pub fn unsupported(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }

    /// `SIZE_INVALID` (400, or 413 when over a limit).
    pub fn size_invalid(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(status, "SIZE_INVALID", message)
    }

    /// `TOOMANYREQUESTS` (429).
    pub fn too_many(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", message)
    }

    /// A failure of the server itself (500, code `UNKNOWN`, as distribution answers).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(digest) => ApiError::blob_unknown(digest),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<OciError> for ApiError {
    fn from(error: OciError) -> ApiError {
        match error {
            OciError::RefNotFound(name) => ApiError::manifest_unknown(format!("no ref {name:?}")),
            OciError::Store(store) => (*store).into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": [{"code": self.code, "message": self.message, "detail": null}]
        });
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oci-store\""),
            );
        }
        response
    }
}
