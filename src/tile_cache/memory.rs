//! The one memory budget for tiles, derived from `cache_mb`: every tile
//! byte in the process is charged to it, wherever it is — in the cache,
//! still being sent after its eviction, being downloaded, or being inflated
//! from gzip. Downloads and inflation ask before they grow
//! ([`crate::log::body`]) and fail with 503 when it is spent, so a flood of
//! gzip bombs or slow clients cannot push memory past it.
//!
//! The cache itself stays within `cache_mb`; the budget adds headroom for
//! the tiles in transit: a quarter of the cache, but at least
//! [`MIN_HEADROOM`], enough for dozens of concurrent fetches of real tiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::log::body::MemoryBudget;

/// Tile memory beyond the cache itself, as a share of it…
const HEADROOM_SHARE: u64 = 4;
/// …but at least this much, so that a tiny cache can still serve.
pub const MIN_HEADROOM: u64 = 32 << 20;

/// Tile bytes alive, against their limit.
#[derive(Debug)]
pub struct TileMemory {
    used: AtomicU64,
    limit: u64,
}

impl TileMemory {
    /// The budget for a cache of `cache_bytes`.
    pub fn for_cache(cache_bytes: u64) -> Arc<TileMemory> {
        let headroom = (cache_bytes / HEADROOM_SHARE).max(MIN_HEADROOM);
        TileMemory::new(cache_bytes.saturating_add(headroom))
    }

    pub fn new(limit: u64) -> Arc<TileMemory> {
        Arc::new(TileMemory { used: AtomicU64::new(0), limit })
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn available(&self) -> u64 {
        self.limit.saturating_sub(self.used())
    }
}

impl MemoryBudget for TileMemory {
    fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_is_a_quarter_of_the_cache_or_at_least_32_mib() {
        assert_eq!(TileMemory::for_cache(0).limit(), 32 << 20);
        assert_eq!(TileMemory::for_cache(16 << 20).limit(), 48 << 20);
        assert_eq!(TileMemory::for_cache(512 << 20).limit(), 640 << 20);
    }

    #[test]
    fn takes_only_what_is_left() {
        let memory = TileMemory::new(100);
        assert!(memory.try_take(60));
        assert!(!memory.try_take(41));
        assert!(memory.try_take(40));
        assert_eq!(memory.available(), 0);
        memory.give_back(100);
        assert_eq!(memory.used(), 0);
    }
}
