//! Where a site goes: a local folder, or `s3://BUCKET/PREFIX` (any
//! S3-compatible object store; the endpoint and credentials come from the
//! standard AWS environment, see [`crate::store::s3`]).

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The place `OUT_DIR` or `torrent_dir` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Dir(PathBuf),
    S3(S3Url),
}

/// `s3://BUCKET/PREFIX`: the site's root is the folder `PREFIX` of `BUCKET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// A target that cannot be used: a usage error (exit status 2).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{text:?} is not a valid output location: {why}")]
pub struct TargetError {
    pub text: String,
    pub why: String,
}

impl Target {
    /// `s3://BUCKET[/PREFIX]`, `file:///path`, or a path (relative to `base`
    /// when one is given). Any other `scheme://` is refused rather than taken
    /// for a folder named `scheme:`.
    pub fn parse(text: &str, base: Option<&Path>) -> Result<Target, TargetError> {
        let fail = |why: &str| TargetError { text: text.to_string(), why: why.to_string() };
        if let Some(rest) = text.strip_prefix("s3://") {
            return S3Url::parse(rest).map(Target::S3).map_err(|why| fail(&why));
        }
        // `s3:/bucket`, `s3:bucket`, `S3://bucket`, `s3//bucket`: a bucket
        // meant, never a folder named `s3:` (docs/store.md).
        if let Some(rest) = near_miss(text) {
            return Err(fail(&format!("write s3://BUCKET/PREFIX (did you mean \"s3://{rest}\"?)")));
        }
        if let Some(path) = text.strip_prefix("file://") {
            let path = percent_encoding::percent_decode_str(path)
                .decode_utf8()
                .map_err(|_| fail("a file:// URL must be UTF-8 once decoded"))?;
            if !path.starts_with('/') {
                return Err(fail("a file:// URL needs an absolute path"));
            }
            return Ok(Target::Dir(PathBuf::from(path.as_ref())));
        }
        if let Some((scheme, _)) = text.split_once("://")
            && !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(fail("only s3:// URLs and local folders are supported"));
        }
        if text.is_empty() {
            return Err(fail("it is empty"));
        }
        let path = PathBuf::from(text);
        Ok(Target::Dir(match base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        }))
    }

    /// How messages name it.
    pub fn describe(&self) -> String {
        match self {
            Target::Dir(path) => path.display().to_string(),
            Target::S3(url) => url.to_string(),
        }
    }
}

impl S3Url {
    /// The part after `s3://`.
    fn parse(rest: &str) -> Result<S3Url, String> {
        if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("an s3:// URL has no query, fragment, spaces or control characters".into());
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // Bucket names of S3 and its look-alikes (R2, MinIO, B2): 3 to 63
        // lowercase letters, digits, dots and hyphens.
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if !valid_bucket {
            return Err(format!(
                "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty()
            && prefix.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..")
        {
            return Err("the prefix has an empty, `.` or `..` segment".into());
        }
        Ok(S3Url { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }
}

/// What follows a misspelt `s3://`, if `text` starts with one.
fn near_miss(text: &str) -> Option<&str> {
    let scheme = text.get(..2).filter(|s| s.eq_ignore_ascii_case("s3"))?;
    let rest = &text[scheme.len()..];
    let separator = rest.len() - rest.trim_start_matches([':', '/', '\\']).len();
    let written = &rest[..separator];
    (written.contains(':') || written.starts_with("//")).then(|| rest[separator..].trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> Target {
        Target::S3(S3Url { bucket: bucket.into(), prefix: prefix.into() })
    }

    #[test]
    fn near_misses_of_s3_urls_are_refused_with_the_right_spelling() {
        for (text, meant) in [
            ("s3:/bucket/x", "s3://bucket/x"),
            ("s3:bucket/x", "s3://bucket/x"),
            ("S3://bucket/x", "s3://bucket/x"),
            ("s3//bucket", "s3://bucket"),
            ("s3:\\\\bucket", "s3://bucket"),
        ] {
            let error = Target::parse(text, None).unwrap_err();
            assert!(error.why.contains(&format!("did you mean \"{meant}\"")), "{text}: {error}");
        }
        assert!(Target::parse("s3:///bucket", None).is_err(), "an empty bucket name");
        for folder in ["s3", "s3-site", "s3site/x", "./s3:x"] {
            assert!(matches!(Target::parse(folder, None), Ok(Target::Dir(_))), "{folder}");
        }
    }

    #[test]
    fn s3_urls_folders_and_refusals() {
        let base = Some(Path::new("/etc/helio"));
        assert_eq!(Target::parse("s3://ct-torrents/site", base), Ok(s3("ct-torrents", "site")));
        assert_eq!(Target::parse("s3://ct-torrents/a/b/", None), Ok(s3("ct-torrents", "a/b")));
        assert_eq!(Target::parse("s3://ct-torrents", None), Ok(s3("ct-torrents", "")));
        assert_eq!(Target::parse("s3://ct-torrents/", None), Ok(s3("ct-torrents", "")));
        assert_eq!(Target::parse("torrents", base), Ok(Target::Dir("/etc/helio/torrents".into())));
        assert_eq!(Target::parse("torrents", None), Ok(Target::Dir("torrents".into())));
        assert_eq!(Target::parse("/srv/helio", base), Ok(Target::Dir("/srv/helio".into())));
        assert_eq!(Target::parse("file:///srv/my%20site", base), Ok(Target::Dir("/srv/my site".into())));
        assert_eq!(s3("b-1.x", "p").describe(), "s3://b-1.x/p");

        for bad in ["s3://", "s3://UPPER/x", "s3://ab/x", "s3://bucket/a//b", "s3://bucket/../x", "s3://bucket/x?y"] {
            assert!(Target::parse(bad, None).is_err(), "{bad}");
        }
        let error = Target::parse("gs://bucket/site", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"gs://bucket/site\" is not a valid output location: only s3:// URLs and local folders are supported"
        );
        assert!(Target::parse("", None).is_err());
        assert!(Target::parse("file://relative", None).is_err());
    }
}
