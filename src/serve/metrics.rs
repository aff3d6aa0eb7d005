//! `GET /metrics` (with `--metrics`): counters in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// What the server counts; updated by the access-log middleware around every request.
#[derive(Default)]
pub struct Metrics {
    /// Requests by (method, status).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Response body bytes declared (Content-Length) by responses sent.
    bytes_served: AtomicU64,
    /// Requests being handled now.
    in_flight: AtomicI64,
}

impl Metrics {
    /// A request started.
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request ended with `status`, declaring `bytes` of body.
    pub fn finished(&self, method: &str, status: u16, bytes: u64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.bytes_served.fetch_add(bytes, Ordering::Relaxed);
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry((method.to_string(), status)).or_default() += 1;
    }

    /// The exposition text, with the open upload sessions counted by the caller.
    pub fn render(&self, upload_sessions: usize) -> String {
        let mut text = String::new();
        text.push_str(
            "# HELP oci_store_http_requests_total Requests answered, by method and status.\n",
        );
        text.push_str("# TYPE oci_store_http_requests_total counter\n");
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((method, status), count) in requests.iter() {
            let _ = writeln!(
                text,
                "oci_store_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        drop(requests);
        let _ = write!(
            text,
            "# HELP oci_store_http_response_bytes_total Response body bytes sent (as declared).\n\
             # TYPE oci_store_http_response_bytes_total counter\n\
             oci_store_http_response_bytes_total {}\n\
             # HELP oci_store_http_requests_in_flight Requests being handled.\n\
             # TYPE oci_store_http_requests_in_flight gauge\n\
             oci_store_http_requests_in_flight {}\n\
             # HELP oci_store_upload_sessions Blob uploads open.\n\
             # TYPE oci_store_upload_sessions gauge\n\
             oci_store_upload_sessions {upload_sessions}\n",
            self.bytes_served.load(Ordering::Relaxed),
            self.in_flight.load(Ordering::Relaxed),
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.started();
        metrics.started();
        metrics.finished("GET", 200, 1000);
        let text = metrics.render(3);
        assert!(
            text.contains("oci_store_http_requests_total{method=\"GET\",status=\"200\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("oci_store_http_response_bytes_total 1000\n"));
        assert!(text.contains("oci_store_http_requests_in_flight 1\n"));
        assert!(text.contains("oci_store_upload_sessions 3\n"));
    }
}
