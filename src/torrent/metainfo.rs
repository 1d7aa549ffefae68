//! BitTorrent v1 metainfo (BEP 3, BEP 12 announce-list, BEP 19 url-list),
//! written as canonical bencode, and read back when helio's state is rebuilt.

use std::fmt;

use serde::Deserialize;
use sha1::{Digest, Sha1};
use thiserror::Error;

use super::bencode::{Value, dict, find_value_span};
use super::pieces::PieceHash;
use super::sources::Sources;

/// SHA-1 of the bencoded info dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Infohash(pub [u8; 20]);

impl fmt::Display for Infohash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl Infohash {
    pub fn from_hex(text: &str) -> Option<Infohash> {
        if text.len() != 40 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Infohash(out))
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
        }
        Metainfo { bytes: outer.encode(), infohash }
    }
}

/// What helio needs to know about a `.torrent` it finds on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentSummary {
    pub name: String,
    pub infohash: Infohash,
    pub piece_length: u64,
    pub content_length: u64,
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
}

#[derive(Deserialize)]
struct RawFile {
    length: u64,
}

impl TorrentSummary {
    pub fn read(bytes: &[u8]) -> Result<TorrentSummary, ReadError> {
        if !super::bencode::is_well_formed(bytes) {
            return Err(ReadError::Malformed);
        }
        let span = find_value_span(bytes, b"info").ok_or(ReadError::NoInfo)?;
        let raw: RawTorrent = serde_bencode::from_bytes(bytes)?;
        Ok(TorrentSummary {
            name: raw.info.name,
            infohash: Infohash(Sha1::digest(&bytes[span]).into()),
            piece_length: raw.info.piece_length,
            content_length: raw.info.files.iter().map(|f| f.length).sum(),
            file_count: raw.info.files.len(),
            creation_date: raw.creation_date,
            webseeds: raw.url_list,
            trackers: raw.announce_list.into_iter().flatten().collect(),
        })
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
    }
}
