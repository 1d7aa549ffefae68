//! `/torrents/…`: the output directory (`torrent_dir`) as `helio build`
//! wrote it, with the content types feed readers and BitTorrent clients
//! expect. Folders answer with their `index.html`; hidden files (the build
//! lock, temporaries) are not served; files are read whole, from one open
//! handle, so a build renaming a new version into place never mixes two.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use hyper::header::HeaderValue;

use super::response::{Payload, Representation};
use crate::config::url_segment;

/// Larger files are not served: nothing helio writes comes close.
const MAX_FILE: u64 = 64 << 20;

pub struct StaticFiles {
    root: PathBuf,
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
        StaticFiles { root: root.to_path_buf(), meter }
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
        let mut path = self.root.clone();
        path.extend(segments.iter().map(|s| s.as_ref()));
        let last = segments.last().map(|s| s.to_string());
        tokio::task::spawn_blocking(move || read(&path, dir, last.as_deref()))
            .await
            .unwrap_or_else(|e| Found::Error(format!("reading failed: {e}")))
    }
}

fn read(path: &Path, dir: bool, last: Option<&str>) -> Found {
    let (file, meta) = match open(path) {
        Ok(Some(found)) => found,
        Ok(None) => return Found::NotFound,
        Err(error) => return Found::Error(error),
    };
    let (mut file, meta, path) = if meta.is_dir() {
        if !dir {
            return Found::Redirect(format!("{}/", url_segment(last.unwrap_or("torrents"))));
        }
        let index = path.join("index.html");
        match open(&index) {
            Ok(Some((file, meta))) => (file, meta, index),
            Ok(None) => return Found::NotFound,
            Err(error) => return Found::Error(error),
        }
    } else if dir {
        return Found::NotFound;
    } else {
        (file, meta, path.to_path_buf())
    };
    if !meta.is_file() {
        return Found::NotFound;
    }
    if meta.len() > MAX_FILE {
        return Found::Error(format!("{} is larger than {MAX_FILE} bytes", path.display()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    if let Err(error) = file.read_to_end(&mut bytes) {
        return Found::Error(format!("cannot read {}: {error}", path.display()));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let modified = meta.modified().ok();
    let stamp = modified.and_then(|m| m.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
    let etag = format!("\"{:x}-{:x}-{:x}\"", stamp.as_secs(), stamp.subsec_nanos(), bytes.len());
    Found::File(Representation {
        content: Payload::Bytes(Bytes::from(bytes)),
        content_type: HeaderValue::from_static(content_type(&name)),
        cache_control: HeaderValue::from_static(if name.ends_with(".torrent") {
            // A range's torrent is never rebuilt.
            "public, max-age=86400"
        } else {
            "public, max-age=60"
        }),
        etag: HeaderValue::from_str(&etag).ok(),
        last_modified: modified,
    })
}

/// Opens a path and reads its metadata from the same handle. `None` when
/// there is nothing there.
fn open(path: &Path) -> Result<Option<(File, std::fs::Metadata)>, String> {
    let missing =
        |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory);
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    };
    let meta = file.metadata().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Some((file, meta)))
}

/// The content type of a file `helio build` writes, by name.
pub fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("torrent") => "application/x-bittorrent",
        Some("xml") if name == "feed.xml" => "application/rss+xml",
        Some("rss") => "application/rss+xml",
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        None if name == "checkpoint" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type("L01-0-1048576.torrent"), "application/x-bittorrent");
        assert_eq!(content_type("feed.xml"), "application/rss+xml");
        assert_eq!(content_type("torrents.json"), "application/json");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("checkpoint"), "text/plain; charset=utf-8");
        assert_eq!(content_type("sitemap.xml"), "application/xml");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }

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
