//! Why a tile could not be had, as every request waiting for it is told.

use std::time::Duration;

use thiserror::Error;

use crate::log::source::FetchError;

/// Why a tile could not be had. Clone, since every waiting request gets it.
#[derive(Clone, Debug, Error)]
pub enum UpstreamError {
    /// The log has no such tile (404).
    #[error("not found")]
    NotFound,
    /// 502.
    #[error("{0}")]
    Failed(String),
    /// 504.
    #[error("{0}")]
    Timeout(String),
    /// The log asked for a pause longer than a client should wait: 503 with
    /// its `Retry-After`.
    #[error("{message}")]
    RetryLater { message: String, after: Duration },
    /// Too much is being fetched already: 503.
    #[error("overloaded")]
    Overloaded,
}

impl UpstreamError {
    pub fn from_fetch(error: FetchError) -> UpstreamError {
        let message = error.to_string();
        match error {
            FetchError::NotFound { .. } => UpstreamError::NotFound,
            FetchError::OverBudget { .. } => UpstreamError::Overloaded,
            FetchError::RetryAfterTooLong { wait, .. } => UpstreamError::RetryLater { message, after: wait },
            ref error if error.is_timeout() => UpstreamError::Timeout(message),
            _ => UpstreamError::Failed(message),
        }
    }
}
