//! Running over many logs unattended: each log is published the moment it
//! is done whatever the others do, health is in `logs.json` and the metrics
//! file and survives a fresh runner, a recent failure can be only a warning,
//! the root page is a dashboard that fits a screen and a phone, and a
//! signal stops a build cleanly.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helio::fixture::server::{Fault, LogServer, ServerOptions};
use serde_json::Value;

use crate::support::*;

const T0: u64 = 1_795_000_000;

/// `helio build` with the site's clock at `at` (Unix seconds).
fn build_at(at: u64, config: &Path, out: &Path, extra: &[&str]) -> Run {
    build(config, out, extra, &[("SOURCE_DATE_EPOCH", &at.to_string())])
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The entry of `name` in the site's `logs.json`.
fn health(out: &Path, name: &str) -> Value {
    let logs = json(&out.join("logs.json"));
    logs["logs"].as_array().unwrap().iter().find(|log| log["name"] == name).cloned().unwrap_or(Value::Null)
}

fn build(config: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["build", "-c", config.to_str().unwrap(), out.to_str().unwrap()];
    args.extend_from_slice(extra);
    helio_with_env(&args, env)
}

/// A host that accepts connections and never answers; they stay open until
/// it is dropped.
struct Hanging {
    url: String,
    held: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Hanging {
    fn start() -> Hanging {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        Hanging { url, held }
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        for stream in self.held.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A log server whose every answer is `code`.
fn answering(code: u16, headers: &[(&str, &str)]) -> (tempfile::TempDir, LogServer) {
    let root = tempfile::tempdir().unwrap();
    let server = LogServer::start(root.path(), ServerOptions::default()).unwrap();
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    server.set_fault(move |_, _| Some(Fault::Status { code, headers: headers.clone(), body: b"busy".to_vec() }));
    (root, server)
}

fn closed_port() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}/")
}

/// A config of `bad` logs (name, URL) first, then `healthy` logs read from
/// one generated log's folder, two ranges each.
fn many_logs(site: &Site, globals: &str, bad: &[(&str, String)], healthy: usize) -> (TestLog, Vec<String>) {
    let log = TestLog::new(2 * 1024 + 100);
    let mut entries = String::new();
    for (name, url) in bad {
        entries
            .push_str(&format!("  - {{name: {name}, log_url: '{url}', origin: {ORIGIN}, key: '{}'}}\n", log.log.key));
    }
    let names: Vec<String> = (0..healthy).map(|i| format!("log{i:02}")).collect();
    for name in &names {
        entries.push_str(&format!(
            "  - {{name: {name}, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n",
            log.path().display(),
            log.log.key
        ));
    }
    site.write_config(&format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: []\n\
         feed_url_base: https://feeds.helio.invalid/t\n{globals}logs:\n{entries}"
    ));
    (log, names)
}

/// Every healthy log's own files are there and the root lists it as published.
fn published(out: &Path, names: &[String]) -> bool {
    let Ok(bytes) = std::fs::read(out.join("logs.json")) else { return false };
    let Ok(logs) = serde_json::from_slice::<Value>(&bytes) else { return false };
    let root_ok = names.iter().all(|name| {
        logs["logs"].as_array().is_some_and(|all| {
            all.iter().any(|log| log["name"] == name.as_str() && log["torrents"] == 2 && log["status"] == "ok")
        })
    });
    root_ok
        && out.join("index.html").is_file()
        && out.join("feed.xml").is_file()
        && names.iter().all(|name| {
            ["feed.xml", "index.html", "torrents.json", "status.json"].iter().all(|f| out.join(name).join(f).is_file())
        })
}

/// What a reader of the site finds holds together: every log of the
/// config is in `logs.json`; every torrent a feed or `torrents.json` lists
/// is there; no half-written file is visible.
fn assert_consistent(out: &Path, expected_logs: usize) {
    let logs = json(&out.join("logs.json"));
    assert_eq!(logs["logs"].as_array().unwrap().len(), expected_logs, "{logs}");
    for log in logs["logs"].as_array().unwrap() {
        let name = log["name"].as_str().unwrap();
        let list = out.join(name).join("torrents.json");
        if !list.exists() {
            assert_eq!(log["torrents"], 0, "{name} lists torrents but has no torrents.json: {log}");
            continue;
        }
        for torrent in json(&list)["torrents"].as_array().unwrap() {
            let url = torrent["torrent_url"].as_str().unwrap();
            let file = url.rsplit('/').next().unwrap();
            assert!(out.join(name).join(file).is_file(), "{name}: {file} is listed but missing");
        }
    }
    let feed = std::fs::read_to_string(out.join("feed.xml")).unwrap();
    let prefix = "https://feeds.helio.invalid/t/";
    for (at, _) in feed.match_indices("<enclosure url=\"") {
        let rest = &feed[at + "<enclosure url=\"".len()..];
        let url = &rest[..rest.find('"').unwrap()];
        let path = url.strip_prefix(prefix).unwrap();
        assert!(out.join(path).is_file(), "the all-logs feed links {url}, which is missing");
    }
    let visible_temporaries: Vec<PathBuf> = snapshot(out)
        .into_keys()
        .filter(|path| path.to_string_lossy().ends_with(".tmp") && !path.to_string_lossy().contains("/."))
        .collect();
    assert!(visible_temporaries.is_empty(), "{visible_temporaries:?}");
}

#[test]
fn sixty_logs_behind_a_hanging_a_failing_and_a_closed_host_are_published_at_once_and_survive_kill_9() {
    let hanging = Hanging::start();
    let (_root, failing) = answering(500, &[]);
    let bad = [("hang", hanging.url.clone()), ("err500", failing.url()), ("closed", closed_port())];
    let site = Site::new();
    let (_log, names) = many_logs(&site, "unreachable_budget: 40s\n", &bad, 57);
    let out = site.out();
    let config = site.config();
    let args = ["build", "-c", config.to_str().unwrap(), out.to_str().unwrap()];
    let started = Instant::now();
    let mut child =
        command(&args, &[("HELIO_RETRY_BUDGET", "120")]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    while !published(&out, &names) {
        assert!(child.try_wait().unwrap().is_none(), "the build ended before the healthy logs were published");
        assert!(started.elapsed() < Duration::from_secs(30), "the healthy logs were not published within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    eprintln!("57 healthy logs and the root published after {took:?}, the run still going");
    assert!(child.try_wait().unwrap().is_none(), "the hanging host holds its own log only");
    assert_consistent(&out, 60);
    // A finished log's lock is free: another build of it runs now.
    let again = build(&site.config(), &out, &["--log", "log03"], &[]);
    assert_eq!(again.code, 0, "a finished log is not held:\n{}", again.stderr);

    // kill -9 while the hanging host still holds its log.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_consistent(&out, 60);
    assert!(published(&out, &names));
    assert_eq!(health(&out, "hang")["status"], "pending", "never recorded: the run was killed first");

    // The next run (impatient) fails the three and says so in one line.
    let next = build(&site.config(), &out, &[], &[("HELIO_RETRY_BUDGET", "2")]);
    assert_eq!(next.code, 1, "{}", next.stderr);
    assert!(next.stderr.contains("helio: 3 of 60 logs failed: "), "{}", next.stderr);
    for (name, _) in &bad {
        assert!(next.stderr.contains(&format!("{name} (failing for ")), "{}", next.stderr);
        let entry = health(&out, name);
        assert_eq!(entry["status"], "failing", "{entry}");
        assert!(entry["failing_since"].is_string() && entry["error"].is_string(), "{entry}");
    }
    assert!(health(&out, "err500")["error"].as_str().unwrap().contains("HTTP 500"));
    let root = std::fs::read_to_string(out.join("index.html")).unwrap();
    let first_rows: Vec<&str> = root.lines().filter(|l| l.starts_with("<tr class=")).take(4).collect();
    assert_eq!(first_rows[..3], ["<tr class=\"failing\">"; 3], "failing logs first:\n{root}");
    assert!(root.contains("<li class=\"bad\"><strong>3</strong> failing</li>"), "{root}");
    assert_consistent(&out, 60);
}

#[test]
fn hosts_that_hang_or_answer_a_bare_500_get_the_short_budget_and_a_busy_log_the_long_one() {
    let hanging = Hanging::start();
    let (_a, bare) = answering(500, &[]);
    let (_b, busy) = answering(503, &[("Retry-After", "1")]);
    let site = Site::new();
    let bad = [("hang", hanging.url.clone()), ("bare", bare.url()), ("busy", busy.url())];
    many_logs(&site, "unreachable_budget: 2s\nretry_budget: 8s\n", &bad, 0);
    let out = site.out();
    for (name, _) in &bad {
        let started = Instant::now();
        let run = build(&site.config(), &out, &["--log", name], &[("HELIO_RETRY_BUDGET", "600")]);
        let took = started.elapsed();
        assert_eq!(run.code, 1, "{}", run.stderr);
        eprintln!("{name}: gave up after {took:?}");
        match *name {
            // The short budget plus one request (bounded by the budget too).
            "hang" | "bare" => assert!(took < Duration::from_secs(6), "{name} took {took:?}:\n{}", run.stderr),
            _ => assert!(took >= Duration::from_secs(6), "a log that says when to retry keeps trying: {took:?}"),
        }
    }
    assert!(health(&out, "busy")["error"].as_str().unwrap().contains("HTTP 503"));
}

#[test]
fn health_survives_failing_runs_and_a_runner_that_starts_from_the_published_site() {
    let log = TestLog::new(2 * 1024 + 5);
    let server = log.serve();
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "");
    let out = site.out();
    build_at(T0, &site.config(), &out, &[]).ok();
    let ok = health(&out, "test");
    assert_eq!((&ok["status"], &ok["last_success"]), (&Value::from("ok"), &Value::from("2026-11-18T11:06:40Z")));
    assert_eq!((&ok["failing_since"], &ok["error"]), (&Value::Null, &Value::Null));
    assert_eq!(ok["entries_behind"], 5);

    server.set_fault(|path, _| {
        (path == "checkpoint").then(|| Fault::Status { code: 500, headers: vec![], body: vec![] })
    });
    assert_eq!(build_at(T0 + 3600, &site.config(), &out, &[]).code, 1);
    assert_eq!(build_at(T0 + 7200, &site.config(), &out, &[]).code, 1);
    let failing = health(&out, "test");
    assert_eq!(failing["status"], "failing", "{failing}");
    assert_eq!(failing["failing_since"], "2026-11-18T12:06:40Z", "the first failure: {failing}");
    assert_eq!(failing["last_success"], "2026-11-18T11:06:40Z", "{failing}");
    assert!(failing["error"].as_str().unwrap().contains("/checkpoint: HTTP 500"), "{failing}");

    // A fresh runner restores the site from where it is served.
    let published = LogServer::start(&out, ServerOptions::default()).unwrap();
    let fresh = site.dir.path().join("fresh");
    let resumed = build_at(T0 + 10_800, &site.config(), &fresh, &["--resume-from", &published.url()]);
    assert_eq!(resumed.code, 1, "{}", resumed.stderr);
    assert!(resumed.stderr.contains("test (failing for 2 h)"), "{}", resumed.stderr);
    let carried = health(&fresh, "test");
    assert_eq!(carried["failing_since"], "2026-11-18T12:06:40Z", "not restarted: {carried}");
    assert_eq!(carried["last_success"], "2026-11-18T11:06:40Z", "{carried}");

    // Back up: the failure is gone, the success recorded.
    server.clear_fault();
    build_at(T0 + 14_400, &site.config(), &fresh, &[]).ok();
    let recovered = health(&fresh, "test");
    assert_eq!(recovered["status"], "ok", "{recovered}");
    assert_eq!(recovered["last_success"], "2026-11-18T15:06:40Z", "{recovered}");
    assert_eq!(recovered["failing_since"], Value::Null);
}

#[test]
fn alert_after_makes_a_recent_failure_a_warning_and_an_old_one_an_error() {
    let log = TestLog::new(1024 + 5);
    let server = log.serve();
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "");
    let out = site.out();
    build(&site.config(), &out, &[], &[("SOURCE_DATE_EPOCH", &T0.to_string())]).ok();
    server.set_fault(|path, _| {
        (path == "checkpoint").then(|| Fault::Status { code: 500, headers: vec![], body: vec![] })
    });
    let later = (T0 + 3600).to_string();
    assert_eq!(build(&site.config(), &out, &[], &[("SOURCE_DATE_EPOCH", &later)]).code, 1);

    // Ten minutes into the failure.
    let now = (T0 + 3600 + 600).to_string();
    let env = [("SOURCE_DATE_EPOCH", now.as_str())];
    let patient = build(&site.config(), &out, &["--alert-after", "1h"], &env);
    assert_eq!(patient.code, 0, "failing for 10 min, under the 1 h: a warning\n{}", patient.stderr);
    assert!(
        patient.stderr.contains("1 of 1 log failed, for less than --alert-after 1h so far: test (failing for 10 min)"),
        "{}",
        patient.stderr
    );
    // Under cron (-q) a failure younger than --alert-after says nothing at all.
    let cron = build(&site.config(), &out, &["-q", "--alert-after", "1h"], &env);
    assert_eq!((cron.code, cron.stdout.as_str(), cron.stderr.as_str()), (0, "", ""), "quiet until it is time");
    let impatient = build(&site.config(), &out, &["--alert-after", "5m"], &env);
    assert_eq!(impatient.code, 1, "{}", impatient.stderr);
    assert!(impatient.stderr.contains("helio: 1 of 1 log failed: test (failing for 10 min)"), "{}", impatient.stderr);
    let cron = build(&site.config(), &out, &["-q", "--alert-after", "5m"], &env);
    assert_eq!(cron.code, 1);
    assert!(cron.stderr.contains(" WARN ") && cron.stderr.contains("retrying until"), "{}", cron.stderr);
    assert!(
        cron.stderr.contains("ERROR log test: ") && cron.stderr.contains("checkpoint: HTTP 500"),
        "{}",
        cron.stderr
    );
    // The config key does the same as the flag; the flag wins.
    site.config_for("test", &server.url(), &log.log, "alert_after: 1h\n");
    assert_eq!(build(&site.config(), &out, &[], &env).code, 0);
    assert_eq!(build(&site.config(), &out, &["--alert-after", "0s"], &env).code, 1);
}

#[test]
#[cfg_attr(not(has_promtool), ignore = "needs promtool, not installed here (HELIO_E2E=1 requires it)")]
fn the_metrics_file_is_prometheus_text_that_promtool_accepts() {
    let test = "the_metrics_file_is_prometheus_text_that_promtool_accepts";
    let (_root, failing) = answering(500, &[]);
    let site = Site::new();
    let (_log, _) = many_logs(&site, "", &[("down", failing.url())], 2);
    let out = site.out();
    let metrics = site.dir.path().join("textfile/helio.prom");
    let env = [("SOURCE_DATE_EPOCH", "1795000000"), ("HELIO_RETRY_BUDGET", "1")];
    let run = build(&site.config(), &out, &["--metrics-file", metrics.to_str().unwrap()], &env);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let text = std::fs::read_to_string(&metrics).unwrap();
    for line in [
        "helio_log_failing{log=\"down\"} 1",
        "helio_log_failing{log=\"log00\"} 0",
        "helio_log_entries_behind{log=\"log01\"} 100",
        "helio_log_torrents{log=\"log01\"} 2",
        "helio_log_last_success_timestamp_seconds{log=\"log00\"} 1795000000",
        "helio_log_failing_since_timestamp_seconds{log=\"down\"} 1795000000",
        "helio_build_last_run_timestamp_seconds 1795000000",
        "helio_build_logs_failed 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing in:\n{text}");
    }
    assert!(text.contains("\nhelio_build_duration_seconds "), "{text}");
    let names: BTreeSet<String> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["helio.prom".to_string()]), "no temporary file is left");

    let Some(promtool) = tool("promtool", test) else { return };
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&metrics).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    check.stdout.take().unwrap().read_to_string(&mut said).unwrap();
    check.stderr.take().unwrap().read_to_string(&mut said).unwrap();
    assert!(check.wait().unwrap().success(), "promtool check metrics:\n{said}\n{text}");
    assert!(said.trim().is_empty(), "promtool found problems:\n{said}");

    // The config key does the same.
    let config = std::fs::read_to_string(site.config()).unwrap();
    let keyed = site.dir.path().join("keyed.prom");
    site.write_config(&config.replace("logs:\n", &format!("metrics_file: {}\nlogs:\n", keyed.display())));
    build(&site.config(), &out, &[], &env);
    assert!(keyed.is_file());
}

/// The layout of `page` at `width` CSS pixels: the page's width and height,
/// and its `.table` box's content width and own width. The page needs no
/// script; a page beside it shows it in a frame of that width (a headless
/// window cannot be narrower than 500 px) and measures it.
fn measure(chromium: &Path, profile: &Path, page: &Path, width: u32) -> (u64, u64, u64, u64) {
    let name = page.file_name().unwrap().to_str().unwrap();
    let frame = format!(
        "<!DOCTYPE html><html><body style=\"margin:0\">\
         <iframe id=\"f\" src=\"{name}\" style=\"border:0;width:{width}px;height:900px\"></iframe>\
         <script>window.addEventListener('load', () => {{ const d = document.getElementById('f').contentDocument; \
         const t = d.querySelector('.table'); document.body.setAttribute('data-measured', \
         [d.documentElement.scrollWidth, d.documentElement.scrollHeight, t.scrollWidth, t.clientWidth].join(' ')); \
         }});</script></body></html>"
    );
    let copy = page.with_file_name("measure.html");
    std::fs::write(&copy, frame).unwrap();
    let output = chromium_command(chromium, profile)
        .args(["--allow-file-access-from-files", "--window-size=1400,1000"])
        .arg("--dump-dom")
        .arg(format!("file://{}", copy.display()))
        .output()
        .unwrap();
    std::fs::remove_file(&copy).unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    let at = dom.find("data-measured=\"").unwrap_or_else(|| panic!("not measured:\n{dom}"));
    let values: Vec<u64> = dom[at + 15..].split('"').next().unwrap().split(' ').map(|v| v.parse().unwrap()).collect();
    (values[0], values[1], values[2], values[3])
}

#[test]
#[cfg_attr(not(has_chromium), ignore = "needs chromium, not installed here (HELIO_E2E=1 requires it)")]
fn the_dashboard_of_sixty_logs_fits_two_screens_and_never_overflows_a_phone() {
    let test = "the_dashboard_of_sixty_logs_fits_two_screens_and_never_overflows_a_phone";
    let site = Site::new();
    let bad = [("closed-a", closed_port()), ("closed-b", closed_port()), ("closed-c", closed_port())];
    let (_log, _) = many_logs(&site, "", &bad, 57);
    let out = site.out();
    assert_eq!(build(&site.config(), &out, &[], &[("HELIO_RETRY_BUDGET", "1")]).code, 1);
    let Some(chromium) = tool("chromium", test) else { return };
    let profile = tempfile::tempdir().unwrap();
    let page = out.join("index.html");
    // HELIO_SCREENSHOTS=<dir> keeps pictures of the dashboard for a person to judge.
    if let Some(dir) = std::env::var_os("HELIO_SCREENSHOTS").map(PathBuf::from) {
        std::fs::create_dir_all(&dir).unwrap();
        for (size, window) in [("wide", "1280,2100"), ("phone", "390,1400")] {
            let png = dir.join(format!("dashboard-{size}.png"));
            let status = chromium_command(&chromium, profile.path())
                .arg(format!("--window-size={window}"))
                .arg(format!("--screenshot={}", png.display()))
                .arg(format!("file://{}", page.display()))
                .output()
                .unwrap();
            assert!(status.status.success() && png.is_file(), "{}", png.display());
        }
    }
    let (width, height, _, _) = measure(&chromium, profile.path(), &page, 1280);
    eprintln!("1280 px wide: {width} × {height}");
    assert!(width <= 1280, "no horizontal scrolling at 1280 px: {width}");
    // Two screens of a 1080-line display.
    assert!(height <= 2 * 1080, "60 logs in about two screens at 1280 px: {height} px");
    let (width, _, table, box_width) = measure(&chromium, profile.path(), &page, 390);
    eprintln!("390 px wide: page {width}, table {table} in a box of {box_width}");
    assert!(width <= 390, "the page overflows a phone: {width} px");
    assert!(table > box_width, "the table scrolls inside its own box ({table} > {box_width})");
}

#[test]
fn a_signal_stops_new_ranges_and_every_log_is_published_before_the_build_exits() {
    let log = TestLog::new(12 * 1024 + 3);
    let latency = Duration::from_millis(60);
    let server = LogServer::start(log.path(), ServerOptions { gzip_data_tiles: true, latency }).unwrap();
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "concurrency: 1\n");
    let out = site.out();
    let config = site.config();
    let args = ["build", "-c", config.to_str().unwrap(), out.to_str().unwrap()];
    let mut child = command(&args, &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("test/L01-0-1024.torrent "), "{first}");
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = wait_bounded(&mut child, Duration::from_secs(30), "helio build after SIGINT");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(code, 130, "128 + SIGINT:\n{stderr}");
    assert!(stderr.contains("stopping: the ranges under way finish"), "{stderr}");
    assert!(stderr.contains("helio: stopped by SIGINT"), "{stderr}");
    let built = json(&out.join("test/torrents.json"))["torrents"].as_array().unwrap().len();
    assert!((1..12).contains(&built), "stopped early, after what was under way: {built} torrents");
    let feed = std::fs::read_to_string(out.join("test/feed.xml")).unwrap();
    assert_eq!(feed.matches("<item>").count(), built, "the feed lists every torrent built");
    assert_eq!(health(&out, "test")["torrents"], built);
    assert_consistent(&out, 1);
}

/// Runs `helio` under a pseudo-terminal (util-linux `script`), as a person
/// at a terminal would, and returns what the terminal showed.
fn on_a_terminal(script: &Path, args: &[&str]) -> (i32, String) {
    let line =
        std::iter::once(env!("CARGO_BIN_EXE_helio")).chain(args.iter().copied()).map(shell_quote).collect::<Vec<_>>();
    let output = Command::new(script)
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env_remove("HELIO_LOG")
        .env("HELIO_RETRY_BUDGET", "3")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).replace('\r', ""))
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[test]
#[cfg_attr(not(has_script), ignore = "needs script, not installed here (HELIO_E2E=1 requires it)")]
fn on_a_terminal_a_torrent_is_one_line_and_nothing_new_is_one_summary() {
    let test = "on_a_terminal_a_torrent_is_one_line_and_nothing_new_is_one_summary";
    let Some(script) = tool("script", test) else { return };
    let log = TestLog::new(2 * 1024 + 1);
    let site = Site::new();
    site.config_for("test", log.path().to_str().unwrap(), &log.log, "");
    let out = site.out();
    let config = site.config();
    let args = ["build", "-c", config.to_str().unwrap(), out.to_str().unwrap()];
    let (code, shown) = on_a_terminal(&script, &args);
    assert_eq!(code, 0, "{shown}");
    let torrent_lines: Vec<&str> = shown.lines().filter(|l| l.contains("test/L01-1024-2048.torrent ")).collect();
    assert_eq!(torrent_lines.len(), 1, "one line per torrent:\n{shown}");
    assert!(!shown.contains("building") && !shown.contains("wrote"), "{shown}");
    assert!(shown.contains("1 log: 2 new torrents ("), "{shown}");

    let (code, shown) = on_a_terminal(&script, &args);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.trim_end().ends_with(" s)") && shown.contains("1 log: nothing new ("), "{shown:?}");
    // Off a terminal (cron), nothing new prints nothing.
    let quiet = build(&site.config(), &out, &[], &[]);
    assert_eq!((quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()), (0, "", ""));
}
