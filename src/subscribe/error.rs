//! Why downloaded ranges did not verify, or could not be checked: one error
//! for `helio verify`, `helio mirror` and the piece check both use.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use super::range_folder::RangeFolderError;
use crate::local_file::FileError;
use crate::log::checkpoint::CheckpointError;
use crate::log::note::KeyError;
use crate::log::source::{FetchError, MAX_BODY};
use crate::log::tile::FULL_HASH_TILE_BYTES;
use crate::log::tile_leaf::TileLeafError;
use crate::log::verify::VerifyError;
use crate::torrent::range::TorrentRange;

/// Why downloaded ranges did not verify, or could not be checked. Every
/// variant names the file, URL or argument at fault.
#[derive(Debug, Error)]
pub enum RangeVerifyError {
    #[error("--site {text:?}: {message}")]
    Site { text: String, message: String },
    #[error("--key: {0}")]
    Key(#[source] KeyError),
    #[error(transparent)]
    Folder(#[from] RangeFolderError),
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
    #[error(transparent)]
    File(FileError),
    #[error("{}: {got} bytes, but a full hash tile has {FULL_HASH_TILE_BYTES}", path.display())]
    HashTileLength { path: PathBuf, got: usize },
    #[error("{}: {source}", path.display())]
    DataTile { path: PathBuf, source: TileLeafError },
    #[error("{}: the leaf hash of entry {index} does not match entry {position} of {}", path.display(), level0.display())]
    LeafHash { path: PathBuf, index: u64, position: usize, level0: PathBuf },
    #[error("{}: its tree hash is not entry {entry} of {parent}", path.display())]
    TileMismatch { path: PathBuf, parent: String, entry: u64 },
    #[error("{}: not the right edge of the tree that {url} describes", path.display())]
    EdgeTile { path: PathBuf, url: String },
    #[error("{}: its leaf hashes are not the entries of {}", path.display(), level0.display())]
    EdgeLeafHashes { path: PathBuf, level0: PathBuf },
    #[error("{}: {source}", path.display())]
    FinalCheckpoint { path: PathBuf, source: CheckpointError },
    #[error("{}: a checkpoint of size {size}, but the range ends at entry {end}", path.display())]
    FinalSize { path: PathBuf, size: u64, end: u64 },
    #[error("{}: its root is not that of the tree {url} describes at size {size}", path.display())]
    FinalRoot { path: PathBuf, size: u64, url: String },
    #[error("{url}: {message}")]
    Torrent { url: String, message: String },
    #[error("{url}: its files are not those of the range {range} (is it helio's torrent of it?)")]
    TorrentFiles { url: String, range: TorrentRange },
    #[error("{}: {got} bytes, but the torrent {url} says {expected}", path.display())]
    FileLength { path: PathBuf, got: u64, expected: u64, url: String },
    #[error(
        "{}: piece {piece} of {url} does not match its SHA-1{}",
        path.display(),
        if also.is_empty() { String::new() } else { format!(" (the piece also holds {})", also.join(", ")) }
    )]
    Piece { path: PathBuf, piece: usize, url: String, also: Vec<String> },
    #[error(
        "{url}: the site has taken {} in all to answer, the limit (twice the retry budget, HELIO_RETRY_BUDGET)",
        humantime::format_duration(*limit)
    )]
    SiteTooSlow { url: String, limit: Duration },
}

impl RangeVerifyError {
    /// Bad arguments, as opposed to something that did not verify.
    pub fn is_usage(&self) -> bool {
        matches!(self, RangeVerifyError::Site { .. } | RangeVerifyError::Key(_) | RangeVerifyError::Folder(_))
    }
}

/// A downloaded file that could not be read, as the error that names it.
pub(crate) fn file_error(error: FileError) -> RangeVerifyError {
    match error {
        FileError::Missing { path } => RangeVerifyError::Missing { path },
        FileError::TooLarge { path, .. } => RangeVerifyError::TooLarge { path },
        other => RangeVerifyError::File(other),
    }
}
