//! The site in a local folder: files written to a temporary name and renamed
//! into place ([`atomic`]), locks taken with `flock` ([`flock`]), which the
//! kernel releases however the process ends. Content types are a web
//! server's business here.
//!
//! A bucket has no folders, only keys: a "folder" exists while an object
//! is below it. Deleting a file here therefore also removes the folders it
//! leaves empty below the log's folder (a proof tile's `.p` folder), so the
//! folder and the bucket hold the same layout.

pub mod atomic;
pub mod flock;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Listed, LockScope, ObjectKind, StoreError};
use crate::local_file::{self, FileError, Links};
use flock::{FolderLock, LockError};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A folder that is a file is refused here, before anything is written.
    pub fn new(root: &Path) -> Result<LocalStore, StoreError> {
        if root.exists() && !root.is_dir() {
            return Err(LockError::NotAFolder { dir: root.to_path_buf() }.into());
        }
        Ok(LocalStore { root: root.to_path_buf() })
    }

    pub fn path(&self, key: &str) -> PathBuf {
        key.split('/').fold(self.root.clone(), |path, segment| path.join(segment))
    }

    /// The folder of `folder` (`""` or ending in `/`).
    fn dir(&self, folder: &str) -> PathBuf {
        let folder = folder.trim_end_matches('/');
        if folder.is_empty() { self.root.clone() } else { self.path(folder) }
    }

    pub fn read(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key);
        let max = ObjectKind::of(key).max_size;
        match local_file::read(&path, max, Links::Follow) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(error) if error.is_missing() => Ok(None),
            Err(FileError::TooLarge { max, .. }) => Err(StoreError::TooLarge { what: path.display().to_string(), max }),
            Err(error) => Err(StoreError::File(error)),
        }
    }

    pub fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        Ok(atomic::write_atomic(&self.path(key), bytes)?)
    }

    pub fn unchanged(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        Ok(self.read(key)?.is_some_and(|stored| stored == bytes))
    }

    pub fn stat(&self, key: &str) -> Result<Option<Listed>, StoreError> {
        let path = self.path(key);
        match fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => {
                Ok(Some(Listed { key: key.to_string(), size: metadata.len(), modified: metadata.modified().ok() }))
            }
            Ok(_) => Ok(None),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// `folder` is `""` or ends in `/`. With `recursive`, the files in the
    /// folders below too; hidden names (and what is below them) are left out.
    pub fn list(&self, folder: &str, recursive: bool) -> Result<Vec<Listed>, StoreError> {
        let mut listed = Vec::new();
        let mut pending = vec![folder.to_string()];
        while let Some(folder) = pending.pop() {
            let dir = self.dir(&folder);
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| StoreError::Io { path, source }
            };
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => continue,
                Err(e) => return Err(io(&dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io(&dir))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
                if name.starts_with('.') {
                    continue;
                }
                let metadata = entry.metadata().map_err(io(&entry.path()))?;
                if metadata.is_file() {
                    listed.push(Listed {
                        key: format!("{folder}{name}"),
                        size: metadata.len(),
                        modified: metadata.modified().ok(),
                    });
                } else if recursive && metadata.is_dir() {
                    pending.push(format!("{folder}{name}/"));
                }
            }
        }
        Ok(listed)
    }

    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return Ok(()),
            Err(source) => return Err(StoreError::Remove { path, source }),
        }
        // The folders left empty, up to (not including) the log's folder:
        // fails, harmlessly, at the first one that still holds something.
        let depth = key.split('/').count();
        for up in 1..depth.saturating_sub(1) {
            let Some(parent) = path.ancestors().nth(up) else { break };
            if fs::remove_dir(parent).is_err() {
                break;
            }
        }
        Ok(())
    }

    pub fn lock(&self, scope: &LockScope) -> Result<FolderLock, StoreError> {
        Ok(FolderLock::acquire(&self.dir(&scope.folder()))?)
    }

    /// The root's own temporaries only: each log's folder is its build's.
    pub fn remove_stale_temporaries(&self, folder: &str) {
        atomic::remove_stale_temporaries(&self.dir(folder), !folder.is_empty());
    }
}
