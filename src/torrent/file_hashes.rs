//! The v1 and v2 hashes of one file of a hybrid torrent (BEP 52, BEP 47).
//!
//! In a hybrid torrent every file starts on a piece boundary: the v1 file list
//! puts a pad file of zeros after each file that does not end on one. Both
//! kinds of hash of a file therefore depend only on its own bytes and the
//! piece length, so each tile is hashed on its own, in whichever thread has
//! it, in one pass over its bytes:
//! - v1: SHA-1 of each piece, the last one over the file's tail followed by
//!   the pad's zeros;
//! - v2: SHA-256 of each 16 KiB block (the last one may be shorter) as the
//!   leaves of a binary Merkle tree, padded with zero hashes up to a power of
//!   two of leaves. Its root is the file's `pieces root`; the layer whose
//!   nodes each cover one piece is the file's entry in `piece layers`, for
//!   files longer than one piece only, without the nodes that cover nothing
//!   but padding.
//!
//! See docs/hybrid.md.

use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::pieces::PieceHash;

/// The leaf size of the v2 Merkle tree (BEP 52).
pub const BLOCK_SIZE: u64 = 16 * 1024;

/// A node of a v2 Merkle tree.
pub type MerkleHash = [u8; 32];

/// Pad files are zeros; SHA-1 eats them from this buffer.
static ZEROS: [u8; BLOCK_SIZE as usize] = [0; BLOCK_SIZE as usize];

/// Everything a hybrid torrent says about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHashes {
    length: u64,
    piece_length: u64,
    v1_pieces: Vec<PieceHash>,
    v1_last_unpadded: Option<PieceHash>,
    pieces_root: Option<MerkleHash>,
    piece_layer: Vec<MerkleHash>,
}

impl FileHashes {
    /// Hashes a whole file.
    ///
    /// # Panics
    /// If `piece_length` is not a power of two of at least [`BLOCK_SIZE`]
    /// (BEP 52); [`super::piece_length::hybrid_piece_length`] always is.
    pub fn compute(bytes: &[u8], piece_length: u64) -> FileHashes {
        assert!(piece_length.is_power_of_two() && piece_length >= BLOCK_SIZE, "bad piece length {piece_length}");
        let piece = usize::try_from(piece_length).unwrap_or(usize::MAX);
        let blocks_per_piece = (piece_length / BLOCK_SIZE) as usize;
        let piece_count = bytes.len().div_ceil(piece);
        let mut v1_pieces = Vec::with_capacity(piece_count);
        let mut v1_last_unpadded = None;
        let mut layer = Vec::with_capacity(piece_count);
        let mut leaves = Vec::with_capacity(blocks_per_piece);
        for chunk in bytes.chunks(piece) {
            let mut sha1 = Sha1::new();
            leaves.clear();
            // Both hashes per block, while the block is in cache.
            for block in chunk.chunks(BLOCK_SIZE as usize) {
                sha1.update(block);
                leaves.push(Sha256::digest(block).into());
            }
            if chunk.len() < piece {
                v1_last_unpadded = Some(sha1.clone().finalize().into());
                let mut pad = piece - chunk.len();
                while pad > 0 {
                    let n = pad.min(ZEROS.len());
                    sha1.update(&ZEROS[..n]);
                    pad -= n;
                }
            }
            v1_pieces.push(sha1.finalize().into());
            // A file of at most one piece has a tree of as many leaves as it
            // needs (BEP 52's reference creator); a longer one has full piece
            // subtrees, the last one padded with zero leaves.
            let width = if piece_count == 1 { leaves.len().next_power_of_two() } else { blocks_per_piece };
            layer.push(merkle_root(&leaves, width, [0; 32]));
        }
        let pieces_root = match layer.len() {
            0 => None,
            1 => layer.pop(),
            n => Some(merkle_root(&layer, n.next_power_of_two(), zero_subtree(blocks_per_piece))),
        };
        FileHashes {
            length: bytes.len() as u64,
            piece_length,
            v1_pieces,
            v1_last_unpadded,
            pieces_root,
            piece_layer: layer,
        }
    }

    /// The file's length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The piece length these hashes were computed for.
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// Zeros after the file up to the next piece boundary: the length of the
    /// pad file that follows it (none after an empty file).
    pub fn pad_length(&self) -> u64 {
        (self.piece_length - self.length % self.piece_length) % self.piece_length
    }

    /// SHA-1 of each of the file's pieces, the last one padded with
    /// [`Self::pad_length`] zeros.
    pub fn v1_pieces(&self) -> &[PieceHash] {
        &self.v1_pieces
    }

    /// The same, except that the last piece is not padded: the last file of a
    /// torrent is followed by no pad file.
    pub fn v1_pieces_unpadded(&self) -> impl Iterator<Item = &PieceHash> {
        let padded = if self.v1_last_unpadded.is_some() { self.v1_pieces.len() - 1 } else { self.v1_pieces.len() };
        self.v1_pieces[..padded].iter().chain(&self.v1_last_unpadded)
    }

    /// The v2 `pieces root`; `None` for an empty file, which has none.
    pub fn pieces_root(&self) -> Option<&MerkleHash> {
        self.pieces_root.as_ref()
    }

    /// The file's entry in `piece layers`: one hash per piece, empty unless the
    /// file is longer than one piece.
    pub fn piece_layer(&self) -> &[MerkleHash] {
        if self.length > self.piece_length { &self.piece_layer } else { &[] }
    }
}

fn hash_pair(left: &MerkleHash, right: &MerkleHash) -> MerkleHash {
    let mut sha = Sha256::new();
    sha.update(left);
    sha.update(right);
    sha.finalize().into()
}

/// The root of a perfect binary tree with `width` (a power of two, at least
/// `nodes.len()`) nodes at the bottom: `nodes`, then copies of `pad`.
fn merkle_root(nodes: &[MerkleHash], width: usize, pad: MerkleHash) -> MerkleHash {
    let mut layer = nodes.to_vec();
    let mut pad = pad;
    let mut width = width.max(1);
    while width > 1 {
        layer = layer.chunks(2).map(|pair| hash_pair(&pair[0], pair.get(1).unwrap_or(&pad))).collect();
        pad = hash_pair(&pad, &pad);
        width /= 2;
    }
    layer.first().copied().unwrap_or(pad)
}

/// The root of a subtree of `leaves` zero leaves: a piece beyond the end of a file.
fn zero_subtree(leaves: usize) -> MerkleHash {
    merkle_root(&[], leaves, [0; 32])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = BLOCK_SIZE as usize;

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8 ^ (i >> 14) as u8).collect()
    }

    /// BEP 52 read literally: leaf hashes of 16 KiB blocks, zero hashes up to
    /// a power of two, pairs hashed up to the root; every layer kept.
    fn reference_tree(data: &[u8]) -> Vec<Vec<[u8; 32]>> {
        let mut leaves: Vec<[u8; 32]> = data.chunks(BLOCK).map(|b| Sha256::digest(b).into()).collect();
        leaves.resize(leaves.len().next_power_of_two(), [0; 32]);
        let mut layers = vec![leaves];
        while layers.last().unwrap().len() > 1 {
            let next = layers.last().unwrap().chunks(2).map(|p| Sha256::digest([p[0], p[1]].concat()).into()).collect();
            layers.push(next);
        }
        layers
    }

    fn reference_v1(data: &[u8], piece: usize) -> Vec<PieceHash> {
        data.chunks(piece)
            .map(|chunk| {
                let mut padded = chunk.to_vec();
                padded.resize(piece, 0);
                Sha1::digest(&padded).into()
            })
            .collect()
    }

    #[test]
    fn matches_a_naive_merkle_tree_and_zero_padded_sha1() {
        for piece in [16384usize, 65536, 262144] {
            let sizes = [
                0,
                1,
                16383,
                16384,
                16385,
                piece - 1,
                piece,
                piece + 1,
                3 * piece + 5000,
                5 * piece,
                8 * piece + 16384 * 2 + 1,
            ];
            for len in sizes {
                let data = bytes(len);
                let hashes = FileHashes::compute(&data, piece as u64);
                let what = format!("piece {piece}, length {len}");
                assert_eq!(hashes.length(), len as u64, "{what}");
                assert_eq!(hashes.v1_pieces(), reference_v1(&data, piece), "{what}");
                let unpadded: Vec<PieceHash> = data.chunks(piece).map(|c| Sha1::digest(c).into()).collect();
                assert_eq!(hashes.v1_pieces_unpadded().copied().collect::<Vec<_>>(), unpadded, "{what}");
                assert_eq!(hashes.pad_length(), ((piece - len % piece) % piece) as u64, "{what}");
                if len == 0 {
                    assert_eq!(hashes.pieces_root(), None);
                    assert!(hashes.piece_layer().is_empty());
                    continue;
                }
                let tree = reference_tree(&data);
                assert_eq!(hashes.pieces_root(), Some(tree.last().unwrap()[0]).as_ref(), "{what}");
                if len <= piece {
                    assert!(hashes.piece_layer().is_empty(), "{what}");
                } else {
                    // The layer where one node covers one piece, minus the
                    // nodes that cover nothing but padding.
                    let height = (piece / BLOCK).trailing_zeros() as usize;
                    let layer = &tree[height][..len.div_ceil(piece)];
                    assert_eq!(hashes.piece_layer(), layer, "{what}");
                }
            }
        }
    }

    #[test]
    fn small_files_have_a_tree_of_their_own_size() {
        // Three blocks: a four-leaf tree, not one padded to the piece's 16 leaves.
        let data = bytes(2 * BLOCK + 10);
        let leaves: Vec<[u8; 32]> = data.chunks(BLOCK).map(|b| Sha256::digest(b).into()).collect();
        let left = hash_pair(&leaves[0], &leaves[1]);
        let right = hash_pair(&leaves[2], &[0; 32]);
        let hashes = FileHashes::compute(&data, 16 * BLOCK_SIZE);
        assert_eq!(hashes.pieces_root(), Some(&hash_pair(&left, &right)));
        // One block: the root is the block's hash.
        let hashes = FileHashes::compute(b"LOG_URL: https://example.org\n", 65536);
        assert_eq!(hashes.pieces_root(), Some(&Sha256::digest(b"LOG_URL: https://example.org\n").into()));
    }

    #[test]
    fn zero_subtrees() {
        assert_eq!(zero_subtree(1), [0; 32]);
        assert_eq!(zero_subtree(2), hash_pair(&[0; 32], &[0; 32]));
        assert_eq!(zero_subtree(4), hash_pair(&zero_subtree(2), &zero_subtree(2)));
    }

    #[test]
    #[should_panic(expected = "bad piece length")]
    fn piece_lengths_below_a_block_are_refused() {
        FileHashes::compute(b"x", 8192);
    }
}
