//! Building responses: the body type every handler answers with, and the
//! one place where conditional requests ([`super::conditional`]), `Range`
//! ([`super::byte_range`]) and `HEAD` are applied to a representation.
//!
//! Bodies are never content-encoded: BitTorrent clients and tlog clients
//! hash the raw bytes. Bodies in memory are `Bytes`, so a range of a cached
//! tile is a slice of it, not a copy.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::byte_range::RangeReply;
use super::conditional::{not_modified, range_applies};

pub type Reply = Response<ResponseBody>;

/// `.pad/<n>` bodies are streamed from this block of zeros.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A response body: bytes in memory, or a run of zero bytes. Each data frame
/// handed to the connection is added to `meter` (bytes served).
pub struct ResponseBody {
    data: Data,
    meter: Option<Arc<AtomicU64>>,
}

enum Data {
    Bytes(Option<Bytes>),
    Zeros(u64),
}

impl ResponseBody {
    pub fn empty() -> ResponseBody {
        ResponseBody { data: Data::Bytes(None), meter: None }
    }

    pub fn bytes(bytes: impl Into<Bytes>) -> ResponseBody {
        let bytes: Bytes = bytes.into();
        ResponseBody { data: Data::Bytes((!bytes.is_empty()).then_some(bytes)), meter: None }
    }

    fn zeros(len: u64) -> ResponseBody {
        ResponseBody { data: Data::Zeros(len), meter: None }
    }

    fn metered(mut self, meter: Option<Arc<AtomicU64>>) -> ResponseBody {
        self.meter = meter;
        self
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let chunk = match &mut self.data {
            Data::Bytes(bytes) => bytes.take(),
            Data::Zeros(0) => None,
            Data::Zeros(left) => {
                let n = (*left).min(ZEROS.len() as u64);
                *left -= n;
                Some(Bytes::from_static(&ZEROS[..n as usize]))
            }
        };
        if let (Some(chunk), Some(meter)) = (&chunk, &self.meter) {
            meter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.data {
            Data::Bytes(bytes) => bytes.is_none(),
            Data::Zeros(left) => *left == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.data {
            Data::Bytes(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Data::Zeros(left) => SizeHint::with_exact(*left),
        }
    }
}

/// The content of a representation.
#[derive(Clone, Debug)]
pub enum Payload {
    Bytes(Bytes),
    Zeros(u64),
}

impl Payload {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> u64 {
        match self {
            Payload::Bytes(bytes) => bytes.len() as u64,
            Payload::Zeros(n) => *n,
        }
    }

    fn slice(&self, start: u64, end_inclusive: u64) -> ResponseBody {
        match self {
            Payload::Bytes(bytes) => ResponseBody::bytes(bytes.slice(start as usize..=end_inclusive as usize)),
            Payload::Zeros(_) => ResponseBody::zeros(end_inclusive + 1 - start),
        }
    }

    fn whole(&self) -> ResponseBody {
        match self {
            Payload::Bytes(bytes) => ResponseBody::bytes(bytes.clone()),
            Payload::Zeros(n) => ResponseBody::zeros(*n),
        }
    }
}

/// What a route found: the bytes and the headers that describe them.
pub struct Representation {
    pub content: Payload,
    pub content_type: HeaderValue,
    pub cache_control: HeaderValue,
    /// A strong validator.
    pub etag: Option<HeaderValue>,
    pub last_modified: Option<SystemTime>,
}

pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
pub const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");
pub const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const BYTES: HeaderValue = HeaderValue::from_static("bytes");

/// Answers a GET (or, with `head`, a HEAD) for `rep`, honouring the request's
/// conditional and range headers. Body bytes sent are added to `meter`.
pub fn represent(head: bool, request: &HeaderMap, rep: &Representation, meter: Option<Arc<AtomicU64>>) -> Reply {
    let len = rep.content.len();
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, BYTES)
        .header(header::CACHE_CONTROL, rep.cache_control.clone());
    if let Some(etag) = &rep.etag {
        builder = builder.header(header::ETAG, etag.clone());
    }
    if let Some(modified) = rep.last_modified {
        builder = builder.header(header::LAST_MODIFIED, httpdate::fmt_http_date(modified));
    }
    if not_modified(request, rep.etag.as_ref(), rep.last_modified) {
        return finish(builder.status(StatusCode::NOT_MODIFIED), ResponseBody::empty());
    }
    let range = if range_applies(request, rep.etag.as_ref(), rep.last_modified) {
        RangeReply::for_header(request.get(header::RANGE).map(HeaderValue::as_bytes), len)
    } else {
        RangeReply::Full
    };
    if let Some(content_range) = range.content_range(len) {
        builder = builder.header(header::CONTENT_RANGE, content_range);
    }
    let (status, length, body) = match range {
        RangeReply::Full => (StatusCode::OK, len, rep.content.whole()),
        RangeReply::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, end + 1 - start, rep.content.slice(start, end))
        }
        RangeReply::Unsatisfiable => {
            builder = builder.header(header::CONTENT_TYPE, TEXT_PLAIN);
            return finish(
                builder.status(StatusCode::RANGE_NOT_SATISFIABLE).header(header::CONTENT_LENGTH, 0),
                ResponseBody::empty(),
            );
        }
    };
    let builder = builder
        .status(status)
        .header(header::CONTENT_TYPE, rep.content_type.clone())
        .header(header::CONTENT_LENGTH, length);
    // HEAD: the same headers, and hyper keeps our Content-Length for an empty body.
    let body = if head { ResponseBody::empty() } else { body.metered(meter) };
    finish(builder, body)
}

/// A short text answer that no cache keeps.
pub fn plain(status: StatusCode, message: &str) -> Reply {
    let body = format!("{message}\n");
    finish(
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, TEXT_PLAIN)
            .header(header::CACHE_CONTROL, NO_STORE)
            .header(header::CONTENT_LENGTH, body.len()),
        ResponseBody::bytes(body),
    )
}

/// 503 with `Retry-After`.
pub fn unavailable(message: &str, retry_after: Duration) -> Reply {
    let mut reply = plain(StatusCode::SERVICE_UNAVAILABLE, message);
    reply.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    reply
}

/// A redirect to `location` (relative, so it works below any path prefix).
pub fn redirect(location: &str) -> Reply {
    let mut reply = plain(StatusCode::MOVED_PERMANENTLY, &format!("see {location}"));
    if let Ok(value) = HeaderValue::from_str(location) {
        reply.headers_mut().insert(header::LOCATION, value);
    }
    reply
}

/// A generated page or document (statistics, metrics): never cached.
pub fn generated(head: bool, content_type: &'static str, body: Vec<u8>) -> Reply {
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))
        .header(header::CACHE_CONTROL, NO_STORE)
        .header(header::CONTENT_LENGTH, body.len());
    finish(builder, if head { ResponseBody::empty() } else { ResponseBody::bytes(body) })
}

/// Builds the response; every header value above is valid, so this cannot
/// fail, but a failure still yields a response rather than a panic.
fn finish(builder: hyper::http::response::Builder, body: ResponseBody) -> Reply {
    builder.body(body).unwrap_or_else(|_| {
        let mut reply = Response::new(ResponseBody::empty());
        *reply.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        reply
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn rep(bytes: &'static [u8]) -> Representation {
        Representation {
            content: Payload::Bytes(Bytes::from_static(bytes)),
            content_type: OCTET_STREAM,
            cache_control: IMMUTABLE,
            etag: Some(HeaderValue::from_static("\"abc\"")),
            last_modified: None,
        }
    }

    fn request(headers: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn body(reply: Reply) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async { reply.into_body().collect().await.unwrap().to_bytes().to_vec() })
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn ranges_heads_and_whole_bodies() {
        let rep = rep(b"0123456789");
        let reply = represent(false, &request(&[]), &rep, None);
        assert_eq!(reply.status(), 200);
        assert_eq!(header(&reply, "content-length"), Some("10"));
        assert_eq!(header(&reply, "accept-ranges"), Some("bytes"));
        assert_eq!(header(&reply, "cache-control"), Some("public, max-age=31536000, immutable"));
        assert_eq!(header(&reply, "etag"), Some("\"abc\""));
        assert_eq!(header(&reply, "content-encoding"), None);
        assert_eq!(body(reply), b"0123456789");

        let meter = Arc::new(AtomicU64::new(0));
        let reply = represent(false, &request(&[("range", "bytes=2-4")]), &rep, Some(meter.clone()));
        assert_eq!(reply.status(), 206);
        assert_eq!(header(&reply, "content-range"), Some("bytes 2-4/10"));
        assert_eq!(header(&reply, "content-length"), Some("3"));
        assert_eq!(body(reply), b"234");
        assert_eq!(meter.load(Ordering::Relaxed), 3);

        let reply = represent(true, &request(&[("range", "bytes=-3")]), &rep, Some(meter.clone()));
        assert_eq!(reply.status(), 206);
        assert_eq!(header(&reply, "content-range"), Some("bytes 7-9/10"));
        assert_eq!(header(&reply, "content-length"), Some("3"));
        assert!(body(reply).is_empty());
        assert_eq!(meter.load(Ordering::Relaxed), 3, "HEAD sends no body");

        let reply = represent(false, &request(&[("range", "bytes=10-")]), &rep, None);
        assert_eq!(reply.status(), 416);
        assert_eq!(header(&reply, "content-range"), Some("bytes */10"));
        assert_eq!(header(&reply, "content-length"), Some("0"));
    }

    #[test]
    fn conditional_requests() {
        let rep = rep(b"0123456789");
        for matching in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            let mut headers = HeaderMap::new();
            headers.insert("if-none-match", HeaderValue::from_static(matching));
            let reply = represent(false, &headers, &rep, None);
            assert_eq!(reply.status(), 304, "{matching}");
            assert_eq!(header(&reply, "etag"), Some("\"abc\""));
        }
        assert_eq!(represent(false, &request(&[("if-none-match", "\"other\"")]), &rep, None).status(), 200);
        // If-Range with the current ETag keeps the range, with another one sends everything.
        let ranged = request(&[("range", "bytes=0-0"), ("if-range", "\"abc\"")]);
        assert_eq!(represent(false, &ranged, &rep, None).status(), 206);
        let stale = request(&[("range", "bytes=0-0"), ("if-range", "\"old\"")]);
        assert_eq!(represent(false, &stale, &rep, None).status(), 200);
        let dated = request(&[("range", "bytes=0-0"), ("if-range", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(represent(false, &dated, &rep, None).status(), 200);

        let mut file = rep;
        file.last_modified = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_445_412_480_500));
        let since = request(&[("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(represent(false, &since, &file, None).status(), 304);
        let before = request(&[("if-modified-since", "Wed, 21 Oct 2015 07:27:59 GMT")]);
        assert_eq!(represent(false, &before, &file, None).status(), 200);
        assert_eq!(represent(false, &dated, &file, None).status(), 206, "If-Range with the exact date");
    }

    #[test]
    fn zeros_stream_in_blocks() {
        let rep = Representation {
            content: Payload::Zeros(200_000),
            content_type: OCTET_STREAM,
            cache_control: IMMUTABLE,
            etag: None,
            last_modified: None,
        };
        let reply = represent(false, &request(&[]), &rep, None);
        assert_eq!(header(&reply, "content-length"), Some("200000"));
        let bytes = body(reply);
        assert_eq!(bytes.len(), 200_000);
        assert!(bytes.iter().all(|&b| b == 0));
        let reply = represent(false, &request(&[("range", "bytes=199990-")]), &rep, None);
        assert_eq!(body(reply), [0; 10]);
    }
}
