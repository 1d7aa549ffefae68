//! The subscriber side: what someone who downloads helio's torrents runs.
//! `helio verify` proves downloaded ranges against the log's checkpoint,
//! using the proof tiles the publisher's site carries beside it
//! ([`crate::site::proof`]); `helio mirror` serves them back, proved, as a
//! Static CT log's monitoring prefix. Both reuse `log/` for tiles, TileLeaf
//! records, Merkle checks and signed checkpoints.

pub mod error;
pub mod mirror;
pub mod pieces;
pub mod range_folder;
pub mod verify;
