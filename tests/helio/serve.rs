//! `helio serve` over loopback: the WebSeed proxying a generated log served
//! by the fixture server (which gzips data tiles whatever is asked), static
//! files, statistics, failures upstream, overload, shutdown, and real
//! BitTorrent clients downloading whole torrents through it alone.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use helio::fixture::server::{Fault, LogServer};
use helio::fixture::wire::{self, Reply};
use helio::torrent::profile::Profile;
use helio::torrent::range::TorrentRange;

use crate::support::*;

/// A running `helio serve`, killed when dropped.
struct Served(Listening);

impl Served {
    /// Starts `helio serve -c CONFIG --listen 127.0.0.1:0` and waits for the
    /// address it prints.
    fn start(config: &Path, env: &[(&str, &str)]) -> Served {
        Served::start_with(config, env, &[])
    }

    /// The same with more arguments; with `--listen-https`, also waits for
    /// the HTTPS address.
    fn start_with(config: &Path, env: &[(&str, &str)], more: &[&str]) -> Served {
        let mut args = vec!["serve", "-c", config.to_str().unwrap(), "--listen", "127.0.0.1:0"];
        args.extend(more);
        Served(Listening::start(&args, env, Duration::from_secs(15)))
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[])
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        request(self.addr, method, path, headers)
    }

    fn statistics(&self) -> serde_json::Value {
        let reply = self.get("/statistics.json");
        assert_eq!(reply.status, 200);
        serde_json::from_slice(&reply.body).unwrap()
    }

    /// Sends SIGTERM and waits (bounded) for the exit code, and what it printed on stderr.
    fn terminate(self) -> (i32, String) {
        let stderr = Arc::clone(&self.0.stderr);
        let code = self.0.terminate();
        thread::sleep(Duration::from_millis(50));
        (code, stderr.lock().unwrap().clone())
    }
}

impl std::ops::Deref for Served {
    type Target = Listening;

    fn deref(&self) -> &Listening {
        &self.0
    }
}

fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    wire::request(addr, method, path, headers).unwrap()
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    wire::connect(addr, Duration::from_secs(30)).unwrap()
}

fn read_reply(reader: &mut BufReader<TcpStream>, head: bool) -> Option<Reply> {
    wire::read_reply(reader, head).unwrap()
}

/// One log of a test config.
struct LogEntry<'a> {
    name: &'a str,
    url: String,
    profile: &'a str,
    /// More lines of the log's entry (e.g. `    final: true\n`).
    extra: &'a str,
}

/// Writes a config for `logs` (all copies of one generated log) with the
/// webseed base given.
fn write_config(site: &Site, log: &TestLog, logs: &[LogEntry<'_>], webseed: &str, extra: &str) -> PathBuf {
    let mut yaml = format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: []\ntorrent_dir: out\n\
         webseeds: [{webseed}]\n{extra}logs:\n"
    );
    for entry in logs {
        yaml.push_str(&format!(
            "  - name: \"{}\"\n    log_url: {}\n    origin: {ORIGIN}\n    key: {}\n    profile: {}\n{}",
            entry.name, entry.url, log.log.key, entry.profile, entry.extra
        ));
    }
    site.write_config(&yaml)
}

/// A generated log, its upstream server, and `helio serve` for it as `test`.
struct Setup {
    log: TestLog,
    upstream: LogServer,
    site: Site,
    served: Served,
}

impl Setup {
    fn new(size: u64, extra: &str, env: &[(&str, &str)]) -> Setup {
        let log = TestLog::new(size);
        let upstream = log.serve();
        let site = Site::new();
        let logs = [LogEntry { name: "test", url: upstream.url(), profile: "spec", extra: "" }];
        let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", extra);
        let served = Served::start(&config, env);
        Setup { log, upstream, site, served }
    }

    /// A tile's bytes as the torrent has them (the fixture stores them plain).
    fn tile(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.log.path().join(path)).unwrap()
    }
}

/// A Range header, the status it gets, the bytes sent (first, last) and the
/// Content-Range.
type RangeCase = (String, u16, Option<(usize, usize)>, Option<String>);

#[test]
fn webseed_answers_ranges_heads_pads_and_readmes() {
    let setup = Setup::new(1024, "", &[]);
    let served = &setup.served;
    let tile = setup.tile("tile/data/001");
    let len = tile.len();
    let path = "/webseed/test/test-L01-0-1024/tile/data/001";

    let full = served.get(path);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, tile, "decoded bytes, though the log sent gzip");
    assert_eq!(full.header("content-length"), Some(len.to_string().as_str()));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(full.header("content-type"), Some("application/octet-stream"));
    assert_eq!(full.header("content-encoding"), None);
    let etag = full.header("etag").expect("an ETag").to_owned();

    let cases: Vec<RangeCase> = vec![
        ("bytes=0-99".into(), 206, Some((0, 99)), Some(format!("bytes 0-99/{len}"))),
        ("bytes=1000-1000".into(), 206, Some((1000, 1000)), Some(format!("bytes 1000-1000/{len}"))),
        ("bytes=100-".into(), 206, Some((100, len - 1)), Some(format!("bytes 100-{}/{len}", len - 1))),
        ("bytes=-50".into(), 206, Some((len - 50, len - 1)), Some(format!("bytes {}-{}/{len}", len - 50, len - 1))),
        (format!("bytes=-{}", len + 10), 206, Some((0, len - 1)), Some(format!("bytes 0-{}/{len}", len - 1))),
        (format!("bytes=10-{}", len * 2), 206, Some((10, len - 1)), Some(format!("bytes 10-{}/{len}", len - 1))),
        (format!("bytes={len}-"), 416, None, Some(format!("bytes */{len}"))),
        (format!("bytes={}-{}", len + 5, len + 9), 416, None, Some(format!("bytes */{len}"))),
        ("bytes=-0".into(), 416, None, Some(format!("bytes */{len}"))),
        ("bytes=0-1,5-6".into(), 200, Some((0, len - 1)), None),
        ("bytes=0-0,-1".into(), 200, Some((0, len - 1)), None),
        ("bytes=9-3".into(), 200, Some((0, len - 1)), None),
        ("lines=0-3".into(), 200, Some((0, len - 1)), None),
    ];
    for (range, status, bytes, content_range) in &cases {
        let reply = served.request("GET", path, &[("Range", range)]);
        assert_eq!(reply.status, *status, "{range}");
        assert_eq!(reply.header("content-range"), content_range.as_deref(), "{range}");
        let expected = bytes.map_or(&[][..], |(a, b)| &tile[a..=b]);
        assert_eq!(reply.body, expected, "{range}");
        assert_eq!(reply.header("content-length"), Some(expected.len().to_string().as_str()), "{range}");
        assert_eq!(reply.header("content-encoding"), None);
        let head = served.request("HEAD", path, &[("Range", range)]);
        assert_eq!((head.status, head.header("content-range")), (*status, content_range.as_deref()), "HEAD {range}");
        assert_eq!(head.header("content-length"), reply.header("content-length"), "HEAD {range}");
    }
    let head = served.request("HEAD", path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some(len.to_string().as_str()));
    assert_eq!(head.header("etag"), Some(etag.as_str()));

    // Conditional requests, for a CDN in front.
    assert_eq!(served.request("GET", path, &[("If-None-Match", &etag)]).status, 304);
    let stale = served.request("GET", path, &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")]);
    assert_eq!((stale.status, stale.body.len()), (200, len));
    let fresh = served.request("GET", path, &[("Range", "bytes=0-9"), ("If-Range", &etag)]);
    assert_eq!((fresh.status, fresh.body.len()), (206, 10));

    // Hash tiles, and level 1 would be the same route.
    let hashes = served.get("/webseed/test/test-L01-0-1024/tile/0/002");
    assert_eq!(hashes.status, 200);
    assert_eq!(hashes.body, setup.tile("tile/0/002"));
    assert_eq!(hashes.body.len(), 8192);

    // Pad files are zeros of the length their name says, with ranges too.
    let pad = served.get("/webseed/test/test-L01-0-1024/.pad/100000");
    assert_eq!((pad.status, pad.body.len()), (200, 100_000));
    assert!(pad.body.iter().all(|&b| b == 0));
    let pad = served.request("GET", "/webseed/test/anything/.pad/5000", &[("Range", "bytes=4990-")]);
    assert_eq!((pad.status, pad.header("content-range")), (206, Some("bytes 4990-4999/5000")));
    assert_eq!(pad.body, [0; 10]);
    assert_eq!(served.get("/webseed/test/x/.pad/0").body.len(), 0);

    // README.md: the torrent's exact bytes for the profile.
    let readme = served.get("/webseed/test/test-L01-0-1024/README.md");
    assert_eq!(readme.status, 200);
    assert_eq!(readme.body, Profile::Spec.readme(&setup.upstream.url()));
    assert_eq!(readme.body, format!("LOG_URL: {}\n", setup.upstream.url().trim_end_matches('/')).as_bytes());

    // Keep-alive and pipelining: three requests written at once, answered in order.
    let (mut stream, mut reader) = connect(served.addr);
    let pipelined = format!(
        "HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\nGET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\n\r\n\
         GET /webseed/test/x/tile/data/999 HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    stream.write_all(pipelined.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, true).unwrap().status, 200);
    let ranged = read_reply(&mut reader, false).unwrap();
    assert_eq!((ranged.status, &ranged.body[..]), (206, &tile[5..10]));
    assert_eq!(read_reply(&mut reader, false).unwrap().status, 404, "tile 999 is beyond the log");
    assert_eq!(read_reply(&mut reader, false).unwrap().body, b"ok\n");

    // One upstream request for all of that, naming the operator.
    assert_eq!(setup.upstream.hits("tile/data/001"), 1);
    let requests = setup.upstream.requests();
    let asked = requests.iter().find(|r| r.path == "tile/data/001").unwrap();
    assert!(asked.user_agent.as_deref().unwrap().contains(CONTACT), "{asked:?}");
    let stats = served.statistics();
    let log = &stats["logs"][0];
    assert_eq!(log["name"], "test");
    assert_eq!(log["upstream_fetches"], 3, "{stats}");
    assert!(log["cache_hits"].as_u64().unwrap() > 20, "{stats}");
    assert!(log["bytes_served"].as_u64().unwrap() > 2 * len as u64, "{stats}");
}

#[test]
fn traversal_and_paths_outside_the_patterns_are_refused_without_asking_the_log() {
    let setup = Setup::new(1024, "", &[]);
    std::fs::create_dir_all(setup.site.out()).unwrap();
    let cases = [
        ("/webseed/test/x/../../../etc/passwd", 400),
        ("/webseed/test/x/tile/../../helio.yaml", 400),
        ("/webseed/test/x/%2e%2e/%2e%2e/helio.yaml", 400),
        ("/webseed/test/x/%2E%2E/tile/data/000", 400),
        ("/webseed/test/x/tile%2fdata%2f000", 400),
        ("/webseed/test/x/tile/data%2F000", 400),
        ("/webseed/test/x/tile/data/000%00", 400),
        ("/webseed/test/x/tile%5cdata%5c000", 400),
        ("/webseed/test//tile/data/000", 400),
        ("/webseed/test/x//tile/data/000", 400),
        ("/webseed/test/x/tile/data/000/", 400),
        ("/webseed/test/./tile/data/000", 400),
        ("/webseed/%zz/x/tile/data/000", 400),
        ("/torrents/../helio.yaml", 400),
        ("/torrents/%2e%2e/helio.yaml", 400),
        ("/torrents/%2e%2e%2fhelio.yaml", 400),
        ("/webseed/test/x/checkpoint", 404),
        ("/webseed/test/x/tile/data/000.p/7", 404),
        ("/webseed/test/x/tile/data/0", 404),
        ("/webseed/test/x/tile/data/x000/000", 404),
        ("/webseed/test/x/issuer/0123", 404),
        ("/webseed/test/x/.pad/99999999999", 404),
        ("/webseed/other/x/tile/data/000", 404),
        ("/webseed/test/tile/data", 404),
        ("/checkpoint", 404),
        ("/tile/data/000", 404),
        ("/torrents/.helio.lock", 404),
        ("/torrents/nothing", 404),
        ("http://example.com/tile/data/000", 404),
    ];
    for (path, status) in cases {
        for method in ["GET", "HEAD"] {
            let reply = setup.served.request(method, path, &[]);
            assert_eq!(reply.status, status, "{method} {path}");
        }
    }
    let reply = setup.served.request("POST", "/webseed/test/x/tile/data/000", &[("Content-Length", "0")]);
    assert_eq!((reply.status, reply.header("allow")), (405, Some("GET, HEAD")));
    // A raw NUL or backslash never gets past the HTTP parser: 400, or the
    // connection is closed.
    for raw in ["/webseed/test/x/tile\\data\\000", "/webseed/test/x/tile/data/000\0"] {
        let (mut stream, mut reader) = connect(setup.served.addr);
        write!(stream, "GET {raw} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        if let Some(reply) = read_reply(&mut reader, false) {
            assert_eq!(reply.status, 400, "{raw:?}");
        }
    }
    assert_eq!(setup.upstream.total_hits(), 0, "{:?}", setup.upstream.requests());
}

#[test]
fn fifty_concurrent_requests_for_a_cold_tile_make_one_upstream_request() {
    let setup = Setup::new(1024, "", &[]);
    setup.upstream.set_fault(|path, _| (path == "tile/data/002").then_some(Fault::Delay(Duration::from_millis(500))));
    let tile = setup.tile("tile/data/002");
    let addr = setup.served.addr;
    let threads: Vec<_> = (0..50)
        .map(|i| {
            thread::spawn(move || {
                let range = format!("bytes={}-", i * 1000);
                request(addr, "GET", "/webseed/test/t/tile/data/002", &[("Range", &range)])
            })
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        let reply = thread.join().unwrap();
        assert_eq!(reply.status, 206);
        assert_eq!(reply.body, tile[i * 1000..]);
    }
    assert_eq!(setup.upstream.hits("tile/data/002"), 1);
    let stats = setup.served.statistics();
    assert_eq!(stats["logs"][0]["upstream_fetches"], 1);
    assert_eq!(stats["logs"][0]["requests"], 50);
}

#[test]
fn upstream_404_500_and_timeouts_become_404_502_and_504_and_serving_goes_on() {
    let setup = Setup::new(1024, "", &[("HELIO_RETRY_BUDGET", "1")]);
    setup.upstream.set_fault(|path, _| match path {
        "tile/data/001" => Some(Fault::Status { code: 500, headers: vec![], body: b"broken".to_vec() }),
        "tile/data/002" => Some(Fault::Delay(Duration::from_secs(6))),
        "tile/data/003" => Some(Fault::Drop),
        "tile/0/001" => {
            Some(Fault::Status { code: 503, headers: vec![("Retry-After".into(), "120".into())], body: vec![] })
        }
        "tile/0/002" => Some(Fault::Body(b"<html>an error page</html>".to_vec())),
        _ => None,
    });
    let served = &setup.served;
    assert_eq!(served.get("/webseed/test/t/tile/data/009").status, 404, "beyond the log");
    assert_eq!(setup.upstream.hits("tile/data/009"), 1, "a 404 is not retried");

    let failed = served.get("/webseed/test/t/tile/data/001");
    assert_eq!(failed.status, 502);
    assert!(setup.upstream.hits("tile/data/001") >= 2, "retried before giving up");
    assert_eq!(failed.header("cache-control"), Some("no-store"));

    let started = Instant::now();
    let slow = served.get("/webseed/test/t/tile/data/002");
    assert_eq!(slow.status, 504, "{}", String::from_utf8_lossy(&slow.body));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    assert_eq!(served.get("/webseed/test/t/tile/data/003").status, 502, "connection dropped every time");
    let later = served.get("/webseed/test/t/tile/0/001");
    assert_eq!((later.status, later.header("retry-after")), (503, Some("120")), "the log's Retry-After is passed on");
    let garbage = served.get("/webseed/test/t/tile/0/002");
    assert_eq!(garbage.status, 502, "a hash tile must be 8192 bytes");

    // None of it stuck: the server answers, and a failed tile is fetched
    // again once the log recovers.
    setup.upstream.clear_fault();
    assert_eq!(served.get("/healthz").status, 200);
    assert_eq!(served.get("/webseed/test/t/tile/data/000").body, setup.tile("tile/data/000"));
    assert_eq!(served.get("/webseed/test/t/tile/data/001").body, setup.tile("tile/data/001"));
    let stats = served.statistics();
    assert_eq!(stats["logs"][0]["upstream_not_found"], 1, "{stats}");
    assert_eq!(stats["logs"][0]["upstream_errors"], 5, "{stats}");
}

#[test]
fn the_cache_stays_within_cache_mb() {
    let setup = Setup::new(16 * 256, "cache_mb: 1\n", &[]);
    let served = &setup.served;
    for n in 0..16 {
        for path in [format!("tile/data/{n:03}"), format!("tile/0/{n:03}")] {
            let reply = served.get(&format!("/webseed/test/t/{path}"));
            assert_eq!(reply.body, setup.tile(&path), "{path}");
            let cache = &served.statistics()["cache"];
            assert_eq!(cache["limit_bytes"], 1 << 20);
            assert!(cache["bytes"].as_u64().unwrap() <= 1 << 20, "{cache}");
            assert!(cache["held_bytes"].as_u64().unwrap() <= cache["held_limit_bytes"].as_u64().unwrap(), "{cache}");
        }
    }
    let cache = served.statistics()["cache"].clone();
    assert!(cache["evictions"].as_u64().unwrap() >= 20, "{cache}");
    assert!(cache["bytes"].as_u64().unwrap() > 1 << 19, "the cache is used: {cache}");
    // The newest tiles are hits, the oldest were evicted and are fetched again.
    served.get("/webseed/test/t/tile/0/015");
    assert_eq!(setup.upstream.hits("tile/0/015"), 1);
    served.get("/webseed/test/t/tile/data/000");
    assert_eq!(setup.upstream.hits("tile/data/000"), 2);
}

#[test]
fn a_flood_of_cold_misses_beyond_the_queue_gets_503_with_retry_after() {
    // One fetch at a time for this log: 16 tiles may wait, the rest are refused.
    let setup = Setup::new(16 * 256, "concurrency: 1\n", &[]);
    setup.upstream.set_fault(|_, _| Some(Fault::Delay(Duration::from_millis(100))));
    let addr = setup.served.addr;
    let paths: Vec<String> = (0..16).flat_map(|n| [format!("tile/data/{n:03}"), format!("tile/0/{n:03}")]).collect();
    let threads: Vec<_> = paths
        .iter()
        .map(|path| {
            let url = format!("/webseed/test/t/{path}");
            thread::spawn(move || request(addr, "GET", &url, &[]))
        })
        .collect();
    let replies: Vec<Reply> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let refused = replies.iter().filter(|r| r.status == 503).count();
    assert!(refused >= 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    for (path, reply) in paths.iter().zip(&replies) {
        match reply.status {
            200 => assert_eq!(reply.body, setup.tile(path)),
            503 => assert_eq!(reply.header("retry-after"), Some("5")),
            other => panic!("{path}: {other}"),
        }
    }
    assert_eq!(setup.served.statistics()["overloaded"], refused);
    // Once the queue has drained, the refused tiles are served.
    setup.upstream.clear_fault();
    for (path, reply) in paths.iter().zip(&replies) {
        if reply.status == 503 {
            assert_eq!(setup.served.get(&format!("/webseed/test/t/{path}")).body, setup.tile(path));
        }
    }
}

#[test]
fn sigterm_lets_a_slow_response_finish_then_exits_0() {
    let setup = Setup::new(1024, "", &[]);
    setup.upstream.set_fault(|path, _| (path == "tile/data/000").then_some(Fault::Delay(Duration::from_millis(1500))));
    let addr = setup.served.addr;
    let slow = thread::spawn(move || request(addr, "GET", "/webseed/test/t/tile/data/000", &[]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while setup.upstream.hits("tile/data/000") == 0 {
        assert!(Instant::now() < deadline, "the request never reached the log");
        thread::sleep(Duration::from_millis(10));
    }
    let Setup { served, log, upstream, .. } = setup;
    let pid = served.pid();
    let waiter = thread::spawn(move || served.terminate());
    // The listener closes at once, while the response is still under way.
    let refused_by = Instant::now() + Duration::from_secs(1);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < refused_by, "helio serve (pid {pid}) still accepts connections after SIGTERM");
        thread::sleep(Duration::from_millis(20));
    }
    let reply = slow.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, std::fs::read(log.path().join("tile/data/000")).unwrap());
    let (code, stderr) = waiter.join().unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("stopping"), "{stderr}");
    drop(upstream);
}

#[test]
fn the_output_directory_statistics_and_metrics() {
    let log = TestLog::new(256);
    let site = Site::new();
    let out = site.out();
    std::fs::create_dir_all(out.join("my log")).unwrap();
    std::fs::write(out.join("index.html"), "<!DOCTYPE html><title>t</title>").unwrap();
    std::fs::write(out.join("style.css"), "body{}").unwrap();
    std::fs::write(out.join(".helio.lock"), "").unwrap();
    std::fs::write(out.join("my log/feed.xml"), "<rss/>").unwrap();
    std::fs::write(out.join("my log/torrents.json"), "{}").unwrap();
    std::fs::write(out.join("my log/checkpoint"), "origin\n1\nroot\n").unwrap();
    std::fs::write(out.join("my log/L01-0-256.torrent"), b"d4:infod4:name1:xee").unwrap();
    let logs = [LogEntry { name: "my log", url: log.path().display().to_string(), profile: "spec", extra: "" }];
    let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", "");
    let served = Served::start(&config, &[]);

    let home = served.get("/");
    assert_eq!((home.status, home.header("location")), (301, Some("torrents/")));
    assert_eq!(served.get("/torrents").header("location"), Some("torrents/"));
    assert_eq!(served.get("/torrents/my%20log").header("location"), Some("my%20log/"));
    let index = served.get("/torrents/");
    assert_eq!((index.status, index.header("content-type")), (200, Some("text/html; charset=utf-8")));
    assert_eq!(index.body, b"<!DOCTYPE html><title>t</title>");
    for (file, content_type) in [
        ("my%20log/feed.xml", "application/rss+xml"),
        ("my%20log/torrents.json", "application/json"),
        ("my%20log/checkpoint", "text/plain; charset=utf-8"),
        ("my%20log/L01-0-256.torrent", "application/x-bittorrent"),
        ("style.css", "text/css; charset=utf-8"),
    ] {
        let reply = served.get(&format!("/torrents/{file}"));
        assert_eq!((reply.status, reply.header("content-type")), (200, Some(content_type)), "{file}");
        assert!(reply.header("etag").is_some() && reply.header("last-modified").is_some());
        assert_eq!(reply.header("content-encoding"), None);
    }
    let torrent = served.request("GET", "/torrents/my%20log/L01-0-256.torrent", &[("Range", "bytes=-3")]);
    assert_eq!((torrent.status, &torrent.body[..]), (206, &b"xee"[..]));
    let etag = served.get("/torrents/my%20log/feed.xml").header("etag").unwrap().to_owned();
    assert_eq!(served.request("GET", "/torrents/my%20log/feed.xml", &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(served.get("/torrents/my%20log/").status, 404, "no listings");
    assert_eq!(served.get("/torrents/.helio.lock").status, 404);

    // A local log directory works as an upstream too; the README names it as configured.
    let readme = served.get("/webseed/my%20log/my%20log-L01-0-256/README.md");
    assert_eq!(readme.body, Profile::Spec.readme(&log.path().display().to_string()));
    let tile = served.get("/webseed/my%20log/my%20log-L01-0-256/tile/data/000");
    assert_eq!(tile.body, std::fs::read(log.path().join("tile/data/000")).unwrap());

    let html = served.get("/statistics");
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(String::from_utf8_lossy(&html.body).contains("<th scope=\"row\">my log</th>"));
    let metrics = served.get("/metrics");
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let metrics = String::from_utf8(metrics.body).unwrap();
    assert!(metrics.contains("helio_serve_requests_total{log=\"my log\"} 2\n"), "{metrics}");
    assert!(metrics.contains("helio_serve_cache_limit_bytes 536870912\n"), "{metrics}");
    let health = served.get("/healthz");
    assert_eq!((health.status, &health.body[..]), (200, &b"ok\n"[..]));
    let stats = served.statistics();
    assert!(stats["static_bytes"].as_u64().unwrap() > 0);
    assert_eq!(stats["logs"][0]["bytes_served"], readme.body.len() + tile.body.len());
}

#[test]
fn startup_problems_are_one_line_and_exit_2() {
    let log = TestLog::new(256);
    let site = Site::new();
    let logs = [LogEntry { name: "test", url: log.path().display().to_string(), profile: "spec", extra: "" }];
    let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", "");
    let config = config.to_str().unwrap();

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = helio(&["serve", "-c", config, "--listen", &addr]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("helio: cannot listen on {addr}: ")), "{}", run.stderr);

    let run = helio(&["serve", "-c", config]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no address to listen on: set http_port or https_port in"), "{}", run.stderr);
    assert!(run.stderr.contains("or pass --listen ADDR:PORT"), "{}", run.stderr);

    let missing = site.dir.path().join("missing.yaml");
    let run = helio(&["serve", "-c", missing.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot read the config file"), "{}", run.stderr);

    // HTTPS without a certificate and key is a configuration error.
    let tls = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", "https_port: 8443\n");
    let run = helio(&["serve", "-c", tls.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("HTTPS needs both tls_cert and tls_key in"), "{}", run.stderr);
}

/// Builds torrents of a 2-range log for two logs (one per profile, with
/// names that need escaping) whose url-list points at a running `helio
/// serve`, and returns everything a client test needs.
struct Published {
    log: TestLog,
    upstream: LogServer,
    /// The output folder, kept for as long as the test runs.
    _site: Site,
    served: Served,
    /// (log name, profile, torrent file)
    torrents: Vec<(String, Profile, PathBuf)>,
    /// Upstream requests for one tile once `helio build` had read the log.
    built_hits: usize,
}

fn publish_two_profiles() -> Published {
    publish_two_profiles_with(None)
}

/// The same, with the webseed on HTTPS (`helio serve` with this certificate).
fn publish_two_profiles_with(tls: Option<&TestCertificate>) -> Published {
    let names = [("spec log", "spec", Profile::Spec), ("helio & torrent ü", "heliotorrent", Profile::HelioTorrent)];
    publish(2 * 1024 + 100, &names, tls, "")
}

/// Builds the torrents of a log of `size` entries for each of `names` (name,
/// profile), with `extra` config, their url-list pointing at a running
/// `helio serve`.
fn publish(size: u64, names: &[(&str, &str, Profile)], tls: Option<&TestCertificate>, extra: &str) -> Published {
    publish_logs(size, names, tls, extra, "")
}

/// The same, with `log_extra` lines in every log's entry.
fn publish_logs(
    size: u64,
    names: &[(&str, &str, Profile)],
    tls: Option<&TestCertificate>,
    extra: &str,
    log_extra: &str,
) -> Published {
    let log = TestLog::new(size);
    let upstream = log.serve();
    let site = Site::new();
    let logs: Vec<LogEntry<'_>> = names
        .iter()
        .map(|(name, profile, _)| LogEntry { name, url: upstream.url(), profile, extra: log_extra })
        .collect();
    let tls_config = format!("{}{extra}", tls.map(TestCertificate::config).unwrap_or_default());
    let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", &tls_config);
    let https_args = ["--listen-https", "127.0.0.1:0"];
    let served = Served::start_with(&config, &[], if tls.is_some() { &https_args } else { &[] });
    // Now that the port is known, the same config with the real webseed.
    let webseed = match served.https {
        Some(https) => format!("https://{https}/webseed/"),
        None => format!("{}webseed/", served.url()),
    };
    write_config(&site, &log, &logs, &webseed, &tls_config);
    site.build().ok();
    let mut torrents = Vec::new();
    for (name, _, profile) in names {
        let mut found: Vec<(TorrentRange, PathBuf)> = std::fs::read_dir(site.out().join(name))
            .unwrap()
            .filter_map(|entry| {
                let path = entry.unwrap().path();
                let range = TorrentRange::from_file_name(path.file_name()?.to_str()?)?;
                Some((range, path))
            })
            .collect();
        found.sort();
        assert!(!found.is_empty());
        torrents.extend(found.into_iter().map(|(_, path)| (name.to_string(), *profile, path)));
    }
    let built_hits = upstream.hits("tile/data/000");
    Published { log, upstream, _site: site, served, torrents, built_hits }
}

impl Published {
    /// Checks that `downloads` holds every torrent's files with exactly the
    /// bytes the log has (README from the profile).
    fn assert_downloaded(&self, downloads: &Path) {
        let expected = tempfile::tempdir().unwrap();
        for (_, profile, path) in &self.torrents {
            let bytes = std::fs::read(path).unwrap();
            let readme = profile.readme(&self.upstream.url());
            let root = lay_out(self.log.path(), &bytes, &readme, expected.path());
            let name = root.file_name().unwrap();
            let mut got = snapshot(&downloads.join(name));
            // A v1-only client keeps a hybrid's BEP 47 pad files: zeros.
            got.retain(|path, bytes| {
                let pad = path.starts_with(".pad");
                assert!(!pad || bytes.iter().all(|&b| b == 0), "{} is a pad of zeros", path.display());
                !pad
            });
            let want = snapshot(&root);
            assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{}", path.display());
            assert!(got == want, "{}: downloaded bytes differ", path.display());
        }
        let stats = self.served.statistics();
        for log in stats["logs"].as_array().unwrap() {
            assert!(log["bytes_served"].as_u64().unwrap() > 2 * 1_000_000, "{stats}");
        }
        // Both logs share one upstream: serving fetched each tile once per log at most.
        assert!(self.upstream.hits("tile/data/000") - self.built_hits <= 2);
    }
}

const LIBTORRENT_SCRIPT: &str = r#"
import sys, time, libtorrent as lt
save = sys.argv[1]
s = lt.session({
    'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False,
    'alert_mask': lt.alert.category_t.error_notification,
})
handles = []
for path in sys.argv[2:]:
    p = lt.add_torrent_params()
    p.ti = lt.torrent_info(path)
    p.save_path = save
    handles.append(s.add_torrent(p))

def wait_seeding(what):
    deadline = time.time() + 60
    while not all(h.status().is_seeding for h in handles):
        for a in s.pop_alerts():
            print('alert:', a.message(), file=sys.stderr)
        if time.time() > deadline:
            sys.exit('timed out waiting for ' + what + ': ' + repr([(h.status().state, h.status().progress) for h in handles]))
        time.sleep(0.05)

wait_seeding('the downloads')
for h in handles:
    h.force_recheck()
time.sleep(0.2)
wait_seeding('the recheck')
for h in handles:
    ti = h.torrent_file()
    assert all(h.have_piece(i) for i in range(ti.num_pieces())), ti.name()
    files = ti.files()
    # BEP 47 pad files (hybrid torrents) are zeros nobody downloads.
    wanted = sum(files.file_size(i) for i in range(files.num_files()) if not files.file_flags(i) & files.flag_pad_file)
    assert h.status().total_wanted_done == wanted, ti.name()
    print(ti.name(), ti.num_pieces(), 'pieces verified')
"#;

#[test]
#[cfg_attr(not(has_py_libtorrent), ignore = "needs Python's libtorrent, not installed here (HELIO_E2E=1 requires it)")]
fn libtorrent_downloads_every_torrent_through_the_webseed_alone() {
    let test = "libtorrent_downloads_every_torrent_through_the_webseed_alone";
    let Some(python) = python_with("libtorrent", test) else { return };
    libtorrent_downloads(&python, &publish_two_profiles(), &[]);
}

/// Downloads every torrent of `published` with libtorrent and checks the bytes.
fn libtorrent_downloads(python: &Path, published: &Published, env: &[(&str, &str)]) {
    let downloads = tempfile::tempdir().unwrap();
    let mut args = vec![downloads.path().to_str().unwrap().to_string()];
    args.extend(published.torrents.iter().map(|(_, _, path)| path.to_str().unwrap().to_string()));
    let mut child = std::process::Command::new(python)
        .envs(env.iter().copied())
        .arg("-c")
        .arg(LIBTORRENT_SCRIPT)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_bounded(&mut child, Duration::from_secs(120), "libtorrent");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(code, 0, "libtorrent failed:\n{out}\n{err}");
    assert_eq!(out.matches("pieces verified").count(), published.torrents.len(), "{out}");
    published.assert_downloaded(downloads.path());
    if published.torrents.iter().any(|(name, _, _)| name == "spec log") {
        verify_downloads(published, downloads.path());
    }
}

/// What a subscriber does next: prove each log's downloads against the
/// checkpoint and proof tiles of the site that `helio serve` publishes.
fn verify_downloads(published: &Published, downloads: &Path) {
    for name in ["spec log", "helio & torrent ü"] {
        let folders: Vec<String> = ["0-1024", "1024-2048"]
            .iter()
            .map(|range| downloads.join(format!("{name}-L01-{range}")).to_str().unwrap().to_string())
            .collect();
        let site = format!("{}torrents/{}/", published.served.url(), helio::config::url_segment(name));
        let run = helio(&["verify", &folders[0], &folders[1], "--site", &site, "--key", &published.log.log.key]);
        run.ok();
        assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
        assert!(run.stdout.starts_with(&format!("{name}-L01-0-1024 ok: entries 0..1024, 8 tiles, ")), "{}", run.stdout);
    }
}

#[test]
#[cfg_attr(not(has_aria2c), ignore = "needs aria2c, not installed here (HELIO_E2E=1 requires it)")]
fn aria2_downloads_every_torrent_through_the_webseed_alone() {
    let test = "aria2_downloads_every_torrent_through_the_webseed_alone";
    let Some(aria2c) = tool("aria2c", test) else { return };
    aria2_downloads(&aria2c, &publish_two_profiles());
}

// ---- Hardening (docs/spec.md §6.5): symlinks and FIFOs, idle connections, gzip
// bombs, repeated 404s.

/// The server's peak resident memory (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Raises this process's open-file limit to at least `wanted` if the hard
/// limit allows (the server raises its own).
fn raise_file_limit(wanted: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < wanted) {
        let raised = limit.maximum.map_or(wanted, |maximum| maximum.min(wanted));
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum: limit.maximum });
    }
}

/// A connection from a chosen loopback address (127.0.0.2, …), so that a
/// test can be several clients.
fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{local}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect_timeout(&addr.into(), Duration::from_secs(5)).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

/// GET `path` over `stream` and read the answer.
fn get_over(stream: TcpStream, path: &str) -> Option<Reply> {
    let mut writer = stream.try_clone().unwrap();
    write!(writer, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    read_reply(&mut BufReader::new(stream), false)
}

#[cfg(unix)]
#[test]
fn links_out_of_the_output_folder_and_fifos_are_404_at_once() {
    use std::os::unix::fs::symlink;
    let log = TestLog::new(256);
    let site = Site::new();
    let out = site.out();
    std::fs::create_dir_all(out.join("log")).unwrap();
    std::fs::write(out.join("log/feed.xml"), "<rss/>").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "not for the web").unwrap();
    // What a restored site archive could plant.
    symlink("/etc/passwd", out.join("x.torrent")).unwrap();
    symlink("/etc", out.join("e")).unwrap();
    symlink(outside.path().join("secret"), out.join("log/secret.json")).unwrap();
    symlink(outside.path(), out.join("log/more")).unwrap();
    symlink("feed.xml", out.join("log/alias.xml")).unwrap();
    let fifo = out.join("log/L01-0-256.torrent");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let logs = [LogEntry { name: "log", url: log.path().display().to_string(), profile: "spec", extra: "" }];
    let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", "");
    let served = Served::start(&config, &[]);

    for path in [
        "/torrents/x.torrent",
        "/torrents/e/passwd",
        "/torrents/e/",
        "/torrents/e",
        "/torrents/log/secret.json",
        "/torrents/log/more/secret",
        "/torrents/log/L01-0-256.torrent",
    ] {
        let started = Instant::now();
        let reply = served.get(path);
        assert_eq!(reply.status, 404, "{path}: {}", String::from_utf8_lossy(&reply.body));
        assert!(started.elapsed() < Duration::from_secs(2), "{path} took {:?}", started.elapsed());
        assert!(!String::from_utf8_lossy(&reply.body).contains("root:"), "{path}");
    }
    // Many FIFO requests at once block nothing: each is 404 at once.
    let addr = served.addr;
    let fifos: Vec<_> = (0..64)
        .map(|_| thread::spawn(move || request(addr, "GET", "/torrents/log/L01-0-256.torrent", &[]).status))
        .collect();
    assert!(fifos.into_iter().all(|t| t.join().unwrap() == 404));
    // A link that stays inside the folder is followed.
    let alias = served.get("/torrents/log/alias.xml");
    assert_eq!((alias.status, &alias.body[..]), (200, &b"<rss/>"[..]));
    assert_eq!(served.get("/healthz").status, 200);
}

#[test]
fn thousands_of_idle_connections_from_one_client_neither_starve_others_nor_stay() {
    raise_file_limit(4096);
    let setup = Setup::new(1024, "", &[]);
    let addr = setup.served.addr;
    // 3,000 connections from 127.0.0.1 that never send a request.
    let idle: Vec<TcpStream> = (0..3000).map(|_| connect_from("127.0.0.1", addr)).collect();
    thread::sleep(Duration::from_millis(300));

    // Another client is served at once…
    let started = Instant::now();
    let reply = get_over(connect_from("127.0.0.2", addr), "/webseed/test/t/tile/data/001").unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, setup.tile("tile/data/001"));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // …because one client holds at most 256 connections; the rest were closed at once.
    let stats = get_over(connect_from("127.0.0.3", addr), "/statistics.json").unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    assert!(stats["connections_open"].as_u64().unwrap() <= 256 + 2, "{stats}");
    assert!(stats["connections_refused"].as_u64().unwrap() >= 3000 - 256, "{stats}");

    // The connections it did hold are closed once the header timeout (5 s) passes.
    let deadline = Instant::now() + Duration::from_secs(9);
    let mut closed = 0;
    for mut stream in idle {
        stream
            .set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0; 512];
        // Refused ones read the 503 first (or a reset); then the end.
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if Instant::now() < deadline {
            closed += 1;
        }
    }
    assert_eq!(closed, 3000, "every idle connection was closed within 9 s");
    let reply = get_over(connect_from("127.0.0.1", addr), "/healthz").unwrap();
    assert_eq!(reply.status, 200, "the client is welcome again");
    assert!(setup.served.statistics()["connections_open"].as_u64().unwrap() <= 2);
}

#[test]
fn gzip_bomb_tiles_stay_within_the_memory_budget() {
    use std::io::Write as _;
    // 64 MiB of zeros in ~64 KB: what a hostile or broken log could send
    // for every data tile.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&vec![0; 64 << 20]).unwrap();
    let bomb = bomb.finish().unwrap();
    let setup = Setup::new(64 * 256, "cache_mb: 16\nconcurrency: 32\n", &[]);
    setup.upstream.set_fault(move |path, _| path.starts_with("tile/data/").then(|| Fault::Body(bomb.clone())));
    let before = peak_rss(setup.served.pid());
    let addr = setup.served.addr;
    for round in 0..3 {
        let threads: Vec<_> = (0..30)
            .map(|n| {
                let path = format!("/webseed/test/t/tile/data/{:03}", round * 20 + n);
                thread::spawn(move || request(addr, "GET", &path, &[]).status)
            })
            .collect();
        for thread in threads {
            let status = thread.join().unwrap();
            assert!(status == 502 || status == 503, "{status}");
        }
    }
    let peak = peak_rss(setup.served.pid());
    let stats = setup.served.statistics();
    assert!(stats["logs"][0]["upstream_errors"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["cache"]["held_limit_bytes"], 48 << 20, "16 MiB of cache and 32 MiB in transit");
    assert_eq!(stats["cache"]["held_bytes"], 0, "{stats}");
    // Tiles at most 48 MiB, plus the program itself and 32 fetch threads
    // with their buffers and allocator arenas (~40–80 MB in a debug build).
    // Before the budget: 382–517 MB.
    assert!(peak < 192 << 20, "peak RSS {} MiB (before: {} MiB)", peak >> 20, before >> 20);

    // Real tiles are still served.
    setup.upstream.clear_fault();
    assert_eq!(setup.served.get("/webseed/test/t/tile/data/050").body, setup.tile("tile/data/050"));
}

#[test]
fn a_tile_the_log_does_not_have_is_asked_for_once_in_a_while() {
    let setup = Setup::new(1024, "", &[]);
    for _ in 0..20 {
        let reply = setup.served.get("/webseed/test/t/tile/data/009");
        assert_eq!(reply.status, 404);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    assert_eq!(setup.upstream.hits("tile/data/009"), 1, "one fetch for 20 requests within 10 s");
    let stats = setup.served.statistics();
    assert_eq!(stats["cache"]["not_found_entries"], 1, "{stats}");
    assert_eq!(stats["logs"][0]["upstream_not_found"], 1, "{stats}");
    assert_eq!(stats["logs"][0]["requests"], 20, "{stats}");
}

// ---- HTTPS (docs/spec.md §6.1): a test CA made with the openssl CLI, curl and
// libtorrent as clients, SIGHUP reload, refused pairs.

/// A CA and a server certificate for 127.0.0.1 and localhost it signed.
struct TestCertificate {
    /// The CA's certificate: what clients trust.
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TestCertificate {
    /// A new CA named `name` under `dir`, and a server pair signed by it.
    fn issue(openssl: &Path, dir: &Path, name: &str) -> TestCertificate {
        let path = |file: &str| dir.join(format!("{name}-{file}"));
        let run = |args: &[&str]| {
            let output = std::process::Command::new(openssl).args(args).output().unwrap();
            assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        };
        let p = |file: &str| path(file).to_str().unwrap().to_string();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj"];
        let ca_subject = format!("/CN=helio test CA {name}");
        let (ca_key, ca_pem) = (p("ca.key"), p("ca.pem"));
        ca.extend([ca_subject.as_str(), "-keyout", &ca_key, "-out", &ca_pem]);
        ca.extend(ec);
        ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
        run(&ca);
        let (key, csr, cert, ext) = (p("server.key"), p("server.csr"), p("server.pem"), p("ext.cnf"));
        let subject = format!("/CN=helio test server {name}");
        let mut request = vec!["req", "-subj", &subject, "-keyout", &key, "-out", &csr];
        request.extend(ec);
        run(&request);
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-extfile",
            &ext,
        ]);
        TestCertificate { ca: path("ca.pem"), cert: path("server.pem"), key: path("server.key") }
    }

    /// Config lines for this pair.
    fn config(&self) -> String {
        format!("https_port: 8443\ntls_cert: {}\ntls_key: {}\n", self.cert.display(), self.key.display())
    }
}

/// `curl` over HTTPS trusting `ca`: (exit code, HTTP status, body).
fn curl(curl: &Path, ca: &Path, url: &str, headers: &[&str]) -> (i32, u16, Vec<u8>) {
    let body = tempfile::NamedTempFile::new().unwrap();
    let mut command = std::process::Command::new(curl);
    command.args(["-sS", "--max-time", "20", "--cacert"]).arg(ca).arg("-o").arg(body.path());
    command.args(["-w", "%{http_code}"]);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command.arg(url).output().unwrap();
    let status = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(0);
    (output.status.code().unwrap_or(-1), status, std::fs::read(body.path()).unwrap_or_default())
}

#[test]
#[cfg_attr(
    not(all(has_curl, has_openssl)),
    ignore = "needs curl and openssl, not installed here (HELIO_E2E=1 requires it)"
)]
fn https_beside_http_serves_the_same_bytes() {
    let test = "https_beside_http_serves_the_same_bytes";
    let (Some(openssl), Some(curl_path)) = (tool("openssl", test), tool("curl", test)) else { return };
    let certs = tempfile::tempdir().unwrap();
    let tls = TestCertificate::issue(&openssl, certs.path(), "one");
    let log = TestLog::new(1024);
    let upstream = log.serve();
    let site = Site::new();
    let logs = [LogEntry { name: "test", url: upstream.url(), profile: "spec", extra: "" }];
    let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", &tls.config());
    let served = Served::start_with(&config, &[], &["--listen-https", "127.0.0.1:0"]);
    let https = format!("https://{}", served.https.unwrap());
    let tile = std::fs::read(log.path().join("tile/data/001")).unwrap();
    let path = "/webseed/test/test-L01-0-1024/tile/data/001";

    let (code, status, body) = curl(&curl_path, &tls.ca, &format!("{https}{path}"), &[]);
    assert_eq!((code, status), (0, 200));
    assert_eq!(body, tile);
    let (_, status, body) = curl(&curl_path, &tls.ca, &format!("{https}{path}"), &["Range: bytes=100-199"]);
    assert_eq!((status, &body[..]), (206, &tile[100..200]));
    assert_eq!(served.get(path).body, tile, "plain HTTP still answers");
    assert_eq!(upstream.hits("tile/data/001"), 1, "one cache for both");
    // A client that does not trust the CA is refused by its own TLS check.
    let (code, _, _) = curl(&curl_path, &certs.path().join("none.pem"), &format!("{https}/healthz"), &[]);
    assert_ne!(code, 0);
    // Plain HTTP on the HTTPS port is a failed handshake, not a crash.
    let reply = wire::request(served.https.unwrap(), "GET", "/healthz", &[]);
    assert!(reply.is_err() || reply.unwrap().status == 400);
    assert_eq!(served.get("/healthz").status, 200);
}

#[test]
#[cfg_attr(
    not(all(has_py_libtorrent, has_openssl)),
    ignore = "needs Python's libtorrent and openssl, not installed here (HELIO_E2E=1 requires it)"
)]
fn libtorrent_downloads_every_torrent_over_https() {
    let test = "libtorrent_downloads_every_torrent_over_https";
    let Some(openssl) = tool("openssl", test) else { return };
    let Some(python) = python_with("libtorrent", test) else { return };
    let certs = tempfile::tempdir().unwrap();
    let tls = TestCertificate::issue(&openssl, certs.path(), "lt");
    let published = publish_two_profiles_with(Some(&tls));
    let https = published.served.https.unwrap();
    let torrent = std::fs::read(&published.torrents[0].2).unwrap();
    let url_list = format!("https://{https}/webseed/");
    assert!(torrent.windows(url_list.len()).any(|w| w == url_list.as_bytes()), "the torrents name the HTTPS webseed");
    // libtorrent checks web seeds' certificates with OpenSSL's default paths.
    let ca = tls.ca.to_str().unwrap();
    libtorrent_downloads(&python, &published, &[("SSL_CERT_FILE", ca)]);
}

#[test]
#[cfg_attr(
    not(all(has_curl, has_openssl)),
    ignore = "needs curl and openssl, not installed here (HELIO_E2E=1 requires it)"
)]
fn sighup_swaps_the_certificate_and_lets_responses_under_way_finish() {
    let test = "sighup_swaps_the_certificate_and_lets_responses_under_way_finish";
    let (Some(openssl), Some(curl_path)) = (tool("openssl", test), tool("curl", test)) else { return };
    let certs = tempfile::tempdir().unwrap();
    let first = TestCertificate::issue(&openssl, certs.path(), "first");
    let second = TestCertificate::issue(&openssl, certs.path(), "second");
    // The files the config names, as an ACME client would rewrite them.
    let live = TestCertificate {
        ca: first.ca.clone(),
        cert: certs.path().join("live.pem"),
        key: certs.path().join("live.key"),
    };
    std::fs::copy(&first.cert, &live.cert).unwrap();
    std::fs::copy(&first.key, &live.key).unwrap();
    let log = TestLog::new(1024);
    let upstream = log.serve();
    upstream.set_fault(|path, _| (path == "tile/data/000").then_some(Fault::Delay(Duration::from_millis(2000))));
    let site = Site::new();
    let logs = [LogEntry { name: "test", url: upstream.url(), profile: "spec", extra: "" }];
    let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", &live.config());
    let served = Served::start_with(&config, &[], &["--listen-https", "127.0.0.1:0"]);
    let https = format!("https://{}", served.https.unwrap());
    let health = format!("{https}/healthz");
    assert_eq!(curl(&curl_path, &first.ca, &health, &[]).1, 200);
    assert_ne!(curl(&curl_path, &second.ca, &health, &[]).0, 0, "the second CA is not trusted yet");

    // A slow response under way over the first certificate…
    let slow_url = format!("{https}/webseed/test/t/tile/data/000");
    let (slow_curl, first_ca) = (curl_path.clone(), first.ca.clone());
    let slow = thread::spawn(move || curl(&slow_curl, &first_ca, &slow_url, &[]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.hits("tile/data/000") == 0 {
        assert!(Instant::now() < deadline, "the slow request never reached the log");
        thread::sleep(Duration::from_millis(10));
    }
    // …while the files are renewed and helio is told.
    std::fs::copy(&second.cert, &live.cert).unwrap();
    std::fs::copy(&second.key, &live.key).unwrap();
    let hup = |pid: u32| std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
    assert!(hup(served.pid()).success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while curl(&curl_path, &second.ca, &health, &[]).1 != 200 {
        assert!(Instant::now() < deadline, "the new certificate is not presented");
        thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(curl(&curl_path, &first.ca, &health, &[]).0, 0, "new connections get the new certificate");
    let (code, status, body) = slow.join().unwrap();
    assert_eq!((code, status), (0, 200), "the response under way finished");
    assert_eq!(body, std::fs::read(log.path().join("tile/data/000")).unwrap());

    // A broken renewal changes nothing.
    std::fs::write(&live.key, "not a key").unwrap();
    assert!(hup(served.pid()).success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !served.stderr.lock().unwrap().contains("keeping the current certificate") {
        assert!(Instant::now() < deadline, "{}", served.stderr.lock().unwrap());
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(curl(&curl_path, &second.ca, &health, &[]).1, 200);
    // A FIFO in the certificate's place is refused at once: the signal loop
    // goes on, and so does serving.
    mkfifo(&live.cert);
    assert!(hup(served.pid()).success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while served.stderr.lock().unwrap().matches("keeping the current certificate").count() < 2 {
        assert!(Instant::now() < deadline, "{}", served.stderr.lock().unwrap());
        thread::sleep(Duration::from_millis(20));
    }
    assert!(served.stderr.lock().unwrap().contains("live.pem: not a regular file"));
    assert_eq!(curl(&curl_path, &second.ca, &health, &[]).1, 200);
    let (code, stderr) = served.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("reloaded the certificate from"), "{stderr}");
}

#[test]
#[cfg_attr(not(has_openssl), ignore = "needs openssl, not installed here (HELIO_E2E=1 requires it)")]
fn unreadable_or_mismatched_certificates_stop_the_start_with_one_line() {
    let test = "unreadable_or_mismatched_certificates_stop_the_start_with_one_line";
    let Some(openssl) = tool("openssl", test) else { return };
    let certs = tempfile::tempdir().unwrap();
    let one = TestCertificate::issue(&openssl, certs.path(), "one");
    let two = TestCertificate::issue(&openssl, certs.path(), "two");
    let log = TestLog::new(256);
    let site = Site::new();
    let logs = [LogEntry { name: "test", url: log.path().display().to_string(), profile: "spec", extra: "" }];
    let missing = certs.path().join("missing.pem");
    let garbage = certs.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN NOTHING-----\n").unwrap();
    // Neither a FIFO (startup would wait for a writer, deaf to SIGTERM) nor a huge file is read.
    let fifo = certs.path().join("fifo.pem");
    mkfifo(&fifo);
    let huge = certs.path().join("huge.pem");
    std::fs::File::create(&huge).unwrap().set_len(2 << 20).unwrap();
    let cases = [
        (&fifo, &one.key, format!("cannot read {}: not a regular file", fifo.display())),
        (&one.cert, &fifo, format!("cannot read {}: not a regular file", fifo.display())),
        (&huge, &one.key, format!("cannot read {}: larger than 1048576 bytes", huge.display())),
        (&missing, &one.key, format!("cannot read {}: ", missing.display())),
        (&one.cert, &missing, format!("cannot read {}: ", missing.display())),
        (&garbage, &one.key, format!("{}: no PEM certificate in it", garbage.display())),
        (&one.cert, &garbage, format!("{}: not a PEM private key", garbage.display())),
        (
            &one.cert,
            &two.key,
            format!("the key in {} does not match the certificate in {}", two.key.display(), one.cert.display()),
        ),
    ];
    for (cert, key, message) in cases {
        let pair = TestCertificate { ca: one.ca.clone(), cert: cert.clone(), key: key.clone() };
        let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", &pair.config());
        let args =
            ["serve", "-c", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--listen-https", "127.0.0.1:0"];
        let run = helio_within(&args, &[], Duration::from_secs(15));
        assert_eq!(run.code, 2, "{message}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with("helio: "), "{}", run.stderr);
        assert!(run.stderr.contains(&message), "expected {message:?} in {}", run.stderr);
        assert!(run.stdout.is_empty(), "nothing was announced: {}", run.stdout);
    }
}

#[test]
fn a_client_over_its_connection_limit_is_told_503_and_closed_at_once() {
    let setup = Setup::new(1024, "max_connections_per_client: 2\n", &[]);
    let addr = setup.served.addr;
    let held: Vec<TcpStream> = (0..2).map(|_| connect_from("127.0.0.1", addr)).collect();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let mut third = connect_from("127.0.0.1", addr);
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{answer:?}");
    assert!(answer.contains("\r\nRetry-After: 5\r\n"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once, not at the header timeout");
    // Another client is not affected, and a freed slot is free again.
    assert_eq!(get_over(connect_from("127.0.0.2", addr), "/healthz").unwrap().status, 200);
    drop(held);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(get_over(connect_from("127.0.0.1", addr), "/healthz").unwrap().status, 200);
    let stats = setup.served.statistics();
    assert_eq!(stats["connections_refused"], 1, "{stats}");
}

/// Downloads every torrent of `published` with aria2 through the webseed
/// alone, checks the bytes, and has aria2 check every piece itself.
fn aria2_downloads(aria2c: &Path, published: &Published) {
    let downloads = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(aria2c)
        .args([
            "--seed-time=0",
            "--bt-enable-lpd=false",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--enable-peer-exchange=false",
            "--bt-seed-unverified=false",
            "--follow-torrent=mem",
            "--disable-ipv6=true",
            "--interface=127.0.0.1",
            "--file-allocation=none",
            "--console-log-level=warn",
            "--summary-interval=0",
            "--max-concurrent-downloads=5",
        ])
        .arg(format!("--listen-port={port}"))
        .arg(format!("--dir={}", downloads.path().display()))
        .args(published.torrents.iter().map(|(_, _, path)| path))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_bounded(&mut child, Duration::from_secs(120), "aria2c");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(code, 0, "aria2c failed:\n{out}");
    published.assert_downloaded(downloads.path());
    for (_, _, path) in &published.torrents {
        aria2_check(aria2c, path, downloads.path());
    }
}

#[test]
#[cfg_attr(
    not(all(has_py_libtorrent, has_aria2c)),
    ignore = "needs Python's libtorrent and aria2c, not installed here (HELIO_E2E=1 requires it)"
)]
fn a_finished_logs_last_torrent_downloads_through_the_webseed() {
    let test = "a_finished_logs_last_torrent_downloads_through_the_webseed";
    let python = python_with("libtorrent", test);
    let aria2c = tool("aria2c", test);
    let published = publish_logs(5000, &[("fin", "spec", Profile::Spec)], None, "", "    final: true\n");
    let names: Vec<String> =
        published.torrents.iter().map(|(_, _, p)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "L01-0-1024.torrent",
            "L01-1024-2048.torrent",
            "L01-2048-3072.torrent",
            "L01-3072-4096.torrent",
            "L01-4096-5000.torrent"
        ]
    );
    // The last torrent's partial tiles and checkpoint, and nobody else's.
    let served = &published.served;
    let last = "/webseed/fin/fin-L01-4096-5000";
    let tile = served.get(&format!("{last}/tile/data/019.p/136"));
    assert_eq!(tile.status, 200);
    assert_eq!(tile.body, std::fs::read(published.log.path().join("tile/data/019.p/136")).unwrap());
    let checkpoint = served.get(&format!("{last}/checkpoint"));
    assert_eq!(
        (checkpoint.status, checkpoint.body.clone()),
        (200, std::fs::read(published.log.path().join("checkpoint")).unwrap())
    );
    assert_eq!(served.get(&format!("{last}/tile/1/000.p/19")).status, 200);
    for refused in [
        "/webseed/fin/fin-L01-0-1024/tile/data/019.p/136",
        "/webseed/fin/fin-L01-0-1024/checkpoint",
        &format!("{last}/tile/data/019.p/135"),
        &format!("{last}/tile/0/018.p/136"),
    ] {
        assert_eq!(served.get(refused).status, 404, "{refused}");
    }
    if let Some(python) = python {
        libtorrent_downloads(&python, &published, &[]);
    }
    if let Some(aria2c) = aria2c {
        aria2_downloads(&aria2c, &published);
    }
}

#[test]
#[cfg_attr(
    not(all(has_py_libtorrent, has_aria2c)),
    ignore = "needs Python's libtorrent and aria2c, not installed here (HELIO_E2E=1 requires it)"
)]
fn hybrid_torrents_download_through_the_webseed() {
    let test = "hybrid_torrents_download_through_the_webseed";
    let Some(python) = python_with("libtorrent", test) else { return };
    let published = publish(2 * 1024 + 100, &[("hyb", "spec", Profile::Spec)], None, "format: hybrid\n");
    assert_eq!(published.torrents.len(), 2);
    let pad = published.served.get("/webseed/hyb/hyb-L01-0-1024/.pad/1000");
    assert_eq!((pad.status, pad.body.clone()), (200, vec![0; 1000]), "pads are answered");
    libtorrent_downloads(&python, &published, &[]);
    // A v1-only client reads the hybrid's v1 half, pad files and all.
    if let Some(aria2c) = tool("aria2c", test) {
        aria2_downloads(&aria2c, &published);
    }
}

#[test]
#[cfg_attr(not(has_py_libtorrent), ignore = "needs Python's libtorrent, not installed here (HELIO_E2E=1 requires it)")]
fn torrents_pointed_at_a_new_web_seed_download_from_it_with_the_same_infohashes() {
    let test = "torrents_pointed_at_a_new_web_seed_download_from_it_with_the_same_infohashes";
    let Some(python) = python_with("libtorrent", test) else { return };
    let log = TestLog::new(2 * 1024 + 100);
    let upstream = log.serve();
    let site = Site::new();
    let logs = [LogEntry { name: "moved", url: upstream.url(), profile: "spec", extra: "" }];
    // Published first with a web seed that is gone.
    let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", "");
    site.build().ok();
    let summary = |start: u64, end: u64| {
        helio::torrent::metainfo::TorrentSummary::read(&site.torrent("moved", start, end)).unwrap()
    };
    let before = [summary(0, 1024), summary(1024, 2048)];
    let served = Served::start(&config, &[]);
    write_config(&site, &log, &logs, &format!("{}webseed/", served.url()), "");
    site.build().ok();
    let after = [summary(0, 1024), summary(1024, 2048)];
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(new.infohash, old.infohash, "same infohash");
        assert_eq!(new.webseeds, [format!("{}webseed/moved/", served.url())]);
    }
    let torrents = ["L01-0-1024.torrent", "L01-1024-2048.torrent"]
        .iter()
        .map(|name| ("moved".to_string(), Profile::Spec, site.out().join("moved").join(name)))
        .collect();
    let built_hits = upstream.hits("tile/data/000");
    let published = Published { log, upstream, _site: site, served, torrents, built_hits };
    libtorrent_downloads(&python, &published, &[]);
}

/// Sends a kept-alive GET of `path` over `stream` and reads the answer,
/// leaving the connection open.
fn get_kept_alive(stream: &TcpStream, path: &str) -> Reply {
    let mut writer = stream.try_clone().unwrap();
    write!(writer, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    read_reply(&mut BufReader::new(stream.try_clone().unwrap()), false).unwrap()
}

/// Whether the server closed `stream` within `wait` (the end, or a reset).
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

#[test]
fn at_the_connection_limit_new_clients_take_the_slots_of_the_longest_idle_connections() {
    raise_file_limit(4096);
    let log = TestLog::new(1024);
    let site = Site::new();
    let logs = [LogEntry { name: "test", url: log.path().display().to_string(), profile: "spec", extra: "" }];
    let config = write_config(&site, &log, &logs, "http://127.0.0.1:9/webseed/", "");
    // 400 open files: a limit of 144 connections, which the test can fill.
    let args = ["serve", "-c", config.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let served = Listening::start_with_files(&args, &[], 400, Duration::from_secs(15));
    // The warning is on stderr, read by its own thread: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !served.stderr.lock().unwrap().contains("connections at once") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let stderr = served.stderr.lock().unwrap().clone();
    let limit: usize = stderr
        .split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection limit announced: {stderr}"));
    assert!((16..1000).contains(&limit), "{limit}");
    let addr = served.addr;

    // One client kept alive after a request, then the rest of the slots
    // filled by connections from 64 addresses that never send one (a few
    // each, far under the per-client limit): the server is full.
    let kept = connect_from("127.0.1.1", addr);
    assert_eq!(get_kept_alive(&kept, "/healthz").status, 200);
    thread::sleep(Duration::from_millis(50));
    let mut idle: Vec<TcpStream> =
        (0..limit - 1).map(|i| connect_from(&format!("127.0.2.{}", i % 64 + 1), addr)).collect();
    thread::sleep(Duration::from_millis(300));

    // New clients are served at once, each in the slot of the connection
    // that has waited longest without a request.
    let started = Instant::now();
    let newcomers: Vec<TcpStream> = (0..20)
        .map(|k| {
            let stream = connect_from(&format!("127.0.3.{}", k + 1), addr);
            let reply = get_kept_alive(&stream, "/healthz");
            assert_eq!(reply.status, 200, "newcomer {k}: {}", String::from_utf8_lossy(&reply.body));
            stream
        })
        .collect();
    // Well within the header timeout that would close the idle ones anyway.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    for (i, stream) in idle.iter_mut().enumerate().take(20) {
        assert!(closed_within(stream, Duration::from_secs(2)), "the {i}th oldest idle connection is still open");
    }
    // The younger ones, the kept-alive client (idle longer, but it has been
    // served) and the newcomers stay.
    for stream in idle.iter_mut().skip(20).take(20) {
        assert!(!closed_within(stream, Duration::from_millis(20)), "a younger idle connection was closed");
    }
    let mut kept = kept;
    assert!(!closed_within(&mut kept, Duration::from_millis(20)), "the kept-alive client goes after the fresh ones");
    let stats = get_kept_alive(&newcomers[0], "/statistics.json");
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    assert_eq!(stats["connections_evicted"], 20, "{stats}");
    assert_eq!(stats["connections_refused"], 0, "{stats}");
    drop((idle, newcomers, kept));
    assert_eq!(served.terminate(), 0);
}
