//! `logs.json` at the site's root: every configured log in one small,
//! machine-readable document (the root page's table for programs), so a
//! mirror or a monitor finds each log's feed and state without scraping
//! HTML. Like every file of the site it holds no build time, so a build with
//! nothing new leaves it byte-identical.

use serde::Serialize;

use crate::config::url_segment;

use super::feed::FEED_XML;
use super::links::LogLinks;
use super::pages::INDEX_HTML;
use super::state::{LogState, TORRENTS_JSON};

pub const LOGS_JSON: &str = "logs.json";

#[derive(Serialize)]
struct LogsJson<'a> {
    logs: Vec<LogEntry<'a>>,
}

#[derive(Serialize)]
struct LogEntry<'a> {
    name: &'a str,
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
}

/// One log as `logs.json` shows it.
pub struct LogSummary<'a> {
    pub links: &'a LogLinks,
    pub state: &'a LogState,
}

impl LogSummary<'_> {
    fn url(&self, file: &str) -> String {
        match self.links.folder {
            Some(_) => self.links.file_url(file),
            None => format!("{}/{}", url_segment(&self.links.name), url_segment(file)),
        }
    }
}

/// The bytes of `logs.json` for these logs, in config order.
pub fn render(logs: &[LogSummary]) -> Vec<u8> {
    let document = LogsJson {
        logs: logs
            .iter()
            .map(|log| LogEntry {
                name: &log.links.name,
                page: log.url(INDEX_HTML),
                feed: log.url(FEED_XML),
                torrents_json: log.url(TORRENTS_JSON),
                checkpoint_size: log.state.checkpoint.as_ref().map(|checkpoint| checkpoint.size),
                entries_covered: log.state.entries_published(),
                torrents: log.state.torrents.len(),
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

    fn summaries(sample: &Sample) -> Vec<LogSummary<'_>> {
        sample.states.iter().zip(&sample.links).map(|(state, links)| LogSummary { links, state }).collect()
    }

    #[test]
    fn logs_json_snapshot() {
        let sample = Sample::new();
        let bytes = render(&summaries(&sample));
        insta::assert_snapshot!("logs_json", String::from_utf8(bytes).unwrap());
    }

    #[test]
    fn without_a_site_url_links_are_relative_to_the_root() {
        let mut sample = Sample::new();
        for links in &mut sample.links {
            links.folder = None;
        }
        let document: serde_json::Value = serde_json::from_slice(&render(&summaries(&sample))).unwrap();
        let hostile = &document["logs"][1];
        assert_eq!(hostile["page"], "a&b%20%3C%22c'%3E%20%C3%A9/index.html");
        assert_eq!(hostile["feed"], "a&b%20%3C%22c'%3E%20%C3%A9/feed.xml");
        assert_eq!(hostile["checkpoint_size"], 300);
        assert_eq!(hostile["entries_covered"], 0);
        assert_eq!(document["logs"][0]["torrents_json"], "demo/torrents.json");
        assert_eq!(document["logs"][0]["entries_covered"], 3072);
    }
}
