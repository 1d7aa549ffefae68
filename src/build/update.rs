//! Bringing one log up to date, in two steps the scheduler runs apart:
//!
//! 1. [`probe`]: from what was published, fetch and verify the newest
//!    checkpoint (signature, origin, no shrinking, no fork at the same size),
//!    and when it changed or ranges are missing, open the tree and check that
//!    it contains the checkpoint verified before. One request when nothing
//!    changed.
//! 2. [`Probed::build`]: stream the missing ranges, publishing each torrent
//!    as soon as it is verified and hashed, until done or told to stop; then
//!    the proof tiles, then the checkpoint.
//!
//! Everything is read from and written to the log's folder of the site's
//! store ([`LogFolder`]), whose lock is taken when the first write comes, or
//! before building ranges when there are some to build.

use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::clock::now;
use crate::config::LogConfig;
use crate::log::body::BodyLimit;
use crate::log::checkpoint::{Checkpoint, CheckpointError};
use crate::log::source::{BodyKind, FetchError, LogSource};
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::output::Output;
use crate::site::links::LogLinks;
use crate::site::log_folder::{Locks, LogFolder, LogFolderError};
use crate::site::proof::{self, ProofError};
use crate::site::published::PublishedTorrent;
use crate::site::state::{CHECKPOINT, LogState, StateError, TORRENTS_JSON};
use crate::store::kind::MAX_CHECKPOINT;
use crate::torrent::format::Format;
use crate::torrent::hybrid::{HybridError, HybridSpec};
use crate::torrent::metainfo::{MetainfoSpec, TorrentSummary};
use crate::torrent::piece_length::hybrid_piece_length;
use crate::torrent::range::{self, Missing, TorrentRange};
use crate::torrent::sources::{NotATorrent, Sources, with_sources};

use super::pipeline::{
    Finale, HashedRange, LogStream, PipelineError, RangeHashes, StreamEnd, StreamError, stream_ranges,
};
use super::progress::RangeProgress;

/// Why one log could not be brought up to date. Messages name the URL or tile.
#[derive(Debug, Error)]
pub enum LogError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: {source}")]
    Checkpoint { url: String, source: CheckpointError },
    #[error("{url}: origin is {found:?} but the config expects {expected:?}")]
    Origin { url: String, found: String, expected: String },
    #[error("{url}: tree size went backwards from {old} (verified earlier) to {new}")]
    Regressed { url: String, old: u64, new: u64 },
    #[error(
        "{url}: tree of size {size} has root {new} but helio verified root {old} for that size before: \
         the log forked or rewrote its history"
    )]
    Forked { url: String, size: u64, old: String, new: String },
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("{range}: {source}")]
    Range { range: TorrentRange, source: PipelineError },
    #[error(transparent)]
    Folder(#[from] LogFolderError),
    #[error("{what}: {source}; delete it and helio builds it again")]
    Torrent { what: String, source: NotATorrent },
    #[error("{what} is listed in torrents.json but missing; move torrents.json aside and helio rebuilds it")]
    Missing { what: String },
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(
        "{url}: the log is configured as final and its last torrent {published} ends at entry {end}, \
         but the tree has grown to {size}: check the log's state in the CT log list, then remove `final: true` \
         (and the last torrent) to publish it as a growing log"
    )]
    GrewAfterFinal { url: String, published: String, end: u64, size: u64 },
}

impl From<crate::store::StoreError> for LogError {
    fn from(error: crate::store::StoreError) -> Self {
        LogError::Folder(error.into())
    }
}

impl LogError {
    /// Another build published into the log after this one read it: read
    /// it again (the lock is this build's by then).
    pub fn is_changed(&self) -> bool {
        matches!(self, LogError::Folder(LogFolderError::Changed { .. }))
    }
}

/// How often the checkpoint and `torrents.json` are brought up to date
/// while ranges are built: a torrent not listed yet when a build is killed
/// is found by the next build and read back ([`LogState::load`]), so
/// listing each one as it comes would only upload the growing list once
/// per torrent.
const LIST_EVERY: Duration = Duration::from_secs(10);

/// A log whose checkpoint is verified, with what is left to build.
pub struct Probed<'a> {
    log: &'a LogConfig,
    source: LogSource,
    folder: LogFolder<'a>,
    state: LogState,
    checkpoint: Checkpoint,
    /// Open when ranges are missing or the checkpoint changed.
    tree: Option<VerifiedTree>,
    missing: Missing,
    /// The last range of a finished log, still to publish.
    finale: Option<TorrentRange>,
}

/// How a log's build ended when nothing failed.
pub struct Built {
    /// Ranges left for a later run (the run budget ran out).
    pub left: u64,
    /// Torrents published by this run.
    pub built: u64,
    /// The log's state as published now.
    pub state: LogState,
}

/// Step 1: from the published `state`, just read, verifies the newest checkpoint.
pub fn probe<'a>(
    log: &'a LogConfig,
    state: LogState,
    source: &LogSource,
    locks: &'a Locks<'a>,
) -> Result<Probed<'a>, LogError> {
    let folder = LogFolder::new(locks, &log.name, state.seen.clone());
    for note in &state.notes {
        tracing::warn!("log {}: {note}", log.name);
    }

    let mut checkpoint = fetch_checkpoint(log, source)?;
    let url = source.describe("checkpoint");
    // A finished log's last torrent carries its checkpoint, and the web seed
    // serves the published copy: keep those bytes however often the log
    // signs the same tree again.
    if let Some(old) = &state.checkpoint
        && log.is_final
        && old.size == checkpoint.size
        && old.root == checkpoint.root
        && state.torrents.iter().any(|t| t.range.end == old.size && t.range.entries() < log.entries_per_torrent)
    {
        checkpoint = old.clone();
    }
    let changed = state.checkpoint.as_ref().is_none_or(|old| old.text != checkpoint.text);
    if let Some(old) = &state.checkpoint {
        if checkpoint.size < old.size {
            return Err(LogError::Regressed { url, old: old.size, new: checkpoint.size });
        }
        if checkpoint.size == old.size && checkpoint.root != old.root {
            return Err(LogError::Forked {
                url,
                size: old.size,
                old: old.root_base64(),
                new: checkpoint.root_base64(),
            });
        }
    }

    let usable = log.entry_limit.map_or(checkpoint.size, |limit| limit.min(checkpoint.size));
    let missing = range::missing(usable, log.entries_per_torrent, &state.ranges());
    let finale = if log.is_final { finale(log, &state, &checkpoint, usable, &url)? } else { None };
    let tree = if changed || !missing.is_empty() || finale.is_some() {
        let tree = VerifiedTree::open(source.clone(), &checkpoint)?;
        if let Some(old) = state.checkpoint.as_ref().filter(|old| old.size != checkpoint.size) {
            tree.check_consistency(old)?;
        }
        Some(tree)
    } else {
        None
    };
    Ok(Probed { log, source: source.clone(), folder, state, checkpoint, tree, missing, finale })
}

/// The last range of a finished log when it is still to publish: the
/// entries after the last full range, up to the tree size. A log that grew
/// after its last torrent is an error, before anything is written.
fn finale(
    log: &LogConfig,
    state: &LogState,
    checkpoint: &Checkpoint,
    usable: u64,
    url: &str,
) -> Result<Option<TorrentRange>, LogError> {
    let e = log.entries_per_torrent;
    let last = state.torrents.iter().find(|t| t.range.start.is_multiple_of(e) && t.range.entries() < e);
    if let Some(last) = last {
        if last.range.end != checkpoint.size {
            return Err(LogError::GrewAfterFinal {
                url: url.to_string(),
                published: last.range.file_name(),
                end: last.range.end,
                size: checkpoint.size,
            });
        }
        return Ok(None);
    }
    if usable < checkpoint.size {
        tracing::warn!(
            "log {}: final, but entry_limit stops at {usable} of {}: its last torrent waits for the whole tree",
            log.name,
            checkpoint.size
        );
        return Ok(None);
    }
    let start = usable / e * e;
    Ok((usable > start).then_some(TorrentRange { start, end: usable }))
}

impl Probed<'_> {
    /// Ranges to build.
    pub fn missing(&self) -> u64 {
        self.missing.remaining() + u64::from(self.finale.is_some())
    }

    /// Step 2: builds the missing ranges in order, each published as soon as
    /// it is done, as long as `keep_going` says so before each; then records
    /// the checkpoint. Each new torrent is listed on stdout.
    ///
    /// Whatever lists a range (`torrents.json`) is written only after the
    /// proof tiles and the checkpoint that prove it, so a reader — or a
    /// build killed in between — never finds a range listed beyond the
    /// published checkpoint; a torrent written but not listed yet is found
    /// by the next build and read back ([`LogState::load`]).
    pub fn build(self, links: &LogLinks, output: &Output, keep_going: &dyn Fn() -> bool) -> Result<Built, LogError> {
        let Probed { log, source, folder, mut state, checkpoint, tree, missing, finale } = self;
        if tree.is_some() {
            // Ranges to build or a new checkpoint to record: the log's lock
            // now, before any work that another build may be doing too.
            folder.claim()?;
        }
        let replaced = state.checkpoint.clone();
        // The hash tiles proving every published range against this
        // checkpoint go first, so a reader who sees it finds them; then the
        // checkpoint; then, when `relist`, the list of ranges they prove.
        let prove = |state: &LogState, relist: bool| -> Result<(), LogError> {
            proof::publish(&folder, &checkpoint, replaced.as_ref(), &state.ranges(), tree.as_ref(), &source)?;
            if tree.is_some() {
                folder.write_if_changed(CHECKPOINT, checkpoint.text.as_bytes())?;
            }
            if relist {
                folder.write_if_changed(TORRENTS_JSON, &state.torrents_json(links))?;
            }
            Ok(())
        };
        let mut relist = follow_sources(log, &folder, &mut state)?;
        let mut left = 0;
        let mut built = 0u64;
        let mut streamed: Result<StreamEnd, LogError> = Ok(StreamEnd::Done);
        if let Some(tree) = &tree
            && (!missing.is_empty() || finale.is_some())
        {
            let readme = Bytes::from(log.profile.readme(&log.log_url));
            let progress = |range: TorrentRange| {
                let label = format!("{} {}", log.name, range.file_name());
                let tiles = 2 * range.entries().div_ceil(crate::log::tile::TILE_WIDTH);
                let bar = RangeProgress::new(&output.progress, label, tiles);
                tracing::debug!("log {}: building {} ({range})", log.name, range.file_name());
                bar
            };
            let hybrid = (log.format == Format::Hybrid).then(|| hybrid_piece_length(log.entries_per_torrent));
            let finale = finale.map(|range| Finale { range, checkpoint: Bytes::from(checkpoint.text.clone()) });
            let ranges = missing.clone().chain(finale.as_ref().map(|finale| finale.range));
            let stream = LogStream { tree, readme, concurrency: log.concurrency, progress: &progress, hybrid, finale };
            let total = missing.remaining() + u64::from(stream.finale.is_some());
            // When the published ranges were last listed.
            let mut listed = Instant::now();
            let mut publish = |range: TorrentRange, hashed: HashedRange| -> Result<(), LogError> {
                let torrent = metainfo(log, range, hashed)
                    .map_err(|source| LogError::Range { range, source: PipelineError::Hybrid(source) })?;
                folder.write(&range.file_name(), &torrent.bytes)?;
                // On a terminal the line on stdout and the bars say it already.
                if output.interactive {
                    tracing::debug!("{}", torrent.describe(log));
                } else {
                    tracing::info!("{}", torrent.describe(log));
                }
                let infohash = torrent.published.infohash;
                state.add(torrent.published, now());
                relist = true;
                if listed.elapsed() >= LIST_EVERY {
                    prove(&state, true)?;
                    (listed, relist) = (Instant::now(), false);
                }
                output.result(&format!("{}/{} {infohash}", log.name, range.file_name()));
                built += 1;
                Ok(())
            };
            streamed = stream_ranges(&stream, ranges, keep_going, &mut publish).map_err(|error| match error {
                StreamError::Range { range, source } => LogError::Range { range, source },
                StreamError::Publish(error) => error,
            });
            if let Ok(StreamEnd::Stopped { .. }) = streamed {
                left = total - built;
            }
        }
        // What was published is proved and listed whether or not the stream
        // ended well; a build that failed before publishing anything writes
        // nothing, so the earlier output stays as it was. torrents.json of a
        // list reconciled from files, the feeds and pages all follow from the
        // state when the log is published (site::publish_log).
        if streamed.is_err() && built == 0 {
            return streamed.map(|_| Built { left, built, state });
        }
        let proved = prove(&state, relist);
        streamed?;
        proved?;
        state.checkpoint = Some(checkpoint);
        Ok(Built { left, built, state })
    }
}

/// Points every published torrent at the config's trackers and web seeds
/// if they changed: only the sources outside the info dictionary are
/// rewritten, so infohashes stay. Returns whether the state changed.
fn follow_sources(log: &LogConfig, folder: &LogFolder, state: &mut LogState) -> Result<bool, LogError> {
    let wanted = Sources { trackers: log.trackers.clone(), webseeds: log.webseeds.clone() };
    let read = |file: &str| match folder.read(file)? {
        Some(bytes) => Ok(bytes),
        None => Err(LogError::Missing { what: folder.describe(file) }),
    };
    let current = match (&state.sources, state.torrents.last()) {
        (Some(sources), _) => sources.clone(),
        (None, None) => wanted.clone(),
        // Published before helio recorded sources: ask the newest torrent.
        (None, Some(newest)) => {
            let file = newest.range.file_name();
            let summary = TorrentSummary::read(&read(&file)?)
                .map_err(|_| LogError::Torrent { what: folder.describe(&file), source: NotATorrent })?;
            Sources { trackers: summary.trackers, webseeds: summary.webseeds }
        }
    };
    let changed = state.sources.as_ref() != Some(&wanted);
    if current != wanted {
        for torrent in &mut state.torrents {
            let file = torrent.range.file_name();
            let rewritten = with_sources(&read(&file)?, &wanted)
                .map_err(|source| LogError::Torrent { what: folder.describe(&file), source })?;
            folder.write_if_changed(&file, &rewritten)?;
            torrent.torrent_size = rewritten.len() as u64;
        }
        // The feed's items change (magnets, enclosure lengths).
        state.last_updated = Some(now());
        tracing::info!(
            "log {}: pointed {} published torrent{} at the configured trackers and web seeds (infohashes unchanged)",
            log.name,
            state.torrents.len(),
            if state.torrents.len() == 1 { "" } else { "s" }
        );
    }
    state.sources = Some(wanted);
    Ok(changed)
}

/// Fetches the checkpoint and checks its signature and origin.
fn fetch_checkpoint(log: &LogConfig, source: &LogSource) -> Result<Checkpoint, LogError> {
    let url = source.describe("checkpoint");
    let text = source.fetch_within("checkpoint", BodyKind::Sniffable, &BodyLimit::new(MAX_CHECKPOINT))?;
    let checkpoint = match &log.key {
        Some(key) => Checkpoint::verify(&text, key, log.origin.as_deref()),
        None => Checkpoint::parse(&text),
    }
    .map_err(|source| LogError::Checkpoint { url: url.clone(), source })?;
    if let Some(expected) = &log.origin
        && &checkpoint.origin != expected
    {
        return Err(LogError::Origin { url, found: checkpoint.origin, expected: expected.clone() });
    }
    Ok(checkpoint)
}

struct BuiltTorrent {
    bytes: Vec<u8>,
    published: PublishedTorrent,
}

impl BuiltTorrent {
    /// What the torrent is, for the operator.
    fn describe(&self, log: &LogConfig) -> String {
        let torrent = &self.published;
        format!(
            "log {}: wrote {} ({:.1} MB in {} files, {} KiB pieces, {}), infohash {}",
            log.name,
            torrent.range.file_name(),
            torrent.data_size_bytes as f64 / 1e6,
            torrent.file_count,
            torrent.piece_length / 1024,
            log.format.name(),
            torrent.infohash,
        )
    }
}

/// The `.torrent` of a hashed range.
fn metainfo(log: &LogConfig, range: TorrentRange, hashed: HashedRange) -> Result<BuiltTorrent, HybridError> {
    let name = range.torrent_name(&log.name);
    let creation_date = (hashed.last_timestamp / 1000) as i64;
    let created_by = concat!("helio ", env!("CARGO_PKG_VERSION"));
    let size = hashed.content_length();
    let piece_length = hashed.hashes.piece_length();
    let (bytes, infohash, infohash_v2) = match &hashed.hashes {
        RangeHashes::V1 { piece_length, pieces } => {
            let written = MetainfoSpec {
                name: &name,
                files: &hashed.files,
                piece_length: *piece_length,
                pieces,
                private: log.profile.private(),
                trackers: &log.trackers,
                webseeds: &log.webseeds,
                created_by,
                creation_date,
            }
            .write();
            (written.bytes, written.infohash, None)
        }
        RangeHashes::Hybrid { piece_length, files } => {
            let written = HybridSpec {
                name: &name,
                piece_length: *piece_length,
                files,
                trackers: &log.trackers,
                webseeds: &log.webseeds,
                created_by,
                creation_date,
            }
            .write()?;
            (written.bytes, written.infohash, Some(written.infohash_v2))
        }
    };
    Ok(BuiltTorrent {
        published: PublishedTorrent {
            range,
            infohash,
            infohash_v2,
            data_size_bytes: size,
            piece_length,
            file_count: hashed.files.len(),
            creation_time: creation_date.max(0) as u64,
            torrent_size: bytes.len() as u64,
        },
        bytes,
    })
}
