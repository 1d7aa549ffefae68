//! HTTP `Range` requests (RFC 9110 §14) for a representation of known length:
//! which bytes to send, as pure functions.
//!
//! One range is answered with 206; several ranges get the whole body (200),
//! which RFC 9110 allows and which no BitTorrent client minds; a header that
//! does not parse is ignored, as RFC 9110 §14.2 permits.

/// What to send for a request, given its `Range` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeReply {
    /// 200 with the whole body: no `Range`, several ranges, or one we ignore.
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

impl RangeReply {
    /// Decides the answer for a `Range` header value (`None` when absent) on a
    /// representation of `len` bytes.
    pub fn for_header(header: Option<&[u8]>, len: u64) -> RangeReply {
        let Some(header) = header else {
            return RangeReply::Full;
        };
        let Ok(header) = std::str::from_utf8(header) else {
            return RangeReply::Full;
        };
        let Some(spec) = parse(header) else {
            return RangeReply::Full;
        };
        spec.resolve(len)
    }

    /// The `Content-Range` value of a 206, or of a 416 when unsatisfiable.
    pub fn content_range(&self, len: u64) -> Option<String> {
        match self {
            RangeReply::Full => None,
            RangeReply::Partial { start, end } => Some(format!("bytes {start}-{end}/{len}")),
            RangeReply::Unsatisfiable => Some(format!("bytes */{len}")),
        }
    }
}

/// One byte-range-spec as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `a-b`: bytes a through b inclusive (b may lie past the end).
    Bounded(u64, u64),
    /// `a-`: from a to the end.
    From(u64),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The bytes this spec selects from a representation of `len` bytes.
    pub fn resolve(self, len: u64) -> RangeReply {
        let (start, end) = match self {
            RangeSpec::Bounded(start, end) => (start, end.min(len.saturating_sub(1))),
            RangeSpec::From(start) => (start, len.saturating_sub(1)),
            // A zero-length suffix selects nothing: unsatisfiable (RFC 9110 §14.1.3).
            RangeSpec::Suffix(0) => return RangeReply::Unsatisfiable,
            RangeSpec::Suffix(n) => (len.saturating_sub(n), len.saturating_sub(1)),
        };
        if start >= len {
            return RangeReply::Unsatisfiable;
        }
        RangeReply::Partial { start, end }
    }
}

/// Parses `bytes=<one range-spec>`. Anything else (another unit, several
/// ranges, bad syntax, `a-b` with b < a) is `None`: the header is ignored.
pub fn parse(header: &str) -> Option<RangeSpec> {
    let header = header.trim_matches([' ', '\t']);
    let (unit, set) = header.split_once('=')?;
    if !unit.trim_end_matches([' ', '\t']).eq_ignore_ascii_case("bytes") {
        return None;
    }
    // Empty list elements are allowed (RFC 9110 §5.6.1): "bytes=0-9," is one range.
    let mut specs = set.split(',').map(|s| s.trim_matches([' ', '\t'])).filter(|s| !s.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    match (first, last) {
        ("", "") => None,
        ("", n) => Some(RangeSpec::Suffix(number(n)?)),
        (a, "") => Some(RangeSpec::From(number(a)?)),
        (a, b) => {
            let (a, b) = (number(a)?, number(b)?);
            (a <= b).then_some(RangeSpec::Bounded(a, b))
        }
    }
}

/// 1*DIGIT, no sign, no spaces; values past u64 saturate (they mean "to the end").
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| n.saturating_mul(10).saturating_add(u64::from(b - b'0'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(header: &str, len: u64) -> RangeReply {
        RangeReply::for_header(Some(header.as_bytes()), len)
    }

    fn partial(start: u64, end: u64) -> RangeReply {
        RangeReply::Partial { start, end }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(RangeReply::for_header(None, 100), RangeReply::Full);
        assert_eq!(reply("bytes=0-0", 100), partial(0, 0));
        assert_eq!(reply("bytes=0-99", 100), partial(0, 99));
        assert_eq!(reply("bytes=10-19", 100), partial(10, 19));
        assert_eq!(reply("bytes=90-1000", 100), partial(90, 99), "the end is clamped");
        assert_eq!(reply("bytes=99-99", 100), partial(99, 99));
        assert_eq!(reply("BYTES = 5-6 ", 100), partial(5, 6), "unit is case-insensitive, spaces allowed");
        assert_eq!(reply("bytes=0-18446744073709551616000", 100), partial(0, 99), "huge ends saturate");
    }

    #[test]
    fn open_ended_and_suffix_ranges() {
        assert_eq!(reply("bytes=0-", 100), partial(0, 99));
        assert_eq!(reply("bytes=42-", 100), partial(42, 99));
        assert_eq!(reply("bytes=99-", 100), partial(99, 99));
        assert_eq!(reply("bytes=-1", 100), partial(99, 99));
        assert_eq!(reply("bytes=-10", 100), partial(90, 99));
        assert_eq!(reply("bytes=-100", 100), partial(0, 99));
        assert_eq!(reply("bytes=-1000", 100), partial(0, 99), "a suffix longer than the body is all of it");
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(reply("bytes=100-", 100), RangeReply::Unsatisfiable);
        assert_eq!(reply("bytes=100-200", 100), RangeReply::Unsatisfiable);
        assert_eq!(reply("bytes=-0", 100), RangeReply::Unsatisfiable);
        assert_eq!(reply("bytes=0-", 0), RangeReply::Unsatisfiable);
        assert_eq!(reply("bytes=-5", 0), RangeReply::Unsatisfiable);
        assert_eq!(RangeReply::Unsatisfiable.content_range(100).as_deref(), Some("bytes */100"));
        assert_eq!(partial(10, 19).content_range(100).as_deref(), Some("bytes 10-19/100"));
        assert_eq!(RangeReply::Full.content_range(100), None);
    }

    #[test]
    fn several_ranges_or_bad_syntax_get_the_whole_body() {
        for header in [
            "bytes=0-1,5-6",
            "bytes=0-1, -5",
            "bytes=5-3",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=1 -2",
            "bytes 0-1",
            "items=0-1",
            "",
        ] {
            assert_eq!(reply(header, 100), RangeReply::Full, "{header:?}");
        }
        assert_eq!(RangeReply::for_header(Some(b"bytes=\xff0-1"), 100), RangeReply::Full);
        assert_eq!(reply("bytes=0-9,", 100), partial(0, 9), "empty list elements do not count");
    }
}
