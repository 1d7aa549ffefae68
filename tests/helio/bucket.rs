//! `helio build s3://BUCKET/PREFIX` end to end, against moto in server mode
//! (see store.rs): the same layout as a folder, the state read back from the
//! bucket by a runner that starts empty, nothing written when nothing is new
//! (counted on the wire), the order readers rely on, leases between builds,
//! and builds of different logs publishing into one bucket at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use helio::fixture::server::{LogServer, ServerOptions};
use helio::torrent::range::TorrentRange;

use crate::store::Moto;
use crate::support::*;

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1795000000");

/// The helio binary with the server's AWS environment and nothing else of
/// the developer's.
fn command_s3(moto: &Moto, args: &[&str]) -> std::process::Command {
    let mut command = command(args, &[EPOCH]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.envs(moto.env());
    command
}

fn helio_s3(moto: &Moto, args: &[&str]) -> Run {
    finish(command_s3(moto, args).output().unwrap())
}

fn spawn_s3(moto: &Moto, args: &[&str]) -> Child {
    command_s3(moto, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// `helio build -c CONFIG s3://BUCKET/PREFIX EXTRA…`.
fn build_args<'a>(config: &'a Path, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["build", "-c", config.to_str().unwrap(), url];
    args.extend(extra);
    args
}

/// Requests by method, and the paths of the PUTs in order.
fn tally(requests: &[(String, String, String)]) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut methods = BTreeMap::new();
    let mut puts = Vec::new();
    for (method, path, _) in requests {
        *methods.entry(method.clone()).or_insert(0) += 1;
        if method == "PUT" {
            puts.push(path.clone());
        }
    }
    (methods, puts)
}

/// The files of a folder site, locks left out.
fn folder_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .map(|(path, bytes)| (path.to_str().unwrap().to_string(), bytes))
        .filter(|(path, _)| !path.split('/').any(|segment| segment.starts_with('.')))
        .collect()
}

#[test]
#[cfg_attr(
    not(all(has_py_moto, has_aria2c)),
    ignore = "needs Python's moto.server and aria2c, not installed here (HELIO_E2E=1 requires it)"
)]
fn a_bucket_gets_the_folder_layout_and_a_build_with_nothing_new_writes_nothing() {
    let Some(moto) = Moto::start("a_bucket_gets_the_folder_layout_and_a_build_with_nothing_new_writes_nothing") else {
        return;
    };
    let mut log = TestLog::new(2 * 1024 + 100);
    let upstream = log.serve();
    let site = Site::new();
    let config = site.config_for("demo", &upstream.url(), &log.log, "");
    let url = format!("s3://{}/site", moto.bucket);

    // First build: the folder's layout, byte for byte, and no lease left behind.
    let first = helio_s3(&moto, &build_args(&config, &url, &[]));
    first.ok();
    assert_eq!(first.stdout.lines().count(), 2, "{}", first.stdout);
    helio_with_env(&["build", "-c", config.to_str().unwrap(), site.out().to_str().unwrap()], &[EPOCH]).ok();
    let in_bucket = moto.objects("site");
    let in_folder = folder_files(&site.out());
    assert_eq!(in_bucket.keys().collect::<Vec<_>>(), in_folder.keys().collect::<Vec<_>>());
    for (key, bytes) in &in_folder {
        assert!(in_bucket[key] == *bytes, "{key} differs between the bucket and the folder");
    }
    assert!(in_bucket.contains_key("demo/tile/1/000.p/8"), "proof tiles: {:?}", in_bucket.keys());

    // Every kind of object with its type and lifetime.
    let short = "public, max-age=300";
    for (key, content_type, cache_control) in [
        ("demo/L01-0-1024.torrent", "application/x-bittorrent", "public, max-age=86400"),
        ("demo/feed.xml", "application/rss+xml", short),
        ("demo/torrents.json", "application/json", short),
        ("demo/index.html", "text/html; charset=utf-8", short),
        ("demo/checkpoint", "text/plain; charset=utf-8", short),
        ("index.html", "text/html; charset=utf-8", short),
        ("style.css", "text/css; charset=utf-8", short),
        ("logs.json", "application/json", short),
    ] {
        let kind = moto.kind(&format!("site/{key}"));
        assert_eq!(kind, (Some(content_type.to_string()), Some(cache_control.to_string())), "{key}");
    }
    // helio serve sends the same headers for the same files as the bucket holds them.
    let out = site.out();
    let args = ["serve", "-c", config.to_str().unwrap(), out.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let served = Listening::start(&args, &[], std::time::Duration::from_secs(20));
    for key in in_folder.keys() {
        let response = ureq::get(&format!("{}torrents/{key}", served.url())).call().unwrap();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let served = (header("content-type"), header("cache-control"));
        assert_eq!(served, moto.kind(&format!("site/{key}")), "{key}: helio serve and the bucket disagree");
    }
    drop(served);

    // Nothing new: no PUT, no DELETE, no lease, no .torrent read.
    moto.clear_requests();
    let again = helio_s3(&moto, &build_args(&config, &url, &[]));
    again.ok();
    assert_eq!(again.stdout, "");
    let requests = moto.requests();
    let (methods, _) = tally(&requests);
    eprintln!("nothing new: {methods:?}");
    assert_eq!(methods.keys().collect::<Vec<_>>(), ["GET"], "{requests:?}");
    assert!(!requests.iter().any(|(_, path, _)| path.ends_with(".torrent")), "{requests:?}");
    assert!(requests.len() <= 8, "{} requests: {requests:?}", requests.len());
    assert_eq!(moto.objects("site"), in_bucket);

    // The log grows: the new torrent first, then the proof tiles, the
    // checkpoint, the list, then the feed and the pages, the root last.
    log.resize(3 * 1024 + 5);
    moto.clear_requests();
    let grown = helio_s3(&moto, &build_args(&config, &url, &[]));
    grown.ok();
    assert!(grown.stdout.starts_with("demo/L01-2048-3072.torrent ") && grown.stdout.lines().count() == 1);
    let requests = moto.requests();
    let (methods, puts) = tally(&requests);
    eprintln!("one new range: {methods:?}\n{requests:#?}");
    assert!(!requests.iter().any(|(m, path, _)| m == "GET" && path.ends_with(".torrent")), "{requests:?}");
    let at = |suffix: &str| {
        puts.iter().position(|path| path.ends_with(suffix)).unwrap_or_else(|| panic!("no PUT of {suffix}: {puts:?}"))
    };
    let last_tile = puts.iter().rposition(|path| path.contains("/demo/tile/")).expect("new proof tiles");
    assert_eq!(puts[0], "/helio-test/site/demo/.helio.lock", "the log's lease first: {puts:?}");
    assert!(at("/demo/L01-2048-3072.torrent") < at("/demo/torrents.json"), "{puts:?}");
    // The range is listed only once the proof tiles and the checkpoint that prove it are up.
    assert!(last_tile < at("/demo/checkpoint") && at("/demo/checkpoint") < at("/demo/torrents.json"), "{puts:?}");
    assert!(at("/demo/torrents.json") < at("/demo/feed.xml") && at("/demo/feed.xml") < at("/demo/index.html"));
    assert!(at("/demo/index.html") < at("/site/index.html") && at("/site/index.html") < at("/site/logs.json"));
    assert!(!puts.iter().any(|path| path.ends_with("style.css") || path.ends_with("L01-0-1024.torrent")), "{puts:?}");
    assert!(!moto.objects("site").keys().any(|key| key.contains(".helio.lock")), "leases released");

    // A runner that starts with an empty disk continues from the bucket:
    // only the new range is built, no published range is fetched again.
    log.resize(4 * 1024 + 5);
    let data_tile_fetches = upstream.hits("tile/data/000");
    let runner = Site::new();
    let runner_config = runner.config_for("demo", &upstream.url(), &log.log, "");
    let next = helio_s3(&moto, &build_args(&runner_config, &url, &[]));
    next.ok();
    assert_eq!(next.stdout.lines().count(), 1, "{}", next.stdout);
    assert!(next.stdout.starts_with("demo/L01-3072-4096.torrent "), "{}", next.stdout);
    assert_eq!(upstream.hits("tile/data/000"), data_tile_fetches, "a published range was fetched again");
    let listed: serde_json::Value = serde_json::from_slice(&moto.objects("site")["demo/torrents.json"]).unwrap();
    assert_eq!(listed["torrents"].as_array().unwrap().len(), 4);
    assert!(!runner.out().exists(), "nothing on the runner's disk");

    // Downloaded back from the bucket, the torrents verify against the
    // checkpoint and proof tiles published beside them.
    let downloads = tempfile::tempdir().unwrap();
    let readme = format!("LOG_URL: {}\n", upstream.url().trim_end_matches('/'));
    let objects = moto.objects("site");
    let mut folders = Vec::new();
    for (start, end) in [(0, 1024), (1024, 2048), (2048, 3072), (3072, 4096)] {
        let file = TorrentRange { start, end }.file_name();
        let torrent = &objects[&format!("demo/{file}")];
        std::fs::write(downloads.path().join(&file), torrent).unwrap();
        folders.push(lay_out(log.path(), torrent, readme.as_bytes(), downloads.path()));
    }
    let mut args = vec!["verify"];
    args.extend(folders.iter().map(|folder| folder.to_str().unwrap()));
    let site_url = moto.public_url("site/demo/");
    args.extend(["--site", &site_url, "--key", &log.log.key]);
    let verified = helio(&args);
    verified.ok();
    assert_eq!(verified.stdout.lines().filter(|line| line.contains(" ok: entries ")).count(), 4, "{}", verified.stdout);
    if let Some(aria2c) = tool("aria2c", "a_bucket_gets_the_folder_layout_and_a_build_with_nothing_new_writes_nothing")
    {
        aria2_check(&aria2c, &downloads.path().join("L01-3072-4096.torrent"), downloads.path());
    }
}

/// A log whose data tiles are held back until `gate` opens (at most 60 s),
/// so that a build holds its lease as long as the test needs.
fn gated_log(size: u64, gate: Arc<AtomicBool>) -> (TestLog, LogServer) {
    let log = TestLog::new(size);
    let server = LogServer::start(log.path(), ServerOptions::default()).unwrap();
    server.set_fault(move |path, _| {
        let until = Instant::now() + Duration::from_secs(60);
        while path.starts_with("tile/data/") && !gate.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    });
    (log, server)
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn a_second_build_of_the_same_log_into_a_bucket_exits_3_and_writes_nothing() {
    let Some(moto) = Moto::start("a_second_build_of_the_same_log_into_a_bucket_exits_3_and_writes_nothing") else {
        return;
    };
    let gate = Arc::new(AtomicBool::new(false));
    let (log, server) = gated_log(1024, Arc::clone(&gate));
    let site = Site::new();
    let config = site.config_for("demo", &server.url(), &log.log, "");
    let url = format!("s3://{}/site", moto.bucket);
    let args = build_args(&config, &url, &[]);
    let first = spawn_s3(&moto, &args);
    // The first holds the lease once it asks for data tiles.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.hits("tile/data/000") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    moto.clear_requests();
    let second = helio_s3(&moto, &args);
    let requests = moto.requests();
    gate.store(true, Ordering::SeqCst);
    assert_eq!(second.code, 3, "{}", second.stderr);
    let last = second.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "helio: another helio build holds s3://helio-test/site/demo/.helio.lock at {} (held by ",
            moto.endpoint
        )),
        "{}",
        second.stderr
    );
    // Its one write was the attempt to create the lease.
    let (_, puts) = tally(&requests);
    assert_eq!(puts, ["/helio-test/site/demo/.helio.lock"]);
    finish(first.wait_with_output().unwrap()).ok();
    assert!(moto.objects("site").contains_key("demo/L01-0-1024.torrent"));
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn a_held_lease_exits_3_and_an_expired_one_is_taken_over() {
    let Some(moto) = Moto::start("a_held_lease_exits_3_and_an_expired_one_is_taken_over") else { return };
    let log = TestLog::new(1024 + 3);
    let upstream = log.serve();
    let site = Site::new();
    let config = site.config_for("demo", &upstream.url(), &log.log, "");
    let url = format!("s3://{}/site", moto.bucket);
    let args = build_args(&config, &url, &[]);

    // A runner is building the log (its lease expires in ten minutes).
    let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
    let live = format!(r#"{{"holder":"runner-7 pid 42 (0000beef)","expires":{until}}}"#);
    moto.put("site/demo/.helio.lock", live.as_bytes());
    let held = helio_s3(&moto, &args);
    assert_eq!(held.code, 3, "{}", held.stderr);
    assert!(held.stderr.contains("(held by runner-7 pid 42 (0000beef) until "), "{}", held.stderr);
    assert_eq!(moto.objects("site").keys().collect::<Vec<_>>(), ["demo/.helio.lock"], "nothing written");

    // It died: once its lease has expired, the next build takes it over.
    let stale = br#"{"holder":"runner-7 pid 42 (0000beef)","expires":1700000000}"#;
    moto.put("site/demo/.helio.lock", stale);
    let run = helio_s3(&moto, &args);
    run.ok();
    assert!(run.stderr.contains("the lease of runner-7 pid 42 (0000beef) had expired"), "{}", run.stderr);
    assert!(run.stdout.starts_with("demo/L01-0-1024.torrent "), "{}", run.stdout);
    let objects = moto.objects("site");
    assert!(!objects.contains_key("demo/.helio.lock"), "released at the end");
    assert!(objects.contains_key("index.html"));
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn bad_credentials_a_missing_bucket_or_a_dead_endpoint_exit_1_with_one_line_and_write_nothing() {
    let test = "bad_credentials_a_missing_bucket_or_a_dead_endpoint_exit_1_with_one_line_and_write_nothing";
    let Some(moto) = Moto::start(test) else { return };
    let log = TestLog::new(1024);
    let site = Site::new();
    let config = site.config_for("demo", log.path().to_str().unwrap(), &log.log, "");
    let run = |url: &str, env: &[(&str, &str)]| {
        let mut command = command_s3(&moto, &build_args(&config, url, &[]));
        command.envs(env.iter().copied());
        finish(command.output().unwrap())
    };
    let endpoint = moto.endpoint.clone();

    let denied = run("s3://helio-test/site", &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert_eq!(
        denied.stderr.trim(),
        format!(
            "helio: s3://helio-test/site at {endpoint}: access denied (SignatureDoesNotMatch): check \
             AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
        )
    );
    let missing = run("s3://no-such-bucket/site", &[]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert_eq!(
        missing.stderr.trim(),
        format!("helio: s3://no-such-bucket/site at {endpoint}: the bucket does not exist")
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead_endpoint = format!("http://127.0.0.1:{port}");
    let dead = run("s3://helio-test/site", &[("AWS_ENDPOINT_URL", &dead_endpoint)]);
    assert_eq!(dead.code, 1, "{}", dead.stderr);
    assert_eq!(dead.stderr.trim().lines().count(), 1, "{}", dead.stderr);
    assert!(
        dead.stderr.starts_with(&format!("helio: s3://helio-test/site at {dead_endpoint}: cannot connect: ")),
        "{}",
        dead.stderr
    );
    let malformed = run("s3://Not_A_Bucket/site", &[]);
    assert_eq!(malformed.code, 2, "{}", malformed.stderr);
    assert!(malformed.stderr.starts_with("helio: \"s3://Not_A_Bucket/site\" is not a valid output location"));
    assert!(moto.objects("site").is_empty(), "nothing written");
}

/// Two logs, each served slowly enough that two builds overlap.
fn two_logs(site: &Site) -> (Vec<TestLog>, Vec<LogServer>) {
    let logs: Vec<TestLog> = (1..=2).map(|seed| TestLog::with_seed(3 * 1024 + 7, seed)).collect();
    let servers: Vec<LogServer> = logs
        .iter()
        .map(|log| {
            let options = ServerOptions { latency: Duration::from_millis(20), ..ServerOptions::default() };
            LogServer::start(log.path(), options).unwrap()
        })
        .collect();
    let mut yaml = format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: []\n\
         feed_url_base: https://feeds.helio.invalid/t\nlogs:\n"
    );
    for (name, (log, server)) in ["a", "b"].iter().zip(logs.iter().zip(&servers)) {
        yaml.push_str(&format!(
            "  - {{name: {name}, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n",
            server.url(),
            log.log.key
        ));
    }
    site.write_config(&yaml);
    (logs, servers)
}

/// Both logs on the root page and in `logs.json`, with all their torrents.
fn assert_both_logs(index: &[u8], logs_json: &[u8]) {
    let index = String::from_utf8_lossy(index);
    for name in ["a", "b"] {
        assert!(index.contains(&format!("href=\"./{name}/index.html\"")), "{index}");
    }
    let logs: serde_json::Value = serde_json::from_slice(logs_json).unwrap();
    let counts: Vec<(String, u64)> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|log| (log["name"].as_str().unwrap().to_string(), log["torrents"].as_u64().unwrap()))
        .collect();
    assert_eq!(counts, [("a".to_string(), 3), ("b".to_string(), 3)], "{logs}");
}

/// Starts `helio build --log a` and `--log b` at once; both must succeed.
fn build_both(spawn: impl Fn(&str) -> Child) {
    let children: Vec<Child> = ["a", "b"].iter().map(|name| spawn(name)).collect();
    for child in children {
        let run = finish(child.wait_with_output().unwrap());
        run.ok();
        assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    }
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn builds_of_different_logs_publish_into_one_bucket_at_once() {
    let Some(moto) = Moto::start("builds_of_different_logs_publish_into_one_bucket_at_once") else { return };
    let site = Site::new();
    let (_logs, _servers) = two_logs(&site);
    let config = site.config();
    let url = format!("s3://{}/site", moto.bucket);
    build_both(|name| spawn_s3(&moto, &build_args(&config, &url, &["--log", name])));
    let objects = moto.objects("site");
    assert_both_logs(&objects["index.html"], &objects["logs.json"]);
    assert!(!objects.keys().any(|key| key.contains(".helio.lock")), "every lease released");
}

#[test]
fn builds_of_different_logs_publish_into_one_folder_at_once() {
    let site = Site::new();
    let (_logs, _servers) = two_logs(&site);
    let (config, out) = (site.config(), site.out());
    build_both(|name| {
        command(&["build", "-c", config.to_str().unwrap(), out.to_str().unwrap(), "--log", name], &[EPOCH])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    });
    let files = folder_files(&out);
    assert_both_logs(&files["index.html"], &files["logs.json"]);
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn a_poisoned_lease_fails_its_own_log_alone_and_never_panics() {
    let Some(moto) = Moto::start("a_poisoned_lease_fails_its_own_log_alone_and_never_panics") else { return };
    let logs: Vec<TestLog> = (1..=2).map(|seed| TestLog::with_seed(1024 + 7, seed)).collect();
    let site = Site::new();
    let mut yaml = format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: []\n\
         feed_url_base: https://feeds.helio.invalid/t\nlogs:\n"
    );
    for (name, log) in ["a", "b"].iter().zip(&logs) {
        yaml.push_str(&format!(
            "  - {{name: {name}, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n",
            log.path().display(),
            log.log.key
        ));
    }
    let config = site.write_config(&yaml);
    // Expiring in the year 10000, and at the very end of u64: a lease no
    // build writes, from a holder whose name would repaint the terminal.
    for (prefix, expires) in [("site1", "253402300800"), ("site2", "18446744073709551615")] {
        let lease = format!(r#"{{"holder":"evil\u001b[31m\nname","expires":{expires}}}"#);
        moto.put(&format!("{prefix}/a/.helio.lock"), lease.as_bytes());
        let url = format!("s3://{}/{prefix}", moto.bucket);
        let run = helio_s3(&moto, &build_args(&config, &url, &[]));
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(!run.stderr.contains('\u{1b}'), "control characters reach the terminal: {:?}", run.stderr);
        assert!(run.stderr.contains(r"held by evil\u{1b}[31m\nname until "), "{}", run.stderr);
        assert!(run.stderr.contains("is not one helio writes"), "{}", run.stderr);
        assert_eq!(run.stdout.lines().collect::<Vec<_>>().len(), 1, "{}", run.stdout);
        assert!(run.stdout.starts_with("b/L01-0-1024.torrent "), "{}", run.stdout);
        // The other log's site, and the root with both logs, are written.
        let objects = moto.objects(prefix);
        for key in ["b/feed.xml", "b/index.html", "b/torrents.json", "b/checkpoint", "index.html", "logs.json"] {
            assert!(objects.contains_key(key), "{prefix}: no {key}: {:?}", objects.keys());
        }
        assert!(!objects.contains_key("a/L01-0-1024.torrent"), "the held log is left alone");
        let listed: serde_json::Value = serde_json::from_slice(&objects["logs.json"]).unwrap();
        assert_eq!(listed["logs"].as_array().unwrap().len(), 2, "{listed}");
    }
}

#[test]
#[cfg_attr(not(has_py_moto), ignore = "needs Python's moto.server, not installed here (HELIO_E2E=1 requires it)")]
fn an_oversized_torrents_json_in_the_bucket_fails_its_log_unread_and_the_others_publish() {
    let test = "an_oversized_torrents_json_in_the_bucket_fails_its_log_unread_and_the_others_publish";
    let Some(moto) = Moto::start(test) else { return };
    let site = Site::new();
    let (_logs, _servers) = two_logs(&site);
    let config = site.config();
    let url = format!("s3://{}/site", moto.bucket);
    // 20 MiB of list: once read whole (with a warning per entry it named).
    moto.put("site/a/torrents.json", &vec![b' '; 20 << 20]);
    let run = helio_s3(&moto, &build_args(&config, &url, &[]));
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "s3://helio-test/site/a/torrents.json at {} is larger than 16777216 bytes",
            moto.endpoint
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.trim_end().ends_with("helio: 1 of 2 logs failed: a (failing for 0 s)"), "{}", run.stderr);
    let objects = moto.objects("site");
    for key in ["b/L01-0-1024.torrent", "b/feed.xml", "b/torrents.json", "index.html", "logs.json"] {
        assert!(objects.contains_key(key), "no {key}: {:?}", objects.keys());
    }
    assert_eq!(objects["a/torrents.json"].len(), 20 << 20, "left as it is");
}
