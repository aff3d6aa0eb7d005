//! An HTTP/1.1 proxy in front of a registry, for the tests: it logs every request (method,
//! path, Range), and a rule chooses per request whether to forward the answer as it is, cut
//! its body after some bytes (a connection that breaks mid-download), send it slowly, or
//! answer something else. One request per connection (`Connection: close`), which every
//! client handles.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

pub enum Action {
    Forward,
    /// Forward, but close the connection after this many body bytes.
    CutAfter(usize),
    /// Forward after this pause.
    Delay(Duration),
    /// Forward the body in pieces of this size, pausing between them.
    Throttle(usize, Duration),
    /// Forward this many body bytes, then send nothing more and keep the connection open
    /// until the client closes it (a download caught in the middle, for a test that kills
    /// the client there), for at most a minute.
    StallAfter(usize),
    /// Forward with the body replaced (Content-Length adjusted).
    ReplaceBody(Vec<u8>),
    /// Answer this instead of asking the registry.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

/// Decides what to do with a request, given it and the log so far (including it).
pub type Rule = dyn Fn(&Logged, &[Logged]) -> Action + Send + Sync;

pub struct Proxy {
    pub port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    blob_gets: Arc<InFlight>,
}

/// Blob GETs being answered now, and the most there were at once.
#[derive(Default)]
struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl Proxy {
    /// A proxy to `upstream` (`127.0.0.1:<port>`).
    pub fn start(upstream: String, rule: Box<Rule>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("address").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Rule> = Arc::from(rule);
        let shared_log = Arc::clone(&log);
        let blob_gets = Arc::new(InFlight::default());
        let shared_gets = Arc::clone(&blob_gets);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (upstream, rule, log, gets) = (
                    upstream.clone(),
                    Arc::clone(&rule),
                    Arc::clone(&shared_log),
                    Arc::clone(&shared_gets),
                );
                std::thread::spawn(move || {
                    let _ = serve(stream, &upstream, rule.as_ref(), &log, &gets);
                });
            }
        });
        Proxy {
            port,
            log,
            blob_gets,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().expect("log").clone()
    }

    /// The most blob GETs that were being answered at once.
    pub fn most_blob_gets_at_once(&self) -> usize {
        self.blob_gets
            .most
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many GETs asked for `/v2/.../blobs/<digest>`.
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l.method == "GET" && l.path.ends_with(&format!("/blobs/{digest}")))
            .count()
    }
}

struct Head {
    first_line: String,
    headers: Vec<(String, String)>,
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut first_line = String::new();
    if reader.read_line(&mut first_line)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(Some(Head {
        first_line: first_line.trim_end().to_string(),
        headers,
    }))
}

/// A request body by Content-Length, or de-chunked (forwarded with a Content-Length).
fn read_body(reader: &mut impl BufRead, head: &Head) -> std::io::Result<Vec<u8>> {
    let chunked =
        header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        let length: usize = header(head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .unwrap_or(0);
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn header<'h>(head: &'h Head, name: &str) -> Option<&'h str> {
    head.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn serve(
    client: TcpStream,
    upstream: &str,
    rule: &Rule,
    log: &Mutex<Vec<Logged>>,
    blob_gets: &InFlight,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let mut parts = head.first_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let body = read_body(&mut reader, &head)?;
    let logged = Logged {
        method: method.clone(),
        range: header(&head, "range").map(str::to_string),
        authorization: header(&head, "authorization").map(str::to_string),
        path: path.clone(),
    };
    let action = {
        let mut log = log.lock().expect("log");
        log.push(logged.clone());
        rule(&logged, &log)
    };
    let mut client = client;
    let is_blob_get = method == "GET" && path.contains("/blobs/sha");
    if is_blob_get {
        use std::sync::atomic::Ordering::SeqCst;
        let now = blob_gets.now.fetch_add(1, SeqCst) + 1;
        blob_gets.most.fetch_max(now, SeqCst);
    }
    // No longer in flight just before the last bytes go: the client cannot start its next
    // request before it has them.
    let finishing = || {
        if is_blob_get {
            blob_gets
                .now
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let mut finished = false;
    let mut finish_once = || {
        if !finished {
            finished = true;
            finishing();
        }
    };
    let result = answer(
        &mut client,
        upstream,
        &head,
        &method,
        &body,
        action,
        &mut finish_once,
    );
    finish_once();
    result
}

fn answer(
    client: &mut TcpStream,
    upstream: &str,
    head: &Head,
    method: &str,
    body: &[u8],
    action: Action,
    finishing: &mut dyn FnMut(),
) -> std::io::Result<()> {
    if let Action::Respond {
        status,
        headers,
        body,
    } = &action
    {
        let mut answer = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
        for (name, value) in headers {
            answer.push_str(&format!("{name}: {value}\r\n"));
        }
        answer.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        client.write_all(answer.as_bytes())?;
        client.write_all(body)?;
        return client.shutdown(Shutdown::Both);
    }
    if let Action::Delay(pause) = action {
        std::thread::sleep(pause);
    }
    // Forward, one request per upstream connection.
    let mut upstream_stream = TcpStream::connect(upstream)?;
    let mut request = format!("{}\r\n", head.first_line);
    for (name, value) in &head.headers {
        let dropped = ["connection", "transfer-encoding", "content-length"];
        if !dropped.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !body.is_empty() || !["GET", "HEAD"].contains(&method) {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    upstream_stream.write_all(request.as_bytes())?;
    upstream_stream.write_all(body)?;
    let mut upstream_reader = BufReader::new(upstream_stream);
    let Some(response_head) = read_head(&mut upstream_reader)? else {
        return client.shutdown(Shutdown::Both);
    };
    let mut response_body = Vec::new();
    if method != "HEAD" {
        upstream_reader.read_to_end(&mut response_body)?;
    }
    if let Action::ReplaceBody(replacement) = &action {
        response_body = replacement.clone();
    }
    let mut answer = format!("{}\r\n", response_head.first_line);
    for (name, value) in &response_head.headers {
        let skipped = ["connection", "transfer-encoding"];
        let replaced = name.eq_ignore_ascii_case("content-length") && method != "HEAD";
        if !skipped.iter().any(|s| name.eq_ignore_ascii_case(s)) && !replaced {
            answer.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if method != "HEAD" {
        answer.push_str(&format!("Content-Length: {}\r\n", response_body.len()));
    }
    answer.push_str("Connection: close\r\n\r\n");
    client.write_all(answer.as_bytes())?;
    match action {
        Action::CutAfter(bytes) => {
            client.write_all(&response_body[..bytes.min(response_body.len())])?;
            client.flush()?;
            // A reset, not a clean end: what a broken connection looks like.
            return client.shutdown(Shutdown::Both);
        }
        Action::StallAfter(bytes) => {
            client.write_all(&response_body[..bytes.min(response_body.len())])?;
            client.flush()?;
            client.set_read_timeout(Some(Duration::from_secs(60)))?;
            // The client sends nothing more: this returns when it goes away (or the minute
            // is up), and then the connection is closed.
            let _ = client.read(&mut [0u8; 1]);
            finishing();
            return client.shutdown(Shutdown::Both);
        }
        Action::Throttle(piece, pause) => {
            let chunks: Vec<&[u8]> = response_body.chunks(piece.max(1)).collect();
            for (position, chunk) in chunks.iter().enumerate() {
                if position > 0 {
                    std::thread::sleep(pause);
                }
                if position + 1 == chunks.len() {
                    finishing();
                }
                client.write_all(chunk)?;
                client.flush()?;
            }
        }
        _ => {
            finishing();
            client.write_all(&response_body)?;
        }
    }
    client.flush()?;
    client.shutdown(Shutdown::Both)
}
