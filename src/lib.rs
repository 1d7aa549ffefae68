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
pub mod clock;
pub mod config;
pub mod environment;
pub mod error;
pub mod error_chain;
#[cfg(feature = "fixture")]
#[doc(hidden)]
pub mod fixture;
pub mod http;
pub mod init;
pub mod layout;
pub mod local_file;
pub mod log;
pub mod manual;
pub mod output;
pub mod serve;
pub mod site;
pub mod store;
pub mod subscribe;
pub mod tile_cache;
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
    let output = Output::init(verbosity(&cli.command));
    match execute(cli, &output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output.progress.suspend(|| error::report(&error, &mut std::io::stderr()));
            ExitCode::from(error.exit_status() as u8)
        }
    }
}

/// `-q` / `-v` of the commands that have them.
fn verbosity(command: &Command) -> Verbosity {
    let flags = match command {
        Command::Build(args) => args.verbosity,
        Command::Serve(args) => args.verbosity,
        Command::Init(args) => args.verbosity,
        Command::Verify(args) => args.verbosity,
        Command::Mirror(args) => args.verify.verbosity,
        _ => return Verbosity::Normal,
    };
    Verbosity::from_flags(flags.quiet, flags.verbose)
}

fn execute(cli: Cli, output: &Output) -> Result<(), Error> {
    environment::check()?;
    match cli.command {
        Command::Build(args) => {
            let config = load_config(args.config.config)?;
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
            let options = BuildOptions {
                target,
                only: args.logs,
                max_time: args.max_time,
                resume_from,
                alert_after: args.alert_after,
                metrics_file: args.metrics_file,
            };
            Ok(build::run(&config, &options, output)?)
        }
        Command::Serve(args) => {
            let config = load_config(args.config.config.clone())?;
            // The logs of a log list: the copy the build keeps in the folder served.
            let folder = match &args.out_dir {
                Some(dir) => store::Target::Dir(dir.clone()),
                None => config.output.clone(),
            };
            let config = known_logs(config, &folder, true)?;
            let options =
                serve::ServeOptions { out_dir: args.out_dir, listen: args.listen, listen_https: args.listen_https };
            Ok(serve::run(&config, &options, output)?)
        }
        Command::Init(args) => init_command(args.config.clone(), &args, output),
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
        Command::Logs(args) => {
            let config = load_config(args.config.config)?;
            let target = config.output.clone();
            let config = known_logs(config, &target, false)?;
            let built: Vec<config::LogConfig> = config.active_logs().cloned().collect();
            let logs = config::listing::summarize(&built);
            output.result(&if args.json { config::listing::json(&logs) } else { config::listing::table(&logs) });
            Ok(())
        }
        Command::Completions(args) => {
            manual::completions(args.shell, &mut std::io::stdout());
            Ok(())
        }
        Command::Man(args) => Ok(manual::man_page(args.command.as_deref(), &mut std::io::stdout())?),
        #[cfg(feature = "fixture")]
        Command::Fixture(args) => fixture_command(&args, output),
        #[cfg(feature = "fixture")]
        Command::FixtureServe(args) => fixture_serve(&args, output),
    }
}

/// The logs `config` names, its log list's included, as a site at `target`
/// knows them: its copy of the list stands in when the list's source cannot
/// be read, and with `archived`, the logs its `logs.json` shows that are no
/// longer built are kept (as `helio serve` needs, to serve their torrents).
/// A site that cannot be opened (a bucket without credentials) knows none.
/// Nothing is written.
fn known_logs(config: Config, target: &store::Target, archived: bool) -> Result<Config, Error> {
    if config.log_list.is_none() && !archived {
        return Ok(config);
    }
    let store = match target {
        store::Target::Dir(dir) if !dir.is_dir() => None,
        target => store::Store::open(target)
            .map_err(|error| tracing::debug!("no copy of the log list from {}: {error}", target.describe()))
            .ok(),
    };
    let read = |name: &str| store.as_ref().and_then(|store| store.read(name).ok().flatten()).map(|b| b.to_vec());
    let copy = config.log_list.as_ref().and_then(|_| read(site::log_list::LOG_LIST_JSON));
    let logs_json = if archived { read(site::logs_json::LOGS_JSON) } else { None };
    let published = |name: &str| {
        store.as_ref().is_some_and(|store| store.stat(&format!("{name}/torrents.json")).ok().flatten().is_some())
    };
    Ok(site::log_list::known(&config, copy.as_deref(), logs_json.as_deref(), &published)?.0)
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
    let states = init::states(&args.states)?;
    let list = match &args.log_list {
        Some(source) => Some(init::read_log_list(source, args.contact.as_deref())?),
        None => None,
    };
    let selection = config::log_list::Selection { states: states.clone(), ..Default::default() };
    let (kept, left) = match &list {
        Some(list) => init::split(list, &selection),
        None => (Vec::new(), Vec::new()),
    };
    let answers = if args.interactive {
        let stdin = std::io::stdin();
        let listed = list.as_ref().map(|_| kept.len());
        init::ask(&mut stdin.lock(), &mut std::io::stderr(), listed, args.contact.clone())?
    } else {
        init::Answers { contact: args.contact.clone(), ..init::Answers::default() }
    };
    let logs = match (&args.log_list, args.expand) {
        (None, _) => init::Logs::None,
        (Some(_), true) => init::Logs::Expanded { kept: &kept, left: &left },
        (Some(source), false) => init::Logs::List { source, states: &states, kept: &kept, left: &left },
    };
    let loaded = init::write(&path, &init::render(&logs, &answers))?;
    let count = match (&list, &loaded) {
        (Some(list), Some(config)) if config.log_list.is_some() => {
            config.with_log_list(list).map_or(0, |c| c.logs.len())
        }
        (_, Some(config)) => config.logs.len(),
        (Some(_), None) => kept.len(),
        (None, None) => 1,
    };
    let form = if args.log_list.is_some() && !args.expand { " from the log list" } else { "" };
    output.result(&format!("wrote {} with {count} log{}{form}", path.display(), if count == 1 { "" } else { "s" }));
    if !left.is_empty() {
        output.result(&format!("left out {} of the list's logs: {}", left.len(), init::left_out_summary(&left)));
    }
    if answers.contact.is_none() && (list.is_some() || loaded.is_none()) {
        output.result(&format!(
            "set scraper_contact_email in {} (or write it with --contact EMAIL): logs fetched over HTTP need it",
            path.display()
        ));
    }
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

/// Real-world test data (CT log tiles, signed checkpoints and a CT log
/// list that nobody on this project wrote), with its provenance in its
/// README: `fixtures/real/`.
#[cfg(test)]
pub(crate) fn real_fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/real")
}
