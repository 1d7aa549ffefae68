//! Proof tiles on the site: `<log>/tile/<L>/<N>` and `<log>/tile/<L>/<N>.p/<W>`
//! beside `<log>/checkpoint`, at their static-ct-api paths, so that anyone
//! holding a range's torrent can prove it against the published checkpoint
//! (`helio verify`) without asking the log. [`crate::log::proof`] says which
//! tiles; this writes them.
//!
//! Order matters to a reader who fetches the checkpoint and then its tiles:
//! [`publish`] runs before the checkpoint is replaced and writes each tile
//! atomically, so the new checkpoint's tiles are there before it is. Full
//! tiles never change and are written once. Right-edge partials belong to one
//! tree size: those of the checkpoint being replaced stay until the next
//! checkpoint replaces this one, so a reader who fetched the old checkpoint a
//! moment ago still finds its tiles; older ones are removed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::atomic::{WriteError, remove_stale_temporaries, write_atomic};
use super::state::CHECKPOINT;
use crate::log::checkpoint::Checkpoint;
use crate::log::proof::{proof_tiles, tile_bytes};
use crate::log::source::LogSource;
use crate::log::tile::TileId;
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::torrent::range::TorrentRange;

/// The folder below a log's output folder that holds its proof tiles.
pub const TILE_DIR: &str = "tile";

/// Why the proof tiles could not be published.
#[derive(Debug, Error)]
pub enum ProofError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Writes into the log folder `dir` the proof tiles of `ranges` against
/// `checkpoint`, which is about to be published there, and removes right-edge
/// partials of neither it nor the checkpoint it replaces. Tiles already there
/// are not fetched again; when all are, nothing is read from the log. The
/// tiles come from `tree` when it is `checkpoint`'s tree, otherwise from a
/// tree opened on `source`.
pub fn publish(
    dir: &Path,
    checkpoint: &Checkpoint,
    ranges: &[TorrentRange],
    tree: Option<&VerifiedTree>,
    source: &LogSource,
) -> Result<(), ProofError> {
    let tiles = proof_tiles(checkpoint.size, ranges);
    let missing: Vec<TileId> = tiles.iter().copied().filter(|tile| !dir.join(tile.path()).is_file()).collect();
    let replaced = fs::read(dir.join(CHECKPOINT)).ok().and_then(|text| Checkpoint::parse(&text).ok());
    if missing.is_empty() && replaced.as_ref().is_none_or(|old| old.size == checkpoint.size) {
        return Ok(());
    }
    if !missing.is_empty() {
        let opened;
        let tree = match tree {
            Some(tree) if tree.size() == checkpoint.size => tree,
            _ => {
                opened = VerifiedTree::open(source.clone(), checkpoint)?;
                &opened
            }
        };
        let mut folders = BTreeSet::new();
        for tile in &missing {
            let path = dir.join(tile.path());
            if let Some(folder) = path.parent()
                && folders.insert(folder.to_path_buf())
            {
                // We hold the build lock: a temporary file here is a crashed build's.
                remove_stale_temporaries(folder);
            }
            write_atomic(&path, &tile_bytes(tree, *tile)?)?;
        }
        tracing::debug!("{}: wrote {} proof tile(s) for tree size {}", dir.display(), missing.len(), checkpoint.size);
    }
    let mut keep: BTreeSet<TileId> = tiles.into_iter().filter(|tile| !tile.is_full()).collect();
    if let Some(old) = &replaced {
        keep.extend(right_edge(old.size));
    }
    remove_partials(&dir.join(TILE_DIR), dir, &keep);
    Ok(())
}

/// The right-edge partial tiles of every level of a tree of `size` entries.
fn right_edge(size: u64) -> Vec<TileId> {
    let mut tiles = Vec::new();
    let mut level = 0u8;
    while let Some(count) = size.checked_shr(8 * u32::from(level)).filter(|&count| count > 0) {
        let width = count % 256;
        if width > 0 {
            tiles.push(TileId::hash(level, count / 256).with_width(width as u16));
        }
        level += 1;
    }
    tiles
}

/// Removes the partial tiles under `folder` (relative to the log folder
/// `dir`) that are not in `keep`, and the `.p` folders they leave empty. A
/// file that cannot be removed is only a leftover: warned about, not fatal.
fn remove_partials(folder: &Path, dir: &Path, keep: &BTreeSet<TileId>) {
    let Ok(entries) = fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            remove_partials(&path, dir, keep);
            if path.extension().is_some_and(|e| e == "p") {
                // Fails, harmlessly, while another size's partial is inside.
                let _ = fs::remove_dir(&path);
            }
            continue;
        }
        let stale = tile_of(&path, dir).is_some_and(|tile| !tile.is_full() && !keep.contains(&tile));
        if stale && let Err(error) = fs::remove_file(&path) {
            tracing::warn!("cannot remove the stale proof tile {}: {error}", path.display());
        }
    }
}

fn tile_of(path: &Path, dir: &Path) -> Option<TileId> {
    let relative: PathBuf = path.strip_prefix(dir).ok()?.to_path_buf();
    TileId::parse(relative.to_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::merkle::{Hash, leaf_hash, perfect_root, tree_hash};
    use crate::log::source::{Location, RetryPolicy, http_agent};

    /// A hash-only log (every full tile and each level's right edge) of
    /// `size` leaves, and its checkpoint.
    fn write_log(dir: &Path, size: u64) -> Checkpoint {
        let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut level = leaves.clone();
        let mut l = 0u8;
        while !level.is_empty() {
            for (i, chunk) in level.chunks(256).enumerate() {
                let mut tile = TileId::hash(l, i as u64);
                if chunk.len() < 256 {
                    tile = tile.with_width(chunk.len() as u16);
                }
                let path = dir.join(tile.path());
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, chunk.concat()).unwrap();
            }
            level = level.chunks_exact(256).map(perfect_root).collect();
            l += 1;
        }
        use base64::Engine;
        let root = base64::engine::general_purpose::STANDARD.encode(tree_hash(&leaves));
        Checkpoint::parse(format!("o\n{size}\n{root}\n\n— x AAAAAAA=\n").as_bytes()).unwrap()
    }

    fn tile_files(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.join(TILE_DIR)];
        while let Some(folder) = stack.pop() {
            for entry in fs::read_dir(&folder).into_iter().flatten().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    stack.push(entry.path());
                } else {
                    found.push(entry.path().strip_prefix(dir).unwrap().to_str().unwrap().to_string());
                }
            }
        }
        found.sort();
        found
    }

    fn source(dir: &Path) -> LogSource {
        LogSource::new(&Location::Dir(dir.into()), &http_agent(None, 1), RetryPolicy::default())
    }

    /// Publishes as a build does: proof tiles, then the checkpoint.
    fn build(site: &Path, log: &Path, checkpoint: &Checkpoint, ranges: &[TorrentRange]) {
        publish(site, checkpoint, ranges, None, &source(log)).unwrap();
        fs::write(site.join(CHECKPOINT), &checkpoint.text).unwrap();
    }

    #[test]
    fn tiles_are_written_before_the_checkpoint_and_partials_outlive_one_replacement() {
        let log = tempfile::tempdir().unwrap();
        let site = tempfile::tempdir().unwrap();
        let ranges = |n: u64| -> Vec<TorrentRange> {
            (0..n).map(|k| TorrentRange { start: k * 1024, end: (k + 1) * 1024 }).collect()
        };

        let first = write_log(log.path(), 2 * 1024 + 10);
        assert!(!site.path().join(TILE_DIR).exists());
        publish(site.path(), &first, &[], None, &source(log.path())).unwrap();
        assert!(!site.path().join(TILE_DIR).exists(), "no range, no proof");
        build(site.path(), log.path(), &first, &ranges(2));
        assert_eq!(tile_files(site.path()), ["tile/0/008.p/10", "tile/1/000.p/8"]);
        let content = fs::read(site.path().join("tile/1/000.p/8")).unwrap();
        assert_eq!(content, fs::read(log.path().join("tile/1/000.p/8")).unwrap());

        // Nothing new: nothing is read from the log (it is gone).
        let gone = tempfile::tempdir().unwrap();
        publish(site.path(), &first, &ranges(2), None, &source(gone.path())).unwrap();

        // The tree grows: the new edge is written, the old one stays one round.
        let second = write_log(log.path(), 3 * 1024 + 5);
        build(site.path(), log.path(), &second, &ranges(3));
        assert_eq!(tile_files(site.path()), ["tile/0/008.p/10", "tile/0/012.p/5", "tile/1/000.p/12", "tile/1/000.p/8"]);
        let third = write_log(log.path(), 3 * 1024 + 300);
        build(site.path(), log.path(), &third, &ranges(3));
        assert_eq!(
            tile_files(site.path()),
            ["tile/0/012.p/5", "tile/0/013.p/44", "tile/1/000.p/12", "tile/1/000.p/13"]
        );
        assert!(!site.path().join("tile/0/008.p").exists(), "emptied .p folders go too");
    }

    #[test]
    fn a_site_without_proof_gets_it_though_the_checkpoint_did_not_change() {
        let log = tempfile::tempdir().unwrap();
        let site = tempfile::tempdir().unwrap();
        let checkpoint = write_log(log.path(), 70_000);
        fs::write(site.path().join(CHECKPOINT), &checkpoint.text).unwrap();
        let ranges = [TorrentRange { start: 0, end: 1024 }, TorrentRange { start: 65536, end: 65536 + 1024 }];
        publish(site.path(), &checkpoint, &ranges, None, &source(log.path())).unwrap();
        assert_eq!(tile_files(site.path()), ["tile/0/273.p/112", "tile/1/000", "tile/1/001.p/17", "tile/2/000.p/1"]);
        assert_eq!(fs::read(site.path().join("tile/1/000")).unwrap(), fs::read(log.path().join("tile/1/000")).unwrap());
    }

    #[test]
    fn a_tile_that_does_not_verify_is_not_published() {
        let log = tempfile::tempdir().unwrap();
        let site = tempfile::tempdir().unwrap();
        let checkpoint = write_log(log.path(), 70_000);
        let mut altered = fs::read(log.path().join("tile/1/000")).unwrap();
        altered[100] ^= 1;
        fs::write(log.path().join("tile/1/000"), altered).unwrap();
        let ranges = [TorrentRange { start: 0, end: 1024 }];
        let error = publish(site.path(), &checkpoint, &ranges, None, &source(log.path())).unwrap_err().to_string();
        assert!(error.contains("tile/1/000: its tree hash is not entry 0 of tile/2/000.p/1"), "{error}");
        assert!(!site.path().join("tile/1/000").exists());
    }
}
