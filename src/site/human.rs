//! Numbers, sizes and times as people read them on the pages. Nothing here
//! depends on the clock: a page must come out byte-identical when nothing
//! changed, so there is no "3 days ago".

use serde::Serialize;

use crate::clock::rfc3339;

/// `1048576` → `1,048,576`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bytes in binary units, as BitTorrent clients show them: `1.7 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    // Three significant digits: 1.75 GiB, 17.5 GiB, 175 GiB.
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.decimals$} {}", UNITS[unit])
}

/// `part` of `whole` as a percentage with one decimal, never rounded up to
/// 100% before it is complete.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".to_string();
    }
    let tenths = (u128::from(part) * 1000 / u128::from(whole)) as u64;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// A span of time, short and coarse: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn duration(seconds: u64) -> String {
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{minutes} min"),
        3600..86_400 if minutes % 60 == 0 => format!("{hours} h"),
        3600..86_400 => format!("{hours} h {} min", minutes % 60),
        _ if hours % 24 == 0 => format!("{days} d"),
        _ => format!("{days} d {} h", hours % 24),
    }
}

/// A point in time for a page: machine-readable for `<time datetime>`, and
/// in a form people in any country read the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Time {
    /// `2026-11-18T11:06:40Z`
    pub iso: String,
    /// `2026-11-18 11:06 UTC`
    pub text: String,
}

impl Time {
    pub fn from_unix(seconds: u64) -> Time {
        let iso = rfc3339(seconds);
        let text = match (iso.get(..10), iso.get(11..16)) {
            (Some(date), Some(minutes)) => format!("{date} {minutes} UTC"),
            _ => iso.clone(),
        };
        Time { iso, text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_048_576), "1,048,576");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn sizes_use_binary_units_with_three_digits() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.00 KiB");
        assert_eq!(size(81_940), "80.0 KiB");
        assert_eq!(size(1_879_048_192), "1.75 GiB");
        assert_eq!(size(200 << 30), "200 GiB");
        assert_eq!(size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn percentages_round_down() {
        assert_eq!(percent(0, 0), "0%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(999_999, 1_000_000), "99.9%");
        assert_eq!(percent(7, 7), "100.0%");
        assert_eq!(percent(u64::MAX, u64::MAX), "100.0%");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(60), "1 min");
        assert_eq!(duration(3599), "59 min");
        assert_eq!(duration(3600), "1 h");
        assert_eq!(duration(3600 * 3 + 300), "3 h 5 min");
        assert_eq!(duration(86_400 * 2), "2 d");
        assert_eq!(duration(86_400 * 2 + 3600 * 4 + 59), "2 d 4 h");
        assert_eq!(duration(u64::MAX), format!("{} d {} h", u64::MAX / 86_400, u64::MAX / 3600 % 24));
    }

    #[test]
    fn times_are_utc() {
        let time = Time::from_unix(1_795_000_000);
        assert_eq!(time.iso, "2026-11-18T11:06:40Z");
        assert_eq!(time.text, "2026-11-18 11:06 UTC");
    }
}
