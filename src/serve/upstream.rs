//! Fetching tiles from the logs for the WebSeed.
//!
//! The fetch itself is [`LogSource::fetch`]: blocking `ureq` with retries,
//! backoff, `Retry-After` and gzip decoding, run on tokio's blocking pool
//! through one pooled agent shared by every log. Each log gets at most its
//! `concurrency` fetches at once (the same politeness as `helio build`), and
//! at most [`QUEUE_PER_PERMIT`] times that many tiles waiting, past which
//! misses are refused with 503 rather than queued without end.
//!
//! A fetch runs as its own task: a client that hangs up does not cancel it,
//! and its tile still lands in the cache. Clients wait at most the retry
//! budget plus a little, then get 504.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::{Semaphore, watch};

use super::cache::{Flight, FlightResult, Tile};
use super::memory::TileMemory;
use super::stats::LogStats;
use crate::config::LogConfig;
use crate::log::body::BodyLimit;
use crate::log::source::{BodyKind, FetchError, LogSource, RetryPolicy, http_agent_within};
use crate::log::tile::{FULL_HASH_TILE_BYTES, HASH_SIZE, Level, TILE_WIDTH, TileId};
use crate::log::tile_leaf;

/// The largest full data tile accepted, decoded: 256 entries of a few KB
/// each make a few hundred KB (real ones: 400–650 KB); past this, a tile is
/// a log fault or a decompression bomb, refused the moment it inflates
/// beyond it. A full hash tile is exactly [`FULL_HASH_TILE_BYTES`].
pub const MAX_DATA_TILE: u64 = 8 << 20;
/// Tiles allowed to wait per permit of a log's concurrency.
pub const QUEUE_PER_PERMIT: usize = 16;
/// What an overloaded server asks clients to wait.
pub const OVERLOAD_RETRY: Duration = Duration::from_secs(5);
/// The retry budget of one tile when `HELIO_RETRY_BUDGET` does not set it: a
/// BitTorrent client is waiting, so this is far shorter than a build's.
const SERVE_BUDGET: Duration = Duration::from_secs(20);
/// How much longer than the budget a client waits before its 504.
pub(crate) const WAIT_SLACK: Duration = Duration::from_secs(2);

/// Why a tile could not be had. Clone, since every waiting request gets it.
#[derive(Clone, Debug, Error)]
pub enum UpstreamError {
    /// The log has no such tile (404).
    #[error("not found")]
    NotFound,
    /// 502.
    #[error("{0}")]
    Failed(String),
    /// 504.
    #[error("{0}")]
    Timeout(String),
    /// The log asked for a pause longer than a client should wait: 503 with
    /// its `Retry-After`.
    #[error("{message}")]
    RetryLater { message: String, after: Duration },
    /// Too much is being fetched already: 503.
    #[error("overloaded")]
    Overloaded,
}

impl UpstreamError {
    pub(crate) fn from_fetch(error: FetchError) -> UpstreamError {
        let message = error.to_string();
        match error {
            FetchError::NotFound { .. } => UpstreamError::NotFound,
            FetchError::OverBudget { .. } => UpstreamError::Overloaded,
            FetchError::RetryAfterTooLong { wait, .. } => UpstreamError::RetryLater { message, after: wait },
            ref error if error.is_timeout() => UpstreamError::Timeout(message),
            _ => UpstreamError::Failed(message),
        }
    }
}

/// One log's source and its share of upstream politeness.
struct LogUpstream {
    source: LogSource,
    permits: Arc<Semaphore>,
    queue_limit: usize,
}

pub struct Upstream {
    logs: Vec<LogUpstream>,
    /// How long a request waits for a tile before its 504.
    wait: Duration,
}

impl Upstream {
    /// Sources for `logs`, in config order, sharing one agent.
    pub fn new(logs: &[LogConfig], contact: Option<&str>) -> Upstream {
        let policy = policy();
        let agent = http_agent_within(contact, logs.iter().map(|log| log.concurrency).sum(), Some(policy.budget));
        let logs = logs
            .iter()
            .map(|log| LogUpstream {
                source: LogSource::new(&log.location, &agent, policy),
                permits: Arc::new(Semaphore::new(log.concurrency)),
                queue_limit: log.concurrency * QUEUE_PER_PERMIT,
            })
            .collect();
        Upstream { logs, wait: policy.budget + WAIT_SLACK }
    }

    /// How many tiles of log `index` may be fetched or waiting at once.
    pub fn queue_limit(&self, index: usize) -> usize {
        self.logs.get(index).map_or(0, |log| log.queue_limit)
    }

    /// Starts the fetch of `tile` on its own task; `flight` delivers the result.
    pub fn start(&self, index: usize, tile: TileId, flight: Flight, stats: Arc<LogStats>, memory: Arc<TileMemory>) {
        let Some(log) = self.logs.get(index) else { return };
        let source = log.source.clone();
        let permits = Arc::clone(&log.permits);
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return flight.complete(Err(UpstreamError::Failed("shutting down".into())));
            };
            stats.upstream_fetches.fetch_add(1, Ordering::Relaxed);
            let fetched = tokio::task::spawn_blocking(move || fetch(&source, tile, memory)).await;
            let result = fetched.unwrap_or_else(|e| Err(UpstreamError::Failed(format!("fetch task failed: {e}"))));
            match &result {
                Ok(_) => {}
                Err(UpstreamError::NotFound) => {
                    stats.upstream_not_found.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("log {}: {tile}: not found", stats.name);
                }
                Err(error) => {
                    stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("log {}: {tile}: {error}", stats.name);
                }
            }
            flight.complete(result);
        });
    }

    /// Waits for a fetch to end, at most the retry budget plus a little.
    pub async fn wait(&self, mut result: watch::Receiver<FlightResult>) -> Result<Tile, UpstreamError> {
        let waited = tokio::time::timeout(self.wait, result.wait_for(Option::is_some)).await;
        match waited {
            Err(_) => Err(UpstreamError::Timeout(format!("no answer within {}s", self.wait.as_secs()))),
            Ok(Err(_)) => Err(UpstreamError::Failed("the fetch was abandoned".into())),
            Ok(Ok(outcome)) => outcome.clone().unwrap_or_else(|| Err(UpstreamError::Failed("no result".into()))),
        }
    }
}

/// `HELIO_RETRY_BUDGET` if set, else a budget a waiting client can bear.
pub(crate) fn policy() -> RetryPolicy {
    if std::env::var_os("HELIO_RETRY_BUDGET").is_some() {
        return RetryPolicy::from_env();
    }
    RetryPolicy {
        first_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(5),
        budget: SERVE_BUDGET,
        unreachable_budget: SERVE_BUDGET,
    }
}

/// Fetches, decodes and checks one full tile (blocking), its buffers and
/// bytes charged to `memory`.
fn fetch(source: &LogSource, tile: TileId, memory: Arc<TileMemory>) -> Result<Tile, UpstreamError> {
    let path = tile.path();
    let (kind, max) = match tile.level {
        Level::Data => (BodyKind::Sniffable, MAX_DATA_TILE),
        Level::Hash(_) => (BodyKind::Opaque, FULL_HASH_TILE_BYTES as u64),
    };
    let limit = BodyLimit::within(max, memory);
    let body = source.fetch_within(&path, kind, &limit).map_err(UpstreamError::from_fetch)?;
    let url = source.describe(&path);
    check_shape(tile, &body).map_err(|why| UpstreamError::Failed(format!("{url}: {why}")))?;
    // Full tiles never change (tlog-tiles), so where they come from names
    // their bytes: no need to hash the whole tile on every miss.
    Ok(Tile { etag: etag_of(url.as_bytes()), bytes: body })
}

/// A full tile has a known shape; anything else (an error page answered with
/// 200, a partial tile) would only make clients fail their piece checks.
fn check_shape(tile: TileId, body: &[u8]) -> Result<(), String> {
    let width = u64::from(tile.width);
    match tile.level {
        Level::Hash(_) if body.len() as u64 != width * HASH_SIZE as u64 => {
            Err(format!("a hash tile of width {width} has {} bytes, not {}", width * HASH_SIZE as u64, body.len()))
        }
        Level::Hash(_) => Ok(()),
        Level::Data => {
            let first = tile.index * TILE_WIDTH;
            let mut count = 0u64;
            for entry in tile_leaf::entries(body) {
                let entry = entry.map_err(|(offset, problem)| format!("entry {count} at byte {offset}: {problem}"))?;
                if entry.leaf_index != first + count {
                    return Err(format!("entry {count} has leaf index {}", entry.leaf_index));
                }
                count += 1;
            }
            if count == width { Ok(()) } else { Err(format!("{count} entries, not {width}")) }
        }
    }
}

/// A strong ETag from what identifies a representation (its content, or
/// for an immutable tile its source URL): stable across restarts.
pub fn etag_of(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::generate::{LogSpec, write_log};
    use crate::log::source::Location;

    #[test]
    fn timeouts_are_told_from_other_failures() {
        let timeout = FetchError::Network {
            url: "http://x/tile/data/000".into(),
            kind: crate::log::http::NetworkKind::Timeout,
            message: "timeout: receive response".into(),
            attempts: 2,
            elapsed: Duration::from_secs(3),
        };
        assert!(matches!(UpstreamError::from_fetch(timeout), UpstreamError::Timeout(m) if m.contains("http://x/")));
        let refused = FetchError::Network {
            url: "u".into(),
            kind: crate::log::http::NetworkKind::Refused,
            message: "io: Connection refused".into(),
            attempts: 2,
            elapsed: Duration::ZERO,
        };
        assert!(matches!(UpstreamError::from_fetch(refused), UpstreamError::Failed(_)));
        let later = FetchError::RetryAfterTooLong {
            url: "u".into(),
            status: 503,
            wait: Duration::from_secs(90),
            budget: Duration::from_secs(20),
        };
        assert!(
            matches!(UpstreamError::from_fetch(later), UpstreamError::RetryLater { after, .. } if after.as_secs() == 90)
        );
        assert!(matches!(UpstreamError::from_fetch(FetchError::NotFound { url: "u".into() }), UpstreamError::NotFound));
    }

    #[test]
    fn tiles_of_the_wrong_shape_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = LogSpec { origin: "o".into(), seed: 3, size: 600, gzip_data_tiles: true };
        write_log(dir.path(), &spec).unwrap();
        let agent = http_agent_within(None, 1, Some(Duration::from_secs(1)));
        let source = LogSource::new(&Location::Dir(dir.path().into()), &agent, RetryPolicy::default());
        let memory = TileMemory::new(1 << 20);
        for tile in [TileId::data(1), TileId::hash(0, 1)] {
            let fetched = fetch(&source, tile, Arc::clone(&memory)).unwrap();
            assert_eq!(fetched.etag, etag_of(source.describe(&tile.path()).as_bytes()));
            assert_ne!(fetched.etag, etag_of(source.describe("tile/data/000").as_bytes()));
        }
        // Data tile 1 where tile 0 is asked for: the leaf indexes give it away.
        std::fs::copy(dir.path().join("tile/data/001"), dir.path().join("tile/data/000")).unwrap();
        let error = fetch(&source, TileId::data(0), Arc::clone(&memory)).unwrap_err().to_string();
        assert!(error.contains("tile/data/000: entry 0 has leaf index 256"), "{error}");
        std::fs::write(dir.path().join("tile/0/000"), [0; 100]).unwrap();
        let error = fetch(&source, TileId::hash(0, 0), Arc::clone(&memory)).unwrap_err().to_string();
        assert!(error.contains("a hash tile of width 256 has 8192 bytes, not 100"), "{error}");
        assert!(matches!(fetch(&source, TileId::data(2), Arc::clone(&memory)), Err(UpstreamError::NotFound)));
    }

    #[test]
    fn bombs_are_refused_as_soon_as_they_pass_the_largest_tile_and_memory_is_given_back() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tile/data")).unwrap();
        std::fs::create_dir_all(dir.path().join("tile/0")).unwrap();
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        bomb.write_all(&vec![0; 16 << 20]).unwrap();
        std::fs::write(dir.path().join("tile/data/000"), bomb.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("tile/0/000"), [0; 9000]).unwrap();
        let agent = http_agent_within(None, 1, Some(Duration::from_secs(1)));
        let source = LogSource::new(&Location::Dir(dir.path().into()), &agent, RetryPolicy::default());

        let memory = TileMemory::new(64 << 20);
        let error = fetch(&source, TileId::data(0), Arc::clone(&memory)).unwrap_err().to_string();
        assert!(error.ends_with("tile/data/000: body is larger than 8388608 bytes"), "{error}");
        let error = fetch(&source, TileId::hash(0, 0), Arc::clone(&memory)).unwrap_err().to_string();
        assert!(error.ends_with("tile/0/000: body is larger than 8192 bytes"), "{error}");
        assert_eq!(memory.used(), 0);
        // Within a budget smaller than that, the same bomb is overload (503), not a failure.
        let small = TileMemory::new(1 << 20);
        assert!(matches!(fetch(&source, TileId::data(0), Arc::clone(&small)), Err(UpstreamError::Overloaded)));
        assert_eq!(small.used(), 0);
    }
}
