//! `helio mirror`: downloaded ranges served back as a Static CT log's
//! monitoring prefix. The round trip with libtorrent and `helio build`
//! against the mirror, hostile paths, the upstream (fetched once, checked,
//! never an open proxy), an independent Python reader, and startup
//! verification.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use helio::fixture::server::{Fault, LogServer, ServerOptions};
use helio::fixture::wire::{self, Reply};
use helio::torrent::range::TorrentRange;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::*;

/// A long-running helio command (`mirror` or `serve`), killed when dropped.
struct Running(Listening);

impl Running {
    fn start(args: &[&str]) -> Running {
        Running(Listening::start(args, &[], Duration::from_secs(60)))
    }

    fn get(&self, path: &str) -> Reply {
        wire::request(self.addr, "GET", path, &[]).unwrap()
    }

    fn terminate(self) -> i32 {
        self.0.terminate()
    }
}

impl std::ops::Deref for Running {
    type Target = Listening;

    fn deref(&self) -> &Listening {
        &self.0
    }
}

/// A log of 3 ranges of 1024 entries and 300 more, built into a site from
/// its folder, with some of its ranges laid out as a client saves them.
struct Downloaded {
    log: TestLog,
    site: Site,
    downloads: TempDir,
}

const SIZE: u64 = 3 * 1024 + 300;

fn downloaded(ranges: &[u64]) -> Downloaded {
    let log = TestLog::new(SIZE);
    let site = Site::new();
    site.write_config(&format!(
        "entries_per_torrent: 1024\ntrackers: []\nfeed_url_base: https://feeds.helio.invalid/t\n\
         logs:\n  - name: test\n    log_url: {}\n    origin: {ORIGIN}\n    key: {}\n",
        log.path().display(),
        log.log.key
    ));
    site.build().ok();
    let downloads = tempfile::tempdir().unwrap();
    let readme = format!("LOG_URL: {}\n", log.path().display());
    for &k in ranges {
        let torrent = site.torrent("test", k * 1024, (k + 1) * 1024);
        lay_out(log.path(), &torrent, readme.as_bytes(), downloads.path());
    }
    Downloaded { log, site, downloads }
}

impl Downloaded {
    fn site_dir(&self) -> PathBuf {
        self.site.out().join("test")
    }

    /// `helio mirror <downloads> --site <site> --key <key> --listen 127.0.0.1:0 MORE…`
    fn mirror(&self, more: &[&str]) -> Running {
        let site = self.site_dir();
        let mut args = vec![
            "mirror",
            self.downloads.path().to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
            "--key",
            &self.log.log.key,
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend(more);
        Running::start(&args)
    }
}

/// The log's bytes of a tile (the fixture stores them uncompressed).
fn log_tile(log: &Path, path: &str) -> Vec<u8> {
    std::fs::read(log.join(path)).unwrap()
}

#[test]
fn hostile_and_odd_paths_never_reach_the_upstream() {
    let downloaded = downloaded(&[0, 1]);
    let upstream = LogServer::start(downloaded.log.path(), ServerOptions::default()).unwrap();
    let mirror = downloaded.mirror(&["--upstream", &upstream.url()]);
    let long = format!("/tile/data/{}000", "x001/".repeat(2000));
    for (path, status) in [
        ("/tile/../checkpoint", 400),
        ("/tile/%2e%2e/checkpoint", 400),
        ("/%2e%2e/%2e%2e/etc/passwd", 400),
        ("/tile%2fdata%2f000", 400),
        ("/tile/data/000%00", 400),
        ("/tile/data%5c000", 400),
        ("/tile\\data\\000", 400),
        ("/tile//data/000", 400),
        ("/tile/data/000/", 400),
        ("/tile/data/%", 400),
        ("/tile/data/x1000", 404),
        ("/tile/data/1000", 404),
        ("/tile/data/00", 404),
        ("/tile/data/abc", 404),
        ("/tile/x/000", 404),
        ("/tile/0/000.p/0", 404),
        ("/tile/0/000.p/256", 404),
        ("/tile/0/000.p/007", 404),
        ("/tile/300/000", 404),
        (long.as_str(), 404),
        ("/issuer/xyz", 404),
        ("/issuer/../../etc/passwd", 400),
        ("/webseed/test/x/tile/data/000", 404),
        ("/http://example.com/", 400),
        ("/checkpoint/", 400),
        ("/", 404),
        // Well-formed, but beyond the checkpoint's tree of 3,372 entries.
        ("/tile/data/014", 404),
        ("/tile/data/013", 404),
        ("/tile/data/013.p/45", 404),
        ("/tile/0/013.p/43", 404),
        ("/tile/1/000", 404),
        ("/tile/2/000", 404),
    ] {
        let reply = mirror.get(path);
        assert_eq!(reply.status, status, "{path}: {}", String::from_utf8_lossy(&reply.body));
    }
    for method in ["POST", "PUT", "DELETE"] {
        assert_eq!(wire::request(mirror.addr, method, "/checkpoint", &[]).unwrap().status, 405);
    }
    assert_eq!(upstream.total_hits(), 0, "{:?}", upstream.requests());

    // Local tiles never cost an upstream request either.
    for path in ["tile/data/000", "tile/0/007", "tile/1/000.p/13", "tile/0/013.p/44"] {
        let reply = mirror.get(&format!("/{path}"));
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.body, log_tile(downloaded.log.path(), path), "{path}");
        assert_eq!(reply.header("cache-control"), Some("public, max-age=31536000, immutable"));
    }
    assert_eq!(upstream.total_hits(), 0, "{:?}", upstream.requests());
    assert_eq!(mirror.terminate(), 0);
}

#[test]
fn a_missing_tile_is_fetched_once_for_twenty_requests_checked_and_tampering_is_refused() {
    let downloaded = downloaded(&[0, 1]);
    // Without --upstream, what the downloads lack is 404.
    let alone = downloaded.mirror(&[]);
    assert_eq!(alone.get("/tile/data/008").status, 404);
    assert_eq!(alone.get("/tile/0/012").status, 404);
    assert_eq!(alone.get(&format!("/issuer/{}", "00".repeat(32))).status, 404);
    assert_eq!(alone.get("/tile/data/000").status, 200);
    drop(alone);

    let upstream =
        LogServer::start(downloaded.log.path(), ServerOptions { gzip_data_tiles: true, ..Default::default() }).unwrap();
    // A slow upstream, so that the twenty requests overlap the fetch.
    upstream.set_fault(|path, _| (path == "tile/data/008").then_some(Fault::Delay(Duration::from_millis(300))));
    let mirror = downloaded.mirror(&["--upstream", &upstream.url()]);
    let addr = mirror.addr;
    let replies: Vec<Reply> = (0..20)
        .map(|_| thread::spawn(move || wire::request(addr, "GET", "/tile/data/008", &[]).unwrap()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    let expected = log_tile(downloaded.log.path(), "tile/data/008");
    for reply in &replies {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, expected, "uncompressed, byte for byte");
    }
    assert_eq!(upstream.hits("tile/data/008"), 1, "{:?}", upstream.requests());
    assert_eq!(upstream.total_hits(), 1, "its parent is the site's right edge: {:?}", upstream.requests());
    assert_eq!(mirror.get("/tile/data/008").body, expected);
    assert_eq!(upstream.total_hits(), 1, "then served from the cache");

    // Range and HEAD as for helio serve.
    let ranged = wire::request(addr, "GET", "/tile/data/008", &[("Range", "bytes=10-19")]).unwrap();
    assert_eq!((ranged.status, &ranged.body[..]), (206, &expected[10..20]));
    let head = wire::request(addr, "HEAD", "/tile/0/012", &[]).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("8192"));

    // The right edge's data tile comes from the upstream, checked against the site's level-0 edge.
    let edge = mirror.get("/tile/data/013.p/44");
    assert_eq!(edge.status, 200);
    assert_eq!(edge.body, log_tile(downloaded.log.path(), "tile/data/013.p/44"));

    // A tampered tile is refused (502) every time, never served.
    let mut tampered = log_tile(downloaded.log.path(), "tile/data/009");
    tampered[3] ^= 1; // a byte of an entry's timestamp: hashed, still parses
    let mut level0 = log_tile(downloaded.log.path(), "tile/0/010");
    level0[100] ^= 1;
    let another = log_tile(downloaded.log.path(), "tile/data/009");
    upstream.set_fault(move |path, _| match path {
        "tile/data/009" => Some(Fault::Body(tampered.clone())),
        "tile/0/010" => Some(Fault::Body(level0.clone())),
        "tile/data/010" => Some(Fault::Body(another.clone())),
        _ => None,
    });
    for path in ["/tile/data/009", "/tile/0/010", "/tile/data/010"] {
        for _ in 0..2 {
            let reply = mirror.get(path);
            assert_eq!(reply.status, 502, "{path}: {}", String::from_utf8_lossy(&reply.body));
        }
    }
    assert_eq!(upstream.hits("tile/data/009"), 2, "a refusal is not cached");

    // Issuers: fetched, checked against their fingerprint, cached.
    let issuer = b"an issuer certificate, DER in real life".to_vec();
    let fingerprint: String = Sha256::digest(&issuer).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(downloaded.log.path().join("issuer")).unwrap();
    std::fs::write(downloaded.log.path().join("issuer").join(&fingerprint), &issuer).unwrap();
    let impostor = "ab".repeat(32);
    std::fs::write(downloaded.log.path().join("issuer").join(&impostor), &issuer).unwrap();
    for _ in 0..3 {
        let reply = mirror.get(&format!("/issuer/{fingerprint}"));
        assert_eq!((reply.status, &reply.body), (200, &issuer));
        assert_eq!(reply.header("content-type"), Some("application/pkix-cert"));
    }
    assert_eq!(upstream.hits(&format!("issuer/{fingerprint}")), 1);
    assert_eq!(mirror.get(&format!("/issuer/{impostor}")).status, 502);
    assert_eq!(mirror.get(&format!("/issuer/{}", "cd".repeat(32))).status, 404);

    let stderr = mirror.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("tile/data/009: the leaf hash") || stderr.contains("tile/data/009: its tree hash"),
        "{stderr}"
    );
    assert_eq!(mirror.terminate(), 0);
}

#[test]
#[cfg_attr(not(has_py_hashlib), ignore = "needs Python's hashlib, not installed here (HELIO_E2E=1 requires it)")]
fn an_independent_reader_walks_the_mirror_to_the_checkpoints_root() {
    let test = "an_independent_reader_walks_the_mirror_to_the_checkpoints_root";
    let Some(python) = python_with("hashlib", test) else { return };
    let downloaded = downloaded(&[0, 1, 2]);
    let upstream =
        LogServer::start(downloaded.log.path(), ServerOptions { gzip_data_tiles: true, ..Default::default() }).unwrap();
    let mirror = downloaded.mirror(&["--upstream", &upstream.url()]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helio/ct_walk.py");
    let output = std::process::Command::new(&python).arg(&script).arg(mirror.url()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout, format!("root ok: {SIZE} entries\n"));
    // Only what the downloads lack came from the upstream: tile 12 and the right edge.
    let mut asked: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    asked.sort();
    assert_eq!(asked, ["tile/0/012", "tile/data/012", "tile/data/013.p/44"]);

    // Tampering with the checker's inputs is caught by it: it really checks.
    drop(mirror);
    let mut broken = log_tile(downloaded.log.path(), "tile/data/012");
    broken[3] ^= 1;
    std::fs::write(downloaded.log.path().join("tile/data/012"), &broken).unwrap();
    let served = LogServer::start(downloaded.log.path(), ServerOptions::default()).unwrap();
    let output = std::process::Command::new(&python).arg(&script).arg(served.url()).output().unwrap();
    assert!(!output.status.success(), "the checker must notice a changed entry");
}

#[test]
fn startup_proves_the_downloads_and_names_a_damaged_file() {
    let downloaded = downloaded(&[0, 1, 2]);
    let folder = downloaded.downloads.path().join("test-L01-1024-2048");
    let tile = folder.join("tile/data/005");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&tile, &bytes).unwrap();
    let key = downloaded.log.log.key.clone();
    let site = downloaded.site_dir();
    let args = |extra: &[&'static str]| {
        let mut args: Vec<String> =
            ["mirror", downloaded.downloads.path().to_str().unwrap(), "--site"].iter().map(|s| s.to_string()).collect();
        args.push(site.to_str().unwrap().to_string());
        args.extend(["--key".to_string(), key.clone(), "--listen".into(), "127.0.0.1:0".into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = helio(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("test-L01-1024-2048/tile/data/005: the leaf hash of entry 1280"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("helio: ").count(), 1, "{}", run.stderr);
    assert!(!run.stdout.contains("listening"), "{}", run.stdout);

    // Usage errors: exit 2.
    let run = helio(&args(&["--upstream", "ftp://x/"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--upstream \"ftp://x/\""), "{}", run.stderr);
    let run = helio(&["mirror", site.to_str().unwrap(), "--site", site.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not a helio range"), "{}", run.stderr);
    let run = helio(&["mirror", "--site", site.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);

    // Repaired, it starts; without --key it warns once that the publisher is trusted.
    bytes[3] ^= 1;
    std::fs::write(&tile, &bytes).unwrap();
    let unkeyed = Running::start(&[
        "mirror",
        downloaded.downloads.path().to_str().unwrap(),
        "--site",
        site.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(unkeyed.get("/checkpoint").body, std::fs::read(site.join("checkpoint")).unwrap());
    let lines = unkeyed.stdout.lock().unwrap().clone();
    assert!(lines.starts_with("test-L01-0-1024 ok: entries 0..1024, 8 tiles, "), "{lines}");
    let stderr = unkeyed.stderr.lock().unwrap().clone();
    assert_eq!(stderr.matches("no --key: the checkpoint's signature is not checked").count(), 1, "{stderr}");
    assert_eq!(unkeyed.terminate(), 0);
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
deadline = time.time() + 90
while not all(h.status().is_seeding for h in handles):
    for a in s.pop_alerts():
        print('alert:', a.message(), file=sys.stderr)
    if time.time() > deadline:
        sys.exit('timed out: ' + repr([(h.status().state, h.status().progress) for h in handles]))
    time.sleep(0.05)
for h in handles:
    print(h.torrent_file().name(), 'downloaded')
"#;

/// The config of the round trip: the log at `log_url`, torrents seeded by `webseed`.
fn round_trip_config(site: &Site, log: &TestLog, log_url: &str, webseed: &str) -> PathBuf {
    site.write_config(&format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: []\ntorrent_dir: out\n\
         webseeds: [{webseed}]\nlogs:\n  - name: test\n    log_url: {log_url}\n    origin: {ORIGIN}\n    key: {}\n",
        log.log.key
    ))
}

#[test]
#[cfg_attr(not(has_py_libtorrent), ignore = "needs Python's libtorrent, not installed here (HELIO_E2E=1 requires it)")]
fn round_trip_libtorrent_verify_mirror_and_build_again_from_the_mirror() {
    let test = "round_trip_libtorrent_verify_mirror_and_build_again_from_the_mirror";
    let Some(python) = python_with("libtorrent", test) else { return };
    let log = TestLog::new(SIZE);
    let upstream = log.serve();
    let log_url = upstream.url();
    let upstream_addr = upstream.addr();
    let site = Site::new();

    // Publish, with helio serve as the torrents' web seed.
    let config = round_trip_config(&site, &log, &log_url, "http://127.0.0.1:9/webseed/");
    let served = Running::start(&["serve", "-c", config.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    round_trip_config(&site, &log, &log_url, &format!("{}webseed/", served.url()));
    site.build().ok();
    let site_dir = site.out().join("test");
    let mut torrents: Vec<(TorrentRange, PathBuf)> = std::fs::read_dir(&site_dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            Some((TorrentRange::from_file_name(path.file_name()?.to_str()?)?, path))
        })
        .collect();
    torrents.sort();
    assert_eq!(torrents.len(), 3);

    // libtorrent downloads every torrent through the web seed alone.
    let downloads = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(&python)
        .arg("-c")
        .arg(LIBTORRENT_SCRIPT)
        .arg(downloads.path())
        .args(torrents.iter().map(|(_, path)| path))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_bounded(&mut child, Duration::from_secs(150), "libtorrent");
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(code, 0, "libtorrent failed:\n{out}\n{err}");
    assert_eq!(out.matches(" downloaded").count(), 3, "{out}");
    drop(served);

    // helio verify passes on each downloaded folder.
    for (range, _) in &torrents {
        let folder = downloads.path().join(range.torrent_name("test"));
        let run =
            helio(&["verify", folder.to_str().unwrap(), "--site", site_dir.to_str().unwrap(), "--key", &log.log.key]);
        run.ok();
        assert!(run.stdout.starts_with(&format!("{} ok: ", range.torrent_name("test"))), "{}", run.stdout);
    }

    // The mirror takes the log's place, at its very address, with the log
    // (elsewhere) as its upstream for what the torrents do not carry.
    let other = LogServer::start(log.path(), ServerOptions { gzip_data_tiles: true, ..Default::default() }).unwrap();
    drop(upstream);
    let listen = upstream_addr.to_string();
    let mirror = Running::start(&[
        "mirror",
        downloads.path().to_str().unwrap(),
        "--site",
        site_dir.to_str().unwrap(),
        "--key",
        &log.log.key,
        "--upstream",
        &other.url(),
        "--listen",
        &listen,
    ]);
    assert_eq!(mirror.addr, upstream_addr);
    let checkpoint = mirror.get("/checkpoint");
    assert_eq!(checkpoint.status, 200);
    assert_eq!(checkpoint.body, std::fs::read(site_dir.join("checkpoint")).unwrap(), "the published checkpoint");
    let tiles = snapshot(&log.path().join("tile"));
    assert_eq!(tiles.len(), 14 + 14 + 1, "data and level-0 tiles, and the level-1 edge");
    for (path, bytes) in &tiles {
        let path = format!("tile/{}", path.to_str().unwrap());
        let reply = mirror.get(&format!("/{path}"));
        assert_eq!(reply.status, 200, "{path}");
        assert!(reply.body == *bytes, "{path}: the mirror's bytes differ from the log's");
    }

    // helio build against the mirror, with the log's key and origin, writes the same torrents.
    let rebuilt = Site::new();
    let config = rebuilt.write_config(&std::fs::read_to_string(site.config()).unwrap());
    let run = helio(&["build", "-c", config.to_str().unwrap(), rebuilt.out().to_str().unwrap()]);
    run.ok();
    for (range, path) in &torrents {
        let again = rebuilt.out().join("test").join(range.file_name());
        assert!(std::fs::read(&again).unwrap() == std::fs::read(path).unwrap(), "{}: not the same torrent", range);
    }
    assert_eq!(
        std::fs::read(rebuilt.out().join("test/checkpoint")).unwrap(),
        std::fs::read(site_dir.join("checkpoint")).unwrap()
    );
    assert_eq!(mirror.terminate(), 0);
}

#[test]
fn the_right_edge_is_cut_from_the_full_tile_once_the_log_has_grown_past_it() {
    let mut downloaded = downloaded(&[0, 1]);
    let edge = log_tile(downloaded.log.path(), "tile/data/013.p/44");
    downloaded.log.resize(4 * 1024);
    let _ = std::fs::remove_file(downloaded.log.path().join("tile/data/013.p/44"));
    let upstream = LogServer::start(downloaded.log.path(), ServerOptions::default()).unwrap();
    let mirror = downloaded.mirror(&["--upstream", &upstream.url()]);
    let reply = mirror.get("/tile/data/013.p/44");
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.body, edge, "the first 44 entries of tile/data/013");
    assert_eq!(upstream.hits("tile/data/013.p/44") + upstream.hits("tile/data/013"), 2);
    // The mirror still serves the site's checkpoint, not the log's newer tree.
    assert_eq!(mirror.get("/tile/data/014").status, 404);
    assert_eq!(mirror.get("/tile/data/013").status, 404);
}

#[test]
fn a_final_range_is_proved_at_startup_and_its_right_edge_served_from_the_download() {
    let log = TestLog::new(4700);
    let site = Site::new();
    site.write_config(&format!(
        "entries_per_torrent: 1024\ntrackers: []\nfeed_url_base: https://feeds.helio.invalid/t\n\
         logs:\n  - name: test\n    log_url: {}\n    origin: {ORIGIN}\n    key: {}\n    final: true\n",
        log.path().display(),
        log.log.key
    ));
    site.build().ok();
    let downloads = tempfile::tempdir().unwrap();
    let readme = format!("LOG_URL: {}\n", log.path().display());
    let torrent = site.torrent("test", 4096, 4700);
    let folder = lay_out(log.path(), &torrent, readme.as_bytes(), downloads.path());
    let downloaded = Downloaded { log, site, downloads };

    // Its partial data tile gone: the mirror does not start, naming it.
    let partial = folder.join("tile/data/018.p/92");
    let bytes = std::fs::read(&partial).unwrap();
    std::fs::remove_file(&partial).unwrap();
    let site_dir = downloaded.site_dir();
    let key = downloaded.log.log.key.clone();
    let args = [
        "mirror",
        downloaded.downloads.path().to_str().unwrap(),
        "--site",
        site_dir.to_str().unwrap(),
        "--key",
        &key,
        "--listen",
        "127.0.0.1:0",
    ];
    let run = helio_within(&args, &[], Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("test-L01-4096-4700/tile/data/018.p/92: missing"), "{}", run.stderr);
    assert!(!run.stdout.contains("listening"), "{}", run.stdout);

    // Whole, it starts with every entry proved, and serves the right edge
    // from the download, with no upstream at all.
    std::fs::write(&partial, &bytes).unwrap();
    let mirror = downloaded.mirror(&[]);
    let lines = mirror.stdout.lock().unwrap().clone();
    assert!(lines.starts_with("test-L01-4096-4700 ok: entries 4096..4700, 7 tiles, "), "{lines}");
    // A chain fingerprint's byte changed on disk after startup, where the
    // checkpoint cannot see it: the torrent's piece hashes refuse it.
    let tile = folder.join("tile/data/016");
    let mut chain = std::fs::read(&tile).unwrap();
    let last = chain.len() - 1;
    chain[last] ^= 1;
    std::fs::write(&tile, &chain).unwrap();
    let refused = mirror.get("/tile/data/016");
    assert_eq!(refused.status, 502, "{}", String::from_utf8_lossy(&refused.body));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !mirror.stderr.lock().unwrap().contains("tile/data/016: piece ") {
        let stderr = mirror.stderr.lock().unwrap().clone();
        assert!(std::time::Instant::now() < deadline, "the refusal names the file: {stderr}");
        thread::sleep(Duration::from_millis(20));
    }
    chain[last] ^= 1;
    std::fs::write(&tile, &chain).unwrap();
    assert_eq!(mirror.get("/tile/data/016").status, 200);
    for path in ["tile/data/018.p/92", "tile/0/018.p/92", "tile/data/017", "tile/1/000.p/18"] {
        let reply = mirror.get(&format!("/{path}"));
        assert_eq!(reply.status, 200, "{path}: {}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.body, log_tile(downloaded.log.path(), path), "{path}");
    }
    // Changed on disk after startup: refused, never served.
    let mut changed = bytes.clone();
    changed[3] ^= 1;
    std::fs::write(&partial, &changed).unwrap();
    let edge = mirror.get("/tile/data/018.p/92");
    assert!(edge.status == 502 || edge.body == bytes, "{}: served a changed tile", edge.status);
    assert_eq!(mirror.terminate(), 0);
}
