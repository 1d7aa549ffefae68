//! One range, from the log to a `.torrent`: fetch, decode, verify and hash,
//! overlapped and in parallel, without writing a tile to disk or holding more
//! than a small window of them in memory.
//!
//! TorrentFile order puts the hash tiles first and the data tiles last, so the
//! pipeline runs in two passes over the network: the range's level-0 tiles
//! (checked against level 1), then its data tiles (parsed, leaf-hashed and
//! checked against level 1 too). Workers fetch and verify; the main thread
//! feeds the verified bytes, in order, to the piece hasher, whose blocks are
//! hashed on the rayon pool.

use std::sync::Arc;

use bytes::Bytes;
use thiserror::Error;

use crate::log::merkle::Hash;
use crate::log::source::BodyKind;
use crate::log::tile::{FULL_HASH_TILE_BYTES, Level, TILE_WIDTH, TileId};
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::torrent::metainfo::FileEntry;
use crate::torrent::piece_length::piece_length;
use crate::torrent::pieces::{PieceHash, PieceHasher};
use crate::torrent::range::{TorrentFile, TorrentRange};

use super::ordered::map_in_order;
use super::progress::RangeProgress;

/// The verified, hashed content of a range.
pub struct HashedRange {
    pub files: Vec<FileEntry>,
    pub piece_length: u64,
    pub pieces: Vec<PieceHash>,
    /// Timestamp (ms) of the range's last entry: the torrent's creation date,
    /// the same for every publisher.
    pub last_timestamp: u64,
}

impl HashedRange {
    pub fn content_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }
}

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("the range's verified content changed size between two passes")]
    Unstable,
}

/// How far the size of a range may plausibly be from an early estimate: the
/// hasher keeps every candidate piece length in this window.
const FIRST_GUESS_TOLERANCE: f64 = 0.3;

pub struct RangeJob<'a> {
    pub tree: &'a VerifiedTree,
    pub range: TorrentRange,
    pub readme: Bytes,
    pub concurrency: usize,
    pub progress: &'a RangeProgress,
}

/// Fetches, verifies and hashes a range. The piece length depends on the
/// total size, known only at the end; in the rare case that it falls outside
/// the candidates hashed, the range is streamed once more with the exact one.
pub fn hash_range(job: &RangeJob<'_>) -> Result<HashedRange, PipelineError> {
    hash_range_from(job, Guess::FirstDataTile)
}

/// Which piece lengths the first pass hashes.
enum Guess {
    /// Those plausible for the size one data tile suggests.
    FirstDataTile,
    /// These (tests force a wrong guess with it).
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(Vec<u64>),
}

fn hash_range_from(job: &RangeJob<'_>, guess: Guess) -> Result<HashedRange, PipelineError> {
    let piece_length = match stream(job, guess)? {
        Streamed::Done(hashed) => return Ok(hashed),
        Streamed::Missed { piece_length } => piece_length,
    };
    tracing::warn!(
        "{}: its size fell outside the piece lengths hashed for it; streaming it again with {} KiB pieces",
        job.range,
        piece_length / 1024
    );
    job.progress.restart();
    match stream(job, Guess::Fixed(vec![piece_length]))? {
        Streamed::Done(hashed) => Ok(hashed),
        // Verified tiles cannot change size between passes; if they do, say so.
        Streamed::Missed { .. } => Err(PipelineError::Unstable),
    }
}

enum Streamed {
    Done(HashedRange),
    Missed { piece_length: u64 },
}

fn stream(job: &RangeJob<'_>, guess: Guess) -> Result<Streamed, PipelineError> {
    let RangeJob { tree, range, readme, concurrency, progress } = job;
    let source = tree.source();

    // The level-1 tiles above the range: they authenticate every tile below,
    // and the ones inside the range are part of its content.
    let span = TILE_WIDTH * TILE_WIDTH;
    let first_level1 = range.start / span;
    let level1: Vec<Arc<Vec<Hash>>> =
        (first_level1..=(range.end - 1) / span).map(|t| tree.hash_tile(1, t)).collect::<Result<_, _>>()?;
    let expected = |index: u64| -> Result<Hash, VerifyError> {
        let tile = &level1[(index / TILE_WIDTH - first_level1) as usize];
        tile.get((index % TILE_WIDTH) as usize)
            .copied()
            .ok_or_else(|| VerifyError::NotInTree { tile: TileId::hash(0, index).path(), size: tree.size() })
    };

    let content = range.content();
    let level0: Vec<u64> = tiles_at(&content, Level::Hash(0));
    let level1_inside: Vec<u64> = tiles_at(&content, Level::Hash(1));
    let data: Vec<u64> = tiles_at(&content, Level::Data);
    let hash_region = readme.len() as u64 + (level0.len() + level1_inside.len()) as u64 * FULL_HASH_TILE_BYTES as u64;

    // An early look at one data tile sizes the range well enough to pick the
    // candidate piece lengths; it is kept, not fetched twice.
    let first_data = match (&guess, data.first()) {
        (Guess::FirstDataTile, Some(&index)) => Some(fetch_data(tree, index, &expected(index)?)?),
        _ => None,
    };
    let narrowing = matches!(guess, Guess::FirstDataTile);
    let candidates = match (guess, &first_data) {
        (Guess::Fixed(candidates), _) => candidates,
        (Guess::FirstDataTile, Some((bytes, _))) => {
            let estimate = hash_region + bytes.len() as u64 * data.len() as u64;
            candidate_window(estimate, FIRST_GUESS_TOLERANCE)
        }
        (Guess::FirstDataTile, None) => vec![piece_length(hash_region)],
    };
    let mut hasher = PieceHasher::new(candidates);
    let mut files = Vec::with_capacity(content.len());

    files.push(FileEntry { path: TorrentFile::Readme.path(), length: readme.len() as u64 });
    hasher.push(readme.clone());

    let window = concurrency * 2;
    map_in_order(
        level0,
        *concurrency,
        window,
        |index| -> Result<(u64, Bytes), VerifyError> {
            let tile = TileId::hash(0, index);
            let bytes = source.fetch(&tile.path(), BodyKind::Opaque)?;
            tree.check_level0_tile(index, &bytes, &expected(index)?)?;
            Ok((index, bytes))
        },
        |(index, bytes)| {
            files.push(FileEntry { path: TileId::hash(0, index).path(), length: bytes.len() as u64 });
            progress.tile(bytes.len());
            hasher.push(bytes);
            Ok(())
        },
    )?;

    for &index in &level1_inside {
        let entries = &level1[(index - first_level1) as usize];
        let bytes = Bytes::from(entries.concat());
        files.push(FileEntry { path: TileId::hash(1, index).path(), length: bytes.len() as u64 });
        hasher.push(bytes);
    }

    let last_index = range.end / TILE_WIDTH - 1;
    let mut last_timestamp = 0;
    // The tile looked at early is handed to the pipeline instead of refetched.
    let preloaded = std::sync::Mutex::new(first_data.map(|(bytes, timestamp)| (data[0], bytes, timestamp)));
    let data_count = data.len() as u64;
    let mut data_bytes = 0u64;
    let mut data_seen = 0u64;
    map_in_order(
        data,
        *concurrency,
        window,
        |index| -> Result<(u64, Bytes, u64), VerifyError> {
            if let Ok(mut preloaded) = preloaded.lock()
                && preloaded.as_ref().is_some_and(|(i, ..)| *i == index)
                && let Some(tile) = preloaded.take()
            {
                return Ok(tile);
            }
            let (bytes, timestamp) = fetch_data(tree, index, &expected(index)?)?;
            Ok((index, bytes, timestamp))
        },
        |(index, bytes, timestamp)| {
            if index == last_index {
                last_timestamp = timestamp;
            }
            files.push(FileEntry { path: TileId::data(index).path(), length: bytes.len() as u64 });
            progress.tile(bytes.len());
            data_bytes += bytes.len() as u64;
            data_seen += 1;
            hasher.push(bytes);
            if narrowing && hasher.candidates().len() > 1 {
                // Narrow the candidates as the estimate firms up; a wrong guess
                // only costs a second pass, never a wrong torrent.
                let projected = hash_region + data_bytes + (data_count - data_seen) * (data_bytes / data_seen);
                let tolerance = (FIRST_GUESS_TOLERANCE / (data_seen as f64).sqrt()).max(0.05);
                let window = candidate_window(projected, tolerance);
                let floor = piece_length(hasher.len());
                let min = window.first().copied().unwrap_or(floor).max(floor);
                let max = window.last().copied().unwrap_or(min).max(min);
                hasher.retain_candidates(min, max);
            }
            Ok(())
        },
    )?;

    let total = hasher.len();
    let piece_length = piece_length(total);
    match hasher.finish(piece_length) {
        Some(pieces) => Ok(Streamed::Done(HashedRange { files, piece_length, pieces, last_timestamp })),
        None => Ok(Streamed::Missed { piece_length }),
    }
}

fn fetch_data(tree: &VerifiedTree, index: u64, expected: &Hash) -> Result<(Bytes, u64), VerifyError> {
    let bytes = tree.source().fetch(&TileId::data(index).path(), BodyKind::Sniffable)?;
    let timestamp = tree.check_data_tile(index, &bytes, expected)?;
    Ok((bytes, timestamp))
}

fn tiles_at(content: &[TorrentFile], level: Level) -> Vec<u64> {
    content
        .iter()
        .filter_map(|c| match c {
            TorrentFile::Tile(tile) if tile.level == level => Some(tile.index),
            _ => None,
        })
        .collect()
}

/// The distinct piece lengths for sizes within `tolerance` of `estimate`.
fn candidate_window(estimate: u64, tolerance: f64) -> Vec<u64> {
    let low = (estimate as f64 * (1.0 - tolerance)) as u64;
    let high = (estimate as f64 * (1.0 + tolerance)) as u64;
    let mut candidates = vec![piece_length(low), piece_length(estimate), piece_length(high)];
    candidates.dedup();
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::generate::{LogSpec, write_log};
    use crate::fixture::server::{LogServer, ServerOptions};
    use crate::log::checkpoint::Checkpoint;
    use crate::log::source::{Location, LogSource, RetryPolicy, http_agent};

    fn served_log(size: u64) -> (tempfile::TempDir, LogServer, VerifiedTree) {
        let dir = tempfile::tempdir().unwrap();
        let spec = LogSpec { origin: "pipeline.test".into(), seed: 3, size, gzip_data_tiles: true };
        write_log(dir.path(), &spec).unwrap();
        let server = LogServer::start(dir.path(), ServerOptions { gzip_data_tiles: true }).unwrap();
        let source = LogSource::new(&Location::Http(server.url()), &http_agent(None, 4), RetryPolicy::default());
        let checkpoint = Checkpoint::parse(&std::fs::read(dir.path().join("checkpoint")).unwrap()).unwrap();
        let tree = VerifiedTree::open(source, &checkpoint).unwrap();
        (dir, server, tree)
    }

    #[test]
    fn a_wrong_guess_streams_the_range_again_and_gets_it_right() {
        let (_dir, server, tree) = served_log(2048 + 17);
        let progress = RangeProgress::hidden();
        let job = RangeJob {
            tree: &tree,
            range: TorrentRange { start: 1024, end: 2048 },
            readme: Bytes::from_static(b"LOG_URL: x\n"),
            concurrency: 4,
            progress: &progress,
        };
        let right = hash_range(&job).unwrap();
        assert_eq!(server.hits("tile/data/004"), 1, "fetched once when the guess is right");
        let after_wrong = hash_range_from(&job, Guess::Fixed(vec![1 << 22])).unwrap();
        assert_eq!(server.hits("tile/data/004"), 3, "fetched again for the second pass");
        assert_eq!(after_wrong.piece_length, right.piece_length);
        assert_eq!(after_wrong.pieces, right.pieces);
        assert_eq!(after_wrong.files, right.files);
        assert_eq!(after_wrong.last_timestamp, right.last_timestamp);
        assert!(right.last_timestamp > 0);
    }

    #[test]
    fn the_first_data_tile_looked_at_early_is_not_fetched_twice() {
        let (_dir, server, tree) = served_log(1024);
        let progress = RangeProgress::hidden();
        let job = RangeJob {
            tree: &tree,
            range: TorrentRange { start: 0, end: 1024 },
            readme: Bytes::from_static(b"x"),
            concurrency: 2,
            progress: &progress,
        };
        let hashed = hash_range(&job).unwrap();
        assert_eq!(hashed.files.len(), 9);
        for n in 0..4 {
            assert_eq!(server.hits(&format!("tile/data/00{n}")), 1);
            assert_eq!(server.hits(&format!("tile/0/00{n}")), 1);
        }
    }

    #[test]
    fn candidate_windows_straddle_boundaries_only_when_close() {
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        assert_eq!(candidate_window(GIB + GIB / 2, 0.05), [2 * MIB]);
        assert_eq!(candidate_window(2 * GIB, 0.3), [2 * MIB, 4 * MIB]);
        assert_eq!(candidate_window(100_000, 0.3), [16384]);
    }
}
