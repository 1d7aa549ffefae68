//! helio publishes Static Certificate Transparency logs over BitTorrent.
//!
//! `helio build` turns a log's verified tiles into BitTorrent v1 torrents,
//! feeds and pages; `helio serve` is the WebSeed that hands clients the bytes.
//! The modules follow the data: `config` → `log` (fetch, verify) → `torrent`
//! (hash, encode) → `site` (write), strung together by `build`.

#![forbid(unsafe_code)]

pub mod build;
pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fixture;
pub mod init;
pub mod log;
pub mod output;
pub mod serve;
pub mod site;
pub mod torrent;

use std::path::PathBuf;
use std::process::ExitCode;

use build::{BuildOptions, Outcome};
use cli::{Cli, Command};
use config::Config;
use output::{Output, Verbosity};

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let output = Output::init(Verbosity::from_flags(cli.quiet, cli.verbose));
    let outcome = match cli.command {
        Command::Build(args) => match load_config(cli.config) {
            Ok(config) => {
                let out_dir = args.out_dir.unwrap_or_else(|| config.torrent_dir.clone());
                build::run(&config, &BuildOptions { out_dir, only: args.logs }, &output)
            }
            Err(outcome) => outcome,
        },
        Command::Serve(args) => match load_config(cli.config) {
            Ok(config) => serve::run(&config, args.listen, &output),
            Err(outcome) => outcome,
        },
        Command::Init(args) => init_command(cli.config, &args),
        Command::Fixture(args) => fixture_command(&args),
        Command::FixtureServe(args) => fixture_serve(&args),
    };
    ExitCode::from(outcome as u8)
}

/// `-c`, else `$HELIO_CONFIG`, else `./helio.yaml`.
fn load_config(flag: Option<PathBuf>) -> Result<Config, Outcome> {
    let path = flag
        .or_else(|| std::env::var_os("HELIO_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG));
    Config::load(&path).map_err(|error| {
        eprintln!("helio: {error}");
        Outcome::Usage
    })
}

fn init_command(path: Option<PathBuf>, args: &cli::InitArgs) -> Outcome {
    let path = path
        .or_else(|| std::env::var_os("HELIO_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG));
    let result = (|| {
        let mut logs = match &args.log_list {
            Some(source) => init::read_log_list(source)?,
            None => Vec::new(),
        };
        let answers = if args.interactive {
            let stdin = std::io::stdin();
            init::ask(&mut stdin.lock(), &mut std::io::stderr(), &mut logs)?
        } else {
            init::Answers::default()
        };
        init::write(&path, &init::render(&logs, &answers))
    })();
    match result {
        Ok(count) => {
            println!("wrote {} with {count} log{}", path.display(), if count == 1 { "" } else { "s" });
            Outcome::Success
        }
        Err(error @ init::InitError::Fetch(_)) => {
            eprintln!("helio: {error}");
            Outcome::LogFailed
        }
        Err(error) => {
            eprintln!("helio: {error}");
            Outcome::Usage
        }
    }
}

fn fixture_command(args: &cli::FixtureArgs) -> Outcome {
    let spec = fixture::generate::LogSpec {
        origin: args.origin.clone(),
        seed: args.seed,
        size: args.size,
        gzip_data_tiles: args.gzip,
    };
    match fixture::generate::write_log(&args.dir, &spec) {
        Ok(log) => {
            println!("origin: {}\nsize: {}\nkey: {}\ned25519 key: {}", log.origin, log.size, log.key, log.ed25519_key);
            Outcome::Success
        }
        Err(error) => {
            eprintln!("helio: {}: {error}", args.dir.display());
            Outcome::LogFailed
        }
    }
}

/// Serves a log directory on loopback until the process is killed; prints
/// `listening on http://ADDR/` first.
fn fixture_serve(args: &cli::FixtureServeArgs) -> Outcome {
    let options = fixture::server::ServerOptions { gzip_data_tiles: args.gzip };
    match fixture::server::LogServer::start(&args.dir, options) {
        Ok(server) => {
            println!("listening on {}", server.url());
            loop {
                std::thread::park();
            }
        }
        Err(error) => {
            eprintln!("helio: {}: {error}", args.dir.display());
            Outcome::Usage
        }
    }
}

/// Where the shared real-world test data lives, if it is there. Tests that need
/// it say so loudly when it is missing, and fail when `HELIO_E2E=1`.
#[cfg(test)]
pub(crate) fn realdata_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(std::env::var_os("HELIO_E2E").is_none_or(|v| v != "1"), "../shared/realdata is missing and HELIO_E2E=1");
    eprintln!("SKIPPED: ../shared/realdata not found; real-data checks did not run");
    None
}
