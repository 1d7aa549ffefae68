//! One record per log — what the site holds of it and how its builds have
//! gone — made once, where the log is published or read, and then read by
//! everything that reports on many logs: the root page, `logs.json`, the
//! all-logs feed, the metrics file and the build's exit status. None of them
//! works the health out again (docs/health.md).

use crate::config::LogConfig;

use super::links::LogLinks;
use super::published::PublishedTorrent;
use super::state::LogState;
use super::status::Health;

/// How many of each log's newest torrents a summary keeps: the all-logs feed
/// shows this many of them all, whatever the other logs hold.
pub const NEWEST_KEPT: usize = 100;

/// When the newest checkpoint was made, and how helio knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointTime {
    /// The timestamp in the log's verified signature.
    Signed(u64),
    /// When helio first wrote it (the log signs no time, or no key is set).
    Seen(u64),
}

/// Where a log stands, as `logs.json` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// Its last build failed.
    Failing,
    /// No build has recorded it yet.
    Pending,
    /// Its last build succeeded.
    Ok,
    /// A finished log (`final: true`) whose last torrent is published:
    /// nothing more will come.
    Finished,
    /// No longer built: it left the log list's selection, or the config.
    Archived,
}

impl Condition {
    pub fn name(self) -> &'static str {
        match self {
            Condition::Failing => "failing",
            Condition::Pending => "pending",
            Condition::Ok => "ok",
            Condition::Finished => "finished",
            Condition::Archived => "archived",
        }
    }
}

/// The newest checkpoint helio verified for a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointFacts {
    pub size: u64,
    pub time: Option<CheckpointTime>,
}

/// One log, for the reports that cover every log.
#[derive(Clone, Debug)]
pub struct LogSummary {
    pub name: String,
    /// The monitoring prefix, as configured.
    pub log_url: String,
    pub links: LogLinks,
    pub condition: Condition,
    pub health: Health,
    /// Why the published state could not be read, when it could not.
    pub unreadable: Option<String>,
    /// Why an archived log is no longer built.
    pub reason: Option<String>,
    pub checkpoint: Option<CheckpointFacts>,
    /// Entries of the tree helio may publish: the checkpoint's size, or
    /// `entry_limit` when smaller.
    pub usable: u64,
    /// Entries covered by published torrents.
    pub entries_covered: u64,
    pub torrents: usize,
    /// Content bytes of every published torrent.
    pub bytes: u64,
    /// Unix seconds of the last change to the torrent list.
    pub last_updated: u64,
    /// The newest torrents, newest range first (at most [`NEWEST_KEPT`]).
    pub newest: Vec<PublishedTorrent>,
}

impl LogSummary {
    pub fn new(
        log: &LogConfig,
        links: &LogLinks,
        state: &LogState,
        health: &Health,
        unreadable: Option<String>,
        checkpoint_time: Option<CheckpointTime>,
    ) -> LogSummary {
        let checkpoint = state.checkpoint.as_ref().map(|c| CheckpointFacts { size: c.size, time: checkpoint_time });
        let size = checkpoint.map_or(0, |c| c.size);
        let finished = log.is_final && size > 0 && state.torrents.last().is_some_and(|last| last.range.end == size);
        let condition = if health.failure.is_some() || unreadable.is_some() {
            Condition::Failing
        } else if health.archived.is_some() || log.archived.is_some() {
            Condition::Archived
        } else if finished {
            Condition::Finished
        } else if *health == Health::default() && state.checkpoint.is_none() {
            Condition::Pending
        } else {
            Condition::Ok
        };
        LogSummary {
            name: log.name.clone(),
            log_url: log.log_url.clone(),
            links: links.clone(),
            condition,
            health: health.clone(),
            reason: health.archived.clone().or_else(|| log.archived.clone()),
            unreadable,
            checkpoint,
            usable: log.entry_limit.map_or(size, |limit| limit.min(size)),
            entries_covered: state.entries_published(),
            torrents: state.torrents.len(),
            bytes: state.torrents.iter().map(|t| t.data_size_bytes).sum(),
            last_updated: state.last_updated(),
            newest: state.torrents.iter().rev().take(NEWEST_KEPT).cloned().collect(),
        }
    }

    /// Entries the log has that no published torrent covers yet. A healthy
    /// growing log is less than one range behind: the range under way. An
    /// archived log is behind nothing: nothing more is expected of it.
    pub fn entries_behind(&self) -> u64 {
        if self.condition == Condition::Archived {
            return 0;
        }
        self.usable.saturating_sub(self.entries_covered)
    }

    /// Why an archived log is no longer built.
    pub fn archived(&self) -> Option<&str> {
        self.reason.as_deref().filter(|_| self.condition == Condition::Archived)
    }

    pub fn is_failing(&self) -> bool {
        self.condition == Condition::Failing
    }

    /// The message of the log's failure, on one line.
    pub fn error(&self) -> Option<&str> {
        self.unreadable.as_deref().or(self.health.failure.as_ref().map(|failure| failure.message.as_str()))
    }
}

/// Totals over every log, for the top of the root page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub logs: usize,
    pub failing: usize,
    pub torrents: usize,
    pub bytes: u64,
    pub entries_behind: u64,
    /// Unix seconds of the newest run that changed something, over every log.
    pub updated: Option<u64>,
}

impl Totals {
    pub fn of(logs: &[LogSummary]) -> Totals {
        Totals {
            logs: logs.len(),
            failing: logs.iter().filter(|log| log.is_failing()).count(),
            torrents: logs.iter().map(|log| log.torrents).sum(),
            bytes: logs.iter().map(|log| log.bytes).sum(),
            entries_behind: logs.iter().map(LogSummary::entries_behind).sum(),
            updated: logs.iter().filter_map(|log| log.health.last_attempt).max(),
        }
    }
}

/// The order of the dashboard: failing logs first, then by entries behind,
/// most first, then by name; archived logs last.
pub fn dashboard_order(logs: &mut [&LogSummary]) {
    let archived = |log: &LogSummary| log.condition == Condition::Archived;
    logs.sort_by(|a, b| {
        archived(a)
            .cmp(&archived(b))
            .then(b.is_failing().cmp(&a.is_failing()))
            .then(b.entries_behind().cmp(&a.entries_behind()))
            .then_with(|| a.name.cmp(&b.name))
    });
}
