//! The piece-length rules: every publisher of a range must pick the same
//! piece length, so it is a function of what they all know.
//!
//! v1 torrents (docs/spec.md §4.3): a power of two chosen from the content size, known
//! only once the last tile has arrived (hence the candidate lengths of
//! [`super::pieces::PieceHasher`]).
//!
//! Hybrid v1 + v2 torrents (BEP 52, docs/hybrid.md): a power of two chosen
//! from `entries_per_torrent` alone, so it is known before the first byte and
//! each tile is hashed on its own as it arrives. Every file starts on a piece
//! boundary there (BEP 47 pad files), and the v1 piece hashes cover the pad's
//! zeros: a range holds thousands of 8 KiB hash tiles, so 2 MiB pieces would
//! mean SHA-1 over ~15 GB of zeros per default range. Pieces of E/16 bytes
//! (64 KiB for the default 1,048,576 entries) hold the zeros to about a
//! quarter of the content and the `.torrent` to about 3 MB (measured: 23 %,
//! 3.1 MB), and stay a power of two ≥ 16 KiB as BEP 52 requires.

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

pub const MIN_PIECE_LENGTH: u64 = 16 * KIB;
pub const MAX_PIECE_LENGTH: u64 = 16 * MIB;

/// At most 512 pieces up to 1 GiB, 1024 up to 8 GiB, 1536 up to 16 GiB, else
/// 2048; piece = 2^ceil(log2(size / max_pieces)), clamped to [16 KiB, 16 MiB].
pub fn piece_length(content_size: u64) -> u64 {
    let max_pieces = match content_size {
        s if s <= GIB => 512,
        s if s <= 8 * GIB => 1024,
        s if s <= 16 * GIB => 1536,
        _ => 2048,
    };
    // The smallest power of two ≥ size/max_pieces is also the smallest one ≥
    // ceil(size/max_pieces), so integer arithmetic gives the exact answer.
    let target = content_size.div_ceil(max_pieces).max(1);
    target.next_power_of_two().clamp(MIN_PIECE_LENGTH, MAX_PIECE_LENGTH)
}

/// The piece length of a hybrid torrent of `entries_per_torrent` entries:
/// `max(16 KiB, next_power_of_two(entries_per_torrent / 16))` bytes.
pub fn hybrid_piece_length(entries_per_torrent: u64) -> u64 {
    (entries_per_torrent / 16).next_power_of_two().max(MIN_PIECE_LENGTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_content_gets_the_minimum() {
        assert_eq!(piece_length(0), 16 * KIB);
        assert_eq!(piece_length(1), 16 * KIB);
        assert_eq!(piece_length(512 * 16 * KIB), 16 * KIB);
        assert_eq!(piece_length(512 * 16 * KIB + 1), 32 * KIB);
    }

    #[test]
    fn boundaries_between_pieces_counts() {
        // Up to 1 GiB: 512 pieces.
        assert_eq!(piece_length(GIB), 2 * MIB);
        assert_eq!(piece_length(GIB - 1), 2 * MIB);
        assert_eq!(piece_length(512 * MIB), MIB);
        assert_eq!(piece_length(512 * MIB + 1), 2 * MIB);
        // Just past 1 GiB: 1024 pieces, so the piece stays 2 MiB rather than doubling.
        assert_eq!(piece_length(GIB + 1), 2 * MIB);
        assert_eq!(piece_length(2 * GIB), 2 * MIB);
        assert_eq!(piece_length(2 * GIB + 1), 4 * MIB);
        assert_eq!(piece_length(8 * GIB), 8 * MIB);
        // Past 8 GiB: 1536 pieces.
        assert_eq!(piece_length(8 * GIB + 1), 8 * MIB);
        assert_eq!(piece_length(12 * GIB), 8 * MIB);
        assert_eq!(piece_length(12 * GIB + 1), 16 * MIB);
        assert_eq!(piece_length(16 * GIB), 16 * MIB);
        // Past 16 GiB: 2048 pieces, and never more than 16 MiB.
        assert_eq!(piece_length(16 * GIB + 1), 16 * MIB);
        assert_eq!(piece_length(1 << 50), 16 * MIB);
    }

    #[test]
    fn default_range_is_two_mebibytes() {
        // 4096 data tiles of ~450 KB plus 4112 hash tiles.
        assert_eq!(piece_length(4096 * 450_000 + 4112 * 8192 + 60), 2 * MIB);
    }

    #[test]
    fn hybrid_piece_length_follows_entries_per_torrent() {
        assert_eq!(hybrid_piece_length(1 << 20), 64 * KIB);
        assert_eq!(hybrid_piece_length((1 << 20) + 256), 128 * KIB);
        assert_eq!(hybrid_piece_length(1 << 21), 128 * KIB);
        assert_eq!(hybrid_piece_length(65536), 16 * KIB);
        assert_eq!(hybrid_piece_length(256), 16 * KIB);
        assert_eq!(hybrid_piece_length(0), 16 * KIB);
        assert_eq!(hybrid_piece_length(1 << 28), 16 * MIB);
        for e in [256u64, 1024, 300_000, 1 << 20, 1 << 30] {
            let piece = hybrid_piece_length(e);
            assert!(piece.is_power_of_two() && piece >= MIN_PIECE_LENGTH, "{e}");
        }
    }
}
