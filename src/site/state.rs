//! What helio has published for a log, read back from its output folder:
//! `torrents.json` lists the torrents (it is the published state, so a site
//! restored from a static host carries everything a build needs), `checkpoint`
//! holds the last verified tree head, and the `.torrent` files on disk are the
//! ground truth that both are reconciled with.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::log::checkpoint::{Checkpoint, CheckpointError};
use crate::torrent::metainfo::{Infohash, InfohashV2, TorrentSummary};
use crate::torrent::range::TorrentRange;
use crate::torrent::sources::Sources;

use super::json::{self, TorrentsJson};

pub const TORRENTS_JSON: &str = "torrents.json";
pub const CHECKPOINT: &str = "checkpoint";

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

/// A log's published state.
#[derive(Debug)]
pub struct LogState {
    pub name: String,
    pub dir: PathBuf,
    /// By range start.
    pub torrents: Vec<PublishedTorrent>,
    /// Unix seconds of the last change to the torrent list.
    pub last_updated: Option<u64>,
    /// The newest checkpoint a build verified.
    pub checkpoint: Option<Checkpoint>,
    /// The trackers and web seeds the published torrents carry, when known.
    pub sources: Option<Sources>,
    /// What reconciling the folder found, worth telling the operator.
    pub notes: Vec<String>,
}

#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot read {}: {message}; move it aside and helio rebuilds it from the .torrent files", path.display())]
    Json { path: PathBuf, message: String },
    #[error("cannot read {}: {source}; move it aside and the next build starts from the log's current checkpoint", path.display())]
    Checkpoint { path: PathBuf, source: CheckpointError },
    #[error("{}: {message}; delete it and helio builds it again", path.display())]
    Torrent { path: PathBuf, message: String },
}

impl LogState {
    /// A log with nothing published.
    pub fn empty(dir: &Path, name: &str) -> LogState {
        LogState {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            torrents: Vec::new(),
            last_updated: None,
            checkpoint: None,
            sources: None,
            notes: Vec::new(),
        }
    }

    /// Reads `dir` (which may not exist yet).
    pub fn load(dir: &Path, name: &str) -> Result<LogState, StateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        let mut state = LogState::empty(dir, name);
        if !dir.exists() {
            return Ok(state);
        }

        let checkpoint_path = dir.join(CHECKPOINT);
        match fs::read(&checkpoint_path) {
            Ok(text) => {
                let checkpoint = Checkpoint::parse(&text)
                    .map_err(|source| StateError::Checkpoint { path: checkpoint_path.clone(), source })?;
                state.checkpoint = Some(checkpoint);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&checkpoint_path)(e)),
        }

        // The .torrent files present, with their sizes.
        let mut on_disk: BTreeMap<TorrentRange, u64> = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let file_name = entry.file_name();
            if let Some(range) = file_name.to_str().and_then(TorrentRange::from_file_name) {
                let size = entry.metadata().map_err(io(&entry.path()))?.len();
                on_disk.insert(range, size);
            }
        }

        let json_path = dir.join(TORRENTS_JSON);
        let listed = match fs::read(&json_path) {
            Ok(bytes) => {
                let parsed =
                    json::parse(&bytes).map_err(|message| StateError::Json { path: json_path.clone(), message })?;
                state.last_updated = Some(parsed.last_updated);
                state.sources = parsed.sources;
                parsed.torrents
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&json_path)(e)),
        };

        for mut torrent in listed {
            match on_disk.remove(&torrent.range) {
                Some(size) => {
                    torrent.torrent_size = size;
                    state.torrents.push(torrent);
                }
                None => state.notes.push(format!(
                    "{} is listed in {TORRENTS_JSON} but missing; it will be built again",
                    torrent.range.file_name()
                )),
            }
        }
        // Torrents on disk that the list does not know (a build that stopped
        // between writing one and updating the list, or a restored site).
        for (range, size) in on_disk {
            let path = dir.join(range.file_name());
            let bytes = fs::read(&path).map_err(io(&path))?;
            let summary = TorrentSummary::read(&bytes)
                .map_err(|e| StateError::Torrent { path: path.clone(), message: e.to_string() })?;
            let expected = range.torrent_name(name);
            if summary.name != expected {
                return Err(StateError::Torrent {
                    path,
                    message: format!("its name is {:?}, not {expected:?}", summary.name),
                });
            }
            state.notes.push(format!("{} was not in {TORRENTS_JSON}; added from the file", range.file_name()));
            state.torrents.push(PublishedTorrent {
                range,
                infohash: summary.infohash,
                infohash_v2: summary.infohash_v2,
                data_size_bytes: summary.content_length,
                piece_length: summary.piece_length,
                file_count: summary.file_count,
                creation_time: summary.creation_date.unwrap_or(0).max(0) as u64,
                torrent_size: size,
            });
            // The list changes now: it gains a torrent it did not know.
            state.last_updated = Some(super::json::now());
        }
        state.torrents.sort_by_key(|t| t.range);
        Ok(state)
    }

    pub fn ranges(&self) -> Vec<TorrentRange> {
        self.torrents.iter().map(|t| t.range).collect()
    }

    /// Records a new torrent; `now` (Unix seconds) becomes the list's update time.
    pub fn add(&mut self, torrent: PublishedTorrent, now: u64) {
        self.torrents.retain(|t| t.range != torrent.range);
        self.torrents.push(torrent);
        self.torrents.sort_by_key(|t| t.range);
        self.last_updated = Some(now);
    }

    /// The update time to publish: the recorded one, or for a list rebuilt
    /// from files, the newest torrent's creation time (stable across runs).
    pub fn last_updated(&self) -> u64 {
        self.last_updated.unwrap_or_else(|| self.torrents.iter().map(|t| t.creation_time).max().unwrap_or(0))
    }

    /// Entries covered by published torrents.
    pub fn entries_published(&self) -> u64 {
        self.torrents.iter().map(|t| t.range.entries()).sum()
    }

    /// The contents of `torrents.json` for this state.
    pub fn torrents_json(&self, links: &super::links::LogLinks) -> Vec<u8> {
        TorrentsJson::render(self, links)
    }
}
