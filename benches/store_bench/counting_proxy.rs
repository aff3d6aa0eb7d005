//! The `mirror` section's tap on the upstream: a TCP proxy on 127.0.0.1 in front of the
//! upstream registry that counts the bytes the upstream sends (response heads and bodies) and
//! the blob GETs it is asked. It forwards bytes as they come and parses nothing but request
//! lines: a pull-through cache only sends GETs and HEADs, which have no body, so the
//! client-to-upstream stream is a run of request heads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::measure::BenchResult;

/// Bytes copied per `read` of the upstream's answers.
const COPY_BUFFER: usize = 256 << 10;

/// What went through the proxy since the last [`CountingProxy::take`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    /// Bytes the upstream sent (heads included).
    pub bytes: u64,
    /// `GET …/blobs/…` requests.
    pub blob_gets: u64,
    /// Every request.
    pub requests: u64,
}

#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    blob_gets: AtomicU64,
    requests: AtomicU64,
}

/// A running proxy; stops accepting when dropped (open connections end with their peers).
pub struct CountingProxy {
    /// `127.0.0.1:PORT`.
    pub address: String,
    counters: Arc<Counters>,
    stopping: Arc<AtomicBool>,
}

impl CountingProxy {
    /// A proxy to `upstream` (`127.0.0.1:PORT`), listening on a free port.
    pub fn start(upstream: &str) -> BenchResult<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?.to_string();
        let counters = Arc::new(Counters::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let (shared, stop, upstream) = (
            Arc::clone(&counters),
            Arc::clone(&stopping),
            upstream.to_string(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (upstream, counters) = (upstream.clone(), Arc::clone(&shared));
                std::thread::spawn(move || {
                    if let Err(error) = relay(client, &upstream, &counters) {
                        eprintln!("  counting proxy: a connection failed: {error}");
                    }
                });
            }
        });
        Ok(CountingProxy {
            address,
            counters,
            stopping,
        })
    }

    /// Waits until the upstream has sent nothing for `quiet` (at most `limit`): work a cache
    /// left running after its client was answered (a fetch in the background) is counted
    /// with the pull that caused it. `false` when it was still sending at the limit.
    pub fn wait_until_quiet(&self, quiet: Duration, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut last = self.counters.bytes.load(Ordering::SeqCst);
        let mut unchanged_since = Instant::now();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.counters.bytes.load(Ordering::SeqCst);
            if now != last {
                last = now;
                unchanged_since = Instant::now();
            } else if unchanged_since.elapsed() >= quiet {
                return true;
            }
        }
        false
    }

    /// What was counted since the last call, and zero again.
    pub fn take(&self) -> Traffic {
        Traffic {
            bytes: self.counters.bytes.swap(0, Ordering::SeqCst),
            blob_gets: self.counters.blob_gets.swap(0, Ordering::SeqCst),
            requests: self.counters.requests.swap(0, Ordering::SeqCst),
        }
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.address);
    }
}

/// One client connection: its requests to the upstream (request lines counted), the
/// upstream's answers back (bytes counted), each direction half-closed when its source ends.
fn relay(client: TcpStream, upstream: &str, counters: &Counters) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut to_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut from_server = server;
            let mut buffer = vec![0; COPY_BUFFER];
            loop {
                match from_server.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        counters.bytes.fetch_add(read as u64, Ordering::Relaxed);
                        if to_client.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to_client.shutdown(Shutdown::Write);
        });
        let mut requests = BufReader::new(client);
        let mut line = Vec::new();
        let mut at_request_line = true;
        loop {
            line.clear();
            match requests.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if at_request_line && line.len() > 2 {
                counters.requests.fetch_add(1, Ordering::Relaxed);
                if line.starts_with(b"GET ") && contains(&line, b"/blobs/") {
                    counters.blob_gets.fetch_add(1, Ordering::Relaxed);
                }
                at_request_line = false;
            }
            // The empty line ends a head; the next line starts the next request.
            if line == b"\r\n" || line == b"\n" {
                at_request_line = true;
            }
            if to_server.write_all(&line).is_err() {
                break;
            }
        }
        let _ = to_server.shutdown(Shutdown::Write);
    });
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
