//! Where a log's bytes come from: its monitoring prefix over HTTP(S) (see
//! [`super::http`] for retries and politeness), or a local directory laid out
//! the same way. Bodies are gzip-decoded whenever they are gzip, whether or
//! not the server said so, and refused as soon as they decode past the
//! largest plausible tile.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;

use super::body::{BodyBuffer, BodyLimit, Overflow};
pub use super::fetch_error::FetchError;
use super::fetch_error::overflow;
use super::host::HostGate;
pub use super::http::Validators;
use super::http::{FailureNotice, Got, Manners};
pub use super::http::{RetryPolicy, http_agent, http_agent_within, parse_retry_after, user_agent};
use crate::local_file::{self, FileError, Links};

/// Largest body accepted, raw or decoded. A full data tile of 256 entries is
/// a few MB at most (a real one with long chains: 650 KB); anything past this
/// is a log fault or a decompression bomb, refused as soon as it shows.
pub const MAX_BODY: u64 = 16 << 20;

/// A log's location as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The monitoring prefix, always ending in `/`.
    Http(String),
    Dir(PathBuf),
}

impl Location {
    /// `http(s)://…`, `file://…`, or a path (relative to `base`).
    pub fn parse(text: &str, base: &Path) -> Result<Location, String> {
        if text.starts_with("http://") || text.starts_with("https://") {
            let host = text.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
            if host.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("{text:?} is not a valid URL"));
            }
            let mut url = text.to_string();
            if !url.ends_with('/') {
                url.push('/');
            }
            return Ok(Location::Http(url));
        }
        if let Some(path) = text.strip_prefix("file://") {
            let path = percent_encoding::percent_decode_str(path)
                .decode_utf8()
                .map_err(|_| format!("{text:?} is not a valid file:// URL"))?;
            if !path.starts_with('/') {
                return Err(format!("{text:?}: a file:// URL needs an absolute path"));
            }
            return Ok(Location::Dir(PathBuf::from(path.as_ref())));
        }
        if text.contains("://") {
            return Err(format!("{text:?}: only http://, https:// and file:// are supported"));
        }
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        let path = PathBuf::from(text);
        Ok(Location::Dir(if path.is_absolute() { path } else { base.join(path) }))
    }
}

/// A log's bytes, from HTTP or disk.
#[derive(Clone)]
pub struct LogSource {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Http {
        agent: ureq::Agent,
        base: String,
        policy: RetryPolicy,
        gate: Option<Arc<HostGate>>,
        notice: Option<Arc<FailureNotice>>,
    },
    Dir {
        root: PathBuf,
    },
}

/// What a body is, so gzip sniffing only happens where it is unambiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// Checkpoints and data tiles: text, or records starting with a timestamp,
    /// never the gzip magic.
    Sniffable,
    /// Hash tiles: arbitrary bytes, decoded only when the server says gzip.
    Opaque,
}

impl LogSource {
    pub fn new(location: &Location, agent: &ureq::Agent, policy: RetryPolicy) -> LogSource {
        let inner = match location {
            Location::Http(base) => {
                Inner::Http { agent: agent.clone(), base: base.clone(), policy, gate: None, notice: None }
            }
            Location::Dir(root) => Inner::Dir { root: root.clone() },
        };
        LogSource { inner }
    }

    /// Shares `gate`'s limit of requests in flight with the other logs of its host.
    pub fn with_gate(mut self, gate: Option<Arc<HostGate>>) -> LogSource {
        if let Inner::Http { gate: slot, .. } = &mut self.inner {
            *slot = gate;
        }
        self
    }

    /// Warns once, at the first failed attempt, naming the log `name`.
    pub fn with_notice(mut self, name: &str) -> LogSource {
        if let Inner::Http { notice, .. } = &mut self.inner {
            *notice = Some(Arc::new(FailureNotice::new(name)));
        }
        self
    }

    /// The notice of the log's first failure, when it has one.
    pub fn notice(&self) -> Option<&FailureNotice> {
        match &self.inner {
            Inner::Http { notice, .. } => notice.as_deref(),
            Inner::Dir { .. } => None,
        }
    }

    /// The URL or file a path refers to, for messages.
    pub fn describe(&self, path: &str) -> String {
        match &self.inner {
            Inner::Http { base, .. } => format!("{base}{path}"),
            Inner::Dir { root } => root.join(path).display().to_string(),
        }
    }

    /// Fetches `path` (below the monitoring prefix), decoded, of at most
    /// [`MAX_BODY`] bytes.
    pub fn fetch(&self, path: &str, kind: BodyKind) -> Result<Bytes, FetchError> {
        self.fetch_within(path, kind, &BodyLimit::new(MAX_BODY))
    }

    /// Fetches `path` unless it is what `validators` describe: `None` when
    /// the server says it has not changed (a folder is always read).
    pub fn fetch_if_changed(
        &self,
        path: &str,
        kind: BodyKind,
        validators: &Validators,
    ) -> Result<Option<(Bytes, Validators)>, FetchError> {
        let limit = BodyLimit::new(MAX_BODY);
        match &self.inner {
            Inner::Http { agent, base, policy, gate, notice } => {
                let url = format!("{base}{path}");
                let manners = Manners { gate: gate.as_deref(), notice: notice.as_deref() };
                match super::http::get_conditional(agent, &url, policy, manners, &limit, validators)? {
                    Got::NotModified => Ok(None),
                    Got::Body { body, gzip, validators } => {
                        let gzip = gzip || (kind == BodyKind::Sniffable && is_gzip(body.as_slice()));
                        Ok(Some((decode(body, gzip, &url, &limit)?, validators)))
                    }
                }
            }
            Inner::Dir { .. } => Ok(Some((self.fetch_within(path, kind, &limit)?, Validators::default()))),
        }
    }

    /// Fetches `path`, decoded, within `limit`: its size, raw and decoded,
    /// and the memory budget its buffers are charged to.
    pub fn fetch_within(&self, path: &str, kind: BodyKind, limit: &BodyLimit) -> Result<Bytes, FetchError> {
        match &self.inner {
            Inner::Http { agent, base, policy, gate, notice } => {
                let url = format!("{base}{path}");
                let manners = Manners { gate: gate.as_deref(), notice: notice.as_deref() };
                let (body, gzip) = super::http::get(agent, &url, policy, manners, limit)?;
                let gzip = gzip || (kind == BodyKind::Sniffable && is_gzip(body.as_slice()));
                decode(body, gzip, &url, limit)
            }
            Inner::Dir { root } => {
                let file = root.join(path);
                let described = file.display().to_string();
                let body = read_limited(&file, limit).map_err(|error| match error {
                    Overflow::Read(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        FetchError::NotFound { url: described.clone() }
                    }
                    other => overflow(other, &described, limit.max_raw()),
                })?;
                let gzip = kind == BodyKind::Sniffable && is_gzip(body.as_slice());
                decode(body, gzip, &described, limit)
            }
        }
    }
}

fn is_gzip(body: &[u8]) -> bool {
    body.starts_with(&[0x1f, 0x8b])
}

/// Inflates a gzip body into a buffer of at most `limit.max` bytes, which
/// refuses the moment the output passes it; other bodies are only checked.
fn decode(body: BodyBuffer, gzip: bool, url: &str, limit: &BodyLimit) -> Result<Bytes, FetchError> {
    if !gzip {
        if body.len() as u64 > limit.max {
            return Err(FetchError::TooLarge { url: url.to_string(), max: limit.max });
        }
        return Ok(body.into_bytes());
    }
    let mut out = BodyBuffer::new(limit.max, limit);
    out.reserve_for(inflated_size_hint(body.as_slice())).map_err(|e| overflow(e, url, limit.max))?;
    out.read_from(&mut MultiGzDecoder::new(body.as_slice())).map_err(|error| match error {
        Overflow::Read(e) => FetchError::Gzip { url: url.to_string(), message: e.to_string() },
        other => overflow(other, url, limit.max),
    })?;
    drop(body);
    Ok(out.into_bytes())
}

/// How large a gzip body is likely to inflate: its last member's ISIZE
/// (RFC 1952 §2.3.1, the size modulo 2^32), exact for the one-member bodies
/// logs send, so the output is allocated once at its size; else 4 × the body.
fn inflated_size_hint(body: &[u8]) -> u64 {
    match body.len().checked_sub(4).and_then(|at| body.get(at..)) {
        Some(&[a, b, c, d]) if body.len() >= 18 => u64::from(u32::from_le_bytes([a, b, c, d])),
        _ => (body.len() as u64).saturating_mul(4),
    }
}

/// Reads a regular file within `limit` (raw); a FIFO or device is refused
/// at once, never read or waited on ([`crate::local_file`]).
fn read_limited(path: &Path, limit: &BodyLimit) -> Result<BodyBuffer, Overflow> {
    let (file, metadata) = local_file::open(path, Links::Follow).map_err(|error| {
        Overflow::Read(match error {
            FileError::Missing { .. } => std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            FileError::Io { source, .. } => source,
            FileError::NotRegular { .. } | FileError::TooLarge { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, local_file::NOT_REGULAR)
            }
        })
    })?;
    if metadata.len() > limit.max_raw() {
        return Err(Overflow::TooLarge);
    }
    let mut body = BodyBuffer::new(limit.max_raw(), limit);
    body.reserve_for(metadata.len())?;
    body.read_from(&mut file.take(limit.max_raw() + 1))?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_body_is_inflated_into_a_buffer_of_its_size() {
        use std::io::Write;
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&content).unwrap();
        let gzip = encoder.finish().unwrap();
        assert_eq!(inflated_size_hint(&gzip), 300_000, "ISIZE");
        assert_eq!(inflated_size_hint(b"short"), 20, "too short for a trailer: 4 × the body");

        let limit = BodyLimit::new(1 << 20);
        let mut body = BodyBuffer::new(limit.max_raw(), &limit);
        body.read_from(&mut &gzip[..]).unwrap();
        let inflated = decode(body, true, "http://log.example/tile/data/000", &limit).unwrap();
        assert_eq!(inflated, content);
        // Lying about its size only changes the first allocation, not the limit.
        let mut liar = gzip.clone();
        let at = liar.len() - 4;
        liar[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        let small = BodyLimit::new(100_000);
        let mut body = BodyBuffer::new(small.max_raw(), &small);
        body.read_from(&mut &liar[..]).unwrap();
        assert!(matches!(
            decode(body, true, "http://log.example/tile/data/000", &small),
            Err(FetchError::TooLarge { .. })
        ));
    }

    #[test]
    fn locations() {
        let base = Path::new("/etc/helio");
        assert_eq!(Location::parse("https://x.example/log", base), Ok(Location::Http("https://x.example/log/".into())));
        assert_eq!(Location::parse("http://x.example/", base), Ok(Location::Http("http://x.example/".into())));
        assert_eq!(Location::parse("file:///srv/my%20log", base), Ok(Location::Dir("/srv/my log".into())));
        assert_eq!(Location::parse("logs/demo", base), Ok(Location::Dir("/etc/helio/logs/demo".into())));
        assert_eq!(Location::parse("/abs", base), Ok(Location::Dir("/abs".into())));
        assert!(Location::parse("ftp://x/", base).is_err());
        assert!(Location::parse("https:///nohost", base).is_err());
        assert!(Location::parse("file://relative", base).is_err());
        assert!(Location::parse("", base).is_err());
    }

    #[test]
    fn directory_sources_sniff_gzip_only_where_unambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let gz = {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut encoder, b"hello tile").unwrap();
            encoder.finish().unwrap()
        };
        std::fs::create_dir_all(dir.path().join("tile/data")).unwrap();
        std::fs::write(dir.path().join("tile/data/000"), &gz).unwrap();
        let agent = http_agent(None, 1);
        let source = LogSource::new(&Location::Dir(dir.path().into()), &agent, RetryPolicy::default());
        assert_eq!(&source.fetch("tile/data/000", BodyKind::Sniffable).unwrap()[..], b"hello tile");
        assert_eq!(&source.fetch("tile/data/000", BodyKind::Opaque).unwrap()[..], &gz[..]);
        let missing = source.fetch("tile/data/001", BodyKind::Sniffable).unwrap_err();
        assert!(missing.is_not_found());
        assert!(missing.to_string().ends_with("tile/data/001: not found (404)"), "{missing}");
    }

    #[test]
    fn corrupt_gzip_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("checkpoint"), [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        let agent = http_agent(None, 1);
        let source = LogSource::new(&Location::Dir(dir.path().into()), &agent, RetryPolicy::default());
        let error = source.fetch("checkpoint", BodyKind::Sniffable).unwrap_err().to_string();
        assert!(error.contains("checkpoint: cannot decode gzip body"), "{error}");
    }
}
