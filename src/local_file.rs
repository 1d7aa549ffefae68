//! Reading a file helio was given — a config, a certificate, a downloaded
//! tile, a site's `torrents.json` — so that no path can make it wait or
//! grow without end: the file is opened with `O_NONBLOCK` (opening a FIFO
//! with no writer returns at once instead of waiting for one), its type is
//! checked on the open handle, so nothing swapped in after a check is read,
//! and only a regular file is read, up to a size limit. A FIFO or a device
//! is refused, never read.
//!
//! Links are followed (certificates under `/etc/letsencrypt/live/` are
//! links), except where the caller forbids a link in the last component,
//! as a web server's folder does ([`crate::http::folder`]).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Whether a link in the last component of the path is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    Follow,
    /// A link there fails to open (`ELOOP`).
    NoFollowLast,
}

/// What a FIFO, device or folder is told, for messages that name the path themselves.
pub const NOT_REGULAR: &str = "not a regular file (a FIFO, device or folder is never read)";

/// Why a file was not read. Every variant names it.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("{}: no such file", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {NOT_REGULAR}", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: larger than {max} bytes", path.display())]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl FileError {
    pub fn is_missing(&self) -> bool {
        matches!(self, FileError::Missing { .. })
    }

    fn new(path: &Path, source: io::Error) -> FileError {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => FileError::Missing { path },
            _ => FileError::Io { path, source },
        }
    }
}

/// Opens a regular file without waiting, and returns it with its metadata
/// (read from the open handle).
pub fn open(path: &Path, links: Links) -> Result<(File, Metadata), FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let no_follow = if links == Links::NoFollowLast { libc::O_NOFOLLOW } else { 0 };
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | no_follow);
    }
    let file = options.open(path).map_err(|source| FileError::new(path, source))?;
    let metadata = file.metadata().map_err(|source| FileError::new(path, source))?;
    if !metadata.is_file() {
        return Err(FileError::NotRegular { path: path.to_path_buf() });
    }
    Ok((file, metadata))
}

/// Reads a regular file of at most `max` bytes whole.
pub fn read(path: &Path, max: u64, links: Links) -> Result<Vec<u8>, FileError> {
    let (file, metadata) = open(path, links)?;
    if metadata.len() > max {
        return Err(FileError::TooLarge { path: path.to_path_buf(), max });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // A file growing while it is read stops at the limit all the same.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(|source| FileError::new(path, source))?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge { path: path.to_path_buf(), max });
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64, links: Links) -> Result<String, FileError> {
    String::from_utf8(read(path, max, links)?).map_err(|_| FileError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "hello").unwrap();
        assert_eq!(read(&path, 5, Links::Follow).unwrap(), b"hello");
        assert_eq!(read_to_string(&path, 5, Links::NoFollowLast).unwrap(), "hello");
        let error = read(&path, 4, Links::Follow).unwrap_err().to_string();
        assert!(error.ends_with("a.txt: larger than 4 bytes"), "{error}");
        let missing = read(&dir.path().join("b"), 5, Links::Follow).unwrap_err();
        assert!(missing.is_missing() && missing.to_string().ends_with("b: no such file"), "{missing}");
        let folder = read(dir.path(), 5, Links::Follow).unwrap_err().to_string();
        assert!(folder.ends_with(": not a regular file (a FIFO, device or folder is never read)"), "{folder}");
    }

    #[cfg(unix)]
    #[test]
    fn fifos_and_devices_are_refused_at_once_and_links_followed_unless_forbidden() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let started = Instant::now();
        for path in [fifo.as_path(), Path::new("/dev/zero"), Path::new("/dev/null")] {
            let error = read(path, 1 << 20, Links::Follow).unwrap_err();
            assert!(matches!(error, FileError::NotRegular { .. }), "{}: {error}", path.display());
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

        std::fs::write(dir.path().join("target"), "x").unwrap();
        std::os::unix::fs::symlink("target", dir.path().join("link")).unwrap();
        assert_eq!(read(&dir.path().join("link"), 1, Links::Follow).unwrap(), b"x");
        assert!(matches!(read(&dir.path().join("link"), 1, Links::NoFollowLast), Err(FileError::Io { .. })));
        std::os::unix::fs::symlink("fifo", dir.path().join("to-fifo")).unwrap();
        assert!(matches!(read(&dir.path().join("to-fifo"), 1, Links::Follow), Err(FileError::NotRegular { .. })));
    }
}
