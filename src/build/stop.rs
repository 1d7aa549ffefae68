//! When a build stops starting work: the run budget (`--max-time`) has
//! passed, or the operator asked it to stop (SIGINT, Ctrl-C on a terminal,
//! or SIGTERM, as `systemctl stop` sends). Either way no range starts any
//! more, the ranges under way finish and every log is published as usual, so
//! an interrupted build leaves a complete site behind; a second signal ends
//! the process at once (the site then is as a kill leaves it: consistent,
//! with the logs under way published up to their last torrent).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Whether a build should stop starting work.
pub struct Stop {
    deadline: Option<Instant>,
    asked: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
    said: AtomicBool,
    handlers: Vec<SigId>,
}

impl Stop {
    /// Stops at `deadline`, or at the first SIGINT or SIGTERM (the second
    /// exits with status 128 + the signal's number).
    pub fn new(deadline: Option<Instant>) -> Stop {
        let asked = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
        let mut handlers = Vec::new();
        for number in [SIGINT, SIGTERM] {
            // In the order they run: a second signal exits, the first asks.
            let mut register = || -> std::io::Result<()> {
                let flag = Arc::clone(&asked);
                handlers.push(signal_hook::flag::register_conditional_shutdown(number, 128 + number, flag)?);
                handlers.push(signal_hook::flag::register(number, Arc::clone(&asked))?);
                handlers.push(signal_hook::flag::register_usize(number, Arc::clone(&signal), number as usize)?);
                Ok(())
            };
            // Without the handlers a signal ends the build as a kill does.
            if let Err(error) = register() {
                tracing::debug!("cannot handle signal {number}: {error}");
            }
        }
        Stop { deadline, asked, signal, said: AtomicBool::new(false), handlers }
    }

    /// A stop that only the deadline brings (tests).
    pub fn at(deadline: Option<Instant>) -> Stop {
        Stop {
            deadline,
            asked: Arc::new(AtomicBool::new(false)),
            signal: Arc::new(AtomicUsize::new(0)),
            said: AtomicBool::new(false),
            handlers: Vec::new(),
        }
    }

    /// Whether no work may start any more.
    pub fn now(&self) -> bool {
        if self.asked.load(Ordering::Relaxed) {
            if !self.said.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "stopping: the ranges under way finish and every log is published; \
                     a second Ctrl-C (or SIGTERM) stops at once"
                );
            }
            return true;
        }
        self.deadline.is_some_and(|deadline| Instant::now() >= deadline)
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The signal that asked the build to stop, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            number => i32::try_from(number).ok(),
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        for id in self.handlers.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
