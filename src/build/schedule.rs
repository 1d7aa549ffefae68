//! The one scheduler of a build: every selected log runs on its own thread,
//! so a log whose host is slow or down never holds another back.
//!
//! - Every log's checkpoint is fetched at once (one request each), so a dead
//!   host costs its own log its short retry budget and nobody else anything.
//! - Building ranges takes one of `parallel_logs` slots, handed out in config
//!   order, which bounds memory and threads; each log's range pipeline fills
//!   its own fetch window.
//! - Politeness is per host, not per log: every request of every log passes
//!   its host's [`HostGate`](crate::log::host::HostGate).
//! - The run budget: once it has passed, no range starts (ranges under way
//!   finish and are published), and logs still waiting for a slot give up
//!   theirs, counting what they leave for the next run.
//! - Each log is published the moment its build ends, failed or not: its
//!   feed, pages and status are written, the root is told, and the log's
//!   lock goes once a root showing it is written (`site::root`).

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::now;
use crate::config::{Config, LogConfig};
use crate::log::host::Hosts;
use crate::log::http::{Bounds, http_agent_pooled};
use crate::log::source::{Location, LogSource, RetryPolicy};
use crate::output::Output;
use crate::site::links::LogLinks;
use crate::site::log_folder::{Locks, LogFolderError};
use crate::site::pages::Pages;
use crate::site::root::RootPublisher;
use crate::site::state::LogState;
use crate::site::status::Recorded;
use crate::site::summary::LogSummary;
use crate::site::{self, RunStatus};
use crate::store::StoreError;

use super::progress::RunProgress;
use super::stop::Stop;
use super::update::{Built, LogError, probe};

/// How one log's part of the run ended.
pub struct LogOutcome {
    pub name: String,
    /// Skipped when another build holds the log.
    pub status: RunStatus,
    /// Ranges left for the next run because the run budget ran out.
    pub left: u64,
    /// Torrents this run published for the log.
    pub built: u64,
    /// The log as the site shows it now, when it could be read.
    pub summary: Option<LogSummary>,
    /// Another build holds the log's lock: left to it.
    pub held: Option<StoreError>,
    /// Its feed links torrents by relative URLs, which feed readers cannot fetch.
    pub relative_feed: bool,
}

/// Runs logs concurrently within the run's limits, each published the
/// moment it ends.
pub struct Schedule<'a> {
    pub config: &'a Config,
    /// The site's store, and the logs' locks this build holds.
    pub locks: &'a Locks<'a>,
    pub pages: &'a Pages,
    /// Told of every log as it is read and as it is published.
    pub root: &'a RootPublisher<'a>,
    pub output: &'a Output,
    pub progress: &'a RunProgress,
    /// No range starts once this says so (the run budget, or a signal).
    pub stop: &'a Stop,
    /// A log failing for less than this is news, not a warning or an error.
    pub alert_after: Option<Duration>,
}

impl Schedule<'_> {
    /// Brings `logs` up to date; outcomes in the same order.
    pub fn run(&self, logs: &[&LogConfig]) -> Vec<LogOutcome> {
        let widest = logs.iter().map(|log| log.concurrency).max().unwrap_or(1);
        let policy =
            RetryPolicy::with_budgets(self.config.retry_budget, self.config.unreachable_budget).capped_by_env();
        let hosts = Hosts::new(logs.iter().filter_map(|log| match &log.location {
            Location::Http(url) => Some((url.as_str(), log.concurrency)),
            Location::Dir(_) => None,
        }));
        self.progress.watch(&hosts);
        // Every host's whole limit of connections stays open between requests.
        let total = hosts.iter().map(|gate| gate.limit()).sum();
        // A host that does not answer within the short budget has used it up.
        let agent = http_agent_pooled(self.config.contact.as_deref(), widest, total, Some(Bounds::of(&policy)));
        let slots = Slots::new(self.config.parallel_logs);
        std::thread::scope(|scope| {
            let handles: Vec<_> = logs
                .iter()
                .enumerate()
                .map(|(order, &log)| {
                    let gate = match &log.location {
                        Location::Http(url) => hosts.gate(url),
                        Location::Dir(_) => None,
                    };
                    let source = LogSource::new(&log.location, &agent, policy).with_gate(gate).with_notice(&log.name);
                    let slots = &slots;
                    let thread = std::thread::Builder::new().name(format!("log {}", log.name));
                    let handle = thread.spawn_scoped(scope, move || match &log.archived {
                        Some(reason) => self.archive(log, reason),
                        None => {
                            let mut recorded = None;
                            let result = self.one(order, log, &source, slots, &mut recorded);
                            self.publish(log, result, recorded)
                        }
                    });
                    (log, handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(log, handle)| match handle {
                    Ok(handle) => handle.join().unwrap_or_else(|_| self.publish(log, Err(Failure::Panicked), None)),
                    Err(error) => self.publish(log, Err(Failure::Spawn(error)), None),
                })
                .collect()
        })
    }

    /// How long a log failing since `since` (Unix seconds; now when not
    /// failing before) has been failing.
    fn failing_for(&self, since: Option<u64>) -> Duration {
        let now = now();
        Duration::from_secs(now.saturating_sub(since.unwrap_or(now)))
    }

    fn out_of_time(&self) -> bool {
        self.stop.now()
    }

    /// Brings one log up to date; `recorded` gets its `status.json` as read.
    fn one(
        &self,
        order: usize,
        log: &LogConfig,
        source: &LogSource,
        slots: &Slots,
        recorded: &mut Option<Recorded>,
    ) -> Result<Built, Failure> {
        let links = LogLinks::new(self.config, log);
        let keep_going = || !self.out_of_time();
        let mut read_again = false;
        loop {
            let state = LogState::load(self.locks.store(), &log.name).map_err(LogError::from)?;
            // The root shows the log as published until this build publishes it.
            let found = site::found(self.config, log, self.locks, &state);
            if let (Some(notice), Some(after)) = (source.notice(), self.alert_after) {
                let since = found.recorded.as_ref().and_then(|health| health.failure.as_ref()).map(|f| f.since);
                notice.set_quiet(self.failing_for(since) < after);
            }
            self.root.know(found.summary);
            *recorded = Some(found.recorded);
            let probed = probe(log, state, source, self.locks)?;
            let built = if probed.missing() == 0 {
                probed.build(&links, self.output, &keep_going)
            } else {
                let _slot = slots.acquire(order, self.stop);
                // Without a slot the deadline passed while waiting: the checkpoint is
                // still recorded, and every range is left for the next run.
                probed.build(&links, self.output, &keep_going)
            };
            match built {
                // Another build published into the log after it was read,
                // before this one wrote anything: read it again, now under
                // the log's lock, so once is enough.
                Err(error) if error.is_changed() && !read_again => read_again = true,
                built => return Ok(built?),
            }
        }
    }

    /// A log no longer built: nothing is fetched; its status says why (once)
    /// and the root keeps showing it.
    fn archive(&self, log: &LogConfig, reason: &str) -> LogOutcome {
        let name = log.name.clone();
        let status = RunStatus::Archived { reason: reason.to_string() };
        let published = site::publish_log(self.config, log, self.locks, self.pages, &status, None, None);
        self.progress.log_done(false);
        match published {
            Ok(published) => {
                self.root.published(published.summary.clone(), published.held.is_none());
                let (held, relative_feed) = (published.held, false);
                LogOutcome { name, status, left: 0, built: 0, summary: Some(published.summary), held, relative_feed }
            }
            Err(error) => {
                tracing::warn!("log {name} (archived): {error}");
                let summary = site::read_summary(self.config, log, self.locks).ok();
                if let Some(summary) = &summary {
                    self.root.published(summary.clone(), true);
                }
                LogOutcome { name, status, left: 0, built: 0, summary, held: None, relative_feed: false }
            }
        }
    }

    /// Publishes the log's files for how its build ended, tells the root,
    /// and lets go of the log once the root shows it.
    fn publish(&self, log: &LogConfig, result: Result<Built, Failure>, recorded: Option<Recorded>) -> LogOutcome {
        let name = log.name.clone();
        let (status, left, built, state) = match result {
            Ok(built) => (RunStatus::Succeeded { at: now() }, built.left, built.built, Some(built.state)),
            Err(Failure::Log(LogError::Folder(LogFolderError::Store(error)))) if error.is_held() => {
                tracing::warn!("log {name}: {error}; the log is left to that build");
                let summary = site::read_summary(self.config, log, self.locks).ok();
                if let Some(summary) = &summary {
                    self.root.know(summary.clone());
                }
                self.progress.log_done(false);
                let status = RunStatus::Skipped;
                return LogOutcome {
                    name,
                    status,
                    left: 0,
                    built: 0,
                    summary,
                    held: Some(error),
                    relative_feed: false,
                };
            }
            Err(error) => (RunStatus::Failed { at: now(), message: crate::error_chain::one_line(&error) }, 0, 0, None),
        };
        let failed = matches!(status, RunStatus::Failed { .. });
        let outcome = match site::publish_log(self.config, log, self.locks, self.pages, &status, state, recorded) {
            Ok(published) => {
                if let RunStatus::Failed { message, .. } = &status {
                    let since = published.summary.health.failure.as_ref().map(|failure| failure.since);
                    // Under --alert-after, a recent failure is news: `-q` hides it.
                    if self.alert_after.is_some_and(|after| self.failing_for(since) < after) {
                        tracing::info!("log {name}: {message}");
                    } else {
                        tracing::error!("log {name}: {message}");
                    }
                }
                let release = published.held.is_none();
                self.root.published(published.summary.clone(), release);
                LogOutcome {
                    name,
                    status,
                    left,
                    built,
                    summary: Some(published.summary),
                    held: published.held,
                    relative_feed: published.relative_feed,
                }
            }
            Err(error) => {
                // The log's own files could not be written: it failed, and
                // the root shows what the site holds of it.
                tracing::error!("log {name}: {error}");
                let summary = site::read_summary(self.config, log, self.locks).ok();
                if let Some(summary) = &summary {
                    self.root.published(summary.clone(), true);
                }
                let status = RunStatus::Failed { at: now(), message: crate::error_chain::one_line(&error) };
                LogOutcome { name, status, left, built, summary, held: None, relative_feed: false }
            }
        };
        self.progress.log_done(failed || matches!(outcome.status, RunStatus::Failed { .. }));
        outcome
    }
}

/// Why a log's thread gave no result of its own.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("cannot start a thread for the log: {0}")]
    Spawn(std::io::Error),
    #[error("the log's build stopped on an internal error (a bug in helio)")]
    Panicked,
}

/// How often a log waiting for a slot checks whether the build was asked to stop.
const STOP_POLL: Duration = Duration::from_millis(200);

/// `parallel_logs` slots for building ranges, handed out in config order.
struct Slots {
    state: Mutex<SlotState>,
    freed: Condvar,
}

struct SlotState {
    free: usize,
    waiting: BTreeSet<usize>,
}

/// A slot, given back when dropped.
struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(count: usize) -> Slots {
        Slots { state: Mutex::new(SlotState { free: count.max(1), waiting: BTreeSet::new() }), freed: Condvar::new() }
    }

    /// Waits for a slot, first come in config order; `None` once `stop` says so.
    fn acquire(&self, order: usize, stop: &Stop) -> Option<Slot<'_>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.waiting.insert(order);
        loop {
            if state.free > 0 && state.waiting.first() == Some(&order) {
                state.waiting.remove(&order);
                state.free -= 1;
                // Another slot may be free for the next in line.
                self.freed.notify_all();
                return Some(Slot(self));
            }
            if stop.now() {
                state.waiting.remove(&order);
                self.freed.notify_all();
                return None;
            }
            // A signal wakes nobody: look again now and then.
            let mut wait = STOP_POLL;
            if let Some(deadline) = stop.deadline() {
                wait = wait.min(deadline.saturating_duration_since(Instant::now()));
            }
            state = self.freed.wait_timeout(state, wait).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.free += 1;
        self.0.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn slots_bound_the_logs_building_at_once_and_go_in_config_order() {
        let slots = Arc::new(Slots::new(2));
        let busy = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = slots.acquire(100, &Stop::at(None)).unwrap();
        let second = slots.acquire(101, &Stop::at(None)).unwrap();
        let handles: Vec<_> = (0..6)
            .rev()
            .map(|i| {
                let (slots, busy, order) = (Arc::clone(&slots), Arc::clone(&busy), Arc::clone(&order));
                let handle = std::thread::spawn(move || {
                    let _slot = slots.acquire(i, &Stop::at(None)).unwrap();
                    let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 2, "{now} building at once");
                    order.lock().unwrap().push(i);
                    std::thread::sleep(Duration::from_millis(5));
                    busy.fetch_sub(1, Ordering::SeqCst);
                });
                std::thread::sleep(Duration::from_millis(5));
                handle
            })
            .collect();
        while slots.state.lock().unwrap().waiting.len() < 6 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(first);
        drop(second);
        for handle in handles {
            handle.join().unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[..2].iter().collect::<BTreeSet<_>>(), [0, 1].iter().collect(), "{order:?}");
    }

    #[test]
    fn a_passed_deadline_gives_no_slot() {
        let slots = Slots::new(1);
        let _held = slots.acquire(0, &Stop::at(None)).unwrap();
        let started = Instant::now();
        assert!(slots.acquire(1, &Stop::at(Some(Instant::now() + Duration::from_millis(50)))).is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(slots.state.lock().unwrap().waiting.is_empty());
    }
}
