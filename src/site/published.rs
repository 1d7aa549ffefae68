//! One torrent as the site lists it: in `torrents.json`, the feeds and the
//! pages (docs/spec.md §5).

use crate::torrent::metainfo::{Infohash, InfohashV2};
use crate::torrent::range::TorrentRange;

/// One published torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedTorrent {
    pub range: TorrentRange,
    pub infohash: Infohash,
    /// The v2 infohash of a hybrid torrent (BEP 52).
    pub infohash_v2: Option<InfohashV2>,
    /// Bytes of content (tiles and README).
    pub data_size_bytes: u64,
    pub piece_length: u64,
    pub file_count: usize,
    /// Unix seconds: the torrent's `creation date`.
    pub creation_time: u64,
    /// Bytes of the `.torrent` file (the RSS enclosure length).
    pub torrent_size: u64,
}
