//! What an object of the site is, by its name: the `Content-Type` a static
//! host must send for it and how long a browser or CDN may keep it. This is
//! the one table of it: a bucket stores every object with these headers and
//! `helio serve` sends them for the same files, so a site looks the same
//! from either.
//!
//! Nothing of the site is immutable for good: a `.torrent`'s range is never
//! rebuilt, but its web seeds and trackers are rewritten when the config's
//! change (docs/spec.md §4.3), so it is kept a day; feeds, JSON, pages, the
//! checkpoint and proof tiles change with every run that finds something
//! new, so they are kept five minutes.

/// `Cache-Control` of files that change when a log grows.
pub const SHORT_CACHE: &str = "public, max-age=300";
/// `Cache-Control` of `.torrent` files: their bytes outside the info
/// dictionary may change (new web seeds or trackers), their infohash never.
pub const TORRENT_CACHE: &str = "public, max-age=86400";

/// The HTTP metadata an object is stored with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectKind {
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

impl ObjectKind {
    /// The kind of the object at `key` (a `/`-separated path in the site).
    pub fn of(key: &str) -> ObjectKind {
        let name = key.rsplit('/').next().unwrap_or(key);
        let extension = name.rsplit_once('.').map(|(_, extension)| extension.to_ascii_lowercase());
        let content_type = match extension.as_deref() {
            Some("torrent") => "application/x-bittorrent",
            Some("xml") if name == "feed.xml" => "application/rss+xml",
            Some("rss") => "application/rss+xml",
            Some("xml") => "application/xml",
            Some("json") => "application/json",
            Some("html" | "htm") => "text/html; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            Some("ico") => "image/x-icon",
            Some("txt" | "md") => "text/plain; charset=utf-8",
            None if name == "checkpoint" => "text/plain; charset=utf-8",
            _ => "application/octet-stream",
        };
        let cache_control = if extension.as_deref() == Some("torrent") { TORRENT_CACHE } else { SHORT_CACHE };
        ObjectKind { content_type, cache_control }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_site_has_its_type_and_lifetime() {
        let kinds = [
            ("demo/L01-0-1048576.torrent", "application/x-bittorrent", TORRENT_CACHE),
            ("feed.xml", "application/rss+xml", SHORT_CACHE),
            ("sitemap.xml", "application/xml", SHORT_CACHE),
            ("log-list.json", "application/json", SHORT_CACHE),
            ("demo/tile/1/000.p/3", "application/octet-stream", SHORT_CACHE),
            ("demo/feed.xml", "application/rss+xml", SHORT_CACHE),
            ("demo/torrents.json", "application/json", SHORT_CACHE),
            ("demo/status.json", "application/json", SHORT_CACHE),
            ("logs.json", "application/json", SHORT_CACHE),
            ("index.html", "text/html; charset=utf-8", SHORT_CACHE),
            ("demo/index.html", "text/html; charset=utf-8", SHORT_CACHE),
            ("style.css", "text/css; charset=utf-8", SHORT_CACHE),
            ("demo/checkpoint", "text/plain; charset=utf-8", SHORT_CACHE),
            ("odd.name.v2/checkpoint", "text/plain; charset=utf-8", SHORT_CACHE),
            ("demo/other", "application/octet-stream", SHORT_CACHE),
        ];
        for (key, content_type, cache_control) in kinds {
            assert_eq!(ObjectKind::of(key), ObjectKind { content_type, cache_control }, "{key}");
        }
    }
}
