//! Where a log's bytes come from: its monitoring prefix over HTTP(S), or a
//! local directory laid out the same way.
//!
//! HTTP requests go through one shared `ureq` agent with a User-Agent naming
//! the operator, timeouts, and retries with exponential backoff and jitter for
//! network errors, 429 and 5xx, honouring `Retry-After`. A 404 is an answer,
//! not a reason to retry. Bodies are gzip-decoded whenever they are gzip,
//! whether or not the server said so.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use thiserror::Error;

/// Largest decoded body accepted: a data tile of 256 entries is well under this.
const MAX_BODY: u64 = 64 << 20;

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

/// Why a fetch failed. Every variant names the URL or file.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("{url}: not found (404)")]
    NotFound { url: String },
    // The text stays the same from run to run (no counts or durations), so a
    // log that keeps failing the same way does not rewrite its status page.
    #[error("{url}: HTTP {status}{}", retried(*attempts))]
    Status { url: String, status: u16, attempts: u32, elapsed: Duration },
    #[error("{url}: {message}{}", retried(*attempts))]
    Network { url: String, message: String, attempts: u32, elapsed: Duration },
    #[error("{url}: server asked to retry after {wait}s, beyond the {budget}s retry budget (HTTP {status})", wait = wait.as_secs(), budget = budget.as_secs())]
    RetryAfterTooLong { url: String, status: u16, wait: Duration, budget: Duration },
    #[error("{url}: body is larger than {MAX_BODY} bytes")]
    TooLarge { url: String },
    #[error("{url}: cannot decode gzip body: {message}")]
    Gzip { url: String, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn retried(attempts: u32) -> &'static str {
    if attempts > 1 { ", still failing after retries" } else { "" }
}

impl FetchError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }
}

/// How hard to try before giving up on a URL.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Total time spent on one URL before giving up.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            budget: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The default, or a budget in seconds from `HELIO_RETRY_BUDGET` (for
    /// impatient operators and for tests).
    pub fn from_env() -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        if let Some(secs) = std::env::var("HELIO_RETRY_BUDGET").ok().and_then(|s| s.parse::<f64>().ok()) {
            policy.budget = Duration::from_secs_f64(secs.max(0.0));
            policy.first_backoff = policy.first_backoff.min(policy.budget / 8);
        }
        policy
    }
}

/// The User-Agent helio sends: its version and the operator's contact.
pub fn user_agent(contact: Option<&str>) -> String {
    match contact {
        Some(contact) => format!("helio/{} (+{contact})", env!("CARGO_PKG_VERSION")),
        None => format!("helio/{}", env!("CARGO_PKG_VERSION")),
    }
}

/// The one HTTP agent of a run, shared by every log.
pub fn http_agent(contact: Option<&str>, pool_per_host: usize) -> ureq::Agent {
    http_agent_within(contact, pool_per_host, None)
}

/// Like [`http_agent`], with every phase of a request (connect, response,
/// body) also bounded by `budget`, so that a hung log cannot hold a thread
/// much past it (the WebSeed server's case).
pub fn http_agent_within(contact: Option<&str>, pool_per_host: usize, budget: Option<Duration>) -> ureq::Agent {
    let bounded = |limit: Duration| Some(budget.map_or(limit, |b| limit.min(b).max(Duration::from_millis(100))));
    let pool = pool_per_host.max(1);
    ureq::Agent::config_builder()
        .user_agent(user_agent(contact))
        .accept_encoding("gzip")
        .http_status_as_error(false)
        .timeout_connect(bounded(Duration::from_secs(10)))
        .timeout_recv_response(bounded(Duration::from_secs(30)))
        .timeout_recv_body(bounded(Duration::from_secs(60)))
        .max_idle_connections_per_host(pool)
        .max_idle_connections(pool * 2)
        .max_redirects(5)
        .build()
        .into()
}

/// A log's bytes, from HTTP or disk.
#[derive(Clone)]
pub struct LogSource {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Http { agent: ureq::Agent, base: String, policy: RetryPolicy },
    Dir { root: PathBuf },
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
            Location::Http(base) => Inner::Http { agent: agent.clone(), base: base.clone(), policy },
            Location::Dir(root) => Inner::Dir { root: root.clone() },
        };
        LogSource { inner }
    }

    /// The URL or file a path refers to, for messages.
    pub fn describe(&self, path: &str) -> String {
        match &self.inner {
            Inner::Http { base, .. } => format!("{base}{path}"),
            Inner::Dir { root } => root.join(path).display().to_string(),
        }
    }

    /// Fetches `path` (below the monitoring prefix), decoded.
    pub fn fetch(&self, path: &str, kind: BodyKind) -> Result<Bytes, FetchError> {
        match &self.inner {
            Inner::Http { agent, base, policy } => {
                let url = format!("{base}{path}");
                let (body, gzip) = fetch_http(agent, &url, policy)?;
                let gzip = gzip || (kind == BodyKind::Sniffable && is_gzip(&body));
                decode(body, gzip, &url)
            }
            Inner::Dir { root } => {
                let file = root.join(path);
                let described = file.display().to_string();
                let body = match std::fs::read(&file) {
                    Ok(body) => Bytes::from(body),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(FetchError::NotFound { url: described });
                    }
                    Err(source) => return Err(FetchError::Io { path: described, source }),
                };
                let gzip = kind == BodyKind::Sniffable && is_gzip(&body);
                decode(body, gzip, &described)
            }
        }
    }
}

fn is_gzip(body: &[u8]) -> bool {
    body.starts_with(&[0x1f, 0x8b])
}

fn decode(body: Bytes, gzip: bool, url: &str) -> Result<Bytes, FetchError> {
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(MAX_BODY as usize));
    let mut decoder = MultiGzDecoder::new(&body[..]).take(MAX_BODY + 1);
    decoder.read_to_end(&mut out).map_err(|e| FetchError::Gzip { url: url.to_string(), message: e.to_string() })?;
    if out.len() as u64 > MAX_BODY {
        return Err(FetchError::TooLarge { url: url.to_string() });
    }
    Ok(Bytes::from(out))
}

/// GET with retries. Returns the raw body and whether it is gzip-encoded.
fn fetch_http(agent: &ureq::Agent, url: &str, policy: &RetryPolicy) -> Result<(Bytes, bool), FetchError> {
    let started = Instant::now();
    let mut attempts = 0u32;
    let mut backoff = policy.first_backoff;
    loop {
        attempts += 1;
        let outcome = attempt(agent, url);
        let elapsed = started.elapsed();
        let wait = match outcome {
            Attempt::Done(body, gzip) => return Ok((body, gzip)),
            Attempt::NotFound => return Err(FetchError::NotFound { url: url.to_string() }),
            Attempt::Fatal(error) => return Err(error),
            Attempt::Retry { status, retry_after, message } => {
                let jittered = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
                backoff = (backoff * 2).min(policy.max_backoff);
                let wait = retry_after.unwrap_or(jittered);
                if let (Some(after), Some(status)) = (retry_after, status)
                    && elapsed + after > policy.budget
                {
                    return Err(FetchError::RetryAfterTooLong {
                        url: url.to_string(),
                        status,
                        wait: after,
                        budget: policy.budget,
                    });
                }
                if elapsed + wait > policy.budget {
                    return Err(match status {
                        Some(status) => FetchError::Status { url: url.to_string(), status, attempts, elapsed },
                        None => FetchError::Network { url: url.to_string(), message, attempts, elapsed },
                    });
                }
                tracing::debug!(
                    url,
                    attempts,
                    ?status,
                    message,
                    elapsed = elapsed.as_secs_f64(),
                    "retrying in {:.1}s",
                    wait.as_secs_f64()
                );
                wait
            }
        };
        std::thread::sleep(wait);
    }
}

enum Attempt {
    Done(Bytes, bool),
    NotFound,
    Retry { status: Option<u16>, retry_after: Option<Duration>, message: String },
    Fatal(FetchError),
}

fn attempt(agent: &ureq::Agent, url: &str) -> Attempt {
    let mut response = match agent.get(url).call() {
        Ok(response) => response,
        Err(error) => return network_error(url, error),
    };
    let status = response.status().as_u16();
    match status {
        200 => {}
        404 | 410 => return Attempt::NotFound,
        429 | 500..=599 => {
            let retry_after =
                response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            return Attempt::Retry { status: Some(status), retry_after, message: format!("HTTP {status}") };
        }
        _ => {
            return Attempt::Fatal(FetchError::Status {
                url: url.to_string(),
                status,
                attempts: 1,
                elapsed: Duration::ZERO,
            });
        }
    }
    let gzip = response
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip") || v.trim().eq_ignore_ascii_case("x-gzip"));
    match response.body_mut().with_config().limit(MAX_BODY).read_to_vec() {
        Ok(body) => Attempt::Done(Bytes::from(body), gzip),
        Err(ureq::Error::BodyExceedsLimit(_)) => Attempt::Fatal(FetchError::TooLarge { url: url.to_string() }),
        Err(error) => network_error(url, error),
    }
}

fn network_error(url: &str, error: ureq::Error) -> Attempt {
    match error {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => {
            Attempt::Fatal(FetchError::Network {
                url: url.to_string(),
                message: error.to_string(),
                attempts: 1,
                elapsed: Duration::ZERO,
            })
        }
        other => Attempt::Retry { status: None, retry_after: None, message: other.to_string() },
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn retry_after_in_seconds_and_http_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date means now");
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = parse_retry_after(&soon).unwrap();
        assert!(wait > Duration::from_secs(27) && wait <= Duration::from_secs(30), "{wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn user_agent_names_the_contact() {
        assert_eq!(
            user_agent(Some("ops@example.org")),
            format!("helio/{} (+ops@example.org)", env!("CARGO_PKG_VERSION"))
        );
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
