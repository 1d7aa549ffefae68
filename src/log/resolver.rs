//! Host names looked up once in a while, not once per request.
//!
//! ureq looks a URL's host up before it looks in its pool for an open
//! connection, so every request would pay a name lookup even on a kept-alive
//! connection. And because every agent of helio bounds its requests in time
//! ([`super::http::Bounds`]), ureq's own resolver runs each lookup on a thread
//! of its own, to give up on it in time: a new thread per tile, about 8,000 a
//! range. [`CachingResolver`] keeps each `host:port`'s addresses for
//! [`TTL`] (a log's name moving to new addresses is noticed within that), asks
//! ureq's resolver (with its time limit) only on a miss, and never caches a
//! failure, so a retry looks the name up again. An IP address is used as it
//! is, with no lookup. Every agent of the process shares one cache
//! ([`SharedResolver`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a host's addresses are kept.
pub const TTL: Duration = Duration::from_secs(30);

/// ureq's resolver behind a cache of `host:port` → addresses.
#[derive(Debug)]
pub struct CachingResolver {
    inner: DefaultResolver,
    ttl: Duration,
    cache: Mutex<HashMap<String, Entry>>,
    lookups: AtomicU64,
}

/// A host's addresses, when they were looked up, and how many times they
/// have been.
#[derive(Debug)]
struct Entry {
    at: Instant,
    addrs: ResolvedSocketAddrs,
    lookups: u64,
}

/// The cache of the process, which every agent helio makes resolves through.
static SHARED: LazyLock<CachingResolver> = LazyLock::new(CachingResolver::default);

/// A handle on the process's cache, for `ureq::Agent::with_parts`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SharedResolver;

impl SharedResolver {
    /// How many times `host:port` (lower-case) has been looked up.
    pub fn lookups_of(host_port: &str) -> u64 {
        SHARED.lookups_of(host_port)
    }
}

impl Resolver for SharedResolver {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        SHARED.resolve(uri, config, timeout)
    }
}

impl Default for CachingResolver {
    fn default() -> CachingResolver {
        CachingResolver::with_ttl(TTL)
    }
}

impl CachingResolver {
    pub fn with_ttl(ttl: Duration) -> CachingResolver {
        CachingResolver {
            inner: DefaultResolver::default(),
            ttl,
            cache: Mutex::new(HashMap::new()),
            lookups: AtomicU64::new(0),
        }
    }

    /// The names looked up so far (cache misses).
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// How many times `host:port` (lower-case) has been looked up.
    pub fn lookups_of(&self, host_port: &str) -> u64 {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(host_port).map_or(0, |entry| entry.lookups)
    }

    fn cached(&self, key: &str, now: Instant) -> Option<ResolvedSocketAddrs> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = cache.get(key)?;
        (now.saturating_duration_since(entry.at) < self.ttl).then(|| entry.addrs.clone())
    }
}

impl Resolver for CachingResolver {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = uri.scheme().zip(uri.authority()).and_then(|(scheme, authority)| {
            DefaultResolver::host_and_port(scheme, authority).map(|key| key.to_ascii_lowercase())
        });
        let Some(key) = key else {
            // Not a full URL: ureq's resolver says so in its own words.
            return self.inner.resolve(uri, config, timeout);
        };
        if let Ok(address) = key.parse::<SocketAddr>() {
            let mut addrs = self.empty();
            addrs.push(address);
            return Ok(addrs);
        }
        if let Some(addrs) = self.cached(&key, Instant::now()) {
            return Ok(addrs);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let addrs = self.inner.resolve(uri, config, timeout)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let lookups = cache.get(&key).map_or(0, |entry| entry.lookups) + 1;
        cache.insert(key, Entry { at: Instant::now(), addrs: addrs.clone(), lookups });
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::transport::time::Duration as UreqDuration;

    fn resolve(resolver: &CachingResolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().unwrap();
        let timeout = NextTimeout {
            after: UreqDuration::from_secs(5),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        resolver.resolve(&uri, &Config::default(), timeout).map(|addrs| addrs.to_vec())
    }

    #[test]
    fn an_address_is_used_as_it_is() {
        let resolver = CachingResolver::default();
        assert_eq!(resolve(&resolver, "http://127.0.0.1:8080/x").unwrap(), ["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(resolve(&resolver, "https://[::1]/x").unwrap(), ["[::1]:443".parse().unwrap()]);
        assert_eq!(resolver.lookups(), 0);
    }

    #[test]
    fn a_name_is_looked_up_once_while_it_is_fresh() {
        let resolver = CachingResolver::default();
        let first = resolve(&resolver, "http://localhost:8080/a").unwrap();
        assert!(first.iter().all(|address| address.ip().is_loopback() && address.port() == 8080), "{first:?}");
        for _ in 0..10 {
            assert_eq!(resolve(&resolver, "http://LOCALHOST:8080/b").unwrap().len(), first.len());
        }
        assert_eq!(resolver.lookups(), 1);
        // Another port is another key.
        resolve(&resolver, "http://localhost:8081/").unwrap();
        assert_eq!(resolver.lookups(), 2);
        assert_eq!(resolver.lookups_of("localhost:8080"), 1);
    }

    #[test]
    fn a_stale_name_is_looked_up_again_and_a_failure_is_not_kept() {
        let resolver = CachingResolver::with_ttl(Duration::ZERO);
        resolve(&resolver, "http://localhost/").unwrap();
        resolve(&resolver, "http://localhost/").unwrap();
        assert_eq!(resolver.lookups(), 2);
        let resolver = CachingResolver::default();
        assert!(resolve(&resolver, "http://no-such-host.invalid/").is_err());
        assert!(resolve(&resolver, "http://no-such-host.invalid/").is_err());
        assert_eq!(resolver.lookups(), 2);
    }
}
