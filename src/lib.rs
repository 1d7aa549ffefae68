//! helio publishes Static Certificate Transparency logs over BitTorrent.
//!
//! `helio build` turns a log's verified tiles into BitTorrent v1 torrents,
//! feeds and pages; `helio serve` is the WebSeed that hands clients the bytes;
//! `helio verify` proves downloaded ranges against the published checkpoint,
//! and `helio mirror` serves them back as a Static CT log.
//! The modules follow the data: `config` → `log` (fetch, verify) → `torrent`
//! (hash, encode) → `site` (write), strung together by `build`; `subscribe`
//! is the other end.

#![forbid(unsafe_code)]

pub mod build;
pub mod cli;
pub mod config;
pub mod environment;
pub mod error;
#[cfg(feature = "fixture")]
#[doc(hidden)]
pub mod fixture;
pub mod http;
pub mod init;
pub mod local_file;
pub mod log;
pub mod output;
pub mod serve;
pub mod site;
pub mod store;
pub mod subscribe;
pub mod torrent;

use std::path::PathBuf;
use std::process::ExitCode;

use build::BuildOptions;
use cli::{Cli, Command};
use config::Config;
use error::Error;
use output::{Output, Verbosity};

/// Runs a parsed command line and returns the process exit code. This is the
/// one place an error is printed.
pub fn run(cli: Cli) -> ExitCode {
    let output = Output::init(Verbosity::from_flags(cli.quiet, cli.verbose));
    match execute(cli, &output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output.progress.suspend(|| error::report(&error, &mut std::io::stderr()));
            ExitCode::from(error.exit_status() as u8)
        }
    }
}

fn execute(cli: Cli, output: &Output) -> Result<(), Error> {
    environment::check()?;
    match cli.command {
        Command::Build(args) => {
            let config = load_config(cli.config)?;
            let target = match &args.out_dir {
                Some(out_dir) => match out_dir.to_str() {
                    Some(text) => store::Target::parse(text, None)?,
                    None => store::Target::Dir(out_dir.clone()),
                },
                None => config.output.clone(),
            };
            // --resume-from (docs/store.md) fills an empty folder from the
            // published site; a bucket is the published site.
            let resume_from = match (&args.resume_from, &target) {
                (None, _) => None,
                (Some(_), store::Target::S3(url)) => return Err(Error::ResumeIntoBucket { url: url.to_string() }),
                (Some(url), store::Target::Dir(_)) => Some(site::resume::parse_root(url)?),
            };
            let options = BuildOptions { target, only: args.logs, max_time: args.max_time, resume_from };
            Ok(build::run(&config, &options, output)?)
        }
        Command::Serve(args) => {
            let config = load_config(cli.config)?;
            Ok(serve::run(&config, &args, output)?)
        }
        Command::Init(args) => init_command(cli.config, &args, output),
        Command::Verify(args) => {
            let options = subscribe::verify::VerifyOptions {
                paths: args.paths,
                site: args.site,
                key: args.key,
                origin: args.origin,
            };
            Ok(subscribe::verify::run(&options, output)?)
        }
        Command::Mirror(args) => {
            let verify = args.verify;
            let options = subscribe::mirror::MirrorOptions {
                verify: subscribe::verify::VerifyOptions {
                    paths: verify.paths,
                    site: verify.site,
                    key: verify.key,
                    origin: verify.origin,
                },
                upstream: args.upstream,
                listen: args.listen,
                cache_mb: args.cache_mb,
            };
            Ok(subscribe::mirror::run(&options, output)?)
        }
        #[cfg(feature = "fixture")]
        Command::Fixture(args) => fixture_command(&args, output),
        #[cfg(feature = "fixture")]
        Command::FixtureServe(args) => fixture_serve(&args, output),
    }
}

/// `-c`, else `$HELIO_CONFIG`, else `./helio.yaml`.
fn config_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("HELIO_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG))
}

fn load_config(flag: Option<PathBuf>) -> Result<Config, Error> {
    Ok(Config::load(&config_path(flag))?)
}

fn init_command(path: Option<PathBuf>, args: &cli::InitArgs, output: &Output) -> Result<(), Error> {
    let path = config_path(path);
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
    let count = init::write(&path, &init::render(&logs, &answers))?;
    output.result(&format!("wrote {} with {count} log{}", path.display(), if count == 1 { "" } else { "s" }));
    Ok(())
}

#[cfg(feature = "fixture")]
fn fixture_command(args: &cli::FixtureArgs, output: &Output) -> Result<(), Error> {
    let spec = fixture::generate::LogSpec {
        origin: args.origin.clone(),
        seed: args.seed,
        size: args.size,
        gzip_data_tiles: args.gzip,
    };
    let log = fixture::generate::write_log(&args.dir, &spec)
        .map_err(|source| Error::Fixture { path: args.dir.clone(), source })?;
    output.result(&format!(
        "origin: {}\nsize: {}\nkey: {}\ned25519 key: {}",
        log.origin, log.size, log.key, log.ed25519_key
    ));
    Ok(())
}

/// Serves a log directory on loopback until the process is killed; prints
/// `listening on http://ADDR/` first.
#[cfg(feature = "fixture")]
fn fixture_serve(args: &cli::FixtureServeArgs, output: &Output) -> Result<(), Error> {
    let options = fixture::server::ServerOptions { gzip_data_tiles: args.gzip, latency: args.latency };
    let server = fixture::server::LogServer::start(&args.dir, options)
        .map_err(|source| Error::Fixture { path: args.dir.clone(), source })?;
    if let Some(mib) = args.gzip_bomb {
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut bomb, &vec![0; mib << 20])
            .and_then(|()| bomb.finish())
            .map(|bomb| {
                server.set_fault(move |path, _| {
                    path.starts_with("tile/data/").then(|| fixture::server::Fault::Body(bomb.clone()))
                })
            })
            .map_err(|source| Error::Fixture { path: args.dir.clone(), source })?;
    }
    output.result(&format!("listening on {}", server.url()));
    loop {
        std::thread::park();
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
