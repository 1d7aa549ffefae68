//! Request paths, checked before anything is looked up: split at `/`, each
//! segment percent-decoded strictly (RFC 3986 §2.1) and refused if it could
//! change meaning on a file system or upstream: malformed escapes, invalid
//! UTF-8, `.` and `..`, empty segments, and decoded `/`, `\`, NUL or other
//! control characters. A handler then matches segments, never raw text, so
//! no path can climb out of what it names.

use std::borrow::Cow;

/// The path is not acceptable: 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPath;

/// A request path as decoded segments.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestPath<'a> {
    pub segments: Vec<Cow<'a, str>>,
    /// The path ends in `/` (and is not just `/`): it names a folder.
    pub dir: bool,
}

impl<'a> RequestPath<'a> {
    /// Parses an origin-form path (`/a/b`, no query). `/` is no segments;
    /// an empty segment is only allowed last, where it means "folder".
    pub fn parse(path: &'a str) -> Result<RequestPath<'a>, BadPath> {
        let rest = path.strip_prefix('/').ok_or(BadPath)?;
        if rest.is_empty() {
            return Ok(RequestPath { segments: Vec::new(), dir: false });
        }
        let (rest, dir) = match rest.strip_suffix('/') {
            Some(rest) => (rest, true),
            None => (rest, false),
        };
        let segments = rest.split('/').map(decode_segment).collect::<Result<_, _>>()?;
        Ok(RequestPath { segments, dir })
    }

    /// The segments as `&str`, for matching with slice patterns.
    pub fn names(&self) -> Vec<&str> {
        self.segments.iter().map(|segment| segment.as_ref()).collect()
    }
}

/// Percent-decodes one path segment strictly and refuses what could change
/// its meaning on a file system or upstream.
pub fn decode_segment(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    let decoded = if raw.contains('%') {
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let high = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)).ok_or(BadPath)?;
                let low = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)).ok_or(BadPath)?;
                out.push((high * 16 + low) as u8);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        Cow::Owned(String::from_utf8(out).map_err(|_| BadPath)?)
    } else {
        Cow::Borrowed(raw)
    };
    let bad = decoded.is_empty()
        || decoded == "."
        || decoded == ".."
        || decoded.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if bad { Err(BadPath) } else { Ok(decoded) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(path: &str) -> Result<(Vec<String>, bool), BadPath> {
        RequestPath::parse(path).map(|p| (p.segments.iter().map(|s| s.to_string()).collect(), p.dir))
    }

    #[test]
    fn segments_decode_and_a_trailing_slash_means_folder() {
        assert_eq!(names("/"), Ok((vec![], false)));
        assert_eq!(names("/a/b"), Ok((vec!["a".into(), "b".into()], false)));
        assert_eq!(names("/a/b/"), Ok((vec!["a".into(), "b".into()], true)));
        assert_eq!(names("/two%20%26%20%C3%BC/%74ile"), Ok((vec!["two & ü".into(), "tile".into()], false)));
        assert_eq!(names("/a%2Eb"), Ok((vec!["a.b".into()], false)), "a dot inside a name is fine");
    }

    #[test]
    fn traversal_escapes_and_empty_segments_are_refused() {
        for path in [
            "relative",
            "*",
            "//etc/passwd",
            "/a//b",
            "/a/b//",
            "/../etc",
            "/a/./b",
            "/a/%2e%2e/b",
            "/a/%2E%2E",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "/a%00",
            "/a%0a",
            "/%",
            "/%2",
            "/%zz",
            "/%c3",
            "/%+1",
        ] {
            assert_eq!(RequestPath::parse(path), Err(BadPath), "{path}");
        }
    }
}
