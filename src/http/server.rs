//! The listeners and the connection loop: HTTP/1.1 on tokio and hyper, over
//! plain TCP and, beside it, TLS; keep-alive and pipelining; every
//! connection admitted within the [`Limits`] first (an idle one closed to
//! make room at the total limit); and the signals. On
//! SIGINT or SIGTERM the server stops accepting, lets every response under
//! way finish, and returns; a second signal, or [`Limits::drain`], cuts the
//! wait short. On SIGHUP it reloads its certificate.
//!
//! What a request gets is the [`Handler`]'s business; this module knows
//! nothing of routes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::limits::{Admission, Busy, ConnectionStats, Limits, Slot};
use super::response::ResponseBody;
use super::signals::{Signal, Signals};
use super::tls::{Tls, TlsError, TlsFiles};
use super::write_timeout::WriteTimeout;

/// Answers requests. One value serves every connection, concurrently.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Request<Incoming>) -> impl Future<Output = Response<ResponseBody>> + Send;
}

/// An address to listen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr {
    pub addr: SocketAddr,
    /// The address is the default `[::]`: on a host without IPv6, listen
    /// on `0.0.0.0` instead.
    pub ipv4_fallback: bool,
}

/// What to listen on, and within which limits.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub http: Option<ListenAddr>,
    pub https: Option<(ListenAddr, TlsFiles)>,
    pub limits: Limits,
}

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot handle signals: {0}")]
    Signals(#[source] io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Bound listeners, ready to run.
pub struct Server {
    listeners: Vec<Listener>,
    tls: Option<Tls>,
    limits: Limits,
    admission: Arc<Admission>,
    signals: Signals,
}

struct Listener {
    tcp: TcpListener,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
}

/// What a connection over either limit is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n\
    Content-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\n\r\ntoo many connections\n";

impl Server {
    /// Installs the signal handlers, loads the certificate and binds the
    /// listeners (inside a tokio runtime). Nothing is accepted before
    /// [`Server::run`].
    pub fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let signals = Signals::new().map_err(ServerError::Signals)?;
        let limits = config.limits.within_file_limit();
        let tls = config.https.as_ref().map(|(_, files)| Tls::load(files.clone())).transpose()?;
        let mut listeners = Vec::new();
        if let Some(http) = config.http {
            listeners.push(Listener::bind(http, None)?);
        }
        if let (Some((https, _)), Some(tls)) = (config.https, &tls) {
            listeners.push(Listener::bind(https, Some(tls.acceptor()))?);
        }
        Ok(Server { listeners, tls, admission: Admission::new(&limits), limits, signals })
    }

    /// The bound plain HTTP address (with the port the system picked for 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.listeners.iter().find(|l| l.tls.is_none()).map(|l| l.addr)
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.listeners.iter().find(|l| l.tls.is_some()).map(|l| l.addr)
    }

    /// The limits in force (`max_connections` may be lower than asked).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn connection_stats(&self) -> Arc<ConnectionStats> {
        self.admission.stats()
    }

    /// Serves until SIGINT or SIGTERM, then drains.
    pub async fn run<H: Handler>(mut self, handler: Arc<H>) {
        let (shutdown, shutdown_seen) = watch::channel(false);
        // Each connection holds a watcher from its accept until it closes:
        // the drain waits for every one.
        let graceful = Arc::new(GracefulShutdown::new());
        let accepting: Vec<_> = std::mem::take(&mut self.listeners)
            .into_iter()
            .map(|listener| {
                let accept = Accept {
                    handler: Arc::clone(&handler),
                    admission: Arc::clone(&self.admission),
                    limits: self.limits,
                    shutdown: shutdown_seen.clone(),
                    graceful: Arc::clone(&graceful),
                };
                tokio::spawn(accept.run(listener))
            })
            .collect();
        loop {
            match self.signals.recv().await {
                Signal::Stop => break,
                Signal::Reload => self.reload(),
            }
        }
        let stats = self.admission.stats();
        let pending = stats.open.load(Ordering::Relaxed);
        tracing::info!(
            "stopping: finishing the responses of {pending} open connection{}",
            if pending == 1 { "" } else { "s" }
        );
        shutdown.send_replace(true);
        for task in accepting {
            // Each listener is closed when its task ends, and its share of
            // `graceful` dropped.
            let _ = task.await;
        }
        let drained = async move {
            match Arc::into_inner(graceful) {
                Some(graceful) => graceful.shutdown().await,
                // An accept task that panicked still holds it: no drain to wait on.
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = drained => tracing::info!("stopped"),
            () = tokio::time::sleep(self.limits.drain) => {
                tracing::warn!("stopped with responses still under way after {}s", self.limits.drain.as_secs());
            }
            () = self.signals.stop() => tracing::warn!("stopped at a second signal, with responses still under way"),
        }
    }

    fn reload(&self) {
        let Some(tls) = &self.tls else {
            tracing::info!("SIGHUP: no certificate to reload (HTTPS is off)");
            return;
        };
        match tls.reload() {
            Ok(()) => tracing::info!("reloaded the certificate from {}", tls.files().cert.display()),
            Err(error) => {
                tracing::warn!("keeping the current certificate: {}", crate::error_chain::one_line(&error));
            }
        }
    }
}

impl Listener {
    /// Binds with a long backlog.
    fn bind(listen: ListenAddr, tls: Option<TlsAcceptor>) -> Result<Listener, ServerError> {
        let bind = |addr: SocketAddr| {
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        };
        let addr = listen.addr;
        let tcp = match bind(addr) {
            Err(error) if listen.ipv4_fallback && error.kind() != io::ErrorKind::AddrInUse => {
                bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()))).map_err(|_| error)
            }
            result => result,
        }
        .map_err(|source| ServerError::Bind { addr, source })?;
        let addr = tcp.local_addr().unwrap_or(addr);
        Ok(Listener { tcp, addr, tls })
    }
}

/// What every connection of a listener shares.
struct Accept<H> {
    handler: Arc<H>,
    admission: Arc<Admission>,
    limits: Limits,
    /// Stops the accept loop and any TLS handshake under way.
    shutdown: watch::Receiver<bool>,
    /// Lets each connection's current response finish, then closes it.
    graceful: Arc<GracefulShutdown>,
}

impl<H: Handler> Accept<H> {
    async fn run(mut self, listener: Listener) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.tcp.accept() => accepted,
                () = stopping(&mut self.shutdown) => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: let connections close.
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(slot) = self.admission.admit(peer.ip()) else {
                tracing::debug!("{peer}: refused, over the connection limits");
                // Best effort, never waited for: the client may not even read it.
                let _ = stream.try_write(REFUSAL);
                continue;
            };
            tokio::spawn(self.connection(stream, slot, listener.tls.clone()));
        }
    }

    /// Serves one connection on its own task until it closes or shutdown
    /// has let its current response finish.
    fn connection(&self, stream: TcpStream, slot: Slot, tls: Option<TlsAcceptor>) -> impl Future<Output = ()> + use<H> {
        let handler = Arc::clone(&self.handler);
        let limits = self.limits;
        let mut shutdown = self.shutdown.clone();
        let watcher = self.graceful.watcher();
        async move {
            let _ = stream.set_nodelay(true);
            let stream = WriteTimeout::new(stream, limits.write_timeout);
            let Some(acceptor) = tls else {
                return serve(stream, handler, &limits, watcher, &slot).await;
            };
            let handshake = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
            let stream = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => return tracing::debug!("TLS handshake failed: {error}"),
                    Err(_) => return tracing::debug!("TLS handshake timed out"),
                },
                () = stopping(&mut shutdown) => return,
                () = slot.evicted() => return tracing::debug!("closed during its TLS handshake to make room"),
            };
            serve(stream, handler, &limits, watcher, &slot).await
        }
    }
}

/// Resolves once shutdown has begun.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not be held across an await.
    drop(shutdown.wait_for(|&stopping| stopping).await);
}

/// HTTP/1.1 over one connection, until it closes, shutdown has let its
/// current response finish, or it is closed to make room for another.
async fn serve<I, H>(io: I, handler: Arc<H>, limits: &Limits, watcher: Watcher, slot: &Slot)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let tracker = slot.tracker();
    let service = service_fn(move |request| {
        let handler = Arc::clone(&handler);
        // Busy from the request head until its response is sent.
        let busy = tracker.request();
        async move { Ok::<_, Infallible>(handler.handle(request).await.map(|body| Tracked { body, _busy: busy })) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        // Runs whenever the connection waits for a request head: the first
        // one, and between kept-alive requests.
        .header_read_timeout(limits.header_timeout)
        // Pipelined requests are answered in order all the same; hyper's
        // `pipeline_flush` would copy every body into its write buffer.
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    // At shutdown hyper finishes the response under way, then closes.
    let conn = watcher.watch(conn);
    tokio::select! {
        result = conn => {
            if let Err(error) = result {
                tracing::trace!("connection ended: {error}");
            }
        }
        // Idle: waiting for a request head. Dropping the connection closes it.
        () = slot.evicted() => tracing::debug!("closed while idle to make room for a new connection"),
    }
}

/// A response body that keeps its connection counted busy until it is sent
/// (hyper drops the body then).
struct Tracked {
    body: ResponseBody,
    _busy: Busy,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
