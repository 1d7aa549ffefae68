//! RFC 6962 Merkle tree hashing, and the tree root computed from the right
//! edge of a tiled tree.

use sha2::{Digest, Sha256};

use super::tile::TILE_WIDTH;

/// A SHA-256 hash: a leaf hash, an interior node, a tile's tree hash or a root.
pub type Hash = [u8; 32];

/// SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The root of a complete subtree over `hashes`, whose count must be a power of two.
pub fn perfect_root(hashes: &[Hash]) -> Hash {
    assert!(hashes.len().is_power_of_two(), "perfect_root of {} hashes", hashes.len());
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks_exact(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
    }
    level[0]
}

/// RFC 6962 Merkle tree hash of any number of leaf hashes (SHA-256 of the empty
/// string for none).
pub fn tree_hash(hashes: &[Hash]) -> Hash {
    match hashes.len() {
        0 => Sha256::digest([]).into(),
        1 => hashes[0],
        n => {
            let split = if n.is_power_of_two() { n / 2 } else { 1 << (usize::BITS - 1 - n.leading_zeros()) };
            node_hash(&tree_hash(&hashes[..split]), &tree_hash(&hashes[split..]))
        }
    }
}

/// The tree root from the right-edge tiles: `edge[l]` holds the entries of the
/// level-`l` tile that the tree size leaves partial (its first `(size >> 8l) %
/// 256` hashes; empty when that level ends on a tile boundary). Every entry is
/// bound by the result, so a root that matches authenticates all of them.
pub fn root_from_right_edge(edge: &[&[Hash]]) -> Hash {
    // The complete subtrees of the tree, left to right: highest level first,
    // and within a level the larger power-of-two chunks first.
    let mut subtrees: Vec<Hash> = Vec::new();
    for entries in edge.iter().rev() {
        let mut start = 0;
        let mut chunk = TILE_WIDTH as usize / 2;
        while chunk > 0 {
            if entries.len() & chunk != 0 {
                subtrees.push(perfect_root(&entries[start..start + chunk]));
                start += chunk;
            }
            chunk /= 2;
        }
    }
    let Some(mut root) = subtrees.pop() else {
        return Sha256::digest([]).into();
    };
    while let Some(left) = subtrees.pop() {
        root = node_hash(&left, &root);
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect()
    }

    /// The tiles of a tree of `n` leaves, computed level by level.
    fn right_edge(leaves: &[Hash]) -> Vec<Vec<Hash>> {
        let mut edge = Vec::new();
        let mut level = leaves.to_vec();
        while !level.is_empty() {
            let full = level.len() / 256 * 256;
            edge.push(level[full..].to_vec());
            level = level[..full].chunks_exact(256).map(perfect_root).collect();
        }
        edge
    }

    #[test]
    fn empty_tree_hash_is_sha256_of_nothing() {
        let expected: Hash = Sha256::digest([]).into();
        assert_eq!(tree_hash(&[]), expected);
        assert_eq!(root_from_right_edge(&[]), expected);
    }

    #[test]
    fn right_edge_root_equals_tree_hash() {
        for n in [1, 2, 3, 255, 256, 257, 511, 512, 1000, 65535, 65536, 65537, 70000] {
            let leaves = leaves(n);
            let edge = right_edge(&leaves);
            let edge: Vec<&[Hash]> = edge.iter().map(Vec::as_slice).collect();
            assert_eq!(root_from_right_edge(&edge), tree_hash(&leaves), "size {n}");
        }
    }

    #[test]
    fn rfc6962_reference_vectors() {
        // The Go tlog package's test vectors: leaves are the bytes "" , "\x00", "\x10", …
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let hashes: Vec<Hash> = inputs.iter().map(|x| leaf_hash(x)).collect();
        let hex = |h: Hash| hex::encode(h);
        assert_eq!(hex(tree_hash(&hashes[..1])), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        assert_eq!(hex(tree_hash(&hashes[..2])), "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
        assert_eq!(hex(tree_hash(&hashes[..3])), "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77");
        assert_eq!(hex(tree_hash(&hashes[..8])), "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
    }
}
