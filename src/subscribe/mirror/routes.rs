//! The monitoring prefix of C2SP static-ct-api as `helio mirror` serves it:
//! `/checkpoint`, `/tile/<L>/<N>[.p/<W>]`, `/tile/data/<N>[.p/<W>]` and
//! `/issuer/<fingerprint>`, and nothing else.
//!
//! Paths are checked by [`crate::http::path`] first (malformed escapes,
//! `.`/`..`, empty segments, decoded `/`, `\`, NUL or other control
//! characters are 400); then only a canonical tile path of the checkpoint's
//! tree, or an issuer's 64 lower-case hex digits, leads anywhere. Nothing
//! else reaches the disk or the upstream, so the mirror is never an open
//! proxy. Tiles are cached in memory, bounded in bytes, and concurrent
//! requests for a tile not cached share one read or fetch
//! ([`crate::serve::cache`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

use super::tiles::{MirrorTiles, TileError};
use crate::http::path::{BadPath, RequestPath};
use crate::http::response::{self, IMMUTABLE, OCTET_STREAM, Payload, Reply, Representation};
use crate::http::server::Handler;
use crate::log::tile::TileId;
use crate::tile_cache::{CacheKey, Lookup, OVERLOAD_RETRY, Tile, TileCache, UpstreamError, etag_of};

/// Reads and fetches under way at once; past this, a miss is 503.
const MAX_FLIGHTS: usize = 64;

/// A request path, decoded and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorRoute {
    Checkpoint,
    Tile(TileId),
    /// An issuer certificate by the SHA-256 of its DER bytes.
    Issuer([u8; 32]),
}

/// Why a path leads nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorRouteError {
    /// 400: the path itself is not acceptable (traversal, bad escapes, …).
    BadPath,
    /// 404: a fine path that names nothing here.
    NotFound,
}

impl MirrorRoute {
    pub fn parse(path: &str) -> Result<MirrorRoute, MirrorRouteError> {
        let request = RequestPath::parse(path).map_err(|BadPath| MirrorRouteError::BadPath)?;
        if request.dir {
            return Err(MirrorRouteError::BadPath);
        }
        let names = request.names();
        match names.as_slice() {
            ["checkpoint"] => Ok(MirrorRoute::Checkpoint),
            // Decoded segments hold no `/`, so joining them back is the path.
            ["tile", ..] => TileId::parse(&names.join("/")).map(MirrorRoute::Tile).ok_or(MirrorRouteError::NotFound),
            ["issuer", hex] => fingerprint(hex).map(MirrorRoute::Issuer).ok_or(MirrorRouteError::NotFound),
            _ => Err(MirrorRouteError::NotFound),
        }
    }
}

/// 64 lower-case hex digits as 32 bytes.
fn fingerprint(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// What the cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MirrorKey {
    Tile(TileId),
    Issuer([u8; 32]),
}

impl CacheKey for MirrorKey {
    fn group(&self) -> usize {
        0
    }
}

/// The mirror's state, shared by every request.
pub struct Mirror {
    tiles: Arc<MirrorTiles>,
    cache: Arc<TileCache<MirrorKey>>,
    checkpoint: Bytes,
    checkpoint_etag: HeaderValue,
    /// Names the tree in tile ETags: a tile path means one thing per log.
    origin: String,
    /// How long a request waits for a read or fetch before its 504.
    wait: Duration,
}

impl Mirror {
    pub fn new(
        tiles: Arc<MirrorTiles>,
        cache: Arc<TileCache<MirrorKey>>,
        checkpoint: Bytes,
        origin: String,
        wait: Duration,
    ) -> Mirror {
        Mirror { tiles, cache, checkpoint_etag: etag_of(&checkpoint), checkpoint, origin, wait }
    }

    async fn answer<B>(&self, request: &Request<B>) -> Reply {
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut reply = response::plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
                reply.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return reply;
            }
        };
        let route = match MirrorRoute::parse(request.uri().path()) {
            Ok(route) => route,
            Err(MirrorRouteError::BadPath) => return response::plain(StatusCode::BAD_REQUEST, "bad path"),
            Err(MirrorRouteError::NotFound) => return response::plain(StatusCode::NOT_FOUND, "not found"),
        };
        let rep = match route {
            MirrorRoute::Checkpoint => Representation {
                content: Payload::Bytes(self.checkpoint.clone()),
                content_type: HeaderValue::from_static("text/plain; charset=utf-8"),
                // The same until the mirror restarts on a newer one.
                cache_control: HeaderValue::from_static("no-cache"),
                etag: Some(self.checkpoint_etag.clone()),
                last_modified: None,
            },
            MirrorRoute::Tile(tile) if !self.tiles.in_tree(tile) => {
                return response::plain(StatusCode::NOT_FOUND, "not a tile of the checkpoint's tree");
            }
            MirrorRoute::Tile(tile) => match self.cached(MirrorKey::Tile(tile)).await {
                Ok(found) => representation(found, OCTET_STREAM),
                Err(error) => return failure(&error),
            },
            MirrorRoute::Issuer(_) if !self.tiles.has_upstream() => {
                return response::plain(StatusCode::NOT_FOUND, "no --upstream to fetch issuers from");
            }
            MirrorRoute::Issuer(fingerprint) => match self.cached(MirrorKey::Issuer(fingerprint)).await {
                Ok(found) => representation(found, HeaderValue::from_static("application/pkix-cert")),
                Err(error) => return failure(&error),
            },
        };
        response::represent(head, request.headers(), &rep, None)
    }

    /// `key` from the cache, or read or fetched once however many requests
    /// want it at once.
    async fn cached(&self, key: MirrorKey) -> Result<Tile, UpstreamError> {
        match self.cache.lookup(key, MAX_FLIGHTS) {
            Lookup::Hit(found) => Ok(found),
            Lookup::NotFound => Err(UpstreamError::NotFound),
            Lookup::Overloaded => Err(UpstreamError::Overloaded),
            Lookup::Wait { mut result, flight } => {
                if let Some(flight) = flight {
                    let tiles = Arc::clone(&self.tiles);
                    let etag = etag_of(format!("{}/{}", self.origin, describe(key)).as_bytes());
                    // Its own task: a client hanging up does not cancel it.
                    tokio::spawn(async move {
                        let fetched = tokio::task::spawn_blocking(move || match key {
                            MirrorKey::Tile(tile) => tiles.get(tile),
                            MirrorKey::Issuer(fingerprint) => tiles.issuer(&fingerprint),
                        })
                        .await;
                        let outcome = match fetched {
                            Ok(Ok(bytes)) => Ok(Tile { bytes, etag }),
                            Ok(Err(error)) => Err(refusal(key, error)),
                            Err(error) => Err(UpstreamError::Failed(format!("read task failed: {error}"))),
                        };
                        flight.complete(outcome);
                    });
                }
                match tokio::time::timeout(self.wait, result.wait_for(Option::is_some)).await {
                    Err(_) => Err(UpstreamError::Timeout(format!("no answer within {}s", self.wait.as_secs()))),
                    Ok(Err(_)) => Err(UpstreamError::Failed("the read was abandoned".into())),
                    Ok(Ok(outcome)) => {
                        outcome.clone().unwrap_or_else(|| Err(UpstreamError::Failed("no result".into())))
                    }
                }
            }
        }
    }
}

impl Handler for Mirror {
    async fn handle(&self, request: Request<hyper::body::Incoming>) -> Reply {
        let reply = self.answer(&request).await;
        tracing::trace!("{} {} {}", request.method(), request.uri().path(), reply.status().as_u16());
        reply
    }
}

fn describe(key: MirrorKey) -> String {
    match key {
        MirrorKey::Tile(tile) => tile.path(),
        MirrorKey::Issuer(fingerprint) => {
            format!("issuer/{}", hex::encode(fingerprint))
        }
    }
}

/// What a waiting client hears of a tile that could not be had; a tile that
/// did not verify is logged once, however many requests waited for it.
fn refusal(key: MirrorKey, error: TileError) -> UpstreamError {
    if error.is_not_found() {
        tracing::debug!("{}: {error}", describe(key));
        return UpstreamError::NotFound;
    }
    match error {
        TileError::Fetch(error) | TileError::Tree(crate::log::verify::VerifyError::Fetch(error)) => {
            tracing::warn!("{error}");
            UpstreamError::from_fetch(error)
        }
        error => {
            let message = crate::error_chain::one_line(&error);
            tracing::warn!("refused {}: {message}", describe(key));
            UpstreamError::Failed(message)
        }
    }
}

/// Tiles and issuers never change (C2SP tlog-tiles): cached forever downstream.
fn representation(found: Tile, content_type: HeaderValue) -> Representation {
    Representation {
        content: Payload::Bytes(found.bytes),
        content_type,
        cache_control: IMMUTABLE,
        etag: Some(found.etag),
        last_modified: None,
    }
}

fn failure(error: &UpstreamError) -> Reply {
    match error {
        UpstreamError::NotFound => response::plain(StatusCode::NOT_FOUND, "not in the downloaded ranges"),
        UpstreamError::Overloaded => {
            response::unavailable("too many tiles are being read; retry shortly", OVERLOAD_RETRY)
        }
        UpstreamError::RetryLater { message, after } => {
            response::unavailable(&format!("the upstream asked to retry later: {message}"), *after)
        }
        UpstreamError::Timeout(message) => {
            response::plain(StatusCode::GATEWAY_TIMEOUT, &format!("no answer in time: {message}"))
        }
        // The message may name local paths: the operator's log has it.
        UpstreamError::Failed(_) => {
            response::plain(StatusCode::BAD_GATEWAY, "the tile did not verify or could not be read")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_ct_paths() {
        assert_eq!(MirrorRoute::parse("/checkpoint"), Ok(MirrorRoute::Checkpoint));
        assert_eq!(MirrorRoute::parse("/tile/0/x001/234"), Ok(MirrorRoute::Tile(TileId::hash(0, 1234))));
        assert_eq!(MirrorRoute::parse("/tile/data/005.p/17"), Ok(MirrorRoute::Tile(TileId::data(5).with_width(17))));
        assert_eq!(MirrorRoute::parse("/tile/2/000.p/1"), Ok(MirrorRoute::Tile(TileId::hash(2, 0).with_width(1))));
        assert_eq!(MirrorRoute::parse("/%74ile/data/000"), Ok(MirrorRoute::Tile(TileId::data(0))));
        let hex = "0f".repeat(32);
        assert_eq!(MirrorRoute::parse(&format!("/issuer/{hex}")), Ok(MirrorRoute::Issuer([0x0f; 32])));
    }

    #[test]
    fn anything_else_is_refused_or_not_found() {
        for path in [
            "/",
            "/checkpoint.sig",
            "/tile/data/x1000",
            "/tile/data/1000",
            "/tile/data/0",
            "/tile/0/000.p/0",
            "/tile/0/000.p/256",
            "/tile/0/000.p/x",
            "/tile/a/000",
            "/tile/256/000",
            "/tile/data/000/extra",
            "/issuer/00",
            &format!("/issuer/{}", "0F".repeat(32)),
            &format!("/issuer/{}", "0g".repeat(32)),
            "/webseed/x/y/tile/data/000",
            "/torrents/",
        ] {
            assert!(MirrorRoute::parse(path).is_err(), "{path}");
        }
        for path in [
            "/tile/../checkpoint",
            "/tile/%2e%2e/checkpoint",
            "/tile%2fdata%2f000",
            "/tile/data/000%00",
            "/tile\\data\\000",
            "/tile//data/000",
            "/checkpoint/",
            "relative",
        ] {
            assert_eq!(MirrorRoute::parse(path), Err(MirrorRouteError::BadPath), "{path}");
        }
    }
}
