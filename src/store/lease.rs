//! A lock in a bucket, where there is no `flock`: a lease object
//! (`.helio.lock` in the folder it guards) holding who took it and until
//! when. It is created with a conditional put (`If-None-Match: *`), so of two
//! builds starting at once exactly one creates it; the other reads it and
//! reports it held. The holder renews it (`If-Match` on the ETag it last
//! wrote) every third of its lifetime while the build runs, and deletes it
//! at the end. A build that died leaves a lease that expires; the next build
//! replaces it with `If-Match` on the ETag it read, so two builds taking over
//! the same expired lease cannot both succeed.
//!
//! Expiry compares wall clocks of different machines: keep them in sync
//! (NTP); the lifetime ([`super::LEASE_TTL`]) is long against any drift.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::StoreError;
use crate::site::json::rfc3339;

/// What the lease object holds.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseRecord {
    /// Who holds it: host, process and a random tag.
    holder: String,
    /// Unix seconds after which it may be taken over.
    expires: u64,
}

pub enum AcquireError {
    Store(object_store::Error),
    Held(StoreError),
}

impl From<object_store::Error> for AcquireError {
    fn from(error: object_store::Error) -> Self {
        AcquireError::Store(error)
    }
}

struct Shared {
    client: Arc<AmazonS3>,
    path: ObjectPath,
    /// For messages: the object and endpoint.
    name: String,
    holder: String,
    ttl: Duration,
    /// The ETag (and version) of the lease as last written by us.
    version: Mutex<UpdateVersion>,
    /// Unix seconds until which the lease is ours.
    expires: Mutex<u64>,
    lost: AtomicBool,
}

/// A held lease. Dropping it stops the renewal and deletes the object.
pub struct Lease {
    shared: Arc<Shared>,
    runtime: Arc<Runtime>,
    renewal: Option<JoinHandle<()>>,
    released: bool,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into());
    format!("{host} pid {} ({:08x})", std::process::id(), fastrand::u32(..))
}

fn record_payload(holder: &str, expires: u64) -> PutPayload {
    let record = LeaseRecord { holder: holder.to_string(), expires };
    PutPayload::from(Bytes::from(serde_json::to_vec(&record).unwrap_or_default()))
}

fn put_options(mode: PutMode) -> PutOptions {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, "application/json".into());
    attributes.insert(Attribute::CacheControl, "no-store".into());
    PutOptions { mode, attributes, ..PutOptions::default() }
}

impl Lease {
    pub fn acquire(
        client: Arc<AmazonS3>,
        runtime: Arc<Runtime>,
        path: ObjectPath,
        name: String,
        ttl: Duration,
    ) -> Result<Lease, AcquireError> {
        let holder = holder();
        let ttl_secs = ttl.as_secs().max(1);
        // Three rounds cover a lease released, or taken over by a third
        // build, between our create and our read.
        for _ in 0..3 {
            let expires = unix_now() + ttl_secs;
            let created = runtime.block_on(client.put_opts(
                &path,
                record_payload(&holder, expires),
                put_options(PutMode::Create),
            ));
            match created {
                Ok(result) => {
                    return Ok(Lease::start(client, runtime, path, name, holder, ttl, result.into(), expires));
                }
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let current = runtime.block_on(async {
                let got = client.get(&path).await?;
                let version = UpdateVersion { e_tag: got.meta.e_tag.clone(), version: got.meta.version.clone() };
                Ok::<_, object_store::Error>((got.bytes().await?, version))
            });
            let (body, version) = match current {
                Ok(current) => current,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            // An unreadable lease was not written by helio whole; treat it
            // as expired rather than as held for ever.
            let record: Option<LeaseRecord> = serde_json::from_slice(&body).ok();
            if let Some(record) = &record
                && record.expires > unix_now()
            {
                return Err(AcquireError::Held(StoreError::Leased {
                    lease: name,
                    holder: record.holder.clone(),
                    until: rfc3339(record.expires),
                }));
            }
            let expires = unix_now() + ttl_secs;
            let taken = runtime.block_on(client.put_opts(
                &path,
                record_payload(&holder, expires),
                put_options(PutMode::Update(version)),
            ));
            match taken {
                Ok(result) => {
                    let previous = record.map_or_else(|| "an unreadable lease".to_string(), |r| r.holder);
                    tracing::warn!("took over {name}: the lease of {previous} had expired");
                    return Ok(Lease::start(client, runtime, path, name, holder, ttl, result.into(), expires));
                }
                // Another build took it over first: read who, next round.
                Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(AcquireError::Held(StoreError::Leased {
            lease: name,
            holder: "other builds taking turns".into(),
            until: "a moment".into(),
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        client: Arc<AmazonS3>,
        runtime: Arc<Runtime>,
        path: ObjectPath,
        name: String,
        holder: String,
        ttl: Duration,
        version: UpdateVersion,
        expires: u64,
    ) -> Lease {
        let shared = Arc::new(Shared {
            client,
            path,
            name,
            holder,
            ttl,
            version: Mutex::new(version),
            expires: Mutex::new(expires),
            lost: AtomicBool::new(false),
        });
        let renewal = runtime.spawn(renew(Arc::clone(&shared)));
        Lease { shared, runtime, renewal: Some(renewal), released: false }
    }

    /// Fails once the lease may belong to someone else.
    pub fn check(&self) -> Result<(), StoreError> {
        let expired = *lock(&self.shared.expires) <= unix_now();
        if self.shared.lost.load(Ordering::SeqCst) || expired {
            return Err(StoreError::Lost { lease: self.shared.name.clone() });
        }
        Ok(())
    }

    /// Stops renewing and deletes the lease if it is still ours.
    pub fn release(mut self) -> Result<(), StoreError> {
        self.release_now()
            .map_err(|e| StoreError::S3 { what: self.shared.name.clone(), problem: super::s3::S3Problem::of(&e) })
    }

    fn release_now(&mut self) -> Result<(), object_store::Error> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        if self.shared.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        self.runtime.block_on(async move {
            // Delete only our own lease: one taken over after it expired
            // belongs to the build that took it.
            let ours = lock(&shared.version).e_tag.clone();
            match shared.client.head(&shared.path).await {
                Ok(meta) if meta.e_tag == ours => shared.client.delete(&shared.path).await,
                Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Err(error) = self.release_now() {
            tracing::warn!("cannot release {}: {error}; it expires by itself", self.shared.name);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Renews the lease every third of its lifetime until aborted, or until it
/// is found taken over or expired.
async fn renew(shared: Arc<Shared>) {
    let period = (shared.ttl / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(period).await;
        let expires = unix_now() + shared.ttl.as_secs().max(1);
        let version = lock(&shared.version).clone();
        let renewed = shared
            .client
            .put_opts(&shared.path, record_payload(&shared.holder, expires), put_options(PutMode::Update(version)))
            .await;
        match renewed {
            Ok(result) => {
                *lock(&shared.version) = result.into();
                *lock(&shared.expires) = expires;
            }
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                tracing::warn!("{}: the lease was taken over by another build", shared.name);
                shared.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) => {
                // Try again next period; the lease is lost only once it expires.
                tracing::warn!("{}: cannot renew the lease: {error}", shared.name);
                if *lock(&shared.expires) <= unix_now() {
                    shared.lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}
