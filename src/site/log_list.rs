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

pub use crate::layout::LOG_LIST_JSON;

/// Largest list read: the real one is about 100 KB.
const MAX_LIST: usize = 8 << 20;

/// Why the list could not be had.
#[derive(Debug, Error)]
pub enum LogListError {
    #[error("cannot read the log list: {error}; and there is no earlier copy to use instead ({copy})")]
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
    /// The copy to keep in the site (`log-list.json`) for a list read anew:
    /// kept by [`Had::keep`] once the list is known to make a config.
    copy: Option<Vec<u8>>,
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

/// Reads the list `settings` names from its source, asking only for a change
/// when `copy` (the site's `log-list.json`, as read) holds one of it; the
/// copy stands in when the source cannot be read. Nothing is written.
pub fn read(
    settings: &LogListConfig,
    copy: Option<&[u8]>,
    contact: Option<&str>,
    policy: RetryPolicy,
) -> Result<Had, LogListError> {
    let copy = copy.and_then(|bytes| parse_copy(bytes, &settings.written));
    let validators = copy.as_ref().map_or_else(Validators::default, |copy| Validators {
        etag: copy.etag.clone(),
        last_modified: copy.last_modified.clone(),
    });
    let had = copy.is_some();
    match fetch(settings, contact, policy, &validators) {
        Ok(Fetched::Unchanged) => match &copy {
            Some(copy) => match LogList::parse(copy.list.get().as_bytes()) {
                Ok(list) => Ok(Had { list, freshness: Freshness::Unchanged, copy: None }),
                Err(why) => Err(unavailable(format!("the earlier copy does not read: {why}"), had)),
            },
            None => Err(unavailable(format!("{}: answered 304 to an unconditional request", settings.source), had)),
        },
        Ok(Fetched::New { bytes, validators }) => {
            let list = LogList::parse(&bytes).map_err(|why| unavailable(format!("{}: {why}", settings.source), had))?;
            let copy = render_copy(settings, &bytes, validators);
            Ok(Had { list, freshness: Freshness::Fetched, copy })
        }
        Err(why) => match copy.as_ref().map(|copy| LogList::parse(copy.list.get().as_bytes())) {
            Some(Ok(list)) => Ok(Had { list, freshness: Freshness::Earlier(why), copy: None }),
            _ => Err(unavailable(why, had)),
        },
    }
}

impl Had {
    /// Keeps the list read anew as the site's last good copy; a copy that
    /// cannot be written is a warning (the list is used all the same).
    pub fn keep(&self, store: &Store) {
        if let Some(copy) = &self.copy
            && let Err(error) = store.write_if_changed(LOG_LIST_JSON, copy)
        {
            tracing::warn!("cannot keep a copy of the log list: {error}");
        }
    }
}

fn unavailable(error: String, had_copy: bool) -> LogListError {
    let copy = if had_copy { "it does not read" } else { "none in the site" };
    LogListError::Unavailable { error, copy: copy.to_string() }
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

/// The copy, if it is one of this source's list.
fn parse_copy(bytes: &[u8], source: &str) -> Option<Copy> {
    if bytes.len() > MAX_LIST + 4096 {
        return None;
    }
    serde_json::from_slice::<Copy>(bytes).ok().filter(|copy| copy.source == source)
}

/// The site's copy of a list read anew.
fn render_copy(settings: &LogListConfig, bytes: &[u8], validators: Validators) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let list = RawValue::from_string(text.trim().to_string()).ok()?;
    let copy =
        Copy { source: settings.written.clone(), etag: validators.etag, last_modified: validators.last_modified, list };
    let mut bytes = serde_json::to_vec(&copy).ok()?;
    bytes.push(b'\n');
    Some(bytes)
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

/// `config` with the logs of its log list, read as [`read`] does, `copy`
/// being the site's `log-list.json`; `None` for a config without a list.
pub fn expand(config: &Config, copy: Option<&[u8]>) -> Result<Option<(Config, Had)>, ExpandError> {
    let Some(settings) = &config.log_list else { return Ok(None) };
    let policy = RetryPolicy::with_budgets(config.retry_budget, config.unreachable_budget).capped_by_env();
    let had = read(settings, copy, config.contact.as_deref(), policy)?;
    warn_if_earlier(&had, settings);
    let expanded = config.with_log_list(&had.list)?;
    tracing::debug!(
        "log list {} ({}): {} logs selected, {} left out",
        settings.source,
        had.list.describe(),
        expanded.logs.len(),
        expanded.left_out.len()
    );
    Ok(Some((expanded, had)))
}

/// The logs a site knows: those of `config` and its log list, then, as
/// archived, those the site's `logs.json` lists that are no longer among
/// them but have something `published` (docs/log-list.md, "Logs that leave").
/// `list_copy` and `logs_json` are the site's files of those names, as read.
pub fn known(
    config: &Config,
    list_copy: Option<&[u8]>,
    logs_json: Option<&[u8]>,
    published: &dyn Fn(&str) -> bool,
) -> Result<(Config, Option<Had>), ExpandError> {
    let (expanded, had) = match expand(config, list_copy)? {
        Some((expanded, had)) => (expanded, Some(had)),
        None => (config.with_log_list(&LogList::default())?, None),
    };
    let Some(logs_json) = logs_json else { return Ok((expanded, had)) };
    let mut archived = Vec::new();
    for (name, log_url) in super::logs_json::names(logs_json) {
        if expanded.logs.iter().any(|log| log.name == name) || !published(&name) {
            continue;
        }
        let reason = match (expanded.left_out.iter().find(|(left, _)| *left == name), &had) {
            (Some((_, why)), _) => format!("left out of the log list's selection: {why}"),
            (None, Some(_)) => "no longer in the CT log list".to_string(),
            (None, None) => "no longer in the config".to_string(),
        };
        archived.push((name, log_url, reason));
    }
    Ok((expanded.with_archived(archived), had))
}
