//! `helio build` against generated logs over loopback HTTP and on disk.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use helio::fixture::server::{Fault, LogServer};
use helio::torrent::piece_length::piece_length;
use serde::Deserialize;
use sha1::{Digest, Sha1};

use crate::support::*;

#[derive(Deserialize, Debug)]
struct Torrent {
    announce: Option<String>,
    #[serde(rename = "announce-list")]
    announce_list: Option<Vec<Vec<String>>>,
    #[serde(rename = "created by")]
    created_by: String,
    #[serde(rename = "creation date")]
    creation_date: i64,
    info: Info,
    #[serde(rename = "url-list")]
    url_list: Option<Vec<String>>,
}

#[derive(Deserialize, Debug)]
struct Info {
    name: String,
    files: Vec<File>,
    #[serde(rename = "piece length")]
    piece_length: u64,
    #[serde(with = "serde_bytes")]
    pieces: Vec<u8>,
    private: Option<i64>,
}

#[derive(Deserialize, Debug)]
struct File {
    length: u64,
    path: Vec<String>,
}

fn decode(bytes: &[u8]) -> Torrent {
    serde_bencode::from_bytes(bytes).unwrap()
}

/// SHA-1 of the info dictionary exactly as it appears in the file.
fn infohash(bytes: &[u8]) -> String {
    let span = helio::torrent::bencode::find_value_span(bytes, b"info").unwrap();
    Sha1::digest(&bytes[span]).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks every piece against the log's own bytes, laid out as the torrent says.
fn check_pieces(torrent: &[u8], log: &TestLog, readme: &[u8]) {
    let parsed = decode(torrent);
    let mut content = Vec::new();
    for file in &parsed.info.files {
        let path = file.path.join("/");
        let bytes = if path == "README.md" { readme.to_vec() } else { std::fs::read(log.path().join(&path)).unwrap() };
        assert_eq!(bytes.len() as u64, file.length, "{path}");
        content.extend_from_slice(&bytes);
    }
    assert_eq!(parsed.info.piece_length, piece_length(content.len() as u64));
    let expected: Vec<u8> =
        content.chunks(parsed.info.piece_length as usize).flat_map(|c| Sha1::digest(c).to_vec()).collect();
    assert_eq!(parsed.info.pieces, expected, "{}", parsed.info.name);
}

/// A log of `size` entries served over loopback, and a site configured for it.
fn served(size: u64, extra: &str) -> (TestLog, LogServer, Site) {
    let log = TestLog::new(size);
    let server = log.serve();
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, extra);
    (log, server, site)
}

fn paths(torrent: &Torrent) -> Vec<String> {
    torrent.info.files.iter().map(|f| f.path.join("/")).collect()
}

#[test]
fn builds_verified_torrents_from_a_gzipping_http_log() {
    let (log, server, site) = served(3 * 1024 + 300, "");
    let run = site.build();
    run.ok();

    let printed: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(printed.len(), 3, "{}", run.stdout);
    let readme = format!("LOG_URL: {}\n", server.url().trim_end_matches('/'));
    for (k, line) in printed.iter().enumerate() {
        let (start, end) = (k as u64 * 1024, (k as u64 + 1) * 1024);
        let bytes = site.torrent("test", start, end);
        assert_eq!(*line, format!("test/L01-{start}-{end}.torrent {}", infohash(&bytes)));
        let torrent = decode(&bytes);
        assert_eq!(torrent.info.name, format!("test-L01-{start}-{end}"));
        let expected_paths: Vec<String> = std::iter::once("README.md".to_string())
            .chain((start / 256..end / 256).map(|n| format!("tile/0/{n:03}")))
            .chain((start / 256..end / 256).map(|n| format!("tile/data/{n:03}")))
            .collect();
        assert_eq!(paths(&torrent), expected_paths);
        assert_eq!(torrent.announce.as_deref(), Some("udp://tracker.helio.invalid:1337/announce"));
        assert_eq!(torrent.announce_list, Some(vec![vec!["udp://tracker.helio.invalid:1337/announce".to_string()]]));
        assert_eq!(torrent.url_list, Some(vec!["http://127.0.0.1:9/webseed/test/".to_string()]));
        assert!(torrent.created_by.starts_with("helio "), "{}", torrent.created_by);
        assert!(torrent.creation_date > 1_600_000_000, "{}", torrent.creation_date);
        assert_eq!(torrent.info.private, None);
        check_pieces(&bytes, &log, readme.as_bytes());
    }
    assert!(!site.out().join("test/L01-3072-4096.torrent").exists(), "a range is built only once complete");

    // Polite: every request names the operator, every tile is fetched once.
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.user_agent.as_deref().is_some_and(|ua| ua.contains(CONTACT))));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for request in &requests {
        *counts.entry(request.path.as_str()).or_default() += 1;
    }
    assert!(counts.iter().all(|(_, &n)| n == 1), "{counts:?}");
    let checkpoint = std::fs::read(site.out().join("test/checkpoint")).unwrap();
    assert_eq!(checkpoint, std::fs::read(log.path().join("checkpoint")).unwrap());
}

#[test]
fn a_grown_log_adds_only_its_new_range_and_nothing_new_costs_one_request() {
    let (mut log, server, site) = served(2 * 1024 + 10, "");
    site.build().ok();
    let before = site.snapshot();

    // Nothing new: one checkpoint request, no output, every file untouched.
    let requests_before = server.total_hits();
    let run = site.build();
    run.ok();
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "", "quiet when nothing changed");
    assert_eq!(server.total_hits() - requests_before, 1);
    assert_eq!(server.hits("checkpoint"), 2);
    assert_eq!(site.snapshot(), before);

    log.resize(3 * 1024 + 5);
    let run = site.build();
    run.ok();
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.starts_with("test/L01-2048-3072.torrent "));
    let after = site.snapshot();
    for (path, bytes) in &before {
        let name = path.to_string_lossy();
        if name.ends_with(".torrent") {
            assert_eq!(after.get(path), Some(bytes), "{name} changed");
        }
    }
    let torrents: serde_json::Value =
        serde_json::from_slice(&after[&std::path::PathBuf::from("test/torrents.json")]).unwrap();
    assert_eq!(torrents["torrents"].as_array().unwrap().len(), 3);
    assert_eq!(torrents["torrents"][2]["end_index"], 3071);
}

/// Builds the first two ranges, grows the log by a third, damages it with
/// `damage`, and checks that the next build fails that log with `message`,
/// publishes nothing new and leaves the earlier output byte-identical.
fn assert_damage_is_caught(damage: impl FnOnce(&mut TestLog), message: &str) {
    let (mut log, _server, site) = served(2 * 1024, "");
    site.build().ok();
    let before = site.snapshot();

    log.resize(3 * 1024 + 7);
    damage(&mut log);
    let run = site.build();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(message), "expected {message:?} in:\n{}", run.stderr);
    assert!(run.stderr.contains("log test:"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    // What was published stays byte-identical; only the pages, the log's
    // status.json and the health in logs.json change, to say that the log's
    // last build failed.
    let published = |files: BTreeMap<std::path::PathBuf, Vec<u8>>| {
        let health = |path: &std::path::Path| {
            path.ends_with("index.html") || path.ends_with("status.json") || path.ends_with("logs.json")
        };
        files.into_iter().filter(|(path, _)| !health(path)).collect()
    };
    let after = site.snapshot();
    let page = String::from_utf8_lossy(&after[std::path::Path::new("test/index.html")]).into_owned();
    assert!(page.contains("Last build failed"), "{page}");
    let status: serde_json::Value = serde_json::from_slice(&after[std::path::Path::new("test/status.json")]).unwrap();
    assert_eq!(status["status"], "failing", "{status}");
    let logs: serde_json::Value = serde_json::from_slice(&after[std::path::Path::new("logs.json")]).unwrap();
    assert_eq!(logs["logs"][0]["status"], "failing", "{logs}");
    assert!(logs["logs"][0]["error"].as_str().unwrap().contains(message), "{logs}");
    let (after, before): (BTreeMap<_, _>, BTreeMap<_, _>) = (published(after), published(before));
    assert_eq!(after, before, "earlier output must stay byte-identical");
}

#[test]
fn a_tampered_data_tile_is_caught() {
    assert_damage_is_caught(
        |log| {
            let path = log.path().join("tile/data/009");
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[200] ^= 0x01;
            std::fs::write(&path, bytes).unwrap();
        },
        "tile/data/009: the entries' leaf hashes do not match tile/0/009",
    );
}

#[test]
fn a_data_tile_with_a_wrong_leaf_index_is_caught() {
    assert_damage_is_caught(
        |log| {
            let tile = std::fs::read(log.path().join("tile/data/010")).unwrap();
            std::fs::write(log.path().join("tile/data/009"), tile).unwrap();
        },
        "tile/data/009: entry 0 (leaf index 2304) at byte 0: leaf_index is 2560",
    );
}

#[test]
fn a_hash_tile_of_the_wrong_length_is_caught() {
    assert_damage_is_caught(
        |log| {
            let path = log.path().join("tile/0/010");
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 32]).unwrap();
        },
        "tile/0/010: 8160 bytes, but a hash tile of width 256 has 8192 bytes",
    );
}

#[test]
fn a_checkpoint_with_a_bad_signature_is_caught() {
    assert_damage_is_caught(
        |log| {
            let path = log.path().join("checkpoint");
            let text = std::fs::read_to_string(&path).unwrap();
            // Re-sign a different root with the right key id but a wrong signature:
            // flip one base64 character inside the first signature.
            let at = text.find("\n— ").unwrap() + 1;
            let line_end = at + text[at..].find('\n').unwrap();
            let mut bytes = text.into_bytes();
            let target = line_end - 10;
            bytes[target] = if bytes[target] == b'A' { b'B' } else { b'A' };
            std::fs::write(&path, bytes).unwrap();
        },
        &format!("checkpoint: checkpoint signature by {ORIGIN}/"),
    );
}

#[test]
fn a_checkpoint_whose_root_lies_is_caught() {
    assert_damage_is_caught(
        |log| {
            // A validly signed checkpoint for a root the tiles do not produce.
            let keys = helio::fixture::generate::signing_keys(log.seed, ORIGIN);
            let text =
                helio::log::checkpoint::sign(ORIGIN, log.log.size, &[9u8; 32], &[], 1_800_000_000_000, &keys).unwrap();
            std::fs::write(log.path().join("checkpoint"), text).unwrap();
        },
        "but the checkpoint says CQkJ",
    );
}

#[test]
fn a_tree_size_going_backwards_is_caught() {
    assert_damage_is_caught(
        |log| log.resize(1024 + 3),
        "tree size went backwards from 2048 (verified earlier) to 1027",
    );
}

#[test]
fn a_missing_full_tile_below_the_tree_size_is_a_log_fault() {
    assert_damage_is_caught(
        |log| std::fs::remove_file(log.path().join("tile/data/011")).unwrap(),
        "tile/data/011: not found (404)",
    );
}

#[test]
fn rate_limits_and_dropped_connections_are_retried() {
    let log = TestLog::new(1024);
    let server = log.serve();
    server.set_fault(|path, nth| match (path, nth) {
        ("tile/data/001", 1) => Some(Fault::Status {
            code: 429,
            headers: vec![("Retry-After".into(), "1".into())],
            body: b"slow down".to_vec(),
        }),
        ("tile/data/002", 1) => Some(Fault::Drop),
        ("tile/0/003", 1) => Some(Fault::Truncate),
        ("tile/data/003", 1) => Some(Fault::Status { code: 503, headers: vec![], body: vec![] }),
        _ => None,
    });
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "");
    let started = Instant::now();
    site.build().ok();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    for path in ["tile/data/001", "tile/data/002", "tile/0/003", "tile/data/003"] {
        assert_eq!(server.hits(path), 2, "{path}");
    }
    assert!(site.out().join("test/L01-0-1024.torrent").exists());
}

#[test]
fn a_log_that_keeps_failing_gives_up_naming_the_url_and_status() {
    let log = TestLog::new(1024);
    let server = log.serve();
    server.set_fault(|path, _| {
        (path == "tile/data/002").then(|| Fault::Status { code: 500, headers: vec![], body: vec![] })
    });
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "");
    let run = helio_with_env(
        &["build", "-c", site.config().to_str().unwrap(), site.out().to_str().unwrap()],
        &[("HELIO_RETRY_BUDGET", "1")],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!("{}tile/data/002: HTTP 500, still failing after retries", server.url())),
        "{}",
        run.stderr
    );
    assert!(server.hits("tile/data/002") >= 2, "retried before giving up");
}

#[test]
fn one_failing_log_does_not_stop_the_others() {
    let good = TestLog::with_seed(1024, 1);
    let bad = TestLog::with_seed(1024, 2);
    let good_server = good.serve();
    let bad_server = bad.serve();
    std::fs::write(bad.path().join("tile/data/001"), b"garbage").unwrap();
    let site = Site::new();
    site.write_config(&format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\nlogs:\n\
         - {{name: bad, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n\
         - {{name: good, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n",
        bad_server.url(),
        bad.log.key,
        good_server.url(),
        good.log.key
    ));
    let run = site.build();
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("log bad:"), "{}", run.stderr);
    assert!(run.stdout.contains("good/L01-0-1024.torrent"), "{}", run.stdout);
    assert!(!site.out().join("bad/L01-0-1024.torrent").exists());
}

#[test]
fn a_second_concurrent_build_exits_3() {
    let log = TestLog::new(1024);
    let server = log.serve();
    server.set_fault(|path, _| (path == "checkpoint").then_some(Fault::Delay(Duration::from_secs(2))));
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "");
    let (config, out) = (site.config(), site.out());
    let args = ["build", "-c", config.to_str().unwrap(), out.to_str().unwrap()];
    let first = command(&args, &[]).spawn().unwrap();
    // Wait until the first build holds the lock (it is inside its first request).
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.hits("checkpoint") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = helio(&args);
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(second.stderr.contains("another helio build is running on"), "{}", second.stderr);
    let first = finish(first.wait_with_output().unwrap());
    first.ok();
    assert!(out.join("test/L01-0-1024.torrent").exists());
}

#[test]
fn malformed_configs_exit_2_and_write_nothing() {
    let site = Site::new();
    let cases = [
        (
            "scraper_contact_email: a@b.c\nlogs:\n  - name: x\n    log_url: https://x.example/\n    webseed: [http://w/]\n",
            "helio.yaml:5:5: unknown key `webseed` in logs[0] (did you mean `webseeds`?)",
        ),
        (
            "logs:\n  - name: x\n    log_url: https://x.example/\n",
            "scraper_contact_email: required because logs[0] (x)",
        ),
        (
            "entries_per_torrent: 1000\nlogs:\n  - {name: x, log_url: /x}\n",
            "entries_per_torrent: 1000 is not a positive multiple of 256",
        ),
        ("logs: [\n", "helio.yaml:2:1:"),
    ];
    for (yaml, expected) in cases {
        site.write_config(yaml);
        let run = site.build();
        assert_eq!(run.code, 2, "{yaml}");
        assert!(run.stderr.starts_with("helio: "), "{}", run.stderr);
        assert!(run.stderr.contains(expected), "expected {expected:?} in {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        assert!(!site.out().exists(), "nothing written for {yaml}");
    }
    let run = helio(&["build", "-c", "/nonexistent/helio.yaml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("/nonexistent/helio.yaml: cannot read the config file"), "{}", run.stderr);
    let run = helio(&["build", "--bogus"]);
    assert_eq!(run.code, 2);
}

#[test]
fn an_unknown_log_name_is_a_usage_error() {
    let log = TestLog::new(10);
    let site = Site::new();
    site.config_for("test", log.path().to_str().unwrap(), &log.log, "");
    let run = helio(&["build", "-c", site.config().to_str().unwrap(), "--log", "nope", site.out().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--log nope: no such log"), "{}", run.stderr);
}

#[test]
fn local_logs_by_relative_path_and_file_url_match_the_http_build() {
    let log = TestLog::new(1024);
    let server = log.serve();
    let over_http = Site::new();
    over_http.config_for("test", &server.url(), &log.log, "");
    over_http.build().ok();
    let http_torrent = decode(&over_http.torrent("test", 0, 1024));

    let site = Site::new();
    let link = site.dir.path().join("mirror");
    std::os::unix::fs::symlink(log.path(), &link).unwrap();
    for log_url in ["mirror".to_string(), format!("file://{}", link.display())] {
        let _ = std::fs::remove_dir_all(site.out());
        site.config_for("test", &log_url, &log.log, "");
        site.build().ok();
        let bytes = site.torrent("test", 0, 1024);
        let torrent = decode(&bytes);
        // Only README.md (which names the source) differs from the HTTP build.
        assert_eq!(paths(&torrent), paths(&http_torrent));
        assert_eq!(
            torrent.info.files[1..].iter().map(|f| f.length).collect::<Vec<_>>(),
            http_torrent.info.files[1..].iter().map(|f| f.length).collect::<Vec<_>>()
        );
        check_pieces(&bytes, &log, format!("LOG_URL: {log_url}\n").as_bytes());
    }
}

#[test]
fn the_heliotorrent_profile_writes_the_reference_readme_and_private_flag() {
    let (log, server, site) = served(1024, "profile: heliotorrent\n");
    site.build().ok();
    let bytes = site.torrent("test", 0, 1024);
    let torrent = decode(&bytes);
    assert_eq!(torrent.info.private, Some(0));
    let readme = format!("LOG URL: {}", server.url().trim_end_matches('/'));
    assert_eq!(torrent.info.files[0].length, readme.len() as u64);
    check_pieces(&bytes, &log, readme.as_bytes());
    let span = helio::torrent::bencode::find_value_span(&bytes, b"info").unwrap();
    assert!(bytes[span].ends_with(b"7:privatei0ee"));
}

#[test]
fn the_same_range_gives_byte_identical_torrents_for_every_publisher() {
    let log = TestLog::new(2048);
    let server = log.serve();
    let (first, second) = (Site::new(), Site::new());
    for site in [&first, &second] {
        site.config_for("test", &server.url(), &log.log, "");
        site.build().ok();
    }
    assert_eq!(first.torrent("test", 1024, 2048), second.torrent("test", 1024, 2048));
}

#[test]
fn a_crash_between_torrent_and_list_is_reconciled_from_the_files() {
    let (_log, _server, site) = served(2048, "");
    site.build().ok();
    let listed = std::fs::read(site.out().join("test/torrents.json")).unwrap();
    std::fs::remove_file(site.out().join("test/torrents.json")).unwrap();
    let run = site.build();
    run.ok();
    assert_eq!(run.stdout, "", "no range is rebuilt");
    assert!(run.stderr.contains("was not in torrents.json; added from the file"), "{}", run.stderr);
    let rebuilt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.out().join("test/torrents.json")).unwrap()).unwrap();
    let original: serde_json::Value = serde_json::from_slice(&listed).unwrap();
    assert_eq!(rebuilt["torrents"], original["torrents"]);
}

#[test]
#[cfg_attr(
    not(all(has_py_libtorrent, has_aria2c)),
    ignore = "needs Python's libtorrent and aria2c, not installed here (HELIO_E2E=1 requires it)"
)]
fn libtorrent_loads_every_torrent_with_helios_infohash_and_aria2_checks_its_pieces() {
    let test = "libtorrent_loads_every_torrent_with_helios_infohash_and_aria2_checks_its_pieces";
    let Some(python) = python_with("libtorrent", test) else { return };
    let Some(aria2c) = tool("aria2c", test) else { return };
    let (log, server, site) = served(2 * 1024 + 1, "");
    site.build().ok();
    let readme = format!("LOG_URL: {}\n", server.url().trim_end_matches('/'));
    let layout = tempfile::tempdir().unwrap();
    for (start, end) in [(0, 1024), (1024, 2048)] {
        let path = site.out().join(format!("test/L01-{start}-{end}.torrent"));
        let bytes = std::fs::read(&path).unwrap();
        let printed = run_python(
            &python,
            "import sys, libtorrent as lt\nt = lt.torrent_info(sys.argv[1])\nprint(str(t.info_hash()), t.num_files(), t.num_pieces())",
            &[path.to_str().unwrap()],
        );
        let decoded = decode(&bytes);
        let pieces = decoded.info.pieces.len() / 20;
        assert_eq!(printed.trim(), format!("{} {} {pieces}", infohash(&bytes), decoded.info.files.len()));

        lay_out(log.path(), &bytes, readme.as_bytes(), layout.path());
        aria2_check(&aria2c, &path, layout.path());
    }
}

#[test]
#[cfg_attr(not(has_py_torf), ignore = "needs Python's torf, not installed here (HELIO_E2E=1 requires it)")]
fn torf_the_reference_library_gives_the_same_infohash_for_the_heliotorrent_profile() {
    let test = "torf_the_reference_library_gives_the_same_infohash_for_the_heliotorrent_profile";
    let Some(python) = python_with("torf", test) else { return };
    let (log, server, site) = served(1024, "profile: heliotorrent\n");
    site.build().ok();
    let bytes = site.torrent("test", 0, 1024);
    let readme = format!("LOG URL: {}", server.url().trim_end_matches('/'));
    let layout = tempfile::tempdir().unwrap();
    let root = lay_out(log.path(), &bytes, readme.as_bytes(), layout.path());
    // What HelioTorrent does: torf over the files, named after the range, not private.
    let script = "import sys, os, datetime, torf
root = sys.argv[1]
files = []
for folder, _, names in os.walk(root):
    files += [os.path.join(folder, n) for n in names]
t = torf.Torrent(trackers=['udp://x/announce'], private=False, created_by='HelioTorrent v0.0.1', creation_date=datetime.datetime.now())
t.filepaths = files
t.name = 'test-L01-0-1024'
t.generate()
print(t.infohash)";
    let printed = run_python(&python, script, &[root.to_str().unwrap()]);
    assert_eq!(printed.trim(), infohash(&bytes));
}

/// A small tmpfs mounted for one test (root only), unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64, test: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            skip(test, "cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
#[cfg_attr(not(is_root), ignore = "needs root (to mount a tmpfs), not installed here (HELIO_E2E=1 requires it)")]
fn a_full_disk_fails_the_log_naming_the_file_and_keeps_earlier_output() {
    let Some(disk) = SmallDisk::mount(1 << 20, "a_full_disk_fails_the_log_naming_the_file_and_keeps_earlier_output")
    else {
        return;
    };
    let (mut log, _server, site) = served(1024, "");
    let (config, out) = (site.config(), disk.dir.path().join("out"));
    let args = ["build", "-c", config.to_str().unwrap(), out.to_str().unwrap()];
    helio(&args).ok();
    let before = snapshot(&out);
    // Fill the disk to the last few bytes.
    let filler = disk.dir.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);

    log.resize(2048);
    let run = helio(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("cannot write {}", out.join("test/").display())), "{}", run.stderr);
    assert!(run.stderr.contains("No space left on device"), "{}", run.stderr);
    assert_eq!(snapshot(&out), before, "earlier output intact, no temporary files left");

    std::fs::remove_file(&filler).unwrap();
    helio(&args).ok();
    assert!(out.join("test/L01-1024-2048.torrent").exists(), "the next build with room publishes it");
}

#[test]
fn new_web_seeds_and_trackers_reach_every_published_torrent_with_the_same_infohashes() {
    let (_log, server, site) = served(3 * 1024, "");
    site.build().ok();
    let before: Vec<Vec<u8>> = (0..3).map(|k| site.torrent("test", k * 1024, (k + 1) * 1024)).collect();
    let config = std::fs::read_to_string(site.config()).unwrap();
    let moved = config
        .replace("webseeds: [http://127.0.0.1:9/webseed/]", "webseeds: [https://new-seed.helio.invalid/ws/]")
        .replace(
            "trackers: [udp://tracker.helio.invalid:1337/announce]",
            "trackers: [udp://a.invalid:1/announce, udp://b.invalid:2/announce]",
        );
    assert_ne!(moved, config);
    site.write_config(&moved);
    let run = site.build();
    run.ok();
    assert_eq!(run.stdout, "", "no new torrent");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.out().join("test/torrents.json")).unwrap()).unwrap();
    let feed = std::fs::read_to_string(site.out().join("test/feed.xml")).unwrap();
    for (k, old) in before.iter().enumerate() {
        let (start, end) = (k as u64 * 1024, (k as u64 + 1) * 1024);
        let new = site.torrent("test", start, end);
        assert_eq!(infohash(&new), infohash(old), "same infohash");
        let torrent = decode(&new);
        assert_eq!(torrent.url_list, Some(vec!["https://new-seed.helio.invalid/ws/test/".to_string()]));
        assert_eq!(torrent.announce.as_deref(), Some("udp://a.invalid:1/announce"));
        assert_eq!(
            torrent.announce_list,
            Some(vec![vec!["udp://a.invalid:1/announce".to_string()], vec!["udp://b.invalid:2/announce".to_string()]])
        );
        assert!(
            feed.contains(&format!("test/L01-{start}-{end}.torrent\" length=\"{}\"", new.len())),
            "the enclosure length follows the file: {feed}"
        );
        let magnet = json["torrents"][k]["magnet"].as_str().unwrap();
        assert!(magnet.contains("ws=https%3A%2F%2Fnew-seed.helio.invalid%2Fws%2Ftest%2F"), "{magnet}");
        assert!(magnet.contains("tr=udp%3A%2F%2Fb.invalid%3A2%2Fannounce"), "{magnet}");
    }
    assert_eq!(json["webseeds"][0], "https://new-seed.helio.invalid/ws/test/");
    let settled = site.snapshot();
    site.build().ok();
    assert_eq!(site.snapshot(), settled, "a nothing-changed build writes nothing");
    assert!(server.total_hits() > 0);
}

#[test]
fn a_final_log_gets_one_last_torrent_that_proves_itself_and_may_not_grow() {
    let (mut log, _server, site) = served(5000, "");
    let config = std::fs::read_to_string(site.config()).unwrap();
    site.write_config(&format!("{config}    final: true\n"));
    let run = site.build();
    run.ok();
    let printed: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(printed.len(), 5, "{}", run.stdout);
    assert!(printed[4].starts_with("test/L01-4096-5000.torrent "), "{}", run.stdout);
    let bytes = site.torrent("test", 4096, 5000);
    let torrent = decode(&bytes);
    assert_eq!(torrent.info.name, "test-L01-4096-5000");
    assert_eq!(
        paths(&torrent),
        [
            "README.md",
            "checkpoint",
            "tile/0/016",
            "tile/0/017",
            "tile/0/018",
            "tile/0/019.p/136",
            "tile/1/000.p/19",
            "tile/data/016",
            "tile/data/017",
            "tile/data/018",
            "tile/data/019.p/136",
        ]
    );
    // Every piece is the log's own bytes (the checkpoint included).
    let readme = format!("LOG_URL: {}\n", _server.url().trim_end_matches('/'));
    check_pieces(&bytes, &log, readme.as_bytes());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.out().join("test/torrents.json")).unwrap()).unwrap();
    assert_eq!(json["torrents"][4]["end_index"], 4999);
    assert!(!site.out().join("test/L01-4096-5120.torrent").exists());

    let settled = site.snapshot();
    site.build().ok();
    assert_eq!(site.snapshot(), settled, "nothing new for a finished log");
    // The log signs the same tree again (another signature line): the
    // published checkpoint stays the one the last torrent carries.
    let signed = std::fs::read_to_string(log.path().join("checkpoint")).unwrap();
    std::fs::write(log.path().join("checkpoint"), format!("{signed}— grease.example AAAAAAAAAA==\n")).unwrap();
    site.build().ok();
    assert_eq!(site.snapshot(), settled, "the same tree signed again changes nothing");

    log.resize(6200);
    let grown = site.build();
    assert_eq!(grown.code, 1, "{}", grown.stderr);
    assert!(grown.stderr.contains("the log is configured as final and its last torrent L01-4096-5000.torrent ends at entry 5000, but the tree has grown to 6200"), "{}", grown.stderr);
    let after = site.snapshot();
    for (path, bytes) in &settled {
        let name = path.to_string_lossy();
        if name.ends_with(".torrent")
            || name.ends_with("checkpoint")
            || name.ends_with("torrents.json")
            || name.contains("/tile/")
        {
            assert_eq!(after.get(path), Some(bytes), "{name} untouched");
        }
    }
    assert_eq!(after.keys().filter(|p| p.to_string_lossy().ends_with(".torrent")).count(), 5, "nothing new published");
}
