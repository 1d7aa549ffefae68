//! Signed notes (c2sp.org/signed-note): parsing, verifier keys, signing.
//!
//! A note is UTF-8 text ending in a newline, a blank line, and one or more
//! signature lines `— <key name> <base64(key id || signature)>`. This module
//! splits a note into its parts and knows the two kinds of log key helio
//! accepts in its config; what a signature covers is the checkpoint's business
//! (see `checkpoint.rs`), because an RFC 6962 signature covers a tree head, not
//! the note text.

#[cfg(any(test, feature = "fixture"))]
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
use p256::pkcs8::{AssociatedOid as _, DecodePublicKey as _, ObjectIdentifier};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The em dash and space that open every signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Signature type bytes from c2sp.org/signed-note, hashed into key ids.
const ED25519_TYPE: u8 = 0x01;
const RFC6962_TYPE: u8 = 0x05;

/// The DER header of a SubjectPublicKeyInfo holding an uncompressed P-256
/// point: SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING }.
/// Every key in the CT log list starts with it.
#[cfg(any(test, feature = "fixture"))]
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A note split into its text and its signature lines. Nothing is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The text up to and including the last newline before the blank line.
    pub body: String,
    pub signatures: Vec<NoteSignature>,
}

/// One signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    /// The bytes after the key id; their meaning depends on the key type.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// `name/hexid`, the way errors name a signature.
    pub fn label(&self) -> String {
        format!("{}/{}", self.name, hex_id(&self.key_id))
    }
}

/// Why a note could not be parsed. Line numbers count from 1.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("note is not valid UTF-8 (at byte {offset})")]
    NotUtf8 { offset: usize },
    #[error("line {line}: control character 0x{byte:02x} (a note may contain no control character but newline{hint})")]
    ControlChar { line: usize, byte: u8, hint: &'static str },
    #[error("note is empty")]
    Empty,
    #[error("line {line}: note does not end with a newline")]
    NoFinalNewline { line: usize },
    #[error("note has no blank line between its text and its signatures")]
    NoSeparator,
    #[error("line 1 is empty: a note must start with its text, not a blank line")]
    EmptyText,
    #[error("line {line}: no signature lines after the blank line")]
    NoSignatures { line: usize },
    #[error("line {line}: unexpected blank line (the text and the signatures are separated by exactly one)")]
    ExtraBlankLine { line: usize },
    #[error("line {line}: {problem}")]
    Signature { line: usize, problem: SignatureLineProblem },
}

/// What is wrong with a signature line.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureLineProblem {
    #[error("signature line does not start with an em dash (U+2014) and a space")]
    NoEmDash,
    #[error("signature line has no space between the key name and the signature")]
    NoSpace,
    #[error("key name {0:?} is empty or contains a space or '+'")]
    BadName(String),
    #[error("signature of {name} contains a space")]
    ExtraSpace { name: String },
    #[error("signature of {name} is not standard base64: {source}")]
    Base64 { name: String, source: base64::DecodeError },
    #[error("signature of {name} has {len} bytes, fewer than a 4-byte key id and at least one byte of signature")]
    TooShort { name: String, len: usize },
}

impl Note {
    /// Splits `text` into body and signature lines, checking the format of
    /// c2sp.org/signed-note strictly (the text of a checkpoint has no empty
    /// lines, so the first blank line is the separator).
    pub fn parse(text: &[u8]) -> Result<Note, NoteError> {
        let text = std::str::from_utf8(text).map_err(|e| NoteError::NotUtf8 { offset: e.valid_up_to() })?;
        for (index, line) in text.split('\n').enumerate() {
            if let Some(byte) = line.bytes().find(|b| b.is_ascii_control()) {
                let hint = if byte == b'\r' { "; CRLF line endings?" } else { "" };
                return Err(NoteError::ControlChar { line: index + 1, byte, hint });
            }
        }
        if text.is_empty() {
            return Err(NoteError::Empty);
        }
        let Some(text) = text.strip_suffix('\n') else {
            return Err(NoteError::NoFinalNewline { line: text.split('\n').count() });
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let blank = lines.iter().position(|line| line.is_empty()).ok_or(NoteError::NoSeparator)?;
        if blank == 0 {
            return Err(NoteError::EmptyText);
        }
        let body_len: usize = lines[..blank].iter().map(|line| line.len() + 1).sum();
        let signature_lines = &lines[blank + 1..];
        if signature_lines.is_empty() {
            return Err(NoteError::NoSignatures { line: blank + 2 });
        }
        let mut signatures = Vec::with_capacity(signature_lines.len());
        for (offset, line) in signature_lines.iter().enumerate() {
            let number = blank + 2 + offset;
            if line.is_empty() {
                return Err(NoteError::ExtraBlankLine { line: number });
            }
            let signature =
                parse_signature_line(line).map_err(|problem| NoteError::Signature { line: number, problem })?;
            signatures.push(signature);
        }
        Ok(Note { body: text[..body_len].to_owned(), signatures })
    }
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, SignatureLineProblem> {
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(SignatureLineProblem::NoEmDash)?;
    let (name, encoded) = rest.split_once(' ').ok_or(SignatureLineProblem::NoSpace)?;
    if !is_valid_name(name) {
        return Err(SignatureLineProblem::BadName(name.to_owned()));
    }
    if encoded.contains(' ') {
        return Err(SignatureLineProblem::ExtraSpace { name: name.to_owned() });
    }
    let bytes =
        BASE64.decode(encoded).map_err(|source| SignatureLineProblem::Base64 { name: name.to_owned(), source })?;
    let Some((key_id, signature)) = bytes.split_first_chunk::<4>() else {
        return Err(SignatureLineProblem::TooShort { name: name.to_owned(), len: bytes.len() });
    };
    if signature.is_empty() {
        return Err(SignatureLineProblem::TooShort { name: name.to_owned(), len: bytes.len() });
    }
    Ok(NoteSignature { name: name.to_owned(), key_id: *key_id, signature: signature.to_vec() })
}

/// Key names are non-empty and contain no Unicode space and no '+', which
/// separates the parts of a verifier key.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// A key id as eight lower-case hex digits, as in verifier keys.
pub fn hex_id(key_id: &[u8; 4]) -> String {
    format!("{:08x}", u32::from_be_bytes(*key_id))
}

/// SHA-256(name || 0x0A || type || key)[0..4], the key id of c2sp.org/signed-note.
fn compute_key_id(name: &str, key_type: u8, key: &[u8]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', key_type]);
    hasher.update(key);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key that verifies a log's checkpoints (`logs[].key` in the config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogKey {
    /// A CT log's ECDSA P-256 key; its signatures are RFC 6962 tree head
    /// signatures under the checkpoint origin as key name.
    Rfc6962 {
        key: p256::ecdsa::VerifyingKey,
        /// SHA-256 of the DER SubjectPublicKeyInfo, the RFC 6962 LogID.
        log_id: [u8; 32],
    },
    /// A signed-note Ed25519 key; its signatures cover the note text.
    Ed25519 { name: String, key_id: [u8; 4], key: ed25519_dalek::VerifyingKey },
}

/// Why a `logs[].key` value is not a usable key.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "key is not base64 ({0}); expected a base64 DER SubjectPublicKeyInfo as in the CT log list, or a name+hexid+base64 verifier key"
    )]
    Base64(base64::DecodeError),
    #[error("key is not a DER SubjectPublicKeyInfo ({0})")]
    NotSpki(String),
    #[error("unsupported key type {0}: helio verifies ECDSA P-256 (RFC 6962) keys and Ed25519 verifier keys")]
    Unsupported(String),
    #[error("key is not a valid P-256 public key")]
    InvalidP256,
    #[error("verifier key name {0:?} is empty or contains a space")]
    VkeyName(String),
    #[error("verifier key {name}: key material is not base64 ({source})")]
    VkeyBase64 { name: String, source: base64::DecodeError },
    #[error("verifier key {name}: key material has {len} bytes, expected 33 (0x01 and a 32-byte Ed25519 key)")]
    VkeyLength { name: String, len: usize },
    #[error("verifier key {name}: unsupported key type 0x{key_type:02x} (helio supports Ed25519, 0x01)")]
    VkeyType { name: String, key_type: u8 },
    #[error("verifier key {name}: not a valid Ed25519 public key")]
    VkeyInvalid { name: String },
    #[error("verifier key {name}: key id is {claimed} but the key hashes to {computed} (truncated or mistyped key?)")]
    VkeyId { name: String, claimed: String, computed: String },
}

impl LogKey {
    /// Parses either a base64 DER SubjectPublicKeyInfo (the CT log list's
    /// `key`) or a signed-note verifier key `name+hexid+base64`.
    pub fn parse(text: &str) -> Result<LogKey, KeyError> {
        let text = text.trim();
        // Base64 can contain '+' too, so a text that decodes to a
        // SubjectPublicKeyInfo is one, whatever its shape.
        let der = BASE64.decode(text);
        if let Ok(der) = &der
            && SubjectPublicKeyInfoRef::try_from(der.as_slice()).is_ok()
        {
            return parse_spki(der);
        }
        if let Some((name, id, material)) = split_verifier_key(text) {
            return parse_verifier_key(name, id, material);
        }
        let der = der.map_err(KeyError::Base64)?;
        parse_spki(&der)
    }

    /// The key id this key's signatures carry in a note from `origin`.
    pub fn key_id(&self, origin: &str) -> [u8; 4] {
        match self {
            LogKey::Rfc6962 { log_id, .. } => compute_key_id(origin, RFC6962_TYPE, log_id),
            LogKey::Ed25519 { key_id, .. } => *key_id,
        }
    }

    /// The key name its signature lines carry in a note from `origin`.
    pub fn name<'a>(&'a self, origin: &'a str) -> &'a str {
        match self {
            LogKey::Rfc6962 { .. } => origin,
            LogKey::Ed25519 { name, .. } => name,
        }
    }
}

/// `(name, hexid, base64)` if `text` has the shape of a verifier key: at least
/// two '+', with exactly eight hex digits between the first two.
fn split_verifier_key(text: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = text.split_once('+')?;
    let (id, material) = rest.split_once('+')?;
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((name, id, material))
}

fn parse_spki(der: &[u8]) -> Result<LogKey, KeyError> {
    const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    let spki = SubjectPublicKeyInfoRef::try_from(der).map_err(|e| KeyError::NotSpki(e.to_string()))?;
    let algorithm = spki.algorithm.oid;
    if algorithm != EC_PUBLIC_KEY {
        return Err(KeyError::Unsupported(algorithm_name(algorithm)));
    }
    let curve = spki
        .algorithm
        .parameters_oid()
        .map_err(|e| KeyError::Unsupported(format!("EC key without a named curve ({e})")))?;
    if curve != p256::NistP256::OID {
        return Err(KeyError::Unsupported(format!("ECDSA {}", curve_name(curve))));
    }
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(der).map_err(|_| KeyError::InvalidP256)?;
    Ok(LogKey::Rfc6962 { key, log_id: Sha256::digest(der).into() })
}

fn algorithm_name(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.3.101.112" => "Ed25519 in a SubjectPublicKeyInfo (use a name+hexid+base64 verifier key)",
        "1.3.101.113" => "Ed448",
        _ => return format!("with algorithm OID {oid}"),
    };
    name.to_owned()
}

fn curve_name(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.3.132.0.10" => "secp256k1",
        _ => return format!("on curve OID {oid}"),
    };
    name.to_owned()
}

fn parse_verifier_key(name: &str, id: &str, material: &str) -> Result<LogKey, KeyError> {
    if !is_valid_name(name) {
        return Err(KeyError::VkeyName(name.to_owned()));
    }
    let bytes = BASE64.decode(material).map_err(|source| KeyError::VkeyBase64 { name: name.to_owned(), source })?;
    let Ok([key_type, public @ ..]) = <[u8; 33]>::try_from(bytes.as_slice()) else {
        return Err(KeyError::VkeyLength { name: name.to_owned(), len: bytes.len() });
    };
    if key_type != ED25519_TYPE {
        return Err(KeyError::VkeyType { name: name.to_owned(), key_type });
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
        .map_err(|_| KeyError::VkeyInvalid { name: name.to_owned() })?;
    let key_id = compute_key_id(name, ED25519_TYPE, &public);
    let computed = hex_id(&key_id);
    if !computed.eq_ignore_ascii_case(id) {
        return Err(KeyError::VkeyId { name: name.to_owned(), claimed: id.to_owned(), computed });
    }
    Ok(LogKey::Ed25519 { name: name.to_owned(), key_id, key })
}

/// A private key, for the project's own fixture logs (test and fixture
/// builds only: the product never signs).
#[cfg(any(test, feature = "fixture"))]
#[derive(Clone)]
pub enum SigningKey {
    /// Signs RFC 6962 tree heads, as a Static CT log does.
    Rfc6962(p256::ecdsa::SigningKey),
    /// Signs the note text under `name`.
    Ed25519 { name: String, key: ed25519_dalek::SigningKey },
}

// Hand-written so that a stray `{:?}` can never print key material.
#[cfg(any(test, feature = "fixture"))]
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKey::Rfc6962(_) => f.write_str("SigningKey::Rfc6962(..)"),
            SigningKey::Ed25519 { name, .. } => write!(f, "SigningKey::Ed25519({name})"),
        }
    }
}

#[cfg(any(test, feature = "fixture"))]
impl SigningKey {
    /// The public key that verifies this key's signatures.
    pub fn verifier(&self) -> LogKey {
        match self {
            SigningKey::Rfc6962(key) => LogKey::Rfc6962 {
                key: *key.verifying_key(),
                log_id: Sha256::digest(p256_spki_der(key.verifying_key())).into(),
            },
            SigningKey::Ed25519 { name, key } => {
                let public = key.verifying_key();
                LogKey::Ed25519 {
                    name: name.clone(),
                    key_id: compute_key_id(name, ED25519_TYPE, public.as_bytes()),
                    key: public,
                }
            }
        }
    }

    /// The public key in the form the config's `logs[].key` takes.
    pub fn key_string(&self) -> String {
        match self {
            SigningKey::Rfc6962(key) => BASE64.encode(p256_spki_der(key.verifying_key())),
            SigningKey::Ed25519 { name, key } => {
                let public = key.verifying_key();
                let mut material = vec![ED25519_TYPE];
                material.extend_from_slice(public.as_bytes());
                let key_id = compute_key_id(name, ED25519_TYPE, public.as_bytes());
                format!("{name}+{}+{}", hex_id(&key_id), BASE64.encode(material))
            }
        }
    }
}

/// The DER SubjectPublicKeyInfo of a P-256 key with its point uncompressed,
/// the encoding CT logs use (and so the bytes their LogID hashes).
#[cfg(any(test, feature = "fixture"))]
fn p256_spki_der(key: &p256::ecdsa::VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point.as_bytes());
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    const TESSERA_KEY: &str = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
    const ROME_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPIcer7RB32jt4bTEbhgUKLKvOctFD+I2hoDItFxUBlJiGFvftBuRk3fO7e1T7gC2ekyfL7XoO2oN/ObcZyc4EA==";
    const RSA_KEY: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDaPy9sXoSv+eWsC7nU3g8Nt+YPKg8kna1BP4n7nHBM3pIiPRQfdsRnUFQx0K3LDes6RF6s7fJQAi2fO9vIs80hR1z24lVaLzZnEYc668ZtSWKbMbH4i30t0bknGuHMnkX6+QbpnM3Ei94i95sUdYxrnixc2uclWuaf/2OHK2cYUQIDAQAB";
    const P384_KEY: &str = "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE4ppJK/78YjWpOSnDdqifJwQQ6JBl7drcaPF6at1s7m0a3qDKxSt0v3FqC+lVS1voYvyWxteVGc9i3ETkbEAnggn7Cy1G3Ng+X08HpCT1bPk3T+NOmc9iHJ+FcbOgpR//";
    const ED25519_SPKI: &str = "MCowBQYDK2VwAyEAiSxqdPhnLeUQKtd9Ez9tgkNN8y9A0ctB2rkRreh44aE=";

    const SIMPLE: &str = "a\nb\n\n\u{2014} k AAAAAQI=\n";

    #[test]
    fn parses_body_and_signatures() -> Result<(), NoteError> {
        let note = Note::parse(b"origin\n5\nroot\n\n\xe2\x80\x94 name AQIDBAU=\n\xe2\x80\x94 other/x AQIDBAUG\n")?;
        assert_eq!(note.body, "origin\n5\nroot\n");
        assert_eq!(
            note.signatures,
            vec![
                NoteSignature { name: "name".into(), key_id: [1, 2, 3, 4], signature: vec![5] },
                NoteSignature { name: "other/x".into(), key_id: [1, 2, 3, 4], signature: vec![5, 6] },
            ]
        );
        assert_eq!(note.signatures[0].label(), "name/01020304");
        Ok(())
    }

    #[test]
    fn rejects_malformed_notes_naming_the_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "note is empty"),
            (b"a\xff\n", "not valid UTF-8 (at byte 1)"),
            (b"a\r\nb\n", "line 1: control character 0x0d"),
            (b"a\nb\tc\n\n", "line 2: control character 0x09"),
            (b"a\n\n\xe2\x80\x94 k AAAAAQI=", "line 3: note does not end with a newline"),
            (b"a\nb\n", "no blank line"),
            (b"\na\n\n", "line 1 is empty"),
            (b"a\n\n", "line 3: no signature lines"),
            (b"a\n\n\n", "line 3: unexpected blank line"),
            (b"a\n\n\xe2\x80\x94 k AAAAAQI=\n\n", "line 4: unexpected blank line"),
            (b"a\n\n- k AAAAAQI=\n", "line 3: signature line does not start with an em dash"),
            (b"a\n\n\xe2\x80\x94k AAAAAQI=\n", "does not start with an em dash"),
            (b"a\n\n\xe2\x80\x94 kAAAAAQI=\n", "line 3: signature line has no space"),
            (b"a\n\n\xe2\x80\x94  AAAAAQI=\n", "key name \"\" is empty"),
            (b"a\n\n\xe2\x80\x94 a+b AAAAAQI=\n", "key name \"a+b\""),
            (b"a\n\n\xe2\x80\x94 k AAAA AQI=\n", "signature of k contains a space"),
            (b"a\n\n\xe2\x80\x94 k AAAAAQI\n", "signature of k is not standard base64"),
            (b"a\n\n\xe2\x80\x94 k AAAAAQJ=\n", "signature of k is not standard base64"),
            (b"a\n\n\xe2\x80\x94 k AAAAAA==\n", "signature of k has 4 bytes"),
            (b"a\n\n\xe2\x80\x94 k \n", "signature of k has 0 bytes"),
        ];
        for (text, expected) in cases {
            match Note::parse(text) {
                Ok(note) => panic!("{:?} parsed as {note:?}", String::from_utf8_lossy(text)),
                Err(e) => assert!(
                    e.to_string().contains(expected),
                    "{:?}: {e} (wanted {expected:?})",
                    String::from_utf8_lossy(text)
                ),
            }
        }
        assert!(Note::parse(SIMPLE.as_bytes()).is_ok());
    }

    #[test]
    fn parses_spki_key() -> Result<(), KeyError> {
        let key = LogKey::parse(ROME_KEY)?;
        let LogKey::Rfc6962 { log_id, .. } = &key else {
            panic!("not an RFC 6962 key: {key:?}");
        };
        // log_id from rome2026h1-example-log.v3.json.
        assert_eq!(BASE64.encode(log_id), "CKIDXIl+znJaHUyhzhNVaSxIUov59RCXLh3fJXJExnk=");
        assert_eq!(hex_id(&key.key_id("rome2026h1.example.org")), "91507526");
        assert_eq!(key.name("rome2026h1.example.org"), "rome2026h1.example.org");
        Ok(())
    }

    #[test]
    fn parses_verifier_key_with_plus_in_base64() -> Result<(), KeyError> {
        let key = LogKey::parse(TESSERA_KEY)?;
        let LogKey::Ed25519 { name, key_id, .. } = &key else {
            panic!("not an Ed25519 key: {key:?}");
        };
        assert_eq!(name, "example.com/log/testdata");
        assert_eq!(hex_id(key_id), "33d7b496");
        assert_eq!(key.key_id("anything"), *key_id);
        assert_eq!(key.name("anything"), "example.com/log/testdata");
        // Upper-case hex digits name the same key.
        assert_eq!(LogKey::parse(&TESSERA_KEY.replace("33d7b496", "33D7B496"))?, key);
        Ok(())
    }

    #[test]
    fn rejects_bad_keys() {
        let cases: &[(&str, &str)] = &[
            (RSA_KEY, "unsupported key type RSA"),
            (P384_KEY, "unsupported key type ECDSA P-384"),
            (ED25519_SPKI, "unsupported key type Ed25519"),
            ("not a key", "key is not base64"),
            ("AAAA", "not a DER SubjectPublicKeyInfo"),
            (&TESSERA_KEY.replace("33d7b496", "33d7b497"), "key id is 33d7b497 but the key hashes to 33d7b496"),
            (
                &TESSERA_KEY.replace("example.com", "example.org"),
                "verifier key example.org/log/testdata: key id is 33d7b496",
            ),
            ("a+01234567+AQID", "has 3 bytes, expected 33"),
            ("a+01234567+AuHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx", "unsupported key type 0x02"),
            ("a+01234567+!!", "key material is not base64"),
            ("+01234567+AQID", "verifier key name \"\""),
        ];
        for (text, expected) in cases {
            match LogKey::parse(text) {
                Ok(key) => panic!("{text:?} parsed as {key:?}"),
                Err(e) => assert!(e.to_string().contains(expected), "{text:?}: {e} (wanted {expected:?})"),
            }
        }
    }

    #[test]
    fn invalid_p256_point_is_rejected() -> Result<(), base64::DecodeError> {
        let mut der = BASE64.decode(ROME_KEY)?;
        let last = der.len() - 1;
        der[last] ^= 1;
        let err = LogKey::parse(&BASE64.encode(der));
        assert_eq!(err, Err(KeyError::InvalidP256));
        Ok(())
    }

    #[test]
    fn signing_keys_round_trip_through_their_key_strings() -> Result<(), Box<dyn std::error::Error>> {
        use p256::pkcs8::EncodePublicKey as _;
        let ecdsa = p256::ecdsa::SigningKey::from_slice(&[7; 32])?;
        let expected_der = ecdsa.verifying_key().to_public_key_der()?;
        let ecdsa = SigningKey::Rfc6962(ecdsa);
        assert_eq!(ecdsa.key_string(), BASE64.encode(expected_der.as_bytes()));
        assert_eq!(LogKey::parse(&ecdsa.key_string())?, ecdsa.verifier());

        let ed =
            SigningKey::Ed25519 { name: "helio.test/log".into(), key: ed25519_dalek::SigningKey::from_bytes(&[9; 32]) };
        assert!(ed.key_string().starts_with("helio.test/log+"));
        assert_eq!(LogKey::parse(&ed.key_string())?, ed.verifier());
        assert_eq!(format!("{ed:?}"), "SigningKey::Ed25519(helio.test/log)");
        Ok(())
    }
}
