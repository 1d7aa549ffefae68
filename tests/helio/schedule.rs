//! Many logs at once over slow networks: logs run concurrently, politeness is
//! per host, a dead log delays no one, a run budget stops new ranges, and a
//! build killed at any moment leaves a site the next run completes exactly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use helio::fixture::generate::{FixtureLog, LogSpec, write_log};
use helio::fixture::server::{LogServer, ServerOptions};

use crate::support::*;

/// A fixed clock for the site, so separate runs can be compared byte for byte.
const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1795000000");

fn slow_server(dir: &Path, latency: Duration) -> LogServer {
    LogServer::start(dir, ServerOptions { gzip_data_tiles: true, latency }).unwrap()
}

fn log_entry(name: &str, url: &str, log: &FixtureLog) -> String {
    format!("  - {{name: {name}, log_url: '{url}', origin: {ORIGIN}, key: '{}'}}\n", log.key)
}

fn config(site: &Site, globals: &str, logs: &[String]) {
    site.write_config(&format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: []\n\
         feed_url_base: https://feeds.helio.invalid/t\n{globals}logs:\n{}",
        logs.concat()
    ));
}

fn build_args<'a>(site: &'a Site, out: &'a Path, extra: &[&'a str]) -> Vec<String> {
    let mut args =
        vec!["build".to_string(), "-c".into(), site.config().display().to_string(), out.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String], env: &[(&str, &str)]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    helio_with_env(&args, env)
}

fn timed(args: &[String], env: &[(&str, &str)]) -> (Run, Duration) {
    let started = Instant::now();
    let run = run(args, env);
    (run, started.elapsed())
}

#[test]
fn two_logs_on_two_hosts_take_about_the_time_of_one() {
    let latency = Duration::from_millis(100);
    let (a, b) = (TestLog::with_seed(8 * 1024, 1), TestLog::with_seed(8 * 1024, 2));
    let (server_a, server_b) = (slow_server(a.path(), latency), slow_server(b.path(), latency));
    let site = Site::new();
    config(
        &site,
        "concurrency: 4\n",
        &[log_entry("a", &server_a.url(), &a.log), log_entry("b", &server_b.url(), &b.log)],
    );
    let alone = site.dir.path().join("alone");
    let (one, one_time) = timed(&build_args(&site, &alone, &["--log", "a"]), &[]);
    one.ok();
    let both = site.dir.path().join("both");
    let (two, two_time) = timed(&build_args(&site, &both, &[]), &[]);
    two.ok();
    assert_eq!(two.stdout.lines().count(), 16, "{}", two.stdout);
    eprintln!("one log alone {one_time:?}, two logs on two hosts {two_time:?}");
    // One after the other would take twice as long; at once, about the same.
    assert!(
        two_time.as_secs_f64() < 1.5 * one_time.as_secs_f64(),
        "one log {one_time:?}, two logs on two hosts {two_time:?}"
    );
}

#[test]
fn logs_on_one_host_share_its_limit() {
    let root = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    let server = slow_server(root.path(), Duration::from_millis(20));
    for (name, seed) in [("a", 1), ("b", 2)] {
        let log = write_log(
            &root.path().join(name),
            &LogSpec { origin: ORIGIN.into(), seed, size: 4 * 1024, gzip_data_tiles: false },
        )
        .unwrap();
        entries.push(log_entry(name, &format!("{}{name}/", server.url()), &log));
    }
    let site = Site::new();
    config(&site, "concurrency: 3\n", &entries);
    let out = site.out();
    run(&build_args(&site, &out, &[]), &[]).ok();
    assert!(out.join("a/L01-3072-4096.torrent").exists() && out.join("b/L01-3072-4096.torrent").exists());
    let peak = server.peak_in_flight();
    assert!(peak <= 3, "{peak} requests at once on a host whose limit is 3");
    assert_eq!(peak, 3, "the two logs together use the host's whole limit");
}

#[test]
fn a_dead_host_listed_first_delays_no_one() {
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let live = TestLog::new(2 * 1024);
    let server = live.serve();
    let site = Site::new();
    config(
        &site,
        "unreachable_budget: 8s\n",
        &[
            format!("  - {{name: dead, log_url: 'http://127.0.0.1:{dead_port}/', origin: {ORIGIN}}}\n"),
            log_entry("live", &server.url(), &live.log),
        ],
    );
    let out = site.out();
    let args = build_args(&site, &out, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let mut child =
        command(&args, &[("HELIO_RETRY_BUDGET", "60")]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut published = Vec::new();
    for line in stdout.lines() {
        published.push((line.unwrap(), started.elapsed()));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let took = started.elapsed();

    assert_eq!(published.len(), 2, "{published:?}\n{stderr}");
    for (line, at) in &published {
        assert!(line.starts_with("live/"), "{line}");
        assert!(*at < Duration::from_secs(4), "{line} came {at:?} after the start, behind the dead log");
    }
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(took >= Duration::from_secs(7) && took < Duration::from_secs(30), "the short budget: {took:?}");
    let warning = format!("log dead: http://127.0.0.1:{dead_port}/checkpoint: ");
    let warned: Vec<&str> = stderr.lines().filter(|l| l.contains(&warning) && l.contains("retrying until")).collect();
    assert_eq!(warned.len(), 1, "one warning at the first failure:\n{stderr}");
    assert!(stderr.contains("helio: 1 of 2 logs failed: dead"), "{stderr}");
    let page = std::fs::read_to_string(out.join("dead/index.html")).unwrap();
    assert!(page.contains("Last build failed"), "{page}");
    assert!(out.join("live/L01-1024-2048.torrent").exists());
}

#[test]
fn a_run_budget_stops_new_ranges_and_the_next_run_completes_the_same_site() {
    let log = TestLog::new(8 * 1024 + 10);
    let server = slow_server(log.path(), Duration::from_millis(40));
    let site = Site::new();
    config(&site, "concurrency: 2\n", &[log_entry("test", &server.url(), &log.log)]);

    let out = site.out();
    let first = run(&build_args(&site, &out, &["--max-time", "600ms"]), &[EPOCH]);
    first.ok();
    let built = first.stdout.lines().count();
    assert!(built < 8, "the budget stopped it: {}", first.stdout);
    assert!(
        first.stderr.contains(&format!(
            "the run budget of 600ms ran out: {} ranges left for the next run (test {})",
            8 - built,
            8 - built
        )),
        "{}",
        first.stderr
    );
    run(&build_args(&site, &out, &[]), &[EPOCH]).ok();

    let clean = site.dir.path().join("clean");
    run(&build_args(&site, &clean, &[]), &[EPOCH]).ok();
    assert_eq!(snapshot(&out), snapshot(&clean), "the same site as one uninterrupted build");
}

#[test]
fn a_config_budget_and_a_bad_one() {
    let log = TestLog::new(1024);
    let site = Site::new();
    config(&site, "max_time: soon\n", &[log_entry("test", log.path().to_str().unwrap(), &log.log)]);
    let out = site.out();
    let bad = run(&build_args(&site, &out, &[]), &[]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("max_time: \"soon\" is not a duration such as 90s, 5m or 1h"), "{}", bad.stderr);
    let flag = run(&build_args(&site, &out, &["--max-time", "0s"]), &[]);
    assert_eq!(flag.code, 2, "{}", flag.stderr);
    config(&site, "max_time: 1h\nparallel_logs: 2\n", &[log_entry("test", log.path().to_str().unwrap(), &log.log)]);
    run(&build_args(&site, &out, &[]), &[]).ok();
    assert!(out.join("test/L01-0-1024.torrent").exists());
}

/// A small pseudo-random sequence (the test must not depend on a crate).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn kill_9_at_random_moments_then_a_normal_run_gives_the_clean_site() {
    let latency = Duration::from_millis(5);
    let (a, b) = (TestLog::with_seed(4 * 1024 + 3, 1), TestLog::with_seed(4 * 1024 + 9, 2));
    let (server_a, server_b) = (slow_server(a.path(), latency), slow_server(b.path(), latency));
    let site = Site::new();
    config(
        &site,
        "concurrency: 3\n",
        &[log_entry("a", &server_a.url(), &a.log), log_entry("b", &server_b.url(), &b.log)],
    );
    let clean = site.dir.path().join("clean");
    let (clean_run, full) = timed(&build_args(&site, &clean, &[]), &[EPOCH]);
    clean_run.ok();

    let out = site.out();
    let args = build_args(&site, &out, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut random = Lcg(seed);
    let window = full.as_millis().max(20) as u64;
    for round in 0..6 {
        let mut child = command(&args, &[EPOCH]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let after = Duration::from_millis(random.below(window));
        std::thread::sleep(after);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        eprintln!("round {round}: killed after {after:?} (seed {seed})");
    }
    run(&build_args(&site, &out, &[]), &[EPOCH]).ok();
    let leftovers: Vec<_> = snapshot(&out)
        .into_keys()
        .filter(|path| path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".tmp")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(snapshot(&out), snapshot(&clean), "killed builds then one normal run = one clean build (seed {seed})");
}

#[test]
fn config_wide_problems_are_one_warning_and_only_about_the_logs_of_the_run() {
    let logs: Vec<TestLog> = (1..=3).map(|seed| TestLog::with_seed(1024, seed)).collect();
    let site = Site::new();
    let entries: Vec<String> = logs
        .iter()
        .zip(["x", "y", "z"])
        .map(|(log, name)| format!("  - {{name: {name}, log_url: '{}', origin: {ORIGIN}}}\n", log.path().display()))
        .collect();
    site.write_config(&format!("entries_per_torrent: 1024\ntrackers: []\nlogs:\n{}", entries.concat()));
    let out = site.out();
    let all = run(&build_args(&site, &out, &[]), &[]);
    all.ok();
    let lines = |stderr: &str, needle: &str| stderr.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines(&all.stderr, "relative URLs"), 1, "{}", all.stderr);
    assert!(all.stderr.contains("the feeds of x, y, z link their torrents by relative URLs"), "{}", all.stderr);
    assert_eq!(lines(&all.stderr, "are not authenticated"), 1, "{}", all.stderr);

    let other = site.dir.path().join("other");
    let one = run(&build_args(&site, &other, &["--log", "y"]), &[]);
    one.ok();
    assert!(one.stderr.contains("the feeds of y link"), "{}", one.stderr);
    assert!(one.stderr.contains("checkpoints of y are not authenticated"), "{}", one.stderr);
    assert!(!one.stderr.contains(" x") && !one.stderr.contains(" z"), "{}", one.stderr);
}
