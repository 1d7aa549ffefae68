//! Hybrid v1 + v2 torrents (BEP 52) checked by real readers: libtorrent
//! computes both infohashes and rechecks every piece of the laid-out content
//! as a v1 torrent, as a v2 torrent and as the hybrid; torrentfile, a second
//! independent v2 implementation, rechecks the piece layers. The torrents are
//! built from the laid-out files by `helio::torrent::hybrid`, the code the
//! build pipeline uses.

use std::path::{Path, PathBuf};

use helio::torrent::hybrid::{HybridMetainfo, HybridSpec, read_folder};
use helio::torrent::piece_length::hybrid_piece_length;
use helio::torrent::profile::Profile;
use helio::torrent::range::TorrentRange;

use crate::support::{TestLog, lay_out_range, python_with, run_python};

/// Loads the torrent and checks the content under `save_path` three ways: the
/// hybrid as written, its v1 half alone (no `meta version`, `file tree`,
/// `piece layers`) and its v2 half alone (no `files`, `pieces`), so that each
/// hash format is verified on its own. Prints the infohashes, then per
/// variant the pieces libtorrent found valid out of how many.
const LIBTORRENT_CHECK: &str = r#"
import sys, time, libtorrent as lt
path, save_path = sys.argv[1], sys.argv[2]
meta = lt.bdecode(open(path, "rb").read())
ti = lt.torrent_info(meta)
hashes = ti.info_hashes()
print("infohash-v1", hashes.v1 if hashes.has_v1() else "-")
print("infohash-v2", hashes.v2 if hashes.has_v2() else "-")
print("files", ti.num_files(), "pieces", ti.num_pieces(), "piece_length", ti.piece_length())

v1 = dict(meta); v1[b"info"] = dict(meta[b"info"])
del v1[b"info"][b"meta version"], v1[b"info"][b"file tree"], v1[b"piece layers"]
v2 = dict(meta); v2[b"info"] = dict(meta[b"info"])
del v2[b"info"][b"files"], v2[b"info"][b"pieces"]

session = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False})
for label, variant in [("hybrid", meta), ("v1", v1), ("v2", v2)]:
    info = lt.torrent_info(lt.bencode(variant))
    kind = info.info_hashes()
    assert kind.has_v1() == (label != "v2") and kind.has_v2() == (label != "v1"), label
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = save_path
    handle = session.add_torrent(params)
    deadline = time.time() + 60
    while True:
        status = handle.status()
        if status.state in (lt.torrent_status.downloading, lt.torrent_status.finished, lt.torrent_status.seeding):
            break
        assert time.time() < deadline, f"{label}: still {status.state} after 60 s"
        time.sleep(0.05)
    print("check-" + label, status.num_pieces, info.num_pieces(), "seeding" if status.is_seeding else "incomplete")
    session.remove_torrent(handle)
"#;

/// torrentfile's own recheck (v2 piece layers and roots for a hybrid): the
/// percentage of bytes that matched.
const TORRENTFILE_CHECK: &str = r#"
import contextlib, io, sys
from torrentfile.recheck import Checker
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    result = Checker(sys.argv[1], sys.argv[2]).results()
print(f"matched {result:.1f}")
"#;

struct Built {
    _dir: tempfile::TempDir,
    torrent: PathBuf,
    content: PathBuf,
    save_path: PathBuf,
    metainfo: HybridMetainfo,
}

/// Lays out range `[0, entries)` of a generated log and builds its hybrid torrent.
fn build_range(entries: u64, piece_length: u64) -> Built {
    let log = TestLog::new(entries + 300);
    let dir = tempfile::tempdir().unwrap();
    let save_path = dir.path().join("download");
    let range = TorrentRange { start: 0, end: entries };
    let name = range.torrent_name("hybrid");
    let readme = Profile::Spec.readme("https://log.helio.invalid/");
    let content = lay_out_range(log.path(), range, &readme, &save_path, &name);
    build_folder(dir, content, save_path, &name, piece_length)
}

fn build_folder(dir: tempfile::TempDir, content: PathBuf, save_path: PathBuf, name: &str, piece: u64) -> Built {
    let files = read_folder(&content, piece).unwrap();
    let metainfo = HybridSpec {
        name,
        piece_length: piece,
        files: &files,
        trackers: &[],
        webseeds: &[],
        created_by: "helio test",
        creation_date: 1_700_000_000,
    }
    .write()
    .unwrap();
    let torrent = dir.path().join(format!("{name}.torrent"));
    std::fs::write(&torrent, &metainfo.bytes).unwrap();
    Built { _dir: dir, torrent, content, save_path, metainfo }
}

/// Runs the libtorrent check; returns (label, valid pieces, pieces, state) per variant.
fn libtorrent_check(python: &Path, built: &Built) -> Vec<(String, u64, u64, String)> {
    let out =
        run_python(python, LIBTORRENT_CHECK, &[built.torrent.to_str().unwrap(), built.save_path.to_str().unwrap()]);
    let line = |key: &str| out.lines().find_map(|l| l.strip_prefix(&format!("{key} "))).unwrap_or("").to_string();
    assert_eq!(line("infohash-v1"), built.metainfo.infohash.to_string(), "{out}");
    assert_eq!(line("infohash-v2"), built.metainfo.infohash_v2.to_string(), "{out}");
    ["hybrid", "v1", "v2"]
        .iter()
        .map(|label| {
            let fields: Vec<String> = line(&format!("check-{label}")).split(' ').map(String::from).collect();
            assert_eq!(fields.len(), 3, "{out}");
            (label.to_string(), fields[0].parse().unwrap(), fields[1].parse().unwrap(), fields[2].clone())
        })
        .collect()
}

fn assert_all_valid(results: &[(String, u64, u64, String)]) {
    for (label, valid, pieces, state) in results {
        assert!(*pieces > 0, "{label}");
        assert_eq!((valid, state.as_str()), (pieces, "seeding"), "{label}: {results:?}");
    }
}

/// Flips one byte in the middle of `file`, which then fails exactly one piece.
fn corrupt(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(file, bytes).unwrap();
}

fn torrentfile_check(built: &Built, test: &str) -> Option<f64> {
    let python = python_with("torrentfile", test)?;
    let out =
        run_python(&python, TORRENTFILE_CHECK, &[built.torrent.to_str().unwrap(), built.save_path.to_str().unwrap()]);
    Some(out.trim().strip_prefix("matched ").unwrap().parse().unwrap())
}

#[test]
#[cfg_attr(not(has_py_libtorrent), ignore = "needs Python's libtorrent, not installed here (HELIO_E2E=1 requires it)")]
fn libtorrent_verifies_a_hybrid_range_as_v1_and_as_v2() {
    const TEST: &str = "hybrid::libtorrent_verifies_a_hybrid_range_as_v1_and_as_v2";
    let Some(python) = python_with("libtorrent", TEST) else { return };
    // Level-0 tiles, data tiles and README.md; the rule's piece length for
    // this range (16 KiB), and the default range's (64 KiB), where pieces
    // span several 16 KiB blocks and files end mid-piece.
    for piece in [hybrid_piece_length(2048), hybrid_piece_length(1 << 20)] {
        let built = build_range(2048, piece);
        let results = libtorrent_check(&python, &built);
        assert_all_valid(&results);
        let data_tile = built.content.join("tile/data/005");
        corrupt(&data_tile);
        for (label, valid, pieces, state) in libtorrent_check(&python, &built) {
            assert_eq!(
                (valid + 1, state.as_str()),
                (pieces, "incomplete"),
                "{label} with a corrupt tile, piece {piece}"
            );
        }
    }
}

#[test]
#[cfg_attr(not(has_py_libtorrent), ignore = "needs Python's libtorrent, not installed here (HELIO_E2E=1 requires it)")]
fn libtorrent_verifies_a_range_with_level1_tiles() {
    const TEST: &str = "hybrid::libtorrent_verifies_a_range_with_level1_tiles";
    let Some(python) = python_with("libtorrent", TEST) else { return };
    let entries = 65536;
    let built = build_range(entries, hybrid_piece_length(1 << 20));
    assert!(built.content.join("tile/1/000").is_file());
    let results = libtorrent_check(&python, &built);
    assert_all_valid(&results);
}

#[test]
#[cfg_attr(
    not(all(has_py_libtorrent, has_py_torrentfile)),
    ignore = "needs Python's libtorrent and Python's torrentfile, not installed here (HELIO_E2E=1 requires it)"
)]
fn edge_sizes_verify_in_libtorrent_and_torrentfile() {
    const TEST: &str = "hybrid::edge_sizes_verify_in_libtorrent_and_torrentfile";
    let Some(python) = python_with("libtorrent", TEST) else { return };
    let piece = 65536usize;
    let dir = tempfile::tempdir().unwrap();
    let save_path = dir.path().join("download");
    let content = save_path.join("edges");
    // One byte, a block, a block and a byte, exactly a piece, a piece and a
    // byte, several pieces and a partial one, and a file that ends the torrent
    // on a piece boundary.
    let sizes = [1usize, 16384, 16385, piece, piece + 1, 3 * piece + 20_000, 2 * piece];
    for (i, size) in sizes.iter().enumerate() {
        let path = content.join(format!("f/{i:02}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..*size).map(|n| (n * 7 + i) as u8).collect();
        std::fs::write(path, bytes).unwrap();
    }
    std::fs::write(content.join("README.md"), b"edges\n").unwrap();
    let built = build_folder(dir, content, save_path, "edges", piece as u64);
    assert_all_valid(&libtorrent_check(&python, &built));
    if let Some(matched) = torrentfile_check(&built, TEST) {
        assert_eq!(matched, 100.0);
        corrupt(&built.content.join("f/05"));
        assert!(torrentfile_check(&built, TEST).unwrap() < 100.0);
    }
}

#[test]
#[cfg_attr(
    not(has_py_torrentfile),
    ignore = "needs Python's torrentfile, not installed here (HELIO_E2E=1 requires it)"
)]
fn torrentfile_verifies_a_hybrid_range() {
    const TEST: &str = "hybrid::torrentfile_verifies_a_hybrid_range";
    let built = build_range(2048, hybrid_piece_length(1 << 20));
    let Some(matched) = torrentfile_check(&built, TEST) else { return };
    assert_eq!(matched, 100.0);
    corrupt(&built.content.join("tile/data/002"));
    let matched = torrentfile_check(&built, TEST).unwrap();
    assert!(matched < 100.0, "{matched}");
}

#[test]
fn helio_build_writes_hybrids_that_match_the_folder_and_list_both_infohashes() {
    let log = TestLog::new(3 * 1024 + 77);
    let server = log.serve();
    let site = crate::support::Site::new();
    site.config_for("test", &server.url(), &log.log, "format: hybrid\n");
    let run = site.build();
    run.ok();
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.out().join("test/torrents.json")).unwrap()).unwrap();
    for k in 0..3u64 {
        let range = TorrentRange { start: k * 1024, end: (k + 1) * 1024 };
        let written = site.torrent("test", range.start, range.end);
        let summary = helio::torrent::metainfo::TorrentSummary::read(&written).unwrap();
        // The same range laid out as a client saves it, hashed by the folder reader.
        let dir = tempfile::tempdir().unwrap();
        let readme = format!("LOG_URL: {}\n", server.url().trim_end_matches('/'));
        let name = range.torrent_name("test");
        let content = lay_out_range(log.path(), range, readme.as_bytes(), dir.path(), &name);
        let piece = hybrid_piece_length(1024);
        let files = read_folder(&content, piece).unwrap();
        let expected = HybridSpec {
            name: &name,
            piece_length: piece,
            files: &files,
            trackers: &summary.trackers,
            webseeds: &summary.webseeds,
            created_by: concat!("helio ", env!("CARGO_PKG_VERSION")),
            creation_date: summary.creation_date.unwrap(),
        }
        .write()
        .unwrap();
        assert!(written == expected.bytes, "range {k}: the pipeline's hybrid differs from the folder's");
        let listed = &json["torrents"][k as usize];
        assert_eq!(listed["infohash"], expected.infohash.to_string());
        assert_eq!(listed["infohash_v2"], expected.infohash_v2.to_string());
        let magnet = listed["magnet"].as_str().unwrap();
        assert!(magnet.contains(&format!("xt=urn:btmh:1220{}", expected.infohash_v2)), "{magnet}");
        assert_eq!(listed["piece_length"], piece);
    }
    let page = std::fs::read_to_string(site.out().join("test/index.html")).unwrap();
    assert!(page.contains(&json["torrents"][0]["infohash_v2"].as_str().unwrap().to_string()));
    // Rebuilt from the files alone, the state keeps the v2 infohashes.
    std::fs::remove_file(site.out().join("test/torrents.json")).unwrap();
    site.build().ok();
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.out().join("test/torrents.json")).unwrap()).unwrap();
    assert_eq!(again["torrents"][2]["infohash_v2"], json["torrents"][2]["infohash_v2"]);
}

#[test]
fn hybrid_with_the_heliotorrent_profile_is_a_config_error() {
    let log = TestLog::new(1024);
    let site = crate::support::Site::new();
    site.config_for("test", log.path().to_str().unwrap(), &log.log, "format: hybrid\nprofile: heliotorrent\n");
    let run = site.build();
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("hybrid torrents cannot use the heliotorrent profile"), "{}", run.stderr);
}
