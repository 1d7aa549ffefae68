//! What the server has done, for `/statistics` (HTML), `/statistics.json`
//! and `/metrics` (Prometheus text format): per log, requests, bytes served,
//! cache hits and misses, upstream fetches and errors; and the cache's size
//! against its limit. Counters are relaxed atomics, read without locking.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::StatusCode;
use serde::Serialize;

use crate::http::limits::ConnectionStats;
use crate::tile_cache::{CacheStats, TileCache};

/// One log's counters.
#[derive(Debug, Default)]
pub struct LogStats {
    pub name: String,
    pub requests: AtomicU64,
    /// Shared with response bodies, which add what they send.
    pub bytes_served: Arc<AtomicU64>,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub upstream_fetches: AtomicU64,
    pub upstream_not_found: AtomicU64,
    pub upstream_errors: AtomicU64,
}

impl LogStats {
    pub fn new(name: &str) -> LogStats {
        LogStats { name: name.to_string(), ..LogStats::default() }
    }
}

/// The server's counters.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    pub logs: Vec<Arc<LogStats>>,
    /// Requests for anything but a configured log's webseed files.
    pub other_requests: AtomicU64,
    /// Bytes of `/torrents/` files sent.
    pub static_bytes: Arc<AtomicU64>,
    /// Misses refused with 503 because too much was in flight.
    pub overloaded: AtomicU64,
    /// The server's: open, accepted and refused connections.
    pub connections: Arc<ConnectionStats>,
    /// Responses by status class: 1xx … 5xx.
    pub responses: [AtomicU64; 5],
}

impl Stats {
    pub fn new(logs: Vec<Arc<LogStats>>, connections: Arc<ConnectionStats>) -> Stats {
        Stats {
            started: Instant::now(),
            logs,
            other_requests: AtomicU64::new(0),
            static_bytes: Arc::new(AtomicU64::new(0)),
            overloaded: AtomicU64::new(0),
            connections,
            responses: Default::default(),
        }
    }

    pub fn count_status(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, cache: &TileCache) -> Snapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let logs = self
            .logs
            .iter()
            .map(|log| {
                let hits = load(&log.cache_hits);
                let misses = load(&log.cache_misses);
                LogSnapshot {
                    name: log.name.clone(),
                    requests: load(&log.requests),
                    bytes_served: load(&log.bytes_served),
                    cache_hits: hits,
                    cache_misses: misses,
                    hit_rate: if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 },
                    upstream_fetches: load(&log.upstream_fetches),
                    upstream_not_found: load(&log.upstream_not_found),
                    upstream_errors: load(&log.upstream_errors),
                }
            })
            .collect();
        let CacheStats { bytes, limit, entries, held, held_limit, evictions, in_flight, not_found } = cache.stats();
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: self.started.elapsed().as_secs(),
            connections_open: load(&self.connections.open),
            connections_total: load(&self.connections.accepted),
            connections_refused: load(&self.connections.refused),
            connections_evicted: load(&self.connections.evicted),
            other_requests: load(&self.other_requests),
            static_bytes: load(&self.static_bytes),
            overloaded: load(&self.overloaded),
            responses: ResponseCounts {
                informational: load(&self.responses[0]),
                success: load(&self.responses[1]),
                redirection: load(&self.responses[2]),
                client_error: load(&self.responses[3]),
                server_error: load(&self.responses[4]),
            },
            cache: CacheSnapshot {
                bytes,
                limit_bytes: limit,
                entries,
                held_bytes: held,
                held_limit_bytes: held_limit,
                evictions,
                fetches_in_flight: in_flight,
                not_found_entries: not_found,
            },
            logs,
        }
    }
}

/// The counters at one moment, as `/statistics.json` shows them.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub connections_open: u64,
    pub connections_total: u64,
    /// Closed at once: over the per-client limit, or the total one with
    /// every connection busy.
    pub connections_refused: u64,
    /// Idle connections closed to make room for new ones at the total limit.
    pub connections_evicted: u64,
    pub other_requests: u64,
    pub static_bytes: u64,
    pub overloaded: u64,
    pub responses: ResponseCounts,
    pub cache: CacheSnapshot,
    pub logs: Vec<LogSnapshot>,
}

#[derive(Debug, Serialize)]
pub struct ResponseCounts {
    #[serde(rename = "1xx")]
    pub informational: u64,
    #[serde(rename = "2xx")]
    pub success: u64,
    #[serde(rename = "3xx")]
    pub redirection: u64,
    #[serde(rename = "4xx")]
    pub client_error: u64,
    #[serde(rename = "5xx")]
    pub server_error: u64,
}

#[derive(Debug, Serialize)]
pub struct CacheSnapshot {
    /// Bytes of tiles in the cache; never above `limit_bytes`.
    pub bytes: u64,
    pub limit_bytes: u64,
    pub entries: u64,
    /// Tile bytes alive anywhere (cached, being sent, being fetched).
    pub held_bytes: u64,
    /// Past this, new misses get 503.
    pub held_limit_bytes: u64,
    pub evictions: u64,
    pub fetches_in_flight: u64,
    /// Tiles the log recently answered 404 for, answered 404 without asking again.
    pub not_found_entries: u64,
}

#[derive(Debug, Serialize)]
pub struct LogSnapshot {
    pub name: String,
    pub requests: u64,
    pub bytes_served: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub hit_rate: f64,
    pub upstream_fetches: u64,
    pub upstream_not_found: u64,
    pub upstream_errors: u64,
}

impl Snapshot {
    pub fn json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn prometheus(&self) -> Vec<u8> {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, values: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP helio_serve_{name} {help}\n# TYPE helio_serve_{name} {kind}");
            for (labels, value) in values {
                let _ = writeln!(out, "helio_serve_{name}{labels} {value}");
            }
        };
        let per_log = |f: fn(&LogSnapshot) -> u64| -> Vec<(String, u64)> {
            self.logs.iter().map(|log| (format!("{{log=\"{}\"}}", label(&log.name)), f(log))).collect()
        };
        let one = |value: u64| vec![(String::new(), value)];
        metric("requests_total", "counter", "WebSeed requests per log.", &per_log(|l| l.requests));
        metric("bytes_served_total", "counter", "WebSeed body bytes sent per log.", &per_log(|l| l.bytes_served));
        metric("cache_hits_total", "counter", "Tile requests answered from the cache.", &per_log(|l| l.cache_hits));
        metric("cache_misses_total", "counter", "Tile requests not in the cache.", &per_log(|l| l.cache_misses));
        metric("upstream_fetches_total", "counter", "Tile fetches from the log.", &per_log(|l| l.upstream_fetches));
        metric(
            "upstream_not_found_total",
            "counter",
            "Tile fetches the log answered with 404.",
            &per_log(|l| l.upstream_not_found),
        );
        metric("upstream_errors_total", "counter", "Tile fetches that failed.", &per_log(|l| l.upstream_errors));
        let classes = [
            ("1xx", self.responses.informational),
            ("2xx", self.responses.success),
            ("3xx", self.responses.redirection),
            ("4xx", self.responses.client_error),
            ("5xx", self.responses.server_error),
        ];
        let classes: Vec<(String, u64)> =
            classes.iter().map(|(class, n)| (format!("{{class=\"{class}\"}}"), *n)).collect();
        metric("responses_total", "counter", "Responses by status class.", &classes);
        metric("other_requests_total", "counter", "Requests other than WebSeed files.", &one(self.other_requests));
        metric("static_bytes_total", "counter", "Bytes of /torrents/ files sent.", &one(self.static_bytes));
        metric("overloaded_total", "counter", "Tile misses refused with 503.", &one(self.overloaded));
        metric("connections_open", "gauge", "Open client connections.", &one(self.connections_open));
        metric("connections_total", "counter", "Client connections accepted.", &one(self.connections_total));
        metric(
            "connections_refused_total",
            "counter",
            "Connections closed at once, over a connection limit.",
            &one(self.connections_refused),
        );
        metric(
            "connections_evicted_total",
            "counter",
            "Idle connections closed to make room for new ones at the total limit.",
            &one(self.connections_evicted),
        );
        metric("cache_bytes", "gauge", "Bytes of tiles in the cache.", &one(self.cache.bytes));
        metric("cache_limit_bytes", "gauge", "The cache's size limit (cache_mb).", &one(self.cache.limit_bytes));
        metric("cache_entries", "gauge", "Tiles in the cache.", &one(self.cache.entries));
        metric("cache_evictions_total", "counter", "Tiles evicted from the cache.", &one(self.cache.evictions));
        metric("held_bytes", "gauge", "Tile bytes in memory, cached or in transit.", &one(self.cache.held_bytes));
        metric("held_limit_bytes", "gauge", "The tile memory budget.", &one(self.cache.held_limit_bytes));
        metric("fetches_in_flight", "gauge", "Tile fetches under way.", &one(self.cache.fetches_in_flight));
        metric("uptime_seconds", "gauge", "Seconds since the server started.", &one(self.uptime_seconds));
        out.into_bytes()
    }

    /// A small self-contained page, light and dark, every value escaped.
    pub fn html(&self) -> Vec<u8> {
        let mut rows = String::new();
        for log in &self.logs {
            let _ = writeln!(
                rows,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&log.name),
                log.requests,
                bytes(log.bytes_served),
                log.cache_hits,
                log.cache_misses,
                log.hit_rate * 100.0,
                log.upstream_fetches,
                log.upstream_not_found,
                log.upstream_errors
            );
        }
        let cache = &self.cache;
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"color-scheme\" content=\"light dark\">\n<title>helio serve statistics</title>\n\
             <style>body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:64rem;padding:0 1rem}}\
             table{{border-collapse:collapse;width:100%}}th,td{{padding:.3rem .6rem;border-bottom:1px solid #8884;text-align:right}}\
             th[scope=row],thead th:first-child{{text-align:left}}td{{font-variant-numeric:tabular-nums}}</style>\n\
             </head>\n<body>\n<h1>helio serve statistics</h1>\n\
             <p>Version {version}, up {uptime}. {open} open connections, {total} accepted, {refused} refused. \
             <a href=\"statistics.json\">JSON</a> · <a href=\"metrics\">Prometheus</a> · <a href=\"torrents/\">Torrents</a></p>\n\
             <h2>Logs</h2>\n<table>\n<thead><tr><th>Log</th><th>Requests</th><th>Served</th><th>Cache hits</th>\
             <th>Misses</th><th>Hit rate</th><th>Upstream fetches</th><th>Not found</th><th>Errors</th></tr></thead>\n\
             <tbody>\n{rows}</tbody>\n</table>\n<h2>Cache</h2>\n<table>\n<tbody>\n\
             <tr><th scope=\"row\">Tiles cached</th><td>{bytes} of {limit} ({entries} tiles)</td></tr>\n\
             <tr><th scope=\"row\">Tile memory in use</th><td>{held} (limit {held_limit})</td></tr>\n\
             <tr><th scope=\"row\">Evictions</th><td>{evictions}</td></tr>\n\
             <tr><th scope=\"row\">Fetches in flight</th><td>{in_flight}</td></tr>\n\
             <tr><th scope=\"row\">Refused when overloaded</th><td>{overloaded}</td></tr>\n\
             <tr><th scope=\"row\">Other requests</th><td>{other} ({static_bytes} of files)</td></tr>\n\
             </tbody>\n</table>\n</body>\n</html>\n",
            version = escape(self.version),
            uptime = humantime::format_duration(std::time::Duration::from_secs(self.uptime_seconds)),
            open = self.connections_open,
            total = self.connections_total,
            refused = self.connections_refused,
            bytes = bytes(cache.bytes),
            limit = bytes(cache.limit_bytes),
            entries = cache.entries,
            held = bytes(cache.held_bytes),
            held_limit = bytes(cache.held_limit_bytes),
            evictions = cache.evictions,
            in_flight = cache.fetches_in_flight,
            overloaded = self.overloaded,
            other = self.other_requests,
            static_bytes = bytes(self.static_bytes),
        )
        .into_bytes()
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> (Stats, Arc<TileCache>) {
        let log = Arc::new(LogStats::new("a \"log\" & <b>"));
        log.requests.fetch_add(10, Ordering::Relaxed);
        log.cache_hits.fetch_add(3, Ordering::Relaxed);
        log.cache_misses.fetch_add(1, Ordering::Relaxed);
        log.bytes_served.fetch_add(5 << 20, Ordering::Relaxed);
        let cache = TileCache::new(1 << 20, crate::tile_cache::TileMemory::for_cache(1 << 20));
        (Stats::new(vec![log], Arc::new(ConnectionStats::default())), cache)
    }

    #[test]
    fn json_has_per_log_counters_and_the_cache_bound() {
        let (stats, cache) = stats();
        stats.count_status(StatusCode::PARTIAL_CONTENT);
        let json: serde_json::Value = serde_json::from_slice(&stats.snapshot(&cache).json()).unwrap();
        assert_eq!(json["logs"][0]["name"], "a \"log\" & <b>");
        assert_eq!(json["logs"][0]["requests"], 10);
        assert_eq!(json["logs"][0]["hit_rate"], 0.75);
        assert_eq!(json["cache"]["limit_bytes"], 1 << 20);
        assert_eq!(json["cache"]["bytes"], 0);
        assert_eq!(json["responses"]["2xx"], 1);
    }

    #[test]
    fn prometheus_text_escapes_labels() {
        let (stats, cache) = stats();
        let text = String::from_utf8(stats.snapshot(&cache).prometheus()).unwrap();
        assert!(text.contains("# TYPE helio_serve_requests_total counter\n"), "{text}");
        assert!(text.contains("helio_serve_requests_total{log=\"a \\\"log\\\" & <b>\"} 10\n"), "{text}");
        assert!(text.contains("helio_serve_cache_limit_bytes 1048576\n"), "{text}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn html_escapes_names() {
        let (stats, cache) = stats();
        let html = String::from_utf8(stats.snapshot(&cache).html()).unwrap();
        assert!(html.contains("<th scope=\"row\">a &quot;log&quot; &amp; &lt;b&gt;</th>"), "{html}");
        assert!(html.contains("5.0 MiB"), "{html}");
        assert!(html.contains("75.0%"), "{html}");
    }
}
