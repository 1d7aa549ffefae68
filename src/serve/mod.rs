//! `helio serve`: the WebSeed (BEP 19) server that hands a torrent's bytes to
//! BitTorrent clients by proxying and caching the log, and serves the output
//! directory.

use std::net::SocketAddr;

use crate::build::Outcome;
use crate::config::Config;
use crate::output::Output;

/// Runs the server until SIGINT or SIGTERM.
pub fn run(_config: &Config, _listen: Option<SocketAddr>, _output: &Output) -> Outcome {
    tracing::error!("helio serve is not built yet");
    Outcome::Usage
}
