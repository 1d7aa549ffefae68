//! Whether a log's last build failed, kept in `<log>/status.json` so that a
//! later run that skips the log (`--log other`) still shows it on the pages.
//!
//! The file exists only while the log is failing; a successful build removes
//! it. It records when the failure started, not when it last happened, so a
//! failure that repeats on every cron run leaves the file and the pages as
//! they were instead of rewriting them each time.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::RunStatus;
use super::atomic::{WriteError, write_if_changed};
use super::json::{parse_rfc3339, rfc3339};

pub const STATUS_JSON: &str = "status.json";

/// Longest failure message kept, in characters: one line on a page.
const MAX_MESSAGE: usize = 300;

/// A log whose last build failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Unix seconds of the first failure in the current run of failures.
    pub since: u64,
    /// Why the last build failed, on one line.
    pub message: String,
}

#[derive(Debug, Error)]
pub enum StatusError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },
}

#[derive(Serialize, Deserialize)]
struct StatusJson {
    log_name: String,
    last_build: String,
    failing_since: String,
    error: String,
}

impl Failure {
    /// Reads `<dir>/status.json`. A missing file means the log is not
    /// failing; an unreadable one is reported and otherwise ignored, since
    /// the next build of the log rewrites or removes it.
    pub fn load(dir: &Path) -> Option<Failure> {
        let path = dir.join(STATUS_JSON);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("cannot read {}: {e}", path.display());
                return None;
            }
        };
        let parsed = serde_json::from_slice::<StatusJson>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|status| Ok(Failure { since: parse_rfc3339(&status.failing_since)?, message: status.error }));
        match parsed {
            Ok(failure) => Some(failure),
            Err(e) => {
                tracing::warn!("cannot read {}: {e}; the log's next build replaces it", path.display());
                None
            }
        }
    }

    fn render(&self, name: &str) -> Vec<u8> {
        let document = StatusJson {
            log_name: name.to_string(),
            last_build: "failed".to_string(),
            failing_since: rfc3339(self.since),
            error: self.message.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Records this run's outcome for the log in `dir` and returns the failure
/// to show, if any. A skipped log keeps what an earlier run recorded.
pub fn record(dir: &Path, name: &str, run: &RunStatus) -> Result<Option<Failure>, StatusError> {
    let path = dir.join(STATUS_JSON);
    match run {
        RunStatus::Skipped => Ok(Failure::load(dir)),
        RunStatus::Succeeded { .. } => match fs::remove_file(&path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StatusError::Remove { path, source }),
        },
        RunStatus::Failed { at, message } => {
            let since = Failure::load(dir).map_or(*at, |earlier| earlier.since.min(*at));
            let failure = Failure { since, message: one_line(message) };
            write_if_changed(&path, &failure.render(name))?;
            Ok(Some(failure))
        }
    }
}

/// Folds a message onto one line of at most [`MAX_MESSAGE`] characters.
pub fn one_line(message: &str) -> String {
    let words: Vec<&str> =
        message.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    let line = words.join(" ");
    match line.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(at: u64, message: &str) -> RunStatus {
        RunStatus::Failed { at, message: message.to_string() }
    }

    #[test]
    fn a_repeated_failure_keeps_its_first_time_and_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let first = record(dir.path(), "demo", &failed(1_000, "tile/data/001: HTTP 500")).unwrap();
        assert_eq!(first, Some(Failure { since: 1_000, message: "tile/data/001: HTTP 500".into() }));
        let bytes = fs::read(dir.path().join(STATUS_JSON)).unwrap();
        let modified = fs::metadata(dir.path().join(STATUS_JSON)).unwrap().modified().unwrap();

        let again = record(dir.path(), "demo", &failed(5_000, "tile/data/001: HTTP 500")).unwrap();
        assert_eq!(again, first);
        assert_eq!(fs::read(dir.path().join(STATUS_JSON)).unwrap(), bytes);
        assert_eq!(fs::metadata(dir.path().join(STATUS_JSON)).unwrap().modified().unwrap(), modified);

        let other = record(dir.path(), "demo", &failed(9_000, "checkpoint: HTTP 404")).unwrap();
        assert_eq!(other, Some(Failure { since: 1_000, message: "checkpoint: HTTP 404".into() }));
    }

    #[test]
    fn a_skipped_run_shows_the_recorded_failure_and_a_success_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(record(dir.path(), "demo", &RunStatus::Skipped).unwrap(), None);
        record(dir.path(), "demo", &failed(1_795_000_000, "boom")).unwrap();
        let text = fs::read_to_string(dir.path().join(STATUS_JSON)).unwrap();
        assert!(text.contains("\"failing_since\": \"2026-11-18T11:06:40Z\""), "{text}");
        let shown = record(dir.path(), "demo", &RunStatus::Skipped).unwrap();
        assert_eq!(shown.map(|f| f.message), Some("boom".into()));
        assert_eq!(record(dir.path(), "demo", &RunStatus::Succeeded { at: 2 }).unwrap(), None);
        assert!(!dir.path().join(STATUS_JSON).exists());
        assert_eq!(record(dir.path(), "demo", &RunStatus::Skipped).unwrap(), None);
    }

    #[test]
    fn a_damaged_status_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATUS_JSON), b"{not json").unwrap();
        assert_eq!(record(dir.path(), "demo", &RunStatus::Skipped).unwrap(), None);
        let failure = record(dir.path(), "demo", &failed(7, "x")).unwrap();
        assert_eq!(failure.map(|f| f.since), Some(7));
    }

    #[test]
    fn messages_fold_onto_one_short_line() {
        assert_eq!(one_line("a\n  b\tc\r\n"), "a b c");
        let long = "é".repeat(400);
        let folded = one_line(&long);
        assert_eq!(folded.chars().count(), MAX_MESSAGE + 1);
        assert!(folded.ends_with('…'));
    }
}
