//! `feed.xml` (docs/spec.md §5): an RSS 2.0 feed per log in the form BEP 36 and
//! torrent clients expect: one item per torrent, newest range first, its
//! `.torrent` as an `application/x-bittorrent` enclosure, and the ezRSS
//! `torrent:` elements (`infoHash`, `contentLength`, `magnetURI`, `fileName`)
//! that let a client start from the magnet link alone.
//!
//! Every date in it comes from the published state, never the clock:
//! `pubDate` is the torrent's creation date and `lastBuildDate` the time the
//! torrent list last changed, so a build with nothing new writes the same
//! bytes and feed readers see no spurious update.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use rss::extension::{Extension, ExtensionMap};
use rss::{Channel, Enclosure, Guid, Item};

use crate::config::{LogConfig, url_segment};

use super::human;
use super::links::LogLinks;
use super::published::PublishedTorrent;
use super::state::LogState;
use super::summary::{LogSummary, NEWEST_KEPT};

pub use crate::layout::FEED_XML;
pub const TORRENT_NAMESPACE: &str = "http://xmlns.ezrss.it/0.1/";
const ATOM_NAMESPACE: &str = "http://www.w3.org/2005/Atom";
const TORRENT_MIME: &str = "application/x-bittorrent";
/// Minutes a reader may cache the feed. New ranges complete hours or days
/// apart, so polling more often than hourly only costs the host.
pub const TTL_MINUTES: u32 = 60;
/// Items of the all-logs feed at the site's root: at one new range per log
/// every few hours, a day or more of every log's torrents.
pub const ALL_LOGS_ITEMS: usize = NEWEST_KEPT;

/// The feed of one log.
pub struct Feed<'a> {
    pub log: &'a LogConfig,
    pub state: &'a LogState,
    pub links: &'a LogLinks,
}

impl Feed<'_> {
    pub fn render(&self) -> Result<Vec<u8>, rss::Error> {
        let name = &self.log.name;
        let mut channel = Channel {
            title: format!("{name} tile torrents"),
            link: self.links.file_url("index.html"),
            description: format!(
                "Verified tile torrents of the Static CT log {name} ({}), one per {} entries. \
                 Each torrent carries a range of the log's data and hash tiles exactly as the log serves them.",
                self.log.log_url.trim_end_matches('/'),
                human::count(self.log.entries_per_torrent),
            ),
            ttl: Some(TTL_MINUTES.to_string()),
            generator: Some(concat!("helio ", env!("CARGO_PKG_VERSION")).to_string()),
            ..Channel::default()
        };
        if !self.state.torrents.is_empty() {
            channel.last_build_date = Some(rfc2822(self.state.last_updated()));
        }
        channel.namespaces.insert("torrent".into(), TORRENT_NAMESPACE.into());
        // Feed validators ask for a self link; it needs an absolute URL.
        if self.links.folder.is_some() {
            let href = self.log.feed_url.clone().unwrap_or_else(|| self.links.feed_url());
            let link = Extension {
                name: "atom:link".into(),
                attrs: BTreeMap::from([
                    ("href".to_string(), href),
                    ("rel".to_string(), "self".to_string()),
                    ("type".to_string(), "application/rss+xml".to_string()),
                ]),
                ..Extension::default()
            };
            channel.namespaces.insert("atom".into(), ATOM_NAMESPACE.into());
            channel.extensions.insert("atom".into(), BTreeMap::from([("link".to_string(), vec![link])]));
        }
        channel.items = self
            .state
            .torrents
            .iter()
            .rev()
            .map(|torrent| item(&self.log.name, self.links, torrent, self.links.torrent_url(&torrent.range)))
            .collect();
        let mut bytes = channel.pretty_write_to(Vec::new(), b' ', 2)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// The item of one torrent: its `.torrent` as the enclosure and link (at
/// `torrent_url`), the infohash as guid, its creation date as `pubDate`.
fn item(log_name: &str, links: &LogLinks, torrent: &PublishedTorrent, torrent_url: String) -> Item {
    let range = &torrent.range;
    let name = range.torrent_name(log_name);
    let magnet = links.magnet(torrent);
    let infohash = torrent.infohash.to_string();
    let element = |local: &str, value: String| {
        (
            local.to_string(),
            vec![Extension { name: format!("torrent:{local}"), value: Some(value), ..Extension::default() }],
        )
    };
    let torrent_elements = BTreeMap::from([
        element("infoHash", infohash.clone()),
        element("contentLength", torrent.data_size_bytes.to_string()),
        element("magnetURI", magnet),
        element("fileName", format!("{name}.torrent")),
    ]);
    Item {
        title: Some(name),
        // Clients that ignore enclosures fetch the item's link.
        link: Some(torrent_url.clone()),
        description: Some(format!(
            "Entries {} to {} of {} ({} entries): {} in {} files, verified against the log's tree head.",
            human::count(range.start),
            human::count(range.end - 1),
            log_name,
            human::count(range.entries()),
            human::size(torrent.data_size_bytes),
            human::count(torrent.file_count as u64),
        )),
        enclosure: Some(Enclosure {
            url: torrent_url,
            length: torrent.torrent_size.to_string(),
            mime_type: TORRENT_MIME.to_string(),
        }),
        guid: Some(Guid { value: infohash, permalink: false }),
        pub_date: Some(rfc2822(torrent.creation_time)),
        extensions: ExtensionMap::from([("torrent".to_string(), torrent_elements)]),
        ..Item::default()
    }
}

/// The all-logs feed at the site's root: the [`ALL_LOGS_ITEMS`] newest
/// torrents of every log, newest first, so that one subscription follows
/// every log. Its dates come from the logs' published state, like a log's
/// feed, so it changes only when a log's torrent list does.
pub struct AllLogsFeed<'a> {
    pub logs: &'a [LogSummary],
    /// The site's public URL (`feed_url_base`), for the channel's links.
    pub site: Option<&'a str>,
}

impl AllLogsFeed<'_> {
    pub fn render(&self) -> Result<Vec<u8>, rss::Error> {
        let site = self.site.map(|base| format!("{}/", base.trim_end_matches('/')));
        let mut channel = Channel {
            title: "Static CT logs over BitTorrent: every log".to_string(),
            link: site.as_ref().map_or_else(|| "index.html".to_string(), |site| format!("{site}index.html")),
            description: format!(
                "The newest verified tile torrents of every log published here (at most {ALL_LOGS_ITEMS}), \
                 newest first. Each log also has a feed of all its torrents."
            ),
            ttl: Some(TTL_MINUTES.to_string()),
            generator: Some(concat!("helio ", env!("CARGO_PKG_VERSION")).to_string()),
            ..Channel::default()
        };
        channel.namespaces.insert("torrent".into(), TORRENT_NAMESPACE.into());
        if let Some(site) = &site {
            let link = Extension {
                name: "atom:link".into(),
                attrs: BTreeMap::from([
                    ("href".to_string(), format!("{site}{FEED_XML}")),
                    ("rel".to_string(), "self".to_string()),
                    ("type".to_string(), "application/rss+xml".to_string()),
                ]),
                ..Extension::default()
            };
            channel.namespaces.insert("atom".into(), ATOM_NAMESPACE.into());
            channel.extensions.insert("atom".into(), BTreeMap::from([("link".to_string(), vec![link])]));
        }
        let mut newest: Vec<(&LogSummary, &PublishedTorrent)> =
            self.logs.iter().flat_map(|log| log.newest.iter().map(move |torrent| (log, torrent))).collect();
        newest.sort_by(|(a, x), (b, y)| {
            y.creation_time.cmp(&x.creation_time).then_with(|| a.name.cmp(&b.name)).then(y.range.cmp(&x.range))
        });
        newest.truncate(ALL_LOGS_ITEMS);
        if !newest.is_empty() {
            let updated = self.logs.iter().filter(|log| log.torrents > 0).map(|log| log.last_updated).max();
            channel.last_build_date = updated.map(rfc2822);
        }
        channel.items = newest
            .into_iter()
            .map(|(log, torrent)| {
                // Relative URLs are relative to the feed, at the root.
                let url = match &log.links.folder {
                    Some(_) => log.links.torrent_url(&torrent.range),
                    None => format!("{}/{}", url_segment(&log.name), log.links.torrent_url(&torrent.range)),
                };
                item(&log.name, &log.links, torrent, url)
            })
            .collect();
        let mut bytes = channel.pretty_write_to(Vec::new(), b' ', 2)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Unix seconds in the RFC 822 form RSS wants: `Wed, 18 Nov 2026 11:06:40 GMT`.
pub fn rfc2822(unix: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix))
}

#[cfg(test)]
mod tests {
    use rss::Channel;

    use super::*;
    use crate::site::sample::{HOSTILE, Sample, redact};
    use crate::torrent::range::TorrentRange;

    fn render(sample: &Sample, i: usize) -> String {
        let feed = Feed { log: &sample.config.logs[i], state: &sample.states[i], links: &sample.links[i] };
        String::from_utf8(feed.render().unwrap()).unwrap()
    }

    #[test]
    fn feed_snapshot() {
        insta::assert_snapshot!("feed", redact(&render(&Sample::new(), 0)));
    }

    #[test]
    fn items_are_newest_first_with_stable_dates() {
        let sample = Sample::new();
        let channel = Channel::read_from(render(&sample, 0).as_bytes()).unwrap();
        assert_eq!(channel.last_build_date(), Some(rfc2822(1_795_010_000).as_str()));
        assert_eq!(channel.ttl(), Some("60"));
        let titles: Vec<_> = channel.items().iter().filter_map(|i| i.title()).collect();
        assert_eq!(titles, ["demo-L01-2048-3072", "demo-L01-1024-2048", "demo-L01-0-1024"]);
        let newest = &channel.items()[0];
        assert_eq!(newest.pub_date(), Some("Wed, 18 Nov 2026 13:06:40 GMT"));
        let guid = newest.guid().unwrap();
        assert_eq!((guid.value(), guid.is_permalink()), (&*"12".repeat(20), false));
        let enclosure = newest.enclosure().unwrap();
        assert_eq!(enclosure.url(), "https://feeds.example.org/ct/demo/L01-2048-3072.torrent");
        assert_eq!((enclosure.length(), enclosure.mime_type()), ("2702", "application/x-bittorrent"));
        let torrent = &newest.extensions()["torrent"];
        let value = |name: &str| torrent[name][0].value().unwrap().to_string();
        assert_eq!(value("infoHash"), "12".repeat(20));
        assert_eq!(value("contentLength"), "1700002");
        assert_eq!(value("fileName"), "demo-L01-2048-3072.torrent");
        let magnet = value("magnetURI");
        assert!(magnet.starts_with(&format!("magnet:?xt=urn:btih:{}&dn=demo-L01-2048-3072&tr=", "12".repeat(20))));
        assert!(magnet.contains("&ws=https%3A%2F%2Fseed.example.org%2Fwebseed%2Fdemo%2F"), "{magnet}");
        assert!(magnet.ends_with("&xs=https%3A%2F%2Ffeeds.example.org%2Fct%2Fdemo%2FL01-2048-3072.torrent"));
    }

    #[test]
    fn hostile_names_and_urls_survive_escaping() {
        let sample = Sample::new();
        let text = render(&sample, 1);
        insta::assert_snapshot!("feed_hostile_empty", redact(&text));
        let channel = Channel::read_from(text.as_bytes()).unwrap();
        assert_eq!(channel.title(), format!("{HOSTILE} tile torrents"));
        assert!(channel.description().contains("(https://hostile.example.org/a&b<c>)"), "{}", channel.description());
        assert_eq!(channel.link(), "https://feeds.example.org/ct/a&b%20%3C%22c'%3E%20%C3%A9/index.html");
        assert!(channel.items().is_empty());
        // Nothing has been published, so there is no build date to give.
        assert_eq!(channel.last_build_date(), None);
    }

    #[test]
    fn without_a_public_url_the_feed_is_relative_and_has_no_self_link() {
        let mut sample = Sample::new();
        sample.links[0].folder = None;
        let text = render(&sample, 0);
        assert!(!text.contains("atom:link"), "{text}");
        let channel = Channel::read_from(text.as_bytes()).unwrap();
        assert_eq!(channel.items()[0].enclosure().unwrap().url(), "L01-2048-3072.torrent");
        assert_eq!(channel.link(), "index.html");
    }

    #[test]
    fn the_all_logs_feed_has_every_logs_newest_torrents_first() {
        let mut sample = Sample::new();
        // A second log with a newer torrent than any of demo's.
        let mut other = crate::site::sample::demo_state();
        other.name = "other".into();
        other.torrents.truncate(1);
        other.torrents[0].creation_time = 1_795_050_000;
        sample.states[1] = other;
        let mut logs = sample.summaries();
        logs[1].name = "other".into();
        logs[1].links.name = "other".into();
        logs[1].links.folder = Some("https://feeds.example.org/ct/other/".into());
        let text = AllLogsFeed { logs: &logs, site: Some("https://feeds.example.org/ct/") }.render().unwrap();
        let text = String::from_utf8(text).unwrap();
        let channel = Channel::read_from(text.as_bytes()).unwrap();
        let titles: Vec<_> = channel.items().iter().filter_map(|i| i.title()).collect();
        assert_eq!(titles, ["other-L01-0-1024", "demo-L01-2048-3072", "demo-L01-1024-2048", "demo-L01-0-1024"]);
        assert_eq!(channel.link(), "https://feeds.example.org/ct/index.html");
        assert!(text.contains("href=\"https://feeds.example.org/ct/feed.xml\""), "{text}");
        let enclosure = channel.items()[0].enclosure().unwrap();
        assert_eq!(enclosure.url(), "https://feeds.example.org/ct/other/L01-0-1024.torrent");
        assert_eq!(channel.last_build_date(), Some(rfc2822(1_795_010_000).as_str()));

        // Without the site's URL, links are relative to the feed at the root.
        for log in &mut logs {
            log.links.folder = None;
        }
        let text = AllLogsFeed { logs: &logs, site: None }.render().unwrap();
        let channel = Channel::read_from(&text[..]).unwrap();
        assert_eq!(channel.items()[1].enclosure().unwrap().url(), "demo/L01-2048-3072.torrent");
        assert_eq!(channel.link(), "index.html");
    }

    #[test]
    fn the_all_logs_feed_keeps_a_bounded_number_of_items() {
        let sample = Sample::new();
        let mut logs = sample.summaries();
        let newest = logs[0].newest[0].clone();
        logs[0].newest = (0..ALL_LOGS_ITEMS as u64 + 50)
            .map(|k| {
                let mut torrent = newest.clone();
                torrent.range = TorrentRange { start: k * 1024, end: (k + 1) * 1024 };
                torrent.creation_time = 1_795_000_000 + k;
                torrent
            })
            .collect();
        let text = AllLogsFeed { logs: &logs, site: None }.render().unwrap();
        let channel = Channel::read_from(&text[..]).unwrap();
        assert_eq!(channel.items().len(), ALL_LOGS_ITEMS);
        assert_eq!(channel.items()[0].title(), Some("demo-L01-152576-153600"));
    }
}
