//! The site in a local folder: files written to a temporary name and renamed
//! into place ([`crate::site::atomic`]), locks taken with `flock`
//! ([`crate::site::lock`]), which the kernel releases however the process
//! ends. Content types are a web server's business here.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Listed, LockScope, StoreError};
use crate::site::atomic;
use crate::site::lock::BuildLock;

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: &Path) -> LocalStore {
        LocalStore { root: root.to_path_buf() }
    }

    pub fn path(&self, key: &str) -> PathBuf {
        key.split('/').fold(self.root.clone(), |path, segment| path.join(segment))
    }

    pub fn read(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    pub fn write(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        Ok(atomic::write_atomic(&self.path(key), bytes)?)
    }

    pub fn write_if_changed(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        Ok(atomic::write_if_changed(&self.path(key), bytes)?)
    }

    /// `folder` is `""` or ends in `/`.
    pub fn list(&self, folder: &str) -> Result<Vec<Listed>, StoreError> {
        let dir = if folder.is_empty() { self.root.clone() } else { self.path(folder.trim_end_matches('/')) };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut listed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            let metadata = entry.metadata().map_err(io(&entry.path()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            if metadata.is_file() {
                listed.push(Listed {
                    key: format!("{folder}{name}"),
                    size: metadata.len(),
                    modified: metadata.modified().ok(),
                });
            }
        }
        Ok(listed)
    }

    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    pub fn lock(&self, scope: &LockScope) -> Result<BuildLock, StoreError> {
        let dir = match scope {
            LockScope::Root => self.root.clone(),
            LockScope::Log(name) => self.path(name),
        };
        Ok(BuildLock::acquire(&dir)?)
    }

    pub fn remove_stale_temporaries(&self, folder: &str) {
        let folder = folder.trim_end_matches('/');
        atomic::remove_stale_temporaries(&if folder.is_empty() { self.root.clone() } else { self.path(folder) });
    }
}
