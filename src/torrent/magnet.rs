//! Magnet links (BEP 9, with BEP 19 `ws` webseeds and an `xs` source for the
//! `.torrent` file itself).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::metainfo::Infohash;

/// Everything but unreserved characters is escaped in a magnet parameter.
const PARAM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub fn magnet(
    infohash: &Infohash,
    name: &str,
    trackers: &[String],
    webseeds: &[String],
    torrent_url: Option<&str>,
) -> String {
    let mut link = format!("magnet:?xt=urn:btih:{infohash}&dn={}", utf8_percent_encode(name, PARAM));
    for tracker in trackers {
        link.push_str("&tr=");
        link.extend(utf8_percent_encode(tracker, PARAM));
    }
    for webseed in webseeds {
        link.push_str("&ws=");
        link.extend(utf8_percent_encode(webseed, PARAM));
    }
    if let Some(url) = torrent_url {
        link.push_str("&xs=");
        link.extend(utf8_percent_encode(url, PARAM));
    }
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_escaped() {
        let link = magnet(
            &Infohash([0xab; 20]),
            "demo & co-L01-0-256",
            &["udp://t.example:1337/announce".into()],
            &["http://ws.example/webseed/demo%20x/".into()],
            Some("https://feeds.example/demo/L01-0-256.torrent"),
        );
        assert_eq!(
            link,
            format!(
                "magnet:?xt=urn:btih:{}&dn=demo%20%26%20co-L01-0-256&tr=udp%3A%2F%2Ft.example%3A1337%2Fannounce\
                 &ws=http%3A%2F%2Fws.example%2Fwebseed%2Fdemo%2520x%2F&xs=https%3A%2F%2Ffeeds.example%2Fdemo%2FL01-0-256.torrent",
                "ab".repeat(20)
            )
        );
    }
}
