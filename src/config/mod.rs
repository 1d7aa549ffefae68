//! The YAML configuration file → a validated [`Config`] (docs/spec.md §2).
//!
//! HelioTorrent's keys keep their meaning, so its config files load unchanged;
//! helio's own keys add verification, trackers, range size and profile.
//! Unknown keys are errors that name the key, its line and the closest known
//! key. Only [`yaml`] knows about serde_yaml, and it reads any file in
//! bounded time and memory.

pub mod listing;
pub mod log_list;
pub mod target;
mod yaml;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log_list::{LeftOut, ListedLog, LogList, Selection, State};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;
use yaml::Text;

use crate::local_file::{FileError, Links};
use crate::log::http::{DEFAULT_BUDGET, DEFAULT_UNREACHABLE_BUDGET};
use crate::log::note::LogKey;
use crate::log::source::Location;
use crate::log::tile::TILE_WIDTH;
use crate::torrent::format::Format;
use crate::torrent::profile::Profile;
use target::Target;

pub const DEFAULT_CONFIG: &str = "helio.yaml";
pub const DEFAULT_ENTRIES_PER_TORRENT: u64 = 1 << 20;
pub const DEFAULT_CONCURRENCY: usize = 8;
pub const DEFAULT_CACHE_MB: u64 = 512;
pub const MAX_CONCURRENCY: usize = 64;
pub const DEFAULT_PARALLEL_LOGS: usize = 4;
pub const MAX_PARALLEL_LOGS: usize = 256;

/// Long-lived public trackers announced when the config names none.
pub const DEFAULT_TRACKERS: &[&str] = &[
    "udp://tracker.opentrackr.org:1337/announce",
    "udp://open.demonii.com:1337/announce",
    "udp://open.stealth.si:80/announce",
    "udp://tracker.torrent.eu.org:451/announce",
    "udp://exodus.desync.com:6969/announce",
];

/// A configuration problem: the file, where in it (when known) and what.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub location: Option<(usize, usize)>,
    pub kind: ConfigErrorKind,
    pub message: String,
}

/// What sort of problem a [`ConfigError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file cannot be read.
    Unreadable,
    /// Not YAML, or not the shape of a config (unknown key, wrong type).
    Syntax,
    /// Too large, too deep or too repetitive to be a config.
    TooComplex,
    /// A value that is not acceptable.
    Invalid,
    /// `scraper_contact_email` is missing while a log is fetched over HTTP.
    MissingContact,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    pub torrent_dir: PathBuf,
    /// Where `helio build` publishes: `torrent_dir` as a folder or an `s3://` URL.
    pub output: Target,
    pub http_port: Option<u16>,
    pub https_port: Option<u16>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub feed_url_base: Option<String>,
    pub contact: Option<String>,
    pub cache_mb: u64,
    /// How many logs build ranges at once (their checkpoints are all fetched at once).
    pub parallel_logs: usize,
    /// The run budget: no range starts after it.
    pub max_time: Option<Duration>,
    /// How long one URL is retried while the log answers but is busy or slow.
    pub retry_budget: Duration,
    /// How long one URL is retried while its host does not answer at all.
    pub unreachable_budget: Duration,
    /// `helio serve`'s limit of connections from one client (`None`: its
    /// default; `Some(0)`: no limit, for a reverse proxy in front).
    pub max_connections_per_client: Option<usize>,
    /// A log failing for less than this is a warning, not exit status 1.
    pub alert_after: Option<Duration>,
    /// Where `helio build` writes its Prometheus metrics after each run.
    pub metrics_file: Option<PathBuf>,
    /// `log_list:`: the CT log list the logs come from, and which of them.
    pub log_list: Option<LogListConfig>,
    /// The logs: those of `logs:`, and once the log list is read
    /// ([`Config::with_log_list`]) those of the list it selects.
    pub logs: Vec<LogConfig>,
    /// Logs of the list left out, with why (after [`Config::with_log_list`]).
    pub left_out: Vec<(String, LeftOut)>,
    /// Keys that were set but mean nothing to a one-shot build.
    pub ignored_keys: BTreeSet<&'static str>,
    /// What a log's own keys fall back to.
    defaults: Defaults,
    /// The entries of `logs:` as written, which override or add to the list's.
    entries: Vec<RawLog>,
}

/// `log_list:` and the keys that go with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogListConfig {
    /// A URL, or a file (relative paths resolved against the config's folder).
    pub source: String,
    /// `log_list:` as written, which names the list in the site's copy.
    pub written: String,
    pub selection: Selection,
    /// `log_list_signature` and `log_list_key`: a detached signature of the
    /// list and the key that made it, checked when both are set.
    pub signature: Option<String>,
    pub key: Option<String>,
}

/// One log, with global settings and per-log overrides merged.
#[derive(Clone, Debug)]
pub struct LogConfig {
    pub name: String,
    /// `log_url` exactly as written: it goes into the torrents' README.md.
    pub log_url: String,
    pub location: Location,
    pub feed_url: Option<String>,
    /// The torrents' url-list.
    pub webseeds: Vec<String>,
    pub entry_limit: Option<u64>,
    pub key: Option<LogKey>,
    /// The checkpoint origin to insist on, when it can be known.
    pub origin: Option<String>,
    pub trackers: Vec<String>,
    pub entries_per_torrent: u64,
    pub profile: Profile,
    pub format: Format,
    pub concurrency: usize,
    /// The log has stopped growing (read-only or retired): its entries after
    /// the last full range get one last torrent (docs/final.md).
    pub is_final: bool,
    /// Set for a log that is published but no longer built: it left the log
    /// list's selection, or the config. Never fetched; its site stays.
    pub archived: Option<String>,
}

// The file as written. Every key HelioTorrent knows is here, so its files load.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<Text>,
    torrent_dir: Option<Text>,
    http_port: Option<u16>,
    https_port: Option<u16>,
    tls_cert: Option<Text>,
    tls_key: Option<Text>,
    feed_url_base: Option<Text>,
    scraper_contact_email: Option<Text>,
    frequency: Option<u64>,
    entry_limit: Option<u64>,
    delete_tiles: Option<bool>,
    webseeds: Option<Vec<Text>>,
    logs: Option<Vec<RawLog>>,
    trackers: Option<Vec<Text>>,
    entries_per_torrent: Option<u64>,
    profile: Option<Profile>,
    format: Option<Format>,
    concurrency: Option<usize>,
    cache_mb: Option<u64>,
    parallel_logs: Option<usize>,
    max_time: Option<RawDuration>,
    retry_budget: Option<RawDuration>,
    unreachable_budget: Option<RawDuration>,
    max_connections_per_client: Option<usize>,
    alert_after: Option<RawDuration>,
    metrics_file: Option<Text>,
    log_list: Option<Text>,
    log_list_states: Option<Vec<Text>>,
    log_list_operators: Option<Vec<Text>>,
    log_list_logs: Option<Vec<Text>>,
    log_list_signature: Option<Text>,
    log_list_key: Option<Text>,
}

/// A duration as written: seconds, or text such as `90s`, `5m`, `1h 30m`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(u64),
    Text(Text),
}

impl RawDuration {
    fn parse(self, key: &str) -> Result<Duration, String> {
        let duration = match self {
            RawDuration::Seconds(secs) => Duration::from_secs(secs),
            RawDuration::Text(text) => humantime::parse_duration(text.trim())
                .map_err(|e| format!("{key}: {:?} is not a duration such as 90s, 5m or 1h ({e})", text.as_str()))?,
        };
        check_duration(duration).map_err(|problem| format!("{key}: {problem}"))
    }
}

/// The longest duration any setting takes: a clock plus it must not overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// A duration within [`MAX_DURATION`].
pub fn check_duration(duration: Duration) -> Result<Duration, String> {
    if duration > MAX_DURATION {
        return Err(format!("{} is longer than ten years", humantime::format_duration(duration)));
    }
    Ok(duration)
}

const GLOBAL_KEYS: &[&str] = &[
    "data_dir",
    "torrent_dir",
    "http_port",
    "https_port",
    "tls_cert",
    "tls_key",
    "feed_url_base",
    "scraper_contact_email",
    "frequency",
    "entry_limit",
    "delete_tiles",
    "webseeds",
    "logs",
    "trackers",
    "entries_per_torrent",
    "profile",
    "format",
    "concurrency",
    "cache_mb",
    "parallel_logs",
    "max_time",
    "retry_budget",
    "unreachable_budget",
    "max_connections_per_client",
    "alert_after",
    "metrics_file",
    "log_list",
    "log_list_states",
    "log_list_operators",
    "log_list_logs",
    "log_list_signature",
    "log_list_key",
];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    name: Option<Text>,
    log_url: Option<Text>,
    feed_url: Option<Text>,
    webseeds: Option<Vec<Text>>,
    entry_limit: Option<u64>,
    frequency: Option<u64>,
    delete_tiles: Option<bool>,
    key: Option<Text>,
    submission_url: Option<Text>,
    origin: Option<Text>,
    trackers: Option<Vec<Text>>,
    entries_per_torrent: Option<u64>,
    profile: Option<Profile>,
    format: Option<Format>,
    concurrency: Option<usize>,
    #[serde(rename = "final")]
    is_final: Option<bool>,
}

const LOG_KEYS: &[&str] = &[
    "name",
    "log_url",
    "feed_url",
    "webseeds",
    "entry_limit",
    "frequency",
    "delete_tiles",
    "key",
    "submission_url",
    "origin",
    "trackers",
    "entries_per_torrent",
    "profile",
    "format",
    "concurrency",
    "final",
];

/// Characters escaped when a log name becomes a URL path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A log name as one URL path segment.
pub fn url_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

impl Config {
    /// Reads and validates the file. Relative paths inside it are relative to
    /// its folder.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        // Past yaml's own limit the file is refused there, naming its size.
        let max = yaml::MAX_FILE as u64;
        let text = crate::local_file::read_to_string(file, max, Links::Follow).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            location: None,
            kind: ConfigErrorKind::Unreadable,
            message: match e {
                FileError::TooLarge { max, .. } => {
                    format!("cannot read the config file: larger than {} MiB, which no config is", max >> 20)
                }
                FileError::Missing { .. } => "cannot read the config file: no such file".into(),
                FileError::NotRegular { .. } => {
                    format!("cannot read the config file: {}", crate::local_file::NOT_REGULAR)
                }
                FileError::Io { source, .. } => format!("cannot read the config file: {source}"),
            },
        })?;
        Config::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let error = |message: String| ConfigError {
            file: file.to_path_buf(),
            location: None,
            kind: ConfigErrorKind::Invalid,
            message,
        };
        let raw: RawConfig = yaml::read(file, text, GLOBAL_KEYS, LOG_KEYS)?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| {
            let path = PathBuf::from(p);
            if path.is_absolute() { path } else { base.join(path) }
        };

        let mut ignored_keys = BTreeSet::new();
        if raw.frequency.is_some() {
            ignored_keys.insert("frequency");
        }
        if raw.delete_tiles.is_some() {
            ignored_keys.insert("delete_tiles");
        }
        if raw.data_dir.is_some() {
            ignored_keys.insert("data_dir");
        }

        let contact = match raw.scraper_contact_email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(email) if email.chars().any(char::is_control) => {
                return Err(error("scraper_contact_email: must be a single line".into()));
            }
            Some(email) => Some(email.to_string()),
        };
        let torrent_dir_text = raw.torrent_dir.as_deref().unwrap_or("torrents").to_string();
        let output =
            Target::parse(&torrent_dir_text, Some(&base)).map_err(|e| error(format!("torrent_dir: {}", e.why)))?;
        let feed_url_base = raw.feed_url_base.map(|url| url.trim_end_matches('/').to_string());
        if let Some(url) = &feed_url_base {
            check_http_url(url).map_err(|why| error(format!("feed_url_base: {why}")))?;
        }
        let global_webseeds = strings(raw.webseeds.unwrap_or_default());
        for (i, url) in global_webseeds.iter().enumerate() {
            check_http_url(url).map_err(|why| error(format!("webseeds[{i}]: {why}")))?;
        }
        let parallel_logs = raw.parallel_logs.unwrap_or(DEFAULT_PARALLEL_LOGS);
        if !(1..=MAX_PARALLEL_LOGS).contains(&parallel_logs) {
            return Err(error(format!("parallel_logs: {parallel_logs} is not between 1 and {MAX_PARALLEL_LOGS}")));
        }
        let duration = |raw: Option<RawDuration>, key: &str| raw.map(|d| d.parse(key).map_err(&error)).transpose();
        let max_time = duration(raw.max_time, "max_time")?;
        let retry_budget = duration(raw.retry_budget, "retry_budget")?.unwrap_or(DEFAULT_BUDGET);
        let unreachable_budget =
            duration(raw.unreachable_budget, "unreachable_budget")?.unwrap_or(DEFAULT_UNREACHABLE_BUDGET);
        if max_time.is_some_and(|t| t.is_zero()) {
            return Err(error("max_time: must be longer than 0s".into()));
        }
        let alert_after = duration(raw.alert_after, "alert_after")?;
        let metrics_file = match raw.metrics_file.as_deref().map(str::trim) {
            None => None,
            Some("") => return Err(error("metrics_file: must not be empty".into())),
            Some(path) => Some(resolve(path)),
        };
        let log_list =
            log_list_config(&raw.log_list, &raw.log_list_states, &raw.log_list_operators, &raw.log_list_logs)
                .map_err(&error)?
                .map(|mut list| {
                    if !list.source.starts_with("http://") && !list.source.starts_with("https://") {
                        list.source = resolve(&list.source).display().to_string();
                    }
                    list.signature = raw.log_list_signature.as_deref().map(|sig| match sig {
                        url if url.starts_with("http://") || url.starts_with("https://") => url.to_string(),
                        path => resolve(path).display().to_string(),
                    });
                    list.key = raw.log_list_key.as_deref().map(str::to_string);
                    list
                });
        if log_list.is_none()
            && (raw.log_list_states.is_some()
                || raw.log_list_operators.is_some()
                || raw.log_list_logs.is_some()
                || raw.log_list_signature.is_some()
                || raw.log_list_key.is_some())
        {
            return Err(error("log_list_states, _operators, _logs, _signature and _key need log_list".into()));
        }
        if raw.log_list_signature.is_some() != raw.log_list_key.is_some() {
            return Err(error("log_list_signature and log_list_key go together: set both or neither".into()));
        }

        let defaults = Defaults {
            file: file.to_path_buf(),
            base: base.clone(),
            contact: contact.clone(),
            webseeds: global_webseeds,
            trackers: raw.trackers.map(strings),
            entries_per_torrent: raw.entries_per_torrent,
            profile: raw.profile,
            format: raw.format,
            concurrency: raw.concurrency,
            entry_limit: raw.entry_limit,
        };
        let entries = raw.logs.unwrap_or_default();
        if entries.is_empty() && log_list.is_none() {
            return Err(error("logs: no logs are configured (list them under logs:, or set log_list:)".into()));
        }
        let mut names = BTreeSet::new();
        let mut logs = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let at = |key: &str, why: String| error(format!("logs[{i}].{key}: {why}"));
            if entry.frequency.is_some() {
                ignored_keys.insert("frequency");
            }
            if entry.delete_tiles.is_some() {
                ignored_keys.insert("delete_tiles");
            }
            let name = entry.name.as_deref().map(str::to_string).ok_or_else(|| at("name", "missing".into()))?;
            check_name(&name).map_err(|why| at("name", why))?;
            if !names.insert(name.clone()) {
                return Err(at("name", format!("{name:?} is used by an earlier log")));
            }
            match (&entry.log_url, &log_list) {
                (Some(_), _) => logs.push(defaults.log(&format!("logs[{i}]"), entry.clone(), None)?),
                // An override of a log of the list, checked once the list is read.
                (None, Some(_)) => defaults.check_override(i, entry)?,
                (None, None) => return Err(at("log_url", "missing".into())),
            }
        }

        Ok(Config {
            file: file.to_path_buf(),
            torrent_dir: resolve(&torrent_dir_text),
            output,
            http_port: raw.http_port,
            https_port: raw.https_port,
            tls_cert: raw.tls_cert.as_deref().map(resolve),
            tls_key: raw.tls_key.as_deref().map(resolve),
            feed_url_base,
            contact,
            cache_mb: raw.cache_mb.unwrap_or(DEFAULT_CACHE_MB),
            parallel_logs,
            max_time,
            retry_budget,
            unreachable_budget,
            max_connections_per_client: raw.max_connections_per_client,
            alert_after,
            metrics_file,
            log_list,
            logs,
            left_out: Vec::new(),
            ignored_keys,
            defaults,
            entries,
        })
    }

    /// This config with the logs `list` selects, in the list's order, each
    /// overridden by the entry of `logs:` of its name; then the other
    /// entries of `logs:`. A read-only or retired log is `final`; an entry
    /// naming a log the list leaves out is ignored unless it gives its own
    /// `log_url`.
    pub fn with_log_list(&self, list: &LogList) -> Result<Config, ConfigError> {
        let Some(settings) = &self.log_list else { return Ok(self.clone_with(self.logs.clone(), Vec::new())) };
        let mut logs = Vec::new();
        let mut left_out = Vec::new();
        let mut used = BTreeSet::new();
        for (listed, verdict) in list.select(&settings.selection) {
            let entry = self.entries.iter().position(|e| e.name.as_deref() == Some(listed.name.as_str()));
            match verdict {
                Ok(()) => {
                    let raw = match entry {
                        Some(i) => {
                            used.insert(i);
                            merge(listed, self.entries[i].clone())
                        }
                        None => merge(listed, RawLog::default()),
                    };
                    let at = match entry {
                        Some(i) => format!("logs[{i}]"),
                        None => format!("log_list ({})", listed.name),
                    };
                    logs.push(self.defaults.log(&at, raw, Some(listed.state))?);
                }
                Err(why) => {
                    if let Some(i) = entry
                        && self.entries[i].log_url.is_none()
                    {
                        used.insert(i);
                        tracing::warn!(
                            "{}: logs[{i}] ({}) overrides a log the list leaves out ({why}); it is not built",
                            self.file.display(),
                            listed.name
                        );
                    }
                    left_out.push((listed.name.clone(), why));
                }
            }
        }
        for (i, entry) in self.entries.iter().enumerate() {
            if used.contains(&i) {
                continue;
            }
            if entry.log_url.is_none() {
                let name = entry.name.as_deref().unwrap_or_default();
                return Err(self.defaults.error(format!(
                    "logs[{i}].log_url: missing, and the log list has no log named {name:?} to take it from"
                )));
            }
            logs.push(self.defaults.log(&format!("logs[{i}]"), entry.clone(), None)?);
        }
        let mut names = BTreeSet::new();
        logs.retain(|log| names.insert(log.name.clone()));
        Ok(self.clone_with(logs, left_out))
    }

    /// Adds, as archived, the published logs `names` (with their monitoring
    /// prefixes) that this config no longer builds, each with why.
    pub fn with_archived(&self, archived: Vec<(String, String, String)>) -> Config {
        let mut logs = self.logs.clone();
        for (name, log_url, reason) in archived {
            if logs.iter().any(|log| log.name == name) || check_name(&name).is_err() {
                continue;
            }
            let raw = RawLog { name: Some(Text::new(name.clone())), ..RawLog::default() };
            let mut log = self.defaults.archived(raw, &log_url);
            log.archived = Some(reason);
            logs.push(log);
        }
        self.clone_with(logs, self.left_out.clone())
    }

    fn clone_with(&self, logs: Vec<LogConfig>, left_out: Vec<(String, LeftOut)>) -> Config {
        Config {
            file: self.file.clone(),
            torrent_dir: self.torrent_dir.clone(),
            output: self.output.clone(),
            http_port: self.http_port,
            https_port: self.https_port,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            feed_url_base: self.feed_url_base.clone(),
            contact: self.contact.clone(),
            cache_mb: self.cache_mb,
            parallel_logs: self.parallel_logs,
            max_time: self.max_time,
            retry_budget: self.retry_budget,
            unreachable_budget: self.unreachable_budget,
            max_connections_per_client: self.max_connections_per_client,
            alert_after: self.alert_after,
            metrics_file: self.metrics_file.clone(),
            log_list: self.log_list.clone(),
            logs,
            left_out,
            ignored_keys: self.ignored_keys.clone(),
            defaults: self.defaults.clone(),
            entries: self.entries.clone(),
        }
    }

    /// The logs a build brings up to date: all but the archived.
    pub fn active_logs(&self) -> impl Iterator<Item = &LogConfig> {
        self.logs.iter().filter(|log| log.archived.is_none())
    }
}

/// A log of the list as an entry of `logs:`, `entry` (an override) winning.
fn merge(listed: &ListedLog, entry: RawLog) -> RawLog {
    let text = |s: &str| Some(Text::new(s.to_string()));
    RawLog {
        name: text(&listed.name),
        log_url: entry.log_url.or_else(|| text(&listed.log_url)),
        submission_url: entry.submission_url.or_else(|| text(&listed.submission_url)),
        key: entry.key.or_else(|| text(&listed.key)),
        is_final: entry.is_final.or(Some(listed.state.is_final())),
        ..entry
    }
}

/// The `log_list*` keys, checked.
fn log_list_config(
    source: &Option<Text>,
    states: &Option<Vec<Text>>,
    operators: &Option<Vec<Text>>,
    logs: &Option<Vec<Text>>,
) -> Result<Option<LogListConfig>, String> {
    let Some(source) = source.as_deref().map(str::trim) else { return Ok(None) };
    if source.is_empty() {
        return Err("log_list: must not be empty".into());
    }
    let mut selection = Selection::default();
    if let Some(states) = states {
        selection.states = states
            .iter()
            .map(|text| {
                State::parse(text).ok_or_else(|| {
                    let known: Vec<&str> = State::ALL.iter().map(|state| state.name()).collect();
                    format!("log_list_states: {:?} is not a state ({})", text.as_str(), known.join(", "))
                })
            })
            .collect::<Result<_, _>>()?;
    }
    selection.operators = operators.clone().map(strings).unwrap_or_default();
    selection.logs = logs.clone().map(strings).unwrap_or_default();
    Ok(Some(LogListConfig {
        source: source.to_string(),
        written: source.to_string(),
        selection,
        signature: None,
        key: None,
    }))
}

/// What every log's own keys fall back to, kept to build the logs of a log
/// list once it is read.
#[derive(Clone, Debug)]
struct Defaults {
    file: PathBuf,
    base: PathBuf,
    contact: Option<String>,
    webseeds: Vec<String>,
    trackers: Option<Vec<String>>,
    entries_per_torrent: Option<u64>,
    profile: Option<Profile>,
    format: Option<Format>,
    concurrency: Option<usize>,
    entry_limit: Option<u64>,
}

impl Defaults {
    fn error(&self, message: String) -> ConfigError {
        ConfigError { file: self.file.clone(), location: None, kind: ConfigErrorKind::Invalid, message }
    }

    /// Checks what an override of a log of the list sets, before the list is read.
    fn check_override(&self, i: usize, entry: &RawLog) -> Result<(), ConfigError> {
        let placeholder = Some(Text::new("https://log-list.helio.invalid/".into()));
        let raw = RawLog { log_url: placeholder, ..entry.clone() };
        self.log(&format!("logs[{i}]"), raw, None).map(drop)
    }

    /// An archived log: never fetched, so only its name and prefix matter.
    fn archived(&self, raw: RawLog, log_url: &str) -> LogConfig {
        let name = raw.name.as_deref().unwrap_or_default().to_string();
        let location = Location::parse(log_url, &self.base).unwrap_or_else(|_| Location::Dir(PathBuf::new()));
        let webseeds = self
            .webseeds
            .iter()
            .map(|base| format!("{}/{}/", base.trim_end_matches('/'), url_segment(&name)))
            .collect();
        LogConfig {
            name,
            log_url: log_url.to_string(),
            location,
            feed_url: None,
            webseeds,
            entry_limit: None,
            key: None,
            origin: None,
            trackers: self.trackers.clone().unwrap_or_else(|| DEFAULT_TRACKERS.iter().map(|t| t.to_string()).collect()),
            entries_per_torrent: self.entries_per_torrent.unwrap_or(DEFAULT_ENTRIES_PER_TORRENT),
            profile: self.profile.unwrap_or_default(),
            format: self.format.unwrap_or_default(),
            concurrency: self.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
            is_final: false,
            archived: None,
        }
    }

    /// One log from its entry (`at` names it in messages: `logs[3]`), with
    /// the state the log list gives it, if it comes from one.
    fn log(&self, place: &str, log: RawLog, state: Option<State>) -> Result<LogConfig, ConfigError> {
        let error = |message: String| self.error(message);
        let at = |key: &str, why: String| error(format!("{place}.{key}: {why}"));
        let name = log.name.map(String::from).ok_or_else(|| at("name", "missing".into()))?;
        check_name(&name).map_err(|why| at("name", why))?;
        let log_url = log.log_url.map(String::from).ok_or_else(|| at("log_url", "missing".into()))?;
        let location = Location::parse(&log_url, &self.base).map_err(|why| at("log_url", why))?;
        if let Location::Dir(dir) = &location
            && !dir.exists()
            && looks_like_a_host(&log_url)
        {
            let url = format!("https://{}", log_url.trim_start_matches('/'));
            return Err(at("log_url", format!("{log_url:?} is not a folder here; did you mean {url:?}?")));
        }
        if matches!(location, Location::Http(_)) && self.contact.is_none() {
            let which = if state.is_some() { format!("{name} of the log list") } else { format!("{place} ({name})") };
            return Err(ConfigError {
                kind: ConfigErrorKind::MissingContact,
                ..error(format!(
                    "scraper_contact_email: required because {which} is fetched over HTTP; \
                     logs rate-limit anonymous clients"
                ))
            });
        }
        let entries_per_torrent =
            log.entries_per_torrent.or(self.entries_per_torrent).unwrap_or(DEFAULT_ENTRIES_PER_TORRENT);
        if entries_per_torrent == 0 || !entries_per_torrent.is_multiple_of(TILE_WIDTH) {
            let key = if log.entries_per_torrent.is_some() {
                format!("{place}.entries_per_torrent")
            } else {
                "entries_per_torrent".into()
            };
            return Err(error(format!("{key}: {entries_per_torrent} is not a positive multiple of 256")));
        }
        let concurrency = log.concurrency.or(self.concurrency).unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(at("concurrency", format!("{concurrency} is not between 1 and {MAX_CONCURRENCY}")));
        }
        let key = match log.key {
            Some(text) => Some(LogKey::parse(text.trim()).map_err(|e| at("key", e.to_string()))?),
            None => None,
        };
        let origin = match (&log.origin, &log.submission_url, &location) {
            (Some(origin), _, _) => Some(origin.to_string()),
            (None, Some(url), _) => {
                check_http_url(url).map_err(|why| at("submission_url", why))?;
                Some(origin_of(url))
            }
            (None, None, Location::Http(url)) => Some(origin_of(url)),
            (None, None, Location::Dir(_)) => None,
        };
        let webseeds = match log.webseeds {
            Some(own) => {
                for (j, url) in own.iter().enumerate() {
                    check_http_url(url).map_err(|why| at(&format!("webseeds[{j}]"), why))?;
                }
                strings(own)
            }
            None => self
                .webseeds
                .iter()
                .map(|base| format!("{}/{}/", base.trim_end_matches('/'), url_segment(&name)))
                .collect(),
        };
        if let Some(url) = &log.feed_url {
            check_http_url(url).map_err(|why| at("feed_url", why))?;
        }
        let trackers = log
            .trackers
            .map(strings)
            .or_else(|| self.trackers.clone())
            .unwrap_or_else(|| DEFAULT_TRACKERS.iter().map(|t| t.to_string()).collect());
        let profile = log.profile.or(self.profile).unwrap_or_default();
        let format = log.format.or(self.format).unwrap_or_default();
        if profile == Profile::HelioTorrent && format == Format::Hybrid {
            return Err(at(
                "format",
                "hybrid torrents cannot use the heliotorrent profile, whose infohashes must match the \
                 reference implementation's v1 torrents"
                    .into(),
            ));
        }
        Ok(LogConfig {
            name,
            log_url,
            location,
            feed_url: log.feed_url.map(String::from),
            webseeds,
            entry_limit: log.entry_limit.or(self.entry_limit).filter(|&limit| limit > 0),
            key,
            origin,
            trackers,
            entries_per_torrent,
            profile,
            format,
            is_final: log.is_final.unwrap_or(false),
            concurrency,
            archived: None,
        })
    }
}

fn strings(texts: Vec<Text>) -> Vec<String> {
    texts.into_iter().map(String::from).collect()
}

/// The checkpoint origin a URL implies: no scheme, no trailing slash.
fn origin_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.trim_end_matches('/').to_string()
}

/// Whether a path's first segment reads as a host name (`mon.example.org/…`),
/// as a URL written without its scheme does.
fn looks_like_a_host(path: &str) -> bool {
    let host = path.split('/').next().unwrap_or("");
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()))
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} is not a valid URL"));
    }
    Ok(())
}

/// Log names become folder names, torrent names and URL segments.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 200 {
        return Err("is longer than 200 bytes".into());
    }
    if name.starts_with('.') {
        return Err(format!("{name:?} must not start with a dot"));
    }
    if crate::layout::TOP_LEVEL.contains(&name) {
        return Err(format!("{name:?} is the name of a file of the site's root folder"));
    }
    if let Some(c) = name.chars().find(|&c| c == '/' || c == '\\' || c.is_control()) {
        return Err(format!("{name:?} must not contain {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/helio/helio.yaml"), text)
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// HelioTorrent's providers.md example, verbatim apart from the contact.
    const PROVIDERS_EXAMPLE: &str = r#"
# Global settings for HelioTorrent
# Configure directories, ports, and the base feed URL. Each log's feed defaults to <feed_url_base>/<log_name>/feed.xml.
data_dir: data
torrent_dir: torrents
# https_port: 8443
http_port: 8080
# tls_cert: null
# tls_key: null
feed_url_base: http://127.0.0.1:8080/torrents
scraper_contact_email: ops@example.org
frequency: 3600
entry_limit: 0
delete_tiles: true
webseeds:
- http://127.0.0.1:8080/webseed/
logs:
- name: tuscolo2026h1
  log_url: https://tuscolo2026h1.skylight.geomys.org/
# You can add more logs here. Optional keys override the global defaults above.
#  - name: "another-log"
#    log_url: "https://another.log.server/log/"
    # Optional Keys:
    # feed_url: "http://127.0.0.1/alternative-location/feed.xml"
    # frequency: 300
    # entry_limit: null
    # delete_tiles: false
    # webseeds:
    #  - "http://webseed.example.com/"
"#;

    #[test]
    fn torrent_dir_may_be_a_bucket_but_not_another_scheme() {
        let logs = "logs:\n- {name: x, log_url: /srv/x}\n";
        let config = parse(&format!("torrent_dir: s3://ct-torrents/site\n{logs}")).unwrap();
        let url = crate::store::S3Url { bucket: "ct-torrents".into(), prefix: "site".into() };
        assert_eq!(config.output, Target::S3(url));
        let message = error(&format!("torrent_dir: gs://ct-torrents/site\n{logs}"));
        assert_eq!(message, "/etc/helio/helio.yaml: torrent_dir: only s3:// URLs and local folders are supported");
        let message = error("logs:\n- {name: logs.json, log_url: /srv/x}\n");
        assert!(message.contains("is the name of a file of the site's root folder"), "{message}");
    }

    #[test]
    fn heliotorrent_example_loads_unchanged() {
        let config = parse(PROVIDERS_EXAMPLE).unwrap();
        assert_eq!(config.torrent_dir, Path::new("/etc/helio/torrents"));
        assert_eq!(config.output, Target::Dir("/etc/helio/torrents".into()));
        assert_eq!(config.http_port, Some(8080));
        assert_eq!(config.feed_url_base.as_deref(), Some("http://127.0.0.1:8080/torrents"));
        assert_eq!(config.ignored_keys, BTreeSet::from(["data_dir", "delete_tiles", "frequency"]));
        let log = &config.logs[0];
        assert_eq!(log.name, "tuscolo2026h1");
        assert_eq!(log.location, Location::Http("https://tuscolo2026h1.skylight.geomys.org/".into()));
        assert_eq!(log.webseeds, ["http://127.0.0.1:8080/webseed/tuscolo2026h1/"]);
        assert_eq!(log.entry_limit, None, "0 means no limit");
        assert_eq!(log.origin.as_deref(), Some("tuscolo2026h1.skylight.geomys.org"));
        assert_eq!(log.entries_per_torrent, 1 << 20);
        assert_eq!(log.profile, Profile::Spec);
        assert_eq!(log.trackers.len(), DEFAULT_TRACKERS.len());
        assert!(log.key.is_none());
    }

    #[test]
    fn helio_keys_with_per_log_overrides() {
        let config = parse(
            "scraper_contact_email: a@b.c\ntrackers: [udp://t/announce]\nentries_per_torrent: 512\nprofile: heliotorrent\n\
             concurrency: 4\nwebseeds: [http://ws.example/webseed]\nlogs:\n\
             - name: one\n  log_url: https://one.example/logs/\n  submission_url: https://submit.example/one/\n\
             - name: two & <three>\n  log_url: ../local-log\n  origin: two.example\n  trackers: []\n  entries_per_torrent: 1024\n  \
             profile: spec\n  concurrency: 2\n  webseeds: [http://mine/]\n  entry_limit: 7000\n",
        )
        .unwrap();
        let one = &config.logs[0];
        assert_eq!(one.origin.as_deref(), Some("submit.example/one"));
        assert_eq!(one.trackers, ["udp://t/announce"]);
        assert_eq!((one.entries_per_torrent, one.profile, one.concurrency), (512, Profile::HelioTorrent, 4));
        assert_eq!(one.webseeds, ["http://ws.example/webseed/one/"]);
        let two = &config.logs[1];
        assert_eq!(two.location, Location::Dir(PathBuf::from("/etc/helio/../local-log")));
        assert_eq!(two.origin.as_deref(), Some("two.example"));
        assert!(two.trackers.is_empty());
        assert_eq!((two.entries_per_torrent, two.profile, two.concurrency), (1024, Profile::Spec, 2));
        assert_eq!(two.webseeds, ["http://mine/"]);
        assert_eq!(two.entry_limit, Some(7000));
        assert_eq!(url_segment(&two.name), "two%20&%20%3Cthree%3E");
    }

    #[test]
    fn unknown_keys_name_the_key_line_and_closest_known_key() {
        let text =
            "scraper_contact_email: a@b.c\nlogs:\n- name: x\n  log_url: https://x.example/\n  webseed: [http://w/]\n";
        assert_eq!(
            error(text),
            "/etc/helio/helio.yaml:5:3: unknown key `webseed` in logs[0] (did you mean `webseeds`?)"
        );
        assert_eq!(
            error("torrnt_dir: out\nlogs: []\n"),
            "/etc/helio/helio.yaml:1:1: unknown key `torrnt_dir` (did you mean `torrent_dir`?)"
        );
        assert_eq!(error("zzzzzzzzzzzz: 1\n"), "/etc/helio/helio.yaml:1:1: unknown key `zzzzzzzzzzzz`");
    }

    #[test]
    fn type_errors_name_the_key_and_line() {
        let text = "logs:\n- name: x\n  log_url: /x\n  entries_per_torrent: lots\n";
        let message = error(text);
        assert!(
            message.starts_with("/etc/helio/helio.yaml:4:24: logs[0].entries_per_torrent: invalid type"),
            "{message}"
        );
    }

    #[test]
    fn a_log_url_without_its_scheme_is_a_usage_error_with_a_hint() {
        let message = error("logs:\n- name: x\n  log_url: mon.sycamore.ct.letsencrypt.org/2026h1/\n");
        assert!(
            message.contains(
                "logs[0].log_url: \"mon.sycamore.ct.letsencrypt.org/2026h1/\" is not a folder here; \
                 did you mean \"https://mon.sycamore.ct.letsencrypt.org/2026h1/\"?"
            ),
            "{message}"
        );
        // A folder that is not there yet and does not read as a host is a folder.
        assert!(parse("logs:\n- name: x\n  log_url: logs/copy\n").is_ok());
        assert!(looks_like_a_host("example.org") && !looks_like_a_host("demo-log") && !looks_like_a_host("../x.y"));
        assert!(!looks_like_a_host("logs.2026/x"));
    }

    #[test]
    fn http_logs_need_a_contact() {
        let message = error("logs:\n- name: x\n  log_url: https://x.example/\n");
        assert!(message.contains("scraper_contact_email: required because logs[0] (x)"), "{message}");
        let message = error("scraper_contact_email: null\nlogs:\n- name: x\n  log_url: https://x.example/\n");
        assert!(message.contains("scraper_contact_email: required"), "{message}");
        assert!(parse("logs:\n- name: x\n  log_url: /var/log-copy\n").is_ok(), "local logs need no contact");
    }

    #[test]
    fn invalid_values_are_named() {
        let base = "scraper_contact_email: a@b.c\n";
        let cases = [
            (
                "entries_per_torrent: 1000\nlogs:\n- {name: x, log_url: /x}\n",
                "entries_per_torrent: 1000 is not a positive multiple of 256",
            ),
            (
                "logs:\n- {name: x, log_url: /x, entries_per_torrent: 0}\n",
                "logs[0].entries_per_torrent: 0 is not a positive multiple of 256",
            ),
            ("logs:\n- {name: x, log_url: /x, concurrency: 0}\n", "logs[0].concurrency: 0 is not between 1 and 64"),
            ("logs:\n- {name: ../x, log_url: /x}\n", "logs[0].name: \"../x\" must not start with a dot"),
            ("logs:\n- {name: a/b, log_url: /x}\n", "logs[0].name: \"a/b\" must not contain '/'"),
            ("logs:\n- {name: style.css, log_url: /x}\n", "logs[0].name: \"style.css\" is the name of a file"),
            (
                "logs:\n- {name: x, log_url: /x}\n- {name: x, log_url: /y}\n",
                "logs[1].name: \"x\" is used by an earlier log",
            ),
            ("logs:\n- {log_url: /x}\n", "logs[0].name: missing"),
            ("logs:\n- {name: x}\n", "logs[0].log_url: missing"),
            ("logs:\n- {name: x, log_url: 'ftp://x/'}\n", "logs[0].log_url"),
            ("logs:\n- {name: x, log_url: /x, key: nonsense}\n", "logs[0].key:"),
            ("logs:\n- {name: x, log_url: /x, profile: torf}\n", "logs[0].profile: unknown variant `torf`"),
            ("logs:\n- {name: x, log_url: /x, format: v2}\n", "logs[0].format: unknown variant `v2`"),
            (
                "profile: heliotorrent\nformat: hybrid\nlogs:\n- {name: x, log_url: /x}\n",
                "logs[0].format: hybrid torrents cannot use the heliotorrent profile",
            ),
            ("webseeds: [not-a-url]\nlogs:\n- {name: x, log_url: /x}\n", "webseeds[0]: \"not-a-url\" is not an http"),
            ("logs: []\n", "logs: no logs are configured"),
            ("", "logs: no logs are configured"),
        ];
        for (text, expected) in cases {
            let message = error(&format!("{base}{text}"));
            assert!(message.contains(expected), "{text:?}\n  gave {message}\n  expected {expected}");
        }
    }

    #[test]
    fn run_settings_take_seconds_or_durations() {
        let config = parse(
            "parallel_logs: 3\nmax_time: 5h 30m\nretry_budget: 120\nunreachable_budget: 20s\n\
             logs:\n- {name: x, log_url: /x}\n",
        )
        .unwrap();
        assert_eq!(config.parallel_logs, 3);
        assert_eq!(config.max_time, Some(Duration::from_secs(5 * 3600 + 1800)));
        assert_eq!(config.retry_budget, Duration::from_secs(120));
        assert_eq!(config.unreachable_budget, Duration::from_secs(20));
        let defaults = parse("logs:\n- {name: x, log_url: /x}\n").unwrap();
        assert_eq!((defaults.parallel_logs, defaults.max_time), (DEFAULT_PARALLEL_LOGS, None));
        assert_eq!(defaults.unreachable_budget, Duration::from_secs(60));
        for (text, expected) in [
            ("parallel_logs: 0\n", "parallel_logs: 0 is not between 1 and 256"),
            ("max_time: 0s\n", "max_time: must be longer than 0s"),
            ("retry_budget: forever\n", "retry_budget: \"forever\" is not a duration"),
        ] {
            let message = error(&format!("{text}logs:\n- {{name: x, log_url: /x}}\n"));
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn hostile_yaml_is_refused_fast_with_one_line() {
        // The alias bomb runs in the integration tests, under a memory limit.
        let started = std::time::Instant::now();
        let deep = format!("logs: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let message = error(&deep);
        assert!(message.contains(":1:71: collections nested more than 64 deep"), "{message}");
        let huge = format!("# {}\nlogs: []\n", "x".repeat(5 << 20));
        assert!(error(&huge).contains("a config is at most 4 MiB"));
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(parse(&deep).unwrap_err().kind, ConfigErrorKind::TooComplex);
    }

    #[test]
    fn keys_from_the_log_list_and_signed_note_verifiers_parse() {
        let sycamore = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfEEe0JZknA91/c6eNl1aexgeKzuGQUMvRCXPXg9L227O5I4Pi++Abcpq6qxlVUKPYafAJelAnMfGzv3lHCc8gA==";
        let tessera = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
        for key in [sycamore, tessera] {
            let config = parse(&format!("logs:\n- name: x\n  log_url: /x\n  key: {key}\n")).unwrap();
            assert!(config.logs[0].key.is_some());
        }
    }

    #[test]
    fn yaml_syntax_errors_have_a_line() {
        let err = parse("logs: [\n").unwrap_err();
        assert!(err.location.is_some(), "{err}");
    }
}
