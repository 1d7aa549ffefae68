//! One tile from a log, for a server that hands tiles out: fetched once for
//! every client waiting for it, decoded, checked for the shape a full tile
//! has, its bytes charged to the servers' memory budget; and the errors a
//! client gets when it cannot be had. `helio serve` fetches from the logs
//! this way, `helio mirror` from its `--upstream`.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};

use super::cache::Tile;
use super::error::UpstreamError;
use super::memory::TileMemory;
use crate::log::body::BodyLimit;
use crate::log::source::{BodyKind, LogSource, RetryPolicy};
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
pub const WAIT_SLACK: Duration = Duration::from_secs(2);

/// `HELIO_RETRY_BUDGET` if set, else a budget a waiting client can bear.
pub fn policy() -> RetryPolicy {
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
pub fn fetch(source: &LogSource, tile: TileId, memory: Arc<TileMemory>) -> Result<Tile, UpstreamError> {
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
    let hex = hex::encode(&digest[..12]);
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::generate::{LogSpec, write_log};
    use crate::log::source::{FetchError, Location, http_agent_within};

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
