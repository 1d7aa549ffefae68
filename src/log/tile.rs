//! Tile coordinates and their paths on a tlog-tiles log (c2sp.org/tlog-tiles).

use std::fmt;

/// Entries (or hashes) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Bytes in one SHA-256 hash.
pub const HASH_SIZE: usize = 32;
/// Bytes in a full hash tile.
pub const FULL_HASH_TILE_BYTES: usize = TILE_WIDTH as usize * HASH_SIZE;

/// Which tree a tile belongs to: a level of hash tiles, or the data tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Hash(u8),
    Data,
}

/// One tile: its level, its index within the level, and its width (256 for a
/// full tile, fewer for a right-edge partial tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    pub level: Level,
    pub index: u64,
    pub width: u16,
}

impl TileId {
    pub fn hash(level: u8, index: u64) -> TileId {
        TileId { level: Level::Hash(level), index, width: TILE_WIDTH as u16 }
    }

    pub fn data(index: u64) -> TileId {
        TileId { level: Level::Data, index, width: TILE_WIDTH as u16 }
    }

    /// The same tile cut to `width` entries (a partial tile when width < 256).
    pub fn with_width(self, width: u16) -> TileId {
        debug_assert!(width > 0 && u64::from(width) <= TILE_WIDTH);
        TileId { width, ..self }
    }

    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The full tile this one is a prefix of.
    pub fn full(self) -> TileId {
        self.with_width(TILE_WIDTH as u16)
    }

    /// The tile's path below the log's monitoring prefix, e.g. `tile/0/x001/234.p/7`.
    pub fn path(&self) -> String {
        let mut path = String::with_capacity(32);
        path.push_str("tile/");
        match self.level {
            Level::Hash(level) => path.push_str(&level.to_string()),
            Level::Data => path.push_str("data"),
        }
        path.push('/');
        push_index(&mut path, self.index);
        if !self.is_full() {
            path.push_str(".p/");
            path.push_str(&self.width.to_string());
        }
        path
    }

    /// Parses a path produced by [`TileId::path`]; anything else is `None`.
    /// Strict: no leading zeros beyond the 3-digit groups, no empty groups,
    /// partial widths 1..=255.
    pub fn parse(path: &str) -> Option<TileId> {
        let rest = path.strip_prefix("tile/")?;
        let (level, rest) = rest.split_once('/')?;
        let level = match level {
            "data" => Level::Data,
            digits if is_canonical_decimal(digits) => Level::Hash(digits.parse().ok()?),
            _ => return None,
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                if !is_canonical_decimal(width) {
                    return None;
                }
                let width: u16 = width.parse().ok()?;
                if width == 0 || u64::from(width) >= TILE_WIDTH {
                    return None;
                }
                (index, width)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let index = parse_index(index_part)?;
        Some(TileId { level, index, width })
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Writes N in 3-digit groups, each group but the last prefixed with `x`.
fn push_index(out: &mut String, index: u64) {
    let digits = index.to_string();
    let groups = digits.len().div_ceil(3);
    let padded = format!("{digits:0>width$}", width = groups * 3);
    for (i, group) in padded.as_bytes().chunks(3).enumerate() {
        if i + 1 < groups {
            out.push('x');
        }
        out.push_str(std::str::from_utf8(group).unwrap_or("000"));
        if i + 1 < groups {
            out.push('/');
        }
    }
}

fn parse_index(text: &str) -> Option<u64> {
    let groups: Vec<&str> = text.split('/').collect();
    let mut index: u64 = 0;
    for (i, group) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last { *group } else { group.strip_prefix('x')? };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse::<u64>().ok()?)?;
    }
    // The first group carries no padding beyond three digits: x000/… is not canonical.
    if groups.len() > 1 && groups[0] == "x000" {
        return None;
    }
    Some(index)
}

fn is_canonical_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_use_three_digit_groups() {
        assert_eq!(TileId::hash(0, 0).path(), "tile/0/000");
        assert_eq!(TileId::hash(0, 999).path(), "tile/0/999");
        assert_eq!(TileId::hash(1, 1000).path(), "tile/1/x001/000");
        assert_eq!(TileId::data(1234067).path(), "tile/data/x001/x234/067");
        assert_eq!(TileId::data(5).path(), "tile/data/005");
        assert_eq!(TileId::hash(2, u64::MAX).path(), "tile/2/x018/x446/x744/x073/x709/x551/615");
    }

    #[test]
    fn partial_tiles_carry_their_width() {
        assert_eq!(TileId::hash(0, 3).with_width(10).path(), "tile/0/003.p/10");
        assert_eq!(TileId::data(1234067).with_width(255).path(), "tile/data/x001/x234/067.p/255");
        assert_eq!(TileId::hash(0, 3).with_width(10).full(), TileId::hash(0, 3));
    }

    #[test]
    fn paths_round_trip() {
        for id in [
            TileId::hash(0, 0),
            TileId::hash(0, 999),
            TileId::hash(3, 1000),
            TileId::data(1234067),
            TileId::data(1234067).with_width(1),
            TileId::hash(1, 1_000_000).with_width(77),
        ] {
            assert_eq!(TileId::parse(&id.path()), Some(id), "{id}");
        }
    }

    #[test]
    fn non_canonical_paths_are_rejected() {
        for path in [
            "tile/0/0",
            "tile/0/1000",
            "tile/0/x000/001",
            "tile/0/x1/000",
            "tile/00/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/010",
            "tile/0/000/",
            "tile/0//000",
            "tile/data/00a",
            "tile/entries/000",
            "tiles/0/000",
            "tile/0/001x/000",
        ] {
            assert_eq!(TileId::parse(path), None, "{path}");
        }
    }

    #[test]
    fn byte_order_of_paths_differs_from_numeric_order_past_a_million() {
        // Torrent content is ordered by path bytes, so a range that crosses tile
        // 1,000,000 lists x001/x000/000 before x999/999.
        let mut paths: Vec<String> = [999_999u64, 1_000_000].iter().map(|&i| TileId::data(i).path()).collect();
        paths.sort();
        assert_eq!(paths, ["tile/data/x001/x000/000", "tile/data/x999/999"]);
        let mut below: Vec<String> = [0u64, 1, 999, 1000, 999_999].iter().map(|&i| TileId::hash(0, i).path()).collect();
        let numeric = below.clone();
        below.sort();
        assert_eq!(below, numeric);
    }
}
