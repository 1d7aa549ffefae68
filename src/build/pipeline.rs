//! A log's missing ranges, from the log to hashed torrent content: fetch,
//! decode, verify and hash, overlapped and in parallel, without writing a
//! tile to disk or holding more than a small window of them in memory.
//!
//! All the tiles of all the ranges of a log form one stream of fetches, so
//! the window of requests in flight never drains: not between the hash-tile
//! and data-tile parts of a range, nor between one range and the next (the
//! next range's tiles are on their way while the current one is finished and
//! published). Per range the stream asks for its level-1 tiles (authenticated
//! up to the checkpoint by [`VerifiedTree`]), then its data tiles and level-0
//! tiles in turn, the first data tile first (its size tells the piece-length
//! candidates). Workers fetch, decode, parse and hash each tile; the consuming
//! thread checks every tile hash against its authenticated entry in level 1,
//! in order, and feeds the verified bytes to the piece hashers, whose blocks
//! are hashed on the rayon pool. Nothing reaches a torrent before it is
//! verified, and ranges are handed on in order.
//!
//! Why in turn: nearly all the CPU work of a range is in its data tiles
//! (inflating, leaf hashes, SHA-1 over most of the bytes), none in its
//! level-0 tiles. Asked for one kind after the other, a build over a slow
//! network would wait with idle cores through the level-0 tiles, then run
//! out of cores through the data tiles, and the requests in flight would
//! drop. The content order of the torrent (README, level 0, level 1, data:
//! [`TorrentRange::content`]) still rules the pieces, so a range's content is
//! hashed as two streams: the hash region (README, level-0 and level-1
//! tiles), whose size is known before a byte arrives, and the data region
//! from the first piece boundary after it, hashed as data tiles come in. The
//! data bytes before that boundary (less than a piece) are held until the
//! hash region is complete. The last range of a finished log, whose hash
//! region has partial tiles, keeps the one-after-the-other order.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use thiserror::Error;

use crate::log::merkle::Hash;
use crate::log::source::BodyKind;
use crate::log::tile::{FULL_HASH_TILE_BYTES, Level, TILE_WIDTH, TileId};
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::torrent::file_hashes::FileHashes;
use crate::torrent::hybrid::{HybridError, HybridFile};
use crate::torrent::metainfo::FileEntry;
use crate::torrent::piece_length::piece_length;
use crate::torrent::pieces::{PieceHash, PieceHasher};
use crate::torrent::range::{TorrentFile, TorrentRange};

use super::ordered::map_in_order;
use super::progress::RangeProgress;

/// The verified, hashed content of a range.
pub struct HashedRange {
    pub files: Vec<FileEntry>,
    pub hashes: RangeHashes,
    /// Timestamp (ms) of the range's last entry: the torrent's creation date,
    /// the same for every publisher.
    pub last_timestamp: u64,
}

/// A range's pieces, for the torrent's format.
pub enum RangeHashes {
    /// v1: SHA-1 pieces across file boundaries.
    V1 { piece_length: u64, pieces: Vec<PieceHash> },
    /// Hybrid: each file's v1 pieces (padded) and v2 Merkle tree.
    Hybrid { piece_length: u64, files: Vec<HybridFile> },
}

impl RangeHashes {
    pub fn piece_length(&self) -> u64 {
        match self {
            RangeHashes::V1 { piece_length, .. } | RangeHashes::Hybrid { piece_length, .. } => *piece_length,
        }
    }
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
    #[error("the range's hash tiles do not make the {expected} bytes their count says (a bug in helio)")]
    HashRegion { expected: u64 },
    #[error(transparent)]
    Hybrid(#[from] HybridError),
}

/// How a log's stream of ranges ended when nothing failed.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every range was built and handed on.
    Done,
    /// The caller said to stop before this range started.
    Stopped { next: TorrentRange },
}

/// Why a log's stream of ranges stopped early.
#[derive(Debug)]
pub enum StreamError<E> {
    /// A range could not be built (nothing of it was handed on).
    Range { range: TorrentRange, source: PipelineError },
    /// Handing a built range on failed.
    Publish(E),
}

/// How far the size of a range may plausibly be from an early estimate: the
/// hasher keeps every candidate piece length in this window.
const FIRST_GUESS_TOLERANCE: f64 = 0.3;

/// What every range of a log shares.
pub struct LogStream<'a> {
    pub tree: &'a VerifiedTree,
    pub readme: Bytes,
    /// Requests the log's host allows at once. Twice as many workers run, so
    /// that while some inflate and hash a tile, others hold every request slot
    /// of the host (its gate keeps them to the limit).
    pub concurrency: usize,
    /// A progress bar for a range (hidden when nobody watches).
    pub progress: &'a (dyn Fn(TorrentRange) -> RangeProgress + Sync),
    /// The piece length of hybrid torrents, known before the first byte; `None` for v1.
    pub hybrid: Option<u64>,
    /// The last range of a finished log, which carries its partial tiles,
    /// the hash tiles above it and this checkpoint (docs/final.md).
    pub finale: Option<Finale>,
}

/// The last range of a finished log.
#[derive(Clone, Debug)]
pub struct Finale {
    pub range: TorrentRange,
    /// The checkpoint text, a file of the torrent.
    pub checkpoint: Bytes,
}

impl LogStream<'_> {
    fn finale_of(&self, range: TorrentRange) -> Option<&Finale> {
        self.finale.as_ref().filter(|finale| finale.range == range)
    }
}

/// One fetch of the stream.
#[derive(Clone, Copy, Debug)]
enum Job {
    /// A range begins: the moment to decide whether to start it.
    Start(TorrentRange),
    /// An authenticated hash tile of level ≥ 1 (fetched, or the tree's right edge).
    Upper(u8, u64),
    Level0(u64),
    Data(u64),
    /// The tree's right edge at level 0, authenticated when it was opened.
    Level0Edge(u64),
    /// The partial data tile under it, of this many entries.
    DataEdge(u64, u16),
    /// Everything of the range has been asked for.
    End(TorrentRange),
}

/// A job's result, checked as far as a worker can without the level-1 tiles.
enum Fetched {
    Marker(Job),
    Upper {
        level: u8,
        index: u64,
        entries: Arc<Vec<Hash>>,
    },
    /// `root` is the tile's tree hash to check against level 1; `None` when
    /// the tile is the tree's right edge, already authenticated.
    Level0 {
        tile: TileId,
        bytes: Bytes,
        root: Option<Hash>,
        hashes: Option<FileHashes>,
    },
    Data {
        tile: TileId,
        bytes: Bytes,
        root: Option<Hash>,
        last_timestamp: u64,
        hashes: Option<FileHashes>,
    },
}

/// Why the consumer stops the stream.
enum Flow<E> {
    Failed(StreamError<E>),
    Stop(TorrentRange),
}

/// Builds `ranges` in order, handing each to `publish` as soon as it is
/// verified and hashed. Before each range starts, `keep_going` is asked; when
/// it says no, the stream stops there (tiles already in flight for that range
/// are dropped) and says which range was next.
pub fn stream_ranges<E: Send>(
    log: &LogStream<'_>,
    ranges: impl Iterator<Item = TorrentRange>,
    keep_going: &dyn Fn() -> bool,
    publish: &mut dyn FnMut(TorrentRange, HashedRange) -> Result<(), E>,
) -> Result<StreamEnd, StreamError<E>> {
    let tree = log.tree;
    let jobs = ranges.flat_map(|range| jobs_of(log, range));
    let mut building: Option<RangeBuild> = None;
    let failed = |range, source: PipelineError| Flow::Failed(StreamError::Range { range, source });
    let result = map_in_order(
        jobs,
        log.concurrency * 2,
        log.concurrency * 3,
        // A worker's failure is the consumer's to attribute to its range.
        |job| Ok::<_, Flow<E>>(fetch(tree, job, log.hybrid)),
        |fetched| -> Result<(), Flow<E>> {
            match fetched {
                Ok(Fetched::Marker(Job::Start(range))) => {
                    if !keep_going() {
                        return Err(Flow::Stop(range));
                    }
                    building = Some(RangeBuild::new(log, range, Guess::FirstDataTile));
                    Ok(())
                }
                Ok(Fetched::Marker(Job::End(range))) => {
                    let Some(build) = building.take() else { return Ok(()) };
                    let hashed = build.finish(log).map_err(|source| failed(range, source))?;
                    publish(range, hashed).map_err(|e| Flow::Failed(StreamError::Publish(e)))
                }
                Ok(other) => match building.as_mut() {
                    Some(build) => build.take(tree, other).map_err(|source| failed(build.range, source.into())),
                    None => Ok(()),
                },
                Err(error) => match &building {
                    Some(build) => Err(failed(build.range, error.into())),
                    None => Ok(()),
                },
            }
        },
    );
    match result {
        Ok(()) => Ok(StreamEnd::Done),
        Err(Flow::Stop(next)) => Ok(StreamEnd::Stopped { next }),
        Err(Flow::Failed(error)) => Err(error),
    }
}

/// The jobs of one range, in the order the consumer needs them: the hash
/// tiles above it, one data tile early, its level-0 tiles, its data tiles.
fn jobs_of(log: &LogStream<'_>, range: TorrentRange) -> Vec<Job> {
    let tree = log.tree;
    let content = match log.finale_of(range) {
        Some(_) => range.final_content(),
        None => range.content(),
    };
    let tiles = |level: Level| -> Vec<TileId> {
        content
            .iter()
            .filter_map(|file| match file {
                TorrentFile::Tile(tile) if tile.level == level => Some(*tile),
                _ => None,
            })
            .collect()
    };
    let level0 = tiles(Level::Hash(0));
    let data = tiles(Level::Data);
    let upper: Vec<(u8, u64)> = match log.finale_of(range) {
        // Every hash tile above, as the torrent carries them.
        Some(_) => (1..=u8::MAX)
            .map_while(|level| {
                let found = tiles(Level::Hash(level));
                (!found.is_empty()).then_some((level, found))
            })
            .flat_map(|(level, found)| found.into_iter().map(move |tile| (level, tile.index)))
            .collect(),
        // The level-1 tiles that authenticate the range.
        None => {
            let span = TILE_WIDTH * TILE_WIDTH;
            (range.start / span..=(range.end - 1) / span).map(|index| (1, index)).collect()
        }
    };
    // Hash tiles of level ≥ 2 above the range are fetched here, once, rather
    // than by every worker that would miss them at once. A failure shows
    // again, with its tile named, when a worker asks.
    if let (Some(&(_, first)), Some(&(_, last))) = (upper.first(), upper.iter().rfind(|(level, _)| *level == 1)) {
        let _ = tree.node(2, first);
        let _ = tree.node(2, last);
    }
    for &(level, index) in upper.iter().filter(|(level, _)| *level >= 2) {
        let _ = tree.hash_tile(level, index);
    }

    let job_of = |tile: &TileId| match (tile.level, tile.is_full()) {
        (Level::Data, true) => Job::Data(tile.index),
        (Level::Data, false) => Job::DataEdge(tile.index, tile.width),
        (_, true) => Job::Level0(tile.index),
        (_, false) => Job::Level0Edge(tile.index),
    };
    let mut jobs = Vec::with_capacity(3 + level0.len() + data.len() + upper.len());
    jobs.push(Job::Start(range));
    jobs.extend(upper.into_iter().map(|(level, index)| Job::Upper(level, index)));
    match log.finale_of(range) {
        // Data and level-0 tiles in turn, to spread the CPU work of the data
        // tiles over the whole range (see the module's paragraph).
        None => {
            for k in 0..data.len().max(level0.len()) {
                jobs.extend(data.get(k).map(job_of));
                jobs.extend(level0.get(k).map(job_of));
            }
        }
        // One data tile early, the hash tiles, then the rest of the data.
        Some(_) => {
            if let Some((first, rest)) = data.split_first() {
                jobs.push(job_of(first));
                jobs.extend(level0.iter().map(job_of));
                jobs.extend(rest.iter().map(job_of));
            }
        }
    }
    jobs.push(Job::End(range));
    jobs
}

/// A worker's part: fetch, decode, parse and hash one tile (and for a
/// hybrid torrent, its file hashes too: they depend on that file alone).
fn fetch(tree: &VerifiedTree, job: Job, hybrid: Option<u64>) -> Result<Fetched, VerifyError> {
    let file_hashes = |bytes: &Bytes| hybrid.map(|piece_length| FileHashes::compute(bytes, piece_length));
    match job {
        Job::Start(_) | Job::End(_) => Ok(Fetched::Marker(job)),
        Job::Upper(level, index) => Ok(Fetched::Upper { level, index, entries: tree.hash_tile(level, index)? }),
        Job::Level0(index) => {
            let tile = TileId::hash(0, index);
            let bytes = tree.source().fetch(&tile.path(), BodyKind::Opaque)?;
            let root = Some(tree.level0_root(index, &bytes)?);
            let hashes = file_hashes(&bytes);
            Ok(Fetched::Level0 { tile, bytes, root, hashes })
        }
        Job::Level0Edge(index) => {
            let entries = tree.hash_tile(0, index)?;
            let tile = TileId::hash(0, index).with_width(entries.len() as u16);
            let bytes = Bytes::from(entries.concat());
            let hashes = file_hashes(&bytes);
            Ok(Fetched::Level0 { tile, bytes, root: None, hashes })
        }
        Job::Data(index) => {
            let tile = TileId::data(index);
            let bytes = tree.source().fetch(&tile.path(), BodyKind::Sniffable)?;
            let (root, last_timestamp) = tree.data_root(index, &bytes)?;
            let hashes = file_hashes(&bytes);
            Ok(Fetched::Data { tile, bytes, root: Some(root), last_timestamp, hashes })
        }
        Job::DataEdge(index, width) => {
            let tile = TileId::data(index).with_width(width);
            let bytes = tree.source().fetch(&tile.path(), BodyKind::Sniffable)?;
            let last_timestamp = tree.check_edge_data(index, width, &bytes)?;
            let hashes = file_hashes(&bytes);
            Ok(Fetched::Data { tile, bytes, root: None, last_timestamp, hashes })
        }
    }
}

/// Which piece lengths a range's hasher works for.
enum Guess {
    /// Those plausible for the size one data tile suggests.
    FirstDataTile,
    /// These, streaming again with the exact length if they miss (tests
    /// force a wrong first guess with it).
    #[cfg_attr(not(test), allow(dead_code))]
    Forced(Vec<u64>),
    /// The exact length, on a second pass: a miss now is an error.
    Exact(u64),
}

/// One range being consumed. Its verified content goes to the hashers in
/// two streams, each in content order: the hash region (README,
/// [checkpoint,] level 0, the hash tiles above carried by the torrent) and
/// the data tiles.
struct RangeBuild {
    range: TorrentRange,
    guess: Guess,
    /// README.md, and for a finished log's last range its checkpoint.
    prefix: Vec<(String, Bytes)>,
    progress: RangeProgress,
    /// Authenticated hash tiles of level ≥ 1 over the range.
    upper: BTreeMap<(u8, u64), Arc<Vec<Hash>>>,
    /// Those the torrent carries, in content order.
    carried: Vec<TileId>,
    level0_total: usize,
    level0_seen: usize,
    data_total: u64,
    data_seen: u64,
    data_bytes: u64,
    /// The size of the hash region: exact, except for the last range of a
    /// finished log (partial tiles), which never hashes its data apart.
    hash_region: u64,
    /// Whether the data region is hashed apart from the hash region.
    split: bool,
    /// The data bytes that belong to the hash region's stream: those before
    /// the first piece boundary after it (all of them without `split`).
    data_lead: u64,
    /// Those of them that came before the hash region was complete.
    held: Vec<Bytes>,
    /// Every file of the hash region has been pushed.
    head_done: bool,
    /// The hash region was not `hash_region` bytes (a bug: the range fails
    /// rather than get pieces cut in the wrong places).
    misaligned: bool,
    last_data: u64,
    last_timestamp: u64,
    hashing: Hashing,
    /// The hash region's files, then the data tiles, each in content order.
    files: Vec<FileEntry>,
    data_files: Vec<FileEntry>,
}

/// Where a range's verified bytes go.
enum Hashing {
    /// Before the first data tile has sized the range.
    NotStarted {
        hybrid: Option<u64>,
    },
    /// The pieces of the hash region (and the data bytes up to the first
    /// piece boundary), and those of the data region after it: both hashers
    /// keep the same candidates, and every candidate divides where the second
    /// starts, so their pieces laid end to end are the range's.
    V1 {
        head: Box<PieceHasher>,
        data: Box<PieceHasher>,
    },
    Hybrid {
        piece_length: u64,
        files: Vec<HybridFile>,
        data_files: Vec<HybridFile>,
    },
}

impl RangeBuild {
    fn new(log: &LogStream<'_>, range: TorrentRange, guess: Guess) -> RangeBuild {
        let tiles = range.entries().div_ceil(TILE_WIDTH);
        let mut prefix = vec![(TorrentFile::Readme.path(), log.readme.clone())];
        let finale = log.finale_of(range);
        let carried: Vec<TileId> = match finale {
            Some(finale) => {
                prefix.push((TorrentFile::Checkpoint.path(), finale.checkpoint.clone()));
                range
                    .final_content()
                    .into_iter()
                    .filter_map(|file| match file {
                        TorrentFile::Tile(tile) if matches!(tile.level, Level::Hash(level) if level >= 1) => Some(tile),
                        _ => None,
                    })
                    .collect()
            }
            None => range.level1_indexes().map(|index| TileId::hash(1, index)).collect(),
        };
        // Full level-0 and level-1 tiles, all but a finished log's last range.
        let hash_region = prefix.iter().map(|(_, bytes)| bytes.len() as u64).sum::<u64>()
            + (tiles + carried.len() as u64) * FULL_HASH_TILE_BYTES as u64;
        RangeBuild {
            range,
            guess,
            prefix,
            progress: (log.progress)(range),
            upper: BTreeMap::new(),
            level0_total: tiles as usize,
            level0_seen: 0,
            data_total: tiles,
            data_seen: 0,
            data_bytes: 0,
            hash_region,
            split: finale.is_none(),
            data_lead: u64::MAX,
            held: Vec::new(),
            head_done: false,
            misaligned: false,
            last_data: (range.end - 1) / TILE_WIDTH,
            last_timestamp: 0,
            hashing: Hashing::NotStarted { hybrid: log.hybrid },
            files: Vec::with_capacity(2 + tiles as usize + carried.len()),
            data_files: Vec::with_capacity(tiles as usize),
            carried,
        }
    }

    /// The authenticated level-1 entry of level-0 or data tile `index`.
    fn expected(&self, tree: &VerifiedTree, index: u64) -> Result<Hash, VerifyError> {
        let tile = self.upper.get(&(1, index / TILE_WIDTH));
        tile.and_then(|tile| tile.get((index % TILE_WIDTH) as usize).copied())
            .ok_or_else(|| VerifyError::NotInTree { tile: TileId::hash(0, index).path(), size: tree.size() })
    }

    fn take(&mut self, tree: &VerifiedTree, fetched: Fetched) -> Result<(), VerifyError> {
        match fetched {
            Fetched::Marker(_) => {}
            Fetched::Upper { level, index, entries } => {
                self.upper.insert((level, index), entries);
            }
            Fetched::Level0 { tile, bytes, root, hashes } => {
                if let Some(root) = root
                    && root != self.expected(tree, tile.index)?
                {
                    return Err(tree.level0_mismatch(tile.index));
                }
                self.progress.tile(bytes.len());
                self.push(tile.path(), bytes, hashes);
                self.level0_seen += 1;
                if self.level0_seen == self.level0_total {
                    self.after_level0();
                }
            }
            Fetched::Data { tile, bytes, root, last_timestamp, hashes } => {
                if let Some(root) = root
                    && root != self.expected(tree, tile.index)?
                {
                    return Err(tree.data_mismatch(tile.index));
                }
                if tile.index == self.last_data {
                    self.last_timestamp = last_timestamp;
                }
                self.progress.tile(bytes.len());
                // The first data tile sizes the range and starts the hashers.
                self.start_hashing(bytes.len() as u64);
                self.push_data(tile, bytes, hashes);
            }
        }
        Ok(())
    }

    fn start_hashing(&mut self, first_tile: u64) {
        let Hashing::NotStarted { hybrid } = self.hashing else { return };
        self.hashing = match hybrid {
            Some(piece_length) => Hashing::Hybrid {
                piece_length,
                files: Vec::with_capacity(self.files.capacity()),
                data_files: Vec::with_capacity(self.data_files.capacity()),
            },
            None => {
                let candidates = match &self.guess {
                    Guess::Forced(candidates) => candidates.clone(),
                    Guess::Exact(piece_length) => vec![*piece_length],
                    Guess::FirstDataTile => {
                        candidate_window(self.hash_region + first_tile * self.data_total, FIRST_GUESS_TOLERANCE)
                    }
                };
                // The data region's stream starts on a boundary of the largest
                // candidate, hence of every candidate (powers of two), kept or
                // narrowed to later.
                let largest = candidates.iter().copied().max().unwrap_or(1);
                if self.split {
                    self.data_lead = self.hash_region.next_multiple_of(largest) - self.hash_region;
                }
                let hasher = || Box::new(PieceHasher::new(candidates.clone()));
                Hashing::V1 { head: hasher(), data: hasher() }
            }
        };
        for (path, bytes) in std::mem::take(&mut self.prefix) {
            self.push(path, bytes, None);
        }
    }

    /// Appends a verified file of the hash region; `hashes` when a worker
    /// already computed its hybrid file hashes.
    fn push(&mut self, path: String, bytes: Bytes, hashes: Option<FileHashes>) {
        self.files.push(FileEntry { path: path.clone(), length: bytes.len() as u64 });
        match &mut self.hashing {
            Hashing::NotStarted { .. } => {}
            Hashing::V1 { head, .. } => head.push(bytes),
            Hashing::Hybrid { piece_length, files, .. } => {
                let hashes = hashes.unwrap_or_else(|| FileHashes::compute(&bytes, *piece_length));
                files.push(HybridFile { path, hashes });
            }
        }
    }

    /// After the last level-0 tile: the hash tiles above that the torrent
    /// carries complete the hash region; then the data bytes held for it.
    fn after_level0(&mut self) {
        for tile in std::mem::take(&mut self.carried) {
            let Level::Hash(level) = tile.level else { continue };
            if let Some(entries) = self.upper.get(&(level, tile.index)) {
                let bytes = Bytes::from(entries.concat());
                self.push(tile.path(), bytes, None);
            }
        }
        self.head_done = true;
        if let Hashing::V1 { head, .. } = &mut self.hashing {
            // The data region's pieces were cut from where this one ends.
            self.misaligned = self.split && head.len() != self.hash_region;
            for bytes in std::mem::take(&mut self.held) {
                head.push(bytes);
            }
        }
    }

    fn push_data(&mut self, tile: TileId, mut bytes: Bytes, hashes: Option<FileHashes>) {
        self.data_bytes += bytes.len() as u64;
        self.data_seen += 1;
        let path = tile.path();
        self.data_files.push(FileEntry { path: path.clone(), length: bytes.len() as u64 });
        let (head, data) = match &mut self.hashing {
            Hashing::NotStarted { .. } => return,
            Hashing::Hybrid { piece_length, data_files, .. } => {
                let hashes = hashes.unwrap_or_else(|| FileHashes::compute(&bytes, *piece_length));
                data_files.push(HybridFile { path, hashes });
                return;
            }
            Hashing::V1 { head, data } => (head, data),
        };
        if self.data_lead > 0 {
            let lead = bytes.split_to(self.data_lead.min(bytes.len() as u64) as usize);
            self.data_lead -= lead.len() as u64;
            if self.head_done { head.push(lead) } else { self.held.push(lead) }
        }
        if !bytes.is_empty() {
            data.push(bytes);
        }
        if matches!(self.guess, Guess::FirstDataTile) && head.candidates().len() > 1 {
            // Narrow the candidates as the estimate firms up; a wrong guess
            // only costs a second pass, never a wrong torrent.
            let projected = self.hash_region
                + self.data_bytes
                + (self.data_total - self.data_seen) * (self.data_bytes / self.data_seen);
            let tolerance = (FIRST_GUESS_TOLERANCE / (self.data_seen as f64).sqrt()).max(0.05);
            let window = candidate_window(projected, tolerance);
            let pushed = head.len() + data.len() + self.held.iter().map(|b| b.len() as u64).sum::<u64>();
            let floor = piece_length(pushed);
            let min = window.first().copied().unwrap_or(floor).max(floor);
            let max = window.last().copied().unwrap_or(min).max(min);
            head.retain_candidates(min, max);
            data.retain_candidates(min, max);
        }
    }

    /// The hashed range, streaming it once more with the exact piece length
    /// in the rare case that its size fell outside the candidates.
    fn finish(self, log: &LogStream<'_>) -> Result<HashedRange, PipelineError> {
        if self.misaligned || !self.head_done || !self.held.is_empty() {
            return Err(PipelineError::HashRegion { expected: self.hash_region });
        }
        let RangeBuild { range, mut files, data_files, last_timestamp, hashing, progress, guess, .. } = self;
        files.extend(data_files);
        let (head, data) = match hashing {
            Hashing::NotStarted { .. } => return Err(PipelineError::Unstable),
            Hashing::Hybrid { piece_length, files: mut hybrid, data_files } => {
                progress.finish();
                hybrid.extend(data_files);
                let hashes = RangeHashes::Hybrid { piece_length, files: hybrid };
                return Ok(HashedRange { files, hashes, last_timestamp });
            }
            Hashing::V1 { head, data } => (head, data),
        };
        let total = head.len() + data.len();
        let piece_length = piece_length(total);
        if let (Some(mut pieces), Some(rest)) = ((*head).finish(piece_length), (*data).finish(piece_length)) {
            pieces.extend(rest);
            progress.finish();
            return Ok(HashedRange { files, hashes: RangeHashes::V1 { piece_length, pieces }, last_timestamp });
        }
        if matches!(guess, Guess::Exact(_)) {
            // Verified tiles cannot change size between passes; if they do, say so.
            return Err(PipelineError::Unstable);
        }
        tracing::warn!(
            "{range}: its size fell outside the piece lengths hashed for it; streaming it again with {} KiB pieces",
            piece_length / 1024
        );
        progress.finish();
        stream_one(log, range, Guess::Exact(piece_length))
    }
}

/// Streams one range on its own.
fn stream_one(log: &LogStream<'_>, range: TorrentRange, guess: Guess) -> Result<HashedRange, PipelineError> {
    let tree = log.tree;
    let mut building = Some(RangeBuild::new(log, range, guess));
    let mut hashed = None;
    map_in_order(
        jobs_of(log, range),
        log.concurrency * 2,
        log.concurrency * 3,
        |job| fetch(tree, job, log.hybrid).map_err(PipelineError::from),
        |fetched| -> Result<(), PipelineError> {
            match fetched {
                Fetched::Marker(Job::End(_)) => {
                    if let Some(build) = building.take() {
                        hashed = Some(build.finish(log)?);
                    }
                    Ok(())
                }
                other => match building.as_mut() {
                    Some(build) => Ok(build.take(tree, other)?),
                    None => Ok(()),
                },
            }
        },
    )?;
    hashed.ok_or(PipelineError::Unstable)
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
    use crate::torrent::range;

    fn served_log(size: u64) -> (tempfile::TempDir, LogServer, VerifiedTree) {
        let dir = tempfile::tempdir().unwrap();
        let spec = LogSpec { origin: "pipeline.test".into(), seed: 3, size, gzip_data_tiles: true };
        write_log(dir.path(), &spec).unwrap();
        let server =
            LogServer::start(dir.path(), ServerOptions { gzip_data_tiles: true, ..ServerOptions::default() }).unwrap();
        let source = LogSource::new(&Location::Http(server.url()), &http_agent(None, 4), RetryPolicy::default());
        let checkpoint = Checkpoint::parse(&std::fs::read(dir.path().join("checkpoint")).unwrap()).unwrap();
        let tree = VerifiedTree::open(source, &checkpoint).unwrap();
        (dir, server, tree)
    }

    fn hidden(_: TorrentRange) -> RangeProgress {
        RangeProgress::hidden()
    }

    fn stream<'a>(tree: &'a VerifiedTree, concurrency: usize) -> LogStream<'a> {
        LogStream {
            tree,
            readme: Bytes::from_static(b"LOG_URL: x\n"),
            concurrency,
            progress: &hidden,
            hybrid: None,
            finale: None,
        }
    }

    fn build_all(log: &LogStream<'_>, ranges: Vec<TorrentRange>) -> Vec<(TorrentRange, HashedRange)> {
        let mut built = Vec::new();
        let end = stream_ranges::<()>(log, ranges.into_iter(), &|| true, &mut |range, hashed| {
            built.push((range, hashed));
            Ok(())
        })
        .map_err(|e| match e {
            StreamError::Range { range, source } => format!("{range}: {source}"),
            StreamError::Publish(()) => "publish".into(),
        })
        .unwrap();
        assert_eq!(end, StreamEnd::Done);
        built
    }

    #[test]
    fn a_wrong_guess_streams_the_range_again_and_gets_it_right() {
        let (_dir, server, tree) = served_log(2048 + 17);
        let log = stream(&tree, 4);
        let range = TorrentRange { start: 1024, end: 2048 };
        let right = build_all(&log, vec![range]).pop().unwrap().1;
        assert_eq!(server.hits("tile/data/004"), 1, "fetched once when the guess is right");
        let again = stream_one(&log, range, Guess::Forced(vec![1 << 22])).unwrap();
        assert_eq!(server.hits("tile/data/004"), 3, "fetched again for the second pass");
        let pieces = |hashed: &HashedRange| match &hashed.hashes {
            RangeHashes::V1 { piece_length, pieces } => (*piece_length, pieces.clone()),
            RangeHashes::Hybrid { .. } => panic!("v1 expected"),
        };
        assert_eq!(pieces(&again), pieces(&right));
        assert_eq!(again.files, right.files);
        assert_eq!(again.last_timestamp, right.last_timestamp);
        assert!(right.last_timestamp > 0);
        let exact = stream_one(&log, range, Guess::Exact(1 << 22)).err().unwrap();
        assert!(matches!(exact, PipelineError::Unstable), "a miss on the second pass is an error");
    }

    #[test]
    fn every_tile_is_fetched_once_across_consecutive_ranges() {
        let (_dir, server, tree) = served_log(4096 + 5);
        let log = stream(&tree, 3);
        let ranges: Vec<TorrentRange> = range::missing(4096, 1024, &[]).collect();
        let built = build_all(&log, ranges);
        assert_eq!(built.len(), 4);
        for (k, (range, hashed)) in built.iter().enumerate() {
            assert_eq!(range.start, k as u64 * 1024, "in order");
            assert_eq!(hashed.files.len(), 9);
        }
        for n in 0..16 {
            assert_eq!(server.hits(&format!("tile/data/{n:03}")), 1, "data {n}");
            assert_eq!(server.hits(&format!("tile/0/{n:03}")), 1, "level 0 {n}");
        }
    }

    #[test]
    fn asked_to_stop_it_stops_before_a_range_and_says_which() {
        let (_dir, _server, tree) = served_log(4096);
        let log = stream(&tree, 2);
        let started = std::cell::Cell::new(0);
        let mut built = 0;
        let end = stream_ranges::<()>(
            &log,
            range::missing(4096, 1024, &[]),
            &|| {
                started.set(started.get() + 1);
                started.get() <= 2
            },
            &mut |_, _| {
                built += 1;
                Ok(())
            },
        )
        .ok()
        .unwrap();
        assert_eq!(built, 2);
        assert_eq!(end, StreamEnd::Stopped { next: TorrentRange { start: 2048, end: 3072 } });
    }

    /// The range's content as a client saves it, in content order.
    fn content_bytes(dir: &std::path::Path, log: &LogStream<'_>, range: TorrentRange) -> Vec<u8> {
        use std::io::Read;
        let mut all = Vec::new();
        for file in range.content() {
            match file {
                TorrentFile::Readme => all.extend_from_slice(&log.readme),
                TorrentFile::Checkpoint => unreachable!("not the last range of a finished log"),
                TorrentFile::Tile(tile) => {
                    let raw = std::fs::read(dir.join(tile.path())).unwrap();
                    if tile.level == Level::Data {
                        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut all).unwrap();
                    } else {
                        all.extend_from_slice(&raw);
                    }
                }
            }
        }
        all
    }

    #[test]
    fn data_and_level0_tiles_are_asked_for_in_turn_except_in_a_finished_logs_last_range() {
        let (_dir, _server, tree) = served_log(2048 + 17);
        let mut log = stream(&tree, 2);
        let kinds = |jobs: Vec<Job>| -> String {
            jobs.iter()
                .map(|job| match job {
                    Job::Start(_) => "S".to_string(),
                    Job::End(_) => "E".to_string(),
                    Job::Upper(level, index) => format!("U{level}.{index}"),
                    Job::Level0(index) | Job::Level0Edge(index) => format!("L{index}"),
                    Job::Data(index) | Job::DataEdge(index, _) => format!("D{index}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let range = TorrentRange { start: 1024, end: 2048 };
        assert_eq!(kinds(jobs_of(&log, range)), "S U1.0 D4 L4 D5 L5 D6 L6 D7 L7 E");
        let last = TorrentRange { start: 1024, end: 2048 + 17 };
        log.finale = Some(Finale { range: last, checkpoint: Bytes::from_static(b"checkpoint\n") });
        assert_eq!(kinds(jobs_of(&log, last)), "S U1.0 D4 L4 L5 L6 L7 L8 D5 D6 D7 D8 E");
    }

    #[test]
    fn pieces_hashed_in_two_streams_are_those_of_the_whole_content() {
        use sha1::{Digest, Sha1};
        let (dir, _server, tree) = served_log(2048 + 17);
        let log = stream(&tree, 3);
        let range = TorrentRange { start: 1024, end: 2048 };
        let content = content_bytes(dir.path(), &log, range);
        let expected_files: Vec<String> = range.content().iter().map(TorrentFile::path).collect();
        let size = content.len() as u64;
        let exact = piece_length(size);
        // The data bytes before the second stream's first piece: within the
        // first data tile, across data tiles (a long candidate kept), and all
        // of them (a candidate longer than the range).
        for guess in [None, Some(vec![exact]), Some(vec![exact, 1 << 20]), Some(vec![exact, 4 << 20])] {
            let hashed = match &guess {
                None => build_all(&log, vec![range]).pop().unwrap().1,
                Some(candidates) => stream_one(&log, range, Guess::Forced(candidates.clone())).unwrap(),
            };
            let RangeHashes::V1 { piece_length, pieces } = &hashed.hashes else { panic!("v1 expected") };
            assert_eq!(*piece_length, exact);
            let reference: Vec<PieceHash> =
                content.chunks(exact as usize).map(|chunk| Sha1::digest(chunk).into()).collect();
            assert_eq!(pieces, &reference, "{guess:?}");
            assert_eq!(hashed.content_length(), size);
            let files: Vec<String> = hashed.files.iter().map(|file| file.path.clone()).collect();
            assert_eq!(files, expected_files, "content order");
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
