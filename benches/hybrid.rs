//! `cargo bench --bench hybrid`: the hashing cost of a hybrid v1 + v2 range
//! next to a v1 range, on the same bytes, and the size of the `.torrent`.
//!
//! A generated log's range is read into memory (data tiles uncompressed, as
//! in the torrent), then hashed: by the v1 `PieceHasher` as the pipeline does
//! (streamed, candidate piece lengths, blocks hashed on the rayon pool), and by
//! `FileHashes::compute` per file as the hybrid pipeline will, one file after
//! another and with `par_iter`. The best of three runs is shown, since the
//! machine may be shared. Then, for piece lengths around the hybrid rule's,
//! the padding hashed and the size of the written `.torrent`.
//!
//! Environment: `HELIO_BENCH_ENTRIES` (default 1,048,576); `RAYON_NUM_THREADS=1`
//! for single-threaded numbers (`PieceHasher` always hashes on the pool). The
//! log is generated once into `target/bench/` and reused.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use helio::fixture::generate::{LogSpec, write_log};
use helio::torrent::file_hashes::FileHashes;
use helio::torrent::hybrid::{HybridFile, HybridSpec};
use helio::torrent::metainfo::{FileEntry, MetainfoSpec};
use helio::torrent::piece_length::{hybrid_piece_length, piece_length};
use helio::torrent::pieces::PieceHasher;
use helio::torrent::profile::Profile;
use helio::torrent::range::TorrentRange;
use rayon::prelude::*;
use sha1::{Digest, Sha1};
use sha2::Sha256;

fn main() {
    let entries: u64 = std::env::var("HELIO_BENCH_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 20);
    let files = range_files(entries);
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let mb = total as f64 / 1e6;
    let v1_piece = piece_length(total);
    let hybrid_piece = hybrid_piece_length(entries);
    let cores = rayon::current_num_threads();
    println!(
        "hybrid hashing benchmark: one range of {entries} entries, {} files, {mb:.0} MB; v1 pieces {} KiB, hybrid pieces {} KiB",
        files.len(),
        v1_piece >> 10,
        hybrid_piece >> 10
    );

    let v1 = |candidates: Vec<u64>| {
        let mut hasher = PieceHasher::new(candidates);
        for (_, bytes) in &files {
            hasher.push(bytes.clone());
        }
        hasher.finish(v1_piece).unwrap()
    };
    let hybrid_serial = |piece: u64| files.iter().map(|(_, b)| FileHashes::compute(b, piece)).collect::<Vec<_>>();
    let hybrid_parallel = |piece: u64| files.par_iter().map(|(_, b)| FileHashes::compute(b, piece)).collect::<Vec<_>>();

    let row = |name: &str, t: Time, note: String| {
        println!(
            "  {name:<40} {:>6.2} s CPU {:>6.0} MB/s CPU {:>6.2} s wall   {note}",
            t.cpu.as_secs_f64(),
            mb / t.cpu.as_secs_f64(),
            t.wall.as_secs_f64()
        )
    };
    println!();
    println!("  rayon pool of {cores} threads");
    let sha1 = best(|| Sha1::digest_all(&files));
    row("SHA-1 of each file, one thread", sha1, String::new());
    let sha256 = best(|| Sha256::digest_all(&files));
    row("SHA-256 of each file, one thread", sha256, String::new());
    let v1_one = best(|| v1(vec![v1_piece]));
    row("v1 PieceHasher, 1 candidate", v1_one, String::new());
    let v1_two = best(|| v1(vec![v1_piece / 2, v1_piece]));
    row("v1 PieceHasher, 2 candidates", v1_two, String::new());
    let hybrid_serial_time = best(|| hybrid_serial(hybrid_piece));
    row(
        "hybrid FileHashes::compute, one thread",
        hybrid_serial_time,
        format!("{:.2} × SHA-1 + SHA-256", ratio(hybrid_serial_time, sha1 + sha256)),
    );
    let hybrid_pool = best(|| hybrid_parallel(hybrid_piece));
    row(
        "hybrid FileHashes::compute, par_iter",
        hybrid_pool,
        format!("{:.2} × v1 PieceHasher (1 candidate)", ratio(hybrid_pool, v1_one)),
    );

    // What else a range costs either way: inflating the gzipped data tiles
    // (estimated from a sample) and the Merkle leaf hashes (at most SHA-256
    // of the data tiles).
    let data: Vec<&Bytes> = files.iter().filter(|(p, _)| p.starts_with("tile/data/")).map(|(_, b)| b).collect();
    let data_bytes: u64 = data.iter().map(|b| b.len() as u64).sum();
    let sample: Vec<Vec<u8>> = data.iter().take(64).map(|b| gzip(b)).collect();
    let sample_bytes: u64 = data.iter().take(64).map(|b| b.len() as u64).sum();
    let inflate_sample = best(|| sample.iter().map(|gz| gunzip(gz)).sum::<usize>());
    let scale = data_bytes as f64 / sample_bytes as f64;
    let inflate = Time { wall: inflate_sample.wall.mul_f64(scale), cpu: inflate_sample.cpu.mul_f64(scale) };
    let leaves = best(|| data.iter().map(|b| Sha256::digest(b).len()).sum::<usize>());
    row("inflate data tiles (est. from 64)", inflate, String::new());
    row("leaf hashes (≤ SHA-256 of data tiles)", leaves, String::new());
    let v1_build = inflate + leaves + v1_one;
    let v1_build_two = inflate + leaves + v1_two;
    let hybrid_build = inflate + leaves + hybrid_serial_time;
    println!(
        "  CPU per range: v1 {:.2}–{:.2} s (1–2 candidates), hybrid {:.2} s: {:.2}–{:.2} × v1",
        v1_build.cpu.as_secs_f64(),
        v1_build_two.cpu.as_secs_f64(),
        hybrid_build.cpu.as_secs_f64(),
        ratio(hybrid_build, v1_build_two),
        ratio(hybrid_build, v1_build),
    );

    println!();
    println!("  per hybrid piece length: zeros SHA-1 hashes for pad files, .torrent size, CPU time of FileHashes");
    let v1_torrent = v1_torrent_size(&files, v1_piece, &v1(vec![v1_piece]));
    println!("  v1, {:>5} KiB pieces:    .torrent {:>6.2} MB", v1_piece >> 10, v1_torrent as f64 / 1e6);
    for piece in [16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 2 << 20] {
        let hashed: Vec<HybridFile> = files
            .par_iter()
            .map(|(path, b)| HybridFile { path: path.clone(), hashes: FileHashes::compute(b, piece) })
            .collect();
        let padding: u64 = hashed.iter().map(|f| f.hashes.pad_length()).sum();
        let written = HybridSpec {
            name: "bench-L01-0-1048576",
            piece_length: piece,
            files: &hashed,
            trackers: &["udp://tracker.example.org:1337/announce".into()],
            webseeds: &["https://seed.example.org/webseed/bench/".into()],
            created_by: "helio bench",
            creation_date: 1_700_000_000,
        }
        .write()
        .unwrap();
        let layers: usize = hashed.iter().map(|f| f.hashes.piece_layer().len() * 32).sum();
        let time = once(|| hybrid_serial(piece));
        println!(
            "  hybrid, {:>5} KiB pieces: padding {:>6.0} MB ({:>5.1} %), .torrent {:>6.2} MB (piece layers {:.2} MB), {:.2} s{}",
            piece >> 10,
            padding as f64 / 1e6,
            100.0 * padding as f64 / total as f64,
            written.bytes.len() as f64 / 1e6,
            layers as f64 / 1e6,
            time.cpu.as_secs_f64(),
            if piece == hybrid_piece { "   ← the rule" } else { "" }
        );
    }
}

/// The range's files in content order, as the torrent has them.
fn range_files(entries: u64) -> Vec<(String, Bytes)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench/hybrid-log-{entries}"));
    if !dir.join("checkpoint").exists() {
        eprintln!("generating a {entries}-entry log in {} (once; reused by later runs)…", dir.display());
    }
    let spec = LogSpec { origin: "bench.helio.invalid".into(), seed: 42, size: entries, gzip_data_tiles: false };
    let log = write_log(&dir, &spec).unwrap();
    let range = TorrentRange { start: 0, end: entries };
    range
        .content()
        .iter()
        .map(|file| {
            let path = file.path();
            let bytes = if path == "README.md" {
                Profile::Spec.readme("https://bench.helio.invalid/")
            } else {
                std::fs::read(log.dir.join(&path)).unwrap()
            };
            (path, Bytes::from(bytes))
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> usize {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap()
}

fn v1_torrent_size(files: &[(String, Bytes)], piece: u64, pieces: &[[u8; 20]]) -> usize {
    let entries: Vec<FileEntry> =
        files.iter().map(|(path, b)| FileEntry { path: path.clone(), length: b.len() as u64 }).collect();
    MetainfoSpec {
        name: "bench-L01-0-1048576",
        files: &entries,
        piece_length: piece,
        pieces,
        private: None,
        trackers: &["udp://tracker.example.org:1337/announce".into()],
        webseeds: &["https://seed.example.org/webseed/bench/".into()],
        created_by: "helio bench",
        creation_date: 1_700_000_000,
    }
    .write()
    .bytes
    .len()
}

trait DigestAll {
    fn digest_all(files: &[(String, Bytes)]) -> usize;
}

impl<D: Digest> DigestAll for D {
    /// One digest per file, as a floor for any hashing of the same bytes.
    fn digest_all(files: &[(String, Bytes)]) -> usize {
        files.iter().map(|(_, b)| D::digest(b).len()).sum()
    }
}

/// Wall time and CPU time (all threads of the process) of a run.
#[derive(Clone, Copy)]
struct Time {
    wall: Duration,
    cpu: Duration,
}

impl std::ops::Add for Time {
    type Output = Time;
    fn add(self, other: Time) -> Time {
        Time { wall: self.wall + other.wall, cpu: self.cpu + other.cpu }
    }
}

fn once<T>(run: impl FnOnce() -> T) -> Time {
    let (started, cpu) = (Instant::now(), cpu_time());
    std::hint::black_box(run());
    Time { wall: started.elapsed(), cpu: cpu_time() - cpu }
}

/// The best of three runs, by CPU time: other work on a shared machine
/// stretches the wall time but not the CPU time a run needs.
fn best<T>(mut run: impl FnMut() -> T) -> Time {
    (0..3).map(|_| once(&mut run)).min_by_key(|t| t.cpu).unwrap()
}

/// The process's user + system time, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn ratio(a: Time, b: Time) -> f64 {
    a.cpu.as_secs_f64() / b.cpu.as_secs_f64()
}
