//! Files beneath a folder, handed out the way a web server must: whatever
//! is opened has its real path inside the folder (a symbolic link planted
//! there, say by a restored site archive, to `/etc/passwd` or to `/etc`
//! leads nowhere), only regular files are read (a FIFO would block a thread
//! forever, a device never end), and a file is read whole, up to a size
//! limit, from one open handle, so a writer renaming a new version into
//! place never mixes two.
//!
//! The path is resolved with `canonicalize`, checked against the folder's
//! own real path, and then opened with `O_NOFOLLOW | O_NONBLOCK`, so that a
//! link swapped in for the last component between the check and the open
//! fails rather than being followed, and opening a FIFO never waits for a
//! writer. Links that stay inside the folder are followed.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::HeaderValue;
use thiserror::Error;

/// A folder served over HTTP.
#[derive(Clone, Debug)]
pub struct ServedFolder {
    root: PathBuf,
}

/// What a path beneath the folder names.
#[derive(Debug)]
pub enum Entry {
    File(FileContent),
    /// A folder: the caller decides between an index file, a redirect and 404.
    Dir,
    /// Nothing servable: missing, outside the folder, or not a regular file.
    Missing,
}

/// A regular file, read whole.
#[derive(Debug)]
pub struct FileContent {
    pub bytes: Bytes,
    pub modified: Option<SystemTime>,
}

impl FileContent {
    /// A strong validator from the modification time and length: a build
    /// replaces a file by renaming a new one into place, which changes both.
    pub fn etag(&self) -> Option<HeaderValue> {
        let stamp = self.modified.and_then(|m| m.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
        let etag = format!("\"{:x}-{:x}-{:x}\"", stamp.as_secs(), stamp.subsec_nanos(), self.bytes.len());
        HeaderValue::from_str(&etag).ok()
    }
}

/// A file that is there but cannot be served: 500, and the operator's to fix.
#[derive(Debug, Error)]
pub enum ServedFolderError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is larger than {max} bytes", path.display())]
    TooLarge { path: PathBuf, max: u64 },
}

impl ServedFolder {
    pub fn new(root: &Path) -> ServedFolder {
        ServedFolder { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads what `segments` (already checked by [`super::path`]) name,
    /// files of at most `max` bytes. Blocking: call it from a blocking task.
    pub fn read(&self, segments: &[&str], max: u64) -> Result<Entry, ServedFolderError> {
        let Some(root) = real_path(&self.root).map_err(|source| self.error(&self.root, source))? else {
            return Ok(Entry::Missing);
        };
        let mut wanted = self.root.clone();
        wanted.extend(segments);
        let Some(real) = real_path(&wanted).map_err(|source| self.error(&wanted, source))? else {
            return Ok(Entry::Missing);
        };
        if !real.starts_with(&root) {
            tracing::debug!("{} leads outside {}: not served", wanted.display(), self.root.display());
            return Ok(Entry::Missing);
        }
        let (file, meta) = match open_no_follow(&real) {
            Ok(opened) => opened,
            Err(error) if is_missing(&error) || is_link(&error) => return Ok(Entry::Missing),
            Err(source) => return Err(self.error(&wanted, source)),
        };
        if meta.is_dir() {
            return Ok(Entry::Dir);
        }
        if !meta.is_file() {
            return Ok(Entry::Missing);
        }
        if meta.len() > max {
            return Err(ServedFolderError::TooLarge { path: wanted, max });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(max + 1).read_to_end(&mut bytes).map_err(|source| self.error(&wanted, source))?;
        if bytes.len() as u64 > max {
            return Err(ServedFolderError::TooLarge { path: wanted, max });
        }
        Ok(Entry::File(FileContent { bytes: Bytes::from(bytes), modified: meta.modified().ok() }))
    }

    fn error(&self, path: &Path, source: io::Error) -> ServedFolderError {
        ServedFolderError::Read { path: path.to_path_buf(), source }
    }
}

/// The path with every link resolved, or `None` if nothing is there.
fn real_path(path: &Path) -> io::Result<Option<PathBuf>> {
    match std::fs::canonicalize(path) {
        Ok(real) => Ok(Some(real)),
        Err(error) if is_missing(&error) || is_link(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

fn is_missing(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

/// `ELOOP`: a link where `O_NOFOLLOW` forbids one, or a cycle of links.
#[cfg(unix)]
fn is_link(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(not(unix))]
fn is_link(_: &io::Error) -> bool {
    false
}

/// Opens without following a link in the last component and without
/// waiting (a FIFO with no writer), and reads the metadata of what was
/// opened.
fn open_no_follow(path: &Path) -> io::Result<(File, Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(folder: &ServedFolder, path: &[&str]) -> Entry {
        folder.read(path, 1 << 20).unwrap()
    }

    #[test]
    fn files_folders_and_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "hello").unwrap();
        let folder = ServedFolder::new(dir.path());
        let Entry::File(file) = read(&folder, &["sub", "a.txt"]) else { panic!("no file") };
        assert_eq!(&file.bytes[..], b"hello");
        assert!(file.etag().unwrap().to_str().unwrap().ends_with("-5\""));
        assert!(matches!(read(&folder, &["sub"]), Entry::Dir));
        assert!(matches!(read(&folder, &[]), Entry::Dir));
        assert!(matches!(read(&folder, &["nothing"]), Entry::Missing));
        assert!(matches!(read(&folder, &["sub", "a.txt", "x"]), Entry::Missing));
        assert!(matches!(ServedFolder::new(&dir.path().join("gone")).read(&[], 10).unwrap(), Entry::Missing));
        let error = folder.read(&["sub", "a.txt"], 4).unwrap_err().to_string();
        assert!(error.ends_with("a.txt is larger than 4 bytes"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_folder_fifos_and_loops_are_missing() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inside.txt"), "inside").unwrap();
        symlink(outside.path().join("secret"), dir.path().join("x.torrent")).unwrap();
        symlink(outside.path(), dir.path().join("e")).unwrap();
        symlink("inside.txt", dir.path().join("alias.txt")).unwrap();
        symlink("loop", dir.path().join("loop")).unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let folder = ServedFolder::new(dir.path());
        assert!(matches!(read(&folder, &["x.torrent"]), Entry::Missing));
        assert!(matches!(read(&folder, &["e", "secret"]), Entry::Missing));
        assert!(matches!(read(&folder, &["e"]), Entry::Missing));
        assert!(matches!(read(&folder, &["loop"]), Entry::Missing));
        assert!(matches!(read(&folder, &["fifo"]), Entry::Missing), "answered at once, without a writer");
        let Entry::File(file) = read(&folder, &["alias.txt"]) else { panic!("a link inside is followed") };
        assert_eq!(&file.bytes[..], b"inside");
        // The folder itself may be reached through a link.
        let link = outside.path().join("site");
        symlink(dir.path(), &link).unwrap();
        assert!(matches!(ServedFolder::new(&link).read(&["inside.txt"], 100).unwrap(), Entry::File(_)));
        assert!(matches!(ServedFolder::new(&link).read(&["x.torrent"], 100).unwrap(), Entry::Missing));
    }
}
