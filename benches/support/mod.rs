//! What the benchmarks share: running a command while sampling its peak
//! memory, and printing times.

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Measured {
    pub wall: Duration,
    pub peak_rss: u64,
    pub success: bool,
}

/// Runs a command, sampling its peak resident set size from /proc.
pub fn measure(command: &mut Command) -> Measured {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::null()).spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kb) = text.lines().find_map(|l| l.strip_prefix("VmHWM:"))
        {
            let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            peak_rss = peak_rss.max(kb * 1024);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Measured { wall: started.elapsed(), peak_rss, success: status.success() }
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
