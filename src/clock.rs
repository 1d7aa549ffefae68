//! Times as helio records them: Unix seconds, now or `SOURCE_DATE_EPOCH`'s
//! (reproducible builds), written and read as RFC 3339 UTC with a `Z`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds as `2026-11-21T05:59:00Z`.
pub fn rfc3339(unix: u64) -> String {
    // RFC 3339 has four digits of year: later times are written as its last second.
    let unix = unix.min(crate::environment::MAX_UNIX_TIME);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

/// Reads a time written by [`rfc3339`].
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let time = humantime::parse_rfc3339(text).map_err(|e| format!("bad time {text:?}: {e}"))?;
    Ok(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// The time recorded in the site: Unix seconds now, or `SOURCE_DATE_EPOCH`
/// when set (reproducible builds: the same inputs give byte-identical output).
pub fn now() -> u64 {
    if let Some(epoch) =
        std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| crate::environment::source_date_epoch(&v).ok())
    {
        return epoch;
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_with_z() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(parse_rfc3339("2026-11-18T11:06:40Z"), Ok(1_795_000_000));
        // Past the year 9999 (a lease's garbage expiry): its last second, no overflow.
        assert_eq!(rfc3339(253_402_300_800), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }
}
