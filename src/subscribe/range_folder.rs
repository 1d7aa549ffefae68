//! Downloaded ranges on disk. A BitTorrent client saves a torrent in a folder
//! named after its `info.name`, `<log>-L01-<start>-<end>` (docs/spec.md §4.3), holding
//! the torrent's files at their paths: `README.md`, `tile/0/…`, `tile/1/…`,
//! `tile/data/…` (docs/spec.md §4.2).

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::torrent::range::TorrentRange;

/// A downloaded range: the folder, and the log and range its name says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeFolder {
    pub path: PathBuf,
    pub log: String,
    pub range: TorrentRange,
}

/// Why the paths given do not name downloaded ranges.
#[derive(Debug, Error)]
pub enum RangeFolderError {
    #[error("{}: no such folder", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "{}: not a helio range: expected a torrent's folder named <log>-L01-<start>-<end> \
         (holding README.md and tile/…), or a folder of them",
        path.display()
    )]
    NotARange { path: PathBuf },
    #[error("the ranges belong to several logs ({logs}): verify each log's ranges against its own --site")]
    SeveralLogs { logs: String },
}

impl RangeFolder {
    /// The folder's range, if its name is a torrent name `<log>-L01-<start>-<end>`.
    pub fn from_path(path: &Path) -> Option<RangeFolder> {
        let name = path.file_name()?.to_str()?;
        let at = name.rfind("-L01-")?;
        let (log, rest) = (&name[..at], &name[at + 1..]);
        let range = TorrentRange::from_file_name(&format!("{rest}.torrent"))?;
        (!log.is_empty()).then(|| RangeFolder { path: path.to_path_buf(), log: log.to_string(), range })
    }

    /// The torrent's name, as the folder is named.
    pub fn name(&self) -> String {
        self.range.torrent_name(&self.log)
    }
}

/// The ranges that `paths` name: each is a range's folder or a folder holding
/// some (other entries in it are ignored). All must be of one log. Sorted by
/// range, then path.
pub fn find(paths: &[PathBuf]) -> Result<Vec<RangeFolder>, RangeFolderError> {
    let mut found = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => RangeFolderError::Missing { path: path.clone() },
            _ => RangeFolderError::Read { path: path.clone(), source },
        })?;
        if !metadata.is_dir() {
            return Err(RangeFolderError::NotARange { path: path.clone() });
        }
        if let Some(folder) = RangeFolder::from_path(&named(path)) {
            found.push(RangeFolder { path: path.clone(), ..folder });
            continue;
        }
        let read = |source| RangeFolderError::Read { path: path.clone(), source };
        let before = found.len();
        for entry in std::fs::read_dir(path).map_err(read)? {
            let entry = entry.map_err(read)?;
            if entry.file_type().map_err(read)?.is_dir()
                && let Some(folder) = RangeFolder::from_path(&entry.path())
            {
                found.push(folder);
            }
        }
        if found.len() == before {
            return Err(RangeFolderError::NotARange { path: path.clone() });
        }
    }
    let mut logs: Vec<&str> = found.iter().map(|f| f.log.as_str()).collect();
    logs.sort_unstable();
    logs.dedup();
    if logs.len() > 1 {
        return Err(RangeFolderError::SeveralLogs { logs: logs.join(", ") });
    }
    found.sort_by(|a, b| (a.range, &a.path).cmp(&(b.range, &b.path)));
    Ok(found)
}

/// `.` and `..` have no name of their own: resolve them to read the folder's.
fn named(path: &Path) -> PathBuf {
    match path.file_name() {
        Some(_) => path.to_path_buf(),
        None => path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torrent_names_give_the_log_and_range() {
        let folder = RangeFolder::from_path(Path::new("/dl/sycamore-2026h1-L01-1048576-2097152")).unwrap();
        assert_eq!(folder.log, "sycamore-2026h1");
        assert_eq!(folder.range, TorrentRange { start: 1048576, end: 2097152 });
        assert_eq!(folder.name(), "sycamore-2026h1-L01-1048576-2097152");
        let odd = RangeFolder::from_path(Path::new("a-L01-b-L01-0-256")).unwrap();
        assert_eq!(odd.log, "a-L01-b");
        for name in ["demo", "-L01-0-256", "demo-L01-100-200", "demo-L01-256-0", "demo-L01-00-256", "demo-L02-0-256"] {
            assert_eq!(RangeFolder::from_path(Path::new(name)), None, "{name}");
        }
    }

    #[test]
    fn a_folder_of_ranges_gives_them_in_order_and_anything_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["demo-L01-1024-2048", "demo-L01-0-1024", "notes", "demo-L01-x"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("demo-L01-2048-3072"), b"a file, not a download").unwrap();
        let found = find(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<String> = found.iter().map(RangeFolder::name).collect();
        assert_eq!(names, ["demo-L01-0-1024", "demo-L01-1024-2048"]);
        assert_eq!(find(&[dir.path().join("demo-L01-0-1024")]).unwrap().len(), 1);

        let error = find(&[dir.path().join("notes")]).unwrap_err().to_string();
        assert!(error.contains("notes: not a helio range: expected a torrent's folder named"), "{error}");
        let error = find(&[dir.path().join("absent")]).unwrap_err().to_string();
        assert!(error.ends_with("absent: no such folder"), "{error}");
        std::fs::create_dir(dir.path().join("other-L01-0-1024")).unwrap();
        let error = find(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert!(error.contains("several logs (demo, other)"), "{error}");
    }
}
