//! Ranges of entries and what a range's torrent contains (docs/spec.md §4.1, §4.2).

use std::fmt;

use crate::log::tile::{TILE_WIDTH, TileId};

/// Entries `[start, end)` of a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TorrentRange {
    pub start: u64,
    pub end: u64,
}

/// One file of a tile torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorrentFile {
    Readme,
    /// The log's final checkpoint (the last torrent of a finished log only).
    Checkpoint,
    Tile(TileId),
}

impl TorrentFile {
    pub fn path(&self) -> String {
        match self {
            TorrentFile::Readme => README.to_string(),
            TorrentFile::Checkpoint => CHECKPOINT.to_string(),
            TorrentFile::Tile(tile) => tile.path(),
        }
    }
}

pub const README: &str = "README.md";
pub const CHECKPOINT: &str = "checkpoint";

impl TorrentRange {
    pub fn entries(&self) -> u64 {
        self.end - self.start
    }

    /// The torrent's `info.name`: `<log>-L01-<start>-<end>`.
    pub fn torrent_name(&self, log: &str) -> String {
        format!("{log}-L01-{}-{}", self.start, self.end)
    }

    /// The `.torrent` file's name in the log's output folder.
    pub fn file_name(&self) -> String {
        format!("L01-{}-{}.torrent", self.start, self.end)
    }

    /// Reads a range back from a file name written by [`TorrentRange::file_name`].
    pub fn from_file_name(name: &str) -> Option<TorrentRange> {
        let rest = name.strip_prefix("L01-")?.strip_suffix(".torrent")?;
        let (start, end) = rest.split_once('-')?;
        let canonical =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
        if !canonical(start) || !canonical(end) {
            return None;
        }
        let range = TorrentRange { start: start.parse().ok()?, end: end.parse().ok()? };
        // Any end: the last torrent of a finished log ends at its tree size.
        (range.start < range.end && range.start.is_multiple_of(TILE_WIDTH)).then_some(range)
    }

    /// Level-0 and data tiles of the range, by index.
    pub fn tile_indexes(&self) -> std::ops::Range<u64> {
        self.start / TILE_WIDTH..self.end / TILE_WIDTH
    }

    /// Level-1 tiles lying entirely inside the range.
    pub fn level1_indexes(&self) -> std::ops::Range<u64> {
        let span = TILE_WIDTH * TILE_WIDTH;
        let first = self.start.div_ceil(span);
        let last = self.end / span;
        first..last.max(first)
    }

    /// The torrent's files in content order: byte order of their paths
    /// (`README.md`, `tile/0/…`, `tile/1/…`, `tile/data/…`). Within a level that
    /// is numeric order only below tile 1,000,000, hence the sort.
    pub fn content(&self) -> Vec<TorrentFile> {
        let mut files = vec![TorrentFile::Readme];
        let mut level0: Vec<TileId> = self.tile_indexes().map(|n| TileId::hash(0, n)).collect();
        let mut level1: Vec<TileId> = self.level1_indexes().map(|n| TileId::hash(1, n)).collect();
        let mut data: Vec<TileId> = self.tile_indexes().map(TileId::data).collect();
        for section in [&mut level0, &mut level1, &mut data] {
            sort_by_path(section);
        }
        files.extend(level0.into_iter().chain(level1).chain(data).map(TorrentFile::Tile));
        files
    }
}

impl TorrentRange {
    /// The files of the last torrent of a finished log, `[start, tree size)`
    /// (docs/final.md): its level-0 and data tiles with the right-edge
    /// partials (`.p/<W>`), every hash tile of the levels above that covers
    /// it (partial where the tree's right edge is), and the final checkpoint,
    /// so the torrent proves itself. In byte order of path.
    pub fn final_content(&self) -> Vec<TorrentFile> {
        let size = self.end;
        let width = (size % TILE_WIDTH) as u16;
        let edge =
            |tile: TileId| if width > 0 && tile.index == size / TILE_WIDTH { tile.with_width(width) } else { tile };
        let last = (size - 1) / TILE_WIDTH;
        let mut tiles: Vec<TileId> = Vec::new();
        for index in self.start / TILE_WIDTH..=last {
            tiles.push(edge(TileId::hash(0, index)));
            tiles.push(edge(TileId::data(index)));
        }
        let mut level = 1u8;
        loop {
            let shift = 8 * u32::from(level);
            let count = size.checked_shr(shift).unwrap_or(0);
            if count == 0 {
                break;
            }
            let first = self.start.checked_shr(shift + 8).unwrap_or(0);
            let last = (size - 1).checked_shr(shift + 8).unwrap_or(0);
            for index in first..=last {
                let tile = TileId::hash(level, index);
                let width = count - index * TILE_WIDTH;
                tiles.push(if width < TILE_WIDTH { tile.with_width(width as u16) } else { tile });
            }
            level += 1;
        }
        let mut files: Vec<TorrentFile> = [TorrentFile::Readme, TorrentFile::Checkpoint]
            .into_iter()
            .chain(tiles.into_iter().map(TorrentFile::Tile))
            .collect();
        files.sort_by_cached_key(TorrentFile::path);
        files
    }
}

fn sort_by_path(tiles: &mut [TileId]) {
    tiles.sort_by_cached_key(TileId::path);
}

impl fmt::Display for TorrentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entries {}..{}", self.start, self.end)
    }
}

/// The ranges `[k·E, (k+1)·E)` that end at or below `size` and overlap no
/// published range, in order: a lazy walk whose cost grows with what is
/// published, never with the size a checkpoint claims (2^63 entries is one
/// line of text).
#[derive(Clone, Debug)]
pub struct Missing {
    slots: u64,
    entries_per_torrent: u64,
    /// Slot intervals `[first, end)` taken by published ranges, sorted and merged.
    taken: Vec<(u64, u64)>,
    next: u64,
}

/// See [`Missing`].
pub fn missing(size: u64, entries_per_torrent: u64, published: &[TorrentRange]) -> Missing {
    let e = entries_per_torrent.max(1);
    let mut taken: Vec<(u64, u64)> = published.iter().map(|p| (p.start / e, p.end.div_ceil(e))).collect();
    taken.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(taken.len());
    for (first, end) in taken {
        match merged.last_mut() {
            Some(last) if first <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((first, end)),
        }
    }
    Missing { slots: size / e, entries_per_torrent: e, taken: merged, next: 0 }
}

impl Missing {
    /// How many ranges are left to build, without walking them.
    pub fn remaining(&self) -> u64 {
        let taken: u64 =
            self.taken.iter().map(|&(first, end)| end.min(self.slots).saturating_sub(first.max(self.next))).sum();
        self.slots.saturating_sub(self.next).saturating_sub(taken)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
}

impl Iterator for Missing {
    type Item = TorrentRange;

    fn next(&mut self) -> Option<TorrentRange> {
        // The first interval that ends after `next`; skip it if `next` is inside.
        let at = self.taken.partition_point(|&(_, end)| end <= self.next);
        if let Some(&(first, end)) = self.taken.get(at)
            && first <= self.next
        {
            self.next = end;
        }
        if self.next >= self.slots {
            return None;
        }
        let k = self.next;
        self.next += 1;
        let e = self.entries_per_torrent;
        Some(TorrentRange { start: k * e, end: (k + 1) * e })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_range_has_4096_tiles_16_level1_tiles_and_a_readme() {
        let range = TorrentRange { start: 1 << 20, end: 2 << 20 };
        let content = range.content();
        assert_eq!(content.len(), 1 + 4096 + 16 + 4096);
        assert_eq!(content[0], TorrentFile::Readme);
        assert_eq!(content[1].path(), "tile/0/x004/096");
        assert_eq!(content[4097].path(), "tile/1/016");
        assert_eq!(content[4112].path(), "tile/1/031");
        assert_eq!(content[4113].path(), "tile/data/x004/096");
        assert_eq!(content.last().unwrap().path(), "tile/data/x008/191");
        let paths: Vec<String> = content.iter().map(TorrentFile::path).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn small_ranges_have_no_level1_tiles() {
        let range = TorrentRange { start: 512, end: 1024 };
        assert!(range.level1_indexes().is_empty());
        let paths: Vec<String> = range.content().iter().map(TorrentFile::path).collect();
        assert_eq!(paths, ["README.md", "tile/0/002", "tile/0/003", "tile/data/002", "tile/data/003"]);
    }

    #[test]
    fn only_level1_tiles_entirely_inside_are_included() {
        let range = TorrentRange { start: 65536 - 256, end: 3 * 65536 + 256 };
        assert_eq!(range.level1_indexes(), 1..3);
        let range = TorrentRange { start: 256, end: 65536 + 256 };
        assert_eq!(range.level1_indexes(), 1..1);
    }

    #[test]
    fn a_range_crossing_tile_one_million_is_in_path_order() {
        let range = TorrentRange { start: 999_999 * 256, end: 1_000_001 * 256 };
        let paths: Vec<String> = range.content().iter().map(TorrentFile::path).collect();
        assert_eq!(
            paths,
            ["README.md", "tile/0/x001/x000/000", "tile/0/x999/999", "tile/data/x001/x000/000", "tile/data/x999/999"]
        );
    }

    #[test]
    fn names() {
        let range = TorrentRange { start: 0, end: 1048576 };
        assert_eq!(range.torrent_name("tuscolo2026h1"), "tuscolo2026h1-L01-0-1048576");
        assert_eq!(range.file_name(), "L01-0-1048576.torrent");
        assert_eq!(TorrentRange::from_file_name("L01-0-1048576.torrent"), Some(range));
        for bad in [
            "L01-0-1048576.torrent.tmp",
            "L01-01-256.torrent",
            "L01-256-0.torrent",
            "L01-1-257.torrent",
            "L2345-0-5.torrent",
        ] {
            assert_eq!(TorrentRange::from_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn missing_ranges_end_at_or_below_the_size() {
        let e = 1024;
        let list = |size, published: &[TorrentRange]| missing(size, e, published).collect::<Vec<_>>();
        assert_eq!(list(1023, &[]), []);
        assert_eq!(list(1024, &[]), [TorrentRange { start: 0, end: 1024 }]);
        let published = [TorrentRange { start: 0, end: 1024 }];
        assert_eq!(list(3000, &published), [TorrentRange { start: 1024, end: 2048 }]);
        // A torrent made with another range size blocks the ranges it overlaps.
        let odd = [TorrentRange { start: 512, end: 1536 }];
        assert_eq!(
            list(4096, &odd),
            [TorrentRange { start: 2048, end: 3072 }, TorrentRange { start: 3072, end: 4096 }]
        );
        assert_eq!(missing(4096, e, &odd).remaining(), 2);
        let mut walk = missing(4096, e, &odd);
        walk.next();
        assert_eq!(walk.remaining(), 1);
    }

    #[test]
    fn a_final_range_carries_its_partials_its_upper_tiles_and_the_checkpoint() {
        let paths = |range: TorrentRange| range.final_content().iter().map(TorrentFile::path).collect::<Vec<_>>();
        assert_eq!(
            paths(TorrentRange { start: 4096, end: 5000 }),
            [
                "README.md",
                "checkpoint",
                "tile/0/016",
                "tile/0/017",
                "tile/0/018",
                "tile/0/019.p/136",
                "tile/1/000.p/19",
                "tile/data/016",
                "tile/data/017",
                "tile/data/018",
                "tile/data/019.p/136",
            ]
        );
        // Ending on a tile boundary: no partial at level 0; a full level-1 tile
        // and the level-2 edge above a larger tree.
        let big = paths(TorrentRange { start: 65536 * 3, end: 65536 * 3 + 512 });
        assert!(big.contains(&"tile/0/x000/769".to_string()) || big.contains(&"tile/0/769".to_string()), "{big:?}");
        assert!(big.iter().any(|p| p == "tile/1/003.p/2"), "{big:?}");
        assert!(big.iter().all(|p| !p.starts_with("tile/0/") || !p.contains(".p/")), "{big:?}");
        assert!(big.iter().any(|p| p == "tile/2/000.p/3"), "{big:?}");
        assert_eq!(
            TorrentRange::from_file_name("L01-4096-5000.torrent"),
            Some(TorrentRange { start: 4096, end: 5000 })
        );
    }

    #[test]
    fn a_huge_claimed_size_costs_nothing_up_front() {
        let published: Vec<TorrentRange> =
            (0..1000).filter(|k| k % 3 != 1).map(|k| TorrentRange { start: k << 20, end: (k + 1) << 20 }).collect();
        let mut walk = missing(1 << 63, 1 << 20, &published);
        assert_eq!(walk.remaining(), (1 << 43) - published.len() as u64);
        assert_eq!(walk.next(), Some(TorrentRange { start: 1 << 20, end: 2 << 20 }));
        assert_eq!(walk.next(), Some(TorrentRange { start: 4 << 20, end: 5 << 20 }));
        assert_eq!(missing(u64::MAX, 256, &[]).next(), Some(TorrentRange { start: 0, end: 256 }));
    }
}
