//! GET over HTTP(S) the way a polite log client does it: one shared `ureq`
//! agent with a User-Agent naming the operator, timeouts, and retries with
//! exponential backoff and jitter for network errors, 429 and 5xx, honouring
//! `Retry-After` (seconds or HTTP-date). A 404 is an answer, not a reason to
//! retry.
//!
//! Failures come in two kinds with two budgets ([`RetryPolicy`]): a log that
//! answers that it is busy — 429, or a 5xx with `Retry-After` — is retried
//! for the long budget; a host that does not answer as a log does — its name
//! does not resolve, the connection is refused or reset, TLS fails, it
//! accepts and never answers (a timeout), or it answers 5xx and says nothing
//! more — only for the short one, so a dead or hanging log fails within
//! the short budget plus one request timeout instead of five minutes.
//! Redirects are followed by hand, to http(s) URLs only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ureq::unversioned::transport::DefaultConnector;

use super::body::{BodyBuffer, BodyLimit, Overflow};
pub use super::fetch_error::NetworkKind;
use super::fetch_error::{FetchError, overflow};
use super::host::HostGate;
use super::resolver::SharedResolver;

/// How many redirects one request follows.
const MAX_REDIRECTS: usize = 5;

/// How hard to try before giving up on a URL.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Total time spent on one URL of a log that says it is busy (429, or
    /// 5xx with `Retry-After`).
    pub budget: Duration,
    /// Total time spent on one URL whose host does not answer as a log does
    /// (unreachable, hanging, or a bare 5xx).
    pub unreachable_budget: Duration,
}

/// The default retry budget of `helio build`.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(300);
/// The default budget for hosts that do not answer (DNS, refused, reset).
pub const DEFAULT_UNREACHABLE_BUDGET: Duration = Duration::from_secs(60);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            budget: DEFAULT_BUDGET,
            unreachable_budget: DEFAULT_UNREACHABLE_BUDGET,
        }
    }
}

impl RetryPolicy {
    /// A policy with these budgets (the unreachable one never longer than the other).
    pub fn with_budgets(budget: Duration, unreachable_budget: Duration) -> RetryPolicy {
        let unreachable_budget = unreachable_budget.min(budget);
        let first_backoff = RetryPolicy::default().first_backoff.min(unreachable_budget / 8);
        RetryPolicy { first_backoff, budget, unreachable_budget, ..RetryPolicy::default() }
    }

    /// `HELIO_RETRY_BUDGET` (seconds) caps both budgets, for impatient
    /// operators and for tests.
    pub fn capped_by_env(self) -> RetryPolicy {
        // Checked at startup (crate::environment): what does not parse here is unset.
        match std::env::var("HELIO_RETRY_BUDGET").ok().and_then(|text| crate::environment::retry_budget(&text).ok()) {
            Some(cap) => RetryPolicy::with_budgets(self.budget.min(cap), self.unreachable_budget.min(cap)),
            None => self,
        }
    }

    /// The default, capped by `HELIO_RETRY_BUDGET`.
    pub fn from_env() -> RetryPolicy {
        RetryPolicy::default().capped_by_env()
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
/// body), and the request as a whole, also bounded by `budget`, so that a
/// hung or trickling server cannot hold a thread much past it (the WebSeed
/// server's case, and `helio verify`'s site).
pub fn http_agent_within(contact: Option<&str>, pool_per_host: usize, budget: Option<Duration>) -> ureq::Agent {
    let bounds = budget.map(|budget| Bounds { answer: budget, body: budget });
    http_agent_pooled(contact, pool_per_host, pool_per_host * 4, bounds)
}

/// How long the phases of one request may take at most, below the agent's
/// own limits (10 s to connect, 30 s for the response's head, 60 s for its body).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Connecting and waiting for the response's head: a host that has not
    /// answered by then is not answering.
    pub answer: Duration,
    /// Receiving the body, which a slow but live log may take its time over.
    pub body: Duration,
}

impl Bounds {
    /// A host that does not answer within the short budget has used it up;
    /// a body may take the long one.
    pub fn of(policy: &RetryPolicy) -> Bounds {
        Bounds { answer: policy.unreachable_budget, body: policy.budget }
    }
}

/// The agent of a run over many hosts: `per_host` idle connections kept
/// per host and `total` in all, so that no request of any log pays for a
/// new connection (a TCP and TLS handshake is two round trips or more),
/// and no request of a host pays for looking its name up either
/// ([`super::resolver`]).
pub fn http_agent_pooled(contact: Option<&str>, per_host: usize, total: usize, bounds: Option<Bounds>) -> ureq::Agent {
    let bounded = |limit: Duration, bound: Option<Duration>| {
        Some(bound.map_or(limit, |b| limit.min(b).max(Duration::from_millis(100))))
    };
    let answer = bounds.map(|b| b.answer);
    let pool = per_host.max(1);
    let config = ureq::Agent::config_builder()
        .user_agent(user_agent(contact))
        .accept_encoding("gzip")
        .http_status_as_error(false)
        .timeout_connect(bounded(Duration::from_secs(10), answer))
        .timeout_recv_response(bounded(Duration::from_secs(30), answer))
        .timeout_recv_body(bounded(Duration::from_secs(60), bounds.map(|b| b.body)))
        // A request as a whole too: a body sent a few bytes at a time never
        // trips a per-phase timeout.
        .timeout_global(bounds.map(|b| b.body.max(b.answer).max(Duration::from_millis(100))))
        .max_idle_connections_per_host(pool)
        .max_idle_connections(total.max(pool))
        // Followed by hand, so that only http(s) targets are.
        .max_redirects(0)
        .build();
    ureq::Agent::with_parts(config, DefaultConnector::new(), SharedResolver)
}

/// Says once, at the first failed attempt of any request of a log, what
/// failed and until when it will be retried: an operator sees a log in
/// trouble right away, not when its budget runs out.
#[derive(Debug)]
pub struct FailureNotice {
    log: String,
    said: AtomicBool,
    /// Say it as news, not a warning: the log has not been failing long
    /// enough to alert anyone (`--alert-after`).
    quiet: AtomicBool,
}

impl FailureNotice {
    pub fn new(log: &str) -> FailureNotice {
        FailureNotice { log: log.to_string(), said: AtomicBool::new(false), quiet: AtomicBool::new(false) }
    }

    /// Whether the notice is news rather than a warning.
    pub fn set_quiet(&self, quiet: bool) {
        self.quiet.store(quiet, Ordering::Relaxed);
    }

    fn say(&self, url: &str, problem: &str, until: SystemTime) {
        if !self.said.swap(true, Ordering::Relaxed) {
            let line = format!("log {}: {url}: {problem}; retrying until {}", self.log, clock_time(until));
            if self.quiet.load(Ordering::Relaxed) { tracing::info!("{line}") } else { tracing::warn!("{line}") }
        }
    }
}

/// `HH:MM:SS UTC` of a time.
fn clock_time(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Who else a request answers to: the host's politeness limit and the log's
/// failure notice.
#[derive(Clone, Copy, Default)]
pub struct Manners<'a> {
    pub gate: Option<&'a HostGate>,
    pub notice: Option<&'a FailureNotice>,
}

/// GET with retries. Returns the raw body (within `limit`) and whether it
/// is gzip-encoded.
pub fn get(
    agent: &ureq::Agent,
    url: &str,
    policy: &RetryPolicy,
    manners: Manners<'_>,
    limit: &BodyLimit,
) -> Result<(BodyBuffer, bool), FetchError> {
    match get_conditional(agent, url, policy, manners, limit, &Validators::default())? {
        Got::Body { body, gzip, .. } => Ok((body, gzip)),
        // Only a conditional request may be answered so.
        Got::NotModified => {
            Err(FetchError::Status { url: url.to_string(), status: 304, attempts: 1, elapsed: Duration::ZERO })
        }
    }
}

/// What a cache holds of a resource, to ask for it only if it changed
/// (RFC 9110 §13.1: `If-None-Match`, `If-Modified-Since`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The answer to a conditional GET.
pub enum Got {
    /// The resource, with its new validators.
    Body { body: BodyBuffer, gzip: bool, validators: Validators },
    /// 304: what the cache holds is current.
    NotModified,
}

/// [`get`], sending `validators` so that an unchanged resource costs a 304.
pub fn get_conditional(
    agent: &ureq::Agent,
    url: &str,
    policy: &RetryPolicy,
    manners: Manners<'_>,
    limit: &BodyLimit,
    validators: &Validators,
) -> Result<Got, FetchError> {
    let started = Instant::now();
    let mut attempts = 0u32;
    let mut backoff = policy.first_backoff;
    let _pending = manners.gate.map(HostGate::begin);
    loop {
        attempts += 1;
        let outcome = {
            let _permit = manners.gate.map(HostGate::enter);
            attempt(agent, url, limit, validators)
        };
        let elapsed = started.elapsed();
        let Attempt::Retry { status, retry_after, problem } = outcome else {
            return match outcome {
                Attempt::Done(body, gzip, validators) => Ok(Got::Body { body, gzip, validators }),
                Attempt::NotModified => Ok(Got::NotModified),
                Attempt::NotFound => Err(FetchError::NotFound { url: url.to_string() }),
                Attempt::Fatal(error) => Err(error),
                Attempt::Retry { .. } => unreachable!("handled above"),
            };
        };
        let budget = match (&problem, retry_after) {
            // A log that says it is busy (429), or says when to come back,
            // is alive: it gets the long budget.
            (Problem::Status(429), _) | (Problem::Status(_), Some(_)) => policy.budget,
            // A 5xx that says nothing, a timeout, a refused or reset
            // connection: the host is not answering as a log does.
            _ => policy.unreachable_budget,
        };
        let jittered = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
        backoff = (backoff * 2).min(policy.max_backoff);
        if let (Some(after), Some(status)) = (retry_after, status)
            && elapsed + after > budget
        {
            return Err(FetchError::RetryAfterTooLong { url: url.to_string(), status, wait: after, budget });
        }
        if elapsed >= budget {
            return Err(match problem {
                Problem::Status(status) => FetchError::Status { url: url.to_string(), status, attempts, elapsed },
                Problem::Network { kind, message } => {
                    FetchError::Network { url: url.to_string(), kind, message, attempts, elapsed }
                }
            });
        }
        // The last wait ends with the budget, for one last attempt.
        let wait = retry_after.unwrap_or(jittered).min(budget - elapsed);
        if let Some(notice) = manners.notice {
            notice.say(url, &problem.to_string(), SystemTime::now() + budget.saturating_sub(elapsed));
        }
        tracing::debug!(url, attempts, %problem, elapsed = elapsed.as_secs_f64(), "retrying in {:.1}s", wait.as_secs_f64());
        std::thread::sleep(wait);
    }
}

enum Attempt {
    Done(BodyBuffer, bool, Validators),
    NotModified,
    NotFound,
    Retry { status: Option<u16>, retry_after: Option<Duration>, problem: Problem },
    Fatal(FetchError),
}

/// Why an attempt is worth another.
enum Problem {
    Status(u16),
    Network { kind: NetworkKind, message: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Status(status) => write!(f, "HTTP {status}"),
            Problem::Network { message, .. } => f.write_str(message),
        }
    }
}

/// One request, following up to [`MAX_REDIRECTS`] redirects to http(s) URLs.
fn attempt(agent: &ureq::Agent, url: &str, limit: &BodyLimit, validators: &Validators) -> Attempt {
    let mut target = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let mut request = agent.get(&target);
        if let Some(etag) = &validators.etag {
            request = request.header("If-None-Match", etag);
        }
        if let Some(date) = &validators.last_modified {
            request = request.header("If-Modified-Since", date);
        }
        let mut response = match request.call() {
            Ok(response) => response,
            Err(error) => return network_error(url, error),
        };
        let status = response.status().as_u16();
        match status {
            200 => {}
            301 | 302 | 303 | 307 | 308 => {
                let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("");
                match resolve_redirect(&target, location) {
                    Some(next) => {
                        target = next;
                        continue;
                    }
                    None => {
                        return Attempt::Fatal(FetchError::Redirect {
                            url: url.to_string(),
                            location: location.to_string(),
                        });
                    }
                }
            }
            304 if *validators != Validators::default() => return Attempt::NotModified,
            404 | 410 => return Attempt::NotFound,
            429 | 500..=599 => {
                let retry_after =
                    response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                return Attempt::Retry { status: Some(status), retry_after, problem: Problem::Status(status) };
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
        let max = limit.max_raw();
        let mut body = BodyBuffer::new(max, limit);
        let length = response.body().content_length().unwrap_or(0);
        let read = body.reserve_for(length).and_then(|()| {
            // ureq's own limit only backs the buffer's up.
            body.read_from(&mut response.body_mut().with_config().limit(max.saturating_add(1)).reader())
        });
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let validators = Validators { etag: header("etag"), last_modified: header("last-modified") };
        return match read {
            Ok(()) => Attempt::Done(body, gzip, validators),
            Err(Overflow::Read(error)) => network_error(url, ureq::Error::from(error)),
            Err(other) => Attempt::Fatal(overflow(other, url, max)),
        };
    }
    Attempt::Fatal(FetchError::TooManyRedirects { url: url.to_string() })
}

/// The absolute http(s) URL a `Location` points at, or `None` for anything
/// else (`file://`, `ftp://`, an empty header).
fn resolve_redirect(from: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.is_empty() || location.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    let (scheme, rest) = from.split_once("://")?;
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..authority_end]);
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let host = location.split_once("://").map_or("", |(_, r)| r.split(['/', '?', '#']).next().unwrap_or(""));
        return (!host.is_empty()).then(|| location.to_string());
    }
    if let Some(network_path) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{network_path}"));
    }
    if location.contains(':') && !location.starts_with('/') && location.split(['/', '?']).next()?.contains(':') {
        return None; // another scheme
    }
    if location.starts_with('/') {
        return Some(format!("{origin}{location}"));
    }
    let path = &rest[authority_end..];
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Some(format!("{origin}{dir}{location}"))
}

fn network_error(url: &str, error: ureq::Error) -> Attempt {
    match error {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => Attempt::Fatal(FetchError::Network {
            url: url.to_string(),
            kind: NetworkKind::Other,
            message: error.to_string(),
            attempts: 1,
            elapsed: Duration::ZERO,
        }),
        other => Attempt::Retry {
            status: None,
            retry_after: None,
            problem: Problem::Network { kind: NetworkKind::of(&other), message: other.to_string() },
        },
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
    fn an_agent_looks_a_host_name_up_once_for_many_requests() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = 5;
        let server = std::thread::spawn(move || {
            for _ in 0..requests {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").unwrap();
            }
        });
        let bounds = Bounds { answer: Duration::from_secs(5), body: Duration::from_secs(5) };
        let agent = http_agent_pooled(None, 2, 8, Some(bounds));
        for _ in 0..requests {
            let body = agent.get(&format!("http://localhost:{port}/x")).call().unwrap().body_mut().read_to_string();
            assert_eq!(body.unwrap(), "ok");
        }
        server.join().unwrap();
        // Each request opened a new connection (the server closes them), and
        // still the name was looked up once.
        assert_eq!(SharedResolver::lookups_of(&format!("localhost:{port}")), 1);
    }

    #[test]
    fn user_agent_names_the_contact() {
        assert_eq!(
            user_agent(Some("ops@example.org")),
            format!("helio/{} (+ops@example.org)", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn redirects_resolve_to_http_urls_only() {
        let from = "https://log.example/2026/tile/data/000";
        assert_eq!(resolve_redirect(from, "https://cdn.example/x").as_deref(), Some("https://cdn.example/x"));
        assert_eq!(resolve_redirect(from, "//cdn.example/x").as_deref(), Some("https://cdn.example/x"));
        assert_eq!(resolve_redirect(from, "/other/y").as_deref(), Some("https://log.example/other/y"));
        assert_eq!(resolve_redirect(from, "001").as_deref(), Some("https://log.example/2026/tile/data/001"));
        for refused in ["file:///etc/passwd", "FILE:///etc/passwd", "ftp://x/", "", "http://", "javascript:x"] {
            assert_eq!(resolve_redirect(from, refused), None, "{refused}");
        }
    }

    #[test]
    fn budgets_never_make_the_short_one_longer() {
        let policy = RetryPolicy::with_budgets(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(policy.unreachable_budget, Duration::from_secs(10));
        assert!(policy.first_backoff <= Duration::from_secs(10) / 8);
    }

    #[test]
    fn clock_times_are_utc() {
        assert_eq!(clock_time(UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 3600 * 13 + 62)), "13:01:02 UTC");
    }
}
