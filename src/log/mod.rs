//! Talking to a Static CT log: where its bytes come from, its signed
//! checkpoint, tile paths, TileLeaf records, Merkle verification, and the
//! proof tiles that let a subscriber verify a range against a checkpoint.

pub mod body;
pub mod checkpoint;
pub mod fetch_error;
pub mod host;
pub mod http;
pub mod merkle;
pub mod note;
pub mod resolver;
pub mod source;
pub mod tile;
pub mod tile_leaf;
pub mod verify;
