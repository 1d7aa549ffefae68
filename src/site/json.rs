//! `torrents.json` (SPEC §5): the JSON feed, with the written spec's fields
//! (`end_index` inclusive) and helio's extras. Keys keep a fixed order and
//! times are RFC 3339 UTC ending in `Z`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::torrent::metainfo::{Infohash, InfohashV2};
use crate::torrent::range::TorrentRange;
use crate::torrent::sources::Sources;

use super::links::LogLinks;
use super::state::{LogState, PublishedTorrent};

#[derive(Serialize, Deserialize)]
pub struct TorrentsJson {
    pub log_name: String,
    pub last_updated: String,
    pub torrents: Vec<TorrentJson>,
    /// The trackers and web seeds the published `.torrent` files carry (a
    /// build rewrites them when the config's change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trackers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webseeds: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
pub struct TorrentJson {
    pub start_index: u64,
    /// Inclusive.
    pub end_index: u64,
    pub data_size_bytes: u64,
    pub creation_time: String,
    pub torrent_url: String,
    pub infohash: String,
    /// The v2 infohash (64 hex digits) of a hybrid torrent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infohash_v2: Option<String>,
    pub magnet: String,
    pub piece_length: u64,
    pub file_count: usize,
}

/// What a build needs back from `torrents.json`.
pub struct Parsed {
    pub last_updated: u64,
    pub torrents: Vec<PublishedTorrent>,
    pub sources: Option<Sources>,
}

impl TorrentsJson {
    pub fn render(state: &LogState, links: &LogLinks) -> Vec<u8> {
        let document = TorrentsJson {
            log_name: state.name.clone(),
            last_updated: rfc3339(state.last_updated()),
            torrents: state
                .torrents
                .iter()
                .map(|t| TorrentJson {
                    start_index: t.range.start,
                    end_index: t.range.end - 1,
                    data_size_bytes: t.data_size_bytes,
                    creation_time: rfc3339(t.creation_time),
                    torrent_url: links.torrent_url(&t.range),
                    infohash: t.infohash.to_string(),
                    infohash_v2: t.infohash_v2.map(|v2| v2.to_string()),
                    magnet: links.magnet(t),
                    piece_length: t.piece_length,
                    file_count: t.file_count,
                })
                .collect(),
            trackers: state.sources.as_ref().map(|s| s.trackers.clone()),
            webseeds: state.sources.as_ref().map(|s| s.webseeds.clone()),
        };
        let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Reads a `torrents.json` written by helio.
pub fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let document: TorrentsJson = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let last_updated = parse_rfc3339(&document.last_updated)?;
    let torrents = document
        .torrents
        .into_iter()
        .map(|t| {
            let end = t.end_index.checked_add(1).ok_or_else(|| format!("end_index {} is too large", t.end_index))?;
            let range = TorrentRange { start: t.start_index, end };
            if range.start >= range.end {
                return Err(format!("torrent {}-{} has an empty range", t.start_index, t.end_index));
            }
            Ok(PublishedTorrent {
                range,
                infohash: Infohash::from_hex(&t.infohash).ok_or_else(|| format!("bad infohash {:?}", t.infohash))?,
                infohash_v2: match &t.infohash_v2 {
                    Some(hex) => Some(InfohashV2::from_hex(hex).ok_or_else(|| format!("bad infohash_v2 {hex:?}"))?),
                    None => None,
                },
                data_size_bytes: t.data_size_bytes,
                piece_length: t.piece_length,
                file_count: t.file_count,
                creation_time: parse_rfc3339(&t.creation_time)?,
                torrent_size: 0,
            })
        })
        .collect::<Result<_, String>>()?;
    let sources = match (document.trackers, document.webseeds) {
        (Some(trackers), Some(webseeds)) => Some(Sources { trackers, webseeds }),
        _ => None,
    };
    Ok(Parsed { last_updated, torrents, sources })
}

/// Unix seconds as `2026-11-21T05:59:00Z`.
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

/// Reads a time written by [`rfc3339`].
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let time = humantime::parse_rfc3339(text).map_err(|e| format!("bad time {text:?}: {e}"))?;
    Ok(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// Now, in Unix seconds.
/// The time recorded in the site: Unix seconds now, or `SOURCE_DATE_EPOCH`
/// when set (reproducible builds: the same inputs give byte-identical output).
pub fn now() -> u64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok()) {
        return epoch;
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_with_z() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(parse_rfc3339("2026-11-18T11:06:40Z"), Ok(1_795_000_000));
    }

    #[test]
    fn round_trip_with_inclusive_end() {
        let links = LogLinks {
            name: "demo".into(),
            folder: Some("https://example.org/t/demo/".into()),
            trackers: vec![],
            webseeds: vec![],
        };
        let state = LogState {
            name: "demo".into(),
            torrents: vec![PublishedTorrent {
                range: TorrentRange { start: 0, end: 1024 },
                infohash: Infohash([7; 20]),
                infohash_v2: None,
                data_size_bytes: 12345,
                piece_length: 16384,
                file_count: 9,
                creation_time: 1_795_000_000,
                torrent_size: 999,
            }],
            last_updated: Some(1_795_000_100),
            checkpoint: None,
            sources: None,
            notes: vec![],
            seen: Default::default(),
        };
        let bytes = TorrentsJson::render(&state, &links);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"end_index\": 1023"), "{text}");
        assert!(text.contains("\"torrent_url\": \"https://example.org/t/demo/L01-0-1024.torrent\""), "{text}");
        let keys: Vec<&str> = text.lines().filter_map(|l| l.trim().split('"').nth(1)).collect();
        assert_eq!(&keys[..3], ["log_name", "last_updated", "torrents"]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.last_updated, 1_795_000_100);
        let mut expected = state.torrents[0].clone();
        expected.torrent_size = 0;
        assert_eq!(parsed.torrents, [expected]);
    }

    #[test]
    fn torrents_json_snapshot() {
        let sample = crate::site::sample::Sample::new();
        let bytes = TorrentsJson::render(&sample.states[0], &sample.links[0]);
        insta::assert_snapshot!("torrents_json", String::from_utf8(bytes).unwrap());
    }

    #[test]
    fn an_end_index_at_the_limit_is_an_error_not_an_overflow() {
        let text = r#"{"log_name": "x", "last_updated": "2026-01-01T00:00:00Z", "torrents": [{"start_index": 0,
            "end_index": 18446744073709551615, "data_size_bytes": 1, "creation_time": "2026-01-01T00:00:00Z",
            "torrent_url": "x", "infohash": "0000000000000000000000000000000000000000", "magnet": "m",
            "piece_length": 16384, "file_count": 2}]}"#;
        assert_eq!(parse(text.as_bytes()).err().as_deref(), Some("end_index 18446744073709551615 is too large"));
    }
}
