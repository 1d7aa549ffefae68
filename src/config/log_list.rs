//! A CT log list (the v3 JSON Chrome and Google publish,
//! `operators[].tiled_logs[]`) as a source of logs: which Static CT logs it
//! holds, in which state, and which of them a config selects
//! (`log_list_states`, `log_list_operators`, `log_list_logs`). Turning the
//! selection into logs is the config's job ([`super::Config::with_log_list`]);
//! reading the list, over the network or from the last good copy, is the
//! site's (`site::log_list`). See docs/log-list.md.

use std::fmt;

/// Google's list of every log, the one HelioTorrent reads by default.
pub const DEFAULT_LOG_LIST: &str = "https://www.gstatic.com/ct/log_list/v3/all_logs_list.json";

use serde::Deserialize;

/// The states a log list gives a log (Chrome's CT policy), and `None` for a
/// log it gives no state (test and monitoring-only logs, staging logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Pending,
    Qualified,
    Usable,
    ReadOnly,
    Retired,
    Rejected,
    None,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Pending,
        State::Qualified,
        State::Usable,
        State::ReadOnly,
        State::Retired,
        State::Rejected,
        State::None,
    ];

    /// What `log_list_states` selects when it is not set.
    pub const DEFAULT: [State; 4] = [State::Usable, State::Qualified, State::ReadOnly, State::Retired];

    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Qualified => "qualified",
            State::Usable => "usable",
            State::ReadOnly => "readonly",
            State::Retired => "retired",
            State::Rejected => "rejected",
            State::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.name() == text.trim().to_ascii_lowercase())
    }

    /// A log that no longer grows: its last entries get one last torrent.
    pub fn is_final(self) -> bool {
        matches!(self, State::ReadOnly | State::Retired)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which logs of a list a config builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub states: Vec<State>,
    /// Operator names (any case); all when empty.
    pub operators: Vec<String>,
    /// Log names, `*` matching any run of characters (`*2026h1`); all when empty.
    pub logs: Vec<String>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection { states: State::DEFAULT.to_vec(), operators: Vec::new(), logs: Vec::new() }
    }
}

/// One Static CT log of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedLog {
    /// As HelioTorrent names it ([`log_name`]).
    pub name: String,
    pub description: String,
    pub operator: String,
    /// The monitoring prefix.
    pub log_url: String,
    pub submission_url: String,
    /// Base64 DER SubjectPublicKeyInfo.
    pub key: String,
    pub state: State,
    /// `test`, `monitoring_only`, or none for a production log.
    pub log_type: Option<String>,
}

/// The Static CT logs of a list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogList {
    /// The list's own version and time, for messages.
    pub version: Option<String>,
    pub timestamp: Option<String>,
    pub logs: Vec<ListedLog>,
}

#[derive(Deserialize)]
struct RawList {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    log_list_timestamp: Option<String>,
    operators: Vec<RawOperator>,
}

#[derive(Deserialize)]
struct RawOperator {
    name: String,
    #[serde(default)]
    tiled_logs: Vec<RawTiledLog>,
}

#[derive(Deserialize)]
struct RawTiledLog {
    description: String,
    key: String,
    monitoring_url: String,
    submission_url: String,
    #[serde(default)]
    state: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    log_type: Option<String>,
}

/// Why a log of a list is left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeftOut {
    State(State),
    Operator,
    Name,
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeftOut::State(State::None) => f.write_str("the list gives it no state"),
            LeftOut::State(state) => write!(f, "its state is {state}"),
            LeftOut::Operator => f.write_str("its operator is not in log_list_operators"),
            LeftOut::Name => f.write_str("its name is not in log_list_logs"),
        }
    }
}

impl LogList {
    /// Parses a list; `what` names it in the error.
    pub fn parse(bytes: &[u8]) -> Result<LogList, String> {
        let raw: RawList = serde_json::from_slice(bytes).map_err(|e| format!("not a CT log list (v3 JSON): {e}"))?;
        let mut logs: Vec<ListedLog> = Vec::new();
        for operator in raw.operators {
            for log in operator.tiled_logs {
                // The state is an object with one key: its name.
                let state = match log.state.as_ref().and_then(|state| state.keys().next()) {
                    Some(name) => State::parse(name).unwrap_or(State::None),
                    None => State::None,
                };
                let name = log_name(&log.description);
                if logs.iter().any(|other| other.name == name) {
                    continue;
                }
                logs.push(ListedLog {
                    name,
                    description: log.description,
                    operator: operator.name.clone(),
                    log_url: log.monitoring_url,
                    submission_url: log.submission_url,
                    key: log.key,
                    state,
                    log_type: log.log_type,
                });
            }
        }
        Ok(LogList { version: raw.version, timestamp: raw.log_list_timestamp, logs })
    }

    /// The list's logs with whether `selection` builds them.
    pub fn select<'a>(&'a self, selection: &Selection) -> Vec<(&'a ListedLog, Result<(), LeftOut>)> {
        self.logs.iter().map(|log| (log, selection.judge(log))).collect()
    }

    pub fn find(&self, name: &str) -> Option<&ListedLog> {
        self.logs.iter().find(|log| log.name == name)
    }

    /// `version 78.2 of 2025-12-13T…`, or what the list tells of itself.
    pub fn describe(&self) -> String {
        match (&self.version, &self.timestamp) {
            (Some(version), Some(at)) => format!("version {version} of {at}"),
            (Some(version), None) => format!("version {version}"),
            (None, Some(at)) => format!("of {at}"),
            (None, None) => "unversioned".to_string(),
        }
    }
}

impl Selection {
    fn judge(&self, log: &ListedLog) -> Result<(), LeftOut> {
        if !self.states.contains(&log.state) {
            return Err(LeftOut::State(log.state));
        }
        if !self.operators.is_empty() && !self.operators.iter().any(|o| o.eq_ignore_ascii_case(&log.operator)) {
            return Err(LeftOut::Operator);
        }
        if !self.logs.is_empty() && !self.logs.iter().any(|pattern| matches(pattern, &log.name)) {
            return Err(LeftOut::Name);
        }
        Ok(())
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return name.is_empty(),
    };
    let Some(mut left) = name.strip_prefix(first) else { return false };
    let Some((last, middle)) = rest.split_last() else { return left.is_empty() };
    for part in middle {
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    left.len() >= last.len() && left.ends_with(last)
}

/// HelioTorrent's naming, so both tools put a log in the same folder:
/// lower case, spaces and slashes to `_`, apostrophes dropped.
pub fn log_name(description: &str) -> String {
    description.replace(' ', "_").replace('\'', "").replace('/', "_").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[u8] = br#"{"version": "7.1", "log_list_timestamp": "2026-12-01T00:00:00Z", "operators": [
        {"name": "Op", "logs": [], "tiled_logs": [
          {"description": "Op 'Live2026'", "key": "K1", "monitoring_url": "https://mon.example/2026/",
           "submission_url": "https://log.example/2026/", "state": {"usable": {"timestamp": "2025-06-01T00:00:00Z"}}},
          {"description": "Op 'Old2024'", "key": "K2", "monitoring_url": "https://mon.example/2024/",
           "submission_url": "https://log.example/2024/", "state": {"retired": {"timestamp": "2025-01-01T00:00:00Z"}}},
          {"description": "Op 'Bad2026'", "key": "K3", "monitoring_url": "https://mon.example/bad/",
           "submission_url": "https://log.example/bad/", "state": {"rejected": {"timestamp": "2025-01-01T00:00:00Z"}}},
          {"description": "Op 'Staging2026'", "key": "K4", "monitoring_url": "https://mon.example/st/",
           "submission_url": "https://log.example/st/", "log_type": "test"}]},
        {"name": "Other Operator", "tiled_logs": [
          {"description": "Other 'Next2027'", "key": "K5", "monitoring_url": "https://o.example/2027/",
           "submission_url": "https://o.example/2027/", "state": {"qualified": {"timestamp": "2026-01-01T00:00:00Z"}}}]}
    ]}"#;

    fn selected(selection: &Selection) -> Vec<String> {
        let list = LogList::parse(LIST).unwrap();
        list.select(selection).into_iter().filter(|(_, s)| s.is_ok()).map(|(log, _)| log.name.clone()).collect()
    }

    #[test]
    fn a_list_reads_with_states_and_heliotorrent_names() {
        let list = LogList::parse(LIST).unwrap();
        let states: Vec<(&str, State)> = list.logs.iter().map(|l| (l.name.as_str(), l.state)).collect();
        assert_eq!(
            states,
            [
                ("op_live2026", State::Usable),
                ("op_old2024", State::Retired),
                ("op_bad2026", State::Rejected),
                ("op_staging2026", State::None),
                ("other_next2027", State::Qualified)
            ]
        );
        assert_eq!(list.logs[3].log_type.as_deref(), Some("test"));
        assert_eq!(list.describe(), "version 7.1 of 2026-12-01T00:00:00Z");
        assert!(LogList::parse(b"{\"nope\": 1}").unwrap_err().starts_with("not a CT log list"));
    }

    #[test]
    fn the_default_selection_takes_the_logs_chrome_counts_on() {
        assert_eq!(selected(&Selection::default()), ["op_live2026", "op_old2024", "other_next2027"]);
        let with_none = Selection { states: vec![State::Usable, State::None], ..Selection::default() };
        assert_eq!(selected(&with_none), ["op_live2026", "op_staging2026"]);
        let list = LogList::parse(LIST).unwrap();
        let reasons: Vec<String> = list
            .select(&Selection::default())
            .into_iter()
            .filter_map(|(_, s)| s.err())
            .map(|r| r.to_string())
            .collect();
        assert_eq!(reasons, ["its state is rejected", "the list gives it no state"]);
    }

    #[test]
    fn operators_and_names_narrow_the_selection() {
        let by_operator = Selection { operators: vec!["other operator".into()], ..Selection::default() };
        assert_eq!(selected(&by_operator), ["other_next2027"]);
        let by_name = Selection { logs: vec!["*2026".into(), "op_old*".into()], ..Selection::default() };
        assert_eq!(selected(&by_name), ["op_live2026", "op_old2024"]);
    }

    #[test]
    fn patterns_match_with_stars() {
        for (pattern, name, expected) in [
            ("a", "a", true),
            ("a", "ab", false),
            ("*", "", true),
            ("*2026h1", "sycamore2026h1", true),
            ("*2026h1", "sycamore2026h2", false),
            ("lets_*_2026*", "lets_encrypt_sycamore2026h1", false),
            ("lets_*2026*", "lets_encrypt_sycamore2026h1", true),
            ("a*a", "a", false),
            ("a*b*c", "abxc", true),
        ] {
            assert_eq!(matches(pattern, name), expected, "{pattern} {name}");
        }
    }

    #[test]
    fn names_follow_heliotorrent() {
        assert_eq!(log_name("Let's Encrypt 'Sycamore2026h1'"), "lets_encrypt_sycamore2026h1");
        assert_eq!(log_name("Google 'Arche2026h1' log/staging"), "google_arche2026h1_log_staging");
    }
}
