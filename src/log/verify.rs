//! Merkle verification of a log's tiles against a checkpoint (docs/spec.md §3.3).
//!
//! Opening a [`VerifiedTree`] fetches the right-edge tile of every level (the
//! partial tiles the tree size leaves, or the full tile they are a prefix of
//! when a partial is gone) and recomputes the root. If it equals the
//! checkpoint's root, every hash in those tiles is authenticated. Any other
//! hash tile is authenticated by hashing it and finding that hash in its
//! parent tile, which is authenticated the same way, up to the right edge.
//! Level-0 and data tiles of a range are then checked against the level-1
//! tiles above them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use thiserror::Error;

use super::checkpoint::Checkpoint;
use super::merkle::{Hash, perfect_root, root_from_right_edge};
use super::source::{BodyKind, FetchError, LogSource};
use super::tile::{FULL_HASH_TILE_BYTES, HASH_SIZE, TILE_WIDTH, TileId};
use super::tile_leaf::{TileLeafError, leaf_hashes};

/// Level-1 tiles kept between ranges; upper levels are few and always kept.
const LEVEL1_CACHE_TILES: usize = 256;

/// Why the log's tiles could not be verified. Every variant names the tile.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: {got} bytes, but a hash tile of width {width} has {} bytes", usize::from(*width) * HASH_SIZE)]
    TileLength { url: String, width: u16, got: usize },
    #[error(
        "the log's tiles give root {computed} for tree size {size}, but the checkpoint says {checkpoint}: \
         the checkpoint does not describe this log's tree"
    )]
    RootMismatch { size: u64, checkpoint: String, computed: String },
    #[error("{url}: its tree hash is not entry {entry} of {parent}: the tile does not belong to the verified tree")]
    TileMismatch { url: String, parent: String, entry: u64 },
    #[error("{url}: {source}")]
    DataTile { url: String, source: TileLeafError },
    #[error("{url}: the entries' leaf hashes do not match {level0} (their tree hash is not entry {entry} of {parent})")]
    LeafHashes { url: String, level0: String, parent: String, entry: u64 },
    #[error(
        "the log's tree of size {new_size} does not contain the checkpoint of size {old_size} that helio verified before \
         (root {old_root}): the log forked or rewrote its history"
    )]
    Inconsistent { old_size: u64, new_size: u64, old_root: String },
    #[error("{url}: the entries' leaf hashes are not {level0}, the right edge of the verified tree")]
    EdgeLeafHashes { url: String, level0: String },
    #[error("{tile} is beyond the tree of size {size}")]
    NotInTree { tile: String, size: u64 },
    #[error("{url}: not found, and neither is the full tile it is a prefix of")]
    EdgeMissing { url: String },
}

/// A log's tree at one checkpoint, with the hash tiles authenticated so far.
pub struct VerifiedTree {
    source: LogSource,
    size: u64,
    /// Entries of the right-edge tile of each level (empty when the level ends
    /// on a tile boundary).
    edge: Vec<Arc<Vec<Hash>>>,
    cache: Mutex<HashTileCache>,
}

#[derive(Default)]
struct HashTileCache {
    tiles: HashMap<(u8, u64), Arc<Vec<Hash>>>,
    level1_order: VecDeque<u64>,
}

impl VerifiedTree {
    /// Fetches the right edge of the tree (every level at once) and checks
    /// it against the root.
    pub fn open(source: LogSource, checkpoint: &Checkpoint) -> Result<VerifiedTree, VerifyError> {
        let size = checkpoint.size;
        let levels: Vec<u8> = (0u8..8).take_while(|&level| size >> (8 * u32::from(level)) > 0).collect();
        let fetch_level = |level: u8| -> Result<Vec<Hash>, VerifyError> {
            let count = size >> (8 * u32::from(level));
            let width = (count % TILE_WIDTH) as u16;
            if width == 0 { Ok(Vec::new()) } else { fetch_edge_tile(&source, level, count / TILE_WIDTH, width) }
        };
        let fetched: Vec<Result<Vec<Hash>, VerifyError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = levels.iter().map(|&level| scope.spawn(move || fetch_level(level))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new()))).collect()
        });
        let mut edge = Vec::with_capacity(fetched.len());
        for entries in fetched {
            edge.push(Arc::new(entries?));
        }
        let slices: Vec<&[Hash]> = edge.iter().map(|e| e.as_slice()).collect();
        let computed = root_from_right_edge(&slices);
        if computed != checkpoint.root {
            return Err(VerifyError::RootMismatch {
                size,
                checkpoint: base64(&checkpoint.root),
                computed: base64(&computed),
            });
        }
        Ok(VerifiedTree { source, size, edge, cache: Mutex::new(HashTileCache::default()) })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn source(&self) -> &LogSource {
        &self.source
    }

    /// Entry `index` of tile level `level`: the root of the complete subtree of
    /// 256^level leaves starting at leaf `index·256^level`.
    pub fn node(&self, level: u8, index: u64) -> Result<Hash, VerifyError> {
        let tile = self.hash_tile(level, index / TILE_WIDTH)?;
        let entry = (index % TILE_WIDTH) as usize;
        tile.get(entry).copied().ok_or_else(|| VerifyError::NotInTree {
            tile: format!("entry {entry} of {}", TileId::hash(level, index / TILE_WIDTH).path()),
            size: self.size,
        })
    }

    /// The authenticated entries of a hash tile: all 256 for a full tile, the
    /// tree's right-edge entries for the last tile of a level.
    pub fn hash_tile(&self, level: u8, index: u64) -> Result<Arc<Vec<Hash>>, VerifyError> {
        let count = self.size.checked_shr(8 * u32::from(level)).unwrap_or(0);
        let full_tiles = count / TILE_WIDTH;
        if index == full_tiles && !count.is_multiple_of(TILE_WIDTH) {
            return Ok(self.edge[usize::from(level)].clone());
        }
        if index >= full_tiles {
            return Err(VerifyError::NotInTree { tile: TileId::hash(level, index).path(), size: self.size });
        }
        if let Some(tile) = self.cached(level, index) {
            return Ok(tile);
        }
        let tile = TileId::hash(level, index);
        let entries = fetch_hash_tile(&self.source, tile)?;
        let expected = self.node(level + 1, index)?;
        if perfect_root(&entries) != expected {
            return Err(VerifyError::TileMismatch {
                url: self.source.describe(&tile.path()),
                parent: self.parent_path(level + 1, index),
                entry: index % TILE_WIDTH,
            });
        }
        let entries = Arc::new(entries);
        self.remember(level, index, entries.clone());
        Ok(entries)
    }

    /// Checks that this tree contains an earlier checkpoint's tree: the old
    /// root is recomputed from this tree's authenticated tiles.
    pub fn check_consistency(&self, old: &Checkpoint) -> Result<(), VerifyError> {
        let inconsistent =
            || VerifyError::Inconsistent { old_size: old.size, new_size: self.size, old_root: base64(&old.root) };
        if old.size > self.size {
            return Err(inconsistent());
        }
        let mut edge = Vec::new();
        let mut level = 0u8;
        while old.size >> (8 * u32::from(level)) > 0 {
            let count = old.size >> (8 * u32::from(level));
            let width = (count % TILE_WIDTH) as usize;
            let entries =
                if width == 0 { Vec::new() } else { self.hash_tile(level, count / TILE_WIDTH)?[..width].to_vec() };
            edge.push(entries);
            level += 1;
        }
        let slices: Vec<&[Hash]> = edge.iter().map(Vec::as_slice).collect();
        if root_from_right_edge(&slices) != old.root {
            return Err(inconsistent());
        }
        Ok(())
    }

    /// The tree hash of a full level-0 tile (what its entry in level 1 must be).
    pub fn level0_root(&self, index: u64, bytes: &[u8]) -> Result<Hash, VerifyError> {
        Ok(perfect_root(&hashes_of(&self.source, TileId::hash(0, index), bytes)?))
    }

    /// Parses a full data tile and checks each entry's leaf index; returns the
    /// tree hash of its leaf hashes (what its entry in level 1 must be) and the
    /// timestamp of its last entry.
    pub fn data_root(&self, index: u64, bytes: &[u8]) -> Result<(Hash, u64), VerifyError> {
        let tile = TileId::data(index);
        let read = leaf_hashes(bytes, index * TILE_WIDTH, TILE_WIDTH as usize)
            .map_err(|source| VerifyError::DataTile { url: self.source.describe(&tile.path()), source })?;
        Ok((perfect_root(&read.hashes), read.last_timestamp))
    }

    /// Parses the partial data tile `index` of `width` entries at the tree's
    /// right edge and checks its leaf hashes against the level-0 right edge,
    /// authenticated when the tree was opened. Returns the timestamp of its
    /// last entry.
    pub fn check_edge_data(&self, index: u64, width: u16, bytes: &[u8]) -> Result<u64, VerifyError> {
        let tile = TileId::data(index).with_width(width);
        let url = self.source.describe(&tile.path());
        let read = leaf_hashes(bytes, index * TILE_WIDTH, usize::from(width))
            .map_err(|source| VerifyError::DataTile { url: url.clone(), source })?;
        let edge = self.hash_tile(0, index)?;
        if edge.len() != usize::from(width) || read.hashes != *edge {
            return Err(VerifyError::EdgeLeafHashes { url, level0: TileId::hash(0, index).with_width(width).path() });
        }
        Ok(read.last_timestamp)
    }

    /// The error for a level-0 tile whose tree hash is not its entry in level 1.
    pub fn level0_mismatch(&self, index: u64) -> VerifyError {
        VerifyError::TileMismatch {
            url: self.source.describe(&TileId::hash(0, index).path()),
            parent: self.parent_path(1, index),
            entry: index % TILE_WIDTH,
        }
    }

    /// The error for a data tile whose leaf hashes do not hash to its entry in level 1.
    pub fn data_mismatch(&self, index: u64) -> VerifyError {
        VerifyError::LeafHashes {
            url: self.source.describe(&TileId::data(index).path()),
            level0: TileId::hash(0, index).path(),
            parent: self.parent_path(1, index),
            entry: index % TILE_WIDTH,
        }
    }

    /// Checks a full level-0 tile's bytes against `expected`, its entry in level 1.
    pub fn check_level0_tile(&self, index: u64, bytes: &[u8], expected: &Hash) -> Result<(), VerifyError> {
        if self.level0_root(index, bytes)? != *expected {
            return Err(self.level0_mismatch(index));
        }
        Ok(())
    }

    /// Parses a full data tile, checks each entry's leaf index, and checks its
    /// leaf hashes against `expected`, the tile's entry in level 1. Returns the
    /// timestamp of its last entry.
    pub fn check_data_tile(&self, index: u64, bytes: &[u8], expected: &Hash) -> Result<u64, VerifyError> {
        let (root, last_timestamp) = self.data_root(index, bytes)?;
        if root != *expected {
            return Err(self.data_mismatch(index));
        }
        Ok(last_timestamp)
    }

    /// The path of the tile at `level` holding entry `index`, as it was read
    /// (partial when it is the right edge).
    pub fn parent_path(&self, level: u8, index: u64) -> String {
        let count = self.size.checked_shr(8 * u32::from(level)).unwrap_or(0);
        let tile = TileId::hash(level, index / TILE_WIDTH);
        if index / TILE_WIDTH == count / TILE_WIDTH {
            tile.with_width((count % TILE_WIDTH) as u16).path()
        } else {
            tile.path()
        }
    }

    fn cached(&self, level: u8, index: u64) -> Option<Arc<Vec<Hash>>> {
        self.cache.lock().ok()?.tiles.get(&(level, index)).cloned()
    }

    fn remember(&self, level: u8, index: u64, entries: Arc<Vec<Hash>>) {
        // Level-0 tiles are checked by the range pipeline as they stream by,
        // not kept; level-1 tiles are kept up to a bound; higher ones are few.
        if level == 0 {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else { return };
        if level == 1 {
            cache.level1_order.push_back(index);
            if cache.level1_order.len() > LEVEL1_CACHE_TILES
                && let Some(old) = cache.level1_order.pop_front()
            {
                cache.tiles.remove(&(1, old));
            }
        }
        cache.tiles.insert((level, index), entries);
    }
}

fn fetch_hash_tile(source: &LogSource, tile: TileId) -> Result<Vec<Hash>, VerifyError> {
    let bytes = source.fetch(&tile.path(), BodyKind::Opaque)?;
    hashes_of(source, tile, &bytes)
}

/// The right-edge tile of a level: the partial tile, or when a log has already
/// replaced it, the prefix of the full tile.
fn fetch_edge_tile(source: &LogSource, level: u8, index: u64, width: u16) -> Result<Vec<Hash>, VerifyError> {
    let partial = TileId::hash(level, index).with_width(width);
    match fetch_hash_tile(source, partial) {
        Err(VerifyError::Fetch(e)) if e.is_not_found() => match fetch_hash_tile(source, partial.full()) {
            Ok(mut entries) => {
                entries.truncate(usize::from(width));
                Ok(entries)
            }
            Err(VerifyError::Fetch(e)) if e.is_not_found() => {
                Err(VerifyError::EdgeMissing { url: source.describe(&partial.path()) })
            }
            Err(other) => Err(other),
        },
        other => other,
    }
}

fn hashes_of(source: &LogSource, tile: TileId, bytes: &[u8]) -> Result<Vec<Hash>, VerifyError> {
    let expected = usize::from(tile.width) * HASH_SIZE;
    if bytes.len() != expected {
        return Err(VerifyError::TileLength {
            url: source.describe(&tile.path()),
            width: tile.width,
            got: bytes.len(),
        });
    }
    debug_assert!(bytes.len() <= FULL_HASH_TILE_BYTES);
    Ok(bytes.chunks_exact(HASH_SIZE).map(|c| c.try_into().unwrap_or([0; 32])).collect())
}

fn base64(hash: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// Writes every full hash tile and each level's right-edge partial of the
/// tree over `leaves` into `dir` (a hash-only log for tests).
#[cfg(test)]
pub(crate) fn write_hash_tiles(dir: &std::path::Path, leaves: &[Hash]) {
    let mut level = leaves.to_vec();
    let mut l = 0u8;
    while !level.is_empty() {
        for (i, chunk) in level.chunks(256).enumerate() {
            let mut tile = TileId::hash(l, i as u64);
            if chunk.len() < 256 {
                tile = tile.with_width(chunk.len() as u16);
            }
            let path = dir.join(tile.path());
            std::fs::create_dir_all(path.parent().unwrap_or(dir)).unwrap_or_default();
            std::fs::write(path, chunk.concat()).unwrap_or_default();
        }
        level = level.chunks_exact(256).map(perfect_root).collect();
        l += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::merkle::tree_hash;
    use crate::log::source::{Location, RetryPolicy, http_agent};

    fn navigli(size: u64, root: &str) -> (LogSource, Checkpoint) {
        let dir = crate::real_fixtures().join("navigli2025h2");
        let source = LogSource::new(&Location::Dir(dir), &http_agent(None, 1), RetryPolicy::default());
        let text = format!("navigli2025h2.sunlight.geomys.org\n{size}\n{root}\n\n— x AAAAAAA=\n");
        (source, Checkpoint::parse(text.as_bytes()).unwrap())
    }

    const ROOT_256: &str = "bIAheYeHkQOXeHKw0PKjttmJ2hGtGU/VDxU5b0SAb+c=";
    const ROOT_778: &str = "+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=";
    const ROOT_1024: &str = "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=";

    #[test]
    fn real_navigli_roots_verify_from_the_right_edge() {
        for (size, root) in [(1024, ROOT_1024), (778, ROOT_778)] {
            let (source, checkpoint) = navigli(size, root);
            let tree = VerifiedTree::open(source, &checkpoint).unwrap();
            assert_eq!(tree.size(), size);
        }
    }

    #[test]
    fn real_navigli_tiles_verify_against_level1() {
        let (source, checkpoint) = navigli(1024, ROOT_1024);
        let tree = VerifiedTree::open(source.clone(), &checkpoint).unwrap();
        for index in 0..4u64 {
            let expected = tree.node(1, index).unwrap();
            let level0 = source.fetch(&TileId::hash(0, index).path(), BodyKind::Opaque).unwrap();
            tree.check_level0_tile(index, &level0, &expected).unwrap();
            let data = source.fetch(&TileId::data(index).path(), BodyKind::Sniffable).unwrap();
            tree.check_data_tile(index, &data, &expected).unwrap();
        }
        let hex = hex::encode(&tree.node(1, 0).unwrap()[..4]);
        assert_eq!(hex, "6c802179");
    }

    #[test]
    fn navigli_1024_contains_the_trees_of_256_and_778() {
        let (source, checkpoint) = navigli(1024, ROOT_1024);
        let tree = VerifiedTree::open(source, &checkpoint).unwrap();
        for (size, root) in [(256, ROOT_256), (778, ROOT_778), (1024, ROOT_1024)] {
            let old = navigli(size, root).1;
            tree.check_consistency(&old).unwrap();
        }
        let forged = navigli(778, ROOT_256).1;
        let error = tree.check_consistency(&forged).unwrap_err().to_string();
        assert!(error.contains("does not contain the checkpoint of size 778"), "{error}");
    }

    #[test]
    fn a_lying_root_is_rejected() {
        let (source, checkpoint) = navigli(1024, ROOT_778);
        let error = VerifiedTree::open(source, &checkpoint).err().unwrap().to_string();
        assert!(error.contains(&format!("for tree size 1024, but the checkpoint says {ROOT_778}")), "{error}");
    }

    #[test]
    fn altered_tiles_are_named() {
        let real = crate::real_fixtures();
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&real.join("navigli2025h2"), dir.path());
        // Flip one byte inside the first certificate: still parses, wrong hash.
        let path = dir.path().join("tile/data/002");
        let mut altered = std::fs::read(&path).unwrap();
        altered[100] ^= 1;
        std::fs::write(&path, &altered).unwrap();
        let source = LogSource::new(&Location::Dir(dir.path().into()), &http_agent(None, 1), RetryPolicy::default());
        let checkpoint = navigli(1024, ROOT_1024).1;
        let tree = VerifiedTree::open(source.clone(), &checkpoint).unwrap();
        let bytes = source.fetch("tile/data/002", BodyKind::Sniffable).unwrap();
        let error = tree.check_data_tile(2, &bytes, &tree.node(1, 2).unwrap()).unwrap_err().to_string();
        assert!(error.contains("tile/data/002: the entries' leaf hashes do not match tile/0/002"), "{error}");
        assert!(error.contains("entry 2 of tile/1/000.p/4"), "{error}");
        // A level-0 tile from elsewhere in the tree.
        let wrong = source.fetch("tile/0/001", BodyKind::Opaque).unwrap();
        let error = tree.check_level0_tile(2, &wrong, &tree.node(1, 2).unwrap()).unwrap_err().to_string();
        assert!(error.contains("its tree hash is not entry 2 of tile/1/000.p/4"), "{error}");
        // A short hash tile.
        let error = tree.check_level0_tile(2, &wrong[..8160], &tree.node(1, 2).unwrap()).unwrap_err().to_string();
        assert!(error.contains("8160 bytes, but a hash tile of width 256 has 8192 bytes"), "{error}");
    }

    #[test]
    fn a_missing_partial_falls_back_to_the_full_tile() {
        let real = crate::real_fixtures();
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&real.join("navigli2025h2"), dir.path());
        // For size 778 the level-0 edge is tile 3 of width 10; remove the partial.
        std::fs::remove_dir_all(dir.path().join("tile/0/003.p")).unwrap();
        let source = LogSource::new(&Location::Dir(dir.path().into()), &http_agent(None, 1), RetryPolicy::default());
        let checkpoint = navigli(778, ROOT_778).1;
        VerifiedTree::open(source.clone(), &checkpoint).unwrap();
        std::fs::remove_file(dir.path().join("tile/0/003")).unwrap();
        let error = VerifiedTree::open(source, &checkpoint).err().unwrap().to_string();
        assert!(error.contains("tile/0/003.p/10: not found, and neither is the full tile"), "{error}");
    }

    #[test]
    fn synthetic_trees_of_many_shapes_verify() {
        // Trees past one level-2 tile exercise full tiles authenticated through
        // full parents and partial grandparents.
        for size in [1u64, 255, 256, 257, 65535, 65536, 65537, 65536 * 3 + 256 * 5 + 7] {
            let dir = tempfile::tempdir().unwrap();
            let leaves: Vec<Hash> = (0..size).map(|i| crate::log::merkle::leaf_hash(&i.to_be_bytes())).collect();
            write_hash_tiles(dir.path(), &leaves);
            let root = tree_hash(&leaves);
            let text = format!("o\n{size}\n{}\n\n— x AAAAAAA=\n", base64(&root));
            let checkpoint = Checkpoint::parse(text.as_bytes()).unwrap();
            let source =
                LogSource::new(&Location::Dir(dir.path().into()), &http_agent(None, 1), RetryPolicy::default());
            let tree = VerifiedTree::open(source, &checkpoint).unwrap();
            for index in [0, size / 512, size / 256] {
                if index < size / 256 {
                    let expected =
                        crate::log::merkle::perfect_root(&leaves[(index * 256) as usize..(index * 256 + 256) as usize]);
                    assert_eq!(tree.node(1, index).unwrap(), expected, "size {size} index {index}");
                }
            }
            for old in [1, size / 2, size] {
                if old > 0 {
                    let root = tree_hash(&leaves[..old as usize]);
                    let text = format!("o\n{old}\n{}\n\n— x AAAAAAA=\n", base64(&root));
                    tree.check_consistency(&Checkpoint::parse(text.as_bytes()).unwrap()).unwrap();
                }
            }
        }
    }

    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
                let mut perms = std::fs::metadata(&target).unwrap().permissions();
                #[allow(clippy::permissions_set_readonly_false)]
                perms.set_readonly(false);
                std::fs::set_permissions(&target, perms).unwrap();
            }
        }
    }
}
