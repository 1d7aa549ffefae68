//! `helio verify` on torrents laid out as BitTorrent clients save them,
//! against the proof tiles and checkpoint `helio build` publishes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use helio::fixture::server::{Fault, LogServer, ServerOptions};
use helio::torrent::range::TorrentRange;
use tempfile::TempDir;

use crate::support::*;

/// A log built into a site, and its torrents laid out as a client saves them.
struct Published {
    log: TestLog,
    site: Site,
    downloads: TempDir,
    /// The range folders, in range order.
    folders: Vec<PathBuf>,
}

fn publish(log: TestLog, entries_per_torrent: u64) -> Published {
    publish_with(log, entries_per_torrent, "")
}

/// [`publish`] with more lines of the log's entry (e.g. `    final: true\n`).
fn publish_with(log: TestLog, entries_per_torrent: u64, more: &str) -> Published {
    let site = Site::new();
    site.write_config(&format!(
        "entries_per_torrent: {entries_per_torrent}\ntrackers: []\nfeed_url_base: https://feeds.helio.invalid/t\n\
         logs:\n  - name: test\n    log_url: {}\n    origin: {ORIGIN}\n    key: {}\n{more}",
        log.path().display(),
        log.log.key
    ));
    site.build().ok();
    let downloads = tempfile::tempdir().unwrap();
    let folders = lay_out_all(&log, &site, downloads.path());
    Published { log, site, downloads, folders }
}

/// Lays out every torrent of the site's log `test` under `dir`.
fn lay_out_all(log: &TestLog, site: &Site, dir: &Path) -> Vec<PathBuf> {
    let readme = format!("LOG_URL: {}\n", log.path().display());
    let mut ranges: Vec<TorrentRange> = std::fs::read_dir(site.out().join("test"))
        .unwrap()
        .filter_map(|e| TorrentRange::from_file_name(e.unwrap().file_name().to_str().unwrap()))
        .collect();
    ranges.sort();
    ranges
        .iter()
        .map(|range| lay_out(log.path(), &site.torrent("test", range.start, range.end), readme.as_bytes(), dir))
        .collect()
}

impl Published {
    fn site_dir(&self) -> PathBuf {
        self.site.out().join("test")
    }

    /// `helio verify PATHS --site <the site> --key <the log's key> EXTRA…`
    fn verify(&self, paths: &[&Path], extra: &[&str]) -> Run {
        self.verify_with(paths, self.site_dir().to_str().unwrap(), Some(&self.log.log.key), extra)
    }

    fn verify_with(&self, paths: &[&Path], site: &str, key: Option<&str>, extra: &[&str]) -> Run {
        let mut args: Vec<&str> = vec!["verify"];
        args.extend(paths.iter().map(|p| p.to_str().unwrap()));
        args.extend(["--site", site]);
        if let Some(key) = key {
            args.extend(["--key", key]);
        }
        args.extend(extra);
        helio(&args)
    }

    /// The proof tiles on the site, as paths below the log's folder.
    fn proof_tiles(&self) -> Vec<String> {
        let mut tiles: Vec<String> =
            snapshot(&self.site_dir().join("tile")).keys().map(|p| format!("tile/{}", p.to_str().unwrap())).collect();
        tiles.sort();
        tiles
    }
}

fn ok_line(start: u64, end: u64, tiles: u64) -> String {
    format!("test-L01-{start}-{end} ok: entries {start}..{end}, {tiles} tiles, ")
}

/// Asserts that verify failed (exit 1), naming `message`, and printed
/// nothing for a failed range.
fn assert_fails(run: &Run, message: &str) {
    assert_eq!(run.code, 1, "expected exit 1:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(message), "expected {message:?} in:\n{}", run.stderr);
    assert_eq!(run.stderr.matches("helio: ").count(), 1, "one error line: {}", run.stderr);
}

#[test]
fn every_range_verifies_alone_and_in_its_folder_against_a_local_or_served_site() {
    let published = publish(TestLog::new(3 * 1024 + 300), 1024);
    assert_eq!(published.folders.len(), 3);
    // The small tree's proof is its right edge.
    assert_eq!(published.proof_tiles(), ["tile/0/013.p/44", "tile/1/000.p/13"]);

    for (k, folder) in published.folders.iter().enumerate() {
        let run = published.verify(&[folder], &[]);
        run.ok();
        let (start, end) = (k as u64 * 1024, (k as u64 + 1) * 1024);
        assert!(run.stdout.starts_with(&ok_line(start, end, 8)), "{}", run.stdout);
        assert!(run.stdout.ends_with(" MiB\n") && run.stdout.lines().count() == 1, "{}", run.stdout);
        assert_eq!(run.stderr, "", "a key was given: nothing to warn about");
    }
    let all = published.verify(&[published.downloads.path()], &[]);
    all.ok();
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", all.stdout);
    for (k, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&ok_line(k as u64 * 1024, (k as u64 + 1) * 1024, 8)), "{line}");
    }

    // The site over HTTP, as a subscriber reaches it.
    let server = LogServer::start(&published.site_dir(), ServerOptions::default()).unwrap();
    let key = published.log.log.key.clone();
    let served = published.verify_with(&[published.downloads.path()], &server.url(), Some(&key), &[]);
    served.ok();
    assert_eq!(served.stdout, all.stdout);
    assert!(server.hits("checkpoint") == 1 && server.hits("tile/0/013.p/44") == 1, "{:?}", server.requests());

    // The log's Ed25519 verifier key works as well; without a key, one warning.
    let ed25519 = published.log.log.ed25519_key.clone();
    published.verify_with(&[&published.folders[0]], &server.url(), Some(&ed25519), &[]).ok();
    let unkeyed = published.verify_with(&[published.downloads.path()], &server.url(), None, &[]);
    unkeyed.ok();
    assert_eq!(unkeyed.stdout, all.stdout);
    assert_eq!(unkeyed.stderr.matches("no --key: the checkpoint's signature is not checked").count(), 1);
    assert_eq!(unkeyed.stderr.lines().count(), 1, "{}", unkeyed.stderr);

    // --origin is checked, with or without a key.
    published.verify(&[&published.folders[0]], &["--origin", ORIGIN]).ok();
    let wrong = published.verify(&[&published.folders[0]], &["--origin", "other.example/2026"]);
    assert_fails(&wrong, "origin is \"test.helio.invalid/2026\", not \"other.example/2026\" (--origin)");
    let wrong = published.verify_with(&[&published.folders[0]], &server.url(), None, &["--origin", "x.example"]);
    assert_fails(&wrong, "origin is \"test.helio.invalid/2026\", not \"x.example\" (--origin)");
}

/// Applies `damage` to a fresh copy of the downloads (or the site) and checks
/// that verifying them all fails naming `message`, after printing the ranges
/// before the damaged one.
fn assert_caught(
    published: &Published,
    damage: impl FnOnce(&Path, &Path),
    message: &str,
    verified_before: usize,
) -> Run {
    let copy = tempfile::tempdir().unwrap();
    let downloads = copy.path().join("downloads");
    let site = copy.path().join("site");
    lay_out_all(&published.log, &published.site, &downloads);
    copy_dir(&published.site_dir(), &site);
    damage(&downloads, &site);
    let run = published.verify_with(&[&downloads], site.to_str().unwrap(), Some(&published.log.log.key), &[]);
    assert_fails(&run, message);
    assert_eq!(run.stdout.lines().count(), verified_before, "{}", run.stdout);
    run
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, len: usize) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..len]).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    for (relative, bytes) in snapshot(from) {
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
}

#[test]
fn damaged_downloads_and_sites_fail_naming_the_file() {
    let published = publish(TestLog::new(3 * 1024 + 300), 1024);
    let second = "test-L01-1024-2048";
    // A byte of an entry's timestamp: hashed, and still parses.
    let run = assert_caught(
        &published,
        |d, _| flip(&d.join(second).join("tile/data/005"), 3),
        &format!("{second}/tile/data/005: the leaf hash of entry 1280 does not match entry 0 of /"),
        1,
    );
    assert!(run.stderr.trim_end().ends_with(&format!("downloads/{second}/tile/0/005")), "{}", run.stderr);
    assert_caught(
        &published,
        |d, _| flip(&d.join(second).join("tile/0/006"), 4000),
        &format!("{second}/tile/0/006: its tree hash is not entry 6 of "),
        1,
    );
    assert_caught(
        &published,
        |d, _| std::fs::remove_file(d.join(second).join("tile/data/007")).unwrap(),
        &format!("{second}/tile/data/007: missing (an incomplete download?)"),
        1,
    );
    assert_caught(
        &published,
        |d, _| truncate(&d.join(second).join("tile/0/004"), 8000),
        &format!("{second}/tile/0/004: 8000 bytes, but a full hash tile has 8192"),
        1,
    );
    assert_caught(
        &published,
        |d, _| {
            let path = d.join("test-L01-0-1024/tile/data/002");
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            truncate(&path, len - 100);
        },
        "test-L01-0-1024/tile/data/002: entry 255 (leaf index 767) at byte",
        0,
    );
    // The site: a signature that does not verify, a root its tiles do not
    // give, a missing or altered proof tile.
    assert_caught(
        &published,
        |_, s| {
            let path = s.join("checkpoint");
            let text = std::fs::read_to_string(&path).unwrap();
            let at = text.find("\n— ").unwrap() + 1;
            let target = at + text[at..].find('\n').unwrap() - 10;
            let mut bytes = text.into_bytes();
            bytes[target] = if bytes[target] == b'A' { b'B' } else { b'A' };
            std::fs::write(&path, bytes).unwrap();
        },
        &format!("site/checkpoint: checkpoint signature by {ORIGIN}/"),
        0,
    );
    assert_caught(
        &published,
        |_, s| {
            let keys = helio::fixture::generate::signing_keys(published.log.seed, ORIGIN);
            let size = published.log.log.size;
            let text = helio::log::checkpoint::sign(ORIGIN, size, &[9u8; 32], &[], 1_800_000_000_000, &keys).unwrap();
            std::fs::write(s.join("checkpoint"), text).unwrap();
        },
        "but the checkpoint says CQkJ",
        0,
    );
    assert_caught(
        &published,
        |_, s| std::fs::remove_file(s.join("tile/1/000.p/13")).unwrap(),
        "site/tile/1/000.p/13: not found, and neither is the full tile it is a prefix of",
        0,
    );
    assert_caught(&published, |_, s| flip(&s.join("tile/0/013.p/44"), 7), "the log's tiles give root", 0);

    // Another log's key.
    let other = TestLog::with_seed(300, 99);
    let run = published.verify_with(
        &[published.downloads.path()],
        published.site_dir().to_str().unwrap(),
        Some(&other.log.key),
        &[],
    );
    assert_fails(&run, &format!("{}/checkpoint: no signature by key {ORIGIN}/", published.site_dir().display()));
    assert_eq!(run.stdout, "");
}

#[test]
fn what_is_not_a_helio_range_is_a_usage_error() {
    let published = publish(TestLog::new(1024 + 5), 1024);
    let usage = |run: Run, message: &str| {
        assert_eq!(run.code, 2, "expected exit 2:\n{}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(message), "expected {message:?} in:\n{}", run.stderr);
        assert_eq!(run.stdout, "");
    };
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir(elsewhere.path().join("photos")).unwrap();
    usage(
        published.verify(&[elsewhere.path()], &[]),
        "not a helio range: expected a torrent's folder named <log>-L01-<start>-<end>",
    );
    usage(published.verify(&[&published.log.path().join("checkpoint")], &[]), "checkpoint: not a helio range");
    usage(published.verify(&[&elsewhere.path().join("absent")], &[]), "absent: no such folder");
    usage(published.verify_with(&[&published.folders[0]], "/nonexistent/site", None, &[]), "no such folder");
    usage(published.verify_with(&[&published.folders[0]], "ftp://x/", None, &[]), "only http://, https:// and file://");
    usage(
        published.verify_with(
            &[&published.folders[0]],
            published.site_dir().to_str().unwrap(),
            Some("bm90IGEga2V5"),
            &[],
        ),
        "--key: key is not a DER",
    );
    usage(helio(&["verify", published.folders[0].to_str().unwrap()]), "--site");
    let other = published.downloads.path().join("other-L01-0-1024");
    std::fs::create_dir(&other).unwrap();
    usage(published.verify(&[published.downloads.path()], &[]), "several logs (other, test)");
}

#[test]
fn a_three_level_tree_with_ranges_smaller_than_and_as_large_as_a_level1_tile() {
    // Level 2 holds one entry: the tree has three levels. Ranges of 16,384
    // need the site's level-1 tiles; a range of 65,536 carries its own.
    let log = TestLog::new(65536 + 16384 + 300);
    let small = publish(log, 16384);
    assert_eq!(small.folders.len(), 5);
    assert_eq!(small.proof_tiles(), ["tile/0/321.p/44", "tile/1/000", "tile/1/001.p/65", "tile/2/000.p/1"]);
    let proof_bytes: usize = snapshot(&small.site_dir().join("tile")).values().map(Vec::len).sum();
    assert_eq!(proof_bytes, 8192 + (44 + 65 + 1) * 32, "one full tile and the right edge");
    let run = small.verify(&[small.downloads.path()], &[]);
    run.ok();
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.stdout);
    assert!(run.stdout.lines().nth(4).unwrap().starts_with(&ok_line(65536, 81920, 128)), "{}", run.stdout);

    // Each proof tile is needed: without it, some range does not verify.
    for tile in small.proof_tiles() {
        let path = small.site_dir().join(&tile);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let run = small.verify(&[small.downloads.path()], &[]);
        assert_fails(&run, &tile);
        std::fs::write(&path, bytes).unwrap();
    }

    let Published { log, .. } = small;
    let large = publish(log, 65536);
    assert_eq!(large.folders.len(), 1);
    assert_eq!(large.proof_tiles(), ["tile/0/321.p/44", "tile/1/001.p/65", "tile/2/000.p/1"]);
    let run = large.verify(&[&large.folders[0]], &[]);
    run.ok();
    assert!(run.stdout.starts_with(&ok_line(0, 65536, 513)), "{}", run.stdout);
    flip(&large.folders[0].join("tile/1/000"), 100);
    let run = large.verify(&[&large.folders[0]], &[]);
    assert_fails(&run, "test-L01-0-65536/tile/1/000: its tree hash is not entry 0 of ");
    assert!(run.stderr.contains("tile/2/000.p/1"), "{}", run.stderr);
}

#[test]
fn a_site_built_before_proof_tiles_gets_them_without_a_new_checkpoint() {
    let log = TestLog::new(2 * 1024 + 10);
    let server = log.serve();
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "");
    site.build().ok();
    let tiles = site.out().join("test/tile");
    let before = snapshot(&tiles);
    assert_eq!(before.len(), 2, "{:?}", before.keys());
    // As a site published by an older helio: no proof tiles.
    std::fs::remove_dir_all(&tiles).unwrap();
    let checkpoint = std::fs::read(site.out().join("test/checkpoint")).unwrap();
    let hits = server.total_hits();
    let run = site.build();
    run.ok();
    assert_eq!(run.stdout, "", "nothing new is built");
    assert_eq!(snapshot(&tiles), before);
    assert_eq!(std::fs::read(site.out().join("test/checkpoint")).unwrap(), checkpoint);
    // The checkpoint, and the right edge the proof is made of.
    assert_eq!(server.total_hits() - hits, 3, "{:?}", server.requests());
}

/// The demo log's shape made final: 4,700 entries, ranges of 1,024, so the
/// last torrent is `test-L01-4096-4700` with the right edge of the tree.
fn final_log() -> Published {
    let published = publish_with(TestLog::new(4700), 1024, "    final: true\n");
    assert_eq!(published.folders.len(), 5);
    published
}

#[test]
fn every_entry_of_a_final_range_is_proved_by_its_partial_tiles_and_checkpoint() {
    let published = final_log();
    let last = "test-L01-4096-4700";
    let run = published.verify(&[published.downloads.path()], &[]);
    run.ok();
    // Two full tiles of each kind, the partial level-0 and data tiles and
    // the level-1 edge: every entry up to 4,700 read.
    assert!(run.stdout.lines().nth(4).unwrap().starts_with(&ok_line(4096, 4700, 7)), "{}", run.stdout);

    for (file, message) in [
        ("tile/data/018.p/92", "tile/data/018.p/92: missing (an incomplete download?)"),
        ("tile/0/018.p/92", "tile/0/018.p/92: missing (an incomplete download?)"),
        ("checkpoint", "/checkpoint: missing (an incomplete download?)"),
        ("tile/1/000.p/18", "tile/1/000.p/18: missing (an incomplete download?)"),
    ] {
        assert_caught(&published, |d, _| std::fs::remove_file(d.join(last).join(file)).unwrap(), message, 4);
    }
    // Tampered: a hashed byte of the last entries, a hash, the signature.
    assert_caught(
        &published,
        |d, _| flip(&d.join(last).join("tile/data/018.p/92"), 3),
        "tile/data/018.p/92: its leaf hashes are not the entries of",
        4,
    );
    assert_caught(
        &published,
        |d, _| flip(&d.join(last).join("tile/0/018.p/92"), 100),
        "tile/0/018.p/92: not the right edge of the tree that",
        4,
    );
    assert_caught(
        &published,
        |d, _| flip(&d.join(last).join("tile/1/000.p/18"), 5),
        "tile/1/000.p/18: not the right edge of the tree that",
        4,
    );
    assert_caught(
        &published,
        |d, _| {
            let path = d.join(last).join("checkpoint");
            let text = std::fs::read_to_string(&path).unwrap();
            let at = text.find("\n— ").unwrap() + 1;
            let target = at + text[at..].find('\n').unwrap() - 10;
            let mut bytes = text.into_bytes();
            bytes[target] = if bytes[target] == b'A' { b'B' } else { b'A' };
            std::fs::write(&path, bytes).unwrap();
        },
        &format!("{last}/checkpoint: checkpoint signature by {ORIGIN}/"),
        4,
    );
    // Another checkpoint of the log, properly signed, of another tree.
    assert_caught(
        &published,
        |d, _| {
            let keys = helio::fixture::generate::signing_keys(published.log.seed, ORIGIN);
            let text = helio::log::checkpoint::sign(ORIGIN, 4700, &[9u8; 32], &[], 1_800_000_000_000, &keys).unwrap();
            std::fs::write(d.join(last).join("checkpoint"), text).unwrap();
        },
        &format!("{last}/checkpoint: its root is not that of the tree"),
        4,
    );

    // Without the site's .torrent files the range is still known final by
    // its end, and its edge still required.
    let run = assert_caught(
        &published,
        |d, s| {
            std::fs::remove_file(d.join(last).join("tile/data/018.p/92")).unwrap();
            for entry in std::fs::read_dir(s).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "torrent") {
                    std::fs::remove_file(path).unwrap();
                }
            }
        },
        "tile/data/018.p/92: missing (an incomplete download?)",
        4,
    );
    assert!(run.stderr.contains("not on the site, so the downloads are checked against the checkpoint only"));
}

/// Offset of the last byte of data tile `tile`'s last entry: a byte of its
/// chain's last fingerprint, which the Merkle tree does not cover.
fn unbound_byte(tile: &Path) -> usize {
    let bytes = std::fs::read(tile).unwrap();
    bytes.len() - 1
}

#[test]
fn the_torrents_piece_hashes_cover_what_the_checkpoint_does_not() {
    let published = publish(TestLog::new(2 * 1024 + 10), 1024);
    let second = "test-L01-1024-2048";
    // A chain fingerprint: the checkpoint cannot tell, the torrent can.
    let run = assert_caught(
        &published,
        |d, _| {
            let tile = d.join(second).join("tile/data/006");
            flip(&tile, unbound_byte(&tile));
        },
        &format!("{second}/tile/data/006: piece "),
        1,
    );
    assert!(run.stderr.contains("L01-1024-2048.torrent does not match its SHA-1"), "{}", run.stderr);
    assert_caught(
        &published,
        |d, _| flip(&d.join(second).join("README.md"), 2),
        &format!("{second}/README.md: piece 0 of "),
        1,
    );
    assert_caught(
        &published,
        |d, _| std::fs::remove_file(d.join(second).join("README.md")).unwrap(),
        &format!("{second}/README.md: missing (an incomplete download?)"),
        1,
    );
    assert_caught(
        &published,
        |d, _| std::fs::write(d.join(second).join("README.md"), "LOG_URL: elsewhere, and longer\n").unwrap(),
        &format!("{second}/README.md: 31 bytes, but the torrent "),
        1,
    );
    // The same chain byte with no torrent on the site: not covered, as documented.
    let copy = tempfile::tempdir().unwrap();
    let (downloads, site) = (copy.path().join("downloads"), copy.path().join("site"));
    lay_out_all(&published.log, &published.site, &downloads);
    copy_dir(&published.site_dir(), &site);
    let tile = downloads.join(second).join("tile/data/006");
    flip(&tile, unbound_byte(&tile));
    for entry in std::fs::read_dir(&site).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "torrent") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let run = published.verify_with(&[&downloads], site.to_str().unwrap(), Some(&published.log.log.key), &[]);
    run.ok();
    assert_eq!(
        run.stderr.matches("not on the site, so the downloads are checked against the checkpoint only").count(),
        1
    );

    // Files the torrent does not list are named, and left alone.
    std::fs::write(downloads.join(second).join("notes.txt"), "mine").unwrap();
    std::fs::write(downloads.join(second).join("tile/data/006.!qB"), "partial").unwrap();
    let run = published.verify_with(&[&downloads], site.to_str().unwrap(), Some(&published.log.log.key), &[]);
    run.ok();
    assert!(
        run.stderr.contains(&format!(
            "{second}: 2 files are not part of the range's torrent, not checked: notes.txt, tile/data/006.!qB"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_site_that_trickles_its_bytes_is_given_up_on_within_the_budget() {
    let published = publish(TestLog::new(1024 + 10), 1024);
    let server = LogServer::start(&published.site_dir(), ServerOptions::default()).unwrap();
    // 16 bytes a second: a 400-byte checkpoint would take 25 s.
    server.set_fault(|path, _| (path == "checkpoint").then_some(Fault::Trickle(Duration::from_millis(62))));
    let started = Instant::now();
    let key = published.log.log.key.clone();
    let args = ["verify", published.folders[0].to_str().unwrap(), "--site", &server.url(), "--key", &key];
    let run = helio_with_env(&args, &[("HELIO_RETRY_BUDGET", "2")]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("checkpoint: "), "{}", run.stderr);
    assert!(took < Duration::from_secs(10), "{took:?}");
}
