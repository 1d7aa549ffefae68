//! Ranges of entries and what a range's torrent contains (SPEC §4.1, §4.2).

use std::fmt;

use crate::log::tile::{TILE_WIDTH, TileId};

/// Entries `[start, end)` of a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// One file of a tile torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Readme,
    Tile(TileId),
}

impl Content {
    pub fn path(&self) -> String {
        match self {
            Content::Readme => README.to_string(),
            Content::Tile(tile) => tile.path(),
        }
    }
}

pub const README: &str = "README.md";

impl Range {
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

    /// Reads a range back from a file name written by [`Range::file_name`].
    pub fn from_file_name(name: &str) -> Option<Range> {
        let rest = name.strip_prefix("L01-")?.strip_suffix(".torrent")?;
        let (start, end) = rest.split_once('-')?;
        let canonical =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
        if !canonical(start) || !canonical(end) {
            return None;
        }
        let range = Range { start: start.parse().ok()?, end: end.parse().ok()? };
        (range.start < range.end && range.start.is_multiple_of(TILE_WIDTH) && range.end.is_multiple_of(TILE_WIDTH))
            .then_some(range)
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
    pub fn content(&self) -> Vec<Content> {
        let mut files = vec![Content::Readme];
        let mut level0: Vec<TileId> = self.tile_indexes().map(|n| TileId::hash(0, n)).collect();
        let mut level1: Vec<TileId> = self.level1_indexes().map(|n| TileId::hash(1, n)).collect();
        let mut data: Vec<TileId> = self.tile_indexes().map(TileId::data).collect();
        for section in [&mut level0, &mut level1, &mut data] {
            sort_by_path(section);
        }
        files.extend(level0.into_iter().chain(level1).chain(data).map(Content::Tile));
        files
    }
}

fn sort_by_path(tiles: &mut [TileId]) {
    tiles.sort_by_cached_key(TileId::path);
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entries {}..{}", self.start, self.end)
    }
}

/// The ranges `[k·E, (k+1)·E)` that end at or below `size` and are not in
/// `published`, in order.
pub fn missing(size: u64, entries_per_torrent: u64, published: &[Range]) -> Vec<Range> {
    (0..size / entries_per_torrent)
        .map(|k| Range { start: k * entries_per_torrent, end: (k + 1) * entries_per_torrent })
        .filter(|range| !published.iter().any(|p| p.start < range.end && range.start < p.end))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_range_has_4096_tiles_16_level1_tiles_and_a_readme() {
        let range = Range { start: 1 << 20, end: 2 << 20 };
        let content = range.content();
        assert_eq!(content.len(), 1 + 4096 + 16 + 4096);
        assert_eq!(content[0], Content::Readme);
        assert_eq!(content[1].path(), "tile/0/x004/096");
        assert_eq!(content[4097].path(), "tile/1/016");
        assert_eq!(content[4112].path(), "tile/1/031");
        assert_eq!(content[4113].path(), "tile/data/x004/096");
        assert_eq!(content.last().unwrap().path(), "tile/data/x008/191");
        let paths: Vec<String> = content.iter().map(Content::path).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn small_ranges_have_no_level1_tiles() {
        let range = Range { start: 512, end: 1024 };
        assert!(range.level1_indexes().is_empty());
        let paths: Vec<String> = range.content().iter().map(Content::path).collect();
        assert_eq!(paths, ["README.md", "tile/0/002", "tile/0/003", "tile/data/002", "tile/data/003"]);
    }

    #[test]
    fn only_level1_tiles_entirely_inside_are_included() {
        let range = Range { start: 65536 - 256, end: 3 * 65536 + 256 };
        assert_eq!(range.level1_indexes(), 1..3);
        let range = Range { start: 256, end: 65536 + 256 };
        assert_eq!(range.level1_indexes(), 1..1);
    }

    #[test]
    fn a_range_crossing_tile_one_million_is_in_path_order() {
        let range = Range { start: 999_999 * 256, end: 1_000_001 * 256 };
        let paths: Vec<String> = range.content().iter().map(Content::path).collect();
        assert_eq!(
            paths,
            ["README.md", "tile/0/x001/x000/000", "tile/0/x999/999", "tile/data/x001/x000/000", "tile/data/x999/999"]
        );
    }

    #[test]
    fn names() {
        let range = Range { start: 0, end: 1048576 };
        assert_eq!(range.torrent_name("tuscolo2026h1"), "tuscolo2026h1-L01-0-1048576");
        assert_eq!(range.file_name(), "L01-0-1048576.torrent");
        assert_eq!(Range::from_file_name("L01-0-1048576.torrent"), Some(range));
        for bad in [
            "L01-0-1048576.torrent.tmp",
            "L01-01-256.torrent",
            "L01-256-0.torrent",
            "L01-1-257.torrent",
            "L2345-0-5.torrent",
        ] {
            assert_eq!(Range::from_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn missing_ranges_end_at_or_below_the_size() {
        let e = 1024;
        assert_eq!(missing(1023, e, &[]), []);
        assert_eq!(missing(1024, e, &[]), [Range { start: 0, end: 1024 }]);
        let published = [Range { start: 0, end: 1024 }];
        assert_eq!(missing(3000, e, &published), [Range { start: 1024, end: 2048 }]);
        // A torrent made with another range size blocks the ranges it overlaps.
        let odd = [Range { start: 512, end: 1536 }];
        assert_eq!(missing(4096, e, &odd), [Range { start: 2048, end: 3072 }, Range { start: 3072, end: 4096 }]);
    }
}
