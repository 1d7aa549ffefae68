//! `helio init`: writes a starter config, optionally with every Static CT log
//! of a CT log list (v3 JSON, `operators[].tiled_logs[]`), each with its
//! monitoring prefix, submission prefix (for the checkpoint origin) and key.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::config::{Config, ConfigError, ConfigErrorKind};
use crate::local_file::{self, FileError, Links};
use crate::log::source::{BodyKind, FetchError, Location, LogSource, MAX_BODY, RetryPolicy, http_agent};

/// Google's list of every log, the one HelioTorrent reads by default.
pub const DEFAULT_LOG_LIST: &str = "https://www.gstatic.com/ct/log_list/v3/all_logs_list.json";

#[derive(Debug, Error)]
pub enum InitError {
    #[error("{0} already exists; move it aside or choose another file with -c")]
    Exists(String),
    #[error("cannot read the log list: {0}")]
    Fetch(#[from] FetchError),
    #[error("cannot read the log list {0}")]
    Read(#[source] FileError),
    #[error("{source_name}: not a CT log list (v3 JSON): {source}")]
    Parse { source_name: String, source: serde_json::Error },
    #[error("the config helio wrote does not load, which is a bug: {0}")]
    Invalid(#[source] ConfigError),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot read the answer: {0}")]
    Prompt(std::io::Error),
}

#[derive(Deserialize)]
struct LogList {
    operators: Vec<Operator>,
}

#[derive(Deserialize)]
struct Operator {
    name: String,
    #[serde(default)]
    tiled_logs: Vec<TiledLog>,
}

#[derive(Deserialize)]
struct TiledLog {
    description: String,
    key: String,
    monitoring_url: String,
    submission_url: String,
    #[serde(default)]
    state: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One log as it goes into the config.
#[derive(Debug, PartialEq, Eq)]
pub struct ListedLog {
    pub name: String,
    pub operator: String,
    pub log_url: String,
    pub submission_url: String,
    pub key: String,
    pub state: Option<String>,
}

impl ListedLog {
    /// Rejected logs are listed as comments only.
    fn wanted(&self) -> bool {
        self.state.as_deref() != Some("rejected")
    }

    /// Read-only and retired logs no longer grow: their last entries get one
    /// last torrent (`final: true`).
    fn finished(&self) -> bool {
        matches!(self.state.as_deref(), Some("readonly" | "retired"))
    }
}

/// Answers to the questions `--interactive` asks, or their defaults.
#[derive(Debug)]
pub struct Answers {
    pub contact: Option<String>,
    pub feed_url_base: Option<String>,
    pub webseed: Option<String>,
    pub torrent_dir: String,
}

impl Default for Answers {
    fn default() -> Self {
        Answers { contact: None, feed_url_base: None, webseed: None, torrent_dir: "torrents".into() }
    }
}

/// Reads the Static CT logs of a log list (file path or URL).
pub fn read_log_list(source: &str) -> Result<Vec<ListedLog>, InitError> {
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        // The list is one file: fetch it as the path after the last slash.
        let (base, file) = source.rsplit_once('/').unwrap_or((source, ""));
        let agent = http_agent(None, 1);
        LogSource::new(&Location::Http(format!("{base}/")), &agent, RetryPolicy::default())
            .fetch(file, BodyKind::Sniffable)?
            .to_vec()
    } else {
        local_file::read(Path::new(source), MAX_BODY, Links::Follow).map_err(InitError::Read)?
    };
    parse_log_list(source, &bytes)
}

fn parse_log_list(source_name: &str, bytes: &[u8]) -> Result<Vec<ListedLog>, InitError> {
    let list: LogList = serde_json::from_slice(bytes)
        .map_err(|source| InitError::Parse { source_name: source_name.to_string(), source })?;
    Ok(list
        .operators
        .into_iter()
        .flat_map(|operator| {
            let operator_name = operator.name;
            operator.tiled_logs.into_iter().map(move |log| ListedLog {
                name: log_name(&log.description),
                operator: operator_name.clone(),
                log_url: log.monitoring_url,
                submission_url: log.submission_url,
                key: log.key,
                state: log.state.and_then(|s| s.keys().next().cloned()),
            })
        })
        .collect())
}

/// HelioTorrent's naming, so both tools put a log in the same folder:
/// lower case, spaces and slashes to `_`, apostrophes dropped.
pub fn log_name(description: &str) -> String {
    description.replace(' ', "_").replace('\'', "").replace('/', "_").to_lowercase()
}

/// Asks the `--interactive` questions on `input`, prompting on `prompt`.
pub fn ask(input: &mut dyn BufRead, prompt: &mut dyn Write, logs: &mut Vec<ListedLog>) -> Result<Answers, InitError> {
    let mut question = |text: &str, default: &str| -> Result<String, InitError> {
        let shown = if default.is_empty() { String::new() } else { format!(" [{default}]") };
        write!(prompt, "{text}{shown}: ").and_then(|()| prompt.flush()).map_err(InitError::Prompt)?;
        let mut line = String::new();
        input.read_line(&mut line).map_err(InitError::Prompt)?;
        let line = line.trim();
        Ok(if line.is_empty() { default.to_string() } else { line.to_string() })
    };
    let contact = question("Contact e-mail for log operators (goes in the User-Agent)", "")?;
    let feed_url_base = question("Public URL of the output folder (for feeds and magnet links)", "")?;
    let webseed = question("WebSeed base URL (helio serve's /webseed/), empty for none", "")?;
    let torrent_dir = question("Output folder", "torrents")?;
    if !logs.is_empty() {
        let filter =
            question(&format!("{} logs are listed; keep those whose name contains (empty for all)", logs.len()), "")?;
        let filter = filter.to_lowercase();
        logs.retain(|log| log.name.contains(&filter) || log.operator.to_lowercase().contains(&filter));
    }
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(Answers { contact: some(contact), feed_url_base: some(feed_url_base), webseed: some(webseed), torrent_dir })
}

/// The config text: commented, and loadable as it is.
pub fn render(logs: &[ListedLog], answers: &Answers) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut text = String::from(
        "# helio configuration: `helio build` publishes the logs below as torrents,\n\
         # feeds and pages; `helio serve` is their WebSeed. See README.md.\n\n",
    );
    text += &format!("torrent_dir: {}\n", quote(&answers.torrent_dir));
    match &answers.contact {
        Some(contact) => text += &format!("scraper_contact_email: {}\n", quote(contact)),
        None => {
            text += "# Required for logs fetched over HTTP: logs rate-limit anonymous clients.\nscraper_contact_email: null\n"
        }
    }
    match &answers.feed_url_base {
        Some(url) => text += &format!("feed_url_base: {}\n", quote(url)),
        None => text += "# feed_url_base: https://example.org/ct-torrents\n",
    }
    match &answers.webseed {
        Some(url) => text += &format!("webseeds:\n  - {}\n", quote(url)),
        None => text += "# webseeds:\n#   - https://webseed.example.org/webseed/\n",
    }
    text += "http_port: 8080\n# entries_per_torrent: 1048576\n# profile: spec\n\nlogs:\n";
    let mut any = false;
    for log in logs {
        if log.wanted() {
            any = true;
            text += &format!(
                "  - name: {}\n    log_url: {}\n    submission_url: {}\n    key: {}\n",
                quote(&log.name),
                quote(&log.log_url),
                quote(&log.submission_url),
                quote(&log.key)
            );
            if log.finished() {
                text += &format!("    final: true  # {}\n", log.state.as_deref().unwrap_or(""));
            }
        } else {
            let state = log.state.as_deref().unwrap_or("");
            text += &format!("  # {} ({}): {state}, left out\n", log.name, log.log_url);
        }
    }
    if !any {
        text += "  - name: example2026h1\n    log_url: https://example.org/ct/2026h1/\n    \
                 # submission_url: https://example.org/ct/submit/2026h1/\n    \
                 # key: <base64 SubjectPublicKeyInfo from the CT log list>\n";
    }
    text
}

/// Writes the config to `path`, refusing to replace a file, and checks it loads.
pub fn write(path: &Path, text: &str) -> Result<usize, InitError> {
    if path.exists() {
        return Err(InitError::Exists(path.display().to_string()));
    }
    match Config::parse(path, text) {
        Ok(_) => {}
        // A starter config without a contact is expected to fail on that alone.
        Err(e) if e.kind == ConfigErrorKind::MissingContact => {}
        Err(e) => return Err(InitError::Invalid(e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| InitError::Write { path: path.display().to_string(), source })?;
    file.write_all(text.as_bytes()).map_err(|source| InitError::Write { path: path.display().to_string(), source })?;
    Ok(text.matches("\n  - name: ").count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realdata_list() -> Vec<ListedLog> {
        let path = crate::realdata_dir().join("loglist/all_logs_list-v78.2.json");
        read_log_list(path.to_str().unwrap()).unwrap()
    }

    #[test]
    fn names_follow_heliotorrent() {
        assert_eq!(log_name("Let's Encrypt 'Sycamore2026h1'"), "lets_encrypt_sycamore2026h1");
        assert_eq!(log_name("Google 'Arche2026h1' log/staging"), "google_arche2026h1_log_staging");
    }

    #[test]
    #[cfg_attr(not(realdata), ignore = "needs ../shared/realdata")]
    fn the_real_log_list_becomes_a_config_that_loads() {
        let logs = realdata_list();
        assert_eq!(logs.len(), 60);
        let sycamore = logs.iter().find(|l| l.name == "lets_encrypt_sycamore2026h1").unwrap();
        assert_eq!(sycamore.log_url, "https://mon.sycamore.ct.letsencrypt.org/2026h1/");
        let answers = Answers { contact: Some("ops@example.org".into()), ..Answers::default() };
        let text = render(&logs, &answers);
        let config = Config::parse(Path::new("/tmp/helio.yaml"), &text).unwrap();
        assert_eq!(config.logs.len(), 59, "the rejected log is left out");
        assert!(
            text.contains(
                "# ipng_networks_halloumi2026h2 (https://halloumi2026h2.mon.ct.ipng.ch/): rejected, left out"
            )
        );
        let log = config.logs.iter().find(|l| l.name == "lets_encrypt_sycamore2026h1").unwrap();
        assert_eq!(log.origin.as_deref(), Some("log.sycamore.ct.letsencrypt.org/2026h1"));
        assert!(log.key.is_some());
    }

    #[test]
    fn read_only_and_retired_logs_are_written_final() {
        let list = br#"{"operators": [{"name": "Op", "tiled_logs": [
            {"description": "Op 'Old2024'", "key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfEEe0JZknA91/c6eNl1aexgeKzuGQUMvRCXPXg9L227O5I4Pi++Abcpq6qxlVUKPYafAJelAnMfGzv3lHCc8gA==",
             "monitoring_url": "https://mon.example/2024/", "submission_url": "https://log.example/2024/",
             "state": {"retired": {"timestamp": "2025-01-01T00:00:00Z"}}},
            {"description": "Op 'Frozen2025'", "key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfEEe0JZknA91/c6eNl1aexgeKzuGQUMvRCXPXg9L227O5I4Pi++Abcpq6qxlVUKPYafAJelAnMfGzv3lHCc8gA==",
             "monitoring_url": "https://mon.example/2025/", "submission_url": "https://log.example/2025/",
             "state": {"readonly": {"timestamp": "2025-06-01T00:00:00Z"}}},
            {"description": "Op 'Live2026'", "key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfEEe0JZknA91/c6eNl1aexgeKzuGQUMvRCXPXg9L227O5I4Pi++Abcpq6qxlVUKPYafAJelAnMfGzv3lHCc8gA==",
             "monitoring_url": "https://mon.example/2026/", "submission_url": "https://log.example/2026/",
             "state": {"usable": {"timestamp": "2025-06-01T00:00:00Z"}}}]}]}"#;
        let logs = parse_log_list("list.json", list).unwrap();
        let answers = Answers { contact: Some("ops@example.org".into()), ..Answers::default() };
        let config = Config::parse(Path::new("/tmp/helio.yaml"), &render(&logs, &answers)).unwrap();
        let finals: Vec<(&str, bool)> = config.logs.iter().map(|l| (l.name.as_str(), l.is_final)).collect();
        assert_eq!(finals, [("op_old2024", true), ("op_frozen2025", true), ("op_live2026", false)]);
    }

    #[test]
    #[cfg_attr(not(realdata), ignore = "needs ../shared/realdata")]
    fn interactive_answers_shape_the_config() {
        let mut logs = realdata_list();
        let mut input =
            &b"me@example.org\nhttps://feeds.example.org/ct\nhttps://ws.example.org/webseed/\n\nsycamore\n"[..];
        let mut prompts = Vec::new();
        let answers = ask(&mut input, &mut prompts, &mut logs).unwrap();
        assert_eq!(answers.torrent_dir, "torrents");
        assert!(logs.iter().all(|l| l.name.contains("sycamore")) && !logs.is_empty());
        let config = Config::parse(Path::new("/tmp/helio.yaml"), &render(&logs, &answers)).unwrap();
        assert_eq!(config.contact.as_deref(), Some("me@example.org"));
        assert_eq!(config.feed_url_base.as_deref(), Some("https://feeds.example.org/ct"));
        assert!(config.logs[0].webseeds[0].starts_with("https://ws.example.org/webseed/lets_encrypt_sycamore"));
        assert!(String::from_utf8(prompts).unwrap().contains("Contact e-mail"));
    }

    #[test]
    fn a_starter_config_without_a_list_loads_once_a_contact_is_set() {
        let text = render(&[], &Answers::default());
        let with_contact = text.replace("scraper_contact_email: null", "scraper_contact_email: a@b.c");
        Config::parse(Path::new("/tmp/helio.yaml"), &with_contact).unwrap();
    }

    #[test]
    fn init_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helio.yaml");
        std::fs::write(&path, "keep").unwrap();
        assert!(matches!(write(&path, "x"), Err(InitError::Exists(_))));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
    }

    #[test]
    fn garbage_is_not_a_log_list() {
        let error = parse_log_list("list.json", b"{\"nope\": 1}").unwrap_err().to_string();
        assert!(error.starts_with("list.json: not a CT log list"), "{error}");
    }
}
