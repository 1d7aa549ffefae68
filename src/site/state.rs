//! What helio has published for a log, read back from the site's store:
//! `torrents.json` lists the torrents (it is the published state, so a site
//! restored from a static host, or a bucket read by a runner that starts
//! empty, carries everything a build needs), `checkpoint` holds the last
//! verified tree head, and the `.torrent` objects the folder's listing shows
//! are the ground truth that both are reconciled with. No `.torrent` is read
//! unless `torrents.json` does not list it.

use std::collections::BTreeMap;

use bytes::Bytes;
use thiserror::Error;

use crate::log::checkpoint::{Checkpoint, CheckpointError};
use crate::store::{Store, StoreError};
use crate::torrent::metainfo::TorrentSummary;
use crate::torrent::range::TorrentRange;
use crate::torrent::sources::Sources;

use super::published::PublishedTorrent;
use super::torrents_json::{self, TorrentsJson};

pub use crate::layout::CHECKPOINT;
pub use crate::layout::TORRENTS_JSON;

/// A log's published state.
#[derive(Debug)]
pub struct LogState {
    pub name: String,
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
    /// What the state was read from, to tell later whether another build
    /// changed it since ([`crate::site::log_folder`]).
    pub seen: Seen,
}

/// What a log's state is read from, as read: the bytes of `torrents.json`
/// and `checkpoint`, and the `.torrent` objects with their sizes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    torrents_json: Option<Bytes>,
    checkpoint: Option<Bytes>,
    torrents: BTreeMap<TorrentRange, u64>,
}

impl Seen {
    /// Reads the log's folder: one listing, and `torrents.json` and
    /// `checkpoint` when it shows them.
    pub fn read(store: &Store, name: &str) -> Result<Seen, StoreError> {
        let folder = format!("{name}/");
        let listed = store.list(&folder)?;
        let mut seen = Seen::default();
        let mut has = (false, false);
        for object in &listed {
            let file = &object.key[folder.len()..];
            if let Some(range) = TorrentRange::from_file_name(file) {
                seen.torrents.insert(range, object.size);
            }
            has.0 |= file == TORRENTS_JSON;
            has.1 |= file == CHECKPOINT;
        }
        if has.0 {
            seen.torrents_json = store.read(&format!("{folder}{TORRENTS_JSON}"))?;
        }
        if has.1 {
            seen.checkpoint = store.read(&format!("{folder}{CHECKPOINT}"))?;
        }
        Ok(seen)
    }
}

#[derive(Debug, Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {what}: {message}; move it aside and helio rebuilds it from the .torrent files")]
    Json { what: String, message: String },
    #[error("cannot read {what}: {source}; move it aside and the next build starts from the log's current checkpoint")]
    Checkpoint { what: String, source: CheckpointError },
    #[error("{what}: {message}; delete it and helio builds it again")]
    Torrent { what: String, message: String },
}

impl LogState {
    /// A log with nothing published.
    pub fn empty(name: &str) -> LogState {
        LogState {
            name: name.to_string(),
            torrents: Vec::new(),
            last_updated: None,
            checkpoint: None,
            sources: None,
            notes: Vec::new(),
            seen: Seen::default(),
        }
    }

    /// Reads the log's folder `<name>/` of `store` (which may not exist yet).
    pub fn load(store: &Store, name: &str) -> Result<LogState, StateError> {
        let seen = Seen::read(store, name)?;
        let mut state = LogState::empty(name);
        let describe = |file: &str| store.describe(&format!("{name}/{file}"));

        if let Some(text) = &seen.checkpoint {
            let checkpoint = Checkpoint::parse(text)
                .map_err(|source| StateError::Checkpoint { what: describe(CHECKPOINT), source })?;
            state.checkpoint = Some(checkpoint);
        }

        let mut present = seen.torrents.clone();
        let listed = match &seen.torrents_json {
            Some(bytes) => {
                let parsed = torrents_json::parse(bytes)
                    .map_err(|message| StateError::Json { what: describe(TORRENTS_JSON), message })?;
                state.last_updated = Some(parsed.last_updated);
                state.sources = parsed.sources;
                parsed.torrents
            }
            None => Vec::new(),
        };

        let mut gone = Vec::new();
        for mut torrent in listed {
            match present.remove(&torrent.range) {
                Some(size) => {
                    torrent.torrent_size = size;
                    state.torrents.push(torrent);
                }
                None => gone.push(torrent.range.file_name()),
            }
        }
        // One note, however many: a damaged list must not flood the log.
        if !gone.is_empty() {
            const SHOWN: usize = 3;
            let more = if gone.len() > SHOWN { format!(" and {} more", gone.len() - SHOWN) } else { String::new() };
            let count = gone.len();
            gone.truncate(SHOWN);
            state.notes.push(format!(
                "{}{more} {} listed in {TORRENTS_JSON} but missing; {} built again",
                gone.join(", "),
                if count == 1 { "is" } else { "are" },
                if count == 1 { "it will be" } else { "they will be" },
            ));
        }
        // Torrents present that the list does not know (a build that stopped
        // between writing one and updating the list, or a restored site).
        for (range, size) in present {
            let file = range.file_name();
            let Some(bytes) = store.read(&format!("{name}/{file}"))? else { continue };
            let summary = TorrentSummary::read(&bytes)
                .map_err(|e| StateError::Torrent { what: describe(&file), message: e.to_string() })?;
            let expected = range.torrent_name(name);
            if summary.name != expected {
                return Err(StateError::Torrent {
                    what: describe(&file),
                    message: format!("its name is {:?}, not {expected:?}", summary.name),
                });
            }
            state.notes.push(format!("{file} was not in {TORRENTS_JSON}; added from the file"));
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
            state.last_updated = Some(crate::clock::now());
        }
        state.torrents.sort_by_key(|t| t.range);
        state.seen = seen;
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
        TorrentsJson::render(&self.name, self.last_updated(), &self.torrents, self.sources.as_ref(), links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Target;

    /// A `torrents.json` listing `count` torrents of 1,024 entries.
    fn listing(count: u64) -> String {
        let torrents: Vec<String> = (0..count)
            .map(|k| {
                format!(
                    r#"{{"start_index": {}, "end_index": {}, "data_size_bytes": 1700000, "creation_time": "2026-01-01T00:00:00Z",
                    "torrent_url": "x", "infohash": "{:040x}", "magnet": "m", "piece_length": 16384, "file_count": 9}}"#,
                    k * 1024,
                    k * 1024 + 1023,
                    k + 1
                )
            })
            .collect();
        format!(
            r#"{{"log_name": "demo", "last_updated": "2026-01-01T00:00:00Z", "torrents": [{}]}}"#,
            torrents.join(",")
        )
    }

    #[test]
    fn torrents_listed_but_missing_are_one_note_however_many() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Target::Dir(dir.path().to_path_buf())).unwrap();
        store.write("demo/torrents.json", listing(5000).as_bytes()).unwrap();
        let state = LogState::load(&store, "demo").unwrap();
        assert!(state.torrents.is_empty());
        assert_eq!(state.notes.len(), 1, "{:?}", &state.notes[..state.notes.len().min(3)]);
        assert_eq!(
            state.notes[0],
            "L01-0-1024.torrent, L01-1024-2048.torrent, L01-2048-3072.torrent and 4997 more are listed in \
             torrents.json but missing; they will be built again"
        );
    }

    #[test]
    fn a_state_file_past_its_size_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Target::Dir(dir.path().to_path_buf())).unwrap();
        std::fs::create_dir_all(dir.path().join("demo")).unwrap();
        let big = std::fs::File::create(dir.path().join("demo/torrents.json")).unwrap();
        big.set_len(100 << 20).unwrap();
        let error = LogState::load(&store, "demo").unwrap_err().to_string();
        assert!(
            error.ends_with(
                "torrents.json is larger than 16777216 bytes, which no file helio writes there is: move it aside"
            ),
            "{error}"
        );
        let checkpoint = std::fs::File::create(dir.path().join("demo/checkpoint")).unwrap();
        checkpoint.set_len(2 << 20).unwrap();
        std::fs::remove_file(dir.path().join("demo/torrents.json")).unwrap();
        let error = LogState::load(&store, "demo").unwrap_err().to_string();
        assert!(error.contains("checkpoint is larger than 1048576 bytes"), "{error}");
    }
}
