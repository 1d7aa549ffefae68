//! A folder's lock: `flock` on `.helio.lock` in the folder it guards (the
//! site's root, or a log's folder). A second build finds it held and exits
//! with code 3 instead of interleaving its writes with the first; the kernel
//! releases it however the process ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub const LOCK_FILE: &str = ".helio.lock";

#[derive(Debug, Error)]
pub enum LockError {
    #[error("another helio build is running on {} (it holds {})", dir.display(), dir.join(LOCK_FILE).display())]
    Held { dir: PathBuf },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot write into {}: it is a file, not a folder", dir.display())]
    NotAFolder { dir: PathBuf },
}

/// A held lock; dropping it releases it, and so does the process ending,
/// however it ends.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    pub fn acquire(dir: &Path) -> Result<FolderLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_error = |source| LockError::Io { path: path.clone(), source };
        if dir.exists() && !dir.is_dir() {
            return Err(LockError::NotAFolder { dir: dir.to_path_buf() });
        }
        std::fs::create_dir_all(dir).map_err(io_error)?;
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => Ok(FolderLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held { dir: dir.to_path_buf() }),
            Err(TryLockError::Error(source)) => Err(io_error(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = FolderLock::acquire(dir.path()).unwrap();
        let error = FolderLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(error, LockError::Held { .. }));
        assert!(error.to_string().contains("another helio build is running"));
        drop(first);
        FolderLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_file_in_place_of_the_folder_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwd");
        std::fs::write(&file, "root:x:0:0").unwrap();
        let error = FolderLock::acquire(&file).unwrap_err().to_string();
        assert_eq!(error, format!("cannot write into {}: it is a file, not a folder", file.display()));
    }
}
