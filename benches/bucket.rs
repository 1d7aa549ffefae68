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
//! the hashing's. Needs a Python with `moto.server` (`HELIO_PYTHON`, else
//! `/usr/bin/python3`, else `python3`); without one it says so and stops.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use helio::fixture::generate::{FixtureLog, LogSpec, write_log};
use helio::fixture::server::{LogServer, ServerOptions};

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

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
