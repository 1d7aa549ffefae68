//! BitTorrent v1 metainfo (BEP 3, BEP 12 announce-list, BEP 19 url-list),
//! written as canonical bencode, and read back when helio's state is rebuilt.
//! Hybrid v1 + v2 torrents (BEP 52) share the outer dictionary and the reader
//! here; their info dictionary is written by [`super::hybrid`].

use std::fmt;

use serde::Deserialize;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use thiserror::Error;

use super::bencode::{Value, dict, find_value_span};
use super::pieces::PieceHash;
use super::sources::Sources;

/// SHA-1 of the bencoded info dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Infohash(pub [u8; 20]);

impl fmt::Display for Infohash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Infohash {
    /// 40 hex digits, as `Display` writes them.
    pub fn from_hex(text: &str) -> Option<Infohash> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Infohash(out))
    }
}

/// SHA-256 of the bencoded info dictionary of a v2 or hybrid torrent (BEP 52),
/// shown as 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InfohashV2(pub [u8; 32]);

impl fmt::Display for InfohashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl InfohashV2 {
    /// 64 hex digits, as `Display` writes them.
    pub fn from_hex(text: &str) -> Option<InfohashV2> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(InfohashV2(out))
    }
}

/// A file inside the torrent: its `/`-separated path and length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub length: u64,
}

/// Everything that goes into a `.torrent` file.
pub struct MetainfoSpec<'a> {
    pub name: &'a str,
    pub files: &'a [FileEntry],
    pub piece_length: u64,
    pub pieces: &'a [PieceHash],
    /// `info.private`, written only when set (the heliotorrent profile writes 0).
    pub private: Option<i64>,
    pub trackers: &'a [String],
    pub webseeds: &'a [String],
    pub created_by: &'a str,
    pub creation_date: i64,
}

/// A written `.torrent`: its bytes and infohash.
pub struct Metainfo {
    pub bytes: Vec<u8>,
    pub infohash: Infohash,
}

impl MetainfoSpec<'_> {
    pub fn write(&self) -> Metainfo {
        let files = self
            .files
            .iter()
            .map(|file| {
                dict([
                    ("length", Value::Int(file.length as i64)),
                    ("path", Value::List(file.path.split('/').map(Value::str).collect())),
                ])
            })
            .collect();
        let mut info = dict([
            ("files", Value::List(files)),
            ("name", Value::str(self.name)),
            ("piece length", Value::Int(self.piece_length as i64)),
            ("pieces", Value::Bytes(self.pieces.concat())),
        ]);
        if let (Value::Dict(entries), Some(private)) = (&mut info, self.private) {
            entries.insert(b"private".to_vec(), Value::Int(private));
        }
        let info = info.encode();
        let infohash = Infohash(Sha1::digest(&info).into());
        let outer = Outer {
            trackers: self.trackers,
            webseeds: self.webseeds,
            created_by: self.created_by,
            creation_date: self.creation_date,
        };
        Metainfo { bytes: outer.write(info, None), infohash }
    }
}

/// The keys around the info dictionary, shared by v1 and hybrid torrents.
pub(super) struct Outer<'a> {
    pub trackers: &'a [String],
    pub webseeds: &'a [String],
    pub created_by: &'a str,
    pub creation_date: i64,
}

impl Outer<'_> {
    /// The whole `.torrent`, with `info` embedded exactly as given (its hashes
    /// are over these bytes) and, for hybrid torrents, the `piece layers`.
    pub(super) fn write(&self, info: Vec<u8>, piece_layers: Option<Value>) -> Vec<u8> {
        let mut outer = dict([
            ("created by", Value::str(self.created_by)),
            ("creation date", Value::Int(self.creation_date)),
            ("info", Value::Encoded(info)),
        ]);
        if let Value::Dict(entries) = &mut outer {
            let sources = Sources { trackers: self.trackers.to_vec(), webseeds: self.webseeds.to_vec() };
            for (key, value) in sources.entries() {
                entries.insert(key.to_vec(), value);
            }
            if let Some(layers) = piece_layers {
                entries.insert(b"piece layers".to_vec(), layers);
            }
        }
        outer.encode()
    }
}

/// What helio needs to know about a `.torrent` it finds on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentSummary {
    pub name: String,
    pub infohash: Infohash,
    /// Present for hybrid torrents (`meta version` 2).
    pub infohash_v2: Option<InfohashV2>,
    pub piece_length: u64,
    /// Bytes of the files, BEP 47 pad files not counted.
    pub content_length: u64,
    /// Files, pad files not counted.
    pub file_count: usize,
    pub creation_date: Option<i64>,
    pub webseeds: Vec<String>,
    pub trackers: Vec<String>,
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("not a torrent: {0}")]
    Decode(#[from] serde_bencode::Error),
    #[error("not a torrent: no info dictionary")]
    NoInfo,
    #[error("not a torrent: not one well-formed bencoded value nested at most 64 deep")]
    Malformed,
}

#[derive(Deserialize)]
struct RawTorrent {
    info: RawInfo,
    #[serde(rename = "creation date")]
    creation_date: Option<i64>,
    #[serde(rename = "url-list", default)]
    url_list: Vec<String>,
    #[serde(rename = "announce-list", default)]
    announce_list: Vec<Vec<String>>,
}

#[derive(Deserialize)]
struct RawInfo {
    name: String,
    #[serde(rename = "piece length")]
    piece_length: u64,
    files: Vec<RawFile>,
    #[serde(rename = "meta version")]
    meta_version: Option<i64>,
}

#[derive(Deserialize)]
struct RawFile {
    length: u64,
    attr: Option<serde_bytes::ByteBuf>,
}

impl RawFile {
    /// A BEP 47 pad file: zeros that align the next file to a piece boundary.
    fn is_pad(&self) -> bool {
        self.attr.as_ref().is_some_and(|attr| attr.contains(&b'p'))
    }
}

impl TorrentSummary {
    pub fn read(bytes: &[u8]) -> Result<TorrentSummary, ReadError> {
        if !super::bencode::is_well_formed(bytes) {
            return Err(ReadError::Malformed);
        }
        let span = find_value_span(bytes, b"info").ok_or(ReadError::NoInfo)?;
        let raw: RawTorrent = serde_bencode::from_bytes(bytes)?;
        let info = &bytes[span];
        let files = || raw.info.files.iter().filter(|f| !f.is_pad());
        Ok(TorrentSummary {
            infohash: Infohash(Sha1::digest(info).into()),
            infohash_v2: (raw.info.meta_version == Some(2)).then(|| InfohashV2(Sha256::digest(info).into())),
            piece_length: raw.info.piece_length,
            content_length: files().map(|f| f.length).sum(),
            file_count: files().count(),
            name: raw.info.name,
            creation_date: raw.creation_date,
            webseeds: raw.url_list,
            trackers: raw.announce_list.into_iter().flatten().collect(),
        })
    }
}

/// The largest piece a download is checked with.
const MAX_CHECKED_PIECE: u64 = 64 << 20;

/// A torrent's v1 layout: its files in content order and the SHA-1 of each
/// piece across them (BEP 3), what a download is checked against piece by
/// piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentLayout {
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<PieceHash>,
    pub files: Vec<LayoutFile>,
}

/// One file of a [`TorrentLayout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutFile {
    /// `/`-separated, as in the torrent's `path` list.
    pub path: String,
    pub length: u64,
    /// A BEP 47 pad file: that many zero bytes, never on disk.
    pub pad: bool,
}

#[derive(Deserialize)]
struct LayoutTorrent {
    info: LayoutInfo,
}

#[derive(Deserialize)]
struct LayoutInfo {
    name: String,
    #[serde(rename = "piece length")]
    piece_length: u64,
    pieces: serde_bytes::ByteBuf,
    files: Vec<LayoutEntry>,
}

#[derive(Deserialize)]
struct LayoutEntry {
    length: u64,
    path: Vec<String>,
    attr: Option<serde_bytes::ByteBuf>,
}

/// Why a torrent's layout cannot be used to check files.
#[derive(Debug, Error)]
pub enum LayoutError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("not a torrent helio can check against: {0}")]
    Inconsistent(String),
}

impl TorrentLayout {
    /// Reads a multi-file torrent's layout, and checks that its pieces
    /// cover its files exactly, so checking them cannot overflow or run off
    /// the end.
    pub fn read(bytes: &[u8]) -> Result<TorrentLayout, LayoutError> {
        if !super::bencode::is_well_formed(bytes) {
            return Err(ReadError::Malformed.into());
        }
        let raw: LayoutTorrent = serde_bencode::from_bytes(bytes).map_err(ReadError::from)?;
        let bad = |message: &str| LayoutError::Inconsistent(message.to_string());
        let piece_length = raw.info.piece_length;
        // Checking holds a piece in memory per thread: helio's are at most
        // 16 MiB (v1) or a sixteenth of the range's entries in bytes (hybrid).
        if !(16 << 10..=MAX_CHECKED_PIECE).contains(&piece_length) {
            return Err(bad("its piece length is not between 16 KiB and 64 MiB"));
        }
        if !raw.info.pieces.len().is_multiple_of(20) {
            return Err(bad("its pieces are not a list of SHA-1 hashes"));
        }
        let pieces: Vec<PieceHash> =
            raw.info.pieces.chunks_exact(20).map(|c| c.try_into().unwrap_or([0; 20])).collect();
        let mut total: u64 = 0;
        let mut files = Vec::with_capacity(raw.info.files.len());
        for entry in raw.info.files {
            let path = entry.path.join("/");
            let safe = !entry.path.is_empty()
                && entry.path.iter().all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']));
            if !safe {
                return Err(LayoutError::Inconsistent(format!("file path {path:?} is not a relative path")));
            }
            total = total.checked_add(entry.length).ok_or_else(|| bad("its files add up to more than 2^64 bytes"))?;
            let pad = entry.attr.as_ref().is_some_and(|attr| attr.contains(&b'p'));
            files.push(LayoutFile { path, length: entry.length, pad });
        }
        if total.div_ceil(piece_length) != pieces.len() as u64 {
            return Err(bad("its number of pieces does not match the length of its files"));
        }
        Ok(TorrentLayout { name: raw.info.name, piece_length, pieces, files })
    }

    /// Bytes of all files, pad files included.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(
        files: &'a [FileEntry],
        pieces: &'a [PieceHash],
        trackers: &'a [String],
        webseeds: &'a [String],
    ) -> MetainfoSpec<'a> {
        MetainfoSpec {
            name: "demo-L01-0-256",
            files,
            piece_length: 16384,
            pieces,
            private: None,
            trackers,
            webseeds,
            created_by: "helio 0.1.0",
            creation_date: 1_700_000_000,
        }
    }

    #[test]
    fn a_layout_is_read_back_only_when_its_pieces_cover_its_files() {
        let files =
            [FileEntry { path: "README.md".into(), length: 5 }, FileEntry { path: "tile/0/000".into(), length: 8192 }];
        let written = spec(&files, &[[0xab; 20]], &[], &[]).write();
        let layout = TorrentLayout::read(&written.bytes).unwrap();
        assert_eq!(layout.name, "demo-L01-0-256");
        assert_eq!((layout.piece_length, layout.pieces.len(), layout.total_length()), (16384, 1, 8197));
        assert_eq!(layout.files[1], LayoutFile { path: "tile/0/000".into(), length: 8192, pad: false });
        let two = spec(&files, &[[0xab; 20], [0xcd; 20]], &[], &[]).write();
        let error = TorrentLayout::read(&two.bytes).unwrap_err().to_string();
        assert!(error.ends_with("its number of pieces does not match the length of its files"), "{error}");
        let escaping = [FileEntry { path: "../etc/passwd".into(), length: 5 }];
        let written = spec(&escaping, &[[0xab; 20]], &[], &[]).write();
        assert!(TorrentLayout::read(&written.bytes).is_err());
    }

    #[test]
    fn writes_canonical_metainfo() {
        let files =
            [FileEntry { path: "README.md".into(), length: 5 }, FileEntry { path: "tile/0/000".into(), length: 8192 }];
        let pieces = [[0xab; 20]];
        let trackers = ["udp://a:1/announce".to_string(), "http://b/announce".to_string()];
        let webseeds = ["http://ws/demo/".to_string()];
        let written = spec(&files, &pieces, &trackers, &webseeds).write();
        let mut expected = b"d8:announce18:udp://a:1/announce13:announce-listll18:udp://a:1/announceel17:http://b/announceee10:created by11:helio 0.1.013:creation datei1700000000e4:info".to_vec();
        let info = [
            &b"d5:filesld6:lengthi5e4:pathl9:README.mdeed6:lengthi8192e4:pathl4:tile1:03:000eee4:name14:demo-L01-0-25612:piece lengthi16384e6:pieces20:"[..],
            &[0xab; 20],
            b"e",
        ]
        .concat();
        expected.extend_from_slice(&info);
        expected.extend_from_slice(b"8:url-listl15:http://ws/demo/ee");
        assert_eq!(String::from_utf8_lossy(&written.bytes), String::from_utf8_lossy(&expected));
        assert_eq!(written.infohash, Infohash(Sha1::digest(&info).into()));
    }

    #[test]
    fn no_trackers_and_no_webseeds_omit_their_keys() {
        let files = [FileEntry { path: "README.md".into(), length: 5 }];
        let written = spec(&files, &[[1; 20]], &[], &[]).write();
        let text = String::from_utf8_lossy(&written.bytes);
        assert!(text.starts_with("d10:created by"), "{text}");
        assert!(!text.contains("announce") && !text.contains("url-list"));
    }

    #[test]
    fn heliotorrent_private_key_is_inside_info() {
        let files = [FileEntry { path: "README.md".into(), length: 5 }];
        let mut s = spec(&files, &[[1; 20]], &[], &[]);
        s.private = Some(0);
        let written = s.write();
        let span = find_value_span(&written.bytes, b"info").unwrap();
        assert!(written.bytes[span].ends_with(b"7:privatei0ee"));
    }

    #[test]
    fn summaries_read_back() {
        let files = [
            FileEntry { path: "README.md".into(), length: 5 },
            FileEntry { path: "tile/data/000".into(), length: 100 },
        ];
        let trackers = ["udp://a:1/announce".to_string()];
        let webseeds = ["http://ws/demo/".to_string()];
        let written = spec(&files, &[[1; 20]], &trackers, &webseeds).write();
        let summary = TorrentSummary::read(&written.bytes).unwrap();
        assert_eq!(summary.infohash, written.infohash);
        assert_eq!(summary.infohash_v2, None);
        assert_eq!(summary.content_length, 105);
        assert_eq!(summary.file_count, 2);
        assert_eq!(summary.name, "demo-L01-0-256");
        assert_eq!(summary.creation_date, Some(1_700_000_000));
        assert_eq!(summary.webseeds, webseeds);
        assert_eq!(summary.trackers, trackers);
        assert!(TorrentSummary::read(b"garbage").is_err());
    }

    #[test]
    fn infohash_hex_round_trip() {
        let hash = Infohash([0x0f; 20]);
        assert_eq!(hash.to_string(), "0f".repeat(20));
        assert_eq!(Infohash::from_hex(&hash.to_string()), Some(hash));
        assert_eq!(Infohash::from_hex("zz"), None);
        // A sign is not a digit, though `u8::from_str_radix` would take it.
        assert_eq!(Infohash::from_hex(&format!("+f{}", "0f".repeat(19))), None);
        let v2 = InfohashV2([0xa5; 32]);
        assert_eq!(v2.to_string(), "a5".repeat(32));
        assert_eq!(InfohashV2::from_hex(&v2.to_string()), Some(v2));
        assert_eq!(InfohashV2::from_hex(&"a5".repeat(20)), None);
    }
}
