//! `/torrents/…`: the output directory (`torrent_dir`) as `helio build`
//! wrote it, with the content types feed readers and BitTorrent clients
//! expect and the caching a bucket gives the same files (one table:
//! [`ObjectKind`]). Folders answer with their `index.html`; hidden files (the build
//! lock, temporaries) are not served; files are read by
//! [`crate::http::folder`], so nothing outside the output directory is ever
//! served, whatever links it holds, and a FIFO is 404 at once.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use hyper::header::HeaderValue;

use crate::config::url_segment;
use crate::http::response::{Payload, Representation};
use crate::http::served_folder::{Entry, ServedFolder};
use crate::store::ObjectKind;

/// Larger files are not served: nothing helio writes comes close.
const MAX_FILE: u64 = 64 << 20;

pub struct StaticFiles {
    folder: ServedFolder,
    meter: Arc<AtomicU64>,
}

/// What a path under `/torrents/` leads to.
pub enum Found {
    File(Representation),
    /// A folder asked for without its trailing slash: go to `<name>/`.
    Redirect(String),
    NotFound,
    Error(String),
}

impl StaticFiles {
    /// Serves `root`; bytes sent are added to `meter`.
    pub fn new(root: &Path, meter: Arc<AtomicU64>) -> StaticFiles {
        StaticFiles { folder: ServedFolder::new(root), meter }
    }

    pub fn meter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.meter)
    }

    /// The file at `segments` (already decoded and checked by the router);
    /// `dir` when the path ended in `/`.
    pub async fn get(&self, segments: Vec<Cow<'_, str>>, dir: bool) -> Found {
        if segments.iter().any(|segment| segment.starts_with('.')) {
            return Found::NotFound;
        }
        let segments: Vec<String> = segments.into_iter().map(Cow::into_owned).collect();
        let folder = self.folder.clone();
        tokio::task::spawn_blocking(move || read(&folder, segments, dir))
            .await
            .unwrap_or_else(|e| Found::Error(format!("reading failed: {e}")))
    }
}

fn read(folder: &ServedFolder, mut segments: Vec<String>, dir: bool) -> Found {
    let entry = |segments: &[String]| {
        let names: Vec<&str> = segments.iter().map(String::as_str).collect();
        folder.read(&names, MAX_FILE)
    };
    let found = match entry(&segments) {
        Ok(Entry::Dir) if !dir => {
            let last = segments.last().map_or("torrents", String::as_str);
            return Found::Redirect(format!("{}/", url_segment(last)));
        }
        Ok(Entry::Dir) => {
            segments.push("index.html".into());
            entry(&segments)
        }
        Ok(Entry::File(_)) if dir => return Found::NotFound,
        other => other,
    };
    let file = match found {
        Ok(Entry::File(file)) => file,
        Ok(Entry::Dir | Entry::Missing) => return Found::NotFound,
        Err(error) => return Found::Error(error.to_string()),
    };
    // The headers a bucket stores the same file with.
    let kind = ObjectKind::of(&segments.join("/"));
    Found::File(Representation {
        etag: file.etag(),
        last_modified: file.modified,
        content: Payload::Bytes(file.bytes),
        content_type: HeaderValue::from_static(kind.content_type),
        cache_control: HeaderValue::from_static(kind.cache_control),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_folders_and_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("my log")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<!DOCTYPE html>").unwrap();
        std::fs::write(dir.path().join("my log/feed.xml"), "<rss/>").unwrap();
        std::fs::write(dir.path().join(".helio.lock"), "").unwrap();
        let files = StaticFiles::new(dir.path(), Arc::new(AtomicU64::new(0)));
        let get =
            |segments: &[&'static str], dir: bool| files.get(segments.iter().map(|s| Cow::Borrowed(*s)).collect(), dir);
        let Found::File(index) = get(&[], true).await else { panic!("no index") };
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert_eq!(index.content.len(), 15);
        let Found::File(feed) = get(&["my log", "feed.xml"], false).await else { panic!("no feed") };
        assert_eq!(feed.content_type, "application/rss+xml");
        assert!(feed.etag.is_some() && feed.last_modified.is_some());
        let Found::Redirect(location) = get(&["my log"], false).await else { panic!("no redirect") };
        assert_eq!(location, "my%20log/");
        assert!(matches!(get(&["my log"], true).await, Found::NotFound), "no index.html, no listing");
        assert!(matches!(get(&["my log", "feed.xml"], true).await, Found::NotFound));
        assert!(matches!(get(&[".helio.lock"], false).await, Found::NotFound));
        assert!(matches!(get(&["missing", "x"], false).await, Found::NotFound));
        assert!(matches!(get(&["index.html", "x"], false).await, Found::NotFound));
    }
}
