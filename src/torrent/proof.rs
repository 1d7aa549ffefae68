//! Proof tiles: the hash tiles a subscriber needs, beyond what a range's
//! torrent carries, to prove that range against a checkpoint (docs/spec.md §9.4).
//!
//! A torrent holds its range's level-0 tiles and the level-1 tiles lying
//! entirely inside it (docs/spec.md §4.2). Proving it as [`VerifiedTree`] does — the
//! right-edge tile of every level hashes to the root, and every other tile's
//! tree hash is an entry of its parent — needs, besides:
//! - the right-edge partial tile of every level (`tile/<L>/<N>.p/<W>`);
//! - the full level-1 tiles above the range that are not entirely inside it
//!   (every one when ranges are smaller than 65,536 entries);
//! - the full tiles of level ≥ 2 above the range: no torrent carries them.
//!
//! The set depends only on the tree size and the ranges, so a build can tell
//! without a request whether what it published earlier is complete.

use std::collections::BTreeSet;

use super::range::TorrentRange;
use crate::log::tile::{Level, TILE_WIDTH, TileId};
use crate::log::verify::{VerifiedTree, VerifyError};

/// Bits of a tree index that one tile level spans.
const TILE_BITS: u32 = TILE_WIDTH.trailing_zeros();

/// The proof tiles for `ranges` in a tree of `size` entries, in path order of
/// level and index. Ranges that do not fit in the tree are ignored: nothing
/// proves them. No range, no tile.
pub fn proof_tiles(size: u64, ranges: &[TorrentRange]) -> BTreeSet<TileId> {
    let mut tiles = BTreeSet::new();
    let ranges: Vec<&TorrentRange> = ranges.iter().filter(|r| r.start < r.end && r.end <= size).collect();
    if ranges.is_empty() {
        return tiles;
    }
    let levels = levels(size);
    for level in 0..levels {
        let count = entries_at(size, level);
        let width = count % TILE_WIDTH;
        if width > 0 {
            tiles.insert(TileId::hash(level, count / TILE_WIDTH).with_width(width as u16));
        }
    }
    for range in ranges {
        for level in 1..levels {
            // Tiles of this level whose entries cover the range; the last
            // level's tile beyond the full ones is the right edge, added above.
            let full = entries_at(size, level) / TILE_WIDTH;
            let first = shr(range.start, TILE_BITS * (u32::from(level) + 1));
            let last = shr(range.end - 1, TILE_BITS * (u32::from(level) + 1));
            let candidates: Vec<u64> = if level == 1 {
                // Those strictly between the first and the last lie inside the range.
                let inside = range.level1_indexes();
                [first, last].into_iter().filter(|t| !inside.contains(t)).collect()
            } else {
                (first..=last).collect()
            };
            tiles.extend(candidates.into_iter().filter(|&t| t < full).map(|t| TileId::hash(level, t)));
        }
    }
    tiles
}

/// The bytes of proof tile `tile` of `tree`, authenticated: the tree's right
/// edge for a partial tile, a full tile checked against its parent.
pub fn tile_bytes(tree: &VerifiedTree, tile: TileId) -> Result<Vec<u8>, VerifyError> {
    let Level::Hash(level) = tile.level else {
        return Err(VerifyError::NotInTree { tile: tile.path(), size: tree.size() });
    };
    let entries = tree.hash_tile(level, tile.index)?;
    if entries.len() != usize::from(tile.width) {
        return Err(VerifyError::NotInTree { tile: tile.path(), size: tree.size() });
    }
    Ok(entries.concat())
}

/// Hash tile levels of a tree of `size` entries (level 0 up to the one whose
/// single tile holds the root's children).
fn levels(size: u64) -> u8 {
    let mut level = 0;
    while entries_at(size, level) > 0 {
        level += 1;
    }
    level
}

/// Entries of tile level `level`: the tree's complete subtrees of 256^level leaves.
fn entries_at(size: u64, level: u8) -> u64 {
    shr(size, TILE_BITS * u32::from(level))
}

fn shr(value: u64, bits: u32) -> u64 {
    value.checked_shr(bits).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::log::checkpoint::Checkpoint;
    use crate::log::merkle::{Hash, leaf_hash, perfect_root, root_from_right_edge};
    use crate::log::source::{Location, LogSource, RetryPolicy, http_agent};
    use crate::log::tile::HASH_SIZE;

    fn range(start: u64, end: u64) -> TorrentRange {
        TorrentRange { start, end }
    }

    fn paths(tiles: &BTreeSet<TileId>) -> Vec<String> {
        tiles.iter().map(TileId::path).collect()
    }

    #[test]
    fn a_small_tree_needs_only_its_right_edge() {
        let tiles = proof_tiles(3 * 1024 + 300, &[range(0, 1024), range(1024, 2048), range(2048, 3072)]);
        assert_eq!(paths(&tiles), ["tile/0/013.p/44", "tile/1/000.p/13"]);
        assert!(proof_tiles(3 * 1024 + 300, &[]).is_empty(), "nothing published, nothing to prove");
        assert!(proof_tiles(1000, &[range(0, 1024)]).is_empty(), "a range beyond the tree is not proved");
    }

    #[test]
    fn small_ranges_need_the_level1_tiles_around_them_and_big_ones_carry_them() {
        let size = 3 * 65536 + 512;
        // 1024-entry ranges inside full level-1 tiles 0 and 2, and on the edge tile 3.
        let tiles = proof_tiles(size, &[range(0, 1024), range(2 * 65536, 2 * 65536 + 1024), range(3 * 65536, size)]);
        assert_eq!(paths(&tiles), ["tile/1/000", "tile/1/002", "tile/1/003.p/2", "tile/2/000.p/3"]);
        // Ranges of 65,536 carry their level-1 tile; one that straddles two
        // level-1 tiles needs both.
        let tiles = proof_tiles(size, &[range(0, 65536), range(65536 + 32768, 2 * 65536 + 32768)]);
        assert_eq!(paths(&tiles), ["tile/1/001", "tile/1/002", "tile/1/003.p/2", "tile/2/000.p/3"]);
        let tiles = proof_tiles(size, &[range(0, 65536), range(65536, 2 * 65536)]);
        assert_eq!(paths(&tiles), ["tile/1/003.p/2", "tile/2/000.p/3"]);
    }

    #[test]
    fn full_tiles_above_level1_are_the_ranges_ancestors() {
        // 2^24 and more: a full level-2 tile (0, above 2^24 entries), the edge beside it.
        let size = (1 << 24) + 3 * 65536 + 5 * 256 + 7;
        let tiles = proof_tiles(size, &[range(1 << 20, 2 << 20)]);
        assert_eq!(
            paths(&tiles),
            ["tile/0/x066/309.p/7", "tile/1/259.p/5", "tile/2/000", "tile/2/001.p/3", "tile/3/000.p/1"]
        );
        // A range past the last full level-2 tile is proved by the edge alone.
        let tiles = proof_tiles(size, &[range(1 << 24, (1 << 24) + 65536)]);
        assert_eq!(paths(&tiles), ["tile/0/x066/309.p/7", "tile/1/259.p/5", "tile/2/001.p/3", "tile/3/000.p/1"]);
    }

    #[test]
    fn the_largest_trees_do_not_overflow() {
        let size = u64::MAX / 2;
        let tiles = proof_tiles(size, &[range(0, 1 << 20)]);
        assert!(tiles.len() < 20, "{tiles:?}");
        assert!(tiles.iter().all(|t| matches!(t.level, Level::Hash(l) if l < 8)));
    }

    /// A tiled tree made up level by level, with real hash tiles only where a
    /// prover can look: above the ranges under test and on the right edge.
    /// Every other entry is an arbitrary value, as a level-0 tile's tree hash
    /// is to the tiles above it; so trees of 2^25 entries cost a few hashes.
    struct SyntheticLog {
        size: u64,
        /// The hash tiles of level ≥ 1 above the ranges, and every level's right edge.
        tiles: BTreeMap<TileId, Vec<Hash>>,
        root: Hash,
    }

    impl SyntheticLog {
        fn new(size: u64, ranges: &[TorrentRange]) -> SyntheticLog {
            let mut log = SyntheticLog { size, tiles: BTreeMap::new(), root: [0; 32] };
            let levels = levels(size);
            let mut edge = Vec::new();
            for level in 0..levels {
                let count = entries_at(size, level);
                let full = count / TILE_WIDTH;
                let mut wanted: BTreeSet<u64> = BTreeSet::new();
                if level > 0 {
                    for range in ranges {
                        let first = shr(range.start, TILE_BITS * (u32::from(level) + 1));
                        let last = shr(range.end - 1, TILE_BITS * (u32::from(level) + 1));
                        wanted.extend((first..=last).filter(|&t| t < full));
                    }
                }
                for t in wanted {
                    let entries = (t * TILE_WIDTH..(t + 1) * TILE_WIDTH).map(|e| log.entry(level, e)).collect();
                    log.tiles.insert(TileId::hash(level, t), entries);
                }
                let entries: Vec<Hash> = (full * TILE_WIDTH..count).map(|e| log.entry(level, e)).collect();
                if !entries.is_empty() {
                    log.tiles.insert(TileId::hash(level, full).with_width(entries.len() as u16), entries.clone());
                }
                edge.push(entries);
            }
            let slices: Vec<&[Hash]> = edge.iter().map(Vec::as_slice).collect();
            log.root = root_from_right_edge(&slices);
            log
        }

        /// Entry `e` of level `level`: the tree hash of the full tile below it
        /// when that tile is real, else an arbitrary value.
        fn entry(&self, level: u8, e: u64) -> Hash {
            if level >= 2
                && let Some(tile) = self.tiles.get(&TileId::hash(level - 1, e))
            {
                return perfect_root(tile);
            }
            let mut hash = leaf_hash(&[level]);
            hash[..8].copy_from_slice(&e.to_be_bytes());
            hash
        }

        /// A site folder holding the checkpoint and `tiles`.
        fn site(&self, tiles: &BTreeSet<TileId>) -> tempfile::TempDir {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("checkpoint"), self.checkpoint().text).unwrap();
            for &tile in tiles {
                write(dir.path(), tile, &self.tiles[&tile]);
            }
            dir
        }

        fn checkpoint(&self) -> Checkpoint {
            Checkpoint::parse(format!("o\n{}\n{}\n\n— x AAAAAAA=\n", self.size, base64(&self.root)).as_bytes()).unwrap()
        }

        /// Proves `range` as a subscriber does: the level-1 tiles inside it
        /// from its torrent, everything else from the site, up to the
        /// checkpoint's root; then each of its level-0 tiles' tree hash.
        fn prove(&self, site: &Path, range: TorrentRange) -> Result<(), VerifyError> {
            let source = LogSource::new(&Location::Dir(site.into()), &http_agent(None, 1), RetryPolicy::default());
            let tree = VerifiedTree::open(source, &self.checkpoint())?;
            let inside = range.level1_indexes();
            let tiles = range.tile_indexes();
            for t in tiles.start / TILE_WIDTH..=(tiles.end - 1) / TILE_WIDTH {
                let level1 = if inside.contains(&t) {
                    let tile = &self.tiles[&TileId::hash(1, t)];
                    assert_eq!(perfect_root(tile), tree.node(2, t)?, "level-1 tile {t} from the torrent");
                    tile.clone()
                } else {
                    tree.hash_tile(1, t)?.to_vec()
                };
                for n in (t * TILE_WIDTH).max(tiles.start)..((t + 1) * TILE_WIDTH).min(tiles.end) {
                    assert_eq!(level1[(n % TILE_WIDTH) as usize], self.entry(1, n), "level-0 tile {n}");
                }
            }
            Ok(())
        }
    }

    fn write(dir: &Path, tile: TileId, entries: &[Hash]) {
        let path = dir.join(tile.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, entries.concat()).unwrap();
    }

    fn base64(hash: &Hash) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(hash)
    }

    /// Every range proves with the proof tiles, and removing any one of them
    /// breaks the proof of at least one range: the set is exactly what is needed.
    fn assert_exactly_needed(size: u64, ranges: &[TorrentRange], max_bytes: usize) {
        let log = SyntheticLog::new(size, ranges);
        let tiles = proof_tiles(size, ranges);
        let bytes: usize = tiles.iter().map(|t| usize::from(t.width) * HASH_SIZE).sum();
        assert!(bytes <= max_bytes, "{} proof tiles of {bytes} bytes for size {size}", tiles.len());
        let site = log.site(&tiles);
        for &range in ranges {
            log.prove(site.path(), range).unwrap_or_else(|e| panic!("size {size}, {range}: {e}"));
        }
        for &removed in &tiles {
            let mut fewer = tiles.clone();
            fewer.remove(&removed);
            let site = log.site(&fewer);
            let failed = ranges.iter().any(|&range| log.prove(site.path(), range).is_err());
            assert!(failed, "size {size}: every range still proves without {removed}");
        }
    }

    #[test]
    fn the_proof_tiles_are_exactly_what_proving_needs() {
        // Ranges of 1,024 entries: the level-1 tiles come from the site.
        assert_exactly_needed(3 * 1024 + 300, &[range(0, 1024), range(1024, 2048), range(2048, 3072)], 2048);
        assert_exactly_needed(
            2 * 65536 + 3 * 256 + 1,
            &[range(0, 1024), range(65536 + 1024, 65536 + 2048), range(2 * 65536, 2 * 65536 + 512)],
            3 * 8192 + 2048,
        );
        // Ranges of 65,536: each carries its level-1 tile.
        assert_exactly_needed(3 * 65536 + 256 * 5 + 7, &[range(0, 65536), range(2 * 65536, 3 * 65536)], 1024);
        // A tree of four levels with full level-2 tiles above the ranges.
        let size = 2 * (1 << 24) + 3 * 65536 + 256 * 5 + 7;
        assert_exactly_needed(
            size,
            &[
                range(0, 256),
                range((1 << 24) - 65536, 1 << 24),
                range(1 << 24, (1 << 24) + 1024),
                range(2 * (1 << 24) + 65536, 2 * (1 << 24) + 2 * 65536),
            ],
            4 * 8192 + 2048,
        );
    }
}
