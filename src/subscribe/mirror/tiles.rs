//! Where each tile `helio mirror` serves comes from, and how it is
//! authenticated against the checkpoint first (RFC 6962 Merkle hashing, the
//! tile layout of C2SP tlog-tiles and static-ct-api).
//!
//! - The right edge of every level (the partial tiles the tree size leaves)
//!   was fetched from the site and hashed to the checkpoint's root when the
//!   tree was opened, as for `helio verify`.
//! - Full hash tiles come from the downloaded ranges, else from the site's
//!   proof tiles, else from `--upstream`; each is accepted only if its tree
//!   hash is its entry in the parent tile, itself found the same way, up to
//!   the right edge.
//! - A full data tile comes from a downloaded range or from `--upstream`: it
//!   must parse (256 entries with the right `leaf_index`) and its leaf hashes
//!   must hash to its entry in level 1. The partial data tile of the right
//!   edge comes from the last range of a finished log when it was
//!   downloaded, else from `--upstream` (or is cut from the full tile when
//!   the log has grown past it), its leaf hashes equal to the level-0 right
//!   edge.
//! - An issuer certificate comes from `--upstream` and must hash (SHA-256)
//!   to the fingerprint it is asked by.
//!
//! The downloaded ranges were proved once at startup; their files are read
//! again, and checked again, each time a tile is not in the server's cache,
//! so a file changed since then is refused rather than served. A data tile
//! read from a download whose torrent the site has is also checked against
//! the torrent's pieces that hold it ([`super::super::pieces`]), which bind
//! the precertificate and chain bytes the checkpoint does not. Everything
//! here blocks (file reads, `ureq`): the server runs it on tokio's blocking
//! pool.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::super::pieces;
use super::super::range_folder::RangeFolder;
use super::super::verify::RangeVerifyError;
use crate::log::body::BodyLimit;
use crate::log::merkle::{Hash, perfect_root};
use crate::log::source::{BodyKind, FetchError, Location, LogSource, RetryPolicy, http_agent};
use crate::log::tile::{FULL_HASH_TILE_BYTES, HASH_SIZE, Level, TILE_WIDTH, TileId};
use crate::log::tile_leaf::{TileLeafError, leaf_hashes, prefix_len};
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::tile_cache::{MAX_DATA_TILE, TileMemory};
use crate::torrent::metainfo::TorrentLayout;
use crate::torrent::range::TorrentRange;

/// The largest issuer certificate accepted (real ones are 1–2 KB).
const MAX_ISSUER: u64 = 64 << 10;
/// Upper-level hash tiles fetched from `--upstream` to authenticate others,
/// kept (8 KB each) so that they are fetched once.
const UPSTREAM_PARENTS: usize = 1024;

/// Authenticated hash tiles by level and index.
type HashTiles = HashMap<(u8, u64), Arc<Vec<Hash>>>;

/// Why a tile cannot be served. Every variant names the tile, file or URL.
#[derive(Debug, Error)]
pub enum TileError {
    #[error("{tile} is not in the tree of size {size}")]
    NotInTree { tile: String, size: u64 },
    #[error("{what}: not in the downloaded ranges, and there is no --upstream to fetch it from")]
    NotHere { what: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Tree(#[from] VerifyError),
    #[error("{url}: {got} bytes, but a hash tile of width {width} has {} bytes", usize::from(*width) * HASH_SIZE)]
    Length { url: String, width: u16, got: usize },
    #[error("{url}: {source}")]
    DataTile { url: String, source: TileLeafError },
    #[error("{url}: its tree hash is not entry {entry} of {parent}: not a tile of the checkpoint's tree")]
    Mismatch { url: String, parent: String, entry: u64 },
    #[error("{url}: its leaf hashes are not {level0}, the right edge of the checkpoint's tree")]
    Edge { url: String, level0: String },
    #[error("{url}: its SHA-256 is not the fingerprint it was asked by")]
    Issuer { url: String },
    #[error(transparent)]
    Download(Box<RangeVerifyError>),
}

impl TileError {
    /// The tile is not here, as opposed to something that failed: 404.
    pub fn is_not_found(&self) -> bool {
        match self {
            TileError::NotInTree { .. } | TileError::NotHere { .. } => true,
            TileError::Fetch(error) | TileError::Tree(VerifyError::Fetch(error)) => error.is_not_found(),
            _ => false,
        }
    }
}

/// The tiles of one checkpoint's tree, from the downloads, the site and the upstream.
pub struct MirrorTiles {
    size: u64,
    /// The site's tree: its right edge, and its proof tiles on demand.
    tree: VerifiedTree,
    /// The full tiles the site holds as proof tiles.
    proof: BTreeSet<TileId>,
    /// The downloaded ranges, each with its folder as a source.
    ranges: Vec<(TorrentRange, LogSource)>,
    /// The same ranges' folders, and their torrents when the site has them.
    downloads: Vec<(RangeFolder, Option<(TorrentLayout, String)>)>,
    /// Authenticated level-1 tiles above the downloaded ranges.
    level1: HashMap<u64, Arc<Vec<Hash>>>,
    upstream: Option<LogSource>,
    /// Upper-level tiles fetched from the upstream.
    parents: Mutex<HashTiles>,
    /// Where read and fetched tile bytes are charged.
    memory: Arc<TileMemory>,
}

impl MirrorTiles {
    /// `tree` is the checkpoint's tree opened on the site; `downloads` the
    /// folders proved against it (with their torrents when the site has
    /// them), with `level1` the level-1 tiles above them.
    pub fn new(
        tree: VerifiedTree,
        proof: BTreeSet<TileId>,
        downloads: Vec<(RangeFolder, Option<(TorrentLayout, String)>)>,
        level1: HashMap<u64, Arc<Vec<Hash>>>,
        upstream: Option<LogSource>,
        memory: Arc<TileMemory>,
    ) -> MirrorTiles {
        // Folder sources never use the agent.
        let agent = http_agent(None, 1);
        let ranges = downloads
            .iter()
            .map(|(folder, _)| {
                let location = Location::Dir(folder.path.clone());
                (folder.range, LogSource::new(&location, &agent, RetryPolicy::default()))
            })
            .collect();
        let proof = proof.into_iter().filter(TileId::is_full).collect();
        MirrorTiles {
            size: tree.size(),
            tree,
            proof,
            ranges,
            downloads,
            level1,
            upstream,
            parents: Mutex::new(HashMap::new()),
            memory,
        }
    }

    pub fn has_upstream(&self) -> bool {
        self.upstream.is_some()
    }

    /// Whether `tile` is a tile of the tree: a full tile below its right
    /// edge, or exactly the right edge's partial tile.
    pub fn in_tree(&self, tile: TileId) -> bool {
        let count = match tile.level {
            Level::Hash(level) => self.size.checked_shr(8 * u32::from(level)).unwrap_or(0),
            Level::Data => self.size,
        };
        if tile.is_full() {
            tile.index < count / TILE_WIDTH
        } else {
            tile.index == count / TILE_WIDTH && u64::from(tile.width) == count % TILE_WIDTH
        }
    }

    /// The bytes of `tile`, authenticated.
    pub fn get(&self, tile: TileId) -> Result<Bytes, TileError> {
        if !self.in_tree(tile) {
            return Err(TileError::NotInTree { tile: tile.path(), size: self.size });
        }
        match tile.level {
            Level::Hash(level) => Ok(Bytes::from(self.entries(level, tile.index)?.concat())),
            Level::Data if tile.is_full() => self.data_tile(tile.index),
            Level::Data => self.edge_data_tile(tile.index, tile.width),
        }
    }

    /// The issuer certificate of SHA-256 `fingerprint`, from the upstream.
    pub fn issuer(&self, fingerprint: &[u8; 32]) -> Result<Bytes, TileError> {
        let hex = hex::encode(fingerprint);
        let path = format!("issuer/{hex}");
        let upstream = self.upstream.as_ref().ok_or_else(|| TileError::NotHere { what: path.clone() })?;
        let bytes = upstream.fetch_within(&path, BodyKind::Opaque, &self.limit(MAX_ISSUER))?;
        if Sha256::digest(&bytes)[..] != fingerprint[..] {
            return Err(TileError::Issuer { url: upstream.describe(&path) });
        }
        Ok(bytes)
    }

    /// The authenticated entries of hash tile `index` of `level`: all 256
    /// of a full tile, the right edge's of the last.
    fn entries(&self, level: u8, index: u64) -> Result<Arc<Vec<Hash>>, TileError> {
        let count = self.size.checked_shr(8 * u32::from(level)).unwrap_or(0);
        if index == count / TILE_WIDTH && !count.is_multiple_of(TILE_WIDTH) {
            return Ok(self.tree.hash_tile(level, index)?);
        }
        let tile = TileId::hash(level, index);
        if index >= count / TILE_WIDTH {
            return Err(TileError::NotInTree { tile: tile.path(), size: self.size });
        }
        if level == 1
            && let Some(entries) = self.level1.get(&index)
        {
            return Ok(Arc::clone(entries));
        }
        if let Some(entries) = self.remembered(level, index) {
            return Ok(entries);
        }
        if level == 0
            && let Some(local) = self.local(tile)
        {
            return self.checked_hash_tile(local, tile);
        }
        if self.proof.contains(&tile) {
            match self.tree.hash_tile(level, index) {
                Ok(entries) => return Ok(entries),
                // A site missing a proof tile: the upstream may have it.
                Err(VerifyError::Fetch(error)) if error.is_not_found() && self.upstream.is_some() => {
                    tracing::warn!("{error}: a proof tile missing from the site; asking the upstream");
                }
                Err(error) => return Err(error.into()),
            }
        }
        let upstream = self.upstream.as_ref().ok_or_else(|| TileError::NotHere { what: tile.path() })?;
        let entries = self.checked_hash_tile(upstream, tile)?;
        if level > 0 {
            self.remember(level, index, Arc::clone(&entries));
        }
        Ok(entries)
    }

    /// Entry `index` of level `level`: the tree hash of the complete
    /// subtree of 256^level leaves starting at leaf `index`·256^level.
    fn node(&self, level: u8, index: u64) -> Result<Hash, TileError> {
        let tile = self.entries(level, index / TILE_WIDTH)?;
        let entry = (index % TILE_WIDTH) as usize;
        tile.get(entry).copied().ok_or_else(|| TileError::NotInTree {
            tile: format!("entry {entry} of {}", TileId::hash(level, index / TILE_WIDTH).path()),
            size: self.size,
        })
    }

    /// Reads full hash tile `tile` from `source` and checks it against its
    /// entry in the level above.
    fn checked_hash_tile(&self, source: &LogSource, tile: TileId) -> Result<Arc<Vec<Hash>>, TileError> {
        let Level::Hash(level) = tile.level else {
            return Err(TileError::NotInTree { tile: tile.path(), size: self.size });
        };
        let path = tile.path();
        let bytes = source.fetch_within(&path, BodyKind::Opaque, &self.limit(FULL_HASH_TILE_BYTES as u64))?;
        if bytes.len() != FULL_HASH_TILE_BYTES {
            return Err(TileError::Length { url: source.describe(&path), width: tile.width, got: bytes.len() });
        }
        let entries: Vec<Hash> = bytes.chunks_exact(HASH_SIZE).map(|c| c.try_into().unwrap_or([0; 32])).collect();
        if perfect_root(&entries) != self.node(level + 1, tile.index)? {
            return Err(self.mismatch(source, tile));
        }
        Ok(Arc::new(entries))
    }

    /// Full data tile `index`, from a download or the upstream, checked
    /// against its entry in level 1.
    fn data_tile(&self, index: u64) -> Result<Bytes, TileError> {
        let tile = TileId::data(index);
        let source = match self.local(tile) {
            Some(local) => local,
            None => self.upstream.as_ref().ok_or_else(|| TileError::NotHere { what: tile.path() })?,
        };
        let path = tile.path();
        let bytes = source.fetch_within(&path, BodyKind::Sniffable, &self.limit(MAX_DATA_TILE))?;
        let read = leaf_hashes(&bytes, index * TILE_WIDTH, TILE_WIDTH as usize)
            .map_err(|source_error| TileError::DataTile { url: source.describe(&path), source: source_error })?;
        if perfect_root(&read.hashes) != self.node(1, index)? {
            return Err(self.mismatch(source, tile));
        }
        self.check_pieces(source, tile)?;
        Ok(bytes)
    }

    /// When `tile` was read from a download whose torrent the site has,
    /// checks it against the torrent's pieces that hold it.
    fn check_pieces(&self, source: &LogSource, tile: TileId) -> Result<(), TileError> {
        let Some(at) = self.ranges.iter().position(|(_, local)| std::ptr::eq(local, source)) else {
            return Ok(());
        };
        let Some((folder, Some((layout, url)))) = self.downloads.get(at) else { return Ok(()) };
        pieces::check_file(folder, layout, url, &tile.path()).map_err(|error| TileError::Download(Box::new(error)))
    }

    /// The partial data tile at the right edge: from the last range of a
    /// finished log when it was downloaded (docs/final.md), else from the
    /// upstream, as a partial tile or cut from the full tile once the log
    /// has one.
    fn edge_data_tile(&self, index: u64, width: u16) -> Result<Bytes, TileError> {
        let tile = TileId::data(index).with_width(width);
        let limit = self.limit(MAX_DATA_TILE);
        let last = self.ranges.iter().find(|(range, _)| range.end == self.size && range.start / TILE_WIDTH <= index);
        let carried = match last {
            Some((_, local)) => match local.fetch_within(&tile.path(), BodyKind::Sniffable, &limit) {
                Ok(bytes) => {
                    self.check_pieces(local, tile)?;
                    Some((bytes, local.describe(&tile.path())))
                }
                Err(error) if error.is_not_found() => None,
                Err(error) => return Err(error.into()),
            },
            None => None,
        };
        let (bytes, url) = match carried {
            Some(carried) => carried,
            None => self.upstream_edge_data_tile(tile, &limit)?,
        };
        let read = leaf_hashes(&bytes, index * TILE_WIDTH, usize::from(width))
            .map_err(|source| TileError::DataTile { url: url.clone(), source })?;
        let edge = self.tree.hash_tile(0, index)?;
        if read.hashes != *edge {
            return Err(TileError::Edge { url, level0: TileId::hash(0, index).with_width(width).path() });
        }
        Ok(bytes)
    }

    /// The partial data tile `tile` from the upstream, with where it came from.
    fn upstream_edge_data_tile(&self, tile: TileId, limit: &BodyLimit) -> Result<(Bytes, String), TileError> {
        let width = tile.width;
        let upstream = self.upstream.as_ref().ok_or_else(|| TileError::NotHere { what: tile.path() })?;
        Ok(match upstream.fetch_within(&tile.path(), BodyKind::Sniffable, limit) {
            Ok(bytes) => (bytes, upstream.describe(&tile.path())),
            Err(error) if error.is_not_found() => {
                let full = tile.full().path();
                let bytes = upstream.fetch_within(&full, BodyKind::Sniffable, limit)?;
                let url = upstream.describe(&full);
                let len = prefix_len(&bytes, usize::from(width)).unwrap_or(bytes.len());
                (bytes.slice(..len), url)
            }
            Err(error) => return Err(error.into()),
        })
    }

    /// The downloaded range holding full tile `tile`, as a source.
    fn local(&self, tile: TileId) -> Option<&LogSource> {
        self.ranges
            .iter()
            .find(|(range, _)| match tile.level {
                Level::Data | Level::Hash(0) => range.tile_indexes().contains(&tile.index),
                Level::Hash(1) => range.level1_indexes().contains(&tile.index),
                Level::Hash(_) => false,
            })
            .map(|(_, source)| source)
    }

    fn mismatch(&self, source: &LogSource, tile: TileId) -> TileError {
        let level = match tile.level {
            Level::Hash(level) => level + 1,
            Level::Data => 1,
        };
        TileError::Mismatch {
            url: source.describe(&tile.path()),
            parent: self.tree.parent_path(level, tile.index),
            entry: tile.index % TILE_WIDTH,
        }
    }

    fn limit(&self, max: u64) -> BodyLimit {
        BodyLimit::within(max, self.memory.clone())
    }

    fn remembered(&self, level: u8, index: u64) -> Option<Arc<Vec<Hash>>> {
        self.parents.lock().ok()?.get(&(level, index)).cloned()
    }

    fn remember(&self, level: u8, index: u64, entries: Arc<Vec<Hash>>) {
        let Ok(mut parents) = self.parents.lock() else { return };
        if parents.len() >= UPSTREAM_PARENTS {
            parents.clear();
        }
        parents.insert((level, index), entries);
    }
}
