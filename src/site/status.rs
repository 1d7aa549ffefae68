//! Whether a log's last build failed, kept in `<log>/status.json` so that a
//! later run that skips the log (`--log other`) still shows it on the pages.
//!
//! The file exists only while the log is failing; a successful build removes
//! it. It records when the failure started, not when it last happened, so a
//! failure that repeats on every cron run leaves the file and the pages as
//! they were instead of rewriting them each time.

use serde::{Deserialize, Serialize};

use super::RunStatus;
use super::folder::{FolderError, LogFolder};
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

#[derive(Serialize, Deserialize)]
struct StatusJson {
    log_name: String,
    last_build: String,
    failing_since: String,
    error: String,
}

impl Failure {
    /// Reads the log's `status.json`. A missing file means the log is not
    /// failing; an unreadable one is reported and otherwise ignored, since
    /// the next build of the log rewrites or removes it.
    pub fn load(folder: &LogFolder) -> Option<Failure> {
        let what = folder.describe(STATUS_JSON);
        let bytes = match folder.stat(STATUS_JSON).and_then(|listed| match listed {
            Some(_) => folder.read(STATUS_JSON),
            None => Ok(None),
        }) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("cannot read {what}: {e}");
                return None;
            }
        };
        let parsed = serde_json::from_slice::<StatusJson>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|status| Ok(Failure { since: parse_rfc3339(&status.failing_since)?, message: status.error }));
        match parsed {
            Ok(failure) => Some(failure),
            Err(e) => {
                tracing::warn!("cannot read {what}: {e}; the log's next build replaces it");
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

/// Records this run's outcome for the log and returns the failure to show,
/// if any. A skipped log keeps what an earlier run recorded.
pub fn record(folder: &LogFolder, run: &RunStatus) -> Result<Option<Failure>, FolderError> {
    match run {
        RunStatus::Skipped => Ok(Failure::load(folder)),
        RunStatus::Succeeded { .. } => {
            folder.delete_if_present(STATUS_JSON)?;
            Ok(None)
        }
        RunStatus::Failed { at, message } => {
            let since = Failure::load(folder).map_or(*at, |earlier| earlier.since.min(*at));
            let failure = Failure { since, message: one_line(message) };
            folder.write_if_changed(STATUS_JSON, &failure.render(folder.name()))?;
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
    use crate::site::folder::Locks;
    use crate::site::state::Seen;
    use crate::store::{Store, Target};
    use std::fs;

    /// A folder site.
    fn site() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Target::Dir(dir.path().to_path_buf())).unwrap();
        (dir, store)
    }

    fn failed(at: u64, message: &str) -> RunStatus {
        RunStatus::Failed { at, message: message.to_string() }
    }

    #[test]
    fn a_repeated_failure_keeps_its_first_time_and_its_bytes() {
        let (dir, store) = site();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", Seen::default());
        let path = dir.path().join("demo").join(STATUS_JSON);
        let first = record(&folder, &failed(1_000, "tile/data/001: HTTP 500")).unwrap();
        assert_eq!(first, Some(Failure { since: 1_000, message: "tile/data/001: HTTP 500".into() }));
        let bytes = fs::read(&path).unwrap();
        let modified = fs::metadata(&path).unwrap().modified().unwrap();

        let again = record(&folder, &failed(5_000, "tile/data/001: HTTP 500")).unwrap();
        assert_eq!(again, first);
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);

        let other = record(&folder, &failed(9_000, "checkpoint: HTTP 404")).unwrap();
        assert_eq!(other, Some(Failure { since: 1_000, message: "checkpoint: HTTP 404".into() }));
    }

    #[test]
    fn a_skipped_run_shows_the_recorded_failure_and_a_success_clears_it() {
        let (dir, store) = site();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", Seen::default());
        let path = dir.path().join("demo").join(STATUS_JSON);
        assert_eq!(record(&folder, &RunStatus::Skipped).unwrap(), None);
        record(&folder, &failed(1_795_000_000, "boom")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"failing_since\": \"2026-11-18T11:06:40Z\""), "{text}");
        let shown = record(&folder, &RunStatus::Skipped).unwrap();
        assert_eq!(shown.map(|f| f.message), Some("boom".into()));
        assert_eq!(record(&folder, &RunStatus::Succeeded { at: 2 }).unwrap(), None);
        assert!(!path.exists());
        assert_eq!(record(&folder, &RunStatus::Skipped).unwrap(), None);
    }

    #[test]
    fn a_damaged_status_file_is_ignored() {
        let (dir, store) = site();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", Seen::default());
        let path = dir.path().join("demo").join(STATUS_JSON);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"{not json").unwrap();
        assert_eq!(record(&folder, &RunStatus::Skipped).unwrap(), None);
        let failure = record(&folder, &failed(7, "x")).unwrap();
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
