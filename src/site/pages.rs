//! The HTML pages (docs/spec.md §5): `index.html` at the root, listing every log,
//! and `<log>/index.html`, listing a log's torrents.
//!
//! Templates (Tera, `templates/`) and the stylesheet (`static/`) are compiled
//! into the binary so helio runs from anywhere. Every value is prepared here
//! as text and escaped by Tera's autoescaping; templates only lay it out.
//! Links are relative, so the site works under any path prefix, and nothing
//! on a page depends on the clock, so an unchanged log gives unchanged bytes.

use serde::Serialize;
use tera::{Context, Tera};
use thiserror::Error;

use crate::config::{LogConfig, url_segment};

use super::human::{self, Time};
use super::links::LogLinks;
use super::published::PublishedTorrent;
use super::state::LogState;
use super::status::Health;
use super::summary::{CheckpointTime, LogSummary, Totals, dashboard_order};

pub use crate::layout::INDEX_HTML;
pub use crate::layout::STYLE_CSS;
/// The stylesheet, written as `<out>/style.css`.
pub const STYLESHEET: &str = include_str!("../../static/style.css");

const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("_status.html", include_str!("../../templates/_status.html")),
    ("_facts.html", include_str!("../../templates/_facts.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("log.html", include_str!("../../templates/log.html")),
];

#[derive(Debug, Error)]
#[error("cannot render {template}: {}", chain(source))]
pub struct PageError {
    pub template: &'static str,
    pub source: tera::Error,
}

/// Tera's top-level message alone ("failed to render") hides the cause.
fn chain(error: &tera::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// What the pages show about one log.
pub struct LogPage<'a> {
    pub log: &'a LogConfig,
    pub state: &'a LogState,
    pub links: &'a LogLinks,
    pub health: &'a Health,
    /// Why the published state could not be read, when it could not.
    pub unreadable: Option<&'a str>,
    pub checkpoint_time: Option<CheckpointTime>,
}

/// The compiled templates.
pub struct Pages {
    tera: Tera,
}

impl Pages {
    pub fn new() -> Result<Pages, PageError> {
        let mut tera = Tera::default();
        // Autoescaping is what keeps a log name like `<script>` inert: keep it
        // on for every template, whatever Tera's default becomes.
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(TEMPLATES).map_err(|source| PageError { template: "templates", source })?;
        Ok(Pages { tera })
    }

    /// The root page: a dashboard of every log, failing logs first, then
    /// by entries behind. Times are shown against the newest run recorded
    /// in the logs' state, never the clock, so nothing changed means the
    /// same bytes.
    pub fn root(&self, logs: &[LogSummary]) -> Result<String, PageError> {
        let totals = Totals::of(logs);
        let mut ordered: Vec<&LogSummary> = logs.iter().collect();
        dashboard_order(&mut ordered);
        let view = RootView {
            version: VERSION,
            root: "",
            totals: TotalsView::new(&totals),
            feeds: logs
                .iter()
                .map(|log| FeedLink { name: &log.name, dir: format!("./{}/", url_segment(&log.name)) })
                .collect(),
            logs: ordered.into_iter().map(|log| RowView::new(log, totals.updated)).collect(),
        };
        self.render("index.html", &view)
    }

    /// The page of one log, for its own folder.
    pub fn log(&self, page: &LogPage) -> Result<String, PageError> {
        let view = LogPageView {
            version: VERSION,
            root: "../",
            log: LogView::new(page),
            // Newest first, like the feed.
            torrents: page.state.torrents.iter().rev().map(|t| TorrentRow::new(t, page)).collect(),
        };
        self.render("log.html", &view)
    }

    fn render(&self, template: &'static str, view: &impl Serialize) -> Result<String, PageError> {
        let context = Context::from_serialize(view).map_err(|source| PageError { template, source })?;
        let mut html = self.tera.render(template, &context).map_err(|source| PageError { template, source })?;
        tidy(&mut html);
        Ok(html)
    }
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize)]
struct RootView<'a> {
    version: &'static str,
    /// The way back to the site's root from the page.
    root: &'static str,
    totals: TotalsView,
    /// Each log's name and folder, in config order, for the feeds' `<link>`s.
    feeds: Vec<FeedLink<'a>>,
    logs: Vec<RowView<'a>>,
}

#[derive(Serialize)]
struct FeedLink<'a> {
    name: &'a str,
    dir: String,
}

#[derive(Serialize)]
struct TotalsView {
    logs: String,
    failing: usize,
    torrents: String,
    size: String,
    bytes: u64,
    behind: String,
    updated: Option<Time>,
}

impl TotalsView {
    fn new(totals: &Totals) -> TotalsView {
        TotalsView {
            logs: human::count(totals.logs as u64),
            failing: totals.failing,
            torrents: human::count(totals.torrents as u64),
            size: human::size(totals.bytes),
            bytes: totals.bytes,
            behind: human::count(totals.entries_behind),
            updated: totals.updated.map(Time::from_unix),
        }
    }
}

/// One log on the dashboard.
#[derive(Serialize)]
struct RowView<'a> {
    name: &'a str,
    dir: String,
    status: &'static str,
    /// How long it has been failing, as of the newest recorded run.
    failing_for: Option<String>,
    failing_since: Option<Time>,
    error: Option<&'a str>,
    /// Why an archived log is no longer built.
    reason: Option<&'a str>,
    behind: String,
    covered: String,
    percent: String,
    torrents: String,
    size: String,
    bytes: u64,
    last_success: Option<Time>,
    checkpoint_size: Option<String>,
    checkpoint_time: Option<Time>,
    /// The checkpoint's age as of the newest recorded run.
    checkpoint_age: Option<String>,
}

impl<'a> RowView<'a> {
    fn new(log: &'a LogSummary, updated: Option<u64>) -> RowView<'a> {
        let as_of = |since: u64| updated.map(|now| human::duration(now.saturating_sub(since)));
        let checkpoint_time = log.checkpoint.and_then(|c| c.time).map(|time| match time {
            CheckpointTime::Signed(at) | CheckpointTime::Seen(at) => at,
        });
        RowView {
            name: &log.name,
            dir: format!("./{}/", url_segment(&log.name)),
            status: log.condition.name(),
            failing_for: log.health.failure.as_ref().and_then(|failure| as_of(failure.since)),
            failing_since: log.health.failure.as_ref().map(|failure| Time::from_unix(failure.since)),
            error: log.error(),
            reason: log.archived(),
            behind: human::count(log.entries_behind()),
            covered: human::count(log.entries_covered),
            percent: human::percent(log.entries_covered, log.checkpoint.map_or(0, |c| c.size)),
            torrents: human::count(log.torrents as u64),
            size: human::size(log.bytes),
            bytes: log.bytes,
            last_success: log.health.last_success.map(Time::from_unix),
            checkpoint_size: log.checkpoint.map(|c| human::count(c.size)),
            checkpoint_time: checkpoint_time.map(Time::from_unix),
            checkpoint_age: checkpoint_time.and_then(as_of),
        }
    }
}

#[derive(Serialize)]
struct LogPageView<'a> {
    version: &'static str,
    root: &'static str,
    log: LogView<'a>,
    torrents: Vec<TorrentRow>,
}

/// One log, as text.
#[derive(Serialize)]
struct LogView<'a> {
    name: &'a str,
    /// The log's folder relative to the root page, ending in `/`. `./` keeps
    /// a name with a colon from reading as a URL scheme.
    dir: String,
    /// The log's monitoring prefix, and a link to it when it is on the web.
    source: &'a str,
    source_href: Option<&'a str>,
    torrents: usize,
    total_size: String,
    total_bytes: u64,
    coverage: Coverage,
    checkpoint: Option<CheckpointView>,
    next: Progress,
    failure: Option<FailureView>,
    last_success: Option<Time>,
    /// Why the log is no longer built, when it is not.
    archived: Option<&'a str>,
    unreadable: Option<&'a str>,
    trackers: &'a [String],
    webseeds: &'a [String],
}

#[derive(Serialize)]
struct Coverage {
    published: String,
    percent: String,
}

#[derive(Serialize)]
struct CheckpointView {
    origin: String,
    size: String,
    root: String,
    time: Option<Time>,
    /// "signed" or "seen", before the time.
    time_source: &'static str,
}

/// Entries verified toward the next range.
#[derive(Serialize)]
struct Progress {
    done: String,
    of: String,
    percent: String,
    value: u64,
    max: u64,
}

#[derive(Serialize)]
struct FailureView {
    since: Time,
    message: String,
}

#[derive(Serialize)]
struct TorrentRow {
    first: String,
    last: String,
    size: String,
    bytes: u64,
    files: usize,
    date: Time,
    file: String,
    magnet: String,
    infohash: String,
    infohash_v2: Option<String>,
}

impl<'a> LogView<'a> {
    fn new(page: &LogPage<'a>) -> LogView<'a> {
        let state = page.state;
        let published = state.entries_published();
        let checkpoint = state.checkpoint.as_ref();
        let verified = checkpoint.map_or(0, |c| c.size);
        let usable = page.log.entry_limit.map_or(verified, |limit| limit.min(verified));
        let per_torrent = page.log.entries_per_torrent;
        // Ranges are built in order, so the next one starts where the last ends.
        let next_start = state.torrents.last().map_or(0, |t| t.range.end);
        let done = usable.saturating_sub(next_start).min(per_torrent);
        let source = page.log.log_url.as_str();
        let is_web = source.starts_with("https://") || source.starts_with("http://");
        LogView {
            name: &page.log.name,
            dir: format!("./{}/", url_segment(&page.log.name)),
            source,
            source_href: is_web.then_some(source),
            torrents: state.torrents.len(),
            total_size: human::size(state.torrents.iter().map(|t| t.data_size_bytes).sum()),
            total_bytes: state.torrents.iter().map(|t| t.data_size_bytes).sum(),
            coverage: Coverage { published: human::count(published), percent: human::percent(published, verified) },
            checkpoint: checkpoint.map(|c| {
                let (time, time_source) = match page.checkpoint_time {
                    Some(CheckpointTime::Signed(t)) => (Some(Time::from_unix(t)), "signed"),
                    Some(CheckpointTime::Seen(t)) => (Some(Time::from_unix(t)), "seen"),
                    None => (None, ""),
                };
                CheckpointView {
                    origin: c.origin.clone(),
                    size: human::count(c.size),
                    root: c.root_base64(),
                    time,
                    time_source,
                }
            }),
            next: Progress {
                done: human::count(done),
                of: human::count(per_torrent),
                percent: human::percent(done, per_torrent),
                value: done,
                max: per_torrent,
            },
            failure: page
                .health
                .failure
                .as_ref()
                .map(|f| FailureView { since: Time::from_unix(f.since), message: f.message.clone() }),
            last_success: page.health.last_success.map(Time::from_unix),
            archived: page.health.archived.as_deref().or(page.log.archived.as_deref()),
            unreadable: page.unreadable,
            trackers: &page.log.trackers,
            webseeds: &page.log.webseeds,
        }
    }
}

impl TorrentRow {
    fn new(torrent: &PublishedTorrent, page: &LogPage) -> TorrentRow {
        let range = &torrent.range;
        TorrentRow {
            first: human::count(range.start),
            last: human::count(range.end - 1),
            size: human::size(torrent.data_size_bytes),
            bytes: torrent.data_size_bytes,
            files: torrent.file_count,
            date: Time::from_unix(torrent.creation_time),
            // Relative: the page sits next to its torrents.
            file: url_segment(&range.file_name()),
            magnet: page.links.magnet(torrent),
            infohash: torrent.infohash.to_string(),
            infohash_v2: torrent.infohash_v2.map(|v2| v2.to_string()),
        }
    }
}

/// Drops the blank lines that template tags leave behind, so the pages stay
/// small and readable as source.
fn tidy(html: &mut String) {
    let mut out = String::with_capacity(html.len());
    for line in html.lines() {
        if !line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    *html = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::sample::{Sample, redact};

    /// Every `href` and `src` value on a page, unescaped.
    fn links(html: &str) -> Vec<String> {
        let mut found = Vec::new();
        for attribute in ["href=\"", "src=\""] {
            for (at, _) in html.match_indices(attribute) {
                let rest = &html[at + attribute.len()..];
                let value = &rest[..rest.find('"').unwrap()];
                found.push(value.replace("&#39;", "'").replace("&quot;", "\"").replace("&amp;", "&"));
            }
        }
        found
    }

    #[test]
    fn root_page_snapshot() {
        let sample = Sample::new();
        let html = Pages::new().unwrap().root(&sample.summaries()).unwrap();
        insta::assert_snapshot!("root_page", redact(&html));
    }

    #[test]
    fn log_page_snapshots() {
        let sample = Sample::new();
        let pages = Pages::new().unwrap();
        let [demo, hostile] = &sample.pages()[..] else { unreachable!() };
        insta::assert_snapshot!("log_page", redact(&pages.log(demo).unwrap()));
        insta::assert_snapshot!("log_page_hostile_empty_failing", redact(&pages.log(hostile).unwrap()));
    }

    #[test]
    fn every_value_is_escaped() {
        let sample = Sample::new();
        let pages = Pages::new().unwrap();
        let hostile = &sample.pages()[1];
        for html in [pages.root(&sample.summaries()).unwrap(), pages.log(hostile).unwrap()] {
            assert!(html.contains("a&amp;b &lt;&quot;c&#39;&gt; é"), "{html}");
            assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; the log said &#39;no&#39;"));
            assert!(!html.contains("<script") && !html.contains("<\"c") && !html.contains("<c>"), "{html}");
        }
    }

    #[test]
    fn links_are_relative_except_magnets_and_the_logs_own_urls() {
        let sample = Sample::new();
        let pages = Pages::new().unwrap();
        let root = pages.root(&sample.summaries()).unwrap();
        assert!(links(&root).contains(&"./a&b%20%3C%22c'%3E%20%C3%A9/index.html".to_string()));
        let mut all = links(&root);
        for page in sample.pages() {
            all.extend(links(&pages.log(&page).unwrap()));
        }
        for link in all {
            let external = link.starts_with("magnet:?") || link.starts_with("https://demo.example.org/log/");
            let external = external || link.starts_with("https://hostile.example.org/");
            let relative = !link.contains(':') && !link.starts_with('/') || link.starts_with("./");
            assert!(external || relative, "{link}");
        }
    }

    #[test]
    fn an_empty_log_shows_its_progress_toward_the_first_range() {
        let sample = Sample::new();
        let html = Pages::new().unwrap().log(&sample.pages()[1]).unwrap();
        assert!(html.contains("<progress value=\"300\" max=\"1024\">"), "{html}");
        assert!(html.contains("300 of 1,024 entries"), "{html}");
        assert!(html.contains("None yet."), "{html}");
    }

    #[test]
    fn the_stylesheet_adapts_to_dark_mode_and_phones() {
        assert!(STYLESHEET.contains("@media (prefers-color-scheme: dark)"));
        assert!(STYLESHEET.contains("@media (max-width:"));
    }
}
