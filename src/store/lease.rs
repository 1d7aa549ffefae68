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
//!
//! A lease is input from whoever can write the bucket. One whose expiry
//! lies further ahead than any build would write ([`CLOCK_SLACK`] past a
//! lifetime; a lease "until the year 10000") is garbage: it is honoured for
//! one lifetime from when the bucket says it was written, then taken over
//! with a warning, like an expired one. So is a lease helio cannot read.
//! Its holder's name is printed with control characters escaped.

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
use crate::clock::rfc3339;
use crate::environment::escaped;

/// How far ahead of a lifetime a lease's expiry may be and still be
/// believed: clocks of runners kept by NTP differ by far less.
pub const CLOCK_SLACK: Duration = Duration::from_secs(3600);
/// The largest lease object read: helio writes some 100 bytes.
const MAX_LEASE: u64 = 64 << 10;

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
                let written = u64::try_from(got.meta.last_modified.timestamp()).unwrap_or(0);
                let body = if got.meta.size > MAX_LEASE { Bytes::new() } else { got.bytes().await? };
                Ok::<_, object_store::Error>((body, version, written))
            });
            let (body, version, written) = match current {
                Ok(current) => current,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let record: Option<LeaseRecord> = serde_json::from_slice(&body).ok();
            let found = Found::judge(record.as_ref(), written, unix_now(), ttl);
            if let Found::Held { until } | Found::Garbage { until: Some(until) } = found {
                let holder = record.as_ref().map_or_else(|| "an unreadable lease".into(), |r| escaped(&r.holder));
                if let Found::Garbage { .. } = found {
                    tracing::warn!(
                        "{name}: the lease of {holder} is not one helio writes (an expiry too far ahead, or \
                         unreadable): it is honoured until {}, then taken over",
                        rfc3339(until)
                    );
                }
                return Err(AcquireError::Held(StoreError::Leased { lease: name, holder, until: rfc3339(until) }));
            }
            let expires = unix_now() + ttl_secs;
            let taken = runtime.block_on(client.put_opts(
                &path,
                record_payload(&holder, expires),
                put_options(PutMode::Update(version)),
            ));
            match taken {
                Ok(result) => {
                    let previous = record.map_or_else(|| "an unreadable lease".to_string(), |r| escaped(&r.holder));
                    match found {
                        Found::Garbage { .. } => tracing::warn!(
                            "took over {name}: the lease of {previous} was not one helio writes, and older than \
                             a lease's lifetime"
                        ),
                        _ => tracing::warn!("took over {name}: the lease of {previous} had expired"),
                    }
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
            .map_err(|e| StoreError::S3 { what: self.shared.name.clone(), problem: super::problem::S3Problem::of(&e) })
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

/// What a lease found in the bucket means for a build that wants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// Another build's, until then (Unix seconds).
    Held { until: u64 },
    /// Expired: take it over.
    Expired,
    /// Not a lease helio writes: honoured for one lifetime from when it
    /// was written (`until`), then taken over (`None`).
    Garbage { until: Option<u64> },
}

impl Found {
    /// Judges `record`, written (by the bucket's clock) at `written`, at
    /// `now`, for leases of `ttl`; no arithmetic here can overflow.
    fn judge(record: Option<&LeaseRecord>, written: u64, now: u64, ttl: Duration) -> Found {
        let believable = now.saturating_add(ttl.as_secs()).saturating_add(CLOCK_SLACK.as_secs());
        match record {
            Some(record) if record.expires <= now => Found::Expired,
            Some(record) if record.expires <= believable => Found::Held { until: record.expires },
            _ => {
                let until = written.saturating_add(ttl.as_secs());
                Found::Garbage { until: (until > now).then_some(until) }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000;
    const TTL: Duration = Duration::from_secs(120);

    fn record(expires: u64) -> LeaseRecord {
        LeaseRecord { holder: "runner-7".into(), expires }
    }

    #[test]
    fn a_lease_is_held_until_it_expires() {
        assert_eq!(Found::judge(Some(&record(NOW + 100)), NOW - 20, NOW, TTL), Found::Held { until: NOW + 100 });
        assert_eq!(Found::judge(Some(&record(NOW)), NOW - 120, NOW, TTL), Found::Expired);
        assert_eq!(Found::judge(Some(&record(0)), 0, NOW, TTL), Found::Expired);
        // A runner whose clock is ahead by up to the slack is believed.
        let ahead = NOW + 120 + 3600;
        assert_eq!(Found::judge(Some(&record(ahead)), NOW, NOW, TTL), Found::Held { until: ahead });
    }

    #[test]
    fn an_expiry_too_far_ahead_is_honoured_one_lifetime_from_its_writing_then_taken_over() {
        for expires in [NOW + 120 + 3601, 253_402_300_799, 253_402_300_800, u64::MAX] {
            assert_eq!(
                Found::judge(Some(&record(expires)), NOW - 10, NOW, TTL),
                Found::Garbage { until: Some(NOW + 110) },
                "{expires}"
            );
            assert_eq!(Found::judge(Some(&record(expires)), NOW - 120, NOW, TTL), Found::Garbage { until: None });
        }
        assert_eq!(Found::judge(None, NOW - 5, NOW, TTL), Found::Garbage { until: Some(NOW + 115) });
        assert_eq!(Found::judge(None, 0, NOW, TTL), Found::Garbage { until: None });
        assert_eq!(Found::judge(Some(&record(u64::MAX)), u64::MAX, u64::MAX, TTL), Found::Expired);
    }
}
