//! TileLeaf records: the entries of a Static CT data tile (c2sp.org/static-ct-api).
//!
//! ```text
//! u64 timestamp | u16 entry_type
//!   type 0 (x509_entry):    u24 len + certificate
//!   type 1 (precert_entry): [32] issuer_key_hash | u24 len + tbs_certificate
//! u16 len + extensions                      -- end of the TimestampedEntry
//!   type 1 only:            u24 len + pre_certificate
//! u16 len + N × [32] chain fingerprints
//! ```
//! The leaf hash covers the TimestampedEntry only; the trailing precertificate
//! and chain are framing-checked but not bound by the log's Merkle tree.

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::merkle::Hash;

const X509_ENTRY: u16 = 0;
const PRECERT_ENTRY: u16 = 1;
const LEAF_INDEX_EXTENSION: u8 = 0;

/// Why a data tile could not be read, with the entry and byte offset it happened at.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("entry {position} (leaf index {index}) at byte {offset}: {problem}")]
pub struct TileLeafError {
    /// Position within the tile, 0..256.
    pub position: usize,
    /// The leaf index the entry should carry.
    pub index: u64,
    pub offset: usize,
    pub problem: Problem,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Problem {
    #[error("record ends early while reading {0}")]
    Truncated(&'static str),
    #[error("unknown entry_type {0}")]
    UnknownEntryType(u16),
    #[error("empty {0}")]
    Empty(&'static str),
    #[error("chain length {0} is not a multiple of 32")]
    ChainLength(usize),
    #[error("no leaf_index extension")]
    MissingLeafIndex,
    #[error("more than one leaf_index extension")]
    DuplicateLeafIndex,
    #[error("leaf_index extension has {0} bytes of data, not 5")]
    LeafIndexLength(usize),
    #[error("leaf_index is {0}")]
    WrongLeafIndex(u64),
    #[error("malformed extensions")]
    MalformedExtensions,
    #[error("{0} bytes left over after the last entry")]
    TrailingBytes(usize),
}

/// The kind of certificate an entry logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    X509,
    Precert,
}

/// One parsed entry, borrowing from the tile.
#[derive(Clone, Copy, Debug)]
pub struct TileLeaf<'a> {
    pub timestamp: u64,
    pub kind: EntryKind,
    /// The TimestampedEntry bytes that the leaf hash covers.
    pub timestamped_entry: &'a [u8],
    pub leaf_index: u64,
}

impl TileLeaf<'_> {
    /// SHA-256(0x00 || version 0 || leaf type 0 || TimestampedEntry).
    pub fn leaf_hash(&self) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update([0u8, 0, 0]);
        hasher.update(self.timestamped_entry);
        hasher.finalize().into()
    }
}

/// What a data tile contributes to verification.
#[derive(Debug)]
pub struct LeafHashes {
    pub hashes: Vec<Hash>,
    /// Timestamp (ms) of the tile's last entry.
    pub last_timestamp: u64,
}

/// Parses the `count` entries of a data tile whose first entry has leaf index
/// `first_index`, checking framing and each entry's leaf_index, and returns
/// their leaf hashes. The tile must hold exactly those entries.
pub fn leaf_hashes(tile: &[u8], first_index: u64, count: usize) -> Result<LeafHashes, TileLeafError> {
    let mut hashes = Vec::with_capacity(count);
    let mut last_timestamp = 0;
    let mut reader = Reader { bytes: tile, pos: 0 };
    for position in 0..count {
        let index = first_index + position as u64;
        let start = reader.pos;
        let fail = |offset: usize, problem: Problem| TileLeafError { position, index, offset, problem };
        let leaf = parse_one(&mut reader).map_err(|(offset, problem)| fail(offset, problem))?;
        if leaf.leaf_index != index {
            return Err(fail(start, Problem::WrongLeafIndex(leaf.leaf_index)));
        }
        hashes.push(leaf.leaf_hash());
        last_timestamp = leaf.timestamp;
    }
    if reader.pos != tile.len() {
        return Err(TileLeafError {
            position: count,
            index: first_index + count as u64,
            offset: reader.pos,
            problem: Problem::TrailingBytes(tile.len() - reader.pos),
        });
    }
    Ok(LeafHashes { hashes, last_timestamp })
}

/// The length in bytes of the first `count` entries of a tile: a partial
/// tile cut from the full tile it is a prefix of. `None` if they do not parse.
pub fn prefix_len(tile: &[u8], count: usize) -> Option<usize> {
    let mut reader = Reader { bytes: tile, pos: 0 };
    for _ in 0..count {
        parse_one(&mut reader).ok()?;
    }
    Some(reader.pos)
}

/// Iterates over the entries of a tile without checking their leaf indexes.
pub fn entries(tile: &[u8]) -> impl Iterator<Item = Result<TileLeaf<'_>, (usize, Problem)>> {
    let mut reader = Reader { bytes: tile, pos: 0 };
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || reader.pos == reader.bytes.len() {
            return None;
        }
        let result = parse_one(&mut reader);
        failed = result.is_err();
        Some(result)
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], (usize, Problem)> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or((self.pos, Problem::Truncated(what)))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize, what: &'static str) -> Result<u64, (usize, Problem)> {
        Ok(self.take(n, what)?.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    /// A length-prefixed field of `len_bytes` length bytes.
    fn vector(&mut self, len_bytes: usize, what: &'static str) -> Result<&'a [u8], (usize, Problem)> {
        let len = self.uint(len_bytes, what)? as usize;
        self.take(len, what)
    }
}

fn parse_one<'a>(reader: &mut Reader<'a>) -> Result<TileLeaf<'a>, (usize, Problem)> {
    let start = reader.pos;
    let timestamp = reader.uint(8, "timestamp")?;
    let entry_type_at = reader.pos;
    let kind = match reader.uint(2, "entry_type")? as u16 {
        X509_ENTRY => EntryKind::X509,
        PRECERT_ENTRY => EntryKind::Precert,
        other => return Err((entry_type_at, Problem::UnknownEntryType(other))),
    };
    if kind == EntryKind::Precert {
        reader.take(32, "issuer_key_hash")?;
    }
    let what = if kind == EntryKind::X509 { "certificate" } else { "tbs_certificate" };
    let cert_at = reader.pos;
    if reader.vector(3, what)?.is_empty() {
        return Err((cert_at, Problem::Empty(what)));
    }
    let extensions_at = reader.pos;
    let extensions = reader.vector(2, "extensions")?;
    let leaf_index = leaf_index(extensions).map_err(|problem| (extensions_at, problem))?;
    let timestamped_entry = &reader.bytes[start..reader.pos];
    if kind == EntryKind::Precert {
        let at = reader.pos;
        if reader.vector(3, "pre_certificate")?.is_empty() {
            return Err((at, Problem::Empty("pre_certificate")));
        }
    }
    let chain_at = reader.pos;
    let chain = reader.vector(2, "certificate_chain")?;
    if chain.len() % 32 != 0 {
        return Err((chain_at, Problem::ChainLength(chain.len())));
    }
    Ok(TileLeaf { timestamp, kind, timestamped_entry, leaf_index })
}

/// Finds the single leaf_index extension (type 0, five bytes of big-endian index).
fn leaf_index(mut extensions: &[u8]) -> Result<u64, Problem> {
    let mut found = None;
    while !extensions.is_empty() {
        if extensions.len() < 3 {
            return Err(Problem::MalformedExtensions);
        }
        let kind = extensions[0];
        let len = usize::from(u16::from_be_bytes([extensions[1], extensions[2]]));
        let data = extensions.get(3..3 + len).ok_or(Problem::MalformedExtensions)?;
        if kind == LEAF_INDEX_EXTENSION {
            if found.is_some() {
                return Err(Problem::DuplicateLeafIndex);
            }
            if len != 5 {
                return Err(Problem::LeafIndexLength(len));
            }
            found = Some(data.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)));
        }
        extensions = &extensions[3 + len..];
    }
    found.ok_or(Problem::MissingLeafIndex)
}

/// An entry to encode as a TileLeaf (used by the fixture log generator).
pub struct NewEntry<'a> {
    pub timestamp: u64,
    pub leaf_index: u64,
    pub body: NewEntryBody<'a>,
    pub chain: &'a [Hash],
}

pub enum NewEntryBody<'a> {
    X509 { certificate: &'a [u8] },
    Precert { issuer_key_hash: Hash, tbs_certificate: &'a [u8], pre_certificate: &'a [u8] },
}

/// Appends the TileLeaf encoding of `entry` to `out` and returns the range of
/// `out` holding its TimestampedEntry.
pub fn encode(entry: &NewEntry<'_>, out: &mut Vec<u8>) -> std::ops::Range<usize> {
    fn push_len(out: &mut Vec<u8>, len: usize, bytes: usize) {
        out.extend_from_slice(&(len as u64).to_be_bytes()[8 - bytes..]);
    }
    let start = out.len();
    out.extend_from_slice(&entry.timestamp.to_be_bytes());
    match &entry.body {
        NewEntryBody::X509 { certificate } => {
            out.extend_from_slice(&X509_ENTRY.to_be_bytes());
            push_len(out, certificate.len(), 3);
            out.extend_from_slice(certificate);
        }
        NewEntryBody::Precert { issuer_key_hash, tbs_certificate, .. } => {
            out.extend_from_slice(&PRECERT_ENTRY.to_be_bytes());
            out.extend_from_slice(issuer_key_hash);
            push_len(out, tbs_certificate.len(), 3);
            out.extend_from_slice(tbs_certificate);
        }
    }
    out.extend_from_slice(&[0, 8, LEAF_INDEX_EXTENSION, 0, 5]);
    out.extend_from_slice(&entry.leaf_index.to_be_bytes()[3..]);
    let end = out.len();
    if let NewEntryBody::Precert { pre_certificate, .. } = &entry.body {
        push_len(out, pre_certificate.len(), 3);
        out.extend_from_slice(pre_certificate);
    }
    push_len(out, entry.chain.len() * 32, 2);
    for fingerprint in entry.chain {
        out.extend_from_slice(fingerprint);
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tile(first: u64, count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..count as u64 {
            let cert = vec![0x30; 100 + i as usize];
            let chain = [[7u8; 32], [9u8; 32]];
            let body = if i % 2 == 0 {
                NewEntryBody::X509 { certificate: &cert }
            } else {
                NewEntryBody::Precert { issuer_key_hash: [1; 32], tbs_certificate: &cert, pre_certificate: &cert }
            };
            encode(
                &NewEntry { timestamp: 1_700_000_000_000 + i, leaf_index: first + i, body, chain: &chain },
                &mut out,
            );
        }
        out
    }

    #[test]
    fn encoded_entries_parse_back() {
        let tile = sample_tile(512, 256);
        let read = leaf_hashes(&tile, 512, 256).unwrap();
        assert_eq!(read.last_timestamp, 1_700_000_000_255);
        let hashes = read.hashes;
        assert_eq!(hashes.len(), 256);
        let parsed: Vec<TileLeaf> = entries(&tile).map(Result::unwrap).collect();
        assert_eq!(parsed[1].kind, EntryKind::Precert);
        assert_eq!(parsed[1].leaf_index, 513);
        assert_eq!(parsed[1].leaf_hash(), hashes[1]);
    }

    #[test]
    fn wrong_leaf_index_names_the_entry() {
        let tile = sample_tile(0, 3);
        let err = leaf_hashes(&tile, 256, 3).unwrap_err();
        assert_eq!(err.position, 0);
        assert_eq!(err.problem, Problem::WrongLeafIndex(0));
    }

    #[test]
    fn truncation_and_trailing_bytes_are_errors() {
        let tile = sample_tile(0, 2);
        let err = leaf_hashes(&tile[..tile.len() - 1], 0, 2).unwrap_err();
        assert_eq!(err.position, 1);
        assert!(matches!(err.problem, Problem::Truncated(_)));
        let mut long = tile.clone();
        long.push(0);
        assert_eq!(leaf_hashes(&long, 0, 2).unwrap_err().problem, Problem::TrailingBytes(1));
        assert!(matches!(leaf_hashes(&tile, 0, 3).unwrap_err().problem, Problem::Truncated("timestamp")));
    }

    #[test]
    fn chain_must_be_whole_fingerprints() {
        let mut tile = sample_tile(0, 1);
        // Cut one byte from the last fingerprint and fix up the chain length.
        let len = tile.len();
        tile.truncate(len - 1);
        let chain_len_at = len - 2 - 64;
        tile[chain_len_at..chain_len_at + 2].copy_from_slice(&63u16.to_be_bytes());
        assert_eq!(leaf_hashes(&tile, 0, 1).unwrap_err().problem, Problem::ChainLength(63));
    }

    #[test]
    fn real_navigli_tiles_parse() {
        let dir = crate::real_fixtures();
        for n in 0..4u64 {
            let path = dir.join(format!("navigli2025h2/tile/data/00{n}"));
            let tile = std::fs::read(&path).unwrap();
            let hashes = leaf_hashes(&tile, n * 256, 256).unwrap().hashes;
            let level0 = std::fs::read(dir.join(format!("navigli2025h2/tile/0/00{n}"))).unwrap();
            let expected: Vec<Hash> = level0.chunks_exact(32).map(|c| c.try_into().unwrap()).collect();
            assert_eq!(hashes, expected, "{}", path.display());
        }
        let partial = std::fs::read(dir.join("navigli2025h2/tile/data/003.p/10")).unwrap();
        assert_eq!(leaf_hashes(&partial, 768, 10).unwrap().hashes.len(), 10);
    }

    #[test]
    fn real_tesseract_tile_parses() {
        let dir = crate::real_fixtures();
        let tile = std::fs::read(dir.join("tesseract/example_tile")).unwrap();
        let parsed: Vec<TileLeaf> = entries(&tile).collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 256);
        assert!(parsed.iter().all(|leaf| leaf.kind == EntryKind::Precert));
        let first = parsed[0].leaf_index;
        assert!(parsed.iter().enumerate().all(|(i, leaf)| leaf.leaf_index == first + i as u64));
    }
}
