//! A torrent's sources: its trackers (`announce`, `announce-list`, BEP 12)
//! and web seeds (`url-list`, BEP 19). They sit outside the info dictionary,
//! so a published torrent can be pointed at new ones without changing its
//! infohash: [`with_sources`] rewrites them and keeps every other byte.

use thiserror::Error;

use super::bencode::{Value, top_level_entries};

/// The trackers and web seeds written into a torrent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    pub trackers: Vec<String>,
    pub webseeds: Vec<String>,
}

#[derive(Debug, Error)]
#[error("not a torrent (a bencoded dictionary with an info dictionary)")]
pub struct NotATorrent;

impl Sources {
    /// The top-level entries that carry these sources: `announce` (the first
    /// tracker) and `announce-list` (one tier per tracker) when there are
    /// trackers, `url-list` when there are web seeds.
    pub fn entries(&self) -> Vec<(&'static [u8], Value)> {
        let mut entries = Vec::new();
        if let Some(first) = self.trackers.first() {
            entries.push((b"announce".as_slice(), Value::str(first)));
            let tiers = self.trackers.iter().map(|t| Value::List(vec![Value::str(t)])).collect();
            entries.push((b"announce-list".as_slice(), Value::List(tiers)));
        }
        if !self.webseeds.is_empty() {
            let urls = self.webseeds.iter().map(|u| Value::str(u)).collect();
            entries.push((b"url-list".as_slice(), Value::List(urls)));
        }
        entries
    }
}

/// `torrent` with its sources replaced by `sources`; every other entry, the
/// info dictionary above all, keeps its exact bytes, so the infohash stays.
pub fn with_sources(torrent: &[u8], sources: &Sources) -> Result<Vec<u8>, NotATorrent> {
    let entries = top_level_entries(torrent).ok_or(NotATorrent)?;
    if !entries.iter().any(|(key, _)| *key == b"info") {
        return Err(NotATorrent);
    }
    let mut dict: super::bencode::Dict = entries
        .into_iter()
        .filter(|(key, _)| !matches!(*key, b"announce" | b"announce-list" | b"url-list"))
        .map(|(key, raw)| (key.to_vec(), Value::Encoded(raw.to_vec())))
        .collect();
    for (key, value) in sources.entries() {
        dict.insert(key.to_vec(), value);
    }
    Ok(Value::Dict(dict).encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::bencode::find_value_span;

    #[test]
    fn sources_change_and_the_info_dictionary_does_not() {
        let torrent = b"d8:announce5:udp:a13:announce-listll5:udp:aee10:created by5:helio4:infod4:name1:x12:piece lengthi16384ee8:url-listl4:ws:aee";
        let new = Sources { trackers: vec!["udp:b".into(), "udp:c".into()], webseeds: vec![] };
        let rewritten = with_sources(torrent, &new).unwrap();
        assert_eq!(
            rewritten,
            b"d8:announce5:udp:b13:announce-listll5:udp:bel5:udp:cee10:created by5:helio4:infod4:name1:x12:piece lengthi16384eee"
        );
        let info = |t: &[u8]| t[find_value_span(t, b"info").unwrap()].to_vec();
        assert_eq!(info(&rewritten), info(torrent));
        let back = Sources { trackers: vec!["udp:a".into()], webseeds: vec!["ws:a".into()] };
        assert_eq!(with_sources(&rewritten, &back).unwrap(), torrent, "and back, byte for byte");
        assert!(with_sources(b"d3:fooi1ee", &back).is_err());
        assert!(with_sources(b"garbage", &back).is_err());
    }
}
