//! Torrent profiles (docs/spec.md §4.4): helio's own format, or byte-for-byte
//! compatibility with the HelioTorrent reference implementation so that both
//! tools produce the same infohash and their swarms merge.

use serde::Deserialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Spec,
    #[serde(rename = "heliotorrent")]
    HelioTorrent,
}

impl Profile {
    /// The torrent's `README.md`.
    pub fn readme(&self, log_url: &str) -> Vec<u8> {
        let url = log_url.trim_end_matches('/');
        match self {
            Profile::Spec => format!("LOG_URL: {url}\n").into_bytes(),
            Profile::HelioTorrent => format!("LOG URL: {url}").into_bytes(),
        }
    }

    /// The value of `info.private`, if the profile writes the key at all.
    pub fn private(&self) -> Option<i64> {
        match self {
            Profile::Spec => None,
            Profile::HelioTorrent => Some(0),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Profile::Spec => "spec",
            Profile::HelioTorrent => "heliotorrent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readmes() {
        let url = "https://tuscolo2025h2.skylight.geomys.org/";
        assert_eq!(Profile::Spec.readme(url), b"LOG_URL: https://tuscolo2025h2.skylight.geomys.org\n");
        // The reference implementation's README for this log is exactly these 50 bytes.
        let reference = Profile::HelioTorrent.readme(url);
        assert_eq!(reference, b"LOG URL: https://tuscolo2025h2.skylight.geomys.org");
        assert_eq!(reference.len(), 50);
    }
}
