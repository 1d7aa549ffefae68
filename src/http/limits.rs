//! How many connections the server holds, from whom, and for how long.
//!
//! Every accepted connection must be admitted: at most
//! [`Limits::max_connections`] in all and [`Limits::max_per_client`] from one
//! client, where a client is an IPv4 address or an IPv6 /64 (one host's
//! usual allocation, so that rotating through its addresses gains nothing).
//! A connection beyond either limit gets a best-effort 503 and is closed at
//! once, so it never holds a slot. A connection that has not sent a complete
//! request head within [`Limits::header_timeout`] (its first request, the
//! next one on a kept-alive connection, or a TLS handshake) is closed too:
//! idle connections cannot pile up, and one client cannot take every slot.
//! One whose client stops reading a response for [`Limits::write_timeout`]
//! is closed as well ([`super::write_timeout`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The server's limits. The defaults suit a public WebSeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, from everyone (lowered to what the process's
    /// file descriptor limit allows).
    pub max_connections: usize,
    /// Connections open at once from one client.
    pub max_per_client: usize,
    /// How long a connection may go without a complete request head.
    pub header_timeout: Duration,
    /// How long a response may wait for the client to read any of it.
    pub write_timeout: Duration,
    /// How long shutdown waits for responses under way.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 8192,
            // A BitTorrent client opens one connection per web seed and
            // torrent; this leaves room for many clients behind one NAT.
            max_per_client: 256,
            header_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(30),
        }
    }
}

/// File descriptors kept for everything but client connections: upstream
/// fetches, files being read, the listeners.
const RESERVED_FILES: u64 = 256;

impl Limits {
    /// Raises the process's open-file limit to its hard maximum (as Go's
    /// runtime does), and lowers `max_connections` to what that allows.
    pub fn within_file_limit(self) -> Limits {
        let allowed = raise_file_limit().saturating_sub(RESERVED_FILES).max(16);
        let max_connections = self.max_connections.min(usize::try_from(allowed).unwrap_or(usize::MAX));
        if max_connections < self.max_connections {
            tracing::warn!(
                "at most {max_connections} connections at once: the open-file limit is too low for {} (raise LimitNOFILE)",
                self.max_connections
            );
        }
        Limits { max_connections, ..self }
    }
}

/// The open-file limit, raised as far as allowed.
#[cfg(unix)]
fn raise_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if limit.maximum.is_some_and(|maximum| maximum <= current) {
        return current;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
        Ok(()) => limit.maximum.unwrap_or(u64::MAX),
        Err(_) => current,
    }
}

#[cfg(not(unix))]
fn raise_file_limit() -> u64 {
    u64::MAX
}

/// Connection counters, for statistics.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Closed at once: over the total or the per-client limit.
    pub refused: AtomicU64,
}

/// Who a connection counts against.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Client(u128);

impl Client {
    /// An IPv4 address (also when mapped into IPv6), or an IPv6 /64.
    pub fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::v4(v4),
                // The prefix, with the low bit set: no IPv4 key has it.
                None => Client(u128::from(v6) & !u128::from(u64::MAX) | 1),
            },
        }
    }
}

impl Client {
    fn v4(v4: std::net::Ipv4Addr) -> Client {
        Client(u128::from(u32::from(v4)) << 64)
    }
}

/// Admits connections within the limits.
#[derive(Debug)]
pub struct Admission {
    max_connections: usize,
    max_per_client: usize,
    per_client: Mutex<HashMap<Client, usize>>,
    stats: Arc<ConnectionStats>,
}

impl Admission {
    pub fn new(limits: &Limits) -> Arc<Admission> {
        Arc::new(Admission {
            max_connections: limits.max_connections,
            max_per_client: limits.max_per_client,
            per_client: Mutex::new(HashMap::new()),
            stats: Arc::new(ConnectionStats::default()),
        })
    }

    pub fn stats(&self) -> Arc<ConnectionStats> {
        Arc::clone(&self.stats)
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<Client, usize>> {
        // Counts are updated in one step each: a panic elsewhere cannot
        // leave them half-changed.
        self.per_client.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection from `ip`, held until the connection closes;
    /// `None` when the server or the client is at its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let client = Client::of(ip);
        let mut clients = self.clients();
        let open = self.stats.open.load(Ordering::Relaxed);
        let held = clients.get(&client).copied().unwrap_or(0);
        if open >= self.max_connections as u64 || held >= self.max_per_client {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        clients.insert(client, held + 1);
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Slot { admission: Arc::clone(self), client })
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    client: Client,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut clients = self.admission.clients();
        if let Some(held) = clients.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                clients.remove(&self.client);
            }
        }
        self.admission.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn clients_are_ipv4_addresses_or_ipv6_slash_64s() {
        assert_eq!(Client::of(ip("192.0.2.1")), Client::of(ip("::ffff:192.0.2.1")));
        assert_ne!(Client::of(ip("192.0.2.1")), Client::of(ip("192.0.2.2")));
        assert_eq!(Client::of(ip("2001:db8:1:2::1")), Client::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(Client::of(ip("2001:db8:1:2::1")), Client::of(ip("2001:db8:1:3::1")));
        assert_ne!(Client::of(ip("::1")), Client::of(ip("0.0.0.1")));
    }

    #[test]
    fn per_client_and_total_limits_and_slots_free_on_drop() {
        let limits = Limits { max_connections: 5, max_per_client: 2, ..Limits::default() };
        let admission = Admission::new(&limits);
        let a1 = admission.admit(ip("10.0.0.1")).unwrap();
        let _a2 = admission.admit(ip("10.0.0.1")).unwrap();
        assert!(admission.admit(ip("10.0.0.1")).is_none(), "the client is at its limit");
        let others: Vec<Slot> =
            ["10.0.0.2", "10.0.0.2", "10.0.0.3"].iter().map(|a| admission.admit(ip(a)).unwrap()).collect();
        assert!(admission.admit(ip("10.0.0.4")).is_none(), "the server is at its limit");
        drop(a1);
        assert!(admission.admit(ip("10.0.0.1")).is_some(), "a freed slot is reused");
        drop(others);
        let stats = admission.stats();
        assert_eq!(stats.open.load(Ordering::Relaxed), 1);
        assert_eq!(stats.accepted.load(Ordering::Relaxed), 6);
        assert_eq!(stats.refused.load(Ordering::Relaxed), 2);
        assert_eq!(admission.clients().len(), 1, "clients without connections are forgotten");
    }
}
