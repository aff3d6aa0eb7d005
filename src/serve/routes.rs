//! The distribution API's paths, parsed from the end (a repository name may itself contain
//! `blobs` or `manifests` as components), and dispatched by method.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::auth::Access;
use super::error::ApiError;
use super::state::SharedState;
use super::{blobs, listing, manifests, names, uploads};

/// One parsed API path.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags { name: String },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest { name: String, reference: String },
    /// `/v2/<name>/blobs/<digest>`.
    Blob { name: String, digest: String },
    /// `/v2/<name>/blobs/uploads/`.
    UploadStart { name: String },
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload { name: String, id: String },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers { name: String, digest: String },
}

/// Parses a request path; `None` for a path outside the API.
pub fn parse(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags { name: name.into() });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart { name: name.into() });
    }
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    let (name, last) = (name.to_string(), last.to_string());
    match kind {
        "manifests" => Some(Route::Manifest {
            name,
            reference: last,
        }),
        "blobs" => Some(Route::Blob { name, digest: last }),
        "referrers" => Some(Route::Referrers { name, digest: last }),
        "uploads" => {
            let name = name.strip_suffix("/blobs")?.to_string();
            Some(Route::Upload { name, id: last })
        }
        _ => None,
    }
}

/// The repository name of a route, checked against the spec's grammar.
fn checked(name: &str) -> Result<(), ApiError> {
    names::validate_repository(name)
}

/// The whole API: every request comes here.
pub async fn handle(
    State(state): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query: HashMap<String, String> = Query::try_from_uri(&uri)
        .map(|Query(query)| query)
        .unwrap_or_default();
    let request = Request {
        state,
        method,
        uri,
        headers,
        query,
    };
    let mut response = match dispatch(request, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// What a handler gets to know about its request.
pub struct Request {
    /// The server's shared state.
    pub state: SharedState,
    /// The method.
    pub method: Method,
    /// The URI as sent.
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The query parameters.
    pub query: HashMap<String, String>,
}

impl Request {
    /// A header as text, if present and valid UTF-8.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn require_push(&self) -> Result<(), ApiError> {
        if self.state.options.push {
            Ok(())
        } else {
            Err(ApiError::unsupported(
                "this registry is read-only: start `oci-store serve` with --push to accept pushes and deletes",
            ))
        }
    }
}

async fn dispatch(request: Request, body: Body) -> Result<Response, ApiError> {
    if let Some(users) = &request.state.users {
        let access = if request.method == Method::GET || request.method == Method::HEAD {
            Access::Read
        } else {
            Access::Write
        };
        users.check(request.header(header::AUTHORIZATION), access)?;
    }
    if request.uri.path() == "/metrics"
        && request.state.options.metrics
        && request.method == Method::GET
    {
        let text = request.state.metrics.render(request.state.uploads.open());
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response());
    }
    let Some(route) = parse(request.uri.path()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "{} is not a path of the distribution API",
                request.uri.path()
            ),
        ));
    };
    let method = request.method.clone();
    let is_read = method == Method::GET || method == Method::HEAD;
    match route {
        Route::Base if is_read => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response()),
        Route::Catalog if is_read => listing::catalog(&request).await,
        Route::Tags { name } if is_read => {
            checked(&name)?;
            listing::tags(&request, &name).await
        }
        Route::Referrers { name, digest } if is_read => {
            checked(&name)?;
            listing::referrers(&request, &name, &digest).await
        }
        Route::Manifest { name, reference } => {
            checked(&name)?;
            match method {
                Method::GET | Method::HEAD => manifests::get(&request, &name, &reference).await,
                Method::PUT => {
                    request.require_push()?;
                    manifests::put(&request, &name, &reference, body).await
                }
                Method::DELETE => {
                    request.require_push()?;
                    manifests::delete(&request, &name, &reference).await
                }
                _ => Err(not_allowed(&method)),
            }
        }
        Route::Blob { name, digest } => {
            checked(&name)?;
            match method {
                Method::GET | Method::HEAD => blobs::get(&request, &name, &digest).await,
                Method::DELETE => Err(ApiError::unsupported(
                    "blobs are not deleted one by one: remove the tags that reach them, and `oci-store gc` reclaims them",
                )),
                _ => Err(not_allowed(&method)),
            }
        }
        Route::UploadStart { name } if method == Method::POST => {
            checked(&name)?;
            request.require_push()?;
            uploads::start(&request, &name, body).await
        }
        Route::Upload { name, id } => {
            checked(&name)?;
            request.require_push()?;
            match method {
                Method::GET => uploads::status(&request, &name, &id).await,
                Method::PATCH => uploads::append(&request, &name, &id, body).await,
                Method::PUT => uploads::finish(&request, &name, &id, body).await,
                Method::DELETE => uploads::cancel(&request, &id).await,
                _ => Err(not_allowed(&method)),
            }
        }
        _ => Err(not_allowed(&method)),
    }
}

fn not_allowed(method: &Method) -> ApiError {
    ApiError::unsupported(format!("{method} is not supported on this path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(name: &str) -> String {
        name.to_string()
    }

    #[test]
    fn paths_parse_from_the_end() {
        assert_eq!(parse("/v2/"), Some(Route::Base));
        assert_eq!(parse("/v2"), Some(Route::Base));
        assert_eq!(parse("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            parse("/v2/a/b/tags/list"),
            Some(Route::Tags { name: owned("a/b") })
        );
        assert_eq!(
            parse("/v2/blobs/manifests/manifests/latest"),
            Some(Route::Manifest {
                name: owned("blobs/manifests"),
                reference: owned("latest")
            })
        );
        assert_eq!(
            parse("/v2/x/blobs/sha256:ab"),
            Some(Route::Blob {
                name: owned("x"),
                digest: owned("sha256:ab")
            })
        );
        assert_eq!(
            parse("/v2/x/y/blobs/uploads/"),
            Some(Route::UploadStart { name: owned("x/y") })
        );
        assert_eq!(
            parse("/v2/x/blobs/uploads/abc"),
            Some(Route::Upload {
                name: owned("x"),
                id: owned("abc")
            })
        );
        assert_eq!(
            parse("/v2/x/referrers/sha256:ab"),
            Some(Route::Referrers {
                name: owned("x"),
                digest: owned("sha256:ab")
            })
        );
        assert_eq!(parse("/v1/x"), None);
        assert_eq!(parse("/v2/x/uploads/abc"), None);
        assert_eq!(parse("/v2/x/other/y"), None);
    }
}
