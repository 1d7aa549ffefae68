//! Canonical bencode (BEP 3): dictionary keys sorted by raw bytes, integers
//! without leading zeros. helio writes the bytes itself so that the infohash is
//! the SHA-1 of exactly the info dictionary it wrote, and so that two
//! publishers of the same range produce byte-identical torrents.

use std::collections::BTreeMap;

/// A bencode value ready to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Dict),
    /// Bytes already encoded (the info dictionary, embedded as written).
    Encoded(Vec<u8>),
}

/// A dictionary; the map keeps keys in raw byte order, which is the canonical order.
pub type Dict = BTreeMap<Vec<u8>, Value>;

impl Value {
    pub fn str(text: &str) -> Value {
        Value::Bytes(text.as_bytes().to_vec())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(bytes) => write_bytes(bytes, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.write(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (key, value) in entries {
                    write_bytes(key, out);
                    value.write(out);
                }
                out.push(b'e');
            }
            Value::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Builds a dictionary from `(key, value)` pairs in any order.
pub fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Dict(entries.into_iter().map(|(k, v)| (k.as_bytes().to_vec(), v)).collect())
}

/// The byte range of the value stored under `key` in the top-level dictionary
/// of `data`, found without re-encoding: the infohash of a torrent read from
/// disk must be the SHA-1 of the bytes exactly as they are in the file.
pub fn find_value_span(data: &[u8], key: &[u8]) -> Option<std::ops::Range<usize>> {
    if data.first() != Some(&b'd') {
        return None;
    }
    let mut pos = 1;
    while data.get(pos)? != &b'e' {
        let key_end = skip(data, pos)?;
        let this_key = string_contents(data, pos)?;
        let value_end = skip(data, key_end)?;
        if this_key == key {
            return Some(key_end..value_end);
        }
        pos = value_end;
    }
    None
}

fn string_contents(data: &[u8], pos: usize) -> Option<&[u8]> {
    let colon = pos + data.get(pos..)?.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(&data[pos..colon]).ok()?.parse().ok()?;
    data.get(colon + 1..colon + 1 + len)
}

/// Deepest nesting of lists and dictionaries read: a torrent needs five or
/// so; a file from the web nested thousands deep must not exhaust the stack
/// of whatever parses it next.
pub const MAX_DEPTH: usize = 64;

/// The end of the value starting at `pos`, walked without recursion.
fn skip(data: &[u8], pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = pos;
    loop {
        match *data.get(at)? {
            b'i' => at += data.get(at..)?.iter().position(|&b| b == b'e')? + 1,
            b'l' | b'd' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return None;
                }
                at += 1;
                continue;
            }
            b'e' if depth > 0 => {
                depth -= 1;
                at += 1;
            }
            b'0'..=b'9' => {
                let contents = string_contents(data, at)?;
                let start = contents.as_ptr() as usize - data.as_ptr() as usize;
                at = start + contents.len();
            }
            _ => return None,
        }
        if depth == 0 {
            return Some(at);
        }
    }
}

/// Whether `data` is exactly one well-formed bencoded value nested at most
/// [`MAX_DEPTH`] deep (checked before a recursive parser sees it).
pub fn is_well_formed(data: &[u8]) -> bool {
    skip(data, 0) == Some(data.len())
}

/// The entries of the top-level dictionary of `data`, each key with the raw
/// bytes of its value, in file order.
pub fn top_level_entries(data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if data.first() != Some(&b'd') || !is_well_formed(data) {
        return None;
    }
    let mut entries = Vec::new();
    let mut pos = 1;
    while data.get(pos)? != &b'e' {
        let key_end = skip(data, pos)?;
        let key = string_contents(data, pos)?;
        let value_end = skip(data, key_end)?;
        entries.push((key, &data[key_end..value_end]));
        pos = value_end;
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let mut deep = vec![b'l'; 1_000_000];
        deep.extend(vec![b'e'; 1_000_000]);
        assert!(!is_well_formed(&deep));
        let mut ok = vec![b'l'; MAX_DEPTH];
        ok.extend(vec![b'e'; MAX_DEPTH]);
        assert!(is_well_formed(&ok));
        assert!(!is_well_formed(b"d1:ai1ee trailing"));
        assert!(find_value_span(&[b"d4:infol".as_slice(), &deep].concat(), b"info").is_none());
    }

    #[test]
    fn top_level_entries_keep_the_raw_bytes() {
        let data = b"d8:announce3:abc4:infod4:name1:xe8:url-listl1:uee";
        let entries = top_level_entries(data).unwrap();
        let keys: Vec<&[u8]> = entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [b"announce".as_slice(), b"info", b"url-list"]);
        assert_eq!(entries[1].1, b"d4:name1:xe");
        assert!(top_level_entries(b"l1:ae").is_none());
    }

    #[test]
    fn keys_are_sorted_by_raw_bytes() {
        let value = dict([
            ("url-list", Value::List(vec![Value::str("http://x/")])),
            ("creation date", Value::Int(1)),
            ("created by", Value::str("helio")),
            ("announce-list", Value::List(vec![])),
            ("announce", Value::str("a")),
            ("Zed", Value::Int(-3)),
        ]);
        assert_eq!(
            value.encode(),
            b"d3:Zedi-3e8:announce1:a13:announce-listle10:created by5:helio13:creation datei1e8:url-listl9:http://x/ee"
        );
    }

    #[test]
    fn integers_and_strings() {
        assert_eq!(Value::Int(0).encode(), b"i0e");
        assert_eq!(Value::Int(-42).encode(), b"i-42e");
        assert_eq!(Value::Int(i64::MAX).encode(), b"i9223372036854775807e");
        assert_eq!(Value::Bytes(vec![]).encode(), b"0:");
        assert_eq!(Value::Bytes(vec![0, 255]).encode(), b"2:\x00\xff");
        assert_eq!(Value::str("é").encode(), "2:é".as_bytes());
    }

    #[test]
    fn encoded_values_are_embedded_verbatim() {
        let info = dict([("name", Value::str("n"))]).encode();
        let outer = dict([("info", Value::Encoded(info.clone())), ("a", Value::Int(1))]).encode();
        assert_eq!(outer, b"d1:ai1e4:infod4:name1:nee");
        let span = find_value_span(&outer, b"info").unwrap();
        assert_eq!(&outer[span], &info[..]);
    }

    #[test]
    fn value_spans_in_malformed_data_are_none() {
        assert_eq!(find_value_span(b"d4:info", b"info"), None);
        assert_eq!(find_value_span(b"li1ee", b"info"), None);
        assert_eq!(find_value_span(b"d1:ai1ee", b"info"), None);
        assert_eq!(find_value_span(b"d4:infoi1", b"info"), None);
    }

    #[test]
    fn serde_bencode_reads_what_we_write() {
        let value = dict([("pieces", Value::Bytes(vec![0xff; 20])), ("length", Value::Int(7))]);
        let decoded: serde_bencode::value::Value = serde_bencode::from_bytes(&value.encode()).unwrap();
        assert_eq!(serde_bencode::to_bytes(&decoded).unwrap(), value.encode());
    }
}
