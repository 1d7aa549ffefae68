//! `helio mirror PATH… --site URL_OR_DIR [--key KEY] [--origin ORIGIN]
//! [--upstream LOG_URL] [--listen ADDR:PORT]`: serves downloaded ranges back
//! as the monitoring prefix of a Static CT log (C2SP static-ct-api), so that
//! existing monitors can read them.
//!
//! At startup it does what `helio verify` does: the site's checkpoint (its
//! signature checked with `--key`), its right edge and proof tiles, and every
//! downloaded range, file by file, against the RFC 6962 root; any failure
//! stops it, naming the file (exit 1). Only then does it listen. Each tile is
//! authenticated again when it is read into the cache ([`tiles`]), and tiles
//! the downloads do not hold come from the site's proof tiles or, with
//! `--upstream`, from the log itself, checked against the same tree before
//! they are served. Routes and hardening are [`routes`] on top of the shared
//! server in [`crate::http`].

pub mod routes;
pub mod tiles;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use super::verify::{self, RangeVerifyError, VerifyOptions};
use crate::http::{Limits, ListenAddr, Server, ServerConfig, ServerError};
use crate::log::host::{HostGate, host_key};
use crate::log::source::{Location, LogSource, http_agent_within};
use crate::output::Output;
use crate::tile_cache::{self, TileCache, TileMemory, WAIT_SLACK};
use crate::torrent::proof::proof_tiles;
use routes::Mirror;
use tiles::MirrorTiles;

/// The port `helio mirror` listens on without `--listen`.
pub const DEFAULT_PORT: u16 = 8080;
/// Requests to the upstream at once.
const UPSTREAM_CONCURRENCY: usize = 8;

/// What `helio mirror` was asked to do.
#[derive(Clone, Debug)]
pub struct MirrorOptions {
    /// The ranges, the site, the key and the origin, as for `helio verify`.
    pub verify: VerifyOptions,
    /// The log's monitoring prefix, for what the downloads do not hold.
    pub upstream: Option<String>,
    pub listen: Option<SocketAddr>,
    /// The tile cache, in MiB.
    pub cache_mb: u64,
}

/// Why the mirror did not start (once it runs, it only stops at a signal).
#[derive(Debug, Error)]
pub enum MirrorError {
    #[error("--upstream {text:?}: {message}")]
    Upstream { text: String, message: String },
    #[error(transparent)]
    Verify(#[from] RangeVerifyError),
    #[error("cannot start the server's runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl MirrorError {
    /// Bad arguments or a server that cannot start, as opposed to something
    /// that did not verify.
    pub fn is_usage(&self) -> bool {
        match self {
            MirrorError::Verify(error) => error.is_usage(),
            _ => true,
        }
    }
}

/// Proves the ranges, then serves them until SIGINT or SIGTERM. Prints one
/// line per range verified, then `listening on http://ADDR` once it accepts
/// connections.
pub fn run(options: &MirrorOptions, output: &Output) -> Result<(), MirrorError> {
    let upstream = options.upstream.as_deref().map(upstream_source).transpose()?;
    let opened = verify::open(&options.verify)?;
    let mut level1 = HashMap::new();
    let mut torrents = Vec::new();
    for checked in verify::check_ranges(&opened, output)? {
        level1.extend(checked.level1);
        torrents.push(checked.torrent);
    }
    let ranges: Vec<_> = opened.folders.iter().map(|folder| folder.range).collect();
    let proof = proof_tiles(opened.checkpoint.size, &ranges);
    let cache_bytes = options.cache_mb.saturating_mul(1 << 20);
    let memory = TileMemory::for_cache(cache_bytes);
    let origin = opened.checkpoint.origin.clone();
    let checkpoint = opened.checkpoint_text;
    let downloads = opened.folders.iter().cloned().zip(torrents).collect();
    let tiles = MirrorTiles::new(opened.tree, proof, downloads, level1, upstream, Arc::clone(&memory));
    let wait = tile_cache::policy().budget + WAIT_SLACK;
    let mirror = Mirror::new(Arc::new(tiles), TileCache::new(cache_bytes, memory), checkpoint, origin, wait);

    let listen = match options.listen {
        Some(addr) => ListenAddr { addr, ipv4_fallback: false },
        None => ListenAddr { addr: SocketAddr::from((Ipv6Addr::UNSPECIFIED, DEFAULT_PORT)), ipv4_fallback: true },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("helio-mirror")
        .build()
        .map_err(MirrorError::Runtime)?;
    let config = ServerConfig { http: Some(listen), https: None, limits: Limits::default() };
    let result = runtime.block_on(async {
        let server = Server::bind(config)?;
        if let Some(addr) = server.http_addr() {
            output.result(&format!("listening on http://{addr}"));
        }
        server.run(Arc::new(mirror)).await;
        Ok(())
    });
    // Reads still running on the blocking pool end by their own timeouts.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The upstream log: its monitoring prefix (or a folder laid out so), at
/// most [`UPSTREAM_CONCURRENCY`] requests at once.
fn upstream_source(text: &str) -> Result<LogSource, MirrorError> {
    let fail = |message: String| MirrorError::Upstream { text: text.to_string(), message };
    let location = Location::parse(text, Path::new("")).map_err(fail)?;
    if let Location::Dir(dir) = &location
        && !dir.is_dir()
    {
        return Err(fail("no such folder".into()));
    }
    let policy = tile_cache::policy();
    let agent = http_agent_within(None, UPSTREAM_CONCURRENCY, Some(policy.budget));
    let gate = match &location {
        Location::Http(url) => Some(Arc::new(HostGate::new(&host_key(url), UPSTREAM_CONCURRENCY))),
        Location::Dir(_) => None,
    };
    Ok(LogSource::new(&location, &agent, policy).with_gate(gate).with_notice("upstream"))
}
