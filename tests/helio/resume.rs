//! `helio build OUT --resume-from URL`: a runner that starts empty restores
//! the published state from the site's URL (served over loopback by the
//! fixture server, as a static host would), checks it, and builds on it.

use std::path::Path;

use helio::fixture::server::{LogServer, ServerOptions};

use crate::support::*;

/// Builds `log` into a first site, the way the previous CI run did.
fn published(log: &TestLog, log_url: &str) -> Site {
    let site = Site::new();
    site.config_for("demo", log_url, &log.log, "");
    site.build().ok();
    site
}

/// A second runner: an empty folder, the same config.
fn runner(log: &TestLog, log_url: &str) -> Site {
    let site = Site::new();
    site.config_for("demo", log_url, &log.log, "");
    site
}

fn build_resuming(site: &Site, from: &str) -> Run {
    helio(&["build", "-c", site.config().to_str().unwrap(), site.out().to_str().unwrap(), "--resume-from", from])
}

fn serve(dir: &Path) -> LogServer {
    LogServer::start(dir, ServerOptions::default()).unwrap()
}

#[test]
fn a_runner_that_starts_empty_builds_on_the_published_site() {
    let mut log = TestLog::new(3 * 1024 + 100);
    let upstream = log.serve();
    let before = published(&log, &upstream.url());
    let host = serve(&before.out());
    log.resize(4 * 1024 + 10);
    let data_tile_fetches = upstream.hits("tile/data/000");

    let after = runner(&log, &upstream.url());
    let run = build_resuming(&after, &host.url());
    run.ok();
    // Only the new range was built; the published ones came from the site.
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.starts_with("demo/L01-3072-4096.torrent "), "{}", run.stdout);
    assert_eq!(upstream.hits("tile/data/000"), data_tile_fetches, "a published range was fetched again");
    for (start, end) in [(0, 1024), (1024, 2048), (2048, 3072)] {
        assert_eq!(after.torrent("demo", start, end), before.torrent("demo", start, end));
        assert_eq!(host.hits(&format!("demo/L01-{start}-{end}.torrent")), 1);
    }
    // OUT is the complete site: the old torrents are listed with the new one.
    let listed = std::fs::read_to_string(after.out().join("demo/torrents.json")).unwrap();
    assert_eq!(listed.matches("\"infohash\"").count(), 4, "{listed}");
    let logs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(after.out().join("logs.json")).unwrap()).unwrap();
    assert_eq!(logs["logs"][0]["entries_covered"], 4096);
    assert_eq!(logs["logs"][0]["page"], "https://feeds.helio.invalid/t/demo/index.html");

    // The next run on the same runner keeps what it has: nothing fetched twice.
    let run = build_resuming(&after, &host.url());
    run.ok();
    assert_eq!(run.stdout, "");
    assert_eq!(host.hits("demo/L01-0-1024.torrent"), 1);
}

#[test]
fn a_tampered_torrent_on_the_site_stops_the_build_before_anything_is_built() {
    let mut log = TestLog::new(2 * 1024 + 5);
    let upstream = log.serve();
    let before = published(&log, &upstream.url());
    // Someone altered one torrent on the host: one byte of its piece hashes.
    let file = before.out().join("demo/L01-1024-2048.torrent");
    let mut bytes = std::fs::read(&file).unwrap();
    let key = bytes.windows(8).position(|w| w == b"6:pieces").unwrap() + 8;
    let colon = key + bytes[key..].iter().position(|&b| b == b':').unwrap();
    bytes[colon + 1] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let host = serve(&before.out());
    log.resize(3 * 1024 + 5);
    let asked_before = upstream.total_hits();

    let after = runner(&log, &upstream.url());
    let run = build_resuming(&after, &host.url());
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let url = format!("{}demo/L01-1024-2048.torrent", host.url());
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with(&format!("helio: {url}: infohash ")), "{}", run.stderr);
    assert!(last.contains("does not match") && last.ends_with("nothing was built on it"), "{last}");
    assert_eq!(upstream.total_hits(), asked_before, "the log was asked although the restore failed");
    assert!(!after.out().join("demo/torrents.json").exists());
    assert!(!after.out().join("demo/L01-2048-3072.torrent").exists());
}

#[test]
fn a_log_the_site_does_not_have_yet_starts_fresh() {
    let log = TestLog::new(1024 + 3);
    let upstream = log.serve();
    let empty = tempfile::tempdir().unwrap();
    let host = serve(empty.path());
    let site = runner(&log, &upstream.url());
    let run = build_resuming(&site, &host.url());
    run.ok();
    assert!(run.stdout.starts_with("demo/L01-0-1024.torrent "), "{}", run.stdout);
    assert_eq!(host.hits("demo/torrents.json"), 1);
}

#[test]
fn a_bad_resume_url_or_a_bucket_to_resume_into_is_a_usage_error() {
    let log = TestLog::new(300);
    let site = runner(&log, log.path().to_str().unwrap());
    let run = build_resuming(&site, "ftp://site.example/");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--resume-from \"ftp://site.example/\": "), "{}", run.stderr);

    // A bucket is the published state itself (docs/store.md): refused before any
    // request, with the way out.
    let config = site.config();
    let run = helio(&[
        "build",
        "-c",
        config.to_str().unwrap(),
        "s3://ct-torrents/site",
        "--resume-from",
        "https://x.example/",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "helio: --resume-from restores a site into a folder that starts empty; s3://ct-torrents/site is the \
         published site itself, which helio build reads its state from: drop --resume-from"
    );
    // Not a folder named `s3:` or `gs:`.
    let run = helio(&["build", "-c", config.to_str().unwrap(), "gs://ct-torrents/site"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!site.dir.path().join("s3:").exists() && !std::path::Path::new("s3:").exists());
}
