//! `helio verify PATH… --site URL_OR_DIR [--key KEY] [--origin ORIGIN]`:
//! proves downloaded ranges against the newest checkpoint on the publisher's
//! site, without asking the log.
//!
//! The checkpoint comes from the site (its signature checked with `--key`),
//! and so do the proof tiles beside it ([`crate::site::proof`]): the right
//! edge of every level, which must hash to the checkpoint's root, and the
//! tiles above each range that its torrent does not carry. From there each
//! range is checked downwards, reading each of its files once: the level-1
//! tiles inside it against level 2, each level-0 tile against its entry in
//! level 1, and each data tile's entries (parsed, leaf indexes checked) leaf
//! hash by leaf hash against its level-0 tile. Tiles are checked in
//! parallel; a failure names the first failing file in tile order.
//!
//! As for a build (SPEC §3.3), the checkpoint does not bind `README.md` nor
//! each entry's precertificate and chain fingerprints: those are only
//! checked for framing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use rayon::prelude::*;
use thiserror::Error;

use super::folder::{self, FolderError, RangeFolder};
use crate::log::checkpoint::{Checkpoint, CheckpointError};
use crate::log::merkle::{Hash, perfect_root};
use crate::log::note::{KeyError, LogKey};
use crate::log::source::{BodyKind, FetchError, Location, LogSource, MAX_BODY, RetryPolicy, http_agent};
use crate::log::tile::{FULL_HASH_TILE_BYTES, HASH_SIZE, TILE_WIDTH, TileId};
use crate::log::tile_leaf::{TileLeafError, leaf_hashes};
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::output::Output;
use crate::site::human;
use crate::torrent::range::{README, TorrentRange};

/// What `helio verify` was asked to do.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Range folders, or folders holding some.
    pub paths: Vec<PathBuf>,
    /// The log's folder on the published site: a URL or a local path.
    pub site: String,
    /// The log's public key, as `logs[].key` takes it.
    pub key: Option<String>,
    /// The checkpoint origin expected; default: the checkpoint's own.
    pub origin: Option<String>,
}

/// Why downloaded ranges did not verify, or could not be checked. Every
/// variant names the file, URL or argument at fault.
#[derive(Debug, Error)]
pub enum RangeVerifyError {
    #[error("--site {text:?}: {message}")]
    Site { text: String, message: String },
    #[error("--key: {0}")]
    Key(#[source] KeyError),
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: {source}")]
    Checkpoint { url: String, source: CheckpointError },
    #[error("{url}: origin is {found:?}, not {expected:?} (--origin)")]
    Origin { url: String, found: String, expected: String },
    #[error(transparent)]
    Tree(#[from] VerifyError),
    #[error(
        "{}: {range} ends beyond the tree of size {size} that {url} describes (is the site older than the download?)",
        path.display()
    )]
    BeyondTree { path: PathBuf, range: TorrentRange, size: u64, url: String },
    #[error("{}: missing (an incomplete download?)", path.display())]
    Missing { path: PathBuf },
    #[error("{}: larger than {MAX_BODY} bytes, which no tile is", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {got} bytes, but a full hash tile has {FULL_HASH_TILE_BYTES}", path.display())]
    HashTileLength { path: PathBuf, got: usize },
    #[error("{}: {source}", path.display())]
    DataTile { path: PathBuf, source: TileLeafError },
    #[error("{}: the leaf hash of entry {index} does not match entry {position} of {}", path.display(), level0.display())]
    LeafHash { path: PathBuf, index: u64, position: usize, level0: PathBuf },
    #[error("{}: its tree hash is not entry {entry} of {parent}", path.display())]
    TileMismatch { path: PathBuf, parent: String, entry: u64 },
}

impl RangeVerifyError {
    /// Bad arguments, as opposed to something that did not verify.
    pub fn is_usage(&self) -> bool {
        matches!(self, RangeVerifyError::Site { .. } | RangeVerifyError::Key(_) | RangeVerifyError::Folder(_))
    }
}

/// Verifies every range `options` names, printing one line per range as it
/// verifies; stops at the first that does not.
pub fn run(options: &VerifyOptions, output: &Output) -> Result<(), RangeVerifyError> {
    check_ranges(&open(options)?, output).map(drop)
}

/// Checks every range of `opened` in order, printing one line per range as
/// it verifies; stops at the first that does not.
pub(crate) fn check_ranges(opened: &Opened, output: &Output) -> Result<Vec<Checked>, RangeVerifyError> {
    opened
        .folders
        .iter()
        .map(|folder| {
            let checked = check_range(&opened.tree, folder)?;
            output.result(&format!(
                "{} ok: {}, {} tiles, {}",
                folder.name(),
                folder.range,
                checked.tiles,
                human::size(checked.bytes)
            ));
            Ok(checked)
        })
        .collect()
}

/// The ranges `options` names and the site's tree they are checked against.
pub(crate) struct Opened {
    pub folders: Vec<RangeFolder>,
    /// The site's checkpoint, its signature checked when a key was given.
    pub checkpoint: Checkpoint,
    /// The checkpoint's bytes as the site published them.
    pub checkpoint_text: Bytes,
    /// The tree of the checkpoint, its right edge from the site's proof tiles.
    pub tree: VerifiedTree,
}

/// Checks the arguments, finds the ranges and opens the site's tree: what
/// `helio verify` and `helio mirror` do before checking any range.
pub(crate) fn open(options: &VerifyOptions) -> Result<Opened, RangeVerifyError> {
    let key = options.key.as_deref().map(LogKey::parse).transpose().map_err(RangeVerifyError::Key)?;
    let site_error = |message: String| RangeVerifyError::Site { text: options.site.clone(), message };
    let location = Location::parse(&options.site, Path::new("")).map_err(site_error)?;
    if let Location::Dir(dir) = &location
        && !dir.is_dir()
    {
        return Err(site_error("no such folder".into()));
    }
    let folders = folder::find(&options.paths)?;

    let site = LogSource::new(&location, &http_agent(None, 4), RetryPolicy::from_env());
    let (checkpoint_text, checkpoint) = fetch_checkpoint(&site, key.as_ref(), options.origin.as_deref())?;
    let tree = VerifiedTree::open(site, &checkpoint)?;
    Ok(Opened { folders, checkpoint, checkpoint_text, tree })
}

/// Fetches the site's checkpoint and, with a key, checks its signature.
fn fetch_checkpoint(
    site: &LogSource,
    key: Option<&LogKey>,
    origin: Option<&str>,
) -> Result<(Bytes, Checkpoint), RangeVerifyError> {
    let url = site.describe("checkpoint");
    let text = site.fetch("checkpoint", BodyKind::Sniffable)?;
    let checkpoint = match key {
        Some(key) => Checkpoint::verify(&text, key, origin),
        None => {
            tracing::warn!(
                "no --key: the checkpoint's signature is not checked, so this trusts whoever publishes {url}; \
                 pass the log's key as in the CT log list"
            );
            Checkpoint::parse(&text)
        }
    }
    .map_err(|source| match source {
        CheckpointError::OriginMismatch { found, expected } => {
            RangeVerifyError::Origin { url: url.clone(), found, expected }
        }
        source => RangeVerifyError::Checkpoint { url: url.clone(), source },
    })?;
    if let Some(expected) = origin
        && checkpoint.origin != expected
    {
        return Err(RangeVerifyError::Origin { url, found: checkpoint.origin, expected: expected.to_string() });
    }
    Ok((text, checkpoint))
}

/// What a verified range held.
pub(crate) struct Checked {
    /// Tile files checked.
    pub tiles: u64,
    /// Bytes of the range's files, README.md included.
    pub bytes: u64,
    /// The level-1 tiles above the range, by index, authenticated: what its
    /// level-0 and data tiles hash to.
    pub level1: Vec<(u64, Arc<Vec<Hash>>)>,
}

/// A level-1 tile above a range: its authenticated entries, and where it
/// came from, for messages.
struct Level1 {
    index: u64,
    entries: Arc<Vec<Hash>>,
    from: String,
}

/// Checks one range folder against `tree`.
fn check_range(tree: &VerifiedTree, folder: &RangeFolder) -> Result<Checked, RangeVerifyError> {
    let range = folder.range;
    let site = tree.source();
    if range.end > tree.size() {
        return Err(RangeVerifyError::BeyondTree {
            path: folder.path.clone(),
            range,
            size: tree.size(),
            url: site.describe("checkpoint"),
        });
    }
    tracing::debug!("verifying {} ({range})", folder.path.display());
    let mut bytes = std::fs::metadata(folder.path.join(README)).map_or(0, |m| m.len());
    let mut tiles = 0;

    // The level-1 tiles above the range: from the download when they lie
    // inside it (checked against level 2), else from the site.
    let span = TILE_WIDTH * TILE_WIDTH;
    let first = range.start / span;
    let inside = range.level1_indexes();
    let mut level1 = Vec::new();
    for t in first..=(range.end - 1) / span {
        if inside.contains(&t) {
            let path = folder.path.join(TileId::hash(1, t).path());
            let data = read(&path)?;
            let entries = hashes(&path, &data)?;
            if perfect_root(&entries) != tree.node(2, t)? {
                let parent = site.describe(&tree.parent_path(2, t));
                return Err(RangeVerifyError::TileMismatch { path, parent, entry: t % TILE_WIDTH });
            }
            bytes += data.len() as u64;
            tiles += 1;
            level1.push(Level1 { index: t, entries: Arc::new(entries), from: path.display().to_string() });
        } else {
            let entries = tree.hash_tile(1, t)?;
            level1.push(Level1 { index: t, entries, from: site.describe(&tree.parent_path(1, t * TILE_WIDTH)) });
        }
    }

    let counted = AtomicU64::new(0);
    let failure = range.tile_indexes().into_par_iter().find_map_first(|n| {
        let parent = &level1[(n / TILE_WIDTH - first) as usize];
        match check_tile(folder, parent, n) {
            Ok(read) => {
                counted.fetch_add(read, Ordering::Relaxed);
                None
            }
            Err(error) => Some(error),
        }
    });
    if let Some(error) = failure {
        return Err(error);
    }
    tiles += 2 * (range.entries() / TILE_WIDTH);
    let level1 = level1.into_iter().map(|tile| (tile.index, tile.entries)).collect();
    Ok(Checked { tiles, bytes: bytes + counted.into_inner(), level1 })
}

/// Checks level-0 tile `n` against its entry in `parent`, then data tile `n`
/// against the level-0 tile. Returns the bytes read.
fn check_tile(folder: &RangeFolder, parent: &Level1, n: u64) -> Result<u64, RangeVerifyError> {
    let level0_path = folder.path.join(TileId::hash(0, n).path());
    let level0 = read(&level0_path)?;
    let level0_hashes = hashes(&level0_path, &level0)?;
    let entry = n % TILE_WIDTH;
    if parent.entries.get(entry as usize) != Some(&perfect_root(&level0_hashes)) {
        return Err(RangeVerifyError::TileMismatch { path: level0_path, parent: parent.from.clone(), entry });
    }
    let data_path = folder.path.join(TileId::data(n).path());
    let data = read(&data_path)?;
    let entries = leaf_hashes(&data, n * TILE_WIDTH, TILE_WIDTH as usize)
        .map_err(|source| RangeVerifyError::DataTile { path: data_path.clone(), source })?;
    if let Some(position) = entries.hashes.iter().zip(&level0_hashes).position(|(a, b)| a != b) {
        return Err(RangeVerifyError::LeafHash {
            path: data_path,
            index: n * TILE_WIDTH + position as u64,
            position,
            level0: level0_path,
        });
    }
    Ok((level0.len() + data.len()) as u64)
}

/// The hashes of a full hash tile.
fn hashes(path: &Path, bytes: &[u8]) -> Result<Vec<Hash>, RangeVerifyError> {
    if bytes.len() != FULL_HASH_TILE_BYTES {
        return Err(RangeVerifyError::HashTileLength { path: path.to_path_buf(), got: bytes.len() });
    }
    Ok(bytes.chunks_exact(HASH_SIZE).map(|c| c.try_into().unwrap_or([0; HASH_SIZE])).collect())
}

/// Reads a downloaded file: a regular file of at most [`MAX_BODY`] bytes.
fn read(path: &Path) -> Result<Vec<u8>, RangeVerifyError> {
    let fail = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => RangeVerifyError::Missing { path: path.to_path_buf() },
        _ => RangeVerifyError::Read { path: path.to_path_buf(), source },
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    let metadata = file.metadata().map_err(fail)?;
    if !metadata.is_file() {
        return Err(fail(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
    }
    if metadata.len() > MAX_BODY {
        return Err(RangeVerifyError::TooLarge { path: path.to_path_buf() });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_BODY + 1).read_to_end(&mut bytes).map_err(fail)?;
    if bytes.len() as u64 > MAX_BODY {
        return Err(RangeVerifyError::TooLarge { path: path.to_path_buf() });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_tile_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read(&dir.path().join("tile/0/000")).unwrap_err().to_string();
        assert!(missing.ends_with("tile/0/000: missing (an incomplete download?)"), "{missing}");
        let folder = read(dir.path()).unwrap_err().to_string();
        assert!(folder.ends_with(": not a regular file"), "{folder}");
        let big = dir.path().join("big");
        std::fs::File::create(&big).unwrap().set_len(MAX_BODY + 1).unwrap();
        let error = read(&big).unwrap_err().to_string();
        assert!(error.contains("big: larger than 16777216 bytes, which no tile is"), "{error}");
        let short = hashes(Path::new("tile/1/000"), &[0; 100]).unwrap_err().to_string();
        assert_eq!(short, "tile/1/000: 100 bytes, but a full hash tile has 8192");
    }
}
