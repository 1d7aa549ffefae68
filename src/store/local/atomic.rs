//! Atomic output to a folder: every file is written to a temporary name in
//! its own folder, flushed to disk, and renamed into place, so a reader (a
//! web server, a sync to a bucket) or a crash never sees half a file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Replaces `path` with `bytes`, or leaves it untouched on any error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let fail = |source| WriteError { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(fail)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.{:08x}.tmp", std::process::id(), fastrand::u32(..)));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        // Make the rename itself durable; not every filesystem can, so ignore failure.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(fail)
}

/// Removes temporary files a crashed build left behind in `dir`, and with
/// `recursive` in the folders below it (a log's proof tiles).
pub fn remove_stale_temporaries(dir: &Path, recursive: bool) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if is_dir {
            if recursive && !name.starts_with('.') {
                remove_stale_temporaries(&entry.path(), true);
            }
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leaving_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/feed.xml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["feed.xml"]);
    }

    #[test]
    fn a_crashed_builds_temporaries_are_removed_below_a_log_folder() {
        let dir = tempfile::tempdir().unwrap();
        let tiles = dir.path().join("demo/tile/0/008.p");
        fs::create_dir_all(&tiles).unwrap();
        for stale in [dir.path().join("demo/.feed.xml.1.0.tmp"), tiles.join(".10.1.0.tmp")] {
            fs::write(stale, b"half").unwrap();
        }
        fs::write(dir.path().join("demo/feed.xml"), b"kept").unwrap();
        remove_stale_temporaries(&dir.path().join("demo"), false);
        assert!(tiles.join(".10.1.0.tmp").exists(), "not below without recursive");
        remove_stale_temporaries(&dir.path().join("demo"), true);
        assert!(!tiles.join(".10.1.0.tmp").exists());
        assert!(dir.path().join("demo/feed.xml").exists());
    }

    #[test]
    fn a_failed_write_names_the_file_and_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keep");
        write_atomic(&path, b"old").unwrap();
        // A directory in the way of the rename makes the write fail after the temp file exists.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("child")).unwrap();
        let error = write_atomic(&blocked, b"new").unwrap_err();
        assert!(error.to_string().starts_with(&format!("cannot write {}", blocked.display())), "{error}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn full_disk_is_reported_with_the_path() {
        // /dev/full accepts opens and fails every write with ENOSPC.
        if !Path::new("/dev/full").exists() {
            assert!(std::env::var_os("HELIO_E2E").is_none_or(|v| v != "1"), "HELIO_E2E=1 but /dev/full is missing");
            eprintln!("SKIPPED: /dev/full is not available");
            return;
        }
        let error = write_to_full_device().unwrap_err();
        assert_eq!(error.raw_os_error(), Some(28), "{error}");
    }

    fn write_to_full_device() -> io::Result<()> {
        let mut file = fs::OpenOptions::new().write(true).open("/dev/full")?;
        file.write_all(b"x")?;
        file.sync_all()
    }
}
