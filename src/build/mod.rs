//! `helio build`: one pass over the configured logs, then exit. The
//! [`schedule`] brings every selected log up to date at once ([`update`]:
//! verify the newest checkpoint, stream its missing ranges through the
//! [`pipeline`], publish each torrent as it is done); then the site is
//! regenerated from what is published. One failing log does not stop the
//! others, and a run budget stops new ranges from starting.
//!
//! Everything goes through the site's [`Store`], a folder or a bucket, and
//! is read back from it: a runner that starts with an empty disk continues
//! where the last build stopped. Each log is written under its own lock,
//! taken only when there is something to write (at the start for a folder,
//! where locking costs nothing), so builds of disjoint sets of logs publish
//! into one site at once and a build with nothing new writes nothing.

pub mod ordered;
pub mod pipeline;
pub mod progress;
pub mod schedule;
pub mod update;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::config::{Config, LogConfig};
use crate::log::source::Location;
use crate::output::Output;
use crate::site::folder::Locks;
use crate::site::resume::ResumeError;
use crate::site::{self, LogRun, RunStatus, SiteError};
use crate::store::{Store, StoreError, Target};

pub use update::LogError;

/// Why a build run as a whole did not succeed (one log failing among
/// others is a [`LogError`], logged as it happens and counted here).
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("--log {name}: no such log in {} (it has: {known})", file.display())]
    UnknownLog { name: String, file: PathBuf, known: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error("{} of {total} log{} failed: {}", failed.len(), if *total == 1 { "" } else { "s" }, failed.join(", "))]
    LogsFailed { failed: Vec<String>, total: usize },
    /// Another build holds logs of this run (the first one's lock is named).
    #[error("{held}{}", match more { 0 => String::new(), 1 => " (and 1 other log)".into(), n => format!(" (and {n} other logs)") })]
    Held { held: StoreError, more: usize },
    #[error(transparent)]
    Site(#[from] SiteError),
}

/// Options of one build run.
pub struct BuildOptions {
    /// Where the site is: a folder or `s3://BUCKET/PREFIX`.
    pub target: Target,
    /// Only these logs (all when empty).
    pub only: Vec<String>,
    /// The run budget (`--max-time`), over the config's `max_time`.
    pub max_time: Option<Duration>,
    /// `--resume-from`: the published site the selected logs' state is
    /// restored from first (into a folder; a bucket is its own state).
    pub resume_from: Option<Location>,
}

/// Runs a build. Each log's problems are logged as they happen; the result
/// says whether any log failed, or was left to another build holding it.
pub fn run(config: &Config, options: &BuildOptions, output: &Output) -> Result<(), BuildError> {
    let started = Instant::now();
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
    let budget = options.max_time.or(config.max_time);
    let store = Store::open(&options.target)?;
    let locks = Locks::new(&store);

    let selected: Vec<&LogConfig> =
        config.logs.iter().filter(|log| options.only.is_empty() || options.only.contains(&log.name)).collect();
    // A folder's logs are locked now (it costs nothing), a bucket's when
    // there is something to write.
    let mut held = Vec::new();
    let mut runnable = Vec::new();
    for &log in &selected {
        match locks.hold_upfront(&log.name) {
            Ok(()) => runnable.push(log),
            Err(error) if error.is_held() => held.push(error),
            Err(error) => return Err(error.into()),
        }
    }
    if runnable.is_empty() && !held.is_empty() {
        let more = held.len() - 1;
        return Err(BuildError::Held { held: held.remove(0), more });
    }
    for error in &held {
        tracing::warn!("{error}; the log is left to that build");
    }
    if let Some(root) = &options.resume_from {
        resume(config, &runnable, root, &store)?;
    }
    warn_about_config(config, &selected, output);

    let deadline = budget.map(|budget| started + budget);
    let schedule = schedule::Schedule { config, locks: &locks, output, deadline };
    let outcomes = schedule.run(&runnable);

    let mut runs = Vec::with_capacity(outcomes.len());
    let mut failed = Vec::new();
    let mut left = Vec::new();
    for outcome in outcomes {
        if matches!(outcome.status, RunStatus::Failed { .. }) {
            failed.push(outcome.name.clone());
        }
        if outcome.left > 0 {
            left.push((outcome.name.clone(), outcome.left));
        }
        held.extend(outcome.held);
        runs.push(LogRun { name: outcome.name, status: outcome.status, state: outcome.state });
    }
    if !held.is_empty() && held.len() == selected.len() {
        // Another build is publishing every log of this run: the site is its to update.
        let more = held.len() - 1;
        return Err(BuildError::Held { held: held.remove(0), more });
    }
    // The site is regenerated even when a log failed, from what is published.
    let published = site::publish(config, &locks, runs)?;
    locks.release();
    held.extend(published.held.into_iter().map(|(_, error)| error));
    for name in published.failed {
        if !failed.contains(&name) {
            failed.push(name);
        }
    }
    let relative: Vec<&str> = published
        .relative_feeds
        .iter()
        .filter(|name| selected.iter().any(|log| &log.name == *name))
        .map(String::as_str)
        .collect();
    if !relative.is_empty() {
        tracing::warn!(
            "the feeds of {} link their torrents by relative URLs, which feed readers cannot fetch: \
             set feed_url_base (or logs[].feed_url) to where the site is served",
            relative.join(", ")
        );
    }

    if let Some(budget) = budget
        && !left.is_empty()
    {
        let total: u64 = left.iter().map(|(_, count)| count).sum();
        let each: Vec<String> = left.iter().map(|(name, count)| format!("{name} {count}")).collect();
        tracing::warn!(
            "the run budget of {} ran out: {total} range{} left for the next run ({})",
            humantime::format_duration(budget),
            if total == 1 { "" } else { "s" },
            each.join(", ")
        );
    }

    if !failed.is_empty() {
        return Err(BuildError::LogsFailed { failed, total: selected.len() });
    }
    if !held.is_empty() {
        let more = held.len() - 1;
        return Err(BuildError::Held { held: held.remove(0), more });
    }
    Ok(())
}

/// Restores the logs' published state from the site at `root` into the
/// store, under the logs' locks (a folder's, taken up front). An unknown
/// `--log` was refused before.
fn resume(config: &Config, logs: &[&LogConfig], root: &Location, store: &Store) -> Result<(), BuildError> {
    let agent = crate::log::source::http_agent(config.contact.as_deref(), 4);
    let policy = crate::log::source::RetryPolicy::from_env();
    let restored = site::resume::restore(logs, root, &agent, policy, store)?;
    tracing::info!(
        "restored {} log{} from {} ({} .torrent files fetched); {} not published yet",
        restored.logs,
        if restored.logs == 1 { "" } else { "s" },
        match root {
            Location::Http(url) => url.clone(),
            Location::Dir(dir) => dir.display().to_string(),
        },
        restored.fetched,
        restored.fresh
    );
    Ok(())
}

/// Config-wide notes, each said once for the logs of this run.
fn warn_about_config(config: &Config, selected: &[&LogConfig], output: &Output) {
    if !config.ignored_keys.is_empty() {
        let keys: Vec<&str> = config.ignored_keys.iter().copied().collect();
        let note = format!(
            "{} ignored: helio build makes one pass and keeps no tiles; run it from cron or a systemd timer",
            keys.join(", ")
        );
        if output.interactive { tracing::info!("{note}") } else { tracing::debug!("{note}") }
    }
    let unauthenticated: Vec<&str> =
        selected.iter().filter(|log| log.key.is_none()).map(|log| log.name.as_str()).collect();
    if !unauthenticated.is_empty() {
        tracing::warn!(
            "checkpoints of {} are not authenticated: set logs[].key to the log's public key",
            unauthenticated.join(", ")
        );
    }
}
