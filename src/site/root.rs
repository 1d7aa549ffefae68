//! The root files — the dashboard (`index.html`), `logs.json`, the all-logs
//! `feed.xml` and `style.css` — made from every configured log's
//! [`LogSummary`], and kept up to date while a build runs (docs/health.md).
//!
//! [`write`] rewrites them when their bytes would change, under the root's
//! lock, after reading again every log this build does not hold: builds of
//! different logs publishing into one site at once (a CI matrix over logs)
//! never erase each other's logs from the root.
//!
//! [`RootPublisher`] is the build's side of it: a thread that rewrites the
//! root whenever a log has been published, so that every finished log is on
//! the root page within moments, whatever the slowest log does, and so that
//! a build killed at any point leaves a root consistent with every log it
//! finished. Logs finishing together are written in one go, and into a
//! bucket, where each rewrite costs requests, at most once every
//! [`BUCKET_INTERVAL`] until the build ends. A log's lock is released once a
//! root that shows it has been written, so that another build of that log
//! cannot publish it in between and have it shown stale.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::Config;

use super::feed::{AllLogsFeed, FEED_XML};
use super::log_folder::Locks;
use super::logs_json::{self, LOGS_JSON};
use super::pages::{INDEX_HTML, Pages, STYLE_CSS, STYLESHEET};
use super::summary::LogSummary;
use super::{SiteError, read_summary};

/// The least time between two rewrites of a bucket's root files while a
/// build runs: each costs a lease and a PUT per changed file.
pub const BUCKET_INTERVAL: Duration = Duration::from_secs(10);

/// The root files for `logs` (in config order).
fn render(config: &Config, pages: &Pages, logs: &[LogSummary]) -> Result<[(&'static str, Vec<u8>); 4], SiteError> {
    let feed = AllLogsFeed { logs, site: config.feed_url_base.as_deref() }
        .render()
        .map_err(|source| SiteError::Feed { what: FEED_XML.to_string(), source })?;
    Ok([
        (INDEX_HTML, pages.root(logs)?.into_bytes()),
        (LOGS_JSON, logs_json::render(logs)),
        (FEED_XML, feed),
        (STYLE_CSS, STYLESHEET.as_bytes().to_vec()),
    ])
}

/// Rewrites the root files that would change for `logs`, one summary per
/// configured log in config order. Returns whether anything was written.
pub fn write(config: &Config, locks: &Locks, pages: &Pages, logs: Vec<LogSummary>) -> Result<bool, SiteError> {
    let store = locks.store();
    // Another build may have rewritten them since this one started.
    store.list("")?;
    let mut unchanged = true;
    for (key, bytes) in render(config, pages, &logs)? {
        unchanged = unchanged && store.unchanged(key, &bytes)?;
    }
    if unchanged {
        return Ok(false);
    }
    let _root = locks.root()?;
    // The logs this build holds are as it wrote them; the others are read again.
    let logs: Vec<LogSummary> = logs
        .into_iter()
        .zip(&config.logs)
        .map(|(summary, log)| if locks.holds(&log.name) { Ok(summary) } else { read_summary(config, log, locks) })
        .collect::<Result<_, SiteError>>()?;
    for (key, bytes) in render(config, pages, &logs)? {
        store.write_if_changed(key, &bytes)?;
    }
    Ok(true)
}

/// Keeps the root files up to date while the logs of a build finish.
pub struct RootPublisher<'a> {
    config: &'a Config,
    locks: &'a Locks<'a>,
    pages: &'a Pages,
    interval: Duration,
    table: Mutex<Table>,
    wake: Condvar,
}

#[derive(Default)]
struct Table {
    /// Every configured log, in config order, once known.
    logs: Vec<Option<LogSummary>>,
    /// A log was published since the root was last written (a build that
    /// publishes none, every log held by another build, leaves the root alone).
    dirty: bool,
    closing: bool,
    /// Logs whose lock goes once a root showing them is written.
    release: Vec<String>,
    /// Root rewrites that wrote something.
    writes: usize,
    error: Option<SiteError>,
}

impl<'a> RootPublisher<'a> {
    /// A publisher for `config`'s logs; `in_run` says which logs this
    /// build brings up to date (they make themselves known, the others are
    /// read from the site when [`RootPublisher::run`] starts).
    pub fn new(config: &'a Config, locks: &'a Locks<'a>, pages: &'a Pages) -> RootPublisher<'a> {
        let interval = if locks.store().is_bucket() { BUCKET_INTERVAL } else { Duration::ZERO };
        let table = Table { logs: vec![None; config.logs.len()], ..Table::default() };
        RootPublisher { config, locks, pages, interval, table: Mutex::new(table), wake: Condvar::new() }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, name: &str, summary: LogSummary) -> MutexGuard<'_, Table> {
        let mut table = self.table();
        if let Some(at) = self.config.logs.iter().position(|log| log.name == name) {
            table.logs[at] = Some(summary);
        }
        table
    }

    /// The log as the site holds it before this build publishes it.
    pub fn know(&self, summary: LogSummary) {
        let name = summary.name.clone();
        drop(self.set(&name, summary));
        self.wake.notify_all();
    }

    /// The log has just been published: the root is rewritten to show it,
    /// and then, with `release`, the log's lock is let go.
    pub fn published(&self, summary: LogSummary, release: bool) {
        let name = summary.name.clone();
        let mut table = self.set(&name, summary);
        table.dirty = true;
        if release {
            table.release.push(name);
        }
        drop(table);
        self.wake.notify_all();
    }

    /// Every log as the root last knew it, in config order.
    pub fn summaries(&self) -> Vec<LogSummary> {
        self.table().logs.iter().flatten().cloned().collect()
    }

    /// No log will be published any more: the thread in [`run`](Self::run)
    /// writes what is left and returns.
    pub fn close(&self) {
        self.table().closing = true;
        self.wake.notify_all();
    }

    /// Writes the root whenever logs were published, until closed; then
    /// returns the first error a rewrite met and how many rewrites wrote.
    /// `others` are the logs this build does not bring up to date, read from
    /// the site first.
    pub fn run(&self, others: &[&str]) -> Result<usize, SiteError> {
        for log in self.config.logs.iter().filter(|log| others.contains(&log.name.as_str())) {
            match read_summary(self.config, log, self.locks) {
                Ok(summary) => self.know(summary),
                Err(error) => {
                    self.fail(error);
                    break;
                }
            }
        }
        let mut last: Option<Instant> = None;
        loop {
            let (logs, release) = {
                let mut table = self.table();
                loop {
                    let known = table.logs.iter().all(Option::is_some);
                    if table.dirty && known && table.error.is_none() {
                        let wait = last.map_or(Duration::ZERO, |at| self.interval.saturating_sub(at.elapsed()));
                        if table.closing || wait.is_zero() {
                            break;
                        }
                        table = self.wake.wait_timeout(table, wait).unwrap_or_else(PoisonError::into_inner).0;
                        continue;
                    }
                    if table.closing {
                        let release = std::mem::take(&mut table.release);
                        let error = table.error.take();
                        let writes = table.writes;
                        drop(table);
                        for name in release {
                            self.locks.release_log(&name);
                        }
                        return error.map_or(Ok(writes), Err);
                    }
                    table = self.wake.wait(table).unwrap_or_else(PoisonError::into_inner);
                }
                table.dirty = false;
                let logs: Vec<LogSummary> = table.logs.iter().flatten().cloned().collect();
                (logs, std::mem::take(&mut table.release))
            };
            match write(self.config, self.locks, self.pages, logs) {
                Ok(wrote) => self.table().writes += usize::from(wrote),
                Err(error) => self.fail(error),
            }
            last = Some(Instant::now());
            for name in release {
                self.locks.release_log(&name);
            }
        }
    }

    /// Keeps the first error; the root is not written again in this build
    /// (the next build writes it), but logs still publish and release.
    fn fail(&self, error: SiteError) {
        let mut table = self.table();
        table.error.get_or_insert(error);
    }
}
