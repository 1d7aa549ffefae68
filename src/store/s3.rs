//! The site in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO,
//! Backblaze B2), through the `object_store` crate: it signs requests
//! (SigV4) and retries, helio never does either by hand. The build is
//! synchronous, so the store owns a small tokio runtime (one worker thread,
//! which also renews leases) and waits on each request.
//!
//! Configuration is the standard AWS environment: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or
//! `AWS_DEFAULT_REGION`, default `us-east-1`) and, for anything but AWS,
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`). Requests are path-style
//! (`ENDPOINT/BUCKET/KEY`), which every S3 look-alike understands; a plain
//! `http://` endpoint (a MinIO on the same host) needs no further setting.
//!
//! Skipping unchanged bytes must not cost a request per file: the first
//! write into a folder lists it once (keys, sizes, ETags), and an object
//! whose ETag is the MD5 of the new bytes — what S3 and its look-alikes
//! report for an object written in one PUT — is left alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use md5::{Digest, Md5};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
    RetryConfig,
};

use super::lease::Lease;
pub use super::problem::S3Problem;
use super::{Listed, LockScope, ObjectKind, S3Url, StoreError, folder_of};
use crate::log::source::RetryPolicy;

/// One listed object, as the bucket reported it.
#[derive(Clone, Debug)]
struct Remote {
    size: u64,
    e_tag: Option<String>,
    modified: Option<SystemTime>,
}

pub struct S3Store {
    url: S3Url,
    /// For messages: the endpoint requests go to.
    endpoint: String,
    client: Arc<AmazonS3>,
    runtime: Arc<tokio::runtime::Runtime>,
    /// Folder (`""`, `"demo/"`) → name → what the bucket holds, from one
    /// LIST per folder and kept up to date by this store's own writes.
    listings: Mutex<HashMap<String, HashMap<String, Remote>>>,
}

/// How to reach the bucket. [`S3Settings::from_env`] reads the standard
/// AWS variables; tests fill it in by hand.
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    /// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` or `AWS_ENDPOINT`; AWS itself when unset.
    pub endpoint: Option<String>,
    /// `AWS_REGION` or `AWS_DEFAULT_REGION`; `us-east-1` when unset.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// How long one request is retried (the unreachable-host budget of
    /// the log fetches, which `HELIO_RETRY_BUDGET` caps).
    pub retry_budget: Duration,
    /// Also take whatever else of the AWS environment `object_store` knows
    /// (web identity tokens, container credentials, `AWS_ALLOW_HTTP`, …).
    pub inherit_env: bool,
}

/// An S3 endpoint: an http(s) URL with a host and a valid port, nothing
/// after its path.
fn check_endpoint(text: &str) -> Result<(), String> {
    let shown = crate::environment::escaped(text);
    let bad = |why: String| format!("AWS_ENDPOINT_URL {shown:?} {why}");
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("holds whitespace or a control character".into()));
    }
    let url = url::Url::parse(text).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("is not an http:// or https:// URL with a host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must be a plain endpoint, without credentials, query or fragment".into()));
    }
    Ok(())
}

/// Where credentials can come from besides the environment's keys: a web
/// identity token (as GitHub's OIDC gives a workflow), a container's
/// credentials endpoint, or the instance metadata service (IMDS). Without
/// keys, a token or a container endpoint, object_store asks the instance
/// metadata service, and a machine that is not a cloud instance answers that
/// with a timeout or an unrelated 403 much later: this asks it first, once
/// and briefly, as the AWS CLI does, and says what was looked for.
fn no_credentials(settings: &S3Settings) -> Option<String> {
    let set = |name: &str| settings.inherit_env && env_first(&[name]).is_some();
    let keys = settings.access_key_id.is_some() && settings.secret_access_key.is_some();
    if keys
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        return None;
    }
    if settings.inherit_env && env_first(&["AWS_EC2_METADATA_DISABLED"]).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Some(no_credentials_message("the instance metadata service is disabled (AWS_EC2_METADATA_DISABLED)"));
    }
    let endpoint = settings
        .inherit_env
        .then(|| env_first(&["AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_METADATA_ENDPOINT"]))
        .flatten()
        .unwrap_or_else(|| IMDS_ENDPOINT.to_string());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(1)))
        .http_status_as_error(false)
        .build()
        .into();
    // IMDSv2's session token, which every instance answers at once.
    let url = format!("{}/latest/api/token", endpoint.trim_end_matches('/'));
    let answer = agent.put(&url).header("X-aws-ec2-metadata-token-ttl-seconds", "60").send_empty();
    match answer {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(no_credentials_message(&format!("{url} answered HTTP {}", response.status().as_u16()))),
        Err(error) => Some(no_credentials_message(&format!("{url}: {error}"))),
    }
}

/// The instance metadata service every AWS instance has.
const IMDS_ENDPOINT: &str = "http://169.254.169.254";

fn no_credentials_message(metadata: &str) -> String {
    format!(
        "no AWS credentials: looked for AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a web identity token \
         (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN), container credentials \
         (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI) and the instance metadata service ({metadata})"
    )
}

/// The first non-empty variable of `names`.
fn env_first(names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| std::env::var(name).ok().filter(|value| !value.trim().is_empty()))
}

impl S3Settings {
    pub fn from_env() -> S3Settings {
        S3Settings {
            endpoint: env_first(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
            region: env_first(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            access_key_id: env_first(&["AWS_ACCESS_KEY_ID"]),
            secret_access_key: env_first(&["AWS_SECRET_ACCESS_KEY"]),
            session_token: env_first(&["AWS_SESSION_TOKEN"]),
            retry_budget: RetryPolicy::from_env().unreachable_budget,
            inherit_env: true,
        }
    }

    /// Checks every setting before a client is made from them, so that a
    /// malformed one is a setup error naming the variable (exit status 2),
    /// never a panic inside the client: an endpoint must be an http(s) URL
    /// with a valid port; a region a plain name; credentials free of
    /// whitespace and control characters (a secret pasted with its newline).
    /// Values of credentials are never printed.
    pub fn check(&self) -> Result<(), String> {
        if let Some(endpoint) = &self.endpoint {
            check_endpoint(endpoint)?;
        }
        if let Some(region) = &self.region
            && !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "AWS_REGION {:?} is not a region name such as us-east-1 or auto",
                crate::environment::escaped(region)
            ));
        }
        for (name, value) in [
            ("AWS_ACCESS_KEY_ID", &self.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
            ("AWS_SESSION_TOKEN", &self.session_token),
        ] {
            if value.as_deref().is_some_and(|value| value.chars().any(|c| c.is_whitespace() || c.is_control())) {
                return Err(format!(
                    "{name} holds whitespace or a control character (a secret pasted with its newline?)"
                ));
            }
        }
        Ok(())
    }

    fn region(&self) -> String {
        self.region.clone().unwrap_or_else(|| "us-east-1".into())
    }

    /// The endpoint requests go to, for messages.
    pub fn endpoint(&self) -> String {
        let endpoint = self.endpoint.clone().unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region()));
        crate::environment::escaped(&endpoint)
    }
}

impl S3Store {
    /// Connects to the bucket and lists the site's root once, so that a
    /// problem with the credentials, the bucket or the endpoint shows now.
    pub fn open(url: &S3Url, settings: &S3Settings) -> Result<S3Store, StoreError> {
        // One TLS implementation for the whole binary: rustls with ring, as
        // ureq uses. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = settings.endpoint();
        let setup = |message: String| StoreError::S3 {
            what: format!("{url} at {endpoint}"),
            problem: S3Problem::Setup { message },
        };

        settings.check().map_err(setup)?;
        let allow_http = endpoint.starts_with("http://")
            || (settings.inherit_env && std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v.eq_ignore_ascii_case("true")));
        let mut options = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(60));
        if let Ok(value) = crate::log::source::user_agent(None).parse() {
            options = options.with_user_agent(value);
        }
        let retry =
            RetryConfig { backoff: BackoffConfig::default(), max_retries: 4, retry_timeout: settings.retry_budget };
        // What AmazonS3Builder::from_env does, minus empty variables: a CI
        // workflow sets `AWS_ENDPOINT_URL: ${{ vars.X }}` to "" when unset,
        // which must mean "no endpoint", not an endpoint of "".
        let mut builder = AmazonS3Builder::new();
        if settings.inherit_env {
            let variables =
                std::env::vars_os().filter_map(|(n, v)| Some((n.into_string().ok()?, v.into_string().ok()?)));
            for (name, value) in variables {
                if name.starts_with("AWS_")
                    && !value.trim().is_empty()
                    && let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
                {
                    // What ends up in a header or a URL must be one clean line.
                    if value.chars().any(char::is_control) {
                        return Err(setup(format!(
                            "{name} holds a control character (a value pasted with its newline?)"
                        )));
                    }
                    builder = builder.with_config(key, value);
                }
            }
        }
        builder = builder
            .with_bucket_name(&url.bucket)
            .with_region(settings.region())
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token);
        }
        if let Some(why) = no_credentials(settings) {
            return Err(setup(why));
        }
        let client = builder.build().map_err(|e| setup(crate::error_chain::one_line(&e)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("helio-s3")
            .enable_all()
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let store = S3Store {
            url: url.clone(),
            endpoint,
            client: Arc::new(client),
            runtime: Arc::new(runtime),
            listings: Mutex::new(HashMap::new()),
        };
        store.ensure_listed("")?;
        Ok(store)
    }

    /// `s3://bucket/prefix/key`.
    pub fn describe(&self, key: &str) -> String {
        if key.is_empty() { self.url.to_string() } else { format!("{}/{key}", self.url) }
    }

    fn fail(&self, key: &str, error: &object_store::Error) -> StoreError {
        StoreError::S3 { what: format!("{} at {}", self.describe(key), self.endpoint), problem: S3Problem::of(error) }
    }

    /// The object path of a site key (or folder, without its `/`).
    fn path(&self, key: &str) -> Result<ObjectPath, StoreError> {
        let full = match (self.url.prefix.as_str(), key) {
            ("", key) => key.to_string(),
            (prefix, "") => prefix.to_string(),
            (prefix, key) => format!("{prefix}/{key}"),
        };
        ObjectPath::parse(&full).map_err(|_| StoreError::BadKey { key: key.to_string() })
    }

    fn block<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    fn listings(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Remote>>> {
        self.listings.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lists `folder` unless it already is. Later writes keep the listing
    /// in step ([`S3Store::remember`]).
    fn ensure_listed(&self, folder: &str) -> Result<(), StoreError> {
        if self.listings().contains_key(folder) {
            return Ok(());
        }
        self.list_now(folder)
    }

    /// Lists `folder` (one LIST per thousand objects) and remembers it.
    fn list_now(&self, folder: &str) -> Result<(), StoreError> {
        let prefix = self.path(folder.trim_end_matches('/'))?;
        let prefix = if prefix.as_ref().is_empty() { None } else { Some(&prefix) };
        let result = self
            .block(self.client.list_with_delimiter(prefix))
            .map_err(|e| self.fail(folder.trim_end_matches('/'), &e))?;
        let mut listing = HashMap::new();
        for object in result.objects {
            let Some(name) = object.location.filename() else { continue };
            let remote = Remote {
                size: object.size,
                e_tag: object.e_tag,
                modified: Some(SystemTime::from(object.last_modified)),
            };
            listing.insert(name.to_string(), remote);
        }
        self.listings().insert(folder.to_string(), listing);
        Ok(())
    }

    /// What the bucket holds at `key`, from its folder's listing.
    fn listed(&self, key: &str) -> Result<Option<Remote>, StoreError> {
        let folder = folder_of(key);
        self.ensure_listed(folder)?;
        Ok(self.listings().get(folder).and_then(|listing| listing.get(&key[folder.len()..]).cloned()))
    }

    /// Records what this store just wrote or deleted, if the folder is listed.
    fn remember(&self, key: &str, remote: Option<Remote>) {
        let folder = folder_of(key);
        let name = &key[folder.len()..];
        if let Some(listing) = self.listings().get_mut(folder) {
            match remote {
                Some(remote) => listing.insert(name.to_string(), remote),
                None => listing.remove(name),
            };
        }
    }

    /// Forgets a folder's listing, so that the next use lists it again (after
    /// taking its lock, when another build may have written it).
    pub(super) fn forget(&self, folder: &str) {
        self.listings().remove(folder);
    }

    /// At most the kind's size ([`ObjectKind::max_size`]): a larger object
    /// is refused on its length, and a body that runs past it is cut off.
    pub fn read(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        use futures_util::StreamExt;
        let path = self.path(key)?;
        let max = ObjectKind::of(key).max_size;
        let result = self.block(async {
            let got = self.client.get(&path).await?;
            if got.meta.size > max {
                return Ok(None);
            }
            let mut body = Vec::with_capacity(got.meta.size as usize);
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if (body.len() + chunk.len()) as u64 > max {
                    return Ok(None);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(Bytes::from(body)))
        });
        match result {
            Ok(Some(bytes)) => Ok(Some(bytes)),
            Ok(None) => Err(StoreError::TooLarge { what: format!("{} at {}", self.describe(key), self.endpoint), max }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(key, &e)),
        }
    }

    pub fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let kind = ObjectKind::of(key);
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, kind.content_type.into());
        attributes.insert(Attribute::CacheControl, kind.cache_control.into());
        let options = PutOptions { attributes, ..PutOptions::default() };
        let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
        let result = self.block(self.client.put_opts(&path, payload, options)).map_err(|e| self.fail(key, &e))?;
        let e_tag = result.e_tag.or_else(|| Some(format!("\"{}\"", md5_hex(bytes))));
        // The bucket's clock sets the time, which the next listing reports:
        // unknown until then ([`S3Store::stat`] lists again to learn it).
        self.remember(key, Some(Remote { size: bytes.len() as u64, e_tag, modified: None }));
        Ok(())
    }

    pub fn unchanged(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        let Some(remote) = self.listed(key)?.filter(|remote| remote.size == bytes.len() as u64) else {
            return Ok(false);
        };
        Ok(match remote.e_tag.as_deref().and_then(plain_md5) {
            Some(md5) => md5.eq_ignore_ascii_case(&md5_hex(bytes)),
            // An ETag that is not an MD5 (a multipart upload, SSE-KMS):
            // compare the bytes themselves.
            None => self.read(key)?.is_some_and(|stored| stored == bytes),
        })
    }

    pub fn stat(&self, key: &str) -> Result<Option<Listed>, StoreError> {
        let mut remote = self.listed(key)?;
        if remote.as_ref().is_some_and(|remote| remote.modified.is_none()) {
            // Written by this store: its time is the bucket's, known from a listing.
            self.list_now(folder_of(key))?;
            remote = self.listed(key)?;
        }
        Ok(remote.map(|remote| Listed { key: key.to_string(), size: remote.size, modified: remote.modified }))
    }

    /// `folder` is `""` or ends in `/`. Directly in it: one listing with a
    /// delimiter, remembered for [`S3Store::unchanged`]; with `recursive`,
    /// every key below it, in one listing without a delimiter.
    pub fn list(&self, folder: &str, recursive: bool) -> Result<Vec<Listed>, StoreError> {
        if recursive {
            return self.list_tree(folder);
        }
        self.list_now(folder)?;
        let listings = self.listings();
        Ok(listings
            .get(folder)
            .into_iter()
            .flatten()
            .map(|(name, remote)| Listed {
                key: format!("{folder}{name}"),
                size: remote.size,
                modified: remote.modified,
            })
            .collect())
    }

    fn list_tree(&self, folder: &str) -> Result<Vec<Listed>, StoreError> {
        use futures_util::TryStreamExt;
        let prefix = self.path(folder.trim_end_matches('/'))?;
        let prefix = if prefix.as_ref().is_empty() { None } else { Some(&prefix) };
        let objects: Vec<object_store::ObjectMeta> = self
            .block(self.client.list(prefix).try_collect())
            .map_err(|e| self.fail(folder.trim_end_matches('/'), &e))?;
        let site = if self.url.prefix.is_empty() { String::new() } else { format!("{}/", self.url.prefix) };
        Ok(objects
            .into_iter()
            .filter_map(|object| {
                let key = object.location.as_ref().strip_prefix(&site)?.to_string();
                Some(Listed { key, size: object.size, modified: Some(SystemTime::from(object.last_modified)) })
            })
            .collect())
    }

    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match self.block(self.client.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                self.remember(key, None);
                Ok(())
            }
            Err(e) => Err(self.fail(key, &e)),
        }
    }

    pub fn lease(&self, scope: &LockScope, ttl: Duration) -> Result<Lease, StoreError> {
        let folder = scope.folder();
        let key = format!("{folder}{}", super::LOCK_NAME);
        let path = self.path(&key)?;
        let name = format!("{} at {}", self.describe(&key), self.endpoint);
        let lease = Lease::acquire(Arc::clone(&self.client), Arc::clone(&self.runtime), path, name, ttl).map_err(
            |e| match e {
                super::lease::AcquireError::Store(e) => self.fail(&key, &e),
                super::lease::AcquireError::Held(held) => held,
            },
        )?;
        // Another build may have written this folder until now.
        self.forget(&folder);
        Ok(lease)
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// The MD5 an ETag carries, if it is one (`"<32 hex>"`).
fn plain_md5(e_tag: &str) -> Option<&str> {
    let inner = e_tag.trim_start_matches("W/").trim_matches('"');
    (inner.len() == 32 && inner.bytes().all(|b| b.is_ascii_hexdigit())).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_that_are_md5s() {
        assert_eq!(md5_hex(b"1"), "c4ca4238a0b923820dcc509a6f75849b");
        assert_eq!(plain_md5("\"c4ca4238a0b923820dcc509a6f75849b\""), Some("c4ca4238a0b923820dcc509a6f75849b"));
        assert_eq!(plain_md5("\"c4ca4238a0b923820dcc509a6f75849b-2\""), None);
        assert_eq!(plain_md5("\"abc\""), None);
    }
}
