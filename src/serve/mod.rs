//! `helio serve`: the WebSeed (BEP 19) server that hands a torrent's bytes to
//! BitTorrent clients by proxying and caching the log, and serves the output
//! directory (SPEC §6).
//!
//! HTTP/1.1 on tokio and hyper: keep-alive and pipelining, plain HTTP only
//! (TLS belongs to a reverse proxy or CDN in front, which the immutable
//! tiles make easy to cache). On SIGINT or SIGTERM the server stops
//! accepting, lets every response under way finish, and exits 0; a second
//! signal, or [`DRAIN_LIMIT`], cuts the wait short.

pub mod byte_range;
pub mod cache;
pub mod response;
pub mod routes;
pub mod static_files;
pub mod stats;
pub mod upstream;

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use thiserror::Error;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::output::Output;
use cache::TileCache;
use routes::{App, ServedLog};
use static_files::StaticFiles;
use stats::{LogStats, Stats};
use upstream::{OVERLOAD_RETRY, Upstream, etag_of};

/// How long shutdown waits for responses under way.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// Connections beyond this many get a 503 and are closed.
const MAX_CONNECTIONS: u64 = 8192;
/// A client gets this long to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the server could not start (exit status 2; once it runs, it only
/// stops at a signal).
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("no address to listen on: set http_port in {} or pass --listen ADDR:PORT", file.display())]
    NoAddress { file: PathBuf },
    #[error("cannot start the server's runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("cannot handle signals: {0}")]
    Signals(#[source] io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// Runs the server until SIGINT or SIGTERM. Prints `listening on
/// http://ADDR` on stdout once it accepts connections.
pub fn run(config: &Config, listen: Option<SocketAddr>, output: &Output) -> Result<(), ServeError> {
    let addr = listen
        .or_else(|| config.http_port.map(|port| SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))))
        .ok_or_else(|| ServeError::NoAddress { file: config.file.clone() })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("helio-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    let result = runtime.block_on(serve(config, addr, listen.is_none(), output));
    // Fetches still running on the blocking pool end by their own timeouts;
    // nobody is waiting for them any more.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(config: &Config, addr: SocketAddr, default_addr: bool, output: &Output) -> Result<(), ServeError> {
    // Before anything is announced, so that a signal sent as soon as the
    // address is printed is handled, not fatal.
    let mut signals = Signals::new().map_err(ServeError::Signals)?;
    let listener = bind(addr, default_addr).map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    if config.https_port.is_some() || config.tls_cert.is_some() || config.tls_key.is_some() {
        tracing::info!(
            "https_port, tls_cert and tls_key are ignored: helio serve speaks plain HTTP; \
             put a reverse proxy or CDN in front of it for TLS"
        );
    }
    if !config.torrent_dir.is_dir() {
        tracing::warn!(
            "{} does not exist yet: /torrents/ answers 404 until helio build writes it",
            config.torrent_dir.display()
        );
    }
    let app = Arc::new(app(config));
    tracing::info!(
        "webseed for {} log{} with a {} MiB tile cache; /torrents/ is {}",
        config.logs.len(),
        if config.logs.len() == 1 { "" } else { "s" },
        config.cache_mb,
        config.torrent_dir.display()
    );
    output.result(&format!("listening on http://{local}"));

    let (shutdown, shutdown_seen) = watch::channel(false);
    let (open, mut drained) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => connection(stream, Arc::clone(&app), shutdown_seen.clone(), open.clone()),
                Err(error) => {
                    // Out of file descriptors, most likely: let connections close.
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = signals.recv() => break,
        }
    }
    drop(listener);
    let pending = app.stats.connections_open.load(Ordering::Relaxed);
    tracing::info!(
        "stopping: finishing the responses of {pending} open connection{}",
        if pending == 1 { "" } else { "s" }
    );
    shutdown.send_replace(true);
    drop(open);
    tokio::select! {
        _ = drained.recv() => tracing::info!("stopped"),
        () = tokio::time::sleep(DRAIN_LIMIT) => tracing::warn!("stopped with responses still under way after {}s", DRAIN_LIMIT.as_secs()),
        () = signals.recv() => tracing::warn!("stopped at a second signal, with responses still under way"),
    }
    Ok(())
}

/// The shared state of the server, from the config.
fn app(config: &Config) -> App {
    let log_stats: Vec<Arc<LogStats>> = config.logs.iter().map(|log| Arc::new(LogStats::new(&log.name))).collect();
    let stats = Arc::new(Stats::new(log_stats.clone()));
    let logs = config
        .logs
        .iter()
        .zip(log_stats)
        .map(|(log, stats)| {
            let readme = Bytes::from(log.profile.readme(&log.log_url));
            ServedLog { name: log.name.clone(), readme_etag: etag_of(&readme), readme, stats }
        })
        .collect();
    let cache = TileCache::new(config.cache_mb.saturating_mul(1 << 20));
    let upstream = Upstream::new(&config.logs, config.contact.as_deref());
    let files = StaticFiles::new(&config.torrent_dir, Arc::clone(&stats.static_bytes));
    App::new(logs, cache, upstream, files, stats)
}

/// Binds with a long backlog. The default `[::]` falls back to `0.0.0.0` on
/// hosts without IPv6.
fn bind(addr: SocketAddr, default_addr: bool) -> io::Result<TcpListener> {
    let listen = |addr: SocketAddr| {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    };
    match listen(addr) {
        Err(error) if default_addr && error.kind() != io::ErrorKind::AddrInUse => {
            listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()))).map_err(|_| error)
        }
        result => result,
    }
}

/// Serves one connection on its own task until it closes or shutdown has
/// let its current response finish. `_open` is held until then.
fn connection(stream: TcpStream, app: Arc<App>, mut shutdown: watch::Receiver<bool>, open: mpsc::Sender<()>) {
    let stats = Arc::clone(&app.stats);
    let count = stats.connections_open.fetch_add(1, Ordering::Relaxed) + 1;
    stats.connections_total.fetch_add(1, Ordering::Relaxed);
    let overloaded = count > MAX_CONNECTIONS;
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let _open = open;
        let _counted = Counted(Arc::clone(&stats));
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            async move {
                if overloaded {
                    app.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                    let mut reply = response::unavailable("too many connections", OVERLOAD_RETRY);
                    reply.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return Ok::<_, Infallible>(reply);
                }
                Ok(app.handle(request).await)
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            // Pipelined requests are answered in order all the same; hyper's
            // `pipeline_flush` would copy every body into its write buffer.
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!("connection ended: {error}");
                }
            }
            () = async { drop(shutdown.wait_for(|&stopping| stopping).await) } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
}

/// Decrements the open-connection gauge however the task ends.
struct Counted(Arc<Stats>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// SIGINT and SIGTERM.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    #[cfg(not(unix))]
    fn new() -> io::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
