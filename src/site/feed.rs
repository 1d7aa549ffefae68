//! `feed.xml` (SPEC §5): an RSS 2.0 feed per log in the form BEP 36 and
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

use crate::config::LogConfig;

use super::human;
use super::links::LogLinks;
use super::state::{LogState, PublishedTorrent};

pub const FEED_XML: &str = "feed.xml";
pub const TORRENT_NAMESPACE: &str = "http://xmlns.ezrss.it/0.1/";
const ATOM_NAMESPACE: &str = "http://www.w3.org/2005/Atom";
const TORRENT_MIME: &str = "application/x-bittorrent";
/// Minutes a reader may cache the feed. New ranges complete hours or days
/// apart, so polling more often than hourly only costs the host.
pub const TTL_MINUTES: u32 = 60;

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
        channel.items = self.state.torrents.iter().rev().map(|torrent| self.item(torrent)).collect();
        let mut bytes = channel.pretty_write_to(Vec::new(), b' ', 2)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    fn item(&self, torrent: &PublishedTorrent) -> Item {
        let range = &torrent.range;
        let name = range.torrent_name(&self.log.name);
        let torrent_url = self.links.torrent_url(range);
        let magnet = self.links.magnet(torrent);
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
                self.log.name,
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
}
