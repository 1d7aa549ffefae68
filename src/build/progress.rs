//! Progress on a terminal: a line for the run ([`RunProgress`]) above a bar
//! per range being built ([`RangeProgress`]); nothing otherwise (the build
//! logs a line when a torrent is written).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};

use crate::log::host::{HostGate, Hosts};

pub struct RangeProgress {
    bar: ProgressBar,
    bytes: AtomicU64,
}

impl RangeProgress {
    /// A bar counting the range's level-0 and data tiles.
    pub fn new(multi: &indicatif::MultiProgress, label: String, tiles: u64) -> RangeProgress {
        let bar = multi.add(ProgressBar::new(tiles));
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} tiles, {msg} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label);
        RangeProgress { bar, bytes: AtomicU64::new(0) }
    }

    /// A progress that shows nothing (tests, quiet runs).
    pub fn hidden() -> RangeProgress {
        RangeProgress { bar: ProgressBar::hidden(), bytes: AtomicU64::new(0) }
    }

    pub fn tile(&self, bytes: usize) {
        let total = self.bytes.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        self.bar.set_message(HumanBytes(total).to_string());
        self.bar.inc(1);
    }

    /// Bytes of tiles seen so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn restart(&self) {
        self.bytes.store(0, Ordering::Relaxed);
        self.bar.reset();
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The line above the ranges' bars on a terminal: logs done of all, how
/// many failed, and the hosts the build is waiting on — those with a
/// request out and no answer for [`STALLED_AFTER`] — so a screen that stands
/// still says why. Nothing is drawn off a terminal.
pub struct RunProgress {
    bar: ProgressBar,
    total: usize,
    done: AtomicU64,
    failing: AtomicU64,
    hosts: Mutex<Vec<Arc<HostGate>>>,
    finished: AtomicBool,
}

/// How long a host may keep a request unanswered before the line names it.
pub const STALLED_AFTER: Duration = Duration::from_secs(2);

/// How many stalled hosts the line names.
const NAMED_HOSTS: usize = 3;

impl RunProgress {
    /// The line for a run over `total` logs, first among `multi`'s bars.
    pub fn new(multi: &MultiProgress, total: usize) -> RunProgress {
        let bar = multi.insert(0, ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let progress = RunProgress {
            bar,
            total,
            done: AtomicU64::new(0),
            failing: AtomicU64::new(0),
            hosts: Mutex::new(Vec::new()),
            finished: AtomicBool::new(false),
        };
        progress.refresh();
        progress
    }

    /// The hosts whose stalls the line reports.
    pub fn watch(&self, hosts: &Hosts) {
        *self.hosts.lock().unwrap_or_else(PoisonError::into_inner) = hosts.iter().cloned().collect();
    }

    /// A log is done (published, failed, or left to another build).
    pub fn log_done(&self, failed: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failing.fetch_add(1, Ordering::Relaxed);
        }
        self.refresh();
    }

    /// Redraws the line; [`RunProgress::tick`] calls it until the run ends.
    pub fn refresh(&self) {
        if self.bar.is_hidden() {
            return;
        }
        let now = Instant::now();
        let stalled: Vec<String> = self
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|gate| gate.stalled(now, STALLED_AFTER))
            .map(|gate| gate.key().split_once("://").map_or(gate.key(), |(_, host)| host).to_string())
            .collect();
        self.bar.set_message(line(
            self.done.load(Ordering::Relaxed),
            self.total,
            self.failing.load(Ordering::Relaxed),
            &stalled,
        ));
        self.bar.tick();
    }

    /// Redraws the line every quarter second until [`RunProgress::finish`].
    pub fn tick(&self) {
        while !self.bar.is_hidden() && !self.finished.load(Ordering::Relaxed) {
            self.refresh();
            std::thread::park_timeout(Duration::from_millis(250));
        }
    }

    pub fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        self.bar.finish_and_clear();
    }
}

/// `logs 12/60 done · 2 failing · waiting on 3 hosts: a, b, c`.
fn line(done: u64, total: usize, failing: u64, stalled: &[String]) -> String {
    let mut line = format!("logs {done}/{total} done");
    if failing > 0 {
        line.push_str(&format!(" · {failing} failing"));
    }
    if !stalled.is_empty() {
        let hosts = if stalled.len() == 1 { "host" } else { "hosts" };
        let mut names = stalled.iter().take(NAMED_HOSTS).cloned().collect::<Vec<_>>().join(", ");
        if stalled.len() > NAMED_HOSTS {
            names.push_str(&format!(" and {} more", stalled.len() - NAMED_HOSTS));
        }
        line.push_str(&format!(" · waiting on {} {hosts}: {names}", stalled.len()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_line_names_a_few_stalled_hosts() {
        assert_eq!(line(3, 60, 0, &[]), "logs 3/60 done");
        let hosts: Vec<String> = ["a.example", "b.example:8443", "c.example", "d.example"].map(String::from).to_vec();
        assert_eq!(line(57, 60, 2, &hosts[..1]), "logs 57/60 done · 2 failing · waiting on 1 host: a.example");
        assert_eq!(
            line(57, 60, 0, &hosts),
            "logs 57/60 done · waiting on 4 hosts: a.example, b.example:8443, c.example and 1 more"
        );
    }
}
