//! What both of helio's servers use to hand out tiles, `helio serve` (the
//! WebSeed, tiles of the logs) and `helio mirror` (tiles of downloaded
//! ranges): one cache bounded in bytes, where concurrent misses for a tile
//! wait on one fetch ([`cache`]); one memory budget for every tile byte in the
//! process ([`memory`]); and the fetch of one tile from a log, checked, with
//! the errors a client gets when it cannot be had ([`fetch`]).

pub mod cache;
pub mod error;
pub mod fetch;
pub mod memory;

pub use cache::{CacheKey, CacheStats, Flight, FlightResult, Lookup, Tile, TileCache};
pub use error::UpstreamError;
pub use fetch::{MAX_DATA_TILE, OVERLOAD_RETRY, QUEUE_PER_PERMIT, WAIT_SLACK, etag_of, fetch, policy};
pub use memory::TileMemory;
