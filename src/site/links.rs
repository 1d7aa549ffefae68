//! Where a log's published files live on the web: the absolute URLs that go
//! into feeds and magnet links.
//!
//! A log's folder URL is the folder of its `feed_url` when one is set, else
//! `<feed_url_base>/<log>/`. With neither, URLs stay relative to the log's
//! folder, which is right for the pages and JSON of a site served anywhere.

use crate::config::{Config, LogConfig, url_segment};
use crate::torrent::magnet::magnet_with_v2;
use crate::torrent::range::TorrentRange;

use super::published::PublishedTorrent;
use crate::torrent::sources::Sources;

/// URLs for one log.
#[derive(Clone, Debug)]
pub struct LogLinks {
    pub name: String,
    /// The log folder's absolute URL, ending in `/`, if known.
    pub folder: Option<String>,
    pub trackers: Vec<String>,
    pub webseeds: Vec<String>,
}

impl LogLinks {
    pub fn new(config: &Config, log: &LogConfig) -> LogLinks {
        let folder = match (&log.feed_url, &config.feed_url_base) {
            (Some(feed), _) => feed.rfind('/').map(|slash| feed[..=slash].to_string()),
            (None, Some(base)) => Some(format!("{}/{}/", base.trim_end_matches('/'), url_segment(&log.name))),
            (None, None) => None,
        };
        LogLinks { name: log.name.clone(), folder, trackers: log.trackers.clone(), webseeds: log.webseeds.clone() }
    }

    /// These links with the trackers and web seeds the published torrents
    /// carry, when known (magnets then match the files).
    pub fn following(&self, sources: Option<&Sources>) -> LogLinks {
        let mut links = self.clone();
        if let Some(sources) = sources {
            links.trackers = sources.trackers.clone();
            links.webseeds = sources.webseeds.clone();
        }
        links
    }

    /// A file in the log's folder: absolute when the folder's URL is known.
    pub fn file_url(&self, file: &str) -> String {
        match &self.folder {
            Some(folder) => format!("{folder}{}", url_segment(file)),
            None => url_segment(file),
        }
    }

    pub fn torrent_url(&self, range: &TorrentRange) -> String {
        self.file_url(&range.file_name())
    }

    pub fn feed_url(&self) -> String {
        self.file_url("feed.xml")
    }

    /// The magnet link of a published torrent (with its v2 infohash too
    /// when it is a hybrid).
    pub fn magnet(&self, torrent: &PublishedTorrent) -> String {
        let range = &torrent.range;
        let torrent_url = self.folder.as_ref().map(|_| self.torrent_url(range));
        magnet_with_v2(
            &torrent.infohash,
            torrent.infohash_v2.as_ref(),
            &range.torrent_name(&self.name),
            &self.trackers,
            &self.webseeds,
            torrent_url.as_deref(),
        )
    }
}
