//! From verified tiles to `.torrent` files: range planning, streaming piece
//! hashing, the piece-length rule, canonical bencode and the metainfo.

pub mod bencode;
pub mod magnet;
pub mod metainfo;
pub mod piece_length;
pub mod pieces;
pub mod profile;
pub mod range;
pub mod sources;
