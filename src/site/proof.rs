//! Proof tiles on the site: `<log>/tile/<L>/<N>` and `<log>/tile/<L>/<N>.p/<W>`
//! beside `<log>/checkpoint`, at their static-ct-api paths, so that anyone
//! holding a range's torrent can prove it against the published checkpoint
//! (`helio verify`) without asking the log. [`crate::torrent::proof`] says which
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

use thiserror::Error;

use super::log_folder::{LogFolder, LogFolderError};
use crate::log::checkpoint::Checkpoint;
use crate::log::source::LogSource;
use crate::log::tile::TileId;
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::store::StoreError;
use crate::torrent::proof::{proof_tiles, tile_bytes};
use crate::torrent::range::TorrentRange;

pub use crate::layout::TILE_DIR;

/// Why the proof tiles could not be published.
#[derive(Debug, Error)]
pub enum ProofError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Folder(#[from] LogFolderError),
}

impl From<StoreError> for ProofError {
    fn from(error: StoreError) -> Self {
        ProofError::Folder(error.into())
    }
}

/// Writes into the log's `folder` the proof tiles of `ranges` against
/// `checkpoint`, which is about to be published there in place of
/// `replaced`, and removes right-edge partials of neither. Tiles already
/// there (one listing of the folder's `tile/`) are not fetched again; when
/// all are, nothing is read from the log and nothing is written. The tiles
/// come from `tree` when it is `checkpoint`'s tree, otherwise from a tree
/// opened on `source`.
pub fn publish(
    folder: &LogFolder,
    checkpoint: &Checkpoint,
    replaced: Option<&Checkpoint>,
    ranges: &[TorrentRange],
    tree: Option<&VerifiedTree>,
    source: &LogSource,
) -> Result<(), ProofError> {
    let tiles = proof_tiles(checkpoint.size, ranges);
    let present: BTreeSet<TileId> =
        folder.list_tree(&format!("{TILE_DIR}/"))?.iter().filter_map(|key| TileId::parse(key)).collect();
    let missing: Vec<TileId> = tiles.iter().copied().filter(|tile| !present.contains(tile)).collect();
    let mut keep: BTreeSet<TileId> = tiles.into_iter().filter(|tile| !tile.is_full()).collect();
    if let Some(old) = replaced {
        keep.extend(right_edge(old.size));
    }
    let stale: Vec<TileId> = present.iter().copied().filter(|tile| !tile.is_full() && !keep.contains(tile)).collect();

    if !missing.is_empty() {
        let opened;
        let tree = match tree {
            Some(tree) if tree.size() == checkpoint.size => tree,
            _ => {
                opened = VerifiedTree::open(source.clone(), checkpoint)?;
                &opened
            }
        };
        for tile in &missing {
            folder.write(&tile.path(), &tile_bytes(tree, *tile)?)?;
        }
        tracing::debug!(
            "{}: wrote {} proof tile(s) for tree size {}",
            folder.describe(TILE_DIR),
            missing.len(),
            checkpoint.size
        );
    }
    for tile in stale {
        // Only a leftover: warned about, not fatal.
        if let Err(error) = folder.delete(&tile.path()) {
            if matches!(error, LogFolderError::Changed { .. }) || error.is_held() {
                return Err(error.into());
            }
            tracing::warn!("cannot remove the stale proof tile {}: {error}", folder.describe(&tile.path()));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::merkle::{Hash, leaf_hash, tree_hash};
    use crate::log::source::{Location, RetryPolicy, http_agent};
    use crate::site::log_folder::Locks;
    use crate::site::state::{CHECKPOINT, Seen};
    use crate::store::{Store, Target};
    use std::fs;
    use std::path::{Path, PathBuf};

    /// A folder site with the log `demo`.
    struct Site {
        root: tempfile::TempDir,
        store: Store,
    }

    impl Site {
        fn new() -> Site {
            let root = tempfile::tempdir().unwrap();
            let store = Store::open(&Target::Dir(root.path().to_path_buf())).unwrap();
            Site { root, store }
        }

        /// The log's folder.
        fn path(&self) -> PathBuf {
            self.root.path().join("demo")
        }

        /// Publishes the tiles as a build does, replacing the checkpoint
        /// the folder holds.
        fn publish(&self, checkpoint: &Checkpoint, ranges: &[TorrentRange], log: &Path) -> Result<(), ProofError> {
            let locks = Locks::new(&self.store);
            let folder = LogFolder::new(&locks, "demo", Seen::read(&self.store, "demo").unwrap());
            let replaced = fs::read(self.path().join(CHECKPOINT)).ok().map(|text| Checkpoint::parse(&text).unwrap());
            publish(&folder, checkpoint, replaced.as_ref(), ranges, None, &source(log))
        }
    }

    /// A hash-only log (every full tile and each level's right edge) of
    /// `size` leaves, and its checkpoint.
    fn write_log(dir: &Path, size: u64) -> Checkpoint {
        let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        crate::log::verify::write_hash_tiles(dir, &leaves);
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
    fn build(site: &Site, log: &Path, checkpoint: &Checkpoint, ranges: &[TorrentRange]) {
        site.publish(checkpoint, ranges, log).unwrap();
        fs::write(site.path().join(CHECKPOINT), &checkpoint.text).unwrap();
    }

    #[test]
    fn tiles_are_written_before_the_checkpoint_and_partials_outlive_one_replacement() {
        let log = tempfile::tempdir().unwrap();
        let site = Site::new();
        let ranges = |n: u64| -> Vec<TorrentRange> {
            (0..n).map(|k| TorrentRange { start: k * 1024, end: (k + 1) * 1024 }).collect()
        };

        let first = write_log(log.path(), 2 * 1024 + 10);
        assert!(!site.path().join(TILE_DIR).exists());
        site.publish(&first, &[], log.path()).unwrap();
        assert!(!site.path().join(TILE_DIR).exists(), "no range, no proof");
        build(&site, log.path(), &first, &ranges(2));
        assert_eq!(tile_files(&site.path()), ["tile/0/008.p/10", "tile/1/000.p/8"]);
        let content = fs::read(site.path().join("tile/1/000.p/8")).unwrap();
        assert_eq!(content, fs::read(log.path().join("tile/1/000.p/8")).unwrap());

        // Nothing new: nothing is read from the log (it is gone).
        let gone = tempfile::tempdir().unwrap();
        site.publish(&first, &ranges(2), gone.path()).unwrap();

        // The tree grows: the new edge is written, the old one stays one round.
        let second = write_log(log.path(), 3 * 1024 + 5);
        build(&site, log.path(), &second, &ranges(3));
        assert_eq!(
            tile_files(&site.path()),
            ["tile/0/008.p/10", "tile/0/012.p/5", "tile/1/000.p/12", "tile/1/000.p/8"]
        );
        let third = write_log(log.path(), 3 * 1024 + 300);
        build(&site, log.path(), &third, &ranges(3));
        assert_eq!(
            tile_files(&site.path()),
            ["tile/0/012.p/5", "tile/0/013.p/44", "tile/1/000.p/12", "tile/1/000.p/13"]
        );
        assert!(!site.path().join("tile/0/008.p").exists(), "emptied .p folders go too");
    }

    #[test]
    fn a_site_without_proof_gets_it_though_the_checkpoint_did_not_change() {
        let log = tempfile::tempdir().unwrap();
        let site = Site::new();
        let checkpoint = write_log(log.path(), 70_000);
        fs::create_dir_all(site.path()).unwrap();
        fs::write(site.path().join(CHECKPOINT), &checkpoint.text).unwrap();
        let ranges = [TorrentRange { start: 0, end: 1024 }, TorrentRange { start: 65536, end: 65536 + 1024 }];
        site.publish(&checkpoint, &ranges, log.path()).unwrap();
        assert_eq!(tile_files(&site.path()), ["tile/0/273.p/112", "tile/1/000", "tile/1/001.p/17", "tile/2/000.p/1"]);
        assert_eq!(fs::read(site.path().join("tile/1/000")).unwrap(), fs::read(log.path().join("tile/1/000")).unwrap());
    }

    #[test]
    fn a_tile_that_does_not_verify_is_not_published() {
        let log = tempfile::tempdir().unwrap();
        let site = Site::new();
        let checkpoint = write_log(log.path(), 70_000);
        let mut altered = fs::read(log.path().join("tile/1/000")).unwrap();
        altered[100] ^= 1;
        fs::write(log.path().join("tile/1/000"), altered).unwrap();
        let ranges = [TorrentRange { start: 0, end: 1024 }];
        let error = site.publish(&checkpoint, &ranges, log.path()).unwrap_err().to_string();
        assert!(error.contains("tile/1/000: its tree hash is not entry 0 of tile/2/000.p/1"), "{error}");
        assert!(!site.path().join("tile/1/000").exists());
    }
}
