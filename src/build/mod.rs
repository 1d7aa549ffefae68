//! `helio build`: one pass over the configured logs. For each log: read what
//! was published, fetch and verify the newest checkpoint, build the ranges it
//! completes, and record them; then regenerate the site. One failing log does
//! not stop the others.

pub mod ordered;
pub mod pipeline;
pub mod progress;

use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use thiserror::Error;

use crate::config::{Config, LogConfig};
use crate::log::checkpoint::{Checkpoint, CheckpointError};
use crate::log::source::{BodyKind, FetchError, LogSource, RetryPolicy, http_agent};
use crate::log::tile::TILE_WIDTH;
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::output::Output;
use crate::site::SiteError;
use crate::site::atomic::{WriteError, remove_stale_temporaries, write_atomic, write_if_changed};
use crate::site::json::now;
use crate::site::links::LogLinks;
use crate::site::lock::{BuildLock, LockError};
use crate::site::state::{CHECKPOINT, LogState, PublishedTorrent, StateError, TORRENTS_JSON};
use crate::site::{self, LogRun, RunStatus};
use crate::torrent::metainfo::MetainfoSpec;
use crate::torrent::range::{self, TorrentRange};

use pipeline::{PipelineError, RangeJob, hash_range};
use progress::RangeProgress;

/// Why a build run as a whole did not succeed (one log failing among
/// others is a [`LogError`], logged as it happens and counted here).
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("--log {name}: no such log in {} (it has: {known})", file.display())]
    UnknownLog { name: String, file: PathBuf, known: String },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{} of {total} log{} failed: {}", failed.len(), if *total == 1 { "" } else { "s" }, failed.join(", "))]
    LogsFailed { failed: Vec<String>, total: usize },
    #[error(transparent)]
    Site(#[from] SiteError),
}

/// Options of one build run.
pub struct BuildOptions {
    pub out_dir: PathBuf,
    /// Only these logs (all when empty).
    pub only: Vec<String>,
}

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
    Write(#[from] WriteError),
    #[error(transparent)]
    Proof(#[from] site::proof::ProofError),
}

/// Runs a build. Each log's problems are logged as they happen; the result
/// says whether any log failed.
pub fn run(config: &Config, options: &BuildOptions, output: &Output) -> Result<(), BuildError> {
    for name in &options.only {
        if !config.logs.iter().any(|log| &log.name == name) {
            let known: Vec<&str> = config.logs.iter().map(|log| log.name.as_str()).collect();
            return Err(BuildError::UnknownLog {
                name: name.clone(),
                file: config.file.clone(),
                known: known.join(", "),
            });
        }
    }
    let _lock = BuildLock::acquire(&options.out_dir)?;
    remove_stale_temporaries(&options.out_dir);

    if !config.ignored_keys.is_empty() {
        let keys: Vec<&str> = config.ignored_keys.iter().copied().collect();
        let note = format!(
            "{} ignored: helio build makes one pass and keeps no tiles; run it from cron or a systemd timer",
            keys.join(", ")
        );
        if output.interactive { tracing::info!("{note}") } else { tracing::debug!("{note}") }
    }
    let selected: Vec<&LogConfig> =
        config.logs.iter().filter(|log| options.only.is_empty() || options.only.contains(&log.name)).collect();
    let unauthenticated: Vec<&str> =
        selected.iter().filter(|log| log.key.is_none()).map(|log| log.name.as_str()).collect();
    if !unauthenticated.is_empty() {
        tracing::warn!(
            "checkpoints of {} are not authenticated: set logs[].key to the log's public key",
            unauthenticated.join(", ")
        );
    }

    let concurrency = selected.iter().map(|log| log.concurrency).max().unwrap_or(1);
    let agent = http_agent(config.contact.as_deref(), concurrency);
    let policy = RetryPolicy::from_env();
    let mut failed = Vec::new();
    let total = selected.len();
    let mut runs: Vec<LogRun> =
        config.logs.iter().map(|log| LogRun { name: log.name.clone(), status: RunStatus::Skipped }).collect();
    for log in selected {
        let source = LogSource::new(&log.location, &agent, policy);
        let links = LogLinks::new(config, log);
        let status = match update_log(log, &source, &links, &options.out_dir, output) {
            Ok(()) => RunStatus::Succeeded { at: now() },
            Err(error) => {
                tracing::error!("log {}: {error}", log.name);
                failed.push(log.name.clone());
                RunStatus::Failed { at: now(), message: error.to_string() }
            }
        };
        if let Some(run) = runs.iter_mut().find(|run| run.name == log.name) {
            run.status = status;
        }
    }
    // The site is regenerated even when a log failed, from what is published.
    site::publish(config, &options.out_dir, &runs)?;
    if failed.is_empty() { Ok(()) } else { Err(BuildError::LogsFailed { failed, total }) }
}

/// Brings one log up to date. Each new torrent is listed on stdout as soon as
/// it is published.
fn update_log(
    log: &LogConfig,
    source: &LogSource,
    links: &LogLinks,
    out_dir: &Path,
    output: &Output,
) -> Result<(), LogError> {
    let dir = out_dir.join(&log.name);
    // We hold the lock, so any temporary file here is a crashed build's.
    remove_stale_temporaries(&dir);
    let mut state = LogState::load(&dir, &log.name)?;
    for note in &state.notes {
        tracing::warn!("log {}: {note}", log.name);
    }

    let checkpoint = fetch_checkpoint(log, source)?;
    let url = source.describe("checkpoint");
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
    let tree = if missing.is_empty() { None } else { Some(VerifiedTree::open(source.clone(), &checkpoint)?) };
    if let Some(tree) = &tree {
        if let Some(old) = &state.checkpoint {
            tree.check_consistency(old)?;
        }
        let readme = Bytes::from(log.profile.readme(&log.log_url));
        for range in missing {
            let torrent =
                build_torrent(log, tree, range, &readme, output).map_err(|source| LogError::Range { range, source })?;
            let path = dir.join(range.file_name());
            write_atomic(&path, &torrent.bytes)?;
            let infohash = torrent.published.infohash;
            state.add(torrent.published, now());
            write_atomic(&dir.join(TORRENTS_JSON), &state.torrents_json(links))?;
            output.result(&format!("{}/{} {infohash}", log.name, range.file_name()));
        }
    }
    // torrents.json of a list reconciled from files, the feeds and pages all
    // follow from the state in site::publish, after every log.
    // Issue 9: the hash tiles proving every published range against this
    // checkpoint, written before it (site::proof).
    site::proof::publish(&dir, &checkpoint, &state.ranges(), tree.as_ref(), source)?;
    write_if_changed(&dir.join(CHECKPOINT), checkpoint.text.as_bytes())?;
    Ok(())
}

/// Fetches the checkpoint and checks its signature and origin.
fn fetch_checkpoint(log: &LogConfig, source: &LogSource) -> Result<Checkpoint, LogError> {
    let url = source.describe("checkpoint");
    let text = source.fetch("checkpoint", BodyKind::Sniffable)?;
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

fn build_torrent(
    log: &LogConfig,
    tree: &VerifiedTree,
    range: TorrentRange,
    readme: &Bytes,
    output: &Output,
) -> Result<BuiltTorrent, PipelineError> {
    let started = Instant::now();
    let name = range.torrent_name(&log.name);
    tracing::info!("log {}: building {} ({range})", log.name, range.file_name());
    let tiles = 2 * range.entries() / TILE_WIDTH;
    let progress = RangeProgress::new(&output.progress, format!("{} {}", log.name, range.file_name()), tiles);
    let job = RangeJob { tree, range, readme: readme.clone(), concurrency: log.concurrency, progress: &progress };
    let hashed = hash_range(&job);
    progress.finish();
    let hashed = hashed?;

    let creation_date = (hashed.last_timestamp / 1000) as i64;
    let metainfo = MetainfoSpec {
        name: &name,
        files: &hashed.files,
        piece_length: hashed.piece_length,
        pieces: &hashed.pieces,
        private: log.profile.private(),
        trackers: &log.trackers,
        webseeds: &log.webseeds,
        created_by: concat!("helio ", env!("CARGO_PKG_VERSION")),
        creation_date,
    }
    .write();
    let seconds = started.elapsed().as_secs_f64();
    let size = hashed.content_length();
    tracing::info!(
        "log {}: wrote {} ({:.1} MB in {} files, {} pieces of {} KiB, {:.1}s, {:.0} MB/s), infohash {}",
        log.name,
        range.file_name(),
        size as f64 / 1e6,
        hashed.files.len(),
        hashed.pieces.len(),
        hashed.piece_length / 1024,
        seconds,
        size as f64 / 1e6 / seconds.max(1e-9),
        metainfo.infohash
    );
    Ok(BuiltTorrent {
        published: PublishedTorrent {
            range,
            infohash: metainfo.infohash,
            data_size_bytes: size,
            piece_length: hashed.piece_length,
            file_count: hashed.files.len(),
            creation_time: creation_date.max(0) as u64,
            torrent_size: metainfo.bytes.len() as u64,
        },
        bytes: metainfo.bytes,
    })
}
