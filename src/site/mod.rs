//! The output directory: atomic writes, the build lock, the published state,
//! and the files people and feed readers use.

pub mod atomic;
pub mod json;
pub mod links;
pub mod lock;
pub mod state;

use std::path::Path;

use thiserror::Error;

use crate::config::Config;
use atomic::{WriteError, write_if_changed};
use links::LogLinks;
use state::{LogState, StateError, TORRENTS_JSON};

/// How this run went for one log, for the pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Brought up to date at this Unix time.
    Succeeded { at: u64 },
    /// Failed at this Unix time; `message` is the one-line reason.
    Failed { at: u64, message: String },
    /// Not part of this run (`--log` chose others).
    Skipped,
}

/// One configured log's result in this run.
#[derive(Clone, Debug)]
pub struct LogRun {
    pub name: String,
    pub status: RunStatus,
}

#[derive(Debug, Error)]
pub enum SiteError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Regenerates every file derived from the logs' published state. Files whose
/// bytes would not change are left alone.
pub fn publish(config: &Config, out_dir: &Path, runs: &[LogRun]) -> Result<(), SiteError> {
    for log in &config.logs {
        let _run = runs.iter().find(|run| run.name == log.name);
        let dir = out_dir.join(&log.name);
        let state = LogState::load(&dir, &log.name)?;
        if state.torrents.is_empty() && !dir.exists() {
            continue;
        }
        write_if_changed(&dir.join(TORRENTS_JSON), &state.torrents_json(&LogLinks::new(config, log)))?;
    }
    Ok(())
}
