//! How many connections the server holds, from whom, and for how long.
//!
//! Every accepted connection must be admitted: at most
//! [`Limits::max_connections`] in all and [`Limits::max_per_client`] from one
//! client, where a client is an IPv4 address or an IPv6 /64 (one host's
//! usual allocation, so that rotating through its addresses gains nothing).
//! A connection beyond its client's limit gets a best-effort 503 and is
//! closed at once, so it never holds a slot. At the total limit, a new
//! connection takes the slot of an idle one instead: the connection that has
//! waited longest without sending a complete request is closed, else the
//! kept-alive one idle longest; only when every connection is in the middle
//! of a request is the newcomer refused. Idle connections held open from
//! many addresses therefore cannot lock everyone else out for the
//! [`Limits::header_timeout`] it takes to reap them: a connection that has
//! not sent a complete request head within it (its first request, the next
//! one on a kept-alive connection, or a TLS handshake) is closed anyway.
//! One whose client stops reading a response for [`Limits::write_timeout`]
//! is closed as well ([`super::write_timeout`]).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

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
    /// Closed at once: over the per-client limit, or over the total with
    /// every connection busy.
    pub refused: AtomicU64,
    /// Idle connections closed to make room for new ones at the total limit.
    pub evicted: AtomicU64,
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

/// Admits connections within the limits, and knows which are idle.
#[derive(Debug)]
pub struct Admission {
    max_connections: usize,
    max_per_client: usize,
    open: Mutex<Open>,
    stats: Arc<ConnectionStats>,
}

/// The connections open, under one lock.
#[derive(Debug, Default)]
struct Open {
    per_client: HashMap<Client, usize>,
    connections: HashMap<u64, Connection>,
    /// Connections that have not completed a request yet, by when they came.
    fresh: BTreeSet<(Instant, u64)>,
    /// Kept-alive connections between requests, by when they went idle.
    idle: BTreeSet<(Instant, u64)>,
    next_id: u64,
}

#[derive(Debug)]
struct Connection {
    client: Client,
    /// Where it is waiting for a request head: in `fresh` or `idle` since
    /// then, or `None` while a request is under way.
    waiting: Option<(Instant, Waiting)>,
    /// Told when the connection must close to make room.
    evict: Arc<Notify>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    Fresh,
    KeepAlive,
}

impl Open {
    fn set_waiting(&mut self, id: u64, waiting: Option<(Instant, Waiting)>) {
        let Some(connection) = self.connections.get_mut(&id) else { return };
        match connection.waiting {
            Some((since, Waiting::Fresh)) => drop(self.fresh.remove(&(since, id))),
            Some((since, Waiting::KeepAlive)) => drop(self.idle.remove(&(since, id))),
            None => {}
        }
        connection.waiting = waiting;
        match waiting {
            Some((since, Waiting::Fresh)) => drop(self.fresh.insert((since, id))),
            Some((since, Waiting::KeepAlive)) => drop(self.idle.insert((since, id))),
            None => {}
        }
    }

    /// Forgets a connection; returns it if it was still counted.
    fn remove(&mut self, id: u64) -> Option<Connection> {
        self.set_waiting(id, None);
        let connection = self.connections.remove(&id)?;
        if let Some(held) = self.per_client.get_mut(&connection.client) {
            *held -= 1;
            if *held == 0 {
                self.per_client.remove(&connection.client);
            }
        }
        Some(connection)
    }

    /// The connection to close for a newcomer: waiting longest for its first
    /// request, else idle longest between requests.
    fn victim(&self) -> Option<u64> {
        self.fresh.first().or_else(|| self.idle.first()).map(|&(_, id)| id)
    }
}

impl Admission {
    pub fn new(limits: &Limits) -> Arc<Admission> {
        Arc::new(Admission {
            max_connections: limits.max_connections,
            max_per_client: limits.max_per_client,
            open: Mutex::new(Open::default()),
            stats: Arc::new(ConnectionStats::default()),
        })
    }

    pub fn stats(&self) -> Arc<ConnectionStats> {
        Arc::clone(&self.stats)
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        // Each change is made in one step: a panic elsewhere cannot leave
        // the books half-changed.
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection from `ip`, held until the connection closes;
    /// `None` when its client is at its limit, or the server is and no
    /// connection is idle. At the server's limit an idle connection is told
    /// to close ([`Slot::evicted`]) and its slot given to this one.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let client = Client::of(ip);
        let mut open = self.open();
        let held = open.per_client.get(&client).copied().unwrap_or(0);
        if held >= self.max_per_client {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if open.connections.len() >= self.max_connections {
            let evicted = open.victim().and_then(|id| open.remove(id));
            let Some(evicted) = evicted else {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            evicted.evict.notify_one();
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
            self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = open.next_id;
        open.next_id += 1;
        *open.per_client.entry(client).or_insert(0) += 1;
        let evict = Arc::new(Notify::new());
        let now = Instant::now();
        open.connections
            .insert(id, Connection { client, waiting: Some((now, Waiting::Fresh)), evict: Arc::clone(&evict) });
        open.fresh.insert((now, id));
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Slot { admission: Arc::clone(self), id, evict })
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    id: u64,
    evict: Arc<Notify>,
}

impl Slot {
    /// Resolves once the connection is to close to make room for another.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// What the connection's requests report their activity to.
    pub fn tracker(&self) -> Tracker {
        Tracker { admission: Arc::clone(&self.admission), id: self.id }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // An evicted connection's slot was given away already.
        if self.admission.open().remove(self.id).is_some() {
            self.admission.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Reports when a connection's requests start and end.
#[derive(Clone, Debug)]
pub struct Tracker {
    admission: Arc<Admission>,
    id: u64,
}

impl Tracker {
    /// A request head has arrived: the connection is busy, never closed to
    /// make room, until the returned guard (kept with the response body
    /// until it is sent) is dropped; then it is idle, kept alive.
    pub fn request(&self) -> Busy {
        self.admission.open().set_waiting(self.id, None);
        Busy(self.clone())
    }
}

/// A request under way on a connection; see [`Tracker::request`].
#[derive(Debug)]
pub struct Busy(Tracker);

impl Drop for Busy {
    fn drop(&mut self) {
        let Tracker { admission, id } = &self.0;
        admission.open().set_waiting(*id, Some((Instant::now(), Waiting::KeepAlive)));
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
        let a2 = admission.admit(ip("10.0.0.1")).unwrap();
        assert!(admission.admit(ip("10.0.0.1")).is_none(), "the client is at its limit");
        let others: Vec<Slot> =
            ["10.0.0.2", "10.0.0.2", "10.0.0.3"].iter().map(|a| admission.admit(ip(a)).unwrap()).collect();
        // Every connection busy: the server is at its limit.
        let busy: Vec<Busy> = others.iter().chain([&a1, &a2]).map(|slot| slot.tracker().request()).collect();
        assert!(admission.admit(ip("10.0.0.4")).is_none(), "the server is at its limit");
        drop(busy);
        drop(a1);
        assert!(admission.admit(ip("10.0.0.1")).is_some(), "a freed slot is reused");
        drop(others);
        drop(a2);
        let stats = admission.stats();
        assert_eq!(stats.open.load(Ordering::Relaxed), 0);
        assert_eq!(stats.accepted.load(Ordering::Relaxed), 6);
        assert_eq!(stats.refused.load(Ordering::Relaxed), 2);
        assert!(admission.open().per_client.is_empty(), "clients without connections are forgotten");
        assert!(admission.open().connections.is_empty() && admission.open().fresh.is_empty());
    }

    #[tokio::test]
    async fn at_the_limit_the_longest_waiting_fresh_then_idle_connection_makes_room() {
        let limits = Limits { max_connections: 3, max_per_client: 3, ..Limits::default() };
        let admission = Admission::new(&limits);
        let kept_alive = admission.admit(ip("10.0.0.1")).unwrap();
        drop(kept_alive.tracker().request());
        let fresh = admission.admit(ip("10.0.0.2")).unwrap();
        let working = admission.admit(ip("10.0.0.3")).unwrap();
        let request = working.tracker().request();

        // The fresh one goes first, though the kept-alive one is older.
        let newcomer = admission.admit(ip("10.0.0.4")).unwrap();
        tokio::time::timeout(Duration::from_secs(1), fresh.evicted()).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), kept_alive.evicted()).await.is_err());
        // Then the newcomer, which has sent nothing either, before the kept-alive one.
        let second = admission.admit(ip("10.0.0.5")).unwrap();
        tokio::time::timeout(Duration::from_secs(1), newcomer.evicted()).await.unwrap();
        drop(second.tracker().request());
        let third = admission.admit(ip("10.0.0.6")).unwrap();
        tokio::time::timeout(Duration::from_secs(1), kept_alive.evicted()).await.unwrap();
        // A connection in the middle of a request is never closed for another.
        let _busy = (second.tracker().request(), third.tracker().request());
        assert!(admission.admit(ip("10.0.0.7")).is_none());
        assert!(tokio::time::timeout(Duration::from_millis(50), working.evicted()).await.is_err());
        drop(request);

        let stats = admission.stats();
        assert_eq!(stats.evicted.load(Ordering::Relaxed), 3);
        assert_eq!(stats.open.load(Ordering::Relaxed), 3);
        // Dropping evicted slots gives back nothing twice.
        drop((fresh, newcomer, kept_alive));
        assert_eq!(stats.open.load(Ordering::Relaxed), 3);
        drop((working, second, third));
        assert_eq!(stats.open.load(Ordering::Relaxed), 0);
    }
}
