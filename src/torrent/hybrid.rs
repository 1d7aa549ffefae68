//! Hybrid metainfo: one info dictionary that is both a BitTorrent v1 torrent
//! (BEP 3, with BEP 47 pad files) and a v2 torrent (BEP 52), so v1-only and
//! v2 clients join the same content. Written as canonical bencode; the v1
//! infohash is the SHA-1 and the v2 infohash the SHA-256 of the same written
//! info bytes.
//!
//! The info dictionary holds `files` (v1: each file, then a pad file of zeros
//! up to the next piece boundary, except after the last), `file tree` (v2:
//! nested dictionaries, a file being `{"": {length, pieces root}}`), `meta
//! version` 2, `name`, `piece length` and `pieces` (the v1 piece hashes of the
//! files and their pads, in file order). `piece layers`, outside the info
//! dictionary, holds the piece layer of each file longer than one piece,
//! keyed by its pieces root. Never `private`: the heliotorrent profile stays
//! v1. See docs/hybrid.md.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use thiserror::Error;

use super::bencode::{Dict, Value, dict};
use super::file_hashes::{BLOCK_SIZE, FileHashes};
use super::metainfo::{Infohash, InfohashV2, Outer};

/// Where BEP 47 pad files live in the v1 file list: `.pad/<length>`.
pub const PAD_DIR: &str = ".pad";

/// One file of a hybrid torrent: its `/`-separated path and its hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HybridFile {
    pub path: String,
    pub hashes: FileHashes,
}

/// Everything that goes into a hybrid `.torrent` file.
pub struct HybridSpec<'a> {
    pub name: &'a str,
    pub piece_length: u64,
    /// In any order: they are written in the order of the file tree (byte
    /// order of their path components), which the v1 list must follow.
    pub files: &'a [HybridFile],
    pub trackers: &'a [String],
    pub webseeds: &'a [String],
    pub created_by: &'a str,
    pub creation_date: i64,
}

/// A written hybrid `.torrent`: its bytes and both infohashes.
#[derive(Clone, Debug)]
pub struct HybridMetainfo {
    pub bytes: Vec<u8>,
    pub infohash: Infohash,
    pub infohash_v2: InfohashV2,
}

#[derive(Debug, Error)]
pub enum HybridError {
    #[error("piece length {0} is not a power of two of at least 16 KiB (BEP 52)")]
    PieceLength(u64),
    #[error("{path} was hashed for pieces of {hashed} bytes, not {piece_length}")]
    HashedForOtherPieces { path: String, hashed: u64, piece_length: u64 },
    #[error("a hybrid torrent needs at least one file")]
    NoFiles,
    #[error("invalid path in a torrent: {0:?}")]
    BadPath(String),
    #[error("{0} is in the torrent twice")]
    Duplicate(String),
    #[error("{file} is a file, so {other} cannot be inside it")]
    FileIsFolder { file: String, other: String },
}

impl HybridSpec<'_> {
    pub fn write(&self) -> Result<HybridMetainfo, HybridError> {
        let piece_length = self.piece_length;
        if !piece_length.is_power_of_two() || piece_length < BLOCK_SIZE {
            return Err(HybridError::PieceLength(piece_length));
        }
        let mut files: Vec<(Vec<&str>, &HybridFile)> = Vec::with_capacity(self.files.len());
        for file in self.files {
            let components: Vec<&str> = file.path.split('/').collect();
            if components.iter().any(|c| c.is_empty() || *c == "." || *c == "..") || components[0] == PAD_DIR {
                return Err(HybridError::BadPath(file.path.clone()));
            }
            if file.hashes.piece_length() != piece_length {
                return Err(HybridError::HashedForOtherPieces {
                    path: file.path.clone(),
                    hashed: file.hashes.piece_length(),
                    piece_length,
                });
            }
            files.push((components, file));
        }
        // The file tree's dictionaries list their keys in byte order, so this
        // is the order of the v2 files, which the v1 list must share.
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in files.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.0 == b.0 {
                return Err(HybridError::Duplicate(a.1.path.clone()));
            }
            // In this order a file that is also a folder comes right before
            // the first path inside it.
            if b.0.starts_with(&a.0) {
                return Err(HybridError::FileIsFolder { file: a.1.path.clone(), other: b.1.path.clone() });
            }
        }
        let last_non_empty = files.iter().rposition(|(_, f)| f.hashes.length() > 0).ok_or(HybridError::NoFiles)?;

        let mut v1_files = Vec::with_capacity(2 * files.len());
        let mut pieces = Vec::new();
        let mut tree = Dict::new();
        let mut layers = Dict::new();
        for (i, (components, file)) in files.iter().enumerate() {
            let hashes = &file.hashes;
            let length = Value::Int(hashes.length() as i64);
            v1_files.push(dict([
                ("length", length.clone()),
                ("path", Value::List(components.iter().map(|c| Value::str(c)).collect())),
            ]));
            let mut leaf = dict([("length", length)]);
            if let (Value::Dict(entries), Some(root)) = (&mut leaf, hashes.pieces_root()) {
                entries.insert(b"pieces root".to_vec(), Value::Bytes(root.to_vec()));
            }
            insert_file(&mut tree, components, leaf);
            if !hashes.piece_layer().is_empty()
                && let Some(root) = hashes.pieces_root()
            {
                layers.insert(root.to_vec(), Value::Bytes(hashes.piece_layer().concat()));
            }
            // The pad makes the next file start on a piece boundary, as v2
            // places it; the last file needs none (BEP 47), and libtorrent
            // accepts hybrid torrents with or without one there.
            if i < last_non_empty {
                pieces.extend(hashes.v1_pieces().iter().flatten());
                let pad = hashes.pad_length();
                if pad > 0 {
                    v1_files.push(dict([
                        ("attr", Value::str("p")),
                        ("length", Value::Int(pad as i64)),
                        ("path", Value::List(vec![Value::str(PAD_DIR), Value::str(&pad.to_string())])),
                    ]));
                }
            } else {
                pieces.extend(hashes.v1_pieces_unpadded().flatten());
            }
        }

        let info = dict([
            ("file tree", Value::Dict(tree)),
            ("files", Value::List(v1_files)),
            ("meta version", Value::Int(2)),
            ("name", Value::str(self.name)),
            ("piece length", Value::Int(piece_length as i64)),
            ("pieces", Value::Bytes(pieces)),
        ])
        .encode();
        let infohash = Infohash(Sha1::digest(&info).into());
        let infohash_v2 = InfohashV2(Sha256::digest(&info).into());
        let outer = Outer {
            trackers: self.trackers,
            webseeds: self.webseeds,
            created_by: self.created_by,
            creation_date: self.creation_date,
        };
        Ok(HybridMetainfo { bytes: outer.write(info, Some(Value::Dict(layers))), infohash, infohash_v2 })
    }
}

/// Puts a file's `{"": leaf}` at its path in the file tree.
fn insert_file(tree: &mut Dict, components: &[&str], leaf: Value) {
    let Some((first, rest)) = components.split_first() else { return };
    if rest.is_empty() {
        tree.insert(first.as_bytes().to_vec(), dict([("", leaf)]));
    } else if let Value::Dict(folder) =
        tree.entry(first.as_bytes().to_vec()).or_insert_with(|| Value::Dict(Dict::new()))
    {
        insert_file(folder, rest, leaf);
    }
}

#[derive(Debug, Error)]
pub enum DownloadReadError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: the name is not UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
}

/// Hashes every file under `root`, a folder laid out as a download of the
/// torrent (`README.md`, `tile/…`), for a hybrid torrent of that content.
/// Pad files a client may have written under `.pad/` are left out. Files are
/// hashed in parallel, each as the build pipeline hashes a tile.
pub fn read_folder(root: &Path, piece_length: u64) -> Result<Vec<HybridFile>, DownloadReadError> {
    let mut paths = Vec::new();
    let mut folders = vec![(root.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|source| DownloadReadError::Read { path: folder.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| DownloadReadError::Read { path: folder.clone(), source })?;
            let path = entry.path();
            let name =
                entry.file_name().into_string().map_err(|_| DownloadReadError::NotUtf8 { path: path.clone() })?;
            let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if relative == PAD_DIR {
                continue;
            }
            let kind = entry.file_type().map_err(|source| DownloadReadError::Read { path: path.clone(), source })?;
            if kind.is_dir() {
                folders.push((path, relative));
            } else {
                paths.push((path, relative));
            }
        }
    }
    paths.sort_by(|a, b| a.1.cmp(&b.1));
    paths
        .into_par_iter()
        .map(|(path, relative)| {
            let bytes =
                std::fs::read(&path).map_err(|source| DownloadReadError::Read { path: path.clone(), source })?;
            Ok(HybridFile { path: relative, hashes: FileHashes::compute(&bytes, piece_length) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::bencode::find_value_span;
    use crate::torrent::metainfo::TorrentSummary;
    use serde_bencode::value::Value as Decoded;
    use std::collections::HashMap;

    const PIECE: u64 = 32768;

    fn file(path: &str, len: usize) -> HybridFile {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8 ^ path.len() as u8).collect();
        HybridFile { path: path.into(), hashes: FileHashes::compute(&bytes, PIECE) }
    }

    fn spec<'a>(files: &'a [HybridFile], trackers: &'a [String], webseeds: &'a [String]) -> HybridSpec<'a> {
        HybridSpec {
            name: "demo-L01-0-1024",
            piece_length: PIECE,
            files,
            trackers,
            webseeds,
            created_by: "helio 0.1.0",
            creation_date: 1_700_000_000,
        }
    }

    fn decode(bytes: &[u8]) -> HashMap<Vec<u8>, Decoded> {
        match serde_bencode::from_bytes(bytes).unwrap() {
            Decoded::Dict(d) => d,
            other => panic!("not a dict: {other:?}"),
        }
    }

    fn get<'a>(d: &'a HashMap<Vec<u8>, Decoded>, key: &str) -> &'a Decoded {
        d.get(key.as_bytes()).unwrap_or_else(|| panic!("no {key}"))
    }

    fn as_dict(v: &Decoded) -> &HashMap<Vec<u8>, Decoded> {
        match v {
            Decoded::Dict(d) => d,
            other => panic!("not a dict: {other:?}"),
        }
    }

    fn as_bytes(v: &Decoded) -> &[u8] {
        match v {
            Decoded::Bytes(b) => b,
            other => panic!("not bytes: {other:?}"),
        }
    }

    fn as_int(v: &Decoded) -> i64 {
        match v {
            Decoded::Int(n) => *n,
            other => panic!("not an int: {other:?}"),
        }
    }

    /// Every dictionary in `bytes` has its keys in raw byte order: re-encoding
    /// the decoded value (serde_bencode sorts keys) gives the same bytes.
    fn assert_canonical(bytes: &[u8]) {
        let decoded: Decoded = serde_bencode::from_bytes(bytes).unwrap();
        assert_eq!(serde_bencode::to_bytes(&decoded).unwrap(), bytes);
    }

    fn sample() -> Vec<HybridFile> {
        vec![
            file("tile/data/000", 100_000),
            file("README.md", 29),
            file("tile/0/000", 8192),
            file("tile/0/001", 2 * PIECE as usize),
            file("tile/data/001", 40_000),
        ]
    }

    #[test]
    fn writes_a_canonical_hybrid_torrent() {
        let files = sample();
        let trackers = ["udp://a:1/announce".to_string()];
        let webseeds = ["http://ws/demo/".to_string()];
        let written = spec(&files, &trackers, &webseeds).write().unwrap();
        assert_canonical(&written.bytes);

        let span = find_value_span(&written.bytes, b"info").unwrap();
        let info_bytes = &written.bytes[span];
        assert_eq!(written.infohash, Infohash(Sha1::digest(info_bytes).into()));
        assert_eq!(written.infohash_v2, InfohashV2(Sha256::digest(info_bytes).into()));

        let outer = decode(&written.bytes);
        let keys: Vec<&[u8]> = {
            let mut k: Vec<&[u8]> = outer.keys().map(|k| k.as_slice()).collect();
            k.sort();
            k
        };
        assert_eq!(
            keys,
            [
                &b"announce"[..],
                b"announce-list",
                b"created by",
                b"creation date",
                b"info",
                b"piece layers",
                b"url-list"
            ]
        );
        let info = as_dict(get(&outer, "info"));
        let mut info_keys: Vec<&[u8]> = info.keys().map(|k| k.as_slice()).collect();
        info_keys.sort();
        assert_eq!(info_keys, [&b"file tree"[..], b"files", b"meta version", b"name", b"piece length", b"pieces"]);
        assert_eq!(as_int(get(info, "meta version")), 2);
        assert_eq!(as_int(get(info, "piece length")), PIECE as i64);

        // v1: files in tree order, a pad after each but the last (none after a
        // file that ends on a boundary), pieces across files and pads.
        let Decoded::List(v1) = get(info, "files") else { panic!() };
        let listed: Vec<(String, i64, bool)> = v1
            .iter()
            .map(|f| {
                let f = as_dict(f);
                let Decoded::List(path) = get(f, "path") else { panic!() };
                let path: Vec<String> = path.iter().map(|p| String::from_utf8(as_bytes(p).to_vec()).unwrap()).collect();
                let pad = f.get(&b"attr"[..]).map(|a| as_bytes(a) == b"p").unwrap_or(false);
                (path.join("/"), as_int(get(f, "length")), pad)
            })
            .collect();
        let p = PIECE as i64;
        assert_eq!(
            listed,
            [
                ("README.md".into(), 29, false),
                (format!(".pad/{}", p - 29), p - 29, true),
                ("tile/0/000".into(), 8192, false),
                (format!(".pad/{}", p - 8192), p - 8192, true),
                ("tile/0/001".into(), 2 * p, false),
                ("tile/data/000".into(), 100_000, false),
                (format!(".pad/{}", 4 * p - 100_000), 4 * p - 100_000, true),
                ("tile/data/001".into(), 40_000, false),
            ]
        );
        let by_path: HashMap<&str, &FileHashes> = files.iter().map(|f| (f.path.as_str(), &f.hashes)).collect();
        let mut expected_pieces = Vec::new();
        for path in ["README.md", "tile/0/000", "tile/0/001", "tile/data/000"] {
            expected_pieces.extend(by_path[path].v1_pieces().concat());
        }
        expected_pieces.extend(by_path["tile/data/001"].v1_pieces_unpadded().flatten());
        assert_eq!(as_bytes(get(info, "pieces")), expected_pieces);

        // v2: the tree, and piece layers only for files longer than a piece.
        let tree = as_dict(get(info, "file tree"));
        let leaf = |path: &str| {
            let mut node = tree;
            for c in path.split('/') {
                node = as_dict(get(node, c));
            }
            as_dict(get(node, ""))
        };
        for f in &files {
            let l = leaf(&f.path);
            assert_eq!(as_int(get(l, "length")), f.hashes.length() as i64);
            assert_eq!(as_bytes(get(l, "pieces root")), f.hashes.pieces_root().unwrap());
            assert_eq!(l.len(), 2);
        }
        let layers = as_dict(get(&outer, "piece layers"));
        // README.md and tile/0/000 fit in one piece.
        assert_eq!(layers.len(), 3);
        for path in ["tile/0/001", "tile/data/000", "tile/data/001"] {
            let h = by_path[path];
            assert_eq!(as_bytes(&layers[&h.pieces_root().unwrap().to_vec()]), h.piece_layer().concat());
        }
    }

    #[test]
    fn order_of_the_input_does_not_matter() {
        let files = sample();
        let mut reversed = files.clone();
        reversed.reverse();
        let a = spec(&files, &[], &[]).write().unwrap();
        let b = spec(&reversed, &[], &[]).write().unwrap();
        assert_eq!(a.bytes, b.bytes);
        let text = String::from_utf8_lossy(&a.bytes);
        assert!(!text.contains("announce") && !text.contains("url-list") && !text.contains("private"));
    }

    #[test]
    fn summaries_read_back_without_pad_files() {
        let files = sample();
        let written = spec(&files, &[], &["http://ws/".into()]).write().unwrap();
        let summary = TorrentSummary::read(&written.bytes).unwrap();
        assert_eq!(summary.infohash, written.infohash);
        assert_eq!(summary.infohash_v2, Some(written.infohash_v2));
        assert_eq!(summary.file_count, 5);
        assert_eq!(summary.content_length, files.iter().map(|f| f.hashes.length()).sum::<u64>());
        assert_eq!(summary.piece_length, PIECE);
        assert_eq!(summary.name, "demo-L01-0-1024");
        assert_eq!(summary.webseeds, ["http://ws/"]);
    }

    #[test]
    fn empty_files_get_no_root_and_no_pad() {
        let files = [file("a", 10), file("b", 0), file("c", 5), file("d", 0)];
        let written = spec(&files, &[], &[]).write().unwrap();
        let outer = decode(&written.bytes);
        let info = as_dict(get(&outer, "info"));
        let Decoded::List(v1) = get(info, "files") else { panic!() };
        let lengths: Vec<i64> = v1.iter().map(|f| as_int(get(as_dict(f), "length"))).collect();
        // a, its pad, b, c (the last non-empty file: no pad), d.
        assert_eq!(lengths, [10, PIECE as i64 - 10, 0, 5, 0]);
        let b = as_dict(get(as_dict(get(as_dict(get(info, "file tree")), "b")), ""));
        assert_eq!(b.len(), 1, "an empty file has no pieces root");
        assert_eq!(as_bytes(get(info, "pieces")).len(), 2 * 20);
        assert!(as_dict(get(&outer, "piece layers")).is_empty());
    }

    #[test]
    fn inconsistent_inputs_are_refused() {
        let write = |files: &[HybridFile]| spec(files, &[], &[]).write().map(|_| ()).unwrap_err().to_string();
        assert!(write(&[]).contains("at least one file"));
        assert!(write(&[file("a", 0)]).contains("at least one file"));
        assert!(write(&[file("a", 1), file("a", 2)]).contains("twice"));
        assert!(write(&[file("tile/0", 1), file("tile/0/001", 2)]).contains("is a file"));
        for bad in ["", "a//b", "../a", ".pad/5", "a/."] {
            assert!(write(&[file(bad, 1)]).contains("invalid path"), "{bad}");
        }
        let other = HybridFile { path: "x".into(), hashes: FileHashes::compute(b"x", 2 * PIECE) };
        assert!(write(&[other]).contains("hashed for pieces of 65536"));
        let mut s = spec(&[], &[], &[]);
        s.piece_length = 3 * 16384;
        assert!(s.write().unwrap_err().to_string().contains("power of two"));
    }

    #[test]
    fn folders_are_read_as_torrent_content() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("tile/0")).unwrap();
        std::fs::create_dir_all(root.join(".pad")).unwrap();
        std::fs::write(root.join("README.md"), b"LOG_URL: x\n").unwrap();
        std::fs::write(root.join("tile/0/000"), vec![7u8; 8192]).unwrap();
        std::fs::write(root.join(".pad/100"), vec![0u8; 100]).unwrap();
        let files = read_folder(root, PIECE).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["README.md", "tile/0/000"]);
        assert_eq!(files[1].hashes, FileHashes::compute(&[7u8; 8192], PIECE));
        let missing = read_folder(&root.join("nope"), PIECE).unwrap_err().to_string();
        assert!(missing.contains("nope"), "{missing}");
    }
}
