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
//! The last range of a finished log (docs/final.md) also carries the right
//! edge of the tree it ends: its partial level-0 and data tiles, the hash
//! tiles above it and the checkpoint. Every one of them is required and
//! checked: the partial tiles against the site's authenticated right edge,
//! the partial data tile's leaf hashes against the partial level-0 tile,
//! the carried checkpoint (signature, origin) against the site's tree.
//!
//! As for a build (docs/spec.md §3.3), the checkpoint does not bind `README.md` nor
//! each entry's precertificate and chain fingerprints. When the site has the
//! range's `.torrent`, every file is also checked against its piece hashes
//! ([`super::pieces`]), which do bind them; without it they are only checked
//! for framing. Files in a range's folder that its torrent does not list
//! are reported and ignored.
//!
//! Everything asked of the site together gets twice the retry budget
//! (`HELIO_RETRY_BUDGET`, 5 minutes by default), each request at most the
//! budget however slowly it is answered, so a site that trickles its bytes
//! cannot hold verify (or a mirror's startup) for long.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use rayon::prelude::*;

pub use super::error::RangeVerifyError;
use super::error::file_error;
use super::range_folder::{self, RangeFolder};
use crate::local_file::{self, Links};
use crate::log::body::BodyLimit;
use crate::log::checkpoint::{Checkpoint, CheckpointError};
use crate::log::merkle::{Hash, perfect_root};
use crate::log::note::LogKey;
use crate::log::source::{BodyKind, Location, LogSource, MAX_BODY, RetryPolicy, http_agent_within};
use crate::log::tile::{FULL_HASH_TILE_BYTES, HASH_SIZE, Level, TILE_WIDTH, TileId};
use crate::log::tile_leaf::leaf_hashes;
use crate::log::verify::{VerifiedTree, VerifyError};
use crate::output::Output;
use crate::site::human;
use crate::store::kind::{MAX_CHECKPOINT, MAX_TORRENT};
use crate::torrent::metainfo::TorrentLayout;
use crate::torrent::range::{CHECKPOINT, README, TorrentFile};

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
            let checked = check_range(opened, folder)?;
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
    /// What a checkpoint carried by a final range must be signed by and be for.
    key: Option<LogKey>,
    origin: String,
    /// Time spent waiting for the site, against its limit.
    clock: SiteClock,
    /// Whether the site's lack of `.torrent` files was told already.
    told_no_torrent: AtomicBool,
}

/// Time spent waiting for the site, all requests together, against a limit.
struct SiteClock {
    spent: Mutex<Duration>,
    limit: Duration,
    /// The site, for the message.
    url: String,
}

impl SiteClock {
    /// Runs `ask` (requests to the site) unless the time is up, and counts its time.
    fn timed<T, E: Into<RangeVerifyError>>(&self, ask: impl FnOnce() -> Result<T, E>) -> Result<T, RangeVerifyError> {
        let spent = || *self.spent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if spent() >= self.limit {
            return Err(RangeVerifyError::SiteTooSlow { url: self.url.clone(), limit: self.limit });
        }
        let started = Instant::now();
        let result = ask();
        *self.spent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) += started.elapsed();
        result.map_err(Into::into)
    }
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
    let folders = range_folder::find(&options.paths)?;

    // Every request bounded by the retry budget, body included, and the
    // site's time in all by twice that.
    let policy = RetryPolicy::from_env();
    let site = LogSource::new(&location, &http_agent_within(None, 4, Some(policy.budget)), policy);
    let limit = (policy.budget * 2).max(Duration::from_secs(1));
    let clock = SiteClock { spent: Mutex::new(Duration::ZERO), limit, url: site.describe("") };
    let (checkpoint_text, checkpoint) =
        clock.timed(|| fetch_checkpoint(&site, key.as_ref(), options.origin.as_deref()))?;
    let tree = clock.timed(|| VerifiedTree::open(site, &checkpoint))?;
    let origin = options.origin.clone().unwrap_or_else(|| checkpoint.origin.clone());
    Ok(Opened {
        folders,
        checkpoint,
        checkpoint_text,
        tree,
        key,
        origin,
        clock,
        told_no_torrent: AtomicBool::new(false),
    })
}

impl Opened {
    /// Asks the site's tree for something, within the site's time.
    fn site<T>(&self, ask: impl FnOnce() -> Result<T, VerifyError>) -> Result<T, RangeVerifyError> {
        self.clock.timed(ask)
    }

    /// The range's torrent from the site, if the site has it.
    fn torrent(&self, folder: &RangeFolder) -> Result<Option<(TorrentLayout, String)>, RangeVerifyError> {
        let site = self.tree.source();
        let file = folder.range.file_name();
        let url = site.describe(&file);
        let fetched = self.clock.timed(|| site.fetch_within(&file, BodyKind::Opaque, &BodyLimit::new(MAX_TORRENT)));
        let bytes = match fetched {
            Ok(bytes) => bytes,
            Err(RangeVerifyError::Fetch(error)) if error.is_not_found() => {
                if !self.told_no_torrent.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{url}: not on the site, so the downloads are checked against the checkpoint only: \
                         README.md and each entry's precertificate and chain bytes are not covered"
                    );
                }
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let layout = TorrentLayout::read(&bytes)
            .map_err(|e| RangeVerifyError::Torrent { url: url.clone(), message: e.to_string() })?;
        if layout.name != folder.name() {
            let message = format!("its name is {:?}, not {:?}", layout.name, folder.name());
            return Err(RangeVerifyError::Torrent { url, message });
        }
        Ok(Some((layout, url)))
    }
}

/// Fetches the site's checkpoint and, with a key, checks its signature.
fn fetch_checkpoint(
    site: &LogSource,
    key: Option<&LogKey>,
    origin: Option<&str>,
) -> Result<(Bytes, Checkpoint), RangeVerifyError> {
    let url = site.describe("checkpoint");
    let text = site.fetch_within("checkpoint", BodyKind::Sniffable, &BodyLimit::new(MAX_CHECKPOINT))?;
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
    /// The range's torrent from the site, and its URL, when the site has it.
    pub torrent: Option<(TorrentLayout, String)>,
}

/// A level-1 tile above a range: its authenticated entries, and where it
/// came from, for messages.
struct Level1 {
    index: u64,
    entries: Arc<Vec<Hash>>,
    from: String,
}

/// Checks one range folder against the site's tree, and against its torrent
/// when the site has it.
fn check_range(opened: &Opened, folder: &RangeFolder) -> Result<Checked, RangeVerifyError> {
    let tree = &opened.tree;
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
    let torrent = opened.torrent(folder)?;
    // The last range of a finished log: its torrent lists the checkpoint;
    // without the torrent, a range ending inside a tile or carrying a
    // checkpoint is one.
    let is_final = match &torrent {
        Some((layout, _)) => layout.files.iter().any(|file| file.path == CHECKPOINT),
        None => {
            !range.end.is_multiple_of(TILE_WIDTH) || std::fs::symlink_metadata(folder.path.join(CHECKPOINT)).is_ok()
        }
    };
    let content = if is_final { range.final_content() } else { range.content() };
    let expected: BTreeSet<String> = content.iter().map(TorrentFile::path).collect();
    if let Some((layout, url)) = &torrent {
        let listed: BTreeSet<String> = layout.files.iter().filter(|f| !f.pad).map(|f| f.path.clone()).collect();
        if listed != expected {
            return Err(RangeVerifyError::TorrentFiles { url: url.clone(), range });
        }
    }
    warn_about_strays(folder, &expected);
    let (_, readme) = local_file::open(&folder.path.join(README), Links::Follow).map_err(file_error)?;
    let mut bytes = readme.len();
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
            if perfect_root(&entries) != opened.site(|| tree.node(2, t))? {
                let parent = site.describe(&tree.parent_path(2, t));
                return Err(RangeVerifyError::TileMismatch { path, parent, entry: t % TILE_WIDTH });
            }
            bytes += data.len() as u64;
            tiles += 1;
            level1.push(Level1 { index: t, entries: Arc::new(entries), from: path.display().to_string() });
        } else {
            let entries = opened.site(|| tree.hash_tile(1, t))?;
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
    if is_final {
        let (final_tiles, final_bytes) = check_final(opened, folder, &content)?;
        tiles += final_tiles;
        bytes += final_bytes;
    }
    if let Some((layout, url)) = &torrent {
        super::pieces::check(folder, layout, url)?;
    }
    let level1 = level1.into_iter().map(|tile| (tile.index, tile.entries)).collect();
    Ok(Checked { tiles, bytes: bytes + counted.into_inner(), level1, torrent })
}

/// Checks what only the last range of a finished log carries: the partial
/// tiles of the right edge, the full hash tiles above it, and the
/// checkpoint. Returns the tiles and bytes read.
fn check_final(opened: &Opened, folder: &RangeFolder, content: &[TorrentFile]) -> Result<(u64, u64), RangeVerifyError> {
    let tree = &opened.tree;
    let site = tree.source();
    let (mut tiles, mut bytes) = (0, 0);
    for file in content {
        let path = folder.path.join(file.path());
        let tile = match file {
            TorrentFile::Readme => continue,
            TorrentFile::Checkpoint => {
                bytes += check_carried_checkpoint(opened, folder, &path)?;
                continue;
            }
            // Full level-0 and data tiles, and the level-1 tiles inside the
            // range, were checked as every range's are.
            TorrentFile::Tile(tile) if tile.is_full() && matches!(tile.level, Level::Data | Level::Hash(0)) => continue,
            TorrentFile::Tile(tile)
                if tile.is_full()
                    && tile.level == Level::Hash(1)
                    && folder.range.level1_indexes().contains(&tile.index) =>
            {
                continue;
            }
            TorrentFile::Tile(tile) => *tile,
        };
        let data = read(&path)?;
        bytes += data.len() as u64;
        tiles += 1;
        let width = usize::from(tile.width);
        match tile.level {
            Level::Hash(level) if tile.is_full() => {
                let entries = hashes(&path, &data)?;
                if perfect_root(&entries) != opened.site(|| tree.node(level + 1, tile.index))? {
                    let parent = site.describe(&tree.parent_path(level + 1, tile.index));
                    return Err(RangeVerifyError::TileMismatch { path, parent, entry: tile.index % TILE_WIDTH });
                }
            }
            Level::Hash(level) => {
                let edge = opened.site(|| tree.hash_tile(level, tile.index))?;
                let same = data.len() == width * HASH_SIZE
                    && edge.len() >= width
                    && data.chunks_exact(HASH_SIZE).zip(&edge[..width]).all(|(a, b)| a == b);
                if !same {
                    return Err(RangeVerifyError::EdgeTile { path, url: site.describe("checkpoint") });
                }
            }
            Level::Data => {
                let level0 = TileId::hash(0, tile.index).with_width(tile.width);
                let edge = opened.site(|| tree.hash_tile(0, tile.index))?;
                let read = leaf_hashes(&data, tile.index * TILE_WIDTH, width)
                    .map_err(|source| RangeVerifyError::DataTile { path: path.clone(), source })?;
                if edge.len() < width || read.hashes[..] != edge[..width] {
                    return Err(RangeVerifyError::EdgeLeafHashes { path, level0: folder.path.join(level0.path()) });
                }
            }
        }
    }
    Ok((tiles, bytes))
}

/// Checks the checkpoint a final range carries: signed by the key (when
/// given) for the same origin, of the range's end, and of the site's tree.
fn check_carried_checkpoint(opened: &Opened, folder: &RangeFolder, path: &Path) -> Result<u64, RangeVerifyError> {
    let text = local_file::read(path, MAX_CHECKPOINT, Links::Follow).map_err(file_error)?;
    let failed = |source| RangeVerifyError::FinalCheckpoint { path: path.to_path_buf(), source };
    let carried = match &opened.key {
        Some(key) => Checkpoint::verify(&text, key, Some(&opened.origin)),
        None => Checkpoint::parse(&text).and_then(|checkpoint| {
            if checkpoint.origin == opened.origin {
                Ok(checkpoint)
            } else {
                Err(CheckpointError::OriginMismatch { found: checkpoint.origin, expected: opened.origin.clone() })
            }
        }),
    }
    .map_err(failed)?;
    let end = folder.range.end;
    if carried.size != end {
        return Err(RangeVerifyError::FinalSize { path: path.to_path_buf(), size: carried.size, end });
    }
    let url = opened.tree.source().describe("checkpoint");
    let same_tree = if end == opened.tree.size() {
        carried.root == opened.checkpoint.root
    } else {
        match opened.site(|| opened.tree.check_consistency(&carried)) {
            Ok(()) => true,
            Err(RangeVerifyError::Tree(VerifyError::Inconsistent { .. })) => false,
            Err(error) => return Err(error),
        }
    };
    if !same_tree {
        return Err(RangeVerifyError::FinalRoot { path: path.to_path_buf(), size: end, url });
    }
    Ok(text.len() as u64)
}

/// Warns about what is in a range's folder but not in its torrent (a
/// client's partial files, something copied in), which is not checked.
fn warn_about_strays(folder: &RangeFolder, expected: &BTreeSet<String>) {
    const SHOWN: usize = 5;
    let mut strays = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(folder.path.join(&relative)) else { continue };
        for entry in entries.flatten() {
            let path = relative.join(entry.file_name());
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            let name = path.to_string_lossy().replace('\\', "/");
            if is_dir && expected.iter().any(|file| file.starts_with(&format!("{name}/"))) {
                pending.push(path);
            } else if is_dir || !expected.contains(&name) {
                strays.push(if is_dir { format!("{name}/") } else { name });
            }
        }
    }
    if strays.is_empty() {
        return;
    }
    strays.sort();
    let count = strays.len();
    let more = if count > SHOWN { format!(" and {} more", count - SHOWN) } else { String::new() };
    strays.truncate(SHOWN);
    tracing::warn!(
        "{}: {count} file{} not part of the range's torrent, not checked: {}{more}",
        folder.path.display(),
        if count == 1 { " is" } else { "s are" },
        strays.join(", ")
    );
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

/// Reads a downloaded file: a regular file of at most [`MAX_BODY`] bytes
/// (a FIFO or device is refused at once, never waited on).
fn read(path: &Path) -> Result<Vec<u8>, RangeVerifyError> {
    local_file::read(path, MAX_BODY, Links::Follow).map_err(file_error)
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
        assert!(folder.ends_with(": not a regular file (a FIFO, device or folder is never read)"), "{folder}");
        let big = dir.path().join("big");
        std::fs::File::create(&big).unwrap().set_len(MAX_BODY + 1).unwrap();
        let error = read(&big).unwrap_err().to_string();
        assert!(error.contains("big: larger than 16777216 bytes, which no tile is"), "{error}");
        let short = hashes(Path::new("tile/1/000"), &[0; 100]).unwrap_err().to_string();
        assert_eq!(short, "tile/1/000: 100 bytes, but a full hash tile has 8192");
    }

    #[test]
    fn the_site_gets_its_time_in_all_then_nothing_more_is_asked() {
        let clock = SiteClock {
            spent: Mutex::new(Duration::ZERO),
            limit: Duration::from_millis(1000),
            url: "https://site.example/log/".into(),
        };
        let taking = |time| {
            move || -> Result<u32, VerifyError> {
                std::thread::sleep(time);
                Ok(1)
            }
        };
        // A busy machine makes sleeps longer, never shorter: the margins hold.
        assert_eq!(clock.timed(taking(Duration::from_millis(10))).unwrap(), 1);
        let past = taking(Duration::from_millis(1100));
        assert_eq!(clock.timed(past).unwrap(), 1, "under the limit when it started");
        let mut asked = false;
        let error = clock
            .timed(|| -> Result<u32, VerifyError> {
                asked = true;
                Ok(1)
            })
            .unwrap_err()
            .to_string();
        assert!(!asked, "nothing is asked once the time is spent");
        assert_eq!(
            error,
            "https://site.example/log/: the site has taken 1s in all to answer, the limit (twice the retry \
             budget, HELIO_RETRY_BUDGET)"
        );
    }
}
