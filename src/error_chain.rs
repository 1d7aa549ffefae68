//! An error as one line: its message, then each cause the message does not
//! already include. Every message helio prints or records (the `helio:`
//! line, a log's failure in its status, a warning) goes through it, so no
//! module above needs the crate's edge (`error.rs`) to say what went wrong.

/// The one line an error becomes: its message, then each cause the message
/// does not already include (Tera and serde hide the useful part in a cause).
pub fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use thiserror::Error;

    #[derive(Debug, Error)]
    #[error("cannot render page.html")]
    struct Outer(#[source] Inner);

    #[derive(Debug, Error)]
    #[error("variable `x` not found")]
    struct Inner;

    #[derive(Debug, Error)]
    #[error("cannot write out/feed.xml: {0}")]
    struct Includes(#[source] std::io::Error);

    #[test]
    fn causes_are_added_once() {
        assert_eq!(one_line(&Outer(Inner)), "cannot render page.html: variable `x` not found");
        let io = std::io::Error::other("No space left on device");
        assert_eq!(one_line(&Includes(io)), "cannot write out/feed.xml: No space left on device");
    }
}
