//! The names of the files helio publishes, in one place, so that the config
//! can refuse a log name that would collide with one of them without knowing
//! how the site writes them. The tree itself is described in docs/spec.md §6.

/// The output folder's landing page, and each log's page.
pub const INDEX_HTML: &str = "index.html";
/// The stylesheet every page links.
pub const STYLE_CSS: &str = "style.css";
/// The all-logs RSS feed at the top, and each log's own.
pub const FEED_XML: &str = "feed.xml";
/// Every log's summary and health, at the top of the output.
pub const LOGS_JSON: &str = "logs.json";
/// The CT log list the config last read, kept beside `logs.json`.
pub const LOG_LIST_JSON: &str = "log-list.json";
/// A log's published torrents, in its folder.
pub const TORRENTS_JSON: &str = "torrents.json";
/// The checkpoint a log folder's torrents were proved against.
pub const CHECKPOINT: &str = "checkpoint";
/// A log's health, in its folder.
pub const STATUS_JSON: &str = "status.json";
/// The proof tiles a log folder keeps for `helio verify` (docs/spec.md §6.3).
pub const TILE_DIR: &str = "tile";

/// Files at the top of the output folder, beside the log folders: a log may
/// not be named after one of them.
pub const TOP_LEVEL: &[&str] = &[INDEX_HTML, STYLE_CSS, FEED_XML, LOGS_JSON, LOG_LIST_JSON];
