//! From verified tiles to `.torrent` files: range planning, streaming piece
//! hashing, the piece-length rule, canonical bencode and the metainfo; for
//! hybrid v1 + v2 torrents, per-file hashing and the hybrid metainfo.

pub mod bencode;
pub mod file_hashes;
pub mod format;
pub mod hybrid;
pub mod magnet;
pub mod metainfo;
pub mod piece_length;
pub mod pieces;
pub mod profile;
pub mod proof;
pub mod range;
pub mod sources;
