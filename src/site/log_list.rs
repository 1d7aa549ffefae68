//! Reading the CT log list a config names (`log_list:`), once per run, and
//! keeping the last good copy in the site (`log-list.json` at its root), so
//! that a list that cannot be read means that copy and one warning, not a
//! run without logs (docs/log-list.md).
//!
//! A list at a URL is asked for with the copy's validators (RFC 9110 §13.1:
//! `If-None-Match`, `If-Modified-Since`): an unchanged list costs a 304 and
//! writes nothing. A list in a file is read each time. With
//! `log_list_signature` and `log_list_key`, the list's bytes must verify
//! against the detached signature (RSA PKCS #1 v1.5 or ECDSA P-256, with
//! SHA-256, as Google signs `log_list.json`) before they are used or kept.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::config::log_list::LogList;
use crate::config::{Config, LogListConfig};
use crate::log::source::{BodyKind, FetchError, Location, LogSource, RetryPolicy, Validators, http_agent_within};
use crate::store::{Store, StoreError};

/// The last good copy of the list, at the site's root.
pub const LOG_LIST_JSON: &str = "log-list.json";

/// Largest list read: the real one is about 100 KB.
const MAX_LIST: usize = 8 << 20;

/// Why the list could not be had.
#[derive(Debug, Error)]
pub enum LogListError {
    #[error("cannot read the log list: {error}; and the site holds no earlier copy ({copy}) to use instead")]
    Unavailable { error: String, copy: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the list this run uses was had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Read now, new or changed.
    Fetched,
    /// The source says it has not changed since the copy.
    Unchanged,
    /// The source could not be read: the last good copy, and why.
    Earlier(String),
}

/// The list a run uses.
pub struct Had {
    pub list: LogList,
    pub freshness: Freshness,
}

/// The copy as the site keeps it: the list's bytes as they came, and what
/// asks the source for them again only if they changed.
#[derive(Serialize, Deserialize)]
struct Copy {
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    list: Box<RawValue>,
}

/// Reads the list `settings` names: from its source (asking only for a
/// change when the site holds a copy), else the copy. A list read anew is
/// kept in `store` when there is one.
pub fn read(
    settings: &LogListConfig,
    store: Option<&Store>,
    contact: Option<&str>,
    policy: RetryPolicy,
) -> Result<Had, LogListError> {
    let copy = match store {
        Some(store) => read_copy(store, &settings.written),
        None => None,
    };
    let validators = copy.as_ref().map_or_else(Validators::default, |copy| Validators {
        etag: copy.etag.clone(),
        last_modified: copy.last_modified.clone(),
    });
    match fetch(settings, contact, policy, &validators) {
        Ok(Fetched::Unchanged) => match &copy {
            Some(copy) => match LogList::parse(copy.list.get().as_bytes()) {
                Ok(list) => Ok(Had { list, freshness: Freshness::Unchanged }),
                Err(why) => Err(unavailable(format!("the earlier copy does not read: {why}"), store)),
            },
            None => Err(unavailable(format!("{}: answered 304 to an unconditional request", settings.source), store)),
        },
        Ok(Fetched::New { bytes, validators }) => {
            if let Some(store) = store {
                keep(store, settings, &bytes, validators);
            }
            let list =
                LogList::parse(&bytes).map_err(|why| unavailable(format!("{}: {why}", settings.source), None))?;
            Ok(Had { list, freshness: Freshness::Fetched })
        }
        Err(why) => match copy.as_ref().map(|copy| LogList::parse(copy.list.get().as_bytes())) {
            Some(Ok(list)) => Ok(Had { list, freshness: Freshness::Earlier(why) }),
            _ => Err(unavailable(why, store)),
        },
    }
}

fn unavailable(error: String, store: Option<&Store>) -> LogListError {
    let copy = store.map_or_else(|| "no site given".to_string(), |store| store.describe(LOG_LIST_JSON));
    LogListError::Unavailable { error, copy }
}

enum Fetched {
    New { bytes: Vec<u8>, validators: Validators },
    Unchanged,
}

/// The list from its source, checked as a list (and against its signature).
fn fetch(
    settings: &LogListConfig,
    contact: Option<&str>,
    policy: RetryPolicy,
    validators: &Validators,
) -> Result<Fetched, String> {
    let (source, file) = open(&settings.source, contact, policy)?;
    let Some((bytes, validators)) =
        source.fetch_if_changed(&file, BodyKind::Sniffable, validators).map_err(|e| e.to_string())?
    else {
        return Ok(Fetched::Unchanged);
    };
    if bytes.len() > MAX_LIST {
        return Err(format!("{}: larger than {MAX_LIST} bytes", settings.source));
    }
    LogList::parse(&bytes).map_err(|why| format!("{}: {why}", settings.source))?;
    if let (Some(signature), Some(key)) = (&settings.signature, &settings.key) {
        let (sig_source, sig_file) = open(signature, contact, policy)?;
        let signature_bytes = sig_source.fetch(&sig_file, BodyKind::Opaque).map_err(|e| e.to_string())?;
        signature::verify(key, &bytes, &signature_bytes)
            .map_err(|why| format!("{}: the signature {signature} does not verify: {why}", settings.source))?;
    }
    Ok(Fetched::New { bytes: bytes.to_vec(), validators })
}

/// A source for one file: its folder (or URL up to the last `/`) and name.
fn open(source: &str, contact: Option<&str>, policy: RetryPolicy) -> Result<(LogSource, String), String> {
    let (folder, file) = source.rsplit_once('/').unwrap_or((".", source));
    // A file's path is as the config resolved it (relative to the working
    // folder when the config's own path was).
    let location =
        Location::parse(&format!("{folder}/"), std::path::Path::new(".")).map_err(|why| format!("log_list: {why}"))?;
    // A host that does not answer gives up within the short budget, as a log does.
    let agent = http_agent_within(contact, 1, Some(policy.unreachable_budget));
    Ok((LogSource::new(&location, &agent, policy), file.to_string()))
}

/// The copy in `store`, if it is one of this source's list.
fn read_copy(store: &Store, source: &str) -> Option<Copy> {
    let bytes = store.read(LOG_LIST_JSON).ok().flatten()?;
    if bytes.len() > MAX_LIST + 4096 {
        return None;
    }
    serde_json::from_slice::<Copy>(&bytes).ok().filter(|copy| copy.source == source)
}

/// Keeps the list read now as the last good copy; a copy that cannot be
/// written is a warning (the list is used all the same).
fn keep(store: &Store, settings: &LogListConfig, bytes: &[u8], validators: Validators) {
    let written = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| RawValue::from_string(text.trim().to_string()).ok())
        .map(|list| Copy {
            source: settings.written.clone(),
            etag: validators.etag,
            last_modified: validators.last_modified,
            list,
        })
        .and_then(|copy| serde_json::to_vec(&copy).ok())
        .map(|mut text| {
            text.push(b'\n');
            store.write_if_changed(LOG_LIST_JSON, &text)
        });
    if let Some(Err(error)) = written {
        tracing::warn!("cannot keep a copy of the log list: {error}");
    }
}

/// Says, once, that the run uses the last good copy.
pub fn warn_if_earlier(had: &Had, settings: &LogListConfig) {
    if let Freshness::Earlier(why) = &had.freshness {
        tracing::warn!(
            "cannot read the log list {}: {why}; using the last good copy ({})",
            settings.source,
            had.list.describe()
        );
    }
}

impl From<FetchError> for LogListError {
    fn from(error: FetchError) -> Self {
        LogListError::Unavailable { error: error.to_string(), copy: "none".into() }
    }
}

/// Detached signatures of a list: RSA PKCS #1 v1.5 or ECDSA P-256 (DER), with
/// SHA-256, by a key given as PEM or base64 DER SubjectPublicKeyInfo.
pub mod signature {
    use base64::Engine;
    use spki::{DecodePublicKey, SubjectPublicKeyInfoRef};

    const RSA: &str = "1.2.840.113549.1.1.1";
    const EC: &str = "1.2.840.10045.2.1";

    /// Checks `signature` (raw, or base64 of it) over `message` with `key`.
    pub fn verify(key: &str, message: &[u8], signature: &[u8]) -> Result<(), String> {
        let der = key_der(key)?;
        let info = SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|e| format!("log_list_key: {e}"))?;
        let public = info.subject_public_key.raw_bytes();
        let algorithm: &dyn ring::signature::VerificationAlgorithm = match info.algorithm.oid.to_string().as_str() {
            RSA => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            EC => &ring::signature::ECDSA_P256_SHA256_ASN1,
            other => return Err(format!("log_list_key: a key of algorithm {other} is neither RSA nor ECDSA")),
        };
        let raw = decode_signature(signature);
        ring::signature::UnparsedPublicKey::new(algorithm, public)
            .verify(message, &raw)
            .map_err(|_| "it was not made by log_list_key over these bytes".to_string())
    }

    fn key_der(key: &str) -> Result<Vec<u8>, String> {
        let key = key.trim();
        if key.starts_with("-----BEGIN") {
            let doc = spki::Document::from_public_key_pem(key).map_err(|e| format!("log_list_key: {e}"))?;
            return Ok(doc.as_bytes().to_vec());
        }
        base64::engine::general_purpose::STANDARD
            .decode(key.split_whitespace().collect::<String>())
            .map_err(|e| format!("log_list_key: neither PEM nor base64 DER: {e}"))
    }

    /// Signatures are published raw; a base64 text of one is accepted too.
    fn decode_signature(bytes: &[u8]) -> Vec<u8> {
        let text: String = String::from_utf8_lossy(bytes).split_whitespace().collect();
        match base64::engine::general_purpose::STANDARD.decode(&text) {
            Ok(decoded) if !text.is_empty() && text.is_ascii() => decoded,
            _ => bytes.to_vec(),
        }
    }
}

/// Why the logs of a config's list could not be known.
#[derive(Debug, Error)]
pub enum ExpandError {
    #[error(transparent)]
    List(#[from] LogListError),
    /// The list's logs, with the config's overrides, do not make a config.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// `config` with the logs of its log list, read as [`read`] does (the copy
/// kept in `store`, when there is one); `None` for a config without a list.
pub fn expand(config: &Config, store: Option<&Store>) -> Result<Option<(Config, LogList)>, ExpandError> {
    let Some(settings) = &config.log_list else { return Ok(None) };
    let policy = RetryPolicy::with_budgets(config.retry_budget, config.unreachable_budget).capped_by_env();
    let had = read(settings, store, config.contact.as_deref(), policy)?;
    warn_if_earlier(&had, settings);
    let expanded = config.with_log_list(&had.list)?;
    tracing::debug!(
        "log list {} ({}): {} logs selected, {} left out",
        settings.source,
        had.list.describe(),
        expanded.logs.len(),
        expanded.left_out.len()
    );
    Ok(Some((expanded, had.list)))
}
