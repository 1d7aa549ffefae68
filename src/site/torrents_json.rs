//! `torrents.json` (docs/spec.md §5): the JSON feed, with the written spec's fields
//! (`end_index` inclusive) and helio's extras. Keys keep a fixed order and
//! times are RFC 3339 UTC ending in `Z`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock::{parse_rfc3339, rfc3339};

use serde::{Deserialize, Serialize};

use crate::torrent::metainfo::{Infohash, InfohashV2};
use crate::torrent::range::TorrentRange;
use crate::torrent::sources::Sources;

use super::links::LogLinks;
use super::published::PublishedTorrent;

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
    /// The list of a log's torrents, `last_updated` in Unix seconds.
    pub fn render(
        log_name: &str,
        last_updated: u64,
        torrents: &[PublishedTorrent],
        sources: Option<&Sources>,
        links: &LogLinks,
    ) -> Vec<u8> {
        let document = TorrentsJson {
            log_name: log_name.to_string(),
            last_updated: rfc3339(last_updated),
            torrents: torrents
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
            trackers: sources.map(|s| s.trackers.clone()),
            webseeds: sources.map(|s| s.webseeds.clone()),
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
            plausible(&t, range).map_err(|problem| format!("torrent {}-{}: {problem}", t.start_index, t.end_index))?;
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
        .collect::<Result<Vec<PublishedTorrent>, String>>()?;
    let mut ranges: Vec<TorrentRange> = torrents.iter().map(|t| t.range).collect();
    ranges.sort();
    if let Some(pair) = ranges.windows(2).find(|pair| pair[0].end > pair[1].start) {
        return Err(format!("torrents {} and {} overlap", pair[0].file_name(), pair[1].file_name()));
    }
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if last_updated > wall.saturating_add(366 * 86_400) {
        return Err(format!("last_updated {:?} is in the future", document.last_updated));
    }
    let sources = match (document.trackers, document.webseeds) {
        (Some(trackers), Some(webseeds)) => Some(Sources { trackers, webseeds }),
        _ => None,
    };
    Ok(Parsed { last_updated, torrents, sources })
}

/// Whether what `torrents.json` says of a torrent is something helio could
/// have written: it is republished in the feeds and pages as it is, and a
/// bucket or a restored site is input from whoever could write there. The
/// `.torrent` files stay the ground truth (a build reads one the list does
/// not know); this catches a list that was altered or damaged.
fn plausible(t: &TorrentJson, range: TorrentRange) -> Result<(), String> {
    use crate::log::tile::TILE_WIDTH;
    use crate::torrent::piece_length::MIN_PIECE_LENGTH;
    /// A data tile is at most 8 MiB (`tile_cache::MAX_DATA_TILE`): 32 KiB an
    /// entry, and its two hash-tile entries besides.
    const MAX_BYTES_PER_ENTRY: u64 = (32 << 10) + 64;
    if !range.start.is_multiple_of(TILE_WIDTH) {
        return Err(format!("start_index {} is not a multiple of {TILE_WIDTH}", range.start));
    }
    if !t.piece_length.is_power_of_two() || !(MIN_PIECE_LENGTH..=1 << 30).contains(&t.piece_length) {
        return Err(format!("piece_length {} is not a power of two from 16 KiB to 1 GiB", t.piece_length));
    }
    let entries = range.entries();
    if t.data_size_bytes == 0 || t.data_size_bytes > entries.saturating_mul(MAX_BYTES_PER_ENTRY).saturating_add(1 << 20)
    {
        return Err(format!("data_size_bytes {} is not the size of {entries} entries", t.data_size_bytes));
    }
    // README.md, checkpoint, two tiles per 256 entries, and the hash tiles above.
    let tiles = entries.div_ceil(TILE_WIDTH);
    let most = 2 + 2 * (tiles + 1) + tiles.div_ceil(TILE_WIDTH) + 16;
    if t.file_count == 0 || t.file_count as u64 > most {
        return Err(format!("file_count {} is not that of {entries} entries", t.file_count));
    }
    // A torrent's date is its last entry's; a year ahead is a clock far off.
    let created = parse_rfc3339(&t.creation_time)?;
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if created > wall.saturating_add(366 * 86_400) {
        return Err(format!("creation_time {:?} is in the future", t.creation_time));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_inclusive_end() {
        let links = LogLinks {
            name: "demo".into(),
            folder: Some("https://example.org/t/demo/".into()),
            trackers: vec![],
            webseeds: vec![],
        };
        let torrents = vec![PublishedTorrent {
            range: TorrentRange { start: 0, end: 1024 },
            infohash: Infohash([7; 20]),
            infohash_v2: None,
            data_size_bytes: 12345,
            piece_length: 16384,
            file_count: 9,
            creation_time: 1_795_000_000,
            torrent_size: 999,
        }];
        let bytes = TorrentsJson::render("demo", 1_795_000_100, &torrents, None, &links);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"end_index\": 1023"), "{text}");
        assert!(text.contains("\"torrent_url\": \"https://example.org/t/demo/L01-0-1024.torrent\""), "{text}");
        let keys: Vec<&str> = text.lines().filter_map(|l| l.trim().split('"').nth(1)).collect();
        assert_eq!(&keys[..3], ["log_name", "last_updated", "torrents"]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.last_updated, 1_795_000_100);
        let mut expected = torrents[0].clone();
        expected.torrent_size = 0;
        assert_eq!(parsed.torrents, [expected]);
    }

    #[test]
    fn torrents_json_snapshot() {
        let sample = crate::site::sample::Sample::new();
        let bytes = sample.states[0].torrents_json(&sample.links[0]);
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

    #[test]
    fn what_helio_could_not_have_written_is_refused() {
        let torrent = |start: u64, end: u64, size: u64, piece: u64, files: u64, created: &str| {
            format!(
                r#"{{"start_index": {start}, "end_index": {}, "data_size_bytes": {size}, "creation_time": "{created}",
                "torrent_url": "x", "infohash": "0000000000000000000000000000000000000000", "magnet": "m",
                "piece_length": {piece}, "file_count": {files}}}"#,
                end - 1
            )
        };
        let list = |torrents: &[String]| {
            format!(
                r#"{{"log_name": "x", "last_updated": "2026-01-01T00:00:00Z", "torrents": [{}]}}"#,
                torrents.join(",")
            )
        };
        let good = torrent(0, 1024, 1_700_000, 16384, 9, "2026-01-01T00:00:00Z");
        assert_eq!(parse(list(std::slice::from_ref(&good)).as_bytes()).unwrap().torrents.len(), 1);
        for (bad, problem) in [
            (torrent(100, 1124, 1_700_000, 16384, 9, "2026-01-01T00:00:00Z"), "is not a multiple of 256"),
            (torrent(0, 1024, 1_700_000, 12345, 9, "2026-01-01T00:00:00Z"), "piece_length 12345"),
            (torrent(0, 1024, 1 << 40, 16384, 9, "2026-01-01T00:00:00Z"), "data_size_bytes 1099511627776"),
            (torrent(0, 1024, 0, 16384, 9, "2026-01-01T00:00:00Z"), "data_size_bytes 0"),
            (torrent(0, 1024, 1_700_000, 16384, 100_000, "2026-01-01T00:00:00Z"), "file_count 100000"),
            (torrent(0, 1024, 1_700_000, 16384, 9, "9999-01-01T00:00:00Z"), "is in the future"),
        ] {
            let error = parse(list(&[bad]).as_bytes()).err().unwrap_or_default();
            assert!(error.contains(problem), "{problem}: {error}");
        }
        let overlapping = [good, torrent(512, 1536, 1_700_000, 16384, 9, "2026-01-01T00:00:00Z")];
        let error = parse(list(&overlapping).as_bytes()).err().unwrap_or_default();
        assert_eq!(error, "torrents L01-0-1024.torrent and L01-512-1536.torrent overlap");
    }
}
