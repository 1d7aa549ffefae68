//! What went wrong talking to a bucket, read from `object_store`'s error
//! (and the S3 error document in it), in words an operator can act on.

use thiserror::Error;

/// What went wrong talking to the bucket, in words an operator can act on.
#[derive(Debug, Error)]
pub enum S3Problem {
    #[error("the bucket does not exist")]
    NoBucket,
    #[error("access denied ({code}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN")]
    Denied { code: String },
    #[error("cannot connect: {message}")]
    Unreachable { message: String },
    #[error("cannot set up the S3 client: {message}")]
    Setup { message: String },
    #[error("{message}")]
    Other { message: String },
}

/// The S3 error codes that mean the credentials are wrong or not allowed.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
];

impl S3Problem {
    /// Reads an `object_store` error: a connection that could not be made,
    /// else the S3 error code of the response body (`<Code>NoSuchBucket</Code>`),
    /// else the HTTP status `object_store` mapped it to.
    pub fn of(error: &object_store::Error) -> S3Problem {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(cause) = source {
            if let Some(http) = cause.downcast_ref::<object_store::client::HttpError>() {
                use object_store::client::HttpErrorKind as Kind;
                if matches!(http.kind(), Kind::Connect | Kind::Timeout | Kind::Interrupted | Kind::Request) {
                    return S3Problem::Unreachable { message: deepest(http) };
                }
            }
            source = cause.source();
        }
        let text = crate::error_chain::one_line(error);
        let code = between(&text, "<Code>", "</Code>");
        match code {
            Some("NoSuchBucket") => return S3Problem::NoBucket,
            Some(code) if DENIED_CODES.contains(&code) => return S3Problem::Denied { code: code.to_string() },
            _ => {}
        }
        match error {
            object_store::Error::PermissionDenied { .. } => S3Problem::Denied { code: "HTTP 403".into() },
            object_store::Error::Unauthenticated { .. } => S3Problem::Denied { code: "HTTP 401".into() },
            _ => {
                let message = match (code, between(&text, "<Message>", "</Message>")) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_string(),
                    _ => text.chars().take(300).collect(),
                };
                S3Problem::Other { message }
            }
        }
    }
}

/// The innermost cause's message ("Connection refused (os error 111)").
fn deepest(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_codes_are_read_from_the_body() {
        let body = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error>\
                    <Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        let error = object_store::Error::Generic { store: "S3", source: body.into() };
        assert!(matches!(S3Problem::of(&error), S3Problem::NoBucket));
        let denied = object_store::Error::Generic {
            store: "S3",
            source: "403: <Error><Code>SignatureDoesNotMatch</Code></Error>".into(),
        };
        assert_eq!(
            S3Problem::of(&denied).to_string(),
            "access denied (SignatureDoesNotMatch): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
        );
        let other = object_store::Error::Generic {
            store: "S3",
            source: "500: <Error><Code>InternalError</Code><Message>We encountered an internal error</Message></Error>"
                .into(),
        };
        assert_eq!(S3Problem::of(&other).to_string(), "InternalError: We encountered an internal error");
    }
}
