//! The demo that README's first command runs: a committed log that the
//! project's own generator makes, built offline.

use std::path::Path;

use helio::fixture::generate::{LogSpec, write_log};

use crate::support::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn decompressed(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out).unwrap();
        out
    } else {
        raw
    }
}

#[test]
fn the_committed_demo_log_is_what_the_generator_makes() {
    let committed = repo().join("fixtures/demo-log");
    let fresh = tempfile::tempdir().unwrap();
    let spec = LogSpec { origin: "demo.helio.invalid".into(), seed: 1, size: 4700, gzip_data_tiles: true };
    let log = write_log(fresh.path(), &spec).unwrap();
    let (a, b) = (snapshot(&committed), snapshot(fresh.path()));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "same files");
    for path in a.keys() {
        // Compare what the bytes mean, not how a zlib version compressed them.
        assert_eq!(decompressed(&committed.join(path)), decompressed(&fresh.path().join(path)), "{}", path.display());
    }
    let list = std::fs::read_to_string(repo().join("fixtures/demo-log-list.json")).unwrap();
    assert!(list.contains(&format!("\"key\": \"{}\"", log.key)), "the demo's log list carries the demo log's key");
}

#[test]
fn the_readme_demo_builds_offline() {
    let out = tempfile::tempdir().unwrap();
    let config = repo().join("fixtures/demo.yaml");
    let run = helio(&["build", "-c", config.to_str().unwrap(), out.path().to_str().unwrap()]);
    run.ok();
    assert_eq!(run.stdout.lines().count(), 4, "{}", run.stdout);
    for k in 0..4u64 {
        assert!(out.path().join(format!("demo/L01-{}-{}.torrent", k * 1024, (k + 1) * 1024)).exists());
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains("cargo run --release -- build -c fixtures/demo.yaml out/"), "README shows this command");
}
