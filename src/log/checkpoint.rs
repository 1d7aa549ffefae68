//! Checkpoints (c2sp.org/tlog-checkpoint): the signed tree head of a log.
//!
//! The body is the origin, the tree size in decimal, the base64 root hash and
//! any extension lines. A Static CT log signs it with an RFC 6962
//! `TreeHeadSignature` (c2sp.org/static-ct-api), which covers the timestamp,
//! size and root but neither the origin nor extension lines; an Ed25519 note
//! signature covers the whole body.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
// One `signature` crate trait pair serves both p256 and ed25519-dalek.
#[cfg(any(test, feature = "fixture"))]
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::signature::Verifier as _;
use thiserror::Error;

use super::merkle::Hash;
#[cfg(any(test, feature = "fixture"))]
use super::note::SigningKey;
use super::note::{LogKey, Note, NoteError, hex_id};

/// `HashAlgorithm.sha256` and `SignatureAlgorithm.ecdsa` from RFC 5246.
const HASH_SHA256: u8 = 4;
const SIGNATURE_ECDSA: u8 = 3;
/// timestamp (8) + hash alg (1) + sig alg (1) + length (2).
const RFC6962_HEADER_LEN: usize = 12;

/// A parsed checkpoint, and the note it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
    /// The tree head timestamp (ms since the epoch) from a verified RFC 6962
    /// signature; `None` when parsed without one.
    pub timestamp_ms: Option<u64>,
    /// The whole note exactly as received.
    pub text: String,
}

/// Why a checkpoint was not accepted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("checkpoint is not a valid signed note: {0}")]
    Note(#[from] NoteError),
    #[error("checkpoint text has {0} line(s); it needs an origin, a tree size and a root hash")]
    TooFewLines(usize),
    #[error("tree size line {0:?} is not a canonical decimal")]
    Size(String),
    #[error("tree size line {0:?} does not fit in 64 bits")]
    SizeOverflow(String),
    #[error("root hash line {0:?} is not the base64 of 32 bytes")]
    Root(String),
    #[error("origin is {found:?} but the config expects {expected:?}")]
    OriginMismatch { found: String, expected: String },
    #[error(
        "checkpoint has {0} extension line(s), which an RFC 6962 signature does not cover (static-ct-api forbids them)"
    )]
    Rfc6962Extensions(usize),
    #[error("no signature by key {key} (found: {found})")]
    NoSignature { key: String, found: String },
    #[error("checkpoint signature by {key} is malformed: {problem}")]
    MalformedSignature { key: String, problem: String },
    #[error("checkpoint signature by {key} does not verify")]
    BadSignature { key: String },
}

/// Why a checkpoint could not be signed (fixture logs and tests only: the
/// product verifies checkpoints, it never signs one).
#[cfg(any(test, feature = "fixture"))]
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignError {
    #[error("no signing keys: a note needs at least one signature")]
    NoKeys,
    #[error("origin {0:?} is not a valid key name (empty, or contains a space, '+' or a control character)")]
    Origin(String),
    #[error("extension line {0:?} is empty or contains a control character")]
    Extension(String),
    #[error("key name {0:?} is empty or contains a space, '+' or a control character")]
    KeyName(String),
    #[error("cannot sign {0} extension line(s) with an RFC 6962 key: its signature would not cover them")]
    Rfc6962Extensions(usize),
    #[error("ECDSA signing failed")]
    Ecdsa,
}

impl Checkpoint {
    /// Parses a checkpoint without checking any signature: for logs configured
    /// without a key, and for reading back a checkpoint helio accepted before.
    pub fn parse(text: &[u8]) -> Result<Checkpoint, CheckpointError> {
        Ok(parse_note(text)?.0)
    }

    /// Parses a checkpoint and checks it is signed by `key`, and, when
    /// `origin` is given, that it is that log's checkpoint. Signature lines
    /// from other keys are ignored; every line from `key` must verify.
    pub fn verify(text: &[u8], key: &LogKey, origin: Option<&str>) -> Result<Checkpoint, CheckpointError> {
        let (mut checkpoint, note) = parse_note(text)?;
        if let Some(expected) = origin
            && expected != checkpoint.origin
        {
            return Err(CheckpointError::OriginMismatch { found: checkpoint.origin, expected: expected.to_owned() });
        }
        let name = key.name(&checkpoint.origin);
        let key_id = key.key_id(&checkpoint.origin);
        let label = format!("{name}/{}", hex_id(&key_id));
        let mut verified = false;
        for signature in &note.signatures {
            if signature.name != name || signature.key_id != key_id {
                continue;
            }
            match key {
                LogKey::Rfc6962 { key, .. } => {
                    if !checkpoint.extensions.is_empty() {
                        return Err(CheckpointError::Rfc6962Extensions(checkpoint.extensions.len()));
                    }
                    let timestamp =
                        verify_rfc6962(key, &checkpoint, &signature.signature).map_err(|e| e.with_key(&label))?;
                    checkpoint.timestamp_ms = Some(timestamp);
                }
                LogKey::Ed25519 { key, .. } => {
                    verify_ed25519(key, &note.body, &signature.signature).map_err(|e| e.with_key(&label))?;
                }
            }
            verified = true;
        }
        if !verified {
            let found: Vec<String> = note.signatures.iter().map(|s| s.label()).collect();
            return Err(CheckpointError::NoSignature { key: label, found: found.join(", ") });
        }
        Ok(checkpoint)
    }

    /// The root hash as the checkpoint writes it.
    pub fn root_base64(&self) -> String {
        BASE64.encode(self.root)
    }
}

fn parse_note(text: &[u8]) -> Result<(Checkpoint, Note), CheckpointError> {
    let note = Note::parse(text)?;
    // `Note::parse` checked the text is UTF-8 and each body line is non-empty.
    let lines: Vec<&str> = note.body.lines().collect();
    let [origin, size, root, extensions @ ..] = lines.as_slice() else {
        return Err(CheckpointError::TooFewLines(lines.len()));
    };
    let checkpoint = Checkpoint {
        origin: (*origin).to_owned(),
        size: parse_size(size)?,
        root: parse_root(root)?,
        extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        timestamp_ms: None,
        text: String::from_utf8_lossy(text).into_owned(),
    };
    Ok((checkpoint, note))
}

fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let canonical =
        line == "0" || (!line.is_empty() && !line.starts_with('0') && line.bytes().all(|b| b.is_ascii_digit()));
    if !canonical {
        return Err(CheckpointError::Size(line.to_owned()));
    }
    line.parse().map_err(|_| CheckpointError::SizeOverflow(line.to_owned()))
}

fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    BASE64
        .decode(line)
        .ok()
        .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| CheckpointError::Root(line.to_owned()))
}

/// A signature failure before the key label is known.
enum SignatureFailure {
    Malformed(String),
    DoesNotVerify,
}

impl SignatureFailure {
    fn with_key(self, key: &str) -> CheckpointError {
        let key = key.to_owned();
        match self {
            SignatureFailure::Malformed(problem) => CheckpointError::MalformedSignature { key, problem },
            SignatureFailure::DoesNotVerify => CheckpointError::BadSignature { key },
        }
    }
}

/// The RFC 6962 `TreeHeadSignature` input: version v1 (0), signature type
/// tree_hash (1), timestamp, tree size, root.
fn tree_head_message(timestamp_ms: u64, size: u64, root: &Hash) -> [u8; 50] {
    let mut message = [0u8; 50];
    message[1] = 1;
    message[2..10].copy_from_slice(&timestamp_ms.to_be_bytes());
    message[10..18].copy_from_slice(&size.to_be_bytes());
    message[18..].copy_from_slice(root);
    message
}

/// Checks an `RFC6962NoteSignature` and returns its timestamp.
fn verify_rfc6962(
    key: &p256::ecdsa::VerifyingKey,
    checkpoint: &Checkpoint,
    bytes: &[u8],
) -> Result<u64, SignatureFailure> {
    let Some((header, der)) = bytes.split_first_chunk::<RFC6962_HEADER_LEN>() else {
        return Err(SignatureFailure::Malformed(format!(
            "{} bytes is too short for an RFC 6962 tree head signature",
            bytes.len()
        )));
    };
    let [t0, t1, t2, t3, t4, t5, t6, t7, hash, algorithm, l0, l1] = *header;
    let timestamp = u64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]);
    if hash != HASH_SHA256 {
        return Err(SignatureFailure::Malformed(format!("hash algorithm {hash} is not sha256 ({HASH_SHA256})")));
    }
    if algorithm != SIGNATURE_ECDSA {
        return Err(SignatureFailure::Malformed(format!(
            "signature algorithm {algorithm} is not ecdsa ({SIGNATURE_ECDSA})"
        )));
    }
    let length = usize::from(u16::from_be_bytes([l0, l1]));
    if length != der.len() {
        return Err(SignatureFailure::Malformed(format!(
            "signature length field is {length} but {} bytes follow",
            der.len()
        )));
    }
    let signature = p256::ecdsa::Signature::from_der(der)
        .map_err(|_| SignatureFailure::Malformed("ECDSA signature is not valid DER".to_owned()))?;
    let message = tree_head_message(timestamp, checkpoint.size, &checkpoint.root);
    key.verify(&message, &signature).map_err(|_| SignatureFailure::DoesNotVerify)?;
    Ok(timestamp)
}

fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, body: &str, bytes: &[u8]) -> Result<(), SignatureFailure> {
    let signature = ed25519_dalek::Signature::from_slice(bytes).map_err(|_| {
        SignatureFailure::Malformed(format!("{} bytes is not a 64-byte Ed25519 signature", bytes.len()))
    })?;
    key.verify_strict(body.as_bytes(), &signature).map_err(|_| SignatureFailure::DoesNotVerify)
}

/// Writes and signs a checkpoint note, one signature line per key, in order.
/// RFC 6962 keys sign `timestamp_ms` into their tree head signature.
#[cfg(any(test, feature = "fixture"))]
pub fn sign(
    origin: &str,
    size: u64,
    root: &Hash,
    extensions: &[String],
    timestamp_ms: u64,
    keys: &[SigningKey],
) -> Result<String, SignError> {
    if keys.is_empty() {
        return Err(SignError::NoKeys);
    }
    if !is_signable_name(origin) {
        return Err(SignError::Origin(origin.to_owned()));
    }
    if let Some(bad) = extensions.iter().find(|line| line.is_empty() || line.chars().any(char::is_control)) {
        return Err(SignError::Extension(bad.clone()));
    }
    let mut body = format!("{origin}\n{size}\n{}\n", BASE64.encode(root));
    for line in extensions {
        body.push_str(line);
        body.push('\n');
    }
    let mut note = body.clone();
    note.push('\n');
    for key in keys {
        let verifier = key.verifier();
        let name = verifier.name(origin);
        let mut bytes = verifier.key_id(origin).to_vec();
        match key {
            SigningKey::Rfc6962(key) => {
                if !extensions.is_empty() {
                    return Err(SignError::Rfc6962Extensions(extensions.len()));
                }
                let message = tree_head_message(timestamp_ms, size, root);
                let signature: p256::ecdsa::Signature = key.try_sign(&message).map_err(|_| SignError::Ecdsa)?;
                let der = signature.to_der();
                let der = der.as_bytes();
                // A P-256 DER signature is at most 72 bytes.
                let length = u16::try_from(der.len()).map_err(|_| SignError::Ecdsa)?;
                bytes.extend_from_slice(&timestamp_ms.to_be_bytes());
                bytes.extend_from_slice(&[HASH_SHA256, SIGNATURE_ECDSA]);
                bytes.extend_from_slice(&length.to_be_bytes());
                bytes.extend_from_slice(der);
            }
            SigningKey::Ed25519 { name, key } => {
                if !is_signable_name(name) {
                    return Err(SignError::KeyName(name.clone()));
                }
                bytes.extend_from_slice(&key.sign(body.as_bytes()).to_bytes());
            }
        }
        note.push_str(&format!("\u{2014} {name} {}\n", BASE64.encode(bytes)));
    }
    Ok(note)
}

/// A key name (the origin is the RFC 6962 key name) that a note can carry.
#[cfg(any(test, feature = "fixture"))]
fn is_signable_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SYCAMORE_ORIGIN: &str = "log.sycamore.ct.letsencrypt.org/2026h1";
    const ARCHE_ORIGIN: &str = "arche2026h1.staging.ct.transparency.dev";
    const ROME_ORIGIN: &str = "rome2026h1.example.org";
    const TESSERA_KEY: &str = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn read(path: &Path) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()).into())
    }

    /// The `key` of the tiled log whose description mentions `name`.
    fn log_list_key(realdata: &Path, name: &str) -> Result<String, Box<dyn std::error::Error>> {
        let list: serde_json::Value =
            serde_json::from_slice(&read(&realdata.join("loglist/all_logs_list-v78.2.json"))?)?;
        let operators = list["operators"].as_array().ok_or("no operators")?;
        for log in operators.iter().filter_map(|op| op["tiled_logs"].as_array()).flatten() {
            let description = log["description"].as_str().unwrap_or_default();
            if description.contains(name) {
                let key = log["key"].as_str().ok_or("log without key")?.to_owned();
                // The list's log_id is the hash helio computes.
                let parsed = LogKey::parse(&key)?;
                let LogKey::Rfc6962 { log_id, .. } = parsed else {
                    return Err("log list key is not an RFC 6962 key".into());
                };
                assert_eq!(log["log_id"].as_str(), Some(BASE64.encode(log_id).as_str()));
                return Ok(key);
            }
        }
        Err(format!("{name} not in the log list").into())
    }

    fn sycamore(realdata: &Path) -> Result<(Vec<u8>, LogKey), Box<dyn std::error::Error>> {
        let text = read(&realdata.join("checkpoints/sycamore2026h1-signed-note.txt"))?;
        let key = LogKey::parse(&log_list_key(realdata, "Sycamore2026h1")?)?;
        Ok((text, key))
    }

    #[test]
    fn real_rfc6962_checkpoints_verify() -> TestResult {
        let realdata = crate::real_fixtures();
        let (text, key) = sycamore(&realdata)?;
        let checkpoint = Checkpoint::verify(&text, &key, Some(SYCAMORE_ORIGIN))?;
        assert_eq!(checkpoint.origin, SYCAMORE_ORIGIN);
        assert_eq!(checkpoint.size, 804_475_391);
        assert_eq!(hex::encode(checkpoint.root), "7379368242a0f21dde80872b86f462dbe2507a277aa666607e6386ce4adf5bca");
        assert_eq!(checkpoint.timestamp_ms, Some(1_769_279_856_830));
        assert!(checkpoint.extensions.is_empty());
        assert_eq!(checkpoint.text.as_bytes(), text.as_slice());

        let text = read(&realdata.join("checkpoints/arche2026h1-signed-note.txt"))?;
        let key = LogKey::parse(&log_list_key(&realdata, "Arche2026h1")?)?;
        let checkpoint = Checkpoint::verify(&text, &key, Some(ARCHE_ORIGIN))?;
        assert_eq!(checkpoint.size, 1_822_167_730);
        assert_eq!(checkpoint.root_base64(), "FqMvvl+opIdNGueAnE7eTPtlV9Ot53hcarJRzvlwgbA=");
        assert_eq!(checkpoint.timestamp_ms, Some(1_768_477_636_059));

        let text = read(&realdata.join("checkpoints/rome2026h1-example-signed-note.txt"))?;
        let descriptor: serde_json::Value =
            serde_json::from_slice(&read(&realdata.join("checkpoints/rome2026h1-example-log.v3.json"))?)?;
        let key = LogKey::parse(descriptor["key"].as_str().ok_or("no key")?)?;
        let checkpoint = Checkpoint::verify(&text, &key, Some(ROME_ORIGIN))?;
        let head = &descriptor["final_tree_head"];
        assert_eq!(Some(checkpoint.size), head["tree_size"].as_u64());
        assert_eq!(Some(checkpoint.root_base64().as_str()), head["sha256_root_hash"].as_str());
        assert_eq!(checkpoint.timestamp_ms, head["timestamp"].as_u64());
        Ok(())
    }

    #[test]
    fn real_ed25519_checkpoints_verify() -> TestResult {
        let realdata = crate::real_fixtures();
        let key = LogKey::parse(TESSERA_KEY)?;
        for size in 0..=15u64 {
            let text = read(&realdata.join(format!("tessera-log/checkpoint.{size}")))?;
            let checkpoint = Checkpoint::verify(&text, &key, Some("example.com/log/testdata"))?;
            assert_eq!(checkpoint.size, size);
            assert_eq!(checkpoint.timestamp_ms, None);
            if size == 15 {
                assert_eq!(checkpoint.root_base64(), "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=");
            }
        }
        Ok(())
    }

    /// Flips every bit of every byte in `range` of `text`; none may verify.
    fn assert_every_flip_fails(text: &[u8], range: std::ops::Range<usize>, key: &LogKey, origin: &str) {
        for index in range {
            for bit in 0..8 {
                let mut tampered = text.to_vec();
                tampered[index] ^= 1 << bit;
                for origin in [None, Some(origin)] {
                    if let Ok(checkpoint) = Checkpoint::verify(&tampered, key, origin) {
                        panic!("flipping bit {bit} of byte {index} still verifies: {:?}", checkpoint.text);
                    }
                }
            }
        }
    }

    /// The byte range of the line of `text` starting with `prefix`, newline included.
    fn line_range(text: &[u8], prefix: &str) -> Option<std::ops::Range<usize>> {
        let mut start = 0;
        for line in text.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(prefix.as_bytes()) {
                return Some(start..start + line.len());
            }
            start += line.len();
        }
        None
    }

    #[test]
    fn any_flipped_bit_fails_verification() -> TestResult {
        let realdata = crate::real_fixtures();
        let (text, key) = sycamore(&realdata)?;
        let body_len = Note::parse(&text)?.body.len();
        assert_every_flip_fails(&text, 0..body_len + 1, &key, SYCAMORE_ORIGIN);
        let line = line_range(&text, &format!("\u{2014} {SYCAMORE_ORIGIN} EEuevw"))
            .ok_or("sycamore signature line not found")?;
        assert_every_flip_fails(&text, line, &key, SYCAMORE_ORIGIN);

        let text = read(&realdata.join("tessera-log/checkpoint.15"))?;
        let key = LogKey::parse(TESSERA_KEY)?;
        // Body, blank line and the one signature line: every byte.
        assert_every_flip_fails(&text, 0..text.len(), &key, "example.com/log/testdata");
        Ok(())
    }

    #[test]
    fn wrong_key_origin_or_missing_signature_fails() -> TestResult {
        let realdata = crate::real_fixtures();
        let (text, key) = sycamore(&realdata)?;
        let arche = LogKey::parse(&log_list_key(&realdata, "Arche2026h1")?)?;
        let err = Checkpoint::verify(&text, &arche, None).map(|c| c.size);
        let Err(CheckpointError::NoSignature { key: label, found }) = &err else {
            panic!("wrong key: {err:?}");
        };
        assert!(label.starts_with(SYCAMORE_ORIGIN), "{label}");
        assert!(found.contains("grease.invalid/00082006"), "{found}");
        assert!(found.contains(&format!("{SYCAMORE_ORIGIN}/104b9ebf")), "{found}");

        let tessera = LogKey::parse(TESSERA_KEY)?;
        assert!(Checkpoint::verify(&text, &tessera, None).is_err());

        let err = Checkpoint::verify(&text, &key, Some("log.sycamore.ct.letsencrypt.org/2025h2"));
        assert_eq!(
            err.map(|c| c.size),
            Err(CheckpointError::OriginMismatch {
                found: SYCAMORE_ORIGIN.into(),
                expected: "log.sycamore.ct.letsencrypt.org/2025h2".into(),
            })
        );
        assert!(
            err_string(Checkpoint::verify(&text, &key, Some("x")))
                .contains("origin is \"log.sycamore.ct.letsencrypt.org/2026h1\" but the config expects \"x\"")
        );

        let line = line_range(&text, &format!("\u{2014} {SYCAMORE_ORIGIN} EEuevw"))
            .ok_or("sycamore signature line not found")?;
        let mut removed = text.clone();
        removed.drain(line);
        let message = err_string(Checkpoint::verify(&removed, &key, Some(SYCAMORE_ORIGIN)));
        assert!(
            message.starts_with(&format!(
                "no signature by key {SYCAMORE_ORIGIN}/104b9ebf (found: {SYCAMORE_ORIGIN}/a75b5f8c, grease.invalid/00082006, {SYCAMORE_ORIGIN}/77022354)"
            )),
            "{message}"
        );
        Ok(())
    }

    fn err_string(result: Result<Checkpoint, CheckpointError>) -> String {
        match result {
            Ok(checkpoint) => panic!("unexpectedly verified: {:?}", checkpoint.text),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn grease_lines_are_ignored() -> TestResult {
        let realdata = crate::real_fixtures();
        let (text, key) = sycamore(&realdata)?;
        let note = Note::parse(&text)?;
        // One grease line shares the log's name with an unknown key id, one
        // has a name of its own; neither stops verification.
        let key_id = key.key_id(SYCAMORE_ORIGIN);
        assert!(
            note.signatures.iter().any(|s| s.name == SYCAMORE_ORIGIN && s.key_id != key_id && s.signature.len() < 8)
        );
        assert!(note.signatures.iter().any(|s| s.name == "grease.invalid"));
        Checkpoint::verify(&text, &key, None)?;

        // A line with the key's name and id that does not verify is an error,
        // not something to skip.
        let mut bad = note.signatures[2].clone();
        assert_eq!(bad.key_id, key_id);
        let last = bad.signature.len() - 1;
        bad.signature[last] ^= 1;
        let mut extra = bad.key_id.to_vec();
        extra.extend_from_slice(&bad.signature);
        let mut doubled = text.clone();
        doubled.extend_from_slice(format!("\u{2014} {SYCAMORE_ORIGIN} {}\n", BASE64.encode(extra)).as_bytes());
        let message = err_string(Checkpoint::verify(&doubled, &key, None));
        assert!(
            message.starts_with("checkpoint signature by log.sycamore.ct.letsencrypt.org/2026h1/104b9ebf"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn parse_reads_body_without_checking_signatures() -> TestResult {
        let text = "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\n\n\u{2014} k AAAAAQI=\n";
        let checkpoint = Checkpoint::parse(text.as_bytes())?;
        assert_eq!(checkpoint.origin, "o");
        assert_eq!(checkpoint.size, 0);
        assert_eq!(checkpoint.extensions, vec!["ext one".to_owned()]);
        assert_eq!(checkpoint.timestamp_ms, None);
        assert_eq!(checkpoint.text, text);
        Ok(())
    }

    #[test]
    fn parse_rejects_bad_bodies() {
        let root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let cases = [
            ("o\n1\n".to_owned(), "checkpoint text has 2 line(s)"),
            (format!("o\n0123\n{root}\n"), "tree size line \"0123\" is not a canonical decimal"),
            (format!("o\n+1\n{root}\n"), "tree size line \"+1\" is not"),
            (format!("o\n-1\n{root}\n"), "tree size line \"-1\" is not"),
            (format!("o\n1 \n{root}\n"), "tree size line \"1 \" is not"),
            (format!("o\n00\n{root}\n"), "tree size line \"00\" is not"),
            (format!("o\n１\n{root}\n"), "tree size line \"１\" is not"),
            (
                format!("o\n18446744073709551616\n{root}\n"),
                "tree size line \"18446744073709551616\" does not fit in 64 bits",
            ),
            ("o\n1\nAAAA\n".to_owned(), "root hash line \"AAAA\" is not the base64 of 32 bytes"),
            (format!("o\n1\n{}\n", &root[..43]), "is not the base64 of 32 bytes"),
            ("o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n".to_owned(), "is not the base64"),
        ];
        for (body, expected) in cases {
            let text = format!("{body}\n\u{2014} k AAAAAQI=\n");
            match Checkpoint::parse(text.as_bytes()) {
                Ok(checkpoint) => panic!("{body:?} parsed as {checkpoint:?}"),
                Err(e) => assert!(e.to_string().contains(expected), "{body:?}: {e}"),
            }
        }
        assert_eq!(parse_size("18446744073709551615").map_err(|e| e.to_string()), Ok(u64::MAX));
        let err = Checkpoint::parse(b"o\n1\n").map(|c| c.size);
        assert!(matches!(err, Err(CheckpointError::Note(_))), "{err:?}");
    }

    fn test_keys() -> Result<(SigningKey, SigningKey), p256::ecdsa::Error> {
        Ok((
            SigningKey::Rfc6962(p256::ecdsa::SigningKey::from_slice(&[7; 32])?),
            SigningKey::Ed25519 {
                name: "helio.test/witness".into(),
                key: ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
            },
        ))
    }

    #[test]
    fn sign_round_trips_with_both_key_types() -> TestResult {
        let (ecdsa, ed) = test_keys()?;
        let root: Hash = [0xab; 32];
        let origin = "helio.test/log";
        let text = sign(origin, 1234, &root, &[], 1_700_000_000_000, &[ecdsa.clone(), ed.clone()])?;
        assert!(text.starts_with(
            "helio.test/log\n1234\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n\u{2014} helio.test/log "
        ));
        // Deterministic: the fixture logs are byte-for-byte reproducible.
        assert_eq!(sign(origin, 1234, &root, &[], 1_700_000_000_000, &[ecdsa.clone(), ed.clone()])?, text);

        for key in [&ecdsa, &ed] {
            let verifier = LogKey::parse(&key.key_string())?;
            let checkpoint = Checkpoint::verify(text.as_bytes(), &verifier, Some(origin))?;
            assert_eq!((checkpoint.size, checkpoint.root), (1234, root));
            assert_eq!(checkpoint.text, text);
        }
        let checkpoint = Checkpoint::verify(text.as_bytes(), &ecdsa.verifier(), None)?;
        assert_eq!(checkpoint.timestamp_ms, Some(1_700_000_000_000));
        let checkpoint = Checkpoint::verify(text.as_bytes(), &ed.verifier(), None)?;
        assert_eq!(checkpoint.timestamp_ms, None);

        // Ed25519 covers extension lines.
        let extensions = vec!["ext 1".to_owned(), "— ext 2".to_owned()];
        let text = sign(origin, 0, &root, &extensions, 0, std::slice::from_ref(&ed))?;
        let checkpoint = Checkpoint::verify(text.as_bytes(), &ed.verifier(), Some(origin))?;
        assert_eq!(checkpoint.extensions, extensions);
        Ok(())
    }

    #[test]
    fn rfc6962_refuses_extension_lines() -> TestResult {
        let (ecdsa, ed) = test_keys()?;
        let root: Hash = [1; 32];
        let extensions = vec!["ext".to_owned()];
        assert_eq!(
            sign("o", 1, &root, &extensions, 0, &[ed.clone(), ecdsa.clone()]),
            Err(SignError::Rfc6962Extensions(1))
        );
        // An extension line slipped into an RFC 6962 checkpoint would verify
        // unnoticed, so verify refuses it.
        let text = sign("o", 1, &root, &[], 0, std::slice::from_ref(&ecdsa))?;
        let tampered = text.replacen("\n\n", "\next\n\n", 1);
        assert_eq!(
            Checkpoint::verify(tampered.as_bytes(), &ecdsa.verifier(), None).map(|c| c.size),
            Err(CheckpointError::Rfc6962Extensions(1))
        );
        Ok(())
    }

    #[test]
    fn sign_rejects_bad_input() -> TestResult {
        let (ecdsa, ed) = test_keys()?;
        let root: Hash = [1; 32];
        let keys = std::slice::from_ref(&ecdsa);
        assert_eq!(sign("o", 1, &root, &[], 0, &[]), Err(SignError::NoKeys));
        assert_eq!(sign("", 1, &root, &[], 0, keys), Err(SignError::Origin(String::new())));
        assert_eq!(sign("a b", 1, &root, &[], 0, keys), Err(SignError::Origin("a b".into())));
        assert_eq!(
            sign("o", 1, &root, &["a\nb".into()], 0, std::slice::from_ref(&ed)),
            Err(SignError::Extension("a\nb".into()))
        );
        let bad = SigningKey::Ed25519 { name: "a+b".into(), key: ed25519_dalek::SigningKey::from_bytes(&[1; 32]) };
        assert_eq!(sign("o", 1, &root, &[], 0, &[bad]), Err(SignError::KeyName("a+b".into())));
        Ok(())
    }

    #[test]
    fn malformed_rfc6962_signatures_are_named() -> TestResult {
        let (ecdsa, _) = test_keys()?;
        let verifier = ecdsa.verifier();
        let text = sign("o", 1, &[1; 32], &[], 5, std::slice::from_ref(&ecdsa))?;
        let note = Note::parse(text.as_bytes())?;
        let good = &note.signatures[0];
        let relabel = |signature: &[u8]| {
            let mut bytes = good.key_id.to_vec();
            bytes.extend_from_slice(signature);
            format!("{}\n\u{2014} o {}\n", note.body, BASE64.encode(bytes))
        };
        let mut wrong_hash = good.signature.clone();
        wrong_hash[8] = 5;
        let mut trailing = good.signature.clone();
        trailing.push(0);
        let cases: [(Vec<u8>, &str); 4] = [
            (good.signature[..11].to_vec(), "11 bytes is too short"),
            (wrong_hash, "hash algorithm 5 is not sha256 (4)"),
            (trailing, "signature length field is"),
            ([&good.signature[..10], &[0, 2, 0x30, 0x00]].concat(), "not valid DER"),
        ];
        for (signature, expected) in cases {
            let message = err_string(Checkpoint::verify(relabel(&signature).as_bytes(), &verifier, None));
            assert!(message.starts_with("checkpoint signature by o/") && message.contains(expected), "{message}");
        }
        Ok(())
    }
}
