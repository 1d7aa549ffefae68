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
#[cfg(feature = "fixture")]
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
        #[cfg(feature = "fixture")]
        Command::Fixture(args) => fixture_command(&args),
        #[cfg(feature = "fixture")]
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

#[cfg(feature = "fixture")]
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
#[cfg(feature = "fixture")]
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

/// The shared real-world test data (CT log tiles, signed checkpoints and a CT
/// log list that nobody on this project wrote), beside the repository. Its
/// own README asks that it be read from there, not copied in; `build.rs`
/// turns on `cfg(realdata)` when it is present, and the tests that read it are
/// `ignore`d (and counted as such) without it.
#[cfg(test)]
pub(crate) fn realdata_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    assert!(dir.is_dir(), "{} is missing: run the real-data tests where it exists", dir.display());
    dir
}

#[cfg(test)]
mod realdata {
    /// CI (`HELIO_E2E=1`) runs next to the shared data; there a missing
    /// folder must fail loudly rather than leave the real-data tests ignored.
    #[test]
    fn real_data_is_present_when_every_check_is_required() {
        if std::env::var_os("HELIO_E2E").is_some_and(|v| v == "1") {
            let present = cfg!(realdata);
            assert!(present, "HELIO_E2E=1 but ../shared/realdata was not there when helio was compiled");
        }
    }
}
