//! The crate's edge: every command ends in `Ok(())` or one [`Error`], which
//! is printed once, as `helio: <what failed>`, and picks the exit status
//! (docs/spec.md §1). Problems that do not end a run (one log failing among many)
//! are logged where they happen and summed up here.

use std::io::Write;

use thiserror::Error;

use crate::error_chain::one_line;

use crate::build::BuildError;
use crate::config::ConfigError;
use crate::environment::EnvError;
use crate::init::InitError;
use crate::manual::ManualError;
use crate::serve::ServeError;
use crate::site::resume::ResumeError;
use crate::store::{StoreError, TargetError};
use crate::subscribe::mirror::MirrorError;
use crate::subscribe::verify::RangeVerifyError;

/// How a command ended, as its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Done (including "nothing new").
    Success = 0,
    /// At least one log failed; the others were processed and published
    /// (`helio verify`, `helio mirror`: a range or its proof did not verify).
    LogFailed = 1,
    /// Bad usage or configuration; nothing was written.
    Usage = 2,
    /// Another build holds the lock of a log of this run.
    Locked = 3,
    /// Stopped by SIGINT (128 + 2), after publishing what was under way.
    Interrupted = 130,
    /// Stopped by SIGTERM (128 + 15), after publishing what was under way.
    Terminated = 143,
}

/// Why a command failed.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Environment(#[from] EnvError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Verify(#[from] RangeVerifyError),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error(transparent)]
    LogList(#[from] crate::site::log_list::ExpandError),
    #[error(transparent)]
    Manual(#[from] ManualError),
    #[error(
        "--resume-from restores a site into a folder that starts empty; {url} is the published site \
         itself, which helio build reads its state from: drop --resume-from"
    )]
    ResumeIntoBucket { url: String },
    #[cfg(feature = "fixture")]
    #[error("{}: {source}", path.display())]
    Fixture { path: std::path::PathBuf, source: std::io::Error },
}

impl Error {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Config(_) | Error::Environment(_) => ExitStatus::Usage,
            Error::Build(error) => match error {
                BuildError::UnknownLog { .. } | BuildError::Config(_) => ExitStatus::Usage,
                BuildError::LogList(crate::site::log_list::ExpandError::Config(_)) => ExitStatus::Usage,
                BuildError::LogList(_) => ExitStatus::LogFailed,
                BuildError::Held { .. } => ExitStatus::Locked,
                BuildError::Interrupted { signal: signal_hook::consts::SIGTERM } => ExitStatus::Terminated,
                BuildError::Interrupted { .. } => ExitStatus::Interrupted,
                BuildError::Store(error) | BuildError::Resume(ResumeError::Store(error)) => store_status(error),
                BuildError::Resume(error) if error.is_usage() => ExitStatus::Usage,
                BuildError::Site(error) if error.is_held() => ExitStatus::Locked,
                BuildError::Resume(_)
                | BuildError::LogsFailed { .. }
                | BuildError::Site(_)
                | BuildError::Metrics(_)
                | BuildError::RootPanicked => ExitStatus::LogFailed,
            },
            Error::Serve(_) => ExitStatus::Usage,
            Error::Init(error) if error.is_usage() => ExitStatus::Usage,
            Error::Init(_) => ExitStatus::LogFailed,
            Error::Verify(error) if error.is_usage() => ExitStatus::Usage,
            Error::Verify(_) => ExitStatus::LogFailed,
            Error::Mirror(error) if error.is_usage() => ExitStatus::Usage,
            Error::Mirror(_) => ExitStatus::LogFailed,
            Error::Target(_) | Error::ResumeIntoBucket { .. } | Error::Manual(_) => ExitStatus::Usage,
            Error::Store(error) | Error::Resume(ResumeError::Store(error)) => store_status(error),
            Error::Resume(error) if error.is_usage() => ExitStatus::Usage,
            Error::Resume(_) => ExitStatus::LogFailed,
            Error::LogList(crate::site::log_list::ExpandError::Config(_)) => ExitStatus::Usage,
            Error::LogList(_) => ExitStatus::LogFailed,
            #[cfg(feature = "fixture")]
            Error::Fixture { .. } => ExitStatus::LogFailed,
        }
    }
}

fn store_status(error: &StoreError) -> ExitStatus {
    if error.is_held() {
        ExitStatus::Locked
    } else if error.is_usage() {
        ExitStatus::Usage
    } else {
        ExitStatus::LogFailed
    }
}

/// Writes `helio: <error>` to `out`. A closed stream is no reason to fail.
pub fn report(error: &Error, out: &mut dyn Write) {
    let _ = writeln!(out, "helio: {}", one_line(error));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_and_usage_pick_their_statuses() {
        let lock = crate::store::LockError::Held { dir: "out".into() };
        let held = Error::Build(BuildError::Held { held: lock.into(), more: 0 });
        assert_eq!(held.exit_status(), ExitStatus::Locked);
        let failed = Error::Build(BuildError::LogsFailed { failed: vec!["a".into()], total: 2 });
        assert_eq!(failed.exit_status(), ExitStatus::LogFailed);
        assert_eq!(held.exit_status() as u8, 3);
    }
}
