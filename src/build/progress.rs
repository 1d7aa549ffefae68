//! Progress of one range: a bar on a terminal, nothing otherwise (the build
//! logs a line when a range starts and when it is done).

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

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
