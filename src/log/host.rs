//! Politeness per host. Logs on one host (the shards of one operator, say)
//! share its limit of simultaneous requests, whichever log asks: a
//! [`HostGate`] is a counting semaphore held for one HTTP exchange (request
//! and body), never during a backoff or while a tile is being verified.
//!
//! The gate admits requests first come, first served. A build's workers ask
//! for tiles in the order its consumer needs them (`build::ordered`), so the
//! oldest request waiting is the one the consumer is waiting for: letting a
//! later request barge ahead of it when a slot frees would hold the whole
//! window of a log's stream behind one tile. First come, first served is
//! also what keeps logs sharing a host from starving each other.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// `scheme://host:port` of a URL, lower-cased: what one politeness limit covers.
pub fn host_key(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host).to_ascii_lowercase();
    let scheme = scheme.to_ascii_lowercase();
    let has_port = authority.rsplit_once(':').is_some_and(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        && !authority.ends_with(']');
    if has_port {
        format!("{scheme}://{authority}")
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{scheme}://{authority}:{port}")
    }
}

/// At most `limit` requests at once to one host, admitted in the order they asked.
#[derive(Debug)]
pub struct HostGate {
    key: String,
    limit: usize,
    slots: Mutex<Slots>,
    peak: AtomicUsize,
    waiting: Mutex<Waiting>,
}

/// Requests to the host begun and not over yet (retries included), and the
/// last time one of them moved: began while none was out, or an exchange
/// ended.
#[derive(Debug)]
struct Waiting {
    pending: usize,
    moved: Instant,
}

/// A request to the host, from its first attempt to its last.
pub struct Pending<'a> {
    gate: &'a HostGate,
}

/// The slots in use, and the requests waiting for one, oldest first.
#[derive(Debug, Default)]
struct Slots {
    busy: usize,
    waiting: VecDeque<Arc<Waiter>>,
}

/// A request waiting for a slot: its thread, woken once a slot is its own.
#[derive(Debug)]
struct Waiter {
    thread: Thread,
    admitted: AtomicBool,
}

/// Held while a request is in flight.
pub struct HostPermit<'a> {
    gate: &'a HostGate,
}

impl HostGate {
    pub fn new(key: &str, limit: usize) -> HostGate {
        HostGate {
            key: key.to_string(),
            limit: limit.max(1),
            slots: Mutex::new(Slots::default()),
            peak: AtomicUsize::new(0),
            waiting: Mutex::new(Waiting { pending: 0, moved: Instant::now() }),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a request (all its attempts) as out until the guard drops.
    pub fn begin(&self) -> Pending<'_> {
        let mut waiting = self.waiting();
        if waiting.pending == 0 {
            waiting.moved = Instant::now();
        }
        waiting.pending += 1;
        Pending { gate: self }
    }

    /// Whether requests are out and none has moved for `after`: the build
    /// is waiting on this host.
    pub fn stalled(&self, now: Instant, after: Duration) -> bool {
        let waiting = self.waiting();
        waiting.pending > 0 && now.saturating_duration_since(waiting.moved) >= after
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most requests ever in flight at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Waits for a free slot, behind every request that asked before.
    pub fn enter(&self) -> HostPermit<'_> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.busy < self.limit && slots.waiting.is_empty() {
            slots.busy += 1;
            self.peak.fetch_max(slots.busy, Ordering::Relaxed);
            return HostPermit { gate: self };
        }
        let waiter = Arc::new(Waiter { thread: std::thread::current(), admitted: AtomicBool::new(false) });
        slots.waiting.push_back(Arc::clone(&waiter));
        drop(slots);
        // Parking may end early; only the hand-over counts.
        while !waiter.admitted.load(Ordering::Acquire) {
            std::thread::park();
        }
        HostPermit { gate: self }
    }
}

impl Drop for HostPermit<'_> {
    fn drop(&mut self) {
        let mut slots = self.gate.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // The slot goes straight to the oldest waiter, still counted busy,
        // and only that thread is woken: nobody can take it in between, and
        // no other waiter wakes for nothing.
        match slots.waiting.pop_front() {
            Some(next) => {
                drop(slots);
                next.admitted.store(true, Ordering::Release);
                next.thread.unpark();
            }
            None => slots.busy -= 1,
        }
        self.gate.waiting().moved = Instant::now();
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut waiting = self.gate.waiting();
        waiting.pending -= 1;
        waiting.moved = Instant::now();
    }
}

/// The gates of a run, one per host. A host's limit is the smallest
/// `concurrency` of the logs on it: the most polite wish wins.
#[derive(Debug, Default)]
pub struct Hosts {
    gates: BTreeMap<String, Arc<HostGate>>,
}

impl Hosts {
    /// Gates for `(url, concurrency)` pairs.
    pub fn new<'a>(logs: impl IntoIterator<Item = (&'a str, usize)>) -> Hosts {
        let mut limits: BTreeMap<String, usize> = BTreeMap::new();
        for (url, concurrency) in logs {
            let limit = limits.entry(host_key(url)).or_insert(concurrency);
            *limit = (*limit).min(concurrency);
        }
        let gates =
            limits.into_iter().map(|(key, limit)| (key.clone(), Arc::new(HostGate::new(&key, limit)))).collect();
        Hosts { gates }
    }

    /// The gate of the host `url` is on.
    pub fn gate(&self, url: &str) -> Option<Arc<HostGate>> {
        self.gates.get(&host_key(url)).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<HostGate>> {
        self.gates.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn host_keys_are_scheme_host_and_port() {
        assert_eq!(host_key("https://Log.Example/2026h1/"), "https://log.example:443");
        assert_eq!(host_key("http://log.example/a"), "http://log.example:80");
        assert_eq!(host_key("http://127.0.0.1:8080/x/y"), "http://127.0.0.1:8080");
        assert_eq!(host_key("http://[::1]:81/"), "http://[::1]:81");
        assert_eq!(host_key("http://[::1]/"), "http://[::1]:80");
        assert_eq!(host_key("https://user@log.example/"), "https://log.example:443");
    }

    #[test]
    fn logs_on_one_host_share_the_smallest_limit() {
        let hosts =
            Hosts::new([("https://a.example/one/", 8), ("https://a.example/two/", 4), ("https://b.example/", 8)]);
        assert_eq!(hosts.gate("https://a.example/three/").unwrap().limit(), 4);
        assert_eq!(hosts.gate("https://b.example/x").unwrap().limit(), 8);
        assert!(hosts.gate("https://c.example/").is_none());
    }

    #[test]
    fn a_host_stalls_while_a_request_is_out_and_nothing_moves() {
        let gate = HostGate::new("h", 2);
        let later = |secs| Instant::now() + Duration::from_secs(secs);
        assert!(!gate.stalled(later(10), Duration::from_secs(2)), "nothing out");
        let pending = gate.begin();
        assert!(!gate.stalled(Instant::now(), Duration::from_secs(2)));
        assert!(gate.stalled(later(3), Duration::from_secs(2)));
        drop(gate.enter());
        assert!(!gate.stalled(Instant::now() + Duration::from_secs(1), Duration::from_secs(2)), "an answer came");
        drop(pending);
        assert!(!gate.stalled(later(10), Duration::from_secs(2)));
    }

    #[test]
    fn a_freed_slot_goes_to_the_oldest_request_waiting() {
        let gate = Arc::new(HostGate::new("h", 1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = gate.enter();
        let waiting = |count: usize| {
            while gate.slots.lock().unwrap().waiting.len() < count {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (gate, order) = (Arc::clone(&gate), Arc::clone(&order));
                let handle = std::thread::spawn(move || {
                    let _permit = gate.enter();
                    order.lock().unwrap().push(i);
                });
                waiting(i + 1);
                handle
            })
            .collect();
        // The holder lets go and asks again at once: it goes behind the three
        // already waiting, rather than take the slot it just freed.
        drop(held);
        drop(gate.enter());
        order.lock().unwrap().push(3);
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    }

    #[test]
    fn a_gate_never_lets_more_than_its_limit_in() {
        let gate = Arc::new(HostGate::new("h", 3));
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..12)
            .map(|_| {
                let (gate, inside) = (Arc::clone(&gate), Arc::clone(&inside));
                std::thread::spawn(move || {
                    let _permit = gate.enter();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= 3, "{now} inside");
                    std::thread::sleep(Duration::from_millis(5));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(gate.peak(), 3);
    }
}
