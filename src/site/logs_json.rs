//! `logs.json` at the site's root: every configured log in one small,
//! machine-readable document (the root page's table for programs), so a
//! mirror or a monitor finds each log's feed and state without scraping
//! HTML. Like every file of the site it holds no build time, so a build with
//! nothing new leaves it byte-identical.

use serde::Serialize;

use crate::config::url_segment;

use super::feed::FEED_XML;
use super::pages::INDEX_HTML;
use super::state::TORRENTS_JSON;
use super::summary::CheckpointTime;
use super::summary::LogSummary;
use crate::clock::rfc3339;

pub use crate::layout::LOGS_JSON;

#[derive(Serialize)]
struct LogsJson<'a> {
    logs: Vec<LogEntry<'a>>,
}

#[derive(Serialize)]
struct LogEntry<'a> {
    name: &'a str,
    /// The log's monitoring prefix.
    log_url: &'a str,
    /// The log's page, feed and `torrents.json`: absolute when the site's
    /// URL is configured, else relative to `logs.json`.
    page: String,
    feed: String,
    torrents_json: String,
    /// Tree size of the newest checkpoint helio verified (null before the first).
    checkpoint_size: Option<u64>,
    /// Entries covered by published torrents.
    entries_covered: u64,
    torrents: usize,
    /// `ok`, `failing`, `pending` (no build recorded yet), `finished` (a
    /// final log whose last torrent is published) or `archived` (no longer
    /// built; see `reason`).
    status: &'static str,
    /// Why an archived log is no longer built; null otherwise.
    reason: Option<&'a str>,
    /// RFC 3339 UTC; null unless failing.
    failing_since: Option<String>,
    /// The last run that changed something for the log and succeeded.
    last_success: Option<String>,
    /// The last run that changed something for the log.
    last_attempt: Option<String>,
    /// Why the log is failing, on one line; null unless failing.
    error: Option<&'a str>,
    /// Entries of the tree (or of `entry_limit`) that no torrent covers yet.
    entries_behind: u64,
    /// Content bytes of every published torrent.
    data_size_bytes: u64,
    /// When the newest checkpoint was signed (or, for a log that signs no
    /// time, first seen).
    checkpoint_time: Option<String>,
}

/// A log's file as `logs.json` links it.
fn url(log: &LogSummary, file: &str) -> String {
    match log.links.folder {
        Some(_) => log.links.file_url(file),
        None => format!("{}/{}", url_segment(&log.name), url_segment(file)),
    }
}

/// The names and monitoring prefixes `logs.json` lists (none, if it does not
/// read: it is only a hint of which logs a site holds).
pub fn names(bytes: &[u8]) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
        #[serde(default)]
        log_url: String,
    }
    #[derive(serde::Deserialize)]
    struct Listed {
        logs: Vec<Named>,
    }
    serde_json::from_slice::<Listed>(bytes)
        .map(|listed| listed.logs.into_iter().map(|log| (log.name, log.log_url)).collect())
        .unwrap_or_default()
}

/// The bytes of `logs.json` for these logs, in config order.
pub fn render(logs: &[LogSummary]) -> Vec<u8> {
    let document = LogsJson {
        logs: logs
            .iter()
            .map(|log| LogEntry {
                name: &log.name,
                log_url: &log.log_url,
                page: url(log, INDEX_HTML),
                feed: url(log, FEED_XML),
                torrents_json: url(log, TORRENTS_JSON),
                checkpoint_size: log.checkpoint.map(|checkpoint| checkpoint.size),
                entries_covered: log.entries_covered,
                torrents: log.torrents,
                status: log.condition.name(),
                reason: log.archived(),
                failing_since: log.health.failure.as_ref().map(|failure| rfc3339(failure.since)),
                last_success: log.health.last_success.map(rfc3339),
                last_attempt: log.health.last_attempt.map(rfc3339),
                error: log.error(),
                entries_behind: log.entries_behind(),
                data_size_bytes: log.bytes,
                checkpoint_time: log.checkpoint.and_then(|checkpoint| checkpoint.time).map(|time| match time {
                    CheckpointTime::Signed(at) | CheckpointTime::Seen(at) => rfc3339(at),
                }),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::sample::Sample;

    #[test]
    fn logs_json_snapshot() {
        let sample = Sample::new();
        let bytes = render(&sample.summaries());
        insta::assert_snapshot!("logs_json", String::from_utf8(bytes).unwrap());
    }

    #[test]
    fn without_a_site_url_links_are_relative_to_the_root() {
        let mut sample = Sample::new();
        for links in &mut sample.links {
            links.folder = None;
        }
        let document: serde_json::Value = serde_json::from_slice(&render(&sample.summaries())).unwrap();
        let hostile = &document["logs"][1];
        assert_eq!(hostile["page"], "a&b%20%3C%22c'%3E%20%C3%A9/index.html");
        assert_eq!(hostile["feed"], "a&b%20%3C%22c'%3E%20%C3%A9/feed.xml");
        assert_eq!(hostile["checkpoint_size"], 300);
        assert_eq!(hostile["entries_covered"], 0);
        assert_eq!(document["logs"][0]["torrents_json"], "demo/torrents.json");
        assert_eq!(document["logs"][0]["entries_covered"], 3072);
    }

    #[test]
    fn health_is_there_for_monitors() {
        let sample = Sample::new();
        let document: serde_json::Value = serde_json::from_slice(&render(&sample.summaries())).unwrap();
        let [demo, hostile] = [&document["logs"][0], &document["logs"][1]];
        assert_eq!(demo["status"], "ok");
        assert_eq!(demo["failing_since"], serde_json::Value::Null);
        assert_eq!(demo["error"], serde_json::Value::Null);
        assert_eq!(demo["last_success"], "2026-11-18T14:26:40Z");
        assert_eq!(demo["entries_behind"], 3300 - 3072);
        assert_eq!(hostile["status"], "failing");
        assert_eq!(hostile["failing_since"], "2026-11-18T16:40:00Z");
        assert_eq!(hostile["last_success"], serde_json::Value::Null);
        assert_eq!(hostile["last_attempt"], "2026-11-18T16:40:00Z");
        assert_eq!(hostile["error"], "<script>alert(\"x\")</script> & the log said 'no'");
        assert_eq!(hostile["entries_behind"], 300);
    }
}
