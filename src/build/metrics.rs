//! `--metrics-file`: the run's outcome in the Prometheus text exposition
//! format (version 0.0.4), written atomically at the end of every run, so
//! that node_exporter's textfile collector — which reads `*.prom` files from
//! a folder — exposes it and an alert can fire on a log failing for too long,
//! falling behind, or a build that stopped running (docs/health.md).
//!
//! Per log, from the same [`LogSummary`] the site shows: failing (0/1),
//! entries behind, last success and torrents. Per run: its duration, when it
//! ended, and how many of its logs failed.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::site::summary::LogSummary;
use crate::store::WriteError;
use crate::store::local::atomic::write_atomic;

/// What a run adds to the logs' summaries.
pub struct RunFacts {
    pub duration: Duration,
    /// Unix seconds when the run ended.
    pub ended: u64,
    /// Logs of this run whose build failed.
    pub logs_failed: usize,
}

/// Writes the metrics of a run to `path`, replacing it atomically (the
/// temporary name ends in `.tmp`, which the textfile collector skips).
pub fn write(path: &Path, logs: &[LogSummary], run: &RunFacts) -> Result<(), WriteError> {
    write_atomic(path, render(logs, run).as_bytes())
}

/// The exposition text.
pub fn render(logs: &[LogSummary], run: &RunFacts) -> String {
    let mut text = String::new();
    let mut family = |name: &str, help: &str, samples: &mut dyn Iterator<Item = (Option<&str>, String)>| {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} gauge");
        for (log, value) in samples {
            match log {
                Some(log) => {
                    let _ = writeln!(text, "{name}{{log=\"{}\"}} {value}", label(log));
                }
                None => {
                    let _ = writeln!(text, "{name} {value}");
                }
            }
        }
    };
    family(
        "helio_log_failing",
        "Whether the log's last build failed (1) or not (0).",
        &mut logs.iter().map(|log| (Some(log.name.as_str()), u8::from(log.is_failing()).to_string())),
    );
    family(
        "helio_log_failing_since_timestamp_seconds",
        "When the log's current run of failures began (Unix time); absent while it is not failing.",
        &mut logs.iter().filter_map(|log| {
            log.health.failure.as_ref().map(|failure| (Some(log.name.as_str()), failure.since.to_string()))
        }),
    );
    family(
        "helio_log_entries_behind",
        "Entries of the log's verified tree that no published torrent covers yet.",
        &mut logs.iter().map(|log| (Some(log.name.as_str()), log.entries_behind().to_string())),
    );
    family(
        "helio_log_entries_covered",
        "Entries covered by the log's published torrents.",
        &mut logs.iter().map(|log| (Some(log.name.as_str()), log.entries_covered.to_string())),
    );
    family(
        "helio_log_last_success_timestamp_seconds",
        "When a build last changed something for the log and succeeded (Unix time); absent before the first.",
        &mut logs.iter().filter_map(|log| log.health.last_success.map(|at| (Some(log.name.as_str()), at.to_string()))),
    );
    family(
        "helio_log_torrents",
        "Torrents published for the log.",
        &mut logs.iter().map(|log| (Some(log.name.as_str()), log.torrents.to_string())),
    );
    family(
        "helio_build_duration_seconds",
        "How long the last helio build ran.",
        &mut std::iter::once((None, format!("{:.3}", run.duration.as_secs_f64()))),
    );
    family(
        "helio_build_last_run_timestamp_seconds",
        "When the last helio build ended (Unix time).",
        &mut std::iter::once((None, run.ended.to_string())),
    );
    family(
        "helio_build_logs_failed",
        "Logs whose build failed in the last run.",
        &mut std::iter::once((None, run.logs_failed.to_string())),
    );
    text
}

/// A label value as the exposition format escapes it: backslash, double
/// quote and line feed.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::sample::Sample;

    #[test]
    fn every_log_gets_its_gauges_and_labels_are_escaped() {
        let sample = Sample::new();
        let logs = sample.summaries();
        let run = RunFacts { duration: Duration::from_millis(1500), ended: 1_795_000_000, logs_failed: 1 };
        let text = render(&logs, &run);
        assert!(text.contains("helio_log_failing{log=\"demo\"} 0\n"), "{text}");
        assert!(text.contains("helio_log_failing{log=\"a&b <\\\"c'> é\"} 1\n"), "{text}");
        assert!(text.contains("helio_log_failing_since_timestamp_seconds{log=\"a&b <\\\"c'> é\"} 1795020000\n"));
        assert!(text.contains("helio_log_entries_behind{log=\"demo\"} 228\n"), "{text}");
        assert!(text.contains("helio_log_torrents{log=\"demo\"} 3\n"), "{text}");
        assert!(text.contains("helio_build_duration_seconds 1.500\n"), "{text}");
        assert!(text.contains("helio_build_last_run_timestamp_seconds 1795000000\n"), "{text}");
        assert!(text.contains("helio_build_logs_failed 1\n"), "{text}");
        assert_eq!(text.matches("# TYPE").count(), 9);
        assert_eq!(label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
