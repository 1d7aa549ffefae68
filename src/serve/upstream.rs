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

use tokio::sync::{Semaphore, watch};

use super::stats::LogStats;
use crate::config::LogConfig;
use crate::log::source::{LogSource, http_agent_within};
use crate::log::tile::TileId;
use crate::tile_cache::{
    Flight, FlightResult, QUEUE_PER_PERMIT, Tile, TileMemory, UpstreamError, WAIT_SLACK, fetch, policy,
};

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
