//! Which URL means what (docs/spec.md §6), and the handler that answers each request.
//!
//! Paths are checked by [`crate::http::path`] before anything else happens
//! (malformed escapes, `.`/`..`, empty segments, decoded `/`, `\`, NUL or
//! other control characters are 400). Only the patterns below lead
//! anywhere, so the server never becomes an open proxy: a webseed request
//! names a configured log and one of the few paths a tile torrent contains.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

use super::static_files::{Found, StaticFiles};
use super::stats::{LogStats, Stats};
use super::upstream::Upstream;
use crate::http::path::{BadPath, RequestPath};
use crate::http::response::{self, IMMUTABLE, OCTET_STREAM, Payload, Reply, Representation};
use crate::http::server::Handler;
use crate::log::checkpoint::Checkpoint;
use crate::log::tile::{Level, TILE_WIDTH, TileId};
use crate::tile_cache::{Lookup, OVERLOAD_RETRY, TileCache, UpstreamError, etag_of};
use crate::torrent::range::{CHECKPOINT, README, TorrentRange};

/// The largest `.pad/<n>` answered: pad files are shorter than a piece, and
/// pieces are at most 16 MiB.
pub const MAX_PAD: u64 = 16 << 20;

/// A request path, decoded and checked.
#[derive(Debug, PartialEq, Eq)]
pub enum ServeRoute<'a> {
    /// `/` and `/torrents`: redirect to `torrents/`.
    Home,
    /// `/torrents/<segments>`; `dir` when the path ends in `/`.
    Torrents {
        segments: Vec<Cow<'a, str>>,
        dir: bool,
    },
    /// `/webseed/<log>/<torrent name>/<file>`.
    WebSeed {
        log: Cow<'a, str>,
        torrent: Cow<'a, str>,
        file: WebSeedFile,
    },
    Statistics,
    StatisticsJson,
    Metrics,
    Healthz,
}

/// The file of a webseed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebSeedFile {
    Readme,
    /// A BEP 47 pad file of n zero bytes.
    Pad(u64),
    /// A tile: full, or a right-edge partial of a finished log's last torrent.
    Tile(TileId),
    /// The final checkpoint a finished log's last torrent carries.
    Checkpoint,
}

/// Why a path leads nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeRouteError {
    /// 400: the path itself is not acceptable (traversal, bad escapes, …).
    BadPath,
    /// 404: a fine path that names nothing here.
    NotFound,
}

impl<'a> ServeRoute<'a> {
    pub fn parse(path: &'a str) -> Result<ServeRoute<'a>, ServeRouteError> {
        let RequestPath { mut segments, dir } = RequestPath::parse(path).map_err(|BadPath| ServeRouteError::BadPath)?;
        let names: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
        // A trailing slash only means "folder" under /torrents/.
        if dir && names.first() != Some(&"torrents") {
            return Err(ServeRouteError::BadPath);
        }
        match names.as_slice() {
            [] => Ok(ServeRoute::Home),
            ["torrents"] if !dir => Ok(ServeRoute::Home),
            ["torrents", ..] => {
                segments.remove(0);
                Ok(ServeRoute::Torrents { segments, dir })
            }
            ["webseed", _, _, file @ ..] if !file.is_empty() => {
                let file = WebSeedFile::parse(file).ok_or(ServeRouteError::NotFound)?;
                let mut segments = segments.into_iter().skip(1);
                let (Some(log), Some(torrent)) = (segments.next(), segments.next()) else {
                    return Err(ServeRouteError::NotFound);
                };
                Ok(ServeRoute::WebSeed { log, torrent, file })
            }
            ["statistics"] => Ok(ServeRoute::Statistics),
            ["statistics.json"] => Ok(ServeRoute::StatisticsJson),
            ["metrics"] => Ok(ServeRoute::Metrics),
            ["healthz"] => Ok(ServeRoute::Healthz),
            _ => Err(ServeRouteError::NotFound),
        }
    }
}

impl WebSeedFile {
    /// The path inside the torrent, as decoded segments.
    fn parse(segments: &[&str]) -> Option<WebSeedFile> {
        match segments {
            [README] => Some(WebSeedFile::Readme),
            [".pad", n] => {
                let canonical =
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (*n == "0" || !n.starts_with('0'));
                let n: u64 = n.parse().ok().filter(|_| canonical)?;
                (n <= MAX_PAD).then_some(WebSeedFile::Pad(n))
            }
            ["tile", ..] => TileId::parse(&segments.join("/")).map(WebSeedFile::Tile),
            [CHECKPOINT] => Some(WebSeedFile::Checkpoint),
            _ => None,
        }
    }
}

/// One configured log as the server sees it.
pub struct ServedLog {
    pub name: String,
    /// The torrents' README.md, byte for byte, for the log's profile.
    pub readme: Bytes,
    pub readme_etag: HeaderValue,
    pub stats: Arc<LogStats>,
    /// The log has stopped growing: its last torrent holds partial tiles.
    pub is_final: bool,
    pub entries_per_torrent: u64,
}

impl ServedLog {
    /// Whether `file` can be part of torrent `torrent` of this log: full
    /// tiles of any torrent; partial tiles and the checkpoint only of a
    /// finished log's last torrent, and only the right edge of the tree that
    /// ends where the torrent ends (docs/final.md).
    fn admits(&self, torrent: &str, file: WebSeedFile) -> bool {
        let final_end = || {
            let range = torrent
                .strip_prefix(self.name.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|rest| TorrentRange::from_file_name(&format!("{rest}.torrent")));
            // The last torrent is the one shorter than the others.
            range.filter(|range| self.is_final && range.entries() < self.entries_per_torrent).map(|range| range.end)
        };
        match file {
            WebSeedFile::Tile(tile) if !tile.is_full() => final_end().is_some_and(|end| on_right_edge(tile, end)),
            WebSeedFile::Checkpoint => final_end().is_some(),
            _ => true,
        }
    }
}

/// Whether partial `tile` is the right edge of a tree of `size` entries.
fn on_right_edge(tile: TileId, size: u64) -> bool {
    let level = match tile.level {
        Level::Data => 0,
        Level::Hash(level) => level,
    };
    let count = size.checked_shr(8 * u32::from(level)).unwrap_or(0);
    tile.index == count / TILE_WIDTH && u64::from(tile.width) == count % TILE_WIDTH
}

/// The range of the torrent named in a `/webseed/<log>/<torrent>/…` path.
fn torrent_range(log: &str, path: &str) -> Option<TorrentRange> {
    let request = RequestPath::parse(path).ok()?;
    let torrent = request.segments.get(2)?;
    let rest = torrent.strip_prefix(log)?.strip_prefix('-')?;
    TorrentRange::from_file_name(&format!("{rest}.torrent"))
}

/// Everything a request may need.
pub struct App {
    logs: Vec<ServedLog>,
    by_name: HashMap<String, usize>,
    cache: Arc<TileCache>,
    upstream: Upstream,
    files: StaticFiles,
    pub stats: Arc<Stats>,
}

impl App {
    pub fn new(
        logs: Vec<ServedLog>,
        cache: Arc<TileCache>,
        upstream: Upstream,
        files: StaticFiles,
        stats: Arc<Stats>,
    ) -> App {
        let by_name = logs.iter().enumerate().map(|(i, log)| (log.name.clone(), i)).collect();
        App { logs, by_name, cache, upstream, files, stats }
    }

    async fn answer<B>(&self, request: &Request<B>) -> Reply {
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                self.stats.other_requests.fetch_add(1, Ordering::Relaxed);
                let mut reply = response::plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
                reply.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return reply;
            }
        };
        let route = match ServeRoute::parse(request.uri().path()) {
            Ok(route) => route,
            Err(error) => {
                self.stats.other_requests.fetch_add(1, Ordering::Relaxed);
                return match error {
                    ServeRouteError::BadPath => response::plain(StatusCode::BAD_REQUEST, "bad path"),
                    ServeRouteError::NotFound => response::plain(StatusCode::NOT_FOUND, "not found"),
                };
            }
        };
        if !matches!(route, ServeRoute::WebSeed { .. }) {
            self.stats.other_requests.fetch_add(1, Ordering::Relaxed);
        }
        match route {
            ServeRoute::Home => response::redirect("torrents/"),
            ServeRoute::Torrents { segments, dir } => match self.files.get(segments, dir).await {
                Found::File(rep) => response::represent(head, request.headers(), &rep, Some(self.files.meter())),
                Found::Redirect(location) => response::redirect(&location),
                Found::NotFound => response::plain(StatusCode::NOT_FOUND, "not found"),
                Found::Error(message) => {
                    // The operator's to fix; the client needs no server paths.
                    tracing::warn!("{message}");
                    response::plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read this file")
                }
            },
            ServeRoute::WebSeed { log, torrent, file } => match self.by_name.get(log.as_ref()) {
                Some(&index) if self.logs[index].admits(&torrent, file) => {
                    self.webseed(head, request, index, file).await
                }
                Some(&index) => {
                    self.logs[index].stats.requests.fetch_add(1, Ordering::Relaxed);
                    response::plain(StatusCode::NOT_FOUND, "not a file of this torrent")
                }
                None => {
                    self.stats.other_requests.fetch_add(1, Ordering::Relaxed);
                    response::plain(StatusCode::NOT_FOUND, "no such log")
                }
            },
            ServeRoute::Statistics => response::generated(head, "text/html; charset=utf-8", self.snapshot().html()),
            ServeRoute::StatisticsJson => response::generated(head, "application/json", self.snapshot().json()),
            ServeRoute::Metrics => {
                response::generated(head, "text/plain; version=0.0.4; charset=utf-8", self.snapshot().prometheus())
            }
            ServeRoute::Healthz => response::generated(head, "text/plain; charset=utf-8", b"ok\n".to_vec()),
        }
    }

    /// The tile memory budget, in bytes.
    pub fn tile_memory_limit(&self) -> u64 {
        self.cache.memory().limit()
    }

    fn snapshot(&self) -> super::stats::Snapshot {
        self.stats.snapshot(&self.cache)
    }

    async fn webseed<B>(&self, head: bool, request: &Request<B>, index: usize, file: WebSeedFile) -> Reply {
        let log = &self.logs[index];
        log.stats.requests.fetch_add(1, Ordering::Relaxed);
        let meter = Some(Arc::clone(&log.stats.bytes_served));
        let rep = match file {
            WebSeedFile::Readme => Representation {
                content: Payload::Bytes(log.readme.clone()),
                content_type: HeaderValue::from_static("text/markdown; charset=utf-8"),
                // The config may change: cache it for a day, not forever.
                cache_control: HeaderValue::from_static("public, max-age=86400"),
                etag: Some(log.readme_etag.clone()),
                last_modified: None,
            },
            WebSeedFile::Pad(n) => Representation {
                content: Payload::Zeros(n),
                content_type: OCTET_STREAM,
                cache_control: IMMUTABLE,
                etag: Some(etag_of(format!("pad {n}").as_bytes())),
                last_modified: None,
            },
            WebSeedFile::Tile(tile) => match self.tile(index, tile).await {
                Ok(rep) => rep,
                Err(error) => return upstream_error(&error),
            },
            WebSeedFile::Checkpoint => match self.final_checkpoint(index, request).await {
                Some(rep) => rep,
                None => return response::plain(StatusCode::NOT_FOUND, "no final checkpoint for this torrent"),
            },
        };
        response::represent(head, request.headers(), &rep, meter)
    }

    /// The finished log's checkpoint as published (`<log>/checkpoint` of the
    /// output folder), when its tree ends where the requested torrent does:
    /// the bytes the last torrent carries.
    async fn final_checkpoint<B>(&self, index: usize, request: &Request<B>) -> Option<Representation> {
        let log = &self.logs[index];
        let end = torrent_range(&log.name, request.uri().path())?.end;
        let segments = vec![Cow::Owned(log.name.clone()), Cow::Borrowed(CHECKPOINT)];
        let Found::File(rep) = self.files.get(segments, false).await else { return None };
        let Payload::Bytes(bytes) = &rep.content else { return None };
        let checkpoint = Checkpoint::parse(bytes).ok()?;
        (checkpoint.size == end).then_some(rep)
    }

    /// A full tile from the cache, or from the log (one fetch however many
    /// requests want it at once).
    async fn tile(&self, index: usize, tile: TileId) -> Result<Representation, UpstreamError> {
        let stats = &self.logs[index].stats;
        let found = match self.cache.lookup((index, tile), self.upstream.queue_limit(index)) {
            Lookup::Hit(found) => {
                stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                found
            }
            Lookup::NotFound => {
                stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Err(UpstreamError::NotFound);
            }
            Lookup::Wait { result, flight } => {
                stats.cache_misses.fetch_add(1, Ordering::Relaxed);
                if let Some(flight) = flight {
                    self.upstream.start(index, tile, flight, Arc::clone(stats), self.cache.memory());
                }
                self.upstream.wait(result).await?
            }
            Lookup::Overloaded => {
                stats.cache_misses.fetch_add(1, Ordering::Relaxed);
                self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                return Err(UpstreamError::Overloaded);
            }
        };
        Ok(Representation {
            content: Payload::Bytes(found.bytes),
            content_type: OCTET_STREAM,
            cache_control: IMMUTABLE,
            etag: Some(found.etag),
            last_modified: None,
        })
    }
}

impl Handler for App {
    async fn handle(&self, request: Request<hyper::body::Incoming>) -> Reply {
        let reply = self.answer(&request).await;
        self.stats.count_status(reply.status());
        tracing::trace!("{} {} {}", request.method(), request.uri().path(), reply.status().as_u16());
        reply
    }
}

/// What a client hears of a tile the log would not give (the fetch itself
/// logged why, once, however many requests were waiting for it).
fn upstream_error(error: &UpstreamError) -> Reply {
    match error {
        UpstreamError::NotFound => response::plain(StatusCode::NOT_FOUND, "not found on the log"),
        UpstreamError::Overloaded => {
            response::unavailable("too many tiles are being fetched; retry shortly", OVERLOAD_RETRY)
        }
        UpstreamError::RetryLater { message, after } => {
            response::unavailable(&format!("the log asked to retry later: {message}"), *after)
        }
        UpstreamError::Timeout(message) => {
            response::plain(StatusCode::GATEWAY_TIMEOUT, &format!("the log did not answer in time: {message}"))
        }
        UpstreamError::Failed(message) => {
            response::plain(StatusCode::BAD_GATEWAY, &format!("the log failed: {message}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webseed(log: &str, file: WebSeedFile) -> Result<ServeRoute<'_>, ServeRouteError> {
        Ok(ServeRoute::WebSeed { log: Cow::Borrowed(log), torrent: Cow::Borrowed("x"), file })
    }

    #[test]
    fn webseed_paths() {
        assert_eq!(
            ServeRoute::parse("/webseed/test/test-L01-0-1024/README.md"),
            Ok(ServeRoute::WebSeed {
                log: Cow::Borrowed("test"),
                torrent: Cow::Borrowed("test-L01-0-1024"),
                file: WebSeedFile::Readme
            })
        );
        assert_eq!(
            ServeRoute::parse("/webseed/test/x/tile/0/000"),
            webseed("test", WebSeedFile::Tile(TileId::hash(0, 0)))
        );
        assert_eq!(
            ServeRoute::parse("/webseed/test/x/tile/data/x001/234"),
            webseed("test", WebSeedFile::Tile(TileId::data(1234)))
        );
        assert_eq!(
            ServeRoute::parse("/webseed/test/x/tile/1/005"),
            webseed("test", WebSeedFile::Tile(TileId::hash(1, 5)))
        );
        assert_eq!(ServeRoute::parse("/webseed/test/x/.pad/16384"), webseed("test", WebSeedFile::Pad(16384)));
        assert_eq!(ServeRoute::parse("/webseed/test/x/.pad/0"), webseed("test", WebSeedFile::Pad(0)));
        // Escaped names and files decode; names may hold spaces, & and non-ASCII.
        assert_eq!(
            ServeRoute::parse("/webseed/two%20%26%20%C3%BC/n/%74ile/data/000"),
            Ok(ServeRoute::WebSeed {
                log: Cow::Owned("two & ü".into()),
                torrent: Cow::Borrowed("n"),
                file: WebSeedFile::Tile(TileId::data(0))
            })
        );
    }

    #[test]
    fn partial_tiles_and_the_checkpoint_belong_only_to_a_finished_logs_last_torrent() {
        let log = |is_final| ServedLog {
            name: "demo".into(),
            readme: Bytes::new(),
            readme_etag: HeaderValue::from_static("\"x\""),
            stats: Arc::new(LogStats::new("demo")),
            is_final,
            entries_per_torrent: 1024,
        };
        let (growing, finished) = (log(false), log(true));
        let partial = |level: Option<u8>, index, width| {
            let tile = match level {
                Some(level) => TileId::hash(level, index),
                None => TileId::data(index),
            };
            WebSeedFile::Tile(tile.with_width(width))
        };
        let last = "demo-L01-4096-5000";
        for file in
            [partial(None, 19, 136), partial(Some(0), 19, 136), partial(Some(1), 0, 19), WebSeedFile::Checkpoint]
        {
            assert!(finished.admits(last, file), "{file:?}");
            assert!(!growing.admits(last, file), "{file:?} of a growing log");
            assert!(!finished.admits("demo-L01-0-1024", file), "{file:?} of another torrent");
            assert!(!finished.admits("other-L01-4096-5000", file), "{file:?} of another log's name");
        }
        for file in [partial(None, 19, 135), partial(None, 18, 136), partial(Some(1), 0, 18), partial(Some(2), 0, 1)] {
            assert!(!finished.admits(last, file), "{file:?} is not the right edge of 5000");
        }
        assert!(growing.admits("demo-L01-0-1024", WebSeedFile::Tile(TileId::data(3))), "full tiles as ever");
        assert_eq!(
            ServeRoute::parse("/webseed/demo/demo-L01-4096-5000/checkpoint"),
            Ok(ServeRoute::WebSeed {
                log: Cow::Borrowed("demo"),
                torrent: Cow::Borrowed("demo-L01-4096-5000"),
                file: WebSeedFile::Checkpoint
            })
        );
    }

    #[test]
    fn webseed_paths_outside_the_patterns_are_not_found() {
        for path in [
            "/webseed/test/x/tile/data/0",
            "/webseed/test/x/tile/data/1000",
            "/webseed/test/x/tile/entries/000",
            "/webseed/test/x/issuer/abcd",
            "/webseed/test/x/readme.md",
            "/webseed/test/x/README.md/x",
            "/webseed/test/x/.pad/016",
            "/webseed/test/x/.pad/-1",
            "/webseed/test/x/.pad/16777217",
            "/webseed/test/x/.pad",
            "/webseed/test/README.md",
            "/webseed/test",
            "/webseed",
            "/tile/data/000",
            "/favicon.ico",
        ] {
            assert_eq!(ServeRoute::parse(path), Err(ServeRouteError::NotFound), "{path}");
        }
    }

    #[test]
    fn traversal_and_malformed_paths_are_refused() {
        for path in [
            "/webseed/test/x/../../../etc/passwd",
            "/webseed/test/x/%2e%2e/tile/data/000",
            "/webseed/test/x/%2E%2E/%2E%2E/helio.yaml",
            "/webseed/test/x/tile%2fdata%2f000",
            "/webseed/test/x/tile/data/000%00",
            "/webseed/test/x/tile%5cdata/000",
            "/webseed/test/x/tile\\data/000",
            "/webseed/test//tile/data/000",
            "/webseed/test/x/tile/data/000/",
            "/webseed/test/./tile/data/000",
            "/webseed/%/x/tile/data/000",
            "/webseed/%zz/x/tile/data/000",
            "/webseed/%c3/x/tile/data/000",
            "/webseed/test/x/tile/data/00%0a",
            "/torrents/../helio.yaml",
            "/torrents/%2e%2e/helio.yaml",
            "/torrents/test/..",
            "/torrents//etc",
            "//etc/passwd",
            "/statistics/",
            "relative",
            "*",
        ] {
            assert_eq!(ServeRoute::parse(path), Err(ServeRouteError::BadPath), "{path}");
        }
    }

    #[test]
    fn site_paths() {
        assert_eq!(ServeRoute::parse("/"), Ok(ServeRoute::Home));
        assert_eq!(ServeRoute::parse("/torrents"), Ok(ServeRoute::Home));
        assert_eq!(ServeRoute::parse("/torrents/"), Ok(ServeRoute::Torrents { segments: vec![], dir: true }));
        assert_eq!(
            ServeRoute::parse("/torrents/my%20log/feed.xml"),
            Ok(ServeRoute::Torrents {
                segments: vec![Cow::Owned("my log".into()), Cow::Borrowed("feed.xml")],
                dir: false
            })
        );
        assert_eq!(
            ServeRoute::parse("/torrents/test/"),
            Ok(ServeRoute::Torrents { segments: vec!["test".into()], dir: true })
        );
        assert_eq!(ServeRoute::parse("/statistics"), Ok(ServeRoute::Statistics));
        assert_eq!(ServeRoute::parse("/statistics.json"), Ok(ServeRoute::StatisticsJson));
        assert_eq!(ServeRoute::parse("/metrics"), Ok(ServeRoute::Metrics));
        assert_eq!(ServeRoute::parse("/healthz"), Ok(ServeRoute::Healthz));
    }
}
