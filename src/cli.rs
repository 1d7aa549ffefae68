//! The command line (clap derive types only).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Publish Static Certificate Transparency logs over BitTorrent.
#[derive(Debug, Parser)]
#[command(name = "helio", version = env!("HELIO_BUILD_VERSION"), about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `-c`, for the commands that read the config.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file [default: $HELIO_CONFIG, else ./helio.yaml]
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `-q` and `-v`, for the commands that log what they do.
#[derive(Clone, Copy, Debug, Args)]
pub struct VerbosityArgs {
    /// Only warnings and errors
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail (-vv for even more)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch, verify and publish new ranges of every log, then exit.
    ///
    /// Progress bars appear only on a terminal, and not with -q. Exit
    /// status: 0 success (including nothing new), 1 at least one log failed
    /// (the others were still published), 2 bad usage or configuration, 3
    /// another build holds the lock of a log of this run (the other logs were
    /// still published), or the root's.
    Build(BuildArgs),

    /// Serve torrents' bytes to BitTorrent clients (BEP 19 WebSeed) and the
    /// output folder, over HTTP and HTTPS, until SIGINT or SIGTERM (SIGHUP
    /// reloads the certificate).
    Serve(ServeArgs),

    /// Write a starter config (to -c FILE or ./helio.yaml), optionally with
    /// every Static CT log of a CT log list.
    Init(InitArgs),

    /// Prove downloaded ranges against the log's checkpoint on the published site.
    ///
    /// Each PATH is a range as a BitTorrent client saves it
    /// (`<log>-L01-<start>-<end>/`), or a folder holding some. Exit status: 0
    /// every range verified, 1 a file, tile or checkpoint did not verify (the
    /// message names it), 2 bad usage.
    Verify(VerifyArgs),

    /// Serve downloaded ranges as a Static CT log's monitoring prefix
    /// (static-ct-api), each tile proved against the log's checkpoint.
    ///
    /// The ranges are verified at startup as `helio verify` does; tiles they
    /// lack come from the site's proof tiles or --upstream, checked before
    /// they are served, else 404. Runs until SIGINT or SIGTERM. Exit status:
    /// 0 after a signal, 1 a file, tile or checkpoint did not verify at
    /// startup (the message names it), 2 bad usage or a port that cannot be used.
    Mirror(MirrorArgs),

    /// List the configured logs: name, format, whether final, log URL.
    ///
    /// With --json, one line holding an array of objects {"name", "log_url",
    /// "final", "format"}, e.g. for a CI matrix of one job per log.
    Logs(LogsArgs),

    /// Print the completion script for a shell.
    ///
    /// bash: `helio completions bash > ~/.local/share/bash-completion/completions/helio`;
    /// zsh: into a folder of $fpath as `_helio`; fish:
    /// `~/.config/fish/completions/helio.fish`.
    Completions(CompletionsArgs),

    /// Print the man page (roff): helio(1), or helio-COMMAND(1) for a command.
    ///
    /// `helio man | man -l -` reads it; release archives carry every page.
    Man(ManArgs),

    /// Generate a valid Static CT log for demos, tests and benchmarks.
    #[cfg(feature = "fixture")]
    #[command(hide = true)]
    Fixture(FixtureArgs),

    /// Serve a log directory on a free loopback port, as the tests' fixture
    /// server does: the upstream of `benches/serve.sh`. Runs until killed.
    #[cfg(feature = "fixture")]
    #[command(hide = true)]
    FixtureServe(FixtureServeArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,

    /// Where to write torrents, feeds and pages: a folder, or s3://BUCKET/PREFIX
    /// [default: the config's torrent_dir]
    pub out_dir: Option<PathBuf>,

    /// Only this log (repeatable)
    #[arg(long = "log", value_name = "NAME")]
    pub logs: Vec<String>,

    /// The run budget: no new range starts after this long (e.g. 50m, 5h30m);
    /// the next run continues [default: the config's max_time, else none]
    #[arg(long, value_name = "DURATION", value_parser = parse_run_budget)]
    pub max_time: Option<std::time::Duration>,

    /// First restore each log's published state (torrents.json, checkpoint
    /// and the .torrent files they list, each checked against its infohash)
    /// from the site at URL (what feed_url_base points at), so that a runner
    /// that starts empty builds on what is published (into a folder; a bucket
    /// is read directly)
    #[arg(long, value_name = "URL")]
    pub resume_from: Option<String>,

    /// A log failing for less than this long is only a warning; past it, the
    /// run exits 1 (e.g. 3h) [default: the config's alert_after, else at once]
    #[arg(long, value_name = "DURATION", value_parser = parse_alert_after)]
    pub alert_after: Option<std::time::Duration>,

    /// Write Prometheus metrics (text format, for node_exporter's textfile
    /// collector) to FILE after the run [default: the config's metrics_file]
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

fn parse_alert_after(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("{error} (write e.g. 30m, 3h or 1d)"))
}

fn parse_run_budget(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if !duration.is_zero() => crate::config::check_duration(duration),
        Ok(_) => Err("must be longer than 0s".into()),
        Err(error) => Err(format!("{error} (write e.g. 90s, 50m or 5h30m)")),
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The folder served under /torrents/: where helio build writes
    /// [default: the config's torrent_dir]
    pub out_dir: Option<PathBuf>,

    #[command(flatten)]
    pub config: ConfigArg,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,

    /// Address to listen on for HTTP [default: [::]:<http_port> from the config]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Address to listen on for HTTPS, with the config's tls_cert and
    /// tls_key [default: [::]:<https_port> from the config]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen_https: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the config [default: $HELIO_CONFIG, else ./helio.yaml]
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,

    /// Build the Static CT logs of a CT log list (v3 JSON) file or URL: the
    /// config names the list (`log_list:`), so new shards are picked up by
    /// themselves; without a value, Google's list of all logs
    #[arg(long, value_name = "FILE_OR_URL", num_args = 0..=1, default_missing_value = crate::config::log_list::DEFAULT_LOG_LIST)]
    pub log_list: Option<String>,

    /// Write every selected log of the list under `logs:` instead of naming
    /// the list (a config that no longer follows the list)
    #[arg(long, requires = "log_list")]
    pub expand: bool,

    /// The states of the list's logs to build, comma-separated: usable,
    /// qualified, readonly, retired, pending, rejected, none (no state)
    /// [default: usable,qualified,readonly,retired]
    #[arg(long, value_name = "STATES", value_delimiter = ',', requires = "log_list")]
    pub states: Vec<String>,

    /// The contact e-mail put in the User-Agent (`scraper_contact_email`),
    /// which logs fetched over HTTP require
    #[arg(long, value_name = "EMAIL")]
    pub contact: Option<String>,

    /// Ask for the contact, URLs and which logs to keep
    #[arg(long)]
    pub interactive: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A downloaded range's folder, or a folder of them
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The log's folder on the published site (where feed.xml, checkpoint and
    /// the proof tiles are), as a URL or a local path
    #[arg(long, value_name = "URL_OR_DIR")]
    pub site: String,

    /// The log's public key: base64 DER SubjectPublicKeyInfo as in the CT log
    /// list, or a signed-note verifier key. Without it the checkpoint's
    /// signature is not checked
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// The checkpoint origin to expect [default: the checkpoint's first line]
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

#[derive(Debug, Args)]
pub struct MirrorArgs {
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// The log's monitoring prefix, where tiles and issuers the downloads
    /// do not hold are fetched from (and checked) [default: none: 404]
    #[arg(long, value_name = "LOG_URL")]
    pub upstream: Option<String>,

    /// Address to listen on [default: [::]:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Memory for cached tiles, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub cache_mb: u64,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// One line of JSON: an array of {"name", "log_url", "final", "format"}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete helio's commands and flags in
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command, for its own page (helio-COMMAND(1)) [default: helio(1)]
    pub command: Option<String>,
}

#[cfg(feature = "fixture")]
#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// The log directory to create or grow
    pub dir: PathBuf,
    /// Entries in the log
    #[arg(long)]
    pub size: u64,
    /// The log's origin (checkpoint first line)
    #[arg(long, default_value = "demo.helio.invalid")]
    pub origin: String,
    /// Seed: the same seed and size give the same bytes
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Store data tiles gzip-compressed, as Sunlight does
    #[arg(long)]
    pub gzip: bool,
}

#[cfg(feature = "fixture")]
#[derive(Debug, Args)]
pub struct FixtureServeArgs {
    /// The log directory to serve
    pub dir: PathBuf,
    /// Send every data tile gzip-compressed, whatever the client asks
    #[arg(long)]
    pub gzip: bool,
    /// Wait this long before every answer (e.g. 50ms: a log across the internet)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub latency: std::time::Duration,
    /// Answer every data tile with this many MiB of zeros, gzipped (a
    /// decompression bomb, for the memory benchmark)
    #[arg(long, value_name = "MIB")]
    pub gzip_bomb: Option<usize>,
}
