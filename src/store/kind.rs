//! What an object of the site is, by its name: the `Content-Type` a static
//! host must send for it and how long a browser or CDN may keep it. A
//! `.torrent` never changes once written (SPEC §4.1: published ranges are
//! never rebuilt), so it is cached for a year; feeds, JSON, pages and the
//! checkpoint change with every new range, so they are kept five minutes.

/// `Cache-Control` of files that change when a log grows.
pub const SHORT_CACHE: &str = "public, max-age=300";
/// `Cache-Control` of `.torrent` files.
pub const IMMUTABLE_CACHE: &str = "public, max-age=31536000, immutable";

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
        let extension = name.rsplit_once('.').map(|(_, extension)| extension);
        let (content_type, cache_control) = match (name, extension) {
            (_, Some("torrent")) => ("application/x-bittorrent", IMMUTABLE_CACHE),
            (_, Some("xml")) => ("application/rss+xml", SHORT_CACHE),
            (_, Some("json")) => ("application/json", SHORT_CACHE),
            (_, Some("html")) => ("text/html; charset=utf-8", SHORT_CACHE),
            (_, Some("css")) => ("text/css; charset=utf-8", SHORT_CACHE),
            ("checkpoint", None) => ("text/plain; charset=utf-8", SHORT_CACHE),
            _ => ("application/octet-stream", SHORT_CACHE),
        };
        ObjectKind { content_type, cache_control }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_site_has_its_type_and_lifetime() {
        let kinds = [
            ("demo/L01-0-1048576.torrent", "application/x-bittorrent", IMMUTABLE_CACHE),
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
