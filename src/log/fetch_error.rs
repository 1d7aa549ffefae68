//! Why fetching a log's bytes failed, over HTTP or from disk: one error for
//! both, each variant naming the URL or file, so a build's status, its exit
//! code and the operator's message all read the same value.

use std::time::Duration;

use thiserror::Error;

use super::body::Overflow;

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
    Network { url: String, kind: NetworkKind, message: String, attempts: u32, elapsed: Duration },
    #[error("{url}: redirected to {location:?}, which is not an http(s) URL")]
    Redirect { url: String, location: String },
    #[error("{url}: too many redirects")]
    TooManyRedirects { url: String },
    #[error("{url}: server asked to retry after {wait}s, beyond the {budget}s retry budget (HTTP {status})", wait = wait.as_secs(), budget = budget.as_secs())]
    RetryAfterTooLong { url: String, status: u16, wait: Duration, budget: Duration },
    #[error("{url}: body is larger than {max} bytes")]
    TooLarge { url: String, max: u64 },
    #[error("{url}: not enough memory left for the body")]
    OverBudget { url: String },
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

    /// A timeout, as opposed to a refusal or a wrong answer.
    pub fn is_timeout(&self) -> bool {
        matches!(self, FetchError::Network { kind: NetworkKind::Timeout, .. })
    }
}

/// A refused body as a fetch error.
pub(crate) fn overflow(error: Overflow, url: &str, max: u64) -> FetchError {
    let url = url.to_string();
    match error {
        Overflow::TooLarge => FetchError::TooLarge { url, max },
        Overflow::OverBudget => FetchError::OverBudget { url },
        Overflow::Read(source) => FetchError::Io { path: url, source },
    }
}

/// What went wrong below HTTP, read from `ureq`'s error value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkKind {
    /// The host name does not resolve.
    HostNotFound,
    /// Nothing listens there.
    Refused,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// A connect, response or body timeout.
    Timeout,
    /// TLS could not be set up.
    Tls,
    /// The peer does not speak HTTP/1.1 as expected.
    Protocol,
    Other,
}

impl NetworkKind {
    pub fn of(error: &ureq::Error) -> NetworkKind {
        use std::io::ErrorKind as Io;
        match error {
            ureq::Error::HostNotFound => NetworkKind::HostNotFound,
            ureq::Error::Timeout(_) => NetworkKind::Timeout,
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => NetworkKind::Tls,
            ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => NetworkKind::Protocol,
            ureq::Error::ConnectionFailed => NetworkKind::Refused,
            ureq::Error::Io(io) => match io.kind() {
                Io::ConnectionRefused | Io::HostUnreachable | Io::NetworkUnreachable | Io::AddrNotAvailable => {
                    NetworkKind::Refused
                }
                Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof => NetworkKind::Reset,
                Io::TimedOut | Io::WouldBlock => NetworkKind::Timeout,
                _ => NetworkKind::Other,
            },
            _ => NetworkKind::Other,
        }
    }
}
