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
//!
//! It also says how large an object of the kind may be when helio reads one
//! back (its state from a folder or a bucket, a `--resume-from` site, a
//! `--site`): far above anything helio writes, far below what would hurt,
//! so a damaged or hostile store costs a refusal naming the object rather
//! than the build's memory.

/// `Cache-Control` of files that change when a log grows.
pub const SHORT_CACHE: &str = "public, max-age=300";
/// `Cache-Control` of `.torrent` files: their bytes outside the info
/// dictionary may change (new web seeds or trackers), their infohash never.
pub const TORRENT_CACHE: &str = "public, max-age=86400";

/// The largest `.torrent` read: a hybrid torrent of a default range is
/// about 3 MB, a v1 one 0.4 MB.
pub const MAX_TORRENT: u64 = 16 << 20;
/// The largest `torrents.json`, feed or page read: some 20,000 torrents.
pub const MAX_LISTING: u64 = 16 << 20;
/// The largest checkpoint read: a signed note is a few hundred bytes.
pub const MAX_CHECKPOINT: u64 = 1 << 20;
/// The largest object of any other kind read (proof tiles are at most 8 KiB).
pub const MAX_OTHER: u64 = 1 << 20;

/// The HTTP metadata an object is stored with, and the size it may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectKind {
    pub content_type: &'static str,
    pub cache_control: &'static str,
    /// The largest object of the kind helio reads.
    pub max_size: u64,
}

impl ObjectKind {
    /// The kind of the object at `key` (a `/`-separated path in the site).
    pub fn of(key: &str) -> ObjectKind {
        let name = key.rsplit('/').next().unwrap_or(key);
        let extension = name.rsplit_once('.').map(|(_, extension)| extension.to_ascii_lowercase());
        let (content_type, max_size) = match extension.as_deref() {
            Some("torrent") => ("application/x-bittorrent", MAX_TORRENT),
            Some("xml") if name == "feed.xml" => ("application/rss+xml", MAX_LISTING),
            Some("rss") => ("application/rss+xml", MAX_LISTING),
            Some("xml") => ("application/xml", MAX_LISTING),
            Some("json") => ("application/json", MAX_LISTING),
            Some("html" | "htm") => ("text/html; charset=utf-8", MAX_LISTING),
            Some("css") => ("text/css; charset=utf-8", MAX_OTHER),
            Some("js") => ("text/javascript; charset=utf-8", MAX_OTHER),
            Some("svg") => ("image/svg+xml", MAX_OTHER),
            Some("png") => ("image/png", MAX_OTHER),
            Some("ico") => ("image/x-icon", MAX_OTHER),
            Some("txt" | "md") => ("text/plain; charset=utf-8", MAX_OTHER),
            None if name == "checkpoint" => ("text/plain; charset=utf-8", MAX_CHECKPOINT),
            _ => ("application/octet-stream", MAX_OTHER),
        };
        let cache_control = if extension.as_deref() == Some("torrent") { TORRENT_CACHE } else { SHORT_CACHE };
        ObjectKind { content_type, cache_control, max_size }
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
        assert_eq!(ObjectKind::of("demo/torrents.json").max_size, MAX_LISTING);
        assert_eq!(ObjectKind::of("demo/L01-0-1024.torrent").max_size, MAX_TORRENT);
        assert_eq!(ObjectKind::of("demo/checkpoint").max_size, MAX_CHECKPOINT);
        for (key, content_type, cache_control) in kinds {
            let kind = ObjectKind::of(key);
            assert_eq!((kind.content_type, kind.cache_control), (content_type, cache_control), "{key}");
        }
    }
}
