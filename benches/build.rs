//! `cargo bench --bench build` (or `just bench`): the speed and memory of
//! `helio build`, printed beside the limits they chase, in one run.
//!
//! A generated log is served over loopback with its data tiles gzipped, as
//! Sunlight serves them. The build's wall time, throughput and peak RSS are
//! measured, and, on the same bytes, the single-core time of the work no build
//! can avoid: `gzip -dc` of the data tiles, and `openssl dgst -sha1` and
//! `-sha256` of the uncompressed tiles. Target: wall ≤ 1.5 × (their sum) / cores.
//!
//! A second section times `helio verify` of the first range, laid out as a
//! BitTorrent client saves it, against the site just built, beside the
//! single-core `openssl dgst -sha256` of the same bytes.
//!
//! Environment: `HELIO_BENCH_RANGES` (default 4) ranges of
//! `HELIO_BENCH_ENTRIES` (default 1,048,576) entries. The log is generated
//! once into `target/bench/` and reused. Then many logs over a slow network,
//! served by helio's fixture server and by Python's `http.server`
//! (`benches/slow_static.py`), see [`wan_bench`]; `HELIO_BENCH_ONLY=wan` runs
//! only that part, `HELIO_BENCH_ONLY=verify` only the build of the ranges and
//! `helio verify`.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use helio::fixture::generate::{FixtureLog, LogSpec, write_log};
use helio::fixture::server::{LogServer, ServerOptions};

#[path = "support/mod.rs"]
mod support;
use support::{Measured, measure, secs};

const ORIGIN: &str = "bench.helio.invalid";

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let ranges: u64 = env("HELIO_BENCH_RANGES", 4);
    let entries: u64 = env("HELIO_BENCH_ENTRIES", 1 << 20);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if std::env::var("HELIO_BENCH_ONLY").is_ok_and(|only| only == "wan") {
        return wan_bench(cores);
    }
    let size = ranges * entries + 1000;
    let log = bench_log(size);
    let many_count = env("HELIO_BENCH_MANY", 4) as usize;
    if std::env::var("HELIO_BENCH_ONLY").is_ok_and(|only| only == "many") {
        let many = many_logs_in_flight(&log, entries, many_count);
        println!(
            "{many_count} logs × 1 range at once: peak RSS {:.0} MB, {} wall",
            many.peak_rss as f64 / 1e6,
            secs(many.wall)
        );
        return;
    }
    let server =
        LogServer::start(&log.dir, ServerOptions { gzip_data_tiles: true, ..ServerOptions::default() }).unwrap();
    let work = tempfile::tempdir().unwrap();
    let verify_only = std::env::var("HELIO_BENCH_ONLY").is_ok_and(|only| only == "verify");
    let config = work.path().join("helio.yaml");
    std::fs::write(
        &config,
        format!(
            "scraper_contact_email: bench@helio.invalid\nentries_per_torrent: {entries}\ntrackers: []\n\
             feed_url_base: https://feeds.example.org/ct\n\
             logs:\n  - {{name: bench, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n",
            server.url(),
            log.key
        ),
    )
    .unwrap();
    let out = work.path().join("out");

    println!(
        "helio build benchmark: {ranges} ranges of {entries} entries, {cores} cores, data tiles gzipped over loopback"
    );
    let build = measure(Command::new(env!("CARGO_BIN_EXE_helio")).args(["build", "-q", "-c"]).arg(&config).arg(&out));
    assert!(build.success, "helio build failed");
    if verify_only {
        return verify_bench(&log, &server.url(), &out.join("bench"), entries, cores);
    }
    let tile_bytes = published_bytes(&out.join("bench/torrents.json"));
    // The same ranges as hybrid v1 + v2 torrents (BEP 52), in the same run.
    let hybrid_config = work.path().join("hybrid.yaml");
    std::fs::write(
        &hybrid_config,
        std::fs::read_to_string(&config).unwrap().replace("logs:\n", "format: hybrid\nlogs:\n"),
    )
    .unwrap();
    let hybrid = measure(
        Command::new(env!("CARGO_BIN_EXE_helio"))
            .args(["build", "-q", "-c"])
            .arg(&hybrid_config)
            .arg(work.path().join("out-hybrid")),
    );
    assert!(hybrid.success, "hybrid build failed");
    // Several logs building a default range each at once: the memory of a
    // build of many logs (`parallel_logs` of them in flight).
    let many = many_logs_in_flight(&log, entries, many_count);
    let again = measure(Command::new(env!("CARGO_BIN_EXE_helio")).args(["build", "-q", "-c"]).arg(&config).arg(&out));

    // The unavoidable work, single-core, on the same bytes.
    let scratch = log.dir.parent().unwrap().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let gz = scratch.join("data.gz");
    let raw = scratch.join("tiles.raw");
    concat_data_tiles(&log.dir, ranges * entries / 256, &gz);
    let gunzip = time_shell(&format!("gzip -dc {} > /dev/null", gz.display()));
    run_shell(&format!("gzip -dc {} > {}", gz.display(), raw.display()));
    let sha1 = time_shell(&format!("openssl dgst -sha1 {} > /dev/null", raw.display()));
    let sha256 = time_shell(&format!("openssl dgst -sha256 {} > /dev/null", raw.display()));
    let _ = std::fs::remove_file(&raw);
    let floor = gunzip + sha1 + sha256;
    let target = floor.mul_f64(1.5 / cores as f64);

    let mb = tile_bytes as f64 / 1e6;
    let row = |name: &str, value: String, note: String| println!("  {name:<34} {value:>14}   {note}");
    println!();
    row("content built (uncompressed)", format!("{mb:.0} MB"), format!("{ranges} torrents"));
    row(
        "helio build, wall",
        secs(build.wall),
        format!("target ≤ {} = 1.5 × {} / {cores} cores", secs(target), secs(floor)),
    );
    row("helio build, throughput", format!("{:.0} MB/s", mb / build.wall.as_secs_f64()), String::new());
    row("helio build, peak RSS", format!("{:.0} MB", build.peak_rss as f64 / 1e6), "target < 200 MB".into());
    let hybrid_ratio = hybrid.wall.as_secs_f64() / build.wall.as_secs_f64();
    row("helio build, hybrid, wall", secs(hybrid.wall), format!("{hybrid_ratio:.2} × v1; target ≤ 1.2"));
    row("helio build, hybrid, peak RSS", format!("{:.0} MB", hybrid.peak_rss as f64 / 1e6), String::new());
    row(
        &format!("{many_count} logs × 1 range at once, peak RSS"),
        format!("{:.0} MB", many.peak_rss as f64 / 1e6),
        format!("{} wall", secs(many.wall)),
    );
    row("  gzip -dc (data tiles)", secs(gunzip), format!("{:.0} MB/s", mb / gunzip.as_secs_f64()));
    row("  openssl dgst -sha1", secs(sha1), format!("{:.0} MB/s", mb / sha1.as_secs_f64()));
    row("  openssl dgst -sha256", secs(sha256), format!("{:.0} MB/s", mb / sha256.as_secs_f64()));
    row("helio build, nothing new", secs(again.wall), format!("{} requests in all", server.total_hits()));
    let site = site_bench(2000);
    row("site: publish 2,000 torrents", secs(site.first), "target < 0.50 s".into());
    row("site: publish again, unchanged", secs(site.again), "writes nothing".into());
    row("build, nothing new, 2,000 torrents", secs(site.build), "one checkpoint read + state; target < 1 s".into());
    println!();
    println!(
        "verdict: wall {} the target; peak RSS {} 200 MB; site regeneration {} 0.5 s",
        if build.wall <= target { "meets" } else { "MISSES" },
        if build.peak_rss < 200_000_000 { "under" } else { "OVER" },
        if site.first < Duration::from_millis(500) { "under" } else { "OVER" },
    );
    println!("verdict: hybrid {} 1.2 × the v1 wall time", if hybrid_ratio <= 1.2 { "within" } else { "OVER" });
    verify_bench(&log, &server.url(), &out.join("bench"), entries, cores);
    drop(server);
    wan_bench(cores);
}

/// Many logs across a real network: `HELIO_BENCH_WAN_LOGS` (default 4) logs,
/// each on its own loopback port answering every request after
/// `HELIO_BENCH_RTT_MS` (default 50) ms, with `HELIO_BENCH_WAN_RANGES` (4)
/// ranges of `HELIO_BENCH_WAN_ENTRIES` (16,384) entries, data tiles gzipped.
///
/// Two servers answer, in turn: helio's own fixture server, and one the
/// project did not write (Python's `http.server`, `benches/slow_static.py`;
/// skipped when no Python 3 is found: `HELIO_PYTHON` or `python3`). Each
/// serves the build twice, at the RTT and at `HELIO_BENCH_NEAR_MS` (1) ms,
/// and each build is set against the larger of the two floors it cannot
/// beat: latency (the busiest host's requests × RTT / its concurrency) and
/// the same build at ~0 ms. Beside it, the requests each host was answering
/// at once: the time-weighted average over the build's wall time (the
/// requests' summed time over the wall) and the peak. A trivial client
/// replaying the same requests to the Python servers shows what that
/// harness allows a client that does no work. Then a build that finds
/// nothing new over 59 logs at the RTT.
fn wan_bench(cores: usize) {
    let logs = env("HELIO_BENCH_WAN_LOGS", 4);
    let ranges = env("HELIO_BENCH_WAN_RANGES", 4);
    let entries = env("HELIO_BENCH_WAN_ENTRIES", 16_384);
    let rtt = Duration::from_millis(env("HELIO_BENCH_RTT_MS", 50));
    let near = Duration::from_millis(env("HELIO_BENCH_NEAR_MS", 1));
    let concurrency = 8;
    println!();
    println!(
        "WAN: {logs} logs on {logs} hosts, {ranges} ranges of {entries} entries each, concurrency {concurrency}, \
         {cores} cores; each server at {} ms and at ~0 ({} ms) per request",
        rtt.as_millis(),
        near.as_millis()
    );
    let fixtures: Vec<FixtureLog> = (0..logs).map(|i| wan_log(i, ranges * entries + 100)).collect();
    let build_over = |kind: ServerKind, latency: Duration| -> WanRun {
        let servers = WanServers::start(kind, &fixtures, latency);
        let work = tempfile::tempdir().unwrap();
        let mut yaml = format!(
            "scraper_contact_email: bench@helio.invalid\nentries_per_torrent: {entries}\ntrackers: []\n\
             feed_url_base: https://feeds.example.org/ct\nconcurrency: {concurrency}\nlogs:\n"
        );
        for (i, (url, log)) in servers.urls().iter().zip(&fixtures).enumerate() {
            yaml.push_str(&format!("  - {{name: wan{i}, log_url: '{url}', origin: {ORIGIN}, key: '{}'}}\n", log.key));
        }
        let config = work.path().join("helio.yaml");
        std::fs::write(&config, yaml).unwrap();
        let run =
            measure(Command::new(helio_bin()).args(["build", "-q", "-c"]).arg(&config).arg(work.path().join("out")));
        assert!(run.success, "WAN build failed");
        let hosts = servers.stats();
        let wall = run.wall.as_secs_f64();
        WanRun {
            latency_floor: latency
                .mul_f64(hosts.iter().map(|h| h.requests).max().unwrap_or(0) as f64 / concurrency as f64),
            busiest: hosts.iter().map(|h| h.requests).max().unwrap_or(0),
            average: hosts.iter().map(|h| h.request_seconds / wall).sum::<f64>() / hosts.len().max(1) as f64,
            peak: hosts.iter().map(|h| h.peak).max().unwrap_or(0),
            paths: servers.paths(),
            run,
        }
    };
    let row = |name: &str, value: String, note: String| println!("  {name:<38} {value:>8}   {note}");
    let mut ratios = Vec::new();
    let mut python_far = None;
    for kind in [ServerKind::Fixture, ServerKind::Python] {
        if kind == ServerKind::Python && python().is_none() {
            println!("  (no Python 3 found: set HELIO_PYTHON to run the build against http.server too)");
            continue;
        }
        let cpu = build_over(kind, near);
        let wan = build_over(kind, rtt);
        let floor = wan.latency_floor.max(cpu.run.wall);
        let ratio = wan.run.wall.as_secs_f64() / floor.as_secs_f64();
        let in_flight = |run: &WanRun| format!("in flight per host {:.1} avg, {} peak", run.average, run.peak);
        row(
            &format!("{}, {} ms", kind.name(), rtt.as_millis()),
            secs(wan.run.wall),
            format!(
                "{ratio:.2} × the larger floor; {}; peak RSS {:.0} MB",
                in_flight(&wan),
                wan.run.peak_rss as f64 / 1e6
            ),
        );
        row(
            "    latency floor",
            secs(wan.latency_floor),
            format!("busiest host: {} requests × {} ms / {concurrency}", wan.busiest, rtt.as_millis()),
        );
        row(&format!("    the same at {} ms", near.as_millis()), secs(cpu.run.wall), in_flight(&cpu));
        ratios.push((kind, ratio));
        if kind == ServerKind::Python {
            python_far = Some(wan);
        }
    }
    if let Some(wan) = python_far {
        let replay = replay(&fixtures, &wan.paths, rtt, concurrency);
        row(
            "  a trivial client, same requests",
            secs(replay),
            format!(
                "{:.2} × the latency floor, on the Python servers (fetch and drop: no inflating, no hashing)",
                replay.as_secs_f64() / wan.latency_floor.as_secs_f64()
            ),
        );
    }

    let (first, again) = nothing_new_many(59, rtt);
    row("59 logs, first build", secs(first), String::new());
    row("59 logs, nothing new", secs(again), "target < 1 s".into());
    println!();
    for (kind, ratio) in ratios {
        println!(
            "verdict: WAN wall on {} {} 1.25 × the larger floor",
            kind.name(),
            if ratio <= 1.25 { "within" } else { "OVER" }
        );
    }
    println!("verdict: nothing new over 59 logs {} 1 s", if again < Duration::from_secs(1) { "under" } else { "OVER" });
}

/// One build over the WAN, as its servers saw it.
struct WanRun {
    run: Measured,
    latency_floor: Duration,
    busiest: usize,
    /// Requests in flight per host, time-weighted over the wall time.
    average: f64,
    peak: usize,
    /// The paths each host was asked for (Python servers only).
    paths: Vec<Vec<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ServerKind {
    Fixture,
    Python,
}

impl ServerKind {
    fn name(self) -> &'static str {
        match self {
            ServerKind::Fixture => "helio's fixture server",
            ServerKind::Python => "Python http.server",
        }
    }
}

/// What one host answered during a build.
struct HostStats {
    requests: usize,
    request_seconds: f64,
    peak: usize,
}

/// One server per log, of either kind.
enum WanServers {
    Fixture(Vec<LogServer>),
    Python(Vec<PythonServer>),
}

impl WanServers {
    fn start(kind: ServerKind, fixtures: &[FixtureLog], latency: Duration) -> WanServers {
        match kind {
            ServerKind::Fixture => WanServers::Fixture(
                fixtures
                    .iter()
                    .map(|log| LogServer::start(&log.dir, ServerOptions { gzip_data_tiles: true, latency }).unwrap())
                    .collect(),
            ),
            ServerKind::Python => {
                WanServers::Python(fixtures.iter().map(|log| PythonServer::start(&log.dir, latency)).collect())
            }
        }
    }

    fn urls(&self) -> Vec<String> {
        match self {
            WanServers::Fixture(servers) => servers.iter().map(LogServer::url).collect(),
            WanServers::Python(servers) => servers.iter().map(PythonServer::url).collect(),
        }
    }

    fn stats(&self) -> Vec<HostStats> {
        match self {
            WanServers::Fixture(servers) => servers
                .iter()
                .map(|s| HostStats {
                    requests: s.total_hits(),
                    request_seconds: s.request_time().as_secs_f64(),
                    peak: s.peak_in_flight(),
                })
                .collect(),
            WanServers::Python(servers) => servers
                .iter()
                .map(|s| {
                    let stats = s.get("/__harness/stats");
                    HostStats {
                        requests: stats["requests"].as_u64().unwrap() as usize,
                        request_seconds: stats["request_seconds"].as_f64().unwrap(),
                        peak: stats["peak_in_flight"].as_u64().unwrap() as usize,
                    }
                })
                .collect(),
        }
    }

    fn paths(&self) -> Vec<Vec<String>> {
        match self {
            WanServers::Fixture(_) => Vec::new(),
            WanServers::Python(servers) => servers
                .iter()
                .map(|s| {
                    let paths = s.get("/__harness/paths");
                    paths.as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
                })
                .collect(),
        }
    }
}

/// The Python to run `benches/slow_static.py` with: `HELIO_PYTHON`, else
/// `python3` if there is one.
fn python() -> Option<String> {
    let candidate = std::env::var("HELIO_PYTHON").unwrap_or_else(|_| "python3".into());
    let works = Command::new(&candidate)
        .args(["-c", "import http.server"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    works.then_some(candidate)
}

fn slow_static() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/slow_static.py")
}

/// `benches/slow_static.py` serving one log folder; killed when dropped.
struct PythonServer {
    child: std::process::Child,
    port: u16,
}

impl PythonServer {
    fn start(dir: &Path, latency: Duration) -> PythonServer {
        use std::io::BufRead;
        let mut child = Command::new(python().unwrap())
            .arg(slow_static())
            .arg("serve")
            .arg(dir)
            .args(["--delay-ms", &format!("{}", latency.as_secs_f64() * 1000.0)])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening on ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            panic!("slow_static.py said {line:?}");
        });
        PythonServer { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// A JSON answer of the harness (`/__harness/…`).
    fn get(&self, path: &str) -> serde_json::Value {
        use std::io::Read;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        let at = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        serde_json::from_slice(&reply[at..]).unwrap()
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A trivial client (`slow_static.py replay`) asking fresh Python servers at
/// `rtt` for `paths`, every host at once, `concurrency` connections each.
fn replay(fixtures: &[FixtureLog], paths: &[Vec<String>], rtt: Duration, concurrency: usize) -> Duration {
    let servers: Vec<PythonServer> = fixtures.iter().map(|log| PythonServer::start(&log.dir, rtt)).collect();
    let plan: serde_json::Map<String, serde_json::Value> =
        servers.iter().zip(paths).map(|(server, paths)| (server.url(), serde_json::json!(paths))).collect();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("paths.json");
    std::fs::write(&file, serde_json::to_vec(&plan).unwrap()).unwrap();
    let output = Command::new(python().unwrap())
        .arg(slow_static())
        .args(["replay", "--concurrency", &concurrency.to_string()])
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "replay failed: {}", String::from_utf8_lossy(&output.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    Duration::from_secs_f64(answer["wall"].as_f64().unwrap())
}

fn wan_log(index: u64, size: u64) -> FixtureLog {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench/wan/log-{index}-{size}"));
    if !dir.join("checkpoint").exists() {
        eprintln!("generating WAN log {index} ({size} entries) in {} (once)…", dir.display());
    }
    write_log(&dir, &LogSpec { origin: ORIGIN.into(), seed: 100 + index, size, gzip_data_tiles: true }).unwrap()
}

/// `count` logs served from the same tiles, each on its own port, each
/// building one default-size range at once.
fn many_logs_in_flight(log: &FixtureLog, entries: u64, count: usize) -> Measured {
    let servers: Vec<LogServer> = (0..count)
        .map(|_| {
            LogServer::start(&log.dir, ServerOptions { gzip_data_tiles: true, ..ServerOptions::default() }).unwrap()
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let mut yaml = format!(
        "scraper_contact_email: bench@helio.invalid\nentries_per_torrent: {entries}\ntrackers: []\n\
         feed_url_base: https://feeds.example.org/ct\nparallel_logs: {count}\nlogs:\n"
    );
    for (i, server) in servers.iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: many{i}, log_url: '{}', origin: {ORIGIN}, key: '{}', entry_limit: {entries}}}\n",
            server.url(),
            log.key
        ));
    }
    let config = work.path().join("helio.yaml");
    std::fs::write(&config, yaml).unwrap();
    let run = measure(
        Command::new(env!("CARGO_BIN_EXE_helio")).args(["build", "-q", "-c"]).arg(&config).arg(work.path().join("out")),
    );
    assert!(run.success, "the build of {count} logs failed");
    run
}

/// `count` small logs, each on its own host at `rtt`: a first build, then the
/// wall time of a build that finds nothing new.
fn nothing_new_many(count: u64, rtt: Duration) -> (Duration, Duration) {
    let fixtures: Vec<FixtureLog> = (0..count).map(|i| wan_log(1000 + i, 1100)).collect();
    let servers: Vec<LogServer> = fixtures
        .iter()
        .map(|log| LogServer::start(&log.dir, ServerOptions { gzip_data_tiles: true, latency: rtt }).unwrap())
        .collect();
    let work = tempfile::tempdir().unwrap();
    let mut yaml = "scraper_contact_email: bench@helio.invalid\nentries_per_torrent: 1024\ntrackers: []\n\
                    feed_url_base: https://feeds.example.org/ct\nlogs:\n"
        .to_string();
    for (i, (server, log)) in servers.iter().zip(&fixtures).enumerate() {
        yaml.push_str(&format!(
            "  - {{name: many{i}, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n",
            server.url(),
            log.key
        ));
    }
    let config = work.path().join("helio.yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = work.path().join("out");
    let first = measure(Command::new(helio_bin()).args(["build", "-q", "-c"]).arg(&config).arg(&out));
    assert!(first.success, "first build of {count} logs failed");
    let again = measure(Command::new(helio_bin()).args(["build", "-q", "-c"]).arg(&config).arg(&out));
    assert!(again.success, "nothing-new build of {count} logs failed");
    (first.wall, again.wall)
}

/// `helio verify` of the first range, laid out as a BitTorrent client saves
/// it, against the site just built; beside it, on the same bytes, the
/// single-core `openssl dgst -sha256` and `-sha1`. Verify does both kinds of
/// work (the leaf hashes, and the torrent's piece hashes of every byte), so
/// its floor is their sum over the cores.
fn verify_bench(log: &FixtureLog, log_url: &str, site: &Path, entries: u64, cores: usize) {
    use helio::torrent::range::{TorrentFile, TorrentRange};

    let scratch = log.dir.parent().unwrap().join("scratch");
    let range = TorrentRange { start: 0, end: entries };
    let folder = scratch.join(range.torrent_name("bench"));
    let concatenated = scratch.join("range.raw");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&scratch).unwrap();
    let mut all = std::io::BufWriter::new(std::fs::File::create(&concatenated).unwrap());
    let readme = helio::torrent::profile::Profile::Spec.readme(log_url);
    let mut bytes = 0u64;
    for file in range.content() {
        let content = match &file {
            TorrentFile::Readme => readme.clone(),
            TorrentFile::Checkpoint => std::fs::read(log.dir.join("checkpoint")).unwrap(),
            TorrentFile::Tile(tile) => {
                let raw = std::fs::read(log.dir.join(tile.path())).unwrap();
                // Data tiles are stored gzipped; a hash tile may start with the magic by chance.
                if tile.level == helio::log::tile::Level::Data && raw.starts_with(&[0x1f, 0x8b]) {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out).unwrap();
                    out
                } else {
                    raw
                }
            }
        };
        let path = folder.join(file.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &content).unwrap();
        all.write_all(&content).unwrap();
        bytes += content.len() as u64;
    }
    all.flush().unwrap();
    drop(all);

    // Best of three, with the files in the page cache as after a download.
    let verify = || {
        measure(
            Command::new(env!("CARGO_BIN_EXE_helio"))
                .args(["verify", "-q", "--key", &log.key, "--site"])
                .arg(site)
                .arg(&folder),
        )
    };
    let runs: Vec<Measured> = (0..3).map(|_| verify()).collect();
    assert!(runs.iter().all(|run| run.success), "helio verify failed");
    let best = runs.iter().min_by_key(|run| run.wall).unwrap();
    let openssl = |digest: &str| {
        (0..3)
            .map(|_| time_shell(&format!("openssl dgst -{digest} {} > /dev/null", concatenated.display())))
            .min()
            .unwrap()
    };
    let (sha256, sha1) = (openssl("sha256"), openssl("sha1"));
    let floor = (sha256 + sha1).as_secs_f64() / cores as f64;
    let _ = std::fs::remove_file(&concatenated);
    let _ = std::fs::remove_dir_all(&folder);

    let gb = bytes as f64 / 1e9;
    let row = |name: &str, value: String, note: String| println!("  {name:<34} {value:>14}   {note}");
    println!();
    println!("helio verify benchmark: one range of {entries} entries laid out on disk, {cores} cores, best of 3");
    row("range content", format!("{:.0} MB", bytes as f64 / 1e6), String::new());
    row("helio verify, wall", secs(best.wall), format!("{:.2} GB/s", gb / best.wall.as_secs_f64()));
    row("helio verify, peak RSS", format!("{:.0} MB", best.peak_rss as f64 / 1e6), String::new());
    row("  openssl dgst -sha256 (1 core)", secs(sha256), format!("{:.2} GB/s", gb / sha256.as_secs_f64()));
    row("  openssl dgst -sha1 (1 core)", secs(sha1), format!("{:.2} GB/s", gb / sha1.as_secs_f64()));
    row("  floor: both over the cores", format!("{floor:.2} s"), format!("(SHA-256 + SHA-1) / {cores}"));
    println!();
    println!(
        "verdict: helio verify takes {:.2}× its floor, the single-core SHA-256 and SHA-1 of the range over {cores} cores",
        best.wall.as_secs_f64() / floor
    );
}

struct SiteTimes {
    first: Duration,
    again: Duration,
    build: Duration,
}

/// Feeds and pages for a log with `count` published torrents (state made up,
/// no network), then a build that finds nothing new over that state.
fn site_bench(count: u64) -> SiteTimes {
    use helio::site::{LogRun, RunStatus};

    let work = tempfile::tempdir().unwrap();
    let entries: u64 = 1 << 20;
    let size = count * entries + 12_345;
    // A log folder holding only a signed checkpoint: a build that finds no new
    // range reads nothing else.
    let log_dir = work.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let (checkpoint, key) = helio::fixture::published::checkpoint(ORIGIN, size, 5, 1_795_000_000_000).unwrap();
    std::fs::write(log_dir.join("checkpoint"), &checkpoint).unwrap();
    let config_path = work.path().join("helio.yaml");
    std::fs::write(
        &config_path,
        format!(
            "feed_url_base: https://feeds.example.org/ct\nwebseeds: [https://seed.example.org/webseed/]\n\
             logs:\n  - {{name: big, log_url: log, origin: {ORIGIN}, key: '{key}'}}\n"
        ),
    )
    .unwrap();
    let config = helio::config::Config::load(&config_path).unwrap();
    let out = work.path().join("out");
    helio::fixture::published::write_log_folder(&out.join("big"), &config, &config.logs[0], size, &checkpoint, 200_000)
        .unwrap();

    let runs = || vec![LogRun { name: "big".into(), status: RunStatus::Succeeded { at: 1_795_000_000 }, state: None }];
    let store = helio::store::Store::open(&helio::store::Target::Dir(out.clone())).unwrap();
    let locks = helio::site::log_folder::Locks::new(&store);
    let started = Instant::now();
    helio::site::publish(&config, &locks, runs()).unwrap();
    let first = started.elapsed();
    let started = Instant::now();
    helio::site::publish(&config, &locks, runs()).unwrap();
    let again = started.elapsed();
    drop(locks);
    let build =
        measure(Command::new(env!("CARGO_BIN_EXE_helio")).args(["build", "-q", "-c"]).arg(&config_path).arg(&out));
    assert!(build.success, "nothing-new build failed");
    SiteTimes { first, again, build: build.wall }
}

/// The helio binary the WAN part measures: this build's, or
/// `HELIO_BENCH_BIN` (another build of helio, to set two side by side on the
/// same machine and logs).
fn helio_bin() -> PathBuf {
    std::env::var_os("HELIO_BENCH_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_helio")), PathBuf::from)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The benchmark log, generated once per size.
fn bench_log(size: u64) -> FixtureLog {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let dir = root.join(format!("log-{size}"));
    let spec = LogSpec { origin: ORIGIN.into(), seed: 42, size, gzip_data_tiles: true };
    let ready = dir.join("checkpoint").exists();
    if !ready {
        eprint!("generating a {size}-entry log in {} (once; reused by later runs)… ", dir.display());
        let _ = std::io::stderr().flush();
    }
    let started = Instant::now();
    let log = write_log(&dir, &spec).unwrap();
    if !ready {
        eprintln!("{:.0}s", started.elapsed().as_secs_f64());
    }
    log
}

fn published_bytes(torrents_json: &Path) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(torrents_json).unwrap()).unwrap();
    json["torrents"].as_array().unwrap().iter().map(|t| t["data_size_bytes"].as_u64().unwrap()).sum()
}

/// Concatenates the gzipped data tiles 0..count into one multi-member gzip file.
fn concat_data_tiles(log: &Path, count: u64, into: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(into).unwrap());
    for index in 0..count {
        let path = log.join(helio::log::tile::TileId::data(index).path());
        out.write_all(&std::fs::read(path).unwrap()).unwrap();
    }
    out.flush().unwrap();
}

fn time_shell(script: &str) -> Duration {
    let started = Instant::now();
    run_shell(script);
    started.elapsed()
}

fn run_shell(script: &str) {
    let status = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
}
