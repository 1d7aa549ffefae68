//! What helio tells its operator: log lines (tracing) and progress bars
//! (indicatif) on stderr, results on stdout. Bars appear only on a terminal
//! and not with `-q`; log lines are routed around them so neither garbles the
//! other. A cron job sees one line per milestone and nothing when nothing
//! changed.

use std::io::{self, IsTerminal, Write};

use indicatif::{MultiProgress, ProgressDrawTarget};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How chatty to be, from `-q` / `-v`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Trace,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: u8) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            _ => Verbosity::Trace,
        }
    }
}

/// The terminal side of a run.
#[derive(Clone)]
pub struct Output {
    pub progress: MultiProgress,
    /// Whether stderr is a person's terminal (bars shown, colour on).
    pub interactive: bool,
    pub verbosity: Verbosity,
}

impl Output {
    /// Sets up logging; `HELIO_LOG` (tracing filter syntax) overrides the level.
    pub fn init(verbosity: Verbosity) -> Output {
        let interactive = io::stderr().is_terminal();
        let target = if interactive && verbosity != Verbosity::Quiet {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let progress = MultiProgress::with_draw_target(target);
        let level = match verbosity {
            Verbosity::Quiet => "warn",
            Verbosity::Normal => "info",
            Verbosity::Verbose => "debug",
            Verbosity::Trace => "trace",
        };
        let filter =
            EnvFilter::try_from_env("HELIO_LOG").unwrap_or_else(|_| EnvFilter::new(format!("helio={level},warn")));
        let writer = BarSafeStderr { progress: progress.clone() };
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_target(false)
            .with_ansi(interactive);
        // A terminal shows when things happen; logs captured by cron or journald
        // get a timestamp from us, since cron mail has none.
        let _ = if interactive { builder.without_time().try_init() } else { builder.try_init() };
        Output { progress, interactive, verbosity }
    }
}

impl Output {
    /// Prints a result line on stdout. A closed pipe (`helio build | head -1`)
    /// is not an error worth stopping a build for, so write errors are ignored.
    pub fn result(&self, line: &str) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    }
}

impl Output {
    /// Prints a line for the person at the terminal on stderr, around the bars.
    pub fn note(&self, line: &str) {
        self.progress.suspend(|| {
            let mut stderr = io::stderr().lock();
            let _ = writeln!(stderr, "{line}");
        });
    }
}

/// Writes log lines to stderr with any progress bars lifted out of the way.
#[derive(Clone)]
struct BarSafeStderr {
    progress: MultiProgress,
}

impl Write for BarSafeStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.progress.suspend(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for BarSafeStderr {
    type Writer = BarSafeStderr;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
