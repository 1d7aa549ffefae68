//! Streaming, parallel SHA-1 piece hashing.
//!
//! Bytes arrive in content order, tile by tile, and are never copied: a block
//! of pieces is a list of slices of the tiles it spans. Full blocks are hashed
//! on the rayon pool while more bytes arrive, with a bounded number in flight
//! so memory stays flat. A block is one piece of the largest candidate length
//! or `MIN_BLOCK`, whichever is longer: with small pieces (64 KiB for a
//! range of 16,384 entries) a block per piece made the feeding thread wait on
//! the pool for every 64 KiB, a thread switch each time, and it was the one
//! thread of a log's build that cannot be spread.
//!
//! The piece length depends on the total content size, which is only known
//! once the last data tile has arrived. The hasher therefore works for a small
//! set of candidate lengths (powers of two) at once. A longer piece starts with
//! the bytes of the shorter piece at the same offset, so its SHA-1 state
//! continues from that shorter piece's state instead of starting over: two
//! candidates cost 1.5 passes, not 2.

use std::collections::BTreeMap;
use std::sync::mpsc;

use bytes::Bytes;
use sha1::{Digest, Sha1};

/// The fewest bytes hashed as one job on the rayon pool (a power of two,
/// so that every block boundary is a piece boundary of every candidate).
const MIN_BLOCK: u64 = 1 << 20;

/// One piece hash.
pub type PieceHash = [u8; 20];

/// The pieces of one block for each candidate length hashed for it.
type BlockHashes = Vec<(u64, Vec<PieceHash>)>;

/// Hashes a byte stream into pieces for several candidate piece lengths.
pub struct PieceHasher {
    /// Ascending powers of two; the largest is the block size.
    candidates: Vec<u64>,
    pending: Vec<Bytes>,
    pending_len: u64,
    total: u64,
    next_block: usize,
    in_flight: usize,
    max_in_flight: usize,
    sender: mpsc::Sender<(usize, BlockHashes)>,
    receiver: mpsc::Receiver<(usize, BlockHashes)>,
    done: BTreeMap<usize, BlockHashes>,
}

impl PieceHasher {
    /// `candidates` must be non-empty powers of two.
    pub fn new(mut candidates: Vec<u64>) -> PieceHasher {
        candidates.sort_unstable();
        candidates.dedup();
        assert!(!candidates.is_empty() && candidates.iter().all(|c| c.is_power_of_two()));
        let (sender, receiver) = mpsc::channel();
        PieceHasher {
            candidates,
            pending: Vec::new(),
            pending_len: 0,
            total: 0,
            next_block: 0,
            in_flight: 0,
            max_in_flight: rayon::current_num_threads().min(2) + 1,
            sender,
            receiver,
            done: BTreeMap::new(),
        }
    }

    /// The candidate piece lengths still being hashed.
    pub fn candidates(&self) -> &[u64] {
        &self.candidates
    }

    /// Bytes pushed so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Keeps hashing only the candidates within `[min, max]` (the others can
    /// no longer be, or are very unlikely to be, the answer); at least one
    /// candidate always stays. Blocks already hashed keep their results.
    pub fn retain_candidates(&mut self, min: u64, max: u64) {
        let keep: Vec<u64> = self.candidates.iter().copied().filter(|c| (min..=max).contains(c)).collect();
        let keep = if keep.is_empty() {
            // Keep the one closest to the window rather than none.
            let closest =
                if self.candidates.iter().all(|&c| c < min) { self.candidates.last() } else { self.candidates.first() };
            closest.copied().into_iter().collect()
        } else {
            keep
        };
        self.candidates = keep;
        // A smaller block size: the pending bytes start on a boundary of the old
        // (larger) block, hence of the new one too, so whole new blocks can go.
        let block = self.block_size();
        while self.pending_len >= block {
            let mut head = Vec::new();
            let mut need = block as usize;
            while need > 0 {
                let first = &mut self.pending[0];
                if first.len() <= need {
                    need -= first.len();
                    head.push(self.pending.remove(0));
                } else {
                    head.push(first.split_to(need));
                    need = 0;
                }
            }
            let rest = std::mem::replace(&mut self.pending, head);
            self.pending_len = block;
            self.dispatch();
            self.pending = rest;
            self.pending_len = self.pending.iter().map(|p| p.len() as u64).sum();
        }
    }

    /// Appends bytes to the stream.
    pub fn push(&mut self, mut data: Bytes) {
        self.total += data.len() as u64;
        let block = self.block_size();
        while !data.is_empty() {
            let room = (block - self.pending_len) as usize;
            let part = data.split_to(room.min(data.len()));
            self.pending_len += part.len() as u64;
            self.pending.push(part);
            if self.pending_len == block {
                self.dispatch();
            }
        }
    }

    /// Waits for all hashing and returns the pieces for `piece_length`, or
    /// `None` if it was not one of the candidates.
    pub fn finish(mut self, piece_length: u64) -> Option<Vec<PieceHash>> {
        if !self.candidates.contains(&piece_length) {
            return None;
        }
        if self.pending_len > 0 {
            self.dispatch();
        }
        while self.in_flight > 0 {
            self.collect_one();
        }
        let mut pieces = Vec::with_capacity(self.total.div_ceil(piece_length) as usize);
        for (_, per_candidate) in self.done {
            let (_, hashes) = per_candidate.into_iter().find(|(length, _)| *length == piece_length)?;
            pieces.extend(hashes);
        }
        Some(pieces)
    }

    fn block_size(&self) -> u64 {
        self.candidates.last().copied().unwrap_or(1).max(MIN_BLOCK)
    }

    fn dispatch(&mut self) {
        while self.in_flight >= self.max_in_flight {
            self.collect_one();
        }
        let parts = std::mem::take(&mut self.pending);
        let candidates = self.candidates.clone();
        let index = self.next_block;
        let sender = self.sender.clone();
        self.next_block += 1;
        self.pending_len = 0;
        self.in_flight += 1;
        rayon::spawn(move || {
            let hashes = hash_block(&parts, &candidates);
            // The receiver lives as long as the hasher; a send error means it was dropped.
            let _ = sender.send((index, hashes));
        });
    }

    fn collect_one(&mut self) {
        // The hasher holds a sender, so recv only fails if a job panicked.
        if let Ok((index, hashes)) = self.receiver.recv() {
            self.done.insert(index, hashes);
        }
        self.in_flight -= 1;
    }
}

/// Hashes one block (the concatenation of `parts`) for every candidate length.
fn hash_block(parts: &[Bytes], candidates: &[u64]) -> BlockHashes {
    let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let mut results = Vec::with_capacity(candidates.len());
    // States after the first `previous candidate` bytes of each piece, by offset.
    let mut carried: BTreeMap<u64, Sha1> = BTreeMap::new();
    let mut previous = 0u64;
    for (i, &candidate) in candidates.iter().enumerate() {
        let next = candidates.get(i + 1).copied();
        let mut hashes = Vec::with_capacity(len.div_ceil(candidate) as usize);
        let mut next_carried = BTreeMap::new();
        let mut offset = 0;
        while offset < len {
            let end = (offset + candidate).min(len);
            let (mut state, from) = match carried.remove(&offset) {
                Some(state) => (state, (offset + previous).min(end)),
                None => (Sha1::new(), offset),
            };
            update_range(&mut state, parts, from, end);
            if next.is_some_and(|n| offset % n == 0) {
                next_carried.insert(offset, state.clone());
            }
            hashes.push(state.finalize().into());
            offset = end;
        }
        results.push((candidate, hashes));
        carried = next_carried;
        previous = candidate;
    }
    results
}

/// Feeds bytes `[start, end)` of the concatenation of `parts` to `state`.
fn update_range(state: &mut Sha1, parts: &[Bytes], start: u64, end: u64) {
    let mut base = 0u64;
    for part in parts {
        let part_end = base + part.len() as u64;
        if part_end > start && base < end {
            let from = start.saturating_sub(base) as usize;
            let to = (end.min(part_end) - base) as usize;
            state.update(&part[from..to]);
        }
        if part_end >= end {
            break;
        }
        base = part_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8], piece: usize) -> Vec<PieceHash> {
        data.chunks(piece).map(|chunk| Sha1::digest(chunk).into()).collect()
    }

    fn stream(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn single_candidate_matches_plain_sha1() {
        let data = stream(100_000);
        for split in [1usize, 999, 16384, 40_000] {
            let mut hasher = PieceHasher::new(vec![16384]);
            for chunk in data.chunks(split) {
                hasher.push(Bytes::copy_from_slice(chunk));
            }
            assert_eq!(hasher.finish(16384).unwrap(), reference(&data, 16384), "split {split}");
        }
    }

    #[test]
    fn every_candidate_matches_plain_sha1() {
        for len in [0usize, 1, 16383, 16384, 16385, 65536, 65537, 200_001] {
            let data = stream(len);
            for wanted in [16384u64, 32768, 65536] {
                let mut hasher = PieceHasher::new(vec![16384, 32768, 65536]);
                for chunk in data.chunks(7000) {
                    hasher.push(Bytes::copy_from_slice(chunk));
                }
                let pieces = hasher.finish(wanted).unwrap();
                assert_eq!(pieces, reference(&data, wanted as usize), "len {len} piece {wanted}");
            }
        }
    }

    #[test]
    fn non_adjacent_candidates_share_state_correctly() {
        let data = stream(300_000);
        let mut hasher = PieceHasher::new(vec![16384, 131072]);
        hasher.push(Bytes::from(data.clone()));
        assert_eq!(hasher.finish(16384).unwrap(), reference(&data, 16384));
        let mut hasher = PieceHasher::new(vec![16384, 131072]);
        hasher.push(Bytes::from(data.clone()));
        assert_eq!(hasher.finish(131072).unwrap(), reference(&data, 131072));
    }

    #[test]
    fn dropping_small_candidates_mid_stream_keeps_the_rest_right() {
        let data = stream(1_000_000);
        let mut hasher = PieceHasher::new(vec![16384, 32768, 65536]);
        let (first, rest) = data.split_at(300_000);
        hasher.push(Bytes::copy_from_slice(first));
        hasher.retain_candidates(32768, u64::MAX);
        assert_eq!(hasher.candidates(), &[32768, 65536]);
        hasher.push(Bytes::copy_from_slice(rest));
        assert_eq!(hasher.finish(32768).unwrap(), reference(&data, 32768));
    }

    #[test]
    fn dropping_the_largest_candidate_mid_block_shrinks_the_blocks() {
        let data = stream(1_000_000);
        for cut in [0usize, 1, 65536, 65537, 100_000, 131072 + 5] {
            let mut hasher = PieceHasher::new(vec![16384, 32768, 131072]);
            let (first, rest) = data.split_at(cut);
            for chunk in first.chunks(3000) {
                hasher.push(Bytes::copy_from_slice(chunk));
            }
            hasher.retain_candidates(0, 32768);
            assert_eq!(hasher.candidates(), &[16384, 32768]);
            for chunk in rest.chunks(5000) {
                hasher.push(Bytes::copy_from_slice(chunk));
            }
            assert_eq!(hasher.finish(32768).unwrap(), reference(&data, 32768), "cut {cut}");
        }
        let mut hasher = PieceHasher::new(vec![16384, 32768]);
        hasher.retain_candidates(65536, 65536 * 4);
        assert_eq!(hasher.candidates(), &[32768], "never left with nothing");
    }

    #[test]
    fn small_pieces_are_hashed_a_megabyte_at_a_time() {
        let data = stream(5 * MIN_BLOCK as usize + 12_345);
        let mut hasher = PieceHasher::new(vec![65536, 131072]);
        for chunk in data.chunks(400_000) {
            hasher.push(Bytes::copy_from_slice(chunk));
        }
        assert_eq!(hasher.next_block, 5, "one job per MiB, not per 128 KiB piece");
        assert_eq!(hasher.finish(65536).unwrap(), reference(&data, 65536));
        let mut hasher = PieceHasher::new(vec![4 * MIN_BLOCK]);
        hasher.push(Bytes::from(data.clone()));
        assert_eq!(hasher.next_block, 1, "a piece longer than the minimum is a block");
        assert_eq!(hasher.finish(4 * MIN_BLOCK).unwrap(), reference(&data, 4 * MIN_BLOCK as usize));
    }

    #[test]
    fn a_length_that_was_not_hashed_is_none() {
        let mut hasher = PieceHasher::new(vec![16384]);
        hasher.push(Bytes::from_static(b"abc"));
        assert!(hasher.finish(32768).is_none());
    }
}
