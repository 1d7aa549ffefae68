//! `helio build`: one pass over the configured logs, then exit. Under the
//! build lock, the [`schedule`] brings every selected log up to date at once
//! ([`update`]: verify the newest checkpoint, stream its missing ranges
//! through the [`pipeline`], publish each torrent as it is done); then the
//! site is regenerated from what is published. One failing log does not stop
//! the others, and a run budget stops new ranges from starting.

pub mod ordered;
pub mod pipeline;
pub mod progress;
pub mod schedule;
pub mod update;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::config::{Config, LogConfig};
use crate::output::Output;
use crate::site::atomic::remove_stale_temporaries;
use crate::site::lock::{BuildLock, LockError};
use crate::site::{self, LogRun, RunStatus, SiteError};

pub use update::LogError;

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
    /// The run budget (`--max-time`), over the config's `max_time`.
    pub max_time: Option<Duration>,
}

/// Runs a build. Each log's problems are logged as they happen; the result
/// says whether any log failed.
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
    let _lock = BuildLock::acquire(&options.out_dir)?;
    remove_stale_temporaries(&options.out_dir);

    let selected: Vec<&LogConfig> =
        config.logs.iter().filter(|log| options.only.is_empty() || options.only.contains(&log.name)).collect();
    warn_about_config(config, &selected, output);

    let deadline = budget.map(|budget| started + budget);
    let schedule = schedule::Schedule { config, out_dir: &options.out_dir, output, deadline };
    let outcomes = schedule.run(&selected);

    let runs: Vec<LogRun> = config
        .logs
        .iter()
        .map(|log| LogRun {
            name: log.name.clone(),
            status: outcomes
                .iter()
                .find(|outcome| outcome.name == log.name)
                .map_or(RunStatus::Skipped, |outcome| outcome.status.clone()),
        })
        .collect();
    // The site is regenerated even when a log failed, from what is published.
    let published = site::publish(config, &options.out_dir, &runs)?;
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

    let left: Vec<String> = outcomes
        .iter()
        .filter(|outcome| outcome.left > 0)
        .map(|outcome| format!("{} {}", outcome.name, outcome.left))
        .collect();
    if let Some(budget) = budget
        && !left.is_empty()
    {
        let total: u64 = outcomes.iter().map(|outcome| outcome.left).sum();
        tracing::warn!(
            "the run budget of {} ran out: {total} range{} left for the next run ({})",
            humantime::format_duration(budget),
            if total == 1 { "" } else { "s" },
            left.join(", ")
        );
    }

    let failed: Vec<String> = outcomes
        .iter()
        .filter(|outcome| matches!(outcome.status, RunStatus::Failed { .. }))
        .map(|outcome| outcome.name.clone())
        .collect();
    if failed.is_empty() { Ok(()) } else { Err(BuildError::LogsFailed { failed, total: selected.len() }) }
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
