//! `helio serve`: the WebSeed (BEP 19) server that hands a torrent's bytes to
//! BitTorrent clients by proxying and caching the log, and serves the output
//! directory (docs/spec.md §6).
//!
//! The server itself — HTTP and HTTPS listeners, connection limits, header
//! timeout, graceful shutdown, certificate reload — is [`crate::http`];
//! this module holds what is the WebSeed's own: its routes, the tile cache
//! and its memory budget, the upstream fetches and the statistics.

pub mod routes;
pub mod static_files;
pub mod stats;
pub mod upstream;

use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;

use crate::config::Config;
use crate::http::{ConnectionStats, Limits, ListenAddr, Server, ServerConfig, ServerError, TlsFiles};
use crate::output::Output;
use crate::store::{Target, TargetError};
use crate::tile_cache::{TileCache, TileMemory, etag_of};
use routes::{App, ServedLog};
use static_files::StaticFiles;
use stats::{LogStats, Stats};
use upstream::Upstream;

/// Why the server could not start (exit status 2; once it runs, it only
/// stops at a signal).
#[derive(Debug, Error)]
pub enum ServeError {
    #[error(
        "no address to listen on: set http_port or https_port in {}, or pass --listen ADDR:PORT",
        file.display()
    )]
    NoAddress { file: PathBuf },
    #[error("HTTPS needs both tls_cert and tls_key in {}", file.display())]
    NoCertificate { file: PathBuf },
    #[error(
        "{url} is a bucket: helio serve serves a folder under /torrents/; serve the bucket from its own \
         endpoint or a CDN, and helio serve for the WebSeed alone"
    )]
    Bucket { url: String },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("cannot start the server's runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// What `helio serve` was asked for beyond the config.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// The folder served under `/torrents/`, as `helio build` takes it.
    pub out_dir: Option<PathBuf>,
    /// Where to listen for HTTP instead of `[::]:<http_port>`.
    pub listen: Option<SocketAddr>,
    /// Where to listen for HTTPS instead of `[::]:<https_port>`.
    pub listen_https: Option<SocketAddr>,
}

/// Runs the server until SIGINT or SIGTERM. Prints `listening on
/// http://ADDR` (and `listening on https://ADDR`) on stdout once it accepts
/// connections.
pub fn run(config: &Config, options: &ServeOptions, output: &Output) -> Result<(), ServeError> {
    let server_config = server_config(config, options)?;
    let site = site_dir(config, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("helio-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    let result = runtime.block_on(serve(config, server_config, &site, output));
    // Fetches still running on the blocking pool end by their own timeouts;
    // nobody is waiting for them any more.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The folder served under `/torrents/`: `OUT_DIR` as `helio build` takes
/// it (so that both commands given the same argument use the same folder),
/// else `torrent_dir`.
fn site_dir(config: &Config, options: &ServeOptions) -> Result<PathBuf, ServeError> {
    let Some(out_dir) = &options.out_dir else { return Ok(config.torrent_dir.clone()) };
    let target = match out_dir.to_str() {
        Some(text) => Target::parse(text, None)?,
        None => Target::Dir(out_dir.clone()),
    };
    match target {
        Target::Dir(path) => Ok(path),
        Target::S3(url) => Err(ServeError::Bucket { url: url.to_string() }),
    }
}

/// The addresses (`--listen`, `--listen-https`, else `[::]` and the
/// config's ports) and the certificate.
fn server_config(config: &Config, options: &ServeOptions) -> Result<ServerConfig, ServeError> {
    let listen = |flag: Option<SocketAddr>, port: Option<u16>| match flag {
        Some(addr) => Some(ListenAddr { addr, ipv4_fallback: false }),
        None => {
            port.map(|port| ListenAddr { addr: SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), ipv4_fallback: true })
        }
    };
    let http = listen(options.listen, config.http_port);
    let https = match listen(options.listen_https, config.https_port) {
        Some(addr) => match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some((addr, TlsFiles { cert: cert.clone(), key: key.clone() })),
            _ => return Err(ServeError::NoCertificate { file: config.file.clone() }),
        },
        None => {
            if config.tls_cert.is_some() || config.tls_key.is_some() {
                tracing::warn!("tls_cert and tls_key are unused: set https_port to serve HTTPS");
            }
            None
        }
    };
    if http.is_none() && https.is_none() {
        return Err(ServeError::NoAddress { file: config.file.clone() });
    }
    let mut limits = Limits::default();
    if let Some(per_client) = config.max_connections_per_client {
        limits.max_per_client = if per_client == 0 { usize::MAX } else { per_client };
    }
    Ok(ServerConfig { http, https, limits })
}

async fn serve(config: &Config, server_config: ServerConfig, site: &Path, output: &Output) -> Result<(), ServeError> {
    let server = Server::bind(server_config)?;
    if !site.is_dir() {
        tracing::warn!("{} does not exist yet: /torrents/ answers 404 until helio build writes it", site.display());
    }
    let app = Arc::new(app(config, site, server.connection_stats()));
    let limits = server.limits();
    tracing::info!(
        "webseed for {} log{} with a {} MiB tile cache ({} MiB of tile memory in all); /torrents/ is {}; \
         at most {} connections, {} per client",
        config.logs.len(),
        if config.logs.len() == 1 { "" } else { "s" },
        config.cache_mb,
        app.tile_memory_limit() >> 20,
        site.display(),
        limits.max_connections,
        limits.max_per_client,
    );
    if let Some(addr) = server.http_addr() {
        output.result(&format!("listening on http://{addr}"));
    }
    if let Some(addr) = server.https_addr() {
        output.result(&format!("listening on https://{addr}"));
    }
    server.run(app).await;
    Ok(())
}

/// The shared state of the server, from the config.
fn app(config: &Config, site: &Path, connections: Arc<ConnectionStats>) -> App {
    let log_stats: Vec<Arc<LogStats>> = config.logs.iter().map(|log| Arc::new(LogStats::new(&log.name))).collect();
    let stats = Arc::new(Stats::new(log_stats.clone(), connections));
    let logs = config
        .logs
        .iter()
        .zip(log_stats)
        .map(|(log, stats)| {
            let readme = Bytes::from(log.profile.readme(&log.log_url));
            ServedLog {
                name: log.name.clone(),
                readme_etag: etag_of(&readme),
                readme,
                stats,
                is_final: log.is_final,
                entries_per_torrent: log.entries_per_torrent,
            }
        })
        .collect();
    let cache_bytes = config.cache_mb.saturating_mul(1 << 20);
    let cache = TileCache::new(cache_bytes, TileMemory::for_cache(cache_bytes));
    let upstream = Upstream::new(&config.logs, config.contact.as_deref());
    let files = StaticFiles::new(site, Arc::clone(&stats.static_bytes));
    App::new(logs, cache, upstream, files, stats)
}
