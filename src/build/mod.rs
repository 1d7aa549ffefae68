//! `helio build`: one pass over the configured logs, then exit. The
//! [`schedule`] brings every selected log up to date at once ([`update`]:
//! verify the newest checkpoint, stream its missing ranges through the
//! [`pipeline`], publish each torrent as it is done), and publishes each
//! log's site the moment that log is done, while the site's root follows
//! on its own thread (`site::root`). One failing log does not stop the
//! others, and a run budget stops new ranges from starting. At the end, the
//! health of every log goes to the metrics file and decides the exit status
//! (docs/health.md).
//!
//! Everything goes through the site's [`Store`], a folder or a bucket, and
//! is read back from it: a runner that starts with an empty disk continues
//! where the last build stopped. Each log is written under its own lock,
//! taken only when there is something to write (at the start for a folder,
//! where locking costs nothing), so builds of disjoint sets of logs publish
//! into one site at once and a build with nothing new writes nothing.

pub mod metrics;
pub mod ordered;
pub mod pipeline;
pub mod progress;
pub mod schedule;
pub mod stop;
pub mod update;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::clock::now;
use crate::config::{Config, LogConfig};
use crate::log::source::Location;
use crate::output::{Output, Verbosity};
use crate::site::log_folder::Locks;
use crate::site::log_list::{ExpandError, Had, LOG_LIST_JSON};
use crate::site::logs_json::LOGS_JSON;
use crate::site::pages::Pages;
use crate::site::resume::ResumeError;
use crate::site::root::RootPublisher;
use crate::site::state::TORRENTS_JSON;
use crate::site::{self, RunStatus, SiteError};
use crate::store::{Store, StoreError, Target, WriteError};

use progress::RunProgress;
use schedule::LogOutcome;
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
    /// The log list could not be read, or does not make a config.
    #[error(transparent)]
    LogList(#[from] ExpandError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Each failed log with how long it has been failing.
    #[error("{} of {total} log{} failed: {}", failed.len(), if *total == 1 { "" } else { "s" }, failed.join(", "))]
    LogsFailed { failed: Vec<String>, total: usize },
    /// Another build holds logs of this run (the first one's lock is named).
    #[error("{held}{}", match more { 0 => String::new(), 1 => " (and 1 other log)".into(), n => format!(" (and {n} other logs)") })]
    Held { held: StoreError, more: usize },
    #[error(transparent)]
    Site(#[from] SiteError),
    /// The metrics file could not be written (the message names it).
    #[error(transparent)]
    Metrics(WriteError),
    #[error(
        "the site's root files were not written: the thread writing them stopped on an internal error (a bug in helio)"
    )]
    RootPanicked,
    /// A signal stopped the run; what was under way was finished and published.
    #[error(
        "stopped by {}: the logs under way were published; the next run carries on", signal_name(*signal)
    )]
    Interrupted { signal: i32 },
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
    /// `--alert-after`, over the config's `alert_after`.
    pub alert_after: Option<Duration>,
    /// `--metrics-file`, over the config's `metrics_file`.
    pub metrics_file: Option<PathBuf>,
}

/// Runs a build. Each log is published as soon as its build ends and its
/// problems are logged as they happen; the result says whether any log
/// failed (for longer than `alert_after`), or was left to another build
/// holding it.
pub fn run(config: &Config, options: &BuildOptions, output: &Output) -> Result<(), BuildError> {
    let started = Instant::now();
    let store = Store::open(&options.target)?;
    let root_files = match &options.resume_from {
        Some(root) => Some(fetch_root_files(config, root)?),
        None => None,
    };
    // The logs of the log list, and those published but no longer built.
    let (known, list) = logs_of(config, &store, root_files.as_ref())?;
    let config = &known;
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
    // The list made a config: keep it as the last good copy (for a run
    // restoring the site, the site's copy when the list has not changed).
    if let Some(list) = &list {
        list.keep(&store);
        if let Some(copy) = root_files.as_ref().and_then(|files| files.log_list.as_ref())
            && store.read(LOG_LIST_JSON)?.is_none()
        {
            store.write(LOG_LIST_JSON, copy)?;
        }
    }
    let budget = options.max_time.or(config.max_time);
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

    let pages = Pages::new().map_err(SiteError::from)?;
    let root = RootPublisher::new(config, &locks, &pages);
    let others: Vec<&str> = config
        .logs
        .iter()
        .filter(|log| !runnable.iter().any(|run| run.name == log.name))
        .map(|log| log.name.as_str())
        .collect();
    let progress = RunProgress::new(&output.progress, runnable.len());
    let stop = stop::Stop::new(budget.map(|budget| started + budget));
    let alert_after = options.alert_after.or(config.alert_after);
    let (mut outcomes, root_result) = std::thread::scope(|scope| {
        let root_thread = scope.spawn(|| root.run(&others));
        let ticker = scope.spawn(|| progress.tick());
        let schedule = schedule::Schedule {
            config,
            locks: &locks,
            pages: &pages,
            root: &root,
            output,
            progress: &progress,
            stop: &stop,
            alert_after,
        };
        let outcomes = schedule.run(&runnable);
        root.close();
        let root_result = root_thread.join().map(|written| written.map_err(Some)).unwrap_or(Err(None));
        progress.finish();
        ticker.thread().unpark();
        let _ = ticker.join();
        (outcomes, root_result)
    });
    locks.release();
    let ended = now();

    let mut failed = Vec::new();
    let mut recent = Vec::new();
    let mut left = Vec::new();
    let mut built = 0;
    let mut relative = Vec::new();
    for outcome in &outcomes {
        built += outcome.built;
        if outcome.left > 0 {
            left.push((outcome.name.clone(), outcome.left));
        }
        if outcome.relative_feed {
            relative.push(outcome.name.clone());
        }
        if matches!(outcome.status, RunStatus::Failed { .. }) {
            let since = outcome.summary.as_ref().and_then(|s| s.health.failure.as_ref()).map(|f| f.since);
            let failing_for = Duration::from_secs(ended.saturating_sub(since.unwrap_or(ended)));
            let line = format!("{} (failing for {})", outcome.name, site::human::duration(failing_for.as_secs()));
            match alert_after {
                Some(after) if failing_for < after => recent.push(line),
                _ => failed.push(line),
            }
        }
    }
    let left_to_others = outcomes.iter().filter(|outcome| outcome.held.is_some()).count();
    held.extend(outcomes.iter_mut().filter_map(|outcome| outcome.held.take()));

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
    if let Some(after) = alert_after
        && !recent.is_empty()
    {
        // News, not a warning: `-q` (cron) says nothing until it is time to.
        tracing::info!(
            "{} of {} log{} failed, for less than --alert-after {} so far: {}",
            recent.len(),
            selected.len(),
            if selected.len() == 1 { "" } else { "s" },
            humantime::format_duration(after),
            recent.join(", ")
        );
    }

    let summaries = root.summaries();
    let metrics_file = options.metrics_file.as_ref().or(config.metrics_file.as_ref());
    if let Some(path) = metrics_file {
        let facts = metrics::RunFacts { duration: started.elapsed(), ended, logs_failed: failed.len() + recent.len() };
        metrics::write(path, &summaries, &facts).map_err(BuildError::Metrics)?;
    }
    if output.interactive && output.verbosity != Verbosity::Quiet {
        output.note(&run_summary(&outcomes, built, left_to_others, started.elapsed()));
    }

    if let Some(signal) = stop.signal() {
        return Err(BuildError::Interrupted { signal });
    }
    match root_result {
        Ok(_) => {}
        Err(Some(error)) => return Err(error.into()),
        Err(None) => return Err(BuildError::RootPanicked),
    }
    if !held.is_empty() && held.len() == selected.len() {
        // Another build is publishing every log of this run.
        let more = held.len() - 1;
        return Err(BuildError::Held { held: held.remove(0), more });
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

fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// One line on a terminal at the end of a run: `60 logs: nothing new (0.4 s)`.
fn run_summary(outcomes: &[LogOutcome], built: u64, held: usize, took: Duration) -> String {
    let failing = outcomes.iter().filter(|o| matches!(o.status, RunStatus::Failed { .. })).count();
    let mut parts = Vec::new();
    match built {
        0 => parts.push("nothing new".to_string()),
        1 => parts.push("1 new torrent".to_string()),
        n => parts.push(format!("{n} new torrents")),
    }
    if failing > 0 {
        parts.push(format!("{failing} failing"));
    }
    if held > 0 {
        parts.push(format!("{held} left to another build"));
    }
    let logs = outcomes.len();
    format!("{logs} log{}: {} ({:.1} s)", if logs == 1 { "" } else { "s" }, parts.join(", "), took.as_secs_f64())
}

/// The logs a run knows (`site::log_list::known`): those of the config and
/// its log list, and those the site holds that are no longer built. The
/// site's own files come from `store`, or for `--resume-from` from the
/// published site (`root_files`).
fn logs_of(
    config: &Config,
    store: &Store,
    root_files: Option<&RootFiles>,
) -> Result<(Config, Option<Had>), BuildError> {
    let read = |name: &str| -> Result<Option<Vec<u8>>, StoreError> { Ok(store.read(name)?.map(|b| b.to_vec())) };
    let (copy, logs_json) = match root_files {
        Some(files) => (files.log_list.clone(), files.logs_json.clone()),
        None => (if config.log_list.is_some() { read(LOG_LIST_JSON)? } else { None }, read(LOGS_JSON)?),
    };
    // What the published site lists is there to restore; a folder or bucket is asked.
    let published =
        |name: &str| root_files.is_some() || store.stat(&format!("{name}/{TORRENTS_JSON}")).ok().flatten().is_some();
    Ok(site::log_list::known(config, copy.as_deref(), logs_json.as_deref(), &published)?)
}

/// The published site's root files a run started with `--resume-from` needs
/// to know its logs.
struct RootFiles {
    log_list: Option<Vec<u8>>,
    logs_json: Option<Vec<u8>>,
}

/// The published site's `log-list.json` and `logs.json` (either may be
/// missing), for a run that starts empty with `--resume-from`.
fn fetch_root_files(config: &Config, root: &Location) -> Result<RootFiles, BuildError> {
    let agent = crate::log::source::http_agent(config.contact.as_deref(), 1);
    let policy = crate::log::source::RetryPolicy::from_env();
    let source = crate::log::source::LogSource::new(root, &agent, policy);
    let fetch = |file: &str| match source.fetch(file, crate::log::source::BodyKind::Sniffable) {
        Ok(bytes) => Ok(Some(bytes.to_vec())),
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(BuildError::Resume(error.into())),
    };
    let log_list = if config.log_list.is_some() { fetch(LOG_LIST_JSON)? } else { None };
    Ok(RootFiles { log_list, logs_json: fetch(LOGS_JSON)? })
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
    let unauthenticated: Vec<&str> = selected
        .iter()
        .filter(|log| log.key.is_none() && log.archived.is_none())
        .map(|log| log.name.as_str())
        .collect();
    if !unauthenticated.is_empty() {
        tracing::warn!(
            "checkpoints of {} are not authenticated: set logs[].key to the log's public key",
            unauthenticated.join(", ")
        );
    }
}
