//! Magnet links (BEP 9, with BEP 19 `ws` webseeds and an `xs` source for the
//! `.torrent` file itself). A hybrid torrent's link carries both infohashes
//! (BEP 52): `xt=urn:btih:<v1 hex>&xt=urn:btmh:1220<v2 hex>`, the v2 one as a
//! multihash (0x12 SHA2-256, 0x20 = 32 bytes).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::metainfo::{Infohash, InfohashV2};

/// Everything but unreserved characters is escaped in a magnet parameter.
const PARAM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The magnet link of a v1 torrent.
pub fn magnet(
    infohash: &Infohash,
    name: &str,
    trackers: &[String],
    webseeds: &[String],
    torrent_url: Option<&str>,
) -> String {
    magnet_with_v2(infohash, None, name, trackers, webseeds, torrent_url)
}

/// The magnet link of a v1 torrent, or of a hybrid one when `infohash_v2` is given.
pub fn magnet_with_v2(
    infohash: &Infohash,
    infohash_v2: Option<&InfohashV2>,
    name: &str,
    trackers: &[String],
    webseeds: &[String],
    torrent_url: Option<&str>,
) -> String {
    let mut link = format!("magnet:?xt=urn:btih:{infohash}");
    if let Some(v2) = infohash_v2 {
        link.push_str(&format!("&xt=urn:btmh:1220{v2}"));
    }
    link.push_str("&dn=");
    link.extend(utf8_percent_encode(name, PARAM));
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

    #[test]
    fn hybrid_links_carry_both_infohashes() {
        let v1 = Infohash([0x01; 20]);
        let v2 = InfohashV2([0xcd; 32]);
        let link = magnet_with_v2(&v1, Some(&v2), "n", &[], &["http://ws/".into()], None);
        assert_eq!(
            link,
            format!(
                "magnet:?xt=urn:btih:{}&xt=urn:btmh:1220{}&dn=n&ws=http%3A%2F%2Fws%2F",
                "01".repeat(20),
                "cd".repeat(32)
            )
        );
        assert_eq!(magnet_with_v2(&v1, None, "n", &[], &[], None), magnet(&v1, "n", &[], &[], None));
    }
}
