//! `serve` against abuse: a header flood, a manifest over 4 MiB, a body longer than its
//! declared length, too many uploads, a client that stops sending: each a clean error, the
//! store unchanged, the server still serving others.

mod cli_support;
mod serve_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serve_support::{get, send, Server};

fn served_store() -> TestStore {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "demo:v1").unwrap();
    store.ok(&["import", layout.to_str().unwrap()]);
    store
}

/// Sends raw bytes on a new connection; returns what came back before the server closed it
/// or went quiet.
fn raw(server: &Server, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn floods_and_oversized_bodies_are_refused_and_the_server_serves_on() {
    let store = served_store();
    let before = serve_support::refs(&store);
    let server = Server::start(&store, &["--push", "--max-uploads", "2"]);

    // A header flood: 200 KiB of headers.
    let mut flood = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..4000 {
        flood.extend_from_slice(format!("X-Flood-{i}: {}\r\n", "a".repeat(40)).as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let answer = raw(&server, &flood);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );

    // A manifest over 4 MiB.
    let huge = vec![b' '; 5 << 20];
    let refused = send(
        "PUT",
        &server.url("/v2/demo/manifests/huge"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &huge,
    );
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (413, "SIZE_INVALID")
    );

    // A body longer than its Content-Length: the excess is not part of the upload.
    let started = send("POST", &server.url("/v2/demo/blobs/uploads/"), &[], b"");
    let location = started.header("Location").unwrap().to_string();
    let request = format!(
        "PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789EXTRA-BYTES"
    );
    let answer = raw(&server, request.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let status = send("GET", &server.url(&location), &[], b"");
    assert_eq!(
        status.header("Range"),
        Some("0-9"),
        "only the declared 10 bytes were taken"
    );

    // Too many uploads at once: 429, until one ends.
    let second = send("POST", &server.url("/v2/demo/blobs/uploads/"), &[], b"");
    assert_eq!(second.status, 202);
    let third = send("POST", &server.url("/v2/demo/blobs/uploads/"), &[], b"");
    assert_eq!(
        (third.status, third.error_code().as_str()),
        (429, "TOOMANYREQUESTS")
    );
    send(
        "DELETE",
        &server.url(second.header("Location").unwrap()),
        &[],
        b"",
    );
    assert_eq!(
        send("POST", &server.url("/v2/demo/blobs/uploads/"), &[], b"").status,
        202
    );

    // Through all of it: the store is as it was, and the server answers.
    assert_eq!(serve_support::refs(&store), before);
    assert_eq!(get(&server.url("/v2/demo/manifests/v1")).status, 200);
}

#[test]
fn a_client_that_stops_sending_is_cut_off_after_the_io_timeout() {
    let store = served_store();
    let server = Server::start(&store, &["--push", "--io-timeout", "1"]);
    // Headers never finished.
    let started = std::time::Instant::now();
    let answer = raw(&server, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "held for {:?}",
        started.elapsed()
    );
    assert!(!answer.contains("200 OK"), "{answer}");
    // A body that stops half-way.
    let upload = send("POST", &server.url("/v2/demo/blobs/uploads/"), &[], b"");
    let location = upload.header("Location").unwrap().to_string();
    let started = std::time::Instant::now();
    let answer = raw(
        &server,
        format!(
            "PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a few bytes"
        )
        .as_bytes(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "held for {:?}",
        started.elapsed()
    );
    assert!(
        answer.starts_with("HTTP/1.1 408") || answer.is_empty(),
        "{answer}"
    );
    assert_eq!(get(&server.url("/v2/demo/manifests/v1")).status, 200);
}

#[test]
fn connections_over_the_limit_wait_and_are_served_once_one_ends() {
    let store = served_store();
    let server = Server::start(&store, &["--max-connections", "1", "--io-timeout", "1"]);
    // One client takes the only connection and sends nothing.
    let mut idle = TcpStream::connect(&server.address).unwrap();
    let _ = idle.write_all(b"GET /v2/ HTTP/1.1\r\n");
    // Another waits in the backlog until the idle one is cut off at the I/O timeout, then is
    // served: no error, no crash.
    let started = std::time::Instant::now();
    let answer = get(&server.url("/v2/demo/manifests/v1"));
    assert_eq!(answer.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the second connection was served beside the first: the limit did nothing"
    );
}

#[test]
fn a_reader_that_stops_reading_a_big_blob_is_cut_off_after_the_io_timeout() {
    let store = served_store();
    // More than every socket buffer between the two ends can take.
    let size = 48 << 20;
    let bytes = cli_support::pseudo_random_bytes(size, 18);
    let digest = store.put(&bytes);
    // One connection at a time: the next client is served only once the slow one is gone.
    let server = Server::start(&store, &["--max-connections", "1", "--io-timeout", "1"]);
    // A client that reads gets it whole, and any range of it, across many reused buffers.
    let whole = get(&server.url(&format!("/v2/demo/blobs/{digest}")));
    assert_eq!((whole.status, whole.body.len()), (200, size));
    assert_eq!(cli_support::sha256(&whole.body), digest);
    let (first, last) = ((1 << 20) - 10, (3 << 20) + 7);
    let part = send(
        "GET",
        &server.url(&format!("/v2/demo/blobs/{digest}")),
        &[("Range", &format!("bytes={first}-{last}"))],
        b"",
    );
    assert_eq!(part.status, 206);
    assert!(part.body == bytes[first..=last], "a range came back wrong");
    drop((whole, bytes));
    let mut slow = TcpStream::connect(&server.address).unwrap();
    let request = format!("GET /v2/demo/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n");
    slow.write_all(request.as_bytes()).unwrap();
    let mut first = [0u8; 1024];
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(slow.read(&mut first).unwrap() > 0, "the response began");

    // The slow client now reads nothing. Another client is served once the server has cut it
    // off, while it still reads nothing.
    let address = server.address.clone();
    let (sender, receiver) = std::sync::mpsc::channel();
    let started = std::time::Instant::now();
    std::thread::spawn(move || {
        let answer = get(&format!("http://{address}/v2/demo/manifests/v1"));
        let _ = sender.send(answer.status);
    });
    let status = receiver.recv_timeout(Duration::from_secs(15));
    assert_eq!(
        status,
        Ok(200),
        "the next client was not served: the slow reader kept the connection"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));

    // What the slow client gets when it reads again: the part sent before, then the end.
    let mut rest = Vec::new();
    let ended = slow.read_to_end(&mut rest);
    assert!(
        ended.is_ok() || ended.unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
        "the connection was not closed"
    );
    assert!(
        rest.len() < size,
        "the whole blob was sent to a client that stopped reading"
    );
}
