//! The tile cache (of `helio serve`, and of `helio mirror`): decoded tiles in memory, least recently used first
//! out, bounded in bytes (`cache_mb`), plus the fetches in flight so that
//! concurrent misses for one tile share one upstream request, plus the
//! tiles the log said it does not have, remembered for [`NOT_FOUND_TTL`] so
//! that a client asking again and again costs the log one request.
//!
//! All of it lives under one lock, so a request either finds the tile (or
//! its recent 404), joins the fetch already under way, or starts the one
//! fetch: no window lets two fetches of one tile start. Tile bytes are
//! charged to the [`TileMemory`] budget for as long as they live, cached or
//! not; when it is nearly spent, new misses are refused (503) instead of
//! growing memory without bound.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use tokio::sync::watch;

use super::error::UpstreamError;
use super::memory::TileMemory;
use crate::log::tile::TileId;

/// A tile of a log: the log's index in the config, and the tile.
pub type LogTile = (usize, TileId);

/// What the cache can be keyed by: anything that says which group (which
/// log, for the WebSeed) it belongs to, since fetches are limited per group.
pub trait CacheKey: Copy + Eq + std::hash::Hash + Send + Sync + 'static {
    fn group(&self) -> usize;
}

impl CacheKey for LogTile {
    fn group(&self) -> usize {
        self.0
    }
}

/// A decoded full tile and its ETag.
#[derive(Clone, Debug)]
pub struct Tile {
    pub bytes: Bytes,
    pub etag: HeaderValue,
}

/// What a fetch ends with: `None` while it runs.
pub type FlightResult = Option<Result<Tile, UpstreamError>>;

/// How long the log's 404 for a tile is believed. Published torrents only
/// name tiles the log has, so a 404 is a client probing or a log in
/// trouble; either way, asking again within seconds only adds load.
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(10);
/// Remembered 404s at most (a few MB at worst).
const MAX_NOT_FOUND: usize = 16_384;
/// A miss starts a fetch only if this much tile memory is left.
const MIN_FREE_FOR_FETCH: u64 = 1 << 20;

/// What [`TileCache::lookup`] found.
pub enum Lookup<K: CacheKey = LogTile> {
    Hit(Tile),
    /// The log answered 404 for it moments ago.
    NotFound,
    /// Wait for `result`; with a `flight`, this request must start the fetch.
    Wait {
        result: watch::Receiver<FlightResult>,
        flight: Option<Flight<K>>,
    },
    /// Too many fetches for this log, or too much tile memory alive: 503.
    Overloaded,
}

/// Counters for the statistics pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub bytes: u64,
    pub limit: u64,
    pub entries: u64,
    /// Tile bytes alive anywhere: cached, being sent, being fetched.
    pub held: u64,
    pub held_limit: u64,
    pub evictions: u64,
    pub in_flight: u64,
    /// Tiles remembered as missing from the log.
    pub not_found: u64,
}

pub struct TileCache<K: CacheKey = LogTile> {
    state: Mutex<State<K>>,
    limit: u64,
    memory: Arc<TileMemory>,
}

struct State<K> {
    lru: Lru<K>,
    flights: HashMap<K, watch::Receiver<FlightResult>>,
    /// Fetches in flight per log.
    per_log: HashMap<usize, usize>,
    /// Tiles the log answered 404 for, and until when that is believed.
    not_found: HashMap<K, Instant>,
}

impl<K: CacheKey> TileCache<K> {
    /// A cache of at most `limit` bytes of tiles, whose bytes are charged to `memory`.
    pub fn new(limit: u64, memory: Arc<TileMemory>) -> Arc<TileCache<K>> {
        let state =
            State { lru: Lru::new(limit), flights: HashMap::new(), per_log: HashMap::new(), not_found: HashMap::new() };
        Arc::new(TileCache { state: Mutex::new(state), limit, memory })
    }

    /// The budget fetches charge their buffers to.
    pub fn memory(&self) -> Arc<TileMemory> {
        Arc::clone(&self.memory)
    }

    fn state(&self) -> MutexGuard<'_, State<K>> {
        // A panic while holding the lock cannot leave the maps inconsistent
        // in a way that matters more than losing the server.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Finds `key`, joins its fetch, or (if `max_flights` fetches for its log
    /// are not already under way and memory allows) makes the caller start it.
    pub fn lookup(self: &Arc<Self>, key: K, max_flights: usize) -> Lookup<K> {
        let mut state = self.state();
        if let Some(tile) = state.lru.get(&key) {
            return Lookup::Hit(tile);
        }
        match state.not_found.get(&key) {
            Some(until) if *until > Instant::now() => return Lookup::NotFound,
            Some(_) => drop(state.not_found.remove(&key)),
            None => {}
        }
        if let Some(result) = state.flights.get(&key) {
            return Lookup::Wait { result: result.clone(), flight: None };
        }
        let running = state.per_log.get(&key.group()).copied().unwrap_or(0);
        if running >= max_flights || self.memory.available() < MIN_FREE_FOR_FETCH {
            return Lookup::Overloaded;
        }
        let (sender, result) = watch::channel(None);
        state.flights.insert(key, result.clone());
        *state.per_log.entry(key.group()).or_insert(0) += 1;
        Lookup::Wait { result, flight: Some(Flight { cache: Arc::clone(self), key, sender: Some(sender) }) }
    }

    pub fn stats(&self) -> CacheStats {
        let state = self.state();
        CacheStats {
            bytes: state.lru.bytes,
            limit: self.limit,
            entries: state.lru.entries.len() as u64,
            held: self.memory.used(),
            held_limit: self.memory.limit(),
            evictions: state.lru.evictions,
            in_flight: state.flights.len() as u64,
            not_found: state.not_found.len() as u64,
        }
    }

    fn land(&self, key: K, result: &Result<Tile, UpstreamError>) {
        let mut state = self.state();
        match result {
            Ok(tile) => state.lru.insert(key, tile.clone()),
            Err(UpstreamError::NotFound) => state.remember_not_found(key),
            Err(_) => {}
        }
        state.flights.remove(&key);
        if let Some(count) = state.per_log.get_mut(&key.group()) {
            *count = count.saturating_sub(1);
        }
    }
}

impl<K: CacheKey> State<K> {
    fn remember_not_found(&mut self, key: K) {
        let now = Instant::now();
        if self.not_found.len() >= MAX_NOT_FOUND {
            self.not_found.retain(|_, until| *until > now);
        }
        if self.not_found.len() < MAX_NOT_FOUND {
            self.not_found.insert(key, now + NOT_FOUND_TTL);
        }
    }
}

/// The duty to fetch one tile. Completing it caches the tile and wakes every
/// request waiting for it; dropping it unfinished fails them instead of
/// leaving them hanging.
pub struct Flight<K: CacheKey = LogTile> {
    cache: Arc<TileCache<K>>,
    key: K,
    sender: Option<watch::Sender<FlightResult>>,
}

impl<K: CacheKey> Flight<K> {
    pub fn complete(mut self, result: Result<Tile, UpstreamError>) {
        self.finish(result);
    }

    fn finish(&mut self, result: Result<Tile, UpstreamError>) {
        let Some(sender) = self.sender.take() else { return };
        self.cache.land(self.key, &result);
        sender.send_replace(Some(result));
    }
}

impl<K: CacheKey> Drop for Flight<K> {
    fn drop(&mut self) {
        self.finish(Err(UpstreamError::Failed("the fetch was abandoned".into())));
    }
}

/// Least-recently-used map bounded by the total length of its tiles.
struct Lru<K> {
    entries: HashMap<K, Slot>,
    /// Last use → key, oldest first.
    order: BTreeMap<u64, K>,
    tick: u64,
    bytes: u64,
    limit: u64,
    evictions: u64,
}

struct Slot {
    tile: Tile,
    used: u64,
}

impl<K: CacheKey> Lru<K> {
    fn new(limit: u64) -> Lru<K> {
        Lru { entries: HashMap::new(), order: BTreeMap::new(), tick: 0, bytes: 0, limit, evictions: 0 }
    }

    fn get(&mut self, key: &K) -> Option<Tile> {
        let slot = self.entries.get_mut(key)?;
        self.tick += 1;
        self.order.remove(&slot.used);
        slot.used = self.tick;
        self.order.insert(self.tick, *key);
        Some(slot.tile.clone())
    }

    /// Adds a tile, evicting the least recently used until it fits. A tile
    /// larger than the whole cache is not kept.
    fn insert(&mut self, key: K, tile: Tile) {
        let size = tile.bytes.len() as u64;
        if size > self.limit {
            return;
        }
        if let Some(old) = self.entries.remove(&key) {
            self.order.remove(&old.used);
            self.bytes -= old.tile.bytes.len() as u64;
        }
        while self.bytes + size > self.limit {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(slot) = self.entries.remove(&oldest) {
                self.bytes -= slot.tile.bytes.len() as u64;
                self.evictions += 1;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, key);
        self.entries.insert(key, Slot { tile, used: self.tick });
        self.bytes += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::log::body::{BodyBuffer, BodyLimit};

    /// Tile bytes charged to the cache's budget, as a fetch makes them.
    fn counted(cache: &TileCache, len: usize) -> Bytes {
        let limit = BodyLimit::within(len as u64, cache.memory());
        let mut buffer = BodyBuffer::new(limit.max, &limit);
        buffer.read_from(&mut &vec![7; len][..]).unwrap();
        buffer.into_bytes()
    }

    fn tile(cache: &TileCache, len: usize) -> Tile {
        Tile { bytes: counted(cache, len), etag: HeaderValue::from_static("\"t\"") }
    }

    fn new_cache(limit: u64) -> Arc<TileCache> {
        TileCache::new(limit, TileMemory::for_cache(limit))
    }

    fn key(n: u64) -> LogTile {
        (0, TileId::data(n))
    }

    fn start(cache: &Arc<TileCache>, n: u64) -> Flight {
        match cache.lookup(key(n), 100) {
            Lookup::Wait { flight: Some(flight), .. } => flight,
            _ => panic!("expected to start a fetch of {n}"),
        }
    }

    #[test]
    fn evicts_least_recently_used_within_the_byte_limit() {
        let cache = new_cache(1000);
        for n in 0..3 {
            let t = tile(&cache, 300);
            start(&cache, n).complete(Ok(t));
        }
        assert_eq!(cache.stats().bytes, 900);
        // Using 0 makes 1 the oldest.
        assert!(matches!(cache.lookup(key(0), 100), Lookup::Hit(_)));
        let t = tile(&cache, 300);
        start(&cache, 3).complete(Ok(t));
        let stats = cache.stats();
        assert_eq!((stats.bytes, stats.entries, stats.evictions), (900, 3, 1));
        assert!(matches!(cache.lookup(key(0), 100), Lookup::Hit(_)));
        assert!(matches!(cache.lookup(key(1), 100), Lookup::Wait { flight: Some(_), .. }));

        // Larger than the cache: served but not kept, and nothing is evicted for it.
        let t = tile(&cache, 1001);
        start(&cache, 9).complete(Ok(t));
        assert_eq!(cache.stats().entries, 3);
        assert!(cache.stats().bytes <= 1000);
    }

    #[test]
    fn many_distinct_tiles_stay_within_the_limit_and_memory_is_released() {
        let cache = new_cache(10_000);
        for n in 0..500 {
            let t = tile(&cache, 700 + (n as usize * 37) % 900);
            start(&cache, n).complete(Ok(t));
            assert!(cache.stats().bytes <= 10_000);
        }
        let stats = cache.stats();
        assert_eq!(stats.held, stats.bytes, "evicted tiles nobody holds are freed");
        let kept = match cache.lookup(key(499), 100) {
            Lookup::Hit(tile) => tile,
            _ => panic!("the newest tile is cached"),
        };
        drop(cache);
        assert_eq!(kept.bytes.len(), 700 + (499 * 37) % 900);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let cache = new_cache(1 << 20);
        let mut waiting = Vec::new();
        let mut leaders = 0;
        let mut flight = None;
        for _ in 0..50 {
            match cache.lookup(key(5), 100) {
                Lookup::Wait { result, flight: leader } => {
                    if let Some(leader) = leader {
                        leaders += 1;
                        flight = Some(leader);
                    }
                    waiting.push(result);
                }
                _ => panic!("a miss must wait"),
            }
        }
        assert_eq!(leaders, 1);
        assert_eq!(cache.stats().in_flight, 1);
        let t = tile(&cache, 10);
        flight.unwrap().complete(Ok(t));
        for mut result in waiting {
            let outcome = result.wait_for(Option::is_some).await.unwrap().clone().unwrap();
            assert_eq!(outcome.unwrap().bytes.len(), 10);
        }
        assert_eq!(cache.stats().in_flight, 0);
        assert!(matches!(cache.lookup(key(5), 100), Lookup::Hit(_)));
    }

    #[tokio::test]
    async fn failures_are_not_cached_and_abandoned_fetches_fail_their_waiters() {
        let cache = new_cache(1 << 20);
        let Lookup::Wait { mut result, flight: Some(flight) } = cache.lookup(key(1), 100) else { panic!() };
        flight.complete(Err(UpstreamError::Failed("502".into())));
        assert!(matches!(result.wait_for(Option::is_some).await.unwrap().clone(), Some(Err(UpstreamError::Failed(_)))));
        let Lookup::Wait { mut result, flight: Some(flight) } = cache.lookup(key(1), 100) else {
            panic!("a failure is not cached: the next request fetches again")
        };
        drop(flight);
        assert!(matches!(result.wait_for(Option::is_some).await.unwrap().clone(), Some(Err(UpstreamError::Failed(_)))));
        assert_eq!(cache.stats().in_flight, 0);
    }

    #[test]
    fn too_many_fetches_or_too_much_memory_is_overload() {
        let cache = new_cache(1000);
        let first = start(&cache, 1);
        let _second = start(&cache, 2);
        assert!(matches!(cache.lookup(key(3), 2), Lookup::Overloaded), "two fetches already run for log 0");
        assert!(matches!(cache.lookup((1, TileId::data(3)), 2), Lookup::Wait { .. }), "other logs are not held up");
        assert!(matches!(cache.lookup(key(1), 2), Lookup::Wait { flight: None, .. }), "joining is always allowed");
        drop(first);
        assert!(matches!(cache.lookup(key(3), 2), Lookup::Wait { flight: Some(_), .. }));

        // Tiles still being sent count against memory even once evicted.
        let cache = new_cache(1000);
        let held: Vec<Bytes> = (0..32).map(|_| counted(&cache, 1 << 20)).collect();
        assert_eq!(cache.stats().held, 32 << 20, "all but 1000 bytes of the budget");
        assert!(matches!(cache.lookup(key(1), 100), Lookup::Overloaded));
        drop(held);
        assert_eq!(cache.stats().held, 0);
        assert!(matches!(cache.lookup(key(1), 100), Lookup::Wait { .. }));
    }

    #[tokio::test]
    async fn a_404_is_remembered_briefly() {
        let cache = new_cache(1 << 20);
        let Lookup::Wait { mut result, flight: Some(flight) } = cache.lookup(key(1), 100) else { panic!() };
        flight.complete(Err(UpstreamError::NotFound));
        assert!(matches!(result.wait_for(Option::is_some).await.unwrap().clone(), Some(Err(UpstreamError::NotFound))));
        for _ in 0..20 {
            assert!(matches!(cache.lookup(key(1), 100), Lookup::NotFound));
        }
        assert_eq!(cache.stats().not_found, 1);
        assert!(matches!(cache.lookup(key(2), 100), Lookup::Wait { flight: Some(_), .. }), "only that tile");
        // Once the time is up, the log is asked again.
        cache.state().not_found.insert(key(1), Instant::now());
        assert!(matches!(cache.lookup(key(1), 100), Lookup::Wait { flight: Some(_), .. }));
        assert_eq!(cache.stats().not_found, 0);
    }
}
