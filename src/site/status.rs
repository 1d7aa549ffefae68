//! How a log's builds have gone, kept in `<log>/status.json` so that a later
//! run — one that skips the log (`--log other`), a CI runner restoring the
//! site with `--resume-from`, a fresh runner reading a bucket — still knows
//! since when the log has been failing and when it last succeeded.
//!
//! The record changes only when what it says changes: a run that finds the
//! log exactly as published (same checkpoint, nothing built, the same
//! outcome as last time) leaves the file, and so the pages and `logs.json`,
//! byte-identical, and a bucket gets no PUT. So `last_attempt` and
//! `last_success` are the times of the last run that changed something for
//! the log, which for a live log (a new checkpoint every run) is every run;
//! a failure that repeats keeps the time it started (docs/health.md).
//!
//! Files written by helio before this record existed were there only while
//! the log was failing (`last_build: "failed"`); they still read as a
//! failure, and a log with no file at all has never been recorded.

use serde::{Deserialize, Serialize};

use super::RunStatus;
use super::log_folder::{LogFolder, LogFolderError};
use crate::clock::{parse_rfc3339, rfc3339};

pub use crate::layout::STATUS_JSON;

/// Longest failure message kept, in characters: one line on a page.
const MAX_MESSAGE: usize = 300;

/// Largest `status.json` read: a few hundred bytes when helio wrote it.
const MAX_STATUS_BYTES: u64 = 64 << 10;

/// What the site records of a log's builds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Unix seconds of the last run that changed something for the log.
    pub last_attempt: Option<u64>,
    /// Unix seconds of the last such run that succeeded.
    pub last_success: Option<u64>,
    /// While the log's builds fail: since when, and why.
    pub failure: Option<Failure>,
    /// Why the log is no longer built, when it is not (its site stays).
    pub archived: Option<String>,
}

/// What a log's `status.json` held when a build read it (`None`: no file).
pub type Recorded = Option<Health>;

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
    /// `ok`, `failing` or `archived`; absent from the files of older
    /// versions, which existed only while the log was failing.
    #[serde(default)]
    status: Option<String>,
    /// Why an archived log is no longer built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default)]
    failing_since: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    last_success: Option<String>,
    #[serde(default)]
    last_attempt: Option<String>,
}

impl Health {
    /// Reads the log's `status.json`: `None` when there is none (a log no
    /// build has recorded). An unreadable one is reported and taken as
    /// none, since the log's next build rewrites it.
    pub fn load(folder: &LogFolder) -> Option<Health> {
        let read = || -> Result<Option<Health>, String> {
            let Some(listed) = folder.stat(STATUS_JSON).map_err(|e| e.to_string())? else { return Ok(None) };
            if listed.size > MAX_STATUS_BYTES {
                return Err(format!("it is larger than {MAX_STATUS_BYTES} bytes"));
            }
            match folder.read(STATUS_JSON).map_err(|e| e.to_string())? {
                Some(bytes) => Health::parse(&bytes).map(Some),
                None => Ok(None),
            }
        };
        read().unwrap_or_else(|e| {
            tracing::warn!("cannot read {}: {e}; the log's next build replaces it", folder.describe(STATUS_JSON));
            None
        })
    }

    fn parse(bytes: &[u8]) -> Result<Health, String> {
        let document = serde_json::from_slice::<StatusJson>(bytes).map_err(|e| e.to_string())?;
        let time = |text: &Option<String>| text.as_deref().map(parse_rfc3339).transpose();
        let failing = match document.status.as_deref() {
            None | Some("failing") => true,
            Some("ok" | "archived") => false,
            Some(other) => return Err(format!("unknown status {other:?}")),
        };
        let archived = match document.status.as_deref() {
            Some("archived") => Some(document.reason.unwrap_or_default()),
            _ => None,
        };
        let failure = match (failing, time(&document.failing_since)?) {
            (true, Some(since)) => Some(Failure { since, message: document.error.unwrap_or_default() }),
            (true, None) => return Err("a failing status without failing_since".into()),
            (false, _) => None,
        };
        Ok(Health {
            last_attempt: time(&document.last_attempt)?,
            last_success: time(&document.last_success)?,
            failure,
            archived,
        })
    }

    fn render(&self, name: &str) -> Vec<u8> {
        let document = StatusJson {
            log_name: name.to_string(),
            status: Some(
                match (&self.failure, &self.archived) {
                    (Some(_), _) => "failing",
                    (None, Some(_)) => "archived",
                    (None, None) => "ok",
                }
                .to_string(),
            ),
            reason: self.archived.clone(),
            failing_since: self.failure.as_ref().map(|failure| rfc3339(failure.since)),
            error: self.failure.as_ref().map(|failure| failure.message.clone()),
            last_success: self.last_success.map(rfc3339),
            last_attempt: self.last_attempt.map(rfc3339),
        };
        let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Records this run's outcome for the log and returns what the site now
/// says of it. `changed` tells whether this run changed anything else in the
/// log's folder (a checkpoint, a torrent): when it did not and the outcome is
/// the one recorded, nothing is written. A skipped log keeps its record.
/// `recorded` is the record as this build read it, when it did.
pub fn record(
    folder: &LogFolder,
    run: &RunStatus,
    changed: bool,
    recorded: Option<Recorded>,
) -> Result<Health, LogFolderError> {
    let recorded = recorded.unwrap_or_else(|| Health::load(folder));
    let health = match run {
        RunStatus::Skipped => return Ok(recorded.unwrap_or_default()),
        RunStatus::Succeeded { at } => match recorded {
            Some(recorded) if !changed && recorded.failure.is_none() && recorded.archived.is_none() => {
                return Ok(recorded);
            }
            _ => Health { last_attempt: Some(*at), last_success: Some(*at), failure: None, archived: None },
        },
        // No longer built: the record says why and keeps the rest.
        RunStatus::Archived { reason } => {
            let recorded = recorded.unwrap_or_default();
            if recorded.archived.as_ref() == Some(reason) && recorded.failure.is_none() {
                return Ok(recorded);
            }
            Health { failure: None, archived: Some(reason.clone()), ..recorded }
        }
        RunStatus::Failed { at, message } => {
            let message = fold_line(message);
            let earlier = recorded.as_ref().and_then(|recorded| recorded.failure.as_ref());
            if let Some(recorded) = &recorded
                && !changed
                && earlier.is_some_and(|earlier| earlier.message == message)
            {
                return Ok(recorded.clone());
            }
            let since = earlier.map_or(*at, |earlier| earlier.since.min(*at));
            Health {
                last_attempt: Some(*at),
                last_success: recorded.and_then(|recorded| recorded.last_success),
                failure: Some(Failure { since, message }),
                archived: None,
            }
        }
    };
    folder.write_if_changed(STATUS_JSON, &health.render(folder.name()))?;
    Ok(health)
}

/// Folds a message onto one line of at most [`MAX_MESSAGE`] characters.
pub fn fold_line(message: &str) -> String {
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
    use crate::site::log_folder::Locks;
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

    fn failing(since: u64, message: &str, last_attempt: u64, last_success: Option<u64>) -> Health {
        Health {
            last_attempt: Some(last_attempt),
            last_success,
            failure: Some(Failure { since, message: message.into() }),
            archived: None,
        }
    }

    #[test]
    fn a_repeated_failure_keeps_its_first_time_and_its_bytes() {
        let (dir, store) = site();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", Seen::default());
        let path = dir.path().join("demo").join(STATUS_JSON);
        let first = record(&folder, &failed(1_000, "tile/data/001: HTTP 500"), false, None).unwrap();
        assert_eq!(first, failing(1_000, "tile/data/001: HTTP 500", 1_000, None));
        let bytes = fs::read(&path).unwrap();
        let modified = fs::metadata(&path).unwrap().modified().unwrap();

        let again = record(&folder, &failed(5_000, "tile/data/001: HTTP 500"), false, None).unwrap();
        assert_eq!(again, first);
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);

        let other = record(&folder, &failed(9_000, "checkpoint: HTTP 404"), false, None).unwrap();
        assert_eq!(other, failing(1_000, "checkpoint: HTTP 404", 9_000, None));
        // A failing run that still published something records its time.
        let partly = record(&folder, &failed(9_500, "checkpoint: HTTP 404"), true, None).unwrap();
        assert_eq!(partly, failing(1_000, "checkpoint: HTTP 404", 9_500, None));
    }

    #[test]
    fn success_is_recorded_when_something_changed_and_kept_through_failures() {
        let (dir, store) = site();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", Seen::default());
        let path = dir.path().join("demo").join(STATUS_JSON);
        assert_eq!(record(&folder, &RunStatus::Skipped, false, None).unwrap(), Health::default());
        assert!(!path.exists(), "a log never built has no record");

        let ok = record(&folder, &RunStatus::Succeeded { at: 1_795_000_000 }, true, None).unwrap();
        assert_eq!(
            ok,
            Health {
                last_attempt: Some(1_795_000_000),
                last_success: Some(1_795_000_000),
                failure: None,
                archived: None
            }
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"status\": \"ok\""), "{text}");
        assert!(text.contains("\"last_success\": \"2026-11-18T11:06:40Z\""), "{text}");
        // Nothing new an hour later: nothing written, the record stands.
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(record(&folder, &RunStatus::Succeeded { at: 1_795_003_600 }, false, None).unwrap(), ok);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);

        let down = record(&folder, &failed(1_795_007_200, "boom"), false, None).unwrap();
        assert_eq!(down, failing(1_795_007_200, "boom", 1_795_007_200, Some(1_795_000_000)));
        assert_eq!(record(&folder, &RunStatus::Skipped, false, None).unwrap(), down, "a skipped run shows the record");
        // Back up: written even when nothing else changed.
        let up = record(&folder, &RunStatus::Succeeded { at: 1_795_010_800 }, false, None).unwrap();
        assert_eq!(up.failure, None);
        assert_eq!(up.last_success, Some(1_795_010_800));
    }

    #[test]
    fn a_failure_file_of_an_older_version_reads_as_failing() {
        let old = br#"{"log_name": "demo", "last_build": "failed", "failing_since": "2026-11-18T11:06:40Z",
            "error": "checkpoint: HTTP 500"}"#;
        assert_eq!(
            Health::parse(old).unwrap(),
            Health {
                last_attempt: None,
                last_success: None,
                failure: Some(Failure { since: 1_795_000_000, message: "checkpoint: HTTP 500".into() }),
                archived: None,
            }
        );
        let health = failing(7, "x", 9, Some(3));
        assert_eq!(Health::parse(&health.render("demo")).unwrap(), health);
        assert!(Health::parse(br#"{"log_name": "demo", "status": "weird"}"#).is_err());
    }

    #[test]
    fn an_archived_log_says_why_once_and_keeps_its_last_success() {
        let (dir, store) = site();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", Seen::default());
        let path = dir.path().join("demo").join(STATUS_JSON);
        record(&folder, &RunStatus::Succeeded { at: 1_000 }, true, None).unwrap();
        let archived = RunStatus::Archived { reason: "its state is rejected in the CT log list".into() };
        let health = record(&folder, &archived, false, None).unwrap();
        assert_eq!(health.archived.as_deref(), Some("its state is rejected in the CT log list"));
        assert_eq!(health.last_success, Some(1_000));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"status\": \"archived\"") && text.contains("\"reason\": \"its state"), "{text}");
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(record(&folder, &archived, false, None).unwrap(), health);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified, "said once");
        assert_eq!(Health::parse(text.as_bytes()).unwrap(), health);
        // Back in the selection: built, and no longer archived.
        let back = record(&folder, &RunStatus::Succeeded { at: 2_000 }, false, None).unwrap();
        assert_eq!(back.archived, None);
    }

    #[test]
    fn a_damaged_status_file_is_ignored() {
        let (dir, store) = site();
        let locks = Locks::new(&store);
        let folder = LogFolder::new(&locks, "demo", Seen::default());
        let path = dir.path().join("demo").join(STATUS_JSON);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"{not json").unwrap();
        assert_eq!(record(&folder, &RunStatus::Skipped, false, None).unwrap(), Health::default());
        let health = record(&folder, &failed(7, "x"), false, None).unwrap();
        assert_eq!(health.failure.map(|f| f.since), Some(7));
    }

    #[test]
    fn messages_fold_onto_one_short_line() {
        assert_eq!(fold_line("a\n  b\tc\r\n"), "a b c");
        let long = "é".repeat(400);
        let folded = fold_line(&long);
        assert_eq!(folded.chars().count(), MAX_MESSAGE + 1);
        assert!(folded.ends_with('…'));
    }
}
