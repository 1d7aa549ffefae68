//! Conditional requests (RFC 9110 §13) against a representation's validators:
//! `If-None-Match` and `If-Modified-Since` turn a GET into a 304, `If-Range`
//! decides whether a `Range` still applies. Pure functions of the request's
//! headers, the strong ETag and the modification time.

use std::time::{Duration, SystemTime};

use hyper::header::{self, HeaderMap, HeaderValue};

/// `If-None-Match` (weak comparison, `*`), else `If-Modified-Since`
/// (RFC 9110 §13.2.2: the latter is ignored when the former is present).
pub fn not_modified(request: &HeaderMap, etag: Option<&HeaderValue>, modified: Option<SystemTime>) -> bool {
    if let Some(condition) = request.get(header::IF_NONE_MATCH) {
        let Some(etag) = etag else { return false };
        return etag_list_matches(condition.as_bytes(), etag.as_bytes());
    }
    match (request.get(header::IF_MODIFIED_SINCE), modified) {
        (Some(since), Some(modified)) => {
            let since = since.to_str().ok().and_then(|s| httpdate::parse_http_date(s).ok());
            // HTTP dates have whole seconds.
            since.is_some_and(|since| whole_seconds(modified) <= since)
        }
        _ => false,
    }
}

/// `If-Range`: a strong ETag that matches, or the exact Last-Modified date.
pub fn range_applies(request: &HeaderMap, etag: Option<&HeaderValue>, modified: Option<SystemTime>) -> bool {
    let Some(condition) = request.get(header::IF_RANGE) else {
        return true;
    };
    let condition = condition.as_bytes();
    if condition.starts_with(b"\"") {
        return etag.is_some_and(|etag| etag.as_bytes() == condition);
    }
    let date = std::str::from_utf8(condition).ok().and_then(|s| httpdate::parse_http_date(s).ok());
    matches!((date, modified), (Some(date), Some(modified)) if whole_seconds(modified) == date)
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

/// Whether a comma-separated list of entity tags (or `*`) names `etag`, by
/// the weak comparison `If-None-Match` uses.
fn etag_list_matches(list: &[u8], etag: &[u8]) -> bool {
    let Ok(list) = std::str::from_utf8(list) else { return false };
    let etag = strip_weak(etag);
    list.split(',').map(str::trim).any(|candidate| candidate == "*" || strip_weak(candidate.as_bytes()) == etag)
}

fn strip_weak(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (header::HeaderName::from_static(name), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn weak_comparison_for_if_none_match_and_strong_for_if_range() {
        let etag = HeaderValue::from_static("\"abc\"");
        for list in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            assert!(not_modified(&headers(&[("if-none-match", list)]), Some(&etag), None), "{list}");
        }
        assert!(!not_modified(&headers(&[("if-none-match", "\"x\"")]), Some(&etag), None));
        assert!(!not_modified(&headers(&[("if-none-match", "*")]), None, None), "nothing to match");
        assert!(range_applies(&headers(&[("if-range", "\"abc\"")]), Some(&etag), None));
        assert!(!range_applies(&headers(&[("if-range", "W/\"abc\"")]), Some(&etag), None));
        assert!(range_applies(&headers(&[]), None, None));
    }

    #[test]
    fn dates_compare_in_whole_seconds() {
        let modified = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_445_412_480_500));
        let at = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert!(not_modified(&headers(&[("if-modified-since", at)]), None, modified));
        assert!(!not_modified(&headers(&[("if-modified-since", "Wed, 21 Oct 2015 07:27:59 GMT")]), None, modified));
        let both = headers(&[("if-none-match", "\"other\""), ("if-modified-since", at)]);
        assert!(!not_modified(&both, Some(&HeaderValue::from_static("\"abc\"")), modified), "If-None-Match wins");
        assert!(range_applies(&headers(&[("if-range", at)]), None, modified));
        assert!(!range_applies(&headers(&[("if-range", "Wed, 21 Oct 2015 07:28:01 GMT")]), None, modified));
    }
}
