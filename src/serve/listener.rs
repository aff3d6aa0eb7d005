//! The listening socket (bound here, or handed over by systemd through `LISTEN_FDS`), the
//! accept loop with its connection limit and timeouts, and a graceful shutdown.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::error::{ServeError, ServeResult};
use super::state::{AppState, SharedState};
use super::uploads::Uploads;
use super::{access_log, routes, ServeOptions};
use crate::store::Store;

/// Largest request head (line and headers) a client may send: a header flood gets a 431.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// A running server.
pub struct ServerHandle {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address it listens on (with the port the OS chose, for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, lets in-flight requests finish for the grace period, and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn wait_for_signal(self) {
        self.wait_for(StopSignals::install()).await;
    }

    /// Runs until one of `signals` arrives, then shuts down gracefully.
    pub async fn wait_for(self, signals: StopSignals) {
        signals.arrived().await;
        eprintln!("shutting down: finishing the requests in flight");
        self.shutdown().await;
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made: install it before saying the
/// server listens, so a signal sent at once is never the default action (death).
pub struct StopSignals {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Catches SIGINT and SIGTERM from now on (call inside a tokio runtime).
    pub fn install() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = [SignalKind::interrupt(), SignalKind::terminate()]
                .into_iter()
                .filter_map(|kind| signal(kind).ok())
                .collect();
            StopSignals { streams }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    async fn arrived(self) {
        #[cfg(unix)]
        {
            let mut streams = self.streams;
            if streams.is_empty() {
                return std::future::pending().await;
            }
            let waits = streams.iter_mut().map(|stream| Box::pin(stream.recv()));
            futures_util::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The socket systemd passed (`LISTEN_FDS=1`, `LISTEN_PID` this process), if any.
fn activated_socket() -> ServeResult<Option<StdListener>> {
    let Ok(count) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_none_or(|pid| pid == std::process::id());
    if !for_us {
        return Ok(None);
    }
    if count.trim() != "1" {
        return Err(ServeError::SocketActivation(format!(
            "LISTEN_FDS={count}: exactly one socket is served"
        )));
    }
    // SAFETY: systemd's protocol hands this process descriptor 3, open and owned by nobody
    // else; it is taken over exactly once (the variables are removed).
    #[cfg(unix)]
    {
        use std::os::fd::FromRawFd;
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_PID");
        let listener = unsafe { StdListener::from_raw_fd(3) };
        Ok(Some(listener))
    }
    #[cfg(not(unix))]
    Err(ServeError::SocketActivation(
        "not supported on this platform".into(),
    ))
}

fn bind(options: &ServeOptions) -> ServeResult<StdListener> {
    if let Some(listener) = activated_socket()? {
        return Ok(listener);
    }
    if !options.listen.ip().is_loopback() && !options.insecure && options.tls.is_none() {
        return Err(ServeError::InsecureListen {
            address: options.listen.to_string(),
        });
    }
    StdListener::bind(options.listen).map_err(|source| ServeError::Bind {
        address: options.listen.to_string(),
        source,
    })
}

/// Starts serving `store` (call from inside a tokio runtime); returns once it listens.
pub async fn serve(store: &'static Store, options: ServeOptions) -> ServeResult<ServerHandle> {
    let listener = bind(&options)?;
    listener
        .set_nonblocking(true)
        .and_then(|()| listener.local_addr())
        .map_err(|source| ServeError::Bind {
            address: options.listen.to_string(),
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServeError::Bind {
        address: options.listen.to_string(),
        source,
    })?;
    let listener = TcpListener::from_std(listener).map_err(|source| ServeError::Bind {
        address: options.listen.to_string(),
        source,
    })?;
    let users = match &options.htpasswd {
        Some(path) => Some(super::auth::Users::read(
            path,
            &options.writers,
            options.anonymous_read,
        )?),
        None => None,
    };
    let state: SharedState = Arc::new(AppState {
        store,
        options: options.clone(),
        uploads: Uploads::default(),
        metrics: super::metrics::Metrics::default(),
        users,
        upstreams: super::mirror::Upstreams::new(&options.mirrors, options.tag_ttl)?,
        pruner: super::retention::Pruner::new(options.prune.clone()),
    });
    let router = Router::new()
        .fallback(routes::handle)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access_log::log,
        ))
        .with_state(state.clone());
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, router, state, tls, stopped));
    Ok(ServerHandle {
        address,
        stop,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    state: SharedState,
    tls: Option<TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) {
    let options = &state.options;
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    let expiry = tokio::spawn(expire_uploads(state.clone()));
    let pruner = tokio::spawn(super::retention::run(state.clone()));
    loop {
        // At the limit, stop accepting until a connection ends: the rest wait in the backlog.
        let Ok(permit) = connections.clone().acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => break,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let watcher = graceful.watcher();
        let timeout = options.io_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    // A client that never finishes its handshake is dropped after the timeout.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(timeout, acceptor.accept(stream)).await
                    {
                        serve_connection(stream, router, watcher, timeout).await;
                    }
                }
                None => serve_connection(stream, router, watcher, timeout).await,
            }
            drop(permit);
        });
    }
    expiry.abort();
    pruner.abort();
    let grace = options.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "requests still in flight after {} s: stopping anyway",
            grace.as_secs()
        );
    }
    // The uploads left open are abandoned now, not left to the next gc.
    state.uploads.abandon_all().await;
}

/// Serves one connection's requests (HTTP/1.1, keep-alive) until it closes.
async fn serve_connection<S>(stream: S, router: Router, watcher: Watcher, timeout: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let stream = WriteDeadline::new(stream, timeout);
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let _ = watcher.watch(connection).await;
}

/// A connection's stream with a deadline on writes: a write or flush that makes no progress
/// for the I/O timeout fails, and the connection with it. hyper has no write timeout of its
/// own, so without this a client that stops reading a response would keep its connection (and
/// the blob's hold) for ever.
struct WriteDeadline<S> {
    stream: S,
    timeout: Duration,
    /// Armed while a write waits for the client to take bytes; reused, never reallocated.
    deadline: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl<S> WriteDeadline<S> {
    fn new(stream: S, timeout: Duration) -> Self {
        WriteDeadline {
            stream,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }

    /// What a write that is not ready yet returns: pending until the deadline, then an error.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.armed {
            let at = tokio::time::Instant::now() + self.timeout;
            self.deadline.as_mut().reset(at);
            self.armed = true;
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took nothing for {} s: cut off",
                    self.timeout.as_secs()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(
        &mut self,
        ready: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match ready {
            Poll::Pending => self.stalled(cx),
            ready => {
                self.armed = false;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let ready = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.progressed(ready, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let ready = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.progressed(ready, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let ready = Pin::new(&mut this.stream).poll_flush(cx);
        this.progressed(ready, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let ready = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.progressed(ready, cx)
    }
}

/// The TLS acceptor for `--tls-cert`/`--tls-key` (PEM): the certificate chain and its key.
fn tls_acceptor(cert: &Path, key: &Path) -> ServeResult<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| {
            ServeError::Tls(format!(
                "reading the certificate chain {}: {e}",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("reading the private key {}: {e}", key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| ServeError::Tls(format!("{} and {}: {e}", cert.display(), key.display())))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Drops idle uploads now and then.
async fn expire_uploads(state: SharedState) {
    let period =
        (state.options.upload_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::time::sleep(period).await;
        state.uploads.expire(state.options.upload_timeout);
    }
}
