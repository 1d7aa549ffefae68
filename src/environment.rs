//! The environment variables of helio's own, checked before a command does
//! anything, so that a malformed one is one `helio:` line and exit status 2
//! (README, "Running helio") rather than a setting silently ignored or a
//! panic deep inside: `HELIO_RETRY_BUDGET`, `SOURCE_DATE_EPOCH` and
//! `HELIO_LOG`. `HELIO_CONFIG` is a path, checked when the config is read;
//! the AWS variables matter only for a bucket and are checked when one is
//! opened ([`crate::store::s3`]). An empty variable counts as unset.

use std::time::Duration;

use thiserror::Error;

/// The largest `HELIO_RETRY_BUDGET`: it caps the retry budgets, so more
/// than a day means nothing.
pub const MAX_RETRY_BUDGET: Duration = Duration::from_secs(24 * 3600);
/// The last second RFC 3339 can write (9999-12-31T23:59:59Z), the largest
/// `SOURCE_DATE_EPOCH`.
pub const MAX_UNIX_TIME: u64 = 253_402_300_799;

/// A variable that cannot be used as it is.
#[derive(Debug, Error)]
#[error("{name}={value}: {problem}")]
pub struct EnvError {
    pub name: &'static str,
    /// The value, control characters escaped.
    pub value: String,
    pub problem: String,
}

/// Checks every variable of helio's own.
pub fn check() -> Result<(), EnvError> {
    if let Some(text) = var("HELIO_RETRY_BUDGET")? {
        retry_budget(&text).map_err(|problem| error("HELIO_RETRY_BUDGET", &text, problem))?;
    }
    if let Some(text) = var("SOURCE_DATE_EPOCH")? {
        source_date_epoch(&text).map_err(|problem| error("SOURCE_DATE_EPOCH", &text, problem))?;
    }
    if let Some(text) = var("HELIO_LOG")? {
        tracing_subscriber::EnvFilter::try_new(&text)
            .map_err(|e| error("HELIO_LOG", &text, format!("not a log filter such as info or helio=debug ({e})")))?;
    }
    Ok(())
}

/// `HELIO_RETRY_BUDGET`: seconds, a non-negative number of at most a day.
pub fn retry_budget(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.trim().parse().map_err(|_| "not a number of seconds such as 3 or 0.5".to_string())?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err("not a number of seconds such as 3 or 0.5".into());
    }
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|budget| *budget <= MAX_RETRY_BUDGET)
        .ok_or_else(|| format!("more than {} seconds, which is no budget", MAX_RETRY_BUDGET.as_secs()))
}

/// `SOURCE_DATE_EPOCH`: Unix seconds, as the reproducible-builds
/// specification defines it, up to the year 9999.
pub fn source_date_epoch(text: &str) -> Result<u64, String> {
    let seconds: u64 = text.trim().parse().map_err(|_| "not a number of seconds since 1970".to_string())?;
    if seconds > MAX_UNIX_TIME {
        return Err("later than the year 9999".into());
    }
    Ok(seconds)
}

/// A variable's text; `None` when unset or empty; not UTF-8 is an error.
fn var(name: &'static str) -> Result<Option<String>, EnvError> {
    match std::env::var(name) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => Ok(Some(text)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(raw)) => {
            Err(error(name, &raw.to_string_lossy(), "not UTF-8 text".to_string()))
        }
    }
}

fn error(name: &'static str, value: &str, problem: String) -> EnvError {
    EnvError { name, value: escaped(value), problem }
}

/// `text` with control characters escaped and cut to a readable length,
/// safe to print on a terminal or in a log.
pub fn escaped(text: &str) -> String {
    const SHOWN: usize = 100;
    let mut out = String::with_capacity(text.len().min(4 * SHOWN));
    for c in text.chars().take(SHOWN) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > SHOWN {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_and_epochs() {
        assert_eq!(retry_budget("3"), Ok(Duration::from_secs(3)));
        assert_eq!(retry_budget(" 0.5 "), Ok(Duration::from_millis(500)));
        for bad in ["-1", "inf", "NaN", "1e20", "three", "86401"] {
            assert!(retry_budget(bad).is_err(), "{bad}");
        }
        assert_eq!(source_date_epoch("1795000000"), Ok(1_795_000_000));
        for bad in ["-1", "1.5", "253402300800", "18446744073709551616", "now"] {
            assert!(source_date_epoch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escaped("runner-7 pid 42"), "runner-7 pid 42");
        assert_eq!(escaped("evil\u{1b}[31m\nname"), "evil\\u{1b}[31m\\nname");
        assert_eq!(escaped("é ✓"), "é ✓");
        assert_eq!(escaped(&"x".repeat(150)), format!("{}…", "x".repeat(100)));
    }
}
