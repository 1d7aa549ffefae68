//! helio publishes Static Certificate Transparency logs over BitTorrent.
//!
//! `helio build` turns a log's verified tiles into BitTorrent v1 torrents,
//! feeds and pages; `helio serve` is the WebSeed that hands clients the bytes.

#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod fixture;

pub mod config;
pub mod log;
pub mod torrent;

/// Where the shared real-world test data lives, if it is there. Tests that need
/// it say so loudly when it is missing, and fail when `HELIO_E2E=1`.
#[cfg(test)]
pub(crate) fn realdata_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(std::env::var_os("HELIO_E2E").is_none_or(|v| v != "1"), "../shared/realdata is missing and HELIO_E2E=1");
    eprintln!("SKIPPED: ../shared/realdata not found; real-data checks did not run");
    None
}
