//! Reading YAML without letting the file decide how much time or memory it
//! takes: a config is small, so anything too large, nested too deep or
//! repeated too often through aliases (the "billion laughs") is refused with
//! one line, before or while serde_yaml reads it.
//!
//! serde_yaml keeps a document's events once and replays an anchor's events
//! at each alias, so memory grows with what is deserialized, not with the
//! file. Every string of the config is a [`Text`], which charges its bytes to
//! a budget for the file being read: the budget runs out long before an alias
//! bomb grows large. Flow collections nested thousands deep make libyaml
//! slow (quadratic), so their depth is checked by a scan first.

use std::cell::Cell;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::{ConfigError, ConfigErrorKind};

/// Largest config file read. A config for every log of the CT log list is
/// tens of KB.
pub(super) const MAX_FILE: usize = 4 << 20;
/// Bytes of strings one config may hold once aliases are expanded, counting
/// each string as its length plus [`PER_STRING`].
const STRING_BUDGET: usize = 16 << 20;
const PER_STRING: usize = 32;
/// Deepest nesting of flow collections (`[…]`, `{…}`) accepted.
const MAX_FLOW_DEPTH: usize = 64;

thread_local! {
    static BUDGET: Cell<usize> = const { Cell::new(0) };
}

/// Deserializes `text` (the contents of `file`) into `T`.
pub fn read<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    global_keys: &[&str],
    log_keys: &[&str],
) -> Result<T, ConfigError> {
    let too_complex = |message: String| ConfigError {
        file: file.to_path_buf(),
        location: None,
        kind: ConfigErrorKind::TooComplex,
        message,
    };
    if text.len() > MAX_FILE {
        return Err(too_complex(format!("is {} bytes; a config is at most {} MiB", text.len(), MAX_FILE >> 20)));
    }
    if let Some((line, column)) = too_deep(text) {
        return Err(ConfigError {
            location: Some((line, column)),
            ..too_complex(format!("collections nested more than {MAX_FLOW_DEPTH} deep"))
        });
    }
    BUDGET.with(|budget| budget.set(STRING_BUDGET));
    let result = serde_yaml::from_str(text);
    let exhausted = BUDGET.with(|budget| budget.get() == 0);
    result.map_err(|e| {
        if exhausted {
            too_complex(format!(
                "expands to more than {} MiB of text (aliases repeating large values?)",
                STRING_BUDGET >> 20
            ))
        } else {
            yaml_error(file, &e, global_keys, log_keys)
        }
    })
}

/// Where flow collections first nest deeper than [`MAX_FLOW_DEPTH`], as
/// (line, column), skipping quoted text and comments.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let (mut line, mut column) = (1, 0);
    let mut chars = text.chars().peekable();
    let mut previous = '\n';
    while let Some(c) = chars.next() {
        column += 1;
        match c {
            '\n' => {
                line += 1;
                column = 0;
            }
            '#' if previous.is_whitespace() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        column = 0;
                        break;
                    }
                }
            }
            '"' | '\'' if !previous.is_alphanumeric() => {
                let quote = c;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' if quote == '"' => {
                            chars.next();
                        }
                        '\n' => {
                            line += 1;
                            column = 0;
                        }
                        c if c == quote => {
                            // '' inside single quotes is an escaped quote.
                            if quote == '\'' && chars.peek() == Some(&'\'') {
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some((line, column));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    None
}

/// A string of the config, charged to the budget of the file being read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    /// A string that did not come from the file (a CT log list's value).
    pub fn new(text: String) -> Text {
        Text(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Text, E> {
                let cost = value.len() + PER_STRING;
                let left = BUDGET.with(|budget| {
                    let left = budget.get().saturating_sub(cost);
                    budget.set(left);
                    left
                });
                if left == 0 {
                    return Err(E::custom("the config expands to too much text"));
                }
                Ok(Text(value.to_string()))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Rewrites serde_yaml's message into one that names the key, its line and,
/// for an unknown key, the closest known one.
fn yaml_error(file: &Path, error: &serde_yaml::Error, global_keys: &[&str], log_keys: &[&str]) -> ConfigError {
    let location = error.location().map(|l| (l.line(), l.column()));
    let mut message = error.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    // serde_yaml prefixes the path of the failing value: "logs[0].webseeds: …".
    let (path, detail) = match message.split_once(": ") {
        Some((path, detail))
            if !path.is_empty() && path.chars().all(|c| c.is_ascii_alphanumeric() || "_[].".contains(c)) =>
        {
            (Some(path.to_string()), detail.to_string())
        }
        _ => (None, message.clone()),
    };
    let message = if let Some(unknown) = detail.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
        let in_log = path.as_deref().is_some_and(|p| p.starts_with("logs["));
        let known = if in_log { log_keys } else { global_keys };
        let place = path.map(|p| format!(" in {p}")).unwrap_or_default();
        let suggestion = known
            .iter()
            .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
            .min()
            .filter(|(distance, _)| *distance <= 3.max(unknown.len() / 3))
            .map(|(_, k)| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        format!("unknown key `{unknown}`{place}{suggestion}")
    } else if let Some(path) = path {
        format!("{path}: {detail}")
    } else {
        detail
    };
    ConfigError { file: file.to_path_buf(), location, kind: ConfigErrorKind::Syntax, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_depth_skips_quotes_and_comments() {
        assert_eq!(too_deep("a: [[[x]]]\n"), None);
        let quoted = format!("a: '{}'\nb: \"{}\" # {}\n", "[".repeat(100), "{".repeat(100), "[".repeat(100));
        assert_eq!(too_deep(&quoted), None);
        assert_eq!(too_deep(&format!("a: 'it''s'\nb: {}", "[".repeat(65))), Some((2, 68)));
    }
}
