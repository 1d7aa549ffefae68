//! The subscriber side: what someone who downloads helio's torrents runs.
//! `helio verify` proves downloaded ranges against the log's checkpoint,
//! using the proof tiles the publisher's site carries beside it
//! ([`crate::site::proof`]); it reuses `log/` for tiles, TileLeaf records,
//! Merkle checks and signed checkpoints.

pub mod folder;
pub mod verify;
