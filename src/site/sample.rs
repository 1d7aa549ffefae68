//! A small published site with fixed times, for the feed, page and JSON
//! tests: one log with three torrents, and one with a hostile name, no
//! torrent yet and a failing build.

use std::path::Path;

use crate::config::Config;
use crate::log::checkpoint::Checkpoint;
use crate::torrent::metainfo::Infohash;
use crate::torrent::range::TorrentRange;

use super::links::LogLinks;
use super::pages::LogPage;
use super::published::PublishedTorrent;
use super::state::LogState;
use super::status::{Failure, Health};
use super::summary::CheckpointTime;
use super::summary::LogSummary;

pub const HOSTILE: &str = "a&b <\"c'> é";

pub fn config() -> Config {
    let yaml = format!(
        "scraper_contact_email: ops@example.org\n\
         feed_url_base: https://feeds.example.org/ct/\n\
         entries_per_torrent: 1024\n\
         trackers: [udp://tracker.example.org:1337/announce]\n\
         webseeds: [https://seed.example.org/webseed/]\n\
         logs:\n\
         - name: demo\n  log_url: https://demo.example.org/log/\n\
         - name: '{}'\n  log_url: https://hostile.example.org/a&b<c>/\n  origin: hostile.example.org\n",
        HOSTILE.replace('\'', "''")
    );
    match Config::parse(Path::new("/etc/helio/helio.yaml"), &yaml) {
        Ok(config) => config,
        Err(error) => panic!("sample config: {error}"),
    }
}

fn checkpoint(origin: &str, size: u64) -> Checkpoint {
    Checkpoint {
        origin: origin.to_string(),
        size,
        root: [0x5a; 32],
        extensions: vec![],
        timestamp_ms: None,
        text: String::new(),
    }
}

/// `demo`: three ranges of 1,024 entries and a checkpoint 228 entries past them.
pub fn demo_state() -> LogState {
    let torrents = (0..3u8)
        .map(|k| {
            let start = u64::from(k) * 1024;
            PublishedTorrent {
                range: TorrentRange { start, end: start + 1024 },
                infohash: Infohash([0x10 + k; 20]),
                infohash_v2: None,
                data_size_bytes: 1_700_000 + u64::from(k),
                piece_length: 16_384,
                file_count: 9,
                creation_time: 1_795_000_000 + u64::from(k) * 3600,
                torrent_size: 2_700 + u64::from(k),
            }
        })
        .collect();
    LogState {
        name: "demo".into(),
        torrents,
        last_updated: Some(1_795_010_000),
        checkpoint: Some(checkpoint("demo.example.org/log", 3300)),
        sources: None,
        notes: vec![],
        seen: Default::default(),
    }
}

/// The hostile log: 300 entries verified, nothing published.
pub fn hostile_state() -> LogState {
    LogState {
        name: HOSTILE.into(),
        torrents: vec![],
        last_updated: None,
        checkpoint: Some(checkpoint("hostile.example.org", 300)),
        sources: None,
        notes: vec![],
        seen: Default::default(),
    }
}

pub fn hostile_health() -> Health {
    Health {
        last_attempt: Some(1_795_020_000),
        last_success: None,
        failure: Some(Failure {
            since: 1_795_020_000,
            message: "<script>alert(\"x\")</script> & the log said 'no'".into(),
        }),
        archived: None,
    }
}

pub fn demo_health() -> Health {
    Health { last_attempt: Some(1_795_012_000), last_success: Some(1_795_012_000), failure: None, archived: None }
}

/// Everything the pages need, borrowed from values the caller keeps.
pub struct Sample {
    pub config: Config,
    pub states: Vec<LogState>,
    pub links: Vec<LogLinks>,
    pub health: Vec<Health>,
}

impl Sample {
    pub fn new() -> Sample {
        let config = config();
        let links = config.logs.iter().map(|log| LogLinks::new(&config, log)).collect();
        Sample {
            states: vec![demo_state(), hostile_state()],
            links,
            health: vec![demo_health(), hostile_health()],
            config,
        }
    }

    pub fn pages(&self) -> Vec<LogPage<'_>> {
        vec![
            LogPage {
                log: &self.config.logs[0],
                state: &self.states[0],
                links: &self.links[0],
                health: &self.health[0],
                unreadable: None,
                checkpoint_time: Some(CheckpointTime::Signed(1_795_011_000)),
            },
            LogPage {
                log: &self.config.logs[1],
                state: &self.states[1],
                links: &self.links[1],
                health: &self.health[1],
                unreadable: None,
                checkpoint_time: Some(CheckpointTime::Seen(1_795_012_000)),
            },
        ]
    }
}

impl Sample {
    /// The logs as the reports on every log see them.
    pub fn summaries(&self) -> Vec<LogSummary> {
        self.pages()
            .iter()
            .map(|page| {
                LogSummary::new(
                    page.log,
                    page.links,
                    page.state,
                    page.health,
                    page.unreadable.map(String::from),
                    page.checkpoint_time,
                )
            })
            .collect()
    }
}

/// The output with helio's version taken out, so a release does not change
/// the snapshots.
pub fn redact(text: &str) -> String {
    text.replace(concat!("helio ", env!("CARGO_PKG_VERSION")), "helio [version]")
}
