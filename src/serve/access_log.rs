//! One line per request on standard error: method, path, status, bytes, duration; as JSON
//! lines with `--log-json`; and the counters of `/metrics`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use super::state::SharedState;

/// The access-log middleware.
pub async fn log(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    state.metrics.started();
    let response = next.run(request).await;
    let bytes: u64 = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let status = response.status().as_u16();
    state.metrics.finished(method.as_str(), status, bytes);
    // A push landed, or a mirrored blob may have: the pruner looks at the watermark.
    let may_write = match method {
        axum::http::Method::GET => !state.options.mirrors.is_empty(),
        axum::http::Method::HEAD => false,
        _ => true,
    };
    if may_write && response.status().is_success() {
        state.pruner.wrote();
    }
    if state.options.quiet {
        return response;
    }
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    if state.options.json_log {
        let line = json!({
            "method": method.as_str(),
            "path": path,
            "status": status,
            "bytes": bytes,
            "duration_ms": (millis * 1000.0).round() / 1000.0,
        });
        eprintln!("{line}");
    } else {
        eprintln!("{method} {path} {status} {bytes} {millis:.1}ms");
    }
    response
}
