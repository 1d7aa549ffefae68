//! `helio init`: writes a starter config that builds as written. With
//! `--log-list`, the config names a CT log list (v3 JSON,
//! `operators[].tiled_logs[]`) whose selected logs `helio build` reads at
//! every run, so new shards are picked up and finished ones archived by
//! themselves (docs/log-list.md); with `--expand`, it lists the logs the
//! list selects today under `logs:` instead, each with its monitoring prefix,
//! submission prefix (for the checkpoint origin) and key. Either way it says
//! which logs it left out and why.

use std::io::{BufRead, Write};
use std::path::Path;

use thiserror::Error;

use crate::config::log_list::{LeftOut, ListedLog, LogList, Selection, State};
use crate::config::{Config, ConfigError, ConfigErrorKind, LogListConfig};
use crate::log::source::RetryPolicy;
use crate::site::log_list::{self, LogListError};

#[derive(Debug, Error)]
pub enum InitError {
    #[error("{0} already exists; move it aside or choose another file with -c")]
    Exists(String),
    #[error(transparent)]
    List(#[from] LogListError),
    #[error("--states: {0:?} is not a state (usable, qualified, readonly, retired, pending, rejected, none)")]
    State(String),
    #[error("the config helio wrote does not load, which is a bug: {0}")]
    Invalid(#[source] ConfigError),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot read the answer: {0}")]
    Prompt(std::io::Error),
}

impl InitError {
    /// A usage error (exit status 2), as opposed to a list that cannot be read.
    pub fn is_usage(&self) -> bool {
        !matches!(self, InitError::List(_) | InitError::Write { .. })
    }
}

/// Answers to the questions `--interactive` asks, or their defaults.
#[derive(Debug)]
pub struct Answers {
    pub contact: Option<String>,
    pub feed_url_base: Option<String>,
    pub webseed: Option<String>,
    pub torrent_dir: String,
    /// Only the logs whose name or operator contains this (`--interactive`).
    pub filter: Option<String>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers { contact: None, feed_url_base: None, webseed: None, torrent_dir: "torrents".into(), filter: None }
    }
}

/// The states `--states` names, or the default selection's.
pub fn states(names: &[String]) -> Result<Vec<State>, InitError> {
    if names.is_empty() {
        return Ok(State::DEFAULT.to_vec());
    }
    names.iter().map(|name| State::parse(name).ok_or_else(|| InitError::State(name.clone()))).collect()
}

/// Reads a log list (file or URL), giving up on a host that does not answer
/// within the short budget, as a build does.
pub fn read_log_list(source: &str, contact: Option<&str>) -> Result<LogList, InitError> {
    let settings = LogListConfig {
        source: source.to_string(),
        written: source.to_string(),
        selection: Selection::default(),
        signature: None,
        key: None,
    };
    Ok(log_list::read(&settings, None, contact, RetryPolicy::from_env())?.list)
}

/// The logs of `list` that `selection` keeps, and those it leaves out.
pub fn split<'a>(list: &'a LogList, selection: &Selection) -> (Vec<&'a ListedLog>, Vec<(&'a ListedLog, LeftOut)>) {
    let mut kept = Vec::new();
    let mut left = Vec::new();
    for (log, verdict) in list.select(selection) {
        match verdict {
            Ok(()) => kept.push(log),
            Err(why) => left.push((log, why)),
        }
    }
    (kept, left)
}

/// One line per reason: `28 the list gives it no state, 5 its state is pending`.
pub fn left_out_summary(left: &[(&ListedLog, LeftOut)]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (_, why) in left {
        let why = why.to_string();
        match counts.iter_mut().find(|(reason, _)| *reason == why) {
            Some((_, count)) => *count += 1,
            None => counts.push((why, 1)),
        }
    }
    counts.iter().map(|(why, count)| format!("{count} ({why})")).collect::<Vec<_>>().join(", ")
}

/// Asks the `--interactive` questions on `input`, prompting on `prompt`.
pub fn ask(
    input: &mut dyn BufRead,
    prompt: &mut dyn Write,
    listed: Option<usize>,
    contact: Option<String>,
) -> Result<Answers, InitError> {
    let mut question = |text: &str, default: &str| -> Result<String, InitError> {
        let shown = if default.is_empty() { String::new() } else { format!(" [{default}]") };
        write!(prompt, "{text}{shown}: ").and_then(|()| prompt.flush()).map_err(InitError::Prompt)?;
        let mut line = String::new();
        input.read_line(&mut line).map_err(InitError::Prompt)?;
        let line = line.trim();
        Ok(if line.is_empty() { default.to_string() } else { line.to_string() })
    };
    let contact =
        question("Contact e-mail for log operators (goes in the User-Agent)", contact.as_deref().unwrap_or(""))?;
    let feed_url_base = question("Public URL of the output folder (for feeds and magnet links)", "")?;
    let webseed = question("WebSeed base URL (helio serve's /webseed/), empty for none", "")?;
    let torrent_dir = question("Output folder", "torrents")?;
    let filter = match listed {
        Some(count) => {
            question(&format!("{count} logs are selected; keep those whose name contains (empty for all)"), "")?
        }
        None => String::new(),
    };
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(Answers {
        contact: some(contact),
        feed_url_base: some(feed_url_base),
        webseed: some(webseed),
        torrent_dir,
        filter: some(filter.to_lowercase()),
    })
}

/// What the config is built from.
pub enum Logs<'a> {
    /// No list: one example log to fill in.
    None,
    /// `log_list:` naming `source`, with these states; the logs it selects
    /// and leaves out today, for the comments.
    List { source: &'a str, states: &'a [State], kept: &'a [&'a ListedLog], left: &'a [(&'a ListedLog, LeftOut)] },
    /// The list's selected logs written out under `logs:`.
    Expanded { kept: &'a [&'a ListedLog], left: &'a [(&'a ListedLog, LeftOut)] },
}

/// The config text: commented, and loadable as it is.
pub fn render(logs: &Logs, answers: &Answers) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut text = String::from(
        "# helio configuration: `helio build` publishes the logs below as torrents,\n\
         # feeds and pages; `helio serve` is their WebSeed. See README.md.\n\n",
    );
    text += &format!("torrent_dir: {}\n", quote(&answers.torrent_dir));
    match &answers.contact {
        Some(contact) => text += &format!("scraper_contact_email: {}\n", quote(contact)),
        None => {
            text += "# Required for logs fetched over HTTP (logs rate-limit anonymous clients):\n\
                     # set it, or write the config again with `helio init --contact EMAIL`.\n\
                     scraper_contact_email: null\n"
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
    text += "http_port: 8080\n# entries_per_torrent: 1048576\n# profile: spec\n";
    let left_comments = |left: &[(&ListedLog, LeftOut)]| {
        left.iter().map(|(log, why)| format!("#   {} ({}): {why}\n", log.name, log.log_url)).collect::<String>()
    };
    match logs {
        Logs::None => {
            text += "\nlogs:\n  - name: example2026h1\n    log_url: https://example.org/ct/2026h1/\n    \
                     # submission_url: https://example.org/ct/submit/2026h1/\n    \
                     # key: <base64 SubjectPublicKeyInfo from the CT log list>\n";
        }
        Logs::List { source, states, kept, left } => {
            let states: Vec<&str> = states.iter().map(|state| state.name()).collect();
            text += &format!(
                "\n# The logs: every Static CT log of this CT log list in one of these states,\n\
                 # read again at every build (new shards are picked up; a log that leaves the\n\
                 # selection is archived: no longer fetched, its torrents and pages stay).\n\
                 # Read-only and retired logs get one last torrent (final: true).\n\
                 log_list: {}\nlog_list_states: [{}]\n",
                quote(source),
                states.join(", ")
            );
            if let Some(filter) = &answers.filter {
                text += &format!("log_list_logs: [{}]\n", quote(&format!("*{filter}*")));
            }
            text += &format!(
                "# Selected today: {}.\n",
                kept.iter().map(|log| log.name.as_str()).collect::<Vec<_>>().join(", ")
            );
            if !left.is_empty() {
                text += &format!("# Left out today:\n{}", left_comments(left));
            }
            text += "\n# Entries here override a log of the list by name (range size, format, web\n\
                     # seeds, …) or add logs of their own:\n# logs:\n#   - name: lets_encrypt_sycamore2026h1\n\
                     #     format: hybrid\n";
        }
        Logs::Expanded { kept, left } => {
            text += "\nlogs:\n";
            for log in kept.iter().filter(|log| answers.filter.as_ref().is_none_or(|f| log.name.contains(f.as_str()))) {
                text += &format!(
                    "  - name: {}\n    log_url: {}\n    submission_url: {}\n    key: {}\n",
                    quote(&log.name),
                    quote(&log.log_url),
                    quote(&log.submission_url),
                    quote(&log.key)
                );
                if log.state.is_final() {
                    text += &format!("    final: true  # {}\n", log.state);
                }
            }
            if !left.is_empty() {
                text += &format!("# Left out:\n{}", left_comments(left));
            }
        }
    }
    text
}

/// Writes the config to `path`, refusing to replace a file, and checks it
/// loads. Returns the config as it loads (without a contact, a config of
/// logs fetched over HTTP does not: `None`).
pub fn write(path: &Path, text: &str) -> Result<Option<Config>, InitError> {
    if path.exists() {
        return Err(InitError::Exists(path.display().to_string()));
    }
    let loaded = match Config::parse(path, text) {
        Ok(config) => Some(config),
        // A starter config without a contact is expected to fail on that alone.
        Err(e) if e.kind == ConfigErrorKind::MissingContact => None,
        Err(e) => return Err(InitError::Invalid(e)),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| InitError::Write { path: path.display().to_string(), source })?;
    file.write_all(text.as_bytes()).map_err(|source| InitError::Write { path: path.display().to_string(), source })?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[u8] = br#"{"operators": [{"name": "Op", "tiled_logs": [
        {"description": "Op 'Old2024'", "key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfEEe0JZknA91/c6eNl1aexgeKzuGQUMvRCXPXg9L227O5I4Pi++Abcpq6qxlVUKPYafAJelAnMfGzv3lHCc8gA==",
         "monitoring_url": "https://mon.example/2024/", "submission_url": "https://log.example/2024/",
         "state": {"retired": {"timestamp": "2025-01-01T00:00:00Z"}}},
        {"description": "Op 'Frozen2025'", "key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfEEe0JZknA91/c6eNl1aexgeKzuGQUMvRCXPXg9L227O5I4Pi++Abcpq6qxlVUKPYafAJelAnMfGzv3lHCc8gA==",
         "monitoring_url": "https://mon.example/2025/", "submission_url": "https://log.example/2025/",
         "state": {"readonly": {"timestamp": "2025-06-01T00:00:00Z"}}},
        {"description": "Op 'Live2026'", "key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfEEe0JZknA91/c6eNl1aexgeKzuGQUMvRCXPXg9L227O5I4Pi++Abcpq6qxlVUKPYafAJelAnMfGzv3lHCc8gA==",
         "monitoring_url": "https://mon.example/2026/", "submission_url": "https://log.example/2026/",
         "state": {"usable": {"timestamp": "2025-06-01T00:00:00Z"}}},
        {"description": "Op 'Soon2027'", "key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfEEe0JZknA91/c6eNl1aexgeKzuGQUMvRCXPXg9L227O5I4Pi++Abcpq6qxlVUKPYafAJelAnMfGzv3lHCc8gA==",
         "monitoring_url": "https://mon.example/2027/", "submission_url": "https://log.example/2027/",
         "state": {"pending": {"timestamp": "2025-06-01T00:00:00Z"}}}]}]}"#;

    fn answers() -> Answers {
        Answers { contact: Some("ops@example.org".into()), ..Answers::default() }
    }

    #[test]
    fn the_expanded_form_writes_read_only_and_retired_logs_final_and_says_what_it_left_out() {
        let list = LogList::parse(LIST).unwrap();
        let (kept, left) = split(&list, &Selection::default());
        let text = render(&Logs::Expanded { kept: &kept, left: &left }, &answers());
        let config = Config::parse(Path::new("/tmp/helio.yaml"), &text).unwrap();
        let finals: Vec<(&str, bool)> = config.logs.iter().map(|l| (l.name.as_str(), l.is_final)).collect();
        assert_eq!(finals, [("op_old2024", true), ("op_frozen2025", true), ("op_live2026", false)]);
        assert!(text.contains("#   op_soon2027 (https://mon.example/2027/): its state is pending\n"), "{text}");
        assert_eq!(left_out_summary(&left), "1 (its state is pending)");
    }

    #[test]
    fn the_list_form_names_the_list_and_loads() {
        let list = LogList::parse(LIST).unwrap();
        let states = [State::Usable, State::Pending];
        let selection = Selection { states: states.to_vec(), ..Selection::default() };
        let (kept, left) = split(&list, &selection);
        let text = render(
            &Logs::List { source: "https://lists.example/all.json", states: &states, kept: &kept, left: &left },
            &answers(),
        );
        let config = Config::parse(Path::new("/tmp/helio.yaml"), &text).unwrap();
        let settings = config.log_list.as_ref().unwrap();
        assert_eq!(settings.source, "https://lists.example/all.json");
        assert_eq!(settings.selection.states, states);
        let expanded = config.with_log_list(&list).unwrap();
        let names: Vec<&str> = expanded.logs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["op_live2026", "op_soon2027"]);
        assert!(text.contains("# Selected today: op_live2026, op_soon2027.\n"), "{text}");
    }

    #[test]
    fn interactive_answers_shape_the_config() {
        let mut input = &b"me@example.org\nhttps://feeds.example.org/ct\nhttps://ws.example.org/webseed/\n\nlive\n"[..];
        let mut prompts = Vec::new();
        let answers = ask(&mut input, &mut prompts, Some(3), None).unwrap();
        assert_eq!(answers.torrent_dir, "torrents");
        let list = LogList::parse(LIST).unwrap();
        let (kept, left) = split(&list, &Selection::default());
        let config = Config::parse(
            Path::new("/tmp/helio.yaml"),
            &render(&Logs::Expanded { kept: &kept, left: &left }, &answers),
        )
        .unwrap();
        assert_eq!(config.contact.as_deref(), Some("me@example.org"));
        assert_eq!(config.feed_url_base.as_deref(), Some("https://feeds.example.org/ct"));
        assert_eq!(config.logs.len(), 1);
        assert!(config.logs[0].webseeds[0].starts_with("https://ws.example.org/webseed/op_live2026"));
        assert!(String::from_utf8(prompts).unwrap().contains("Contact e-mail"));
    }

    #[test]
    fn a_starter_config_without_a_list_loads_once_a_contact_is_set() {
        let text = render(&Logs::None, &Answers::default());
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
    fn the_real_log_list_becomes_configs_that_load() {
        let path = crate::real_fixtures().join("loglist/all_logs_list-v78.2.json");
        let list = LogList::parse(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(list.logs.len(), 60);
        let (kept, left) = split(&list, &Selection::default());
        assert_eq!((kept.len(), left.len()), (26, 34), "20 usable and 6 qualified");
        assert_eq!(
            left_out_summary(&left),
            "28 (the list gives it no state), 5 (its state is pending), 1 (its state is rejected)"
        );
        let expanded = render(&Logs::Expanded { kept: &kept, left: &left }, &answers());
        let config = Config::parse(Path::new("/tmp/helio.yaml"), &expanded).unwrap();
        assert_eq!(config.logs.len(), 26);
        let sycamore = config.logs.iter().find(|l| l.name == "lets_encrypt_sycamore2026h1").unwrap();
        assert_eq!(sycamore.log_url, "https://mon.sycamore.ct.letsencrypt.org/2026h1/");
        assert_eq!(sycamore.origin.as_deref(), Some("log.sycamore.ct.letsencrypt.org/2026h1"));
        assert!(sycamore.key.is_some());
        assert!(
            expanded.contains(
                "ipng_networks_halloumi2026h2 (https://halloumi2026h2.mon.ct.ipng.ch/): its state is rejected"
            )
        );

        // The list form gives the same logs once the list is read.
        let states = State::DEFAULT;
        let short = render(&Logs::List { source: "list.json", states: &states, kept: &kept, left: &left }, &answers());
        let config = Config::parse(Path::new("/tmp/helio.yaml"), &short).unwrap().with_log_list(&list).unwrap();
        let names: Vec<&str> = config.logs.iter().map(|l| l.name.as_str()).collect();
        let kept: Vec<&str> = kept.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, kept);
    }

    #[test]
    fn states_are_checked() {
        assert_eq!(states(&[]).unwrap(), State::DEFAULT);
        assert_eq!(states(&["usable".into(), "none".into()]).unwrap(), [State::Usable, State::None]);
        assert!(matches!(states(&["live".into()]), Err(InitError::State(_))));
    }
}
