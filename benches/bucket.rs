//! `cargo bench --bench bucket` (part of `just bench`): `helio build
//! s3://BUCKET/PREFIX` against a real S3 implementation on loopback (moto in
//! server mode, the harness of the storage tests, tests/helio/moto_s3.py,
//! which counts every request), for a log of many small torrents:
//!
//! - the first publish of `HELIO_BENCH_TORRENTS` (default 2,000) torrents
//!   into an empty bucket, beside the same build into a folder;
//! - a build that finds nothing new over them: wall time and requests by
//!   kind (the target is no PUT and no read of a `.torrent`).
//!
//! Ranges are one tile (256 entries) each, so the time is the store's, not
//! the hashing's.
//!
//! Then the ecosystem at its real size: 60 logs, two of them at the sizes
//! of real checkpoints (Sycamore2026h1, 804 M entries; Arche2026h1, 1.82 G),
//! about 3,000 default ranges in all, their published state made up
//! (`helio::fixture::published`), each log's checkpoint served by a fixture
//! server. A build with nothing new over all of them, into a folder and into
//! the bucket: wall time, peak memory and requests by kind; and the first
//! build over the state uploaded to the bucket, which writes every log's
//! status, feed and page and the root (PUTs per run, root rewrites
//! coalesced); then the sizes of the root page, `logs.json`, the all-logs
//! feed and the largest log's page and feed. `HELIO_BENCH_ONLY=ecosystem`
//! runs only this part.
//!
//! Needs a Python with `moto.server` (`HELIO_PYTHON`, else
//! `/usr/bin/python3`, else `python3`); without one it says so and stops.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use helio::fixture::generate::{FixtureLog, LogSpec, write_log};
use helio::fixture::server::{LogServer, ServerOptions};

#[path = "support/mod.rs"]
mod support;
use support::{measure, secs};

const ORIGIN: &str = "bench.helio.invalid";
const HARNESS: &str = include_str!("../tests/helio/moto_s3.py");

struct Moto {
    child: Child,
    _stdin: ChildStdin,
    endpoint: String,
    bucket: String,
    key: String,
    secret: String,
}

impl Moto {
    fn start() -> Option<Moto> {
        let python = python_with_moto()?;
        let mut child = Command::new(python)
            .arg("-c")
            .arg(HARNESS)
            .arg("helio-bench")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let info: serde_json::Value = serde_json::from_str(&line).unwrap();
        let text = |name: &str| info[name].as_str().unwrap().to_string();
        Some(Moto {
            endpoint: text("endpoint"),
            bucket: text("bucket"),
            key: text("key"),
            secret: text("secret"),
            child,
            _stdin: stdin,
        })
    }

    fn requests(&self) -> Vec<(String, String, String)> {
        let url = format!("{}/_helio/requests", self.endpoint);
        serde_json::from_str(&ureq::get(&url).call().unwrap().body_mut().read_to_string().unwrap()).unwrap()
    }

    fn clear_requests(&self) {
        ureq::delete(&format!("{}/_helio/requests", self.endpoint)).call().unwrap();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python_with_moto() -> Option<PathBuf> {
    let candidates = std::env::var_os("HELIO_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/python3"), PathBuf::from("python3")]);
    candidates.into_iter().find(|python| {
        Command::new(python).args(["-c", "import moto.server"]).output().is_ok_and(|o| o.status.success())
    })
}

/// Requests by kind: LIST, GET (of an object), GET .torrent, PUT, HEAD, DELETE.
fn tally(requests: &[(String, String, String)]) -> BTreeMap<&'static str, usize> {
    let mut kinds = BTreeMap::new();
    for (method, path, query) in requests {
        let kind = match method.as_str() {
            "GET" if query.contains("list-type=2") => "LIST",
            "GET" if path.ends_with(".torrent") => "GET .torrent",
            "GET" => "GET",
            "PUT" => "PUT",
            "HEAD" => "HEAD",
            // object_store deletes with a one-key bulk delete (POST ?delete).
            "DELETE" | "POST" => "DELETE",
            _ => "other",
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

fn show(kinds: &BTreeMap<&str, usize>) -> String {
    let total: usize = kinds.values().sum();
    let each: Vec<String> = kinds.iter().map(|(kind, count)| format!("{count} {kind}")).collect();
    format!("{total} requests: {}", each.join(", "))
}

fn main() {
    let only_ecosystem = std::env::var("HELIO_BENCH_ONLY").is_ok_and(|only| only == "ecosystem");
    if !only_ecosystem {
        many_torrents();
    }
    ecosystem();
}

fn many_torrents() {
    let torrents: u64 = std::env::var("HELIO_BENCH_TORRENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    println!();
    println!("helio build into a bucket (moto on loopback): {torrents} torrents of 256 entries");
    let Some(moto) = Moto::start() else {
        println!("  skipped: no Python with moto.server (set HELIO_PYTHON, see .ci/run)");
        return;
    };
    let log = bench_log(torrents * 256 + 100);
    let server =
        LogServer::start(&log.dir, ServerOptions { gzip_data_tiles: true, ..ServerOptions::default() }).unwrap();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("helio.yaml");
    std::fs::write(
        &config,
        format!(
            "scraper_contact_email: bench@helio.invalid\nentries_per_torrent: 256\ntrackers: []\n\
             feed_url_base: https://feeds.example.org/ct\n\
             logs:\n  - {{name: big, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n",
            server.url(),
            log.key
        ),
    )
    .unwrap();
    let url = format!("s3://{}/site", moto.bucket);
    let build = |target: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_helio"));
        command.args(["build", "-q", "-c"]).arg(&config).arg(target);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", &moto.key)
            .env("AWS_SECRET_ACCESS_KEY", &moto.secret)
            .stdout(Stdio::null());
        let started = Instant::now();
        let status = command.status().unwrap();
        assert!(status.success(), "helio build {target} failed");
        started.elapsed()
    };

    let folder = work.path().join("out");
    let into_folder = build(folder.to_str().unwrap());
    moto.clear_requests();
    let first = build(&url);
    let first_requests = tally(&moto.requests());
    moto.clear_requests();
    let again = build(&url);
    let again_requests = tally(&moto.requests());

    let row = |name: &str, value: String, note: String| println!("  {name:<34} {value:>14}   {note}");
    row("first publish into a folder", secs(into_folder), "for comparison".into());
    row("first publish into the bucket", secs(first), show(&first_requests));
    row("nothing new, bucket", secs(again), show(&again_requests));
    let writes =
        ["PUT", "DELETE", "GET .torrent"].iter().map(|kind| again_requests.get(kind).unwrap_or(&0)).sum::<usize>();
    println!();
    println!(
        "verdict: nothing new {} (no PUT, DELETE or .torrent read: {}), {} 1 s",
        if writes == 0 { "writes nothing" } else { "WRITES" },
        if writes == 0 { "yes" } else { "NO" },
        if again < Duration::from_secs(1) { "under" } else { "OVER" },
    );
}

/// The benchmark log, generated once per size into `target/bench/`.
fn bench_log(size: u64) -> FixtureLog {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench/bucket-log-{size}"));
    if !dir.join("checkpoint").exists() {
        eprintln!("generating a {size}-entry log in {} (once)…", dir.display());
    }
    write_log(&dir, &LogSpec { origin: ORIGIN.into(), seed: 43, size, gzip_data_tiles: true }).unwrap()
}

/// Real tree sizes where a real checkpoint gives one; the other 58 logs of
/// the list hold 2 to 16 default ranges each.
fn ecosystem_logs() -> Vec<(String, u64)> {
    let mut logs = vec![("sycamore2026h1".to_string(), 804_475_391), ("arche2026h1".to_string(), 1_822_167_730)];
    for i in 0..58u64 {
        logs.push((format!("log{i:02}"), (2 + (i * 13) % 15) * (1 << 20) + i * 1000 + 123));
    }
    logs
}

fn ecosystem() {
    let logs = ecosystem_logs();
    let ranges: u64 = logs.iter().map(|(_, size)| size >> 20).sum();
    println!();
    println!("the ecosystem, nothing new: {} logs, {ranges} default ranges published", logs.len());
    let work = tempfile::tempdir().unwrap();
    let served = work.path().join("logs");
    let mut entries = String::new();
    let mut checkpoints = Vec::new();
    for (seed, (name, size)) in logs.iter().enumerate() {
        let origin = format!("{name}.{ORIGIN}");
        let (checkpoint, key) =
            helio::fixture::published::checkpoint(&origin, *size, seed as u64, 1_795_000_000_000).unwrap();
        std::fs::create_dir_all(served.join(name)).unwrap();
        std::fs::write(served.join(name).join("checkpoint"), &checkpoint).unwrap();
        entries
            .push_str(&format!("  - {{name: {name}, log_url: 'SERVER{name}/', origin: '{origin}', key: '{key}'}}\n"));
        checkpoints.push(checkpoint);
    }
    let server = LogServer::start(&served, ServerOptions::default()).unwrap();
    let config_path = work.path().join("helio.yaml");
    std::fs::write(
        &config_path,
        format!(
            "scraper_contact_email: bench@helio.invalid\ntrackers: [udp://tracker.example.org:1337/announce]\n\
             webseeds: [https://seed.example.org/webseed/]\nfeed_url_base: https://feeds.example.org/ct\n\
             logs:\n{}",
            entries.replace("SERVER", &server.url())
        ),
    )
    .unwrap();
    let config = helio::config::Config::load(&config_path).unwrap();
    let folder = work.path().join("out");
    for (log, checkpoint) in config.logs.iter().zip(&checkpoints) {
        let size = logs.iter().find(|(name, _)| *name == log.name).map_or(0, |(_, size)| *size);
        helio::fixture::published::write_log_folder(&folder.join(&log.name), &config, log, size, checkpoint, 1_000)
            .unwrap();
    }
    let build = |target: &str, env: &[(&str, String)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_helio"));
        command.args(["build", "-q", "-c"]).arg(&config_path).arg(target);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command.env("SOURCE_DATE_EPOCH", "1795000000");
        for (key, value) in env {
            command.env(key, value);
        }
        let measured = measure(&mut command);
        assert!(measured.success, "helio build {target} failed");
        measured
    };
    let row = |name: &str, value: String, note: String| println!("  {name:<38} {value:>10}   {note}");
    let folder_text = folder.to_str().unwrap();
    let first = build(folder_text, &[]);
    let served_before = server.total_hits();
    let again = build(folder_text, &[]);
    row(
        "first build over the state, folder",
        secs(first.wall),
        "writes every log's status, feed and page, and the root".into(),
    );
    row(
        "nothing new, folder",
        secs(again.wall),
        format!(
            "peak RSS {:.0} MB, {} checkpoint requests to the logs",
            again.peak_rss as f64 / 1e6,
            server.total_hits() - served_before
        ),
    );
    let size_of = |path: &str| std::fs::metadata(folder.join(path)).map_or(0, |m| m.len());
    for (file, what) in [
        ("index.html", "root page (dashboard)"),
        ("logs.json", "logs.json"),
        ("feed.xml", "all-logs feed"),
        ("arche2026h1/index.html", "page of arche2026h1 (1,737 torrents)"),
        ("arche2026h1/feed.xml", "feed of arche2026h1"),
        ("arche2026h1/torrents.json", "torrents.json of arche2026h1"),
    ] {
        row(what, format!("{:.0} KB", size_of(file) as f64 / 1e3), String::new());
    }

    let Some(moto) = Moto::start() else {
        println!("  bucket: skipped, no Python with moto.server (set HELIO_PYTHON, see .ci/run)");
        return;
    };
    // The made-up state, uploaded as it is in the folder (no pages yet).
    let settings = helio::store::S3Settings {
        endpoint: Some(moto.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(moto.key.clone()),
        secret_access_key: Some(moto.secret.clone()),
        session_token: None,
        retry_budget: Duration::from_secs(30),
        inherit_env: false,
    };
    let url = format!("s3://{}/eco", moto.bucket);
    let target = helio::store::Target::parse(&url, None).unwrap();
    let store = helio::store::Store::open_with(&target, &settings).unwrap();
    let state_only = ["torrents.json", "checkpoint", ".torrent", "/tile/"];
    for path in walk(&folder) {
        let key = path.strip_prefix(&folder).unwrap().to_str().unwrap().to_string();
        if key.contains('/') && state_only.iter().any(|part| key.contains(part)) {
            store.write(&key, &std::fs::read(&path).unwrap()).unwrap();
        }
    }
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", moto.key.clone()),
        ("AWS_SECRET_ACCESS_KEY", moto.secret.clone()),
    ];
    moto.clear_requests();
    let first = build(&url, &env);
    let first_requests = moto.requests();
    let root_writes = first_requests.iter().filter(|(m, p, _)| m == "PUT" && p.ends_with("/eco/logs.json")).count();
    moto.clear_requests();
    let again = build(&url, &env);
    let again_requests = tally(&moto.requests());
    row(
        "first build over the state, bucket",
        secs(first.wall),
        format!("{}; logs.json written {root_writes} time(s)", show(&tally(&first_requests))),
    );
    row(
        "nothing new, bucket",
        secs(again.wall),
        format!("{}; peak RSS {:.0} MB", show(&again_requests), again.peak_rss as f64 / 1e6),
    );
    let puts = again_requests.get("PUT").copied().unwrap_or(0);
    println!();
    println!(
        "verdict: nothing new over {} logs takes {} in a folder and {} in the bucket, with {puts} PUT",
        logs.len(),
        secs(build(folder_text, &[]).wall),
        secs(again.wall)
    );
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { stack.push(path) } else { files.push(path) }
        }
    }
    files
}
