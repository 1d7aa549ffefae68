//! `helio build OUT --resume-from URL`: start from the published site. A CI
//! runner starts empty every time, but helio's state is the site itself
//! (docs/spec.md §5: each log's `torrents.json` and `checkpoint`, and the `.torrent`
//! files they list). Before building, each selected log's state is fetched
//! from the site's root URL into OUT, and every `.torrent` is checked against
//! the infohash `torrents.json` gives for it; a checkpoint is checked against
//! the log's key when one is configured. Any mismatch stops the run before
//! anything is built on top of it. A log the site does not have yet (404)
//! starts fresh. The log's `status.json` comes too, so that how long it has
//! been failing and when it last succeeded carry on. Fetching goes through [`LogSource`]: the same retries,
//! timeouts and User-Agent as fetching a log.

use thiserror::Error;

use crate::config::{LogConfig, url_segment};
use crate::log::body::BodyLimit;
use crate::log::checkpoint::{Checkpoint, CheckpointError};
use crate::log::source::{BodyKind, FetchError, Location, LogSource};
use crate::store::{ObjectKind, Store, StoreError};
use crate::torrent::metainfo::{Infohash, TorrentSummary};

use super::state::{CHECKPOINT, TORRENTS_JSON};
use super::status::STATUS_JSON;
use super::torrents_json;

/// Why the published site could not be restored. Every variant names the
/// URL (or file) at fault.
#[derive(Debug, Error)]
pub enum ResumeError {
    #[error("--resume-from {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: {message}")]
    Json { url: String, message: String },
    #[error("{url}: {source}")]
    Checkpoint { url: String, source: CheckpointError },
    #[error("{url}: not a torrent helio can read: {message}")]
    Unreadable { url: String, message: String },
    #[error("{url}: its name is {found:?}, not {expected:?}")]
    Name { url: String, found: String, expected: String },
    #[error(
        "{url}: infohash {found} does not match {expected} listed in torrents.json: \
         the published site is damaged or was altered; nothing was built on it"
    )]
    Mismatch { url: String, expected: Infohash, found: Infohash },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ResumeError {
    /// A usage error (exit status 2) rather than a failed run.
    pub fn is_usage(&self) -> bool {
        matches!(self, ResumeError::BadUrl { .. })
    }
}

/// What a restore brought back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Logs found on the site.
    pub logs: usize,
    /// Logs the site does not have yet.
    pub fresh: usize,
    /// `.torrent` files fetched (ones already in OUT with the listed infohash are kept).
    pub fetched: usize,
}

/// The site's root as a log source location: an http(s) URL or a folder.
pub fn parse_root(url: &str) -> Result<Location, ResumeError> {
    let base = std::env::current_dir().unwrap_or_default();
    Location::parse(url, &base).map_err(|why| ResumeError::BadUrl { url: url.to_string(), why })
}

/// Restores the published state of `logs` from the site at `root` into `store`.
pub fn restore(
    logs: &[&LogConfig],
    root: &Location,
    agent: &ureq::Agent,
    policy: crate::log::source::RetryPolicy,
    store: &Store,
) -> Result<Restored, ResumeError> {
    let mut restored = Restored::default();
    for log in logs {
        let folder = match root {
            Location::Http(base) => Location::Http(format!("{base}{}/", url_segment(&log.name))),
            Location::Dir(dir) => Location::Dir(dir.join(&log.name)),
        };
        let source = LogSource::new(&folder, agent, policy).with_notice(&log.name);
        if restore_log(log, &source, store, &mut restored)? {
            restored.logs += 1;
        } else {
            restored.fresh += 1;
        }
    }
    Ok(restored)
}

/// Returns whether the site had the log.
fn restore_log(
    log: &LogConfig,
    source: &LogSource,
    store: &Store,
    restored: &mut Restored,
) -> Result<bool, ResumeError> {
    let json_url = source.describe(TORRENTS_JSON);
    let limit = |file: &str| BodyLimit::new(ObjectKind::of(file).max_size);
    let listed = match source.fetch_within(TORRENTS_JSON, BodyKind::Sniffable, &limit(TORRENTS_JSON)) {
        Ok(bytes) => bytes,
        Err(error) if error.is_not_found() => {
            tracing::info!("log {}: not on the published site yet ({json_url}); starting fresh", log.name);
            return Ok(false);
        }
        Err(error) => return Err(error.into()),
    };
    let parsed =
        torrents_json::parse(&listed).map_err(|message| ResumeError::Json { url: json_url.clone(), message })?;

    let checkpoint = match source.fetch_within(CHECKPOINT, BodyKind::Sniffable, &limit(CHECKPOINT)) {
        Ok(text) => {
            let url = source.describe(CHECKPOINT);
            match &log.key {
                Some(key) => Checkpoint::verify(&text, key, log.origin.as_deref()),
                None => Checkpoint::parse(&text),
            }
            .map_err(|source| ResumeError::Checkpoint { url, source })?;
            Some(text)
        }
        Err(error) if error.is_not_found() => None,
        Err(error) => return Err(error.into()),
    };

    let folder = format!("{}/", log.name);
    for torrent in &parsed.torrents {
        let file = torrent.range.file_name();
        let key = format!("{folder}{file}");
        // Already here with the listed infohash (a runner that kept OUT): keep it.
        if let Some(bytes) = store.read(&key)?
            && TorrentSummary::read(&bytes).is_ok_and(|summary| summary.infohash == torrent.infohash)
        {
            continue;
        }
        let url = source.describe(&file);
        let bytes = source.fetch_within(&file, BodyKind::Sniffable, &limit(&file))?;
        let summary = TorrentSummary::read(&bytes)
            .map_err(|e| ResumeError::Unreadable { url: url.clone(), message: e.to_string() })?;
        if summary.infohash != torrent.infohash {
            return Err(ResumeError::Mismatch { url, expected: torrent.infohash, found: summary.infohash });
        }
        let expected = torrent.range.torrent_name(&log.name);
        if summary.name != expected {
            return Err(ResumeError::Name { url, found: summary.name, expected });
        }
        store.write(&key, &bytes)?;
        restored.fetched += 1;
    }
    // How the log's builds have gone (since when it fails, when it last
    // succeeded), so that a runner that starts empty does not start the
    // count again. A site of an older helio may have none.
    let status = match source.fetch(STATUS_JSON, BodyKind::Sniffable) {
        Ok(bytes) => Some(bytes),
        Err(error) if error.is_not_found() => None,
        Err(error) => return Err(error.into()),
    };
    if let Some(bytes) = status {
        store.write(&format!("{folder}{STATUS_JSON}"), &bytes)?;
    }
    // The list and the checkpoint last: until they are in place, the
    // torrents above are files a build adopts after reading them itself.
    if let Some(text) = checkpoint {
        store.write(&format!("{folder}{CHECKPOINT}"), &text)?;
    }
    store.write(&format!("{folder}{TORRENTS_JSON}"), &listed)?;
    tracing::info!("log {}: restored {} torrents from {json_url}", log.name, parsed.torrents.len());
    Ok(true)
}
