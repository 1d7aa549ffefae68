//! What subscribers and visitors read: feeds checked by independent parsers
//! (Python's feedparser and ElementTree), pages rendered by headless
//! Chromium, and the promise that a build with nothing new changes no file.

use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;
use rss::Channel;
use serde_json::Value;

use crate::support::*;

/// A log name that breaks anything unescaped: XML and HTML specials, both
/// quotes and a non-ASCII letter. The folder is the raw name; URLs
/// percent-encode it.
const HOSTILE: &str = "a&b <\"c'> é";
const HOSTILE_URL: &str = "a&b%20%3C%22c'%3E%20%C3%A9";
const FEEDS: &str = "https://feeds.helio.invalid/t";

/// A site with `demo` (two ranges of 1,024 entries and a bit), the hostile
/// log (one range), and optionally a log that fails.
struct Fixture {
    site: Site,
    demo: TestLog,
    hostile: TestLog,
    /// Where the failing log is supposed to be (it never exists).
    missing: PathBuf,
}

impl Fixture {
    fn new(with_failing_log: bool) -> Fixture {
        let site = Site::new();
        let demo = TestLog::with_seed(2 * 1024 + 100, 1);
        let hostile = TestLog::with_seed(1024 + 10, 2);
        // Its error message names this path, so the pages must escape it too.
        let missing = site.dir.path().join("<i>gone</i> & \"away\"");
        let fixture = Fixture { site, demo, hostile, missing };
        fixture.write_config(with_failing_log);
        fixture
    }

    fn write_config(&self, with_failing_log: bool) {
        let quoted = |text: &str| format!("'{}'", text.replace('\'', "''"));
        let log = |name: &str, dir: &Path, key: &str| {
            format!(
                "  - name: {}\n    log_url: {}\n    origin: {ORIGIN}\n    key: {key}\n",
                quoted(name),
                quoted(dir.to_str().unwrap())
            )
        };
        let mut yaml = format!(
            "entries_per_torrent: 1024\ntrackers: [udp://tracker.helio.invalid:1337/announce]\n\
             webseeds: [http://127.0.0.1:9/webseed/]\nfeed_url_base: {FEEDS}\nlogs:\n{}{}",
            log("demo", self.demo.path(), &self.demo.log.key),
            log(HOSTILE, self.hostile.path(), &self.hostile.log.key),
        );
        if with_failing_log {
            yaml.push_str(&log("broken", &self.missing, &self.demo.log.key));
        }
        self.site.write_config(&yaml);
    }

    fn out(&self) -> PathBuf {
        self.site.out()
    }

    fn torrents_json(&self, log: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.out().join(log).join("torrents.json")).unwrap()).unwrap()
    }
}

fn channel(path: &Path) -> Channel {
    Channel::read_from(&std::fs::read(path).unwrap()[..]).unwrap()
}

const FEEDPARSER: &str = r#"
import json, sys, feedparser
feed = feedparser.parse(sys.argv[1])
print(json.dumps({
    "bozo": bool(feed.bozo),
    "problem": str(feed.get("bozo_exception", "")),
    "title": feed.feed.get("title"),
    "updated": feed.feed.get("updated"),
    "entries": [{
        "title": e.get("title"),
        "id": e.get("id"),
        "guidislink": e.get("guidislink"),
        "published": e.get("published"),
        "enclosures": [{"href": x.get("href"), "length": x.get("length"), "type": x.get("type")}
                       for x in e.get("enclosures", [])],
        "infoHash": e.get("torrent_infohash"),
        "contentLength": e.get("torrent_contentlength"),
        "magnetURI": e.get("torrent_magneturi"),
        "fileName": e.get("torrent_filename"),
    } for e in feed.entries],
}))
"#;

const ELEMENTTREE: &str = r#"
import json, sys, xml.etree.ElementTree as ET
T = "{http://xmlns.ezrss.it/0.1/}"
channel = ET.parse(sys.argv[1]).getroot().find("channel")
print(json.dumps({
    "title": channel.findtext("title"),
    "link": channel.findtext("link"),
    "items": [{
        "title": i.findtext("title"),
        "guid": i.findtext("guid"),
        "isPermaLink": i.find("guid").get("isPermaLink"),
        "enclosure": i.find("enclosure").attrib,
        "infoHash": i.findtext(T + "infoHash"),
        "contentLength": i.findtext(T + "contentLength"),
        "magnetURI": i.findtext(T + "magnetURI"),
        "fileName": i.findtext(T + "fileName"),
    } for i in channel.findall("item")],
}))
"#;

#[test]
#[cfg_attr(not(has_py_feedparser), ignore = "needs Python's feedparser, not installed here (HELIO_E2E=1 requires it)")]
fn feedparser_and_elementtree_read_every_item_and_the_hostile_name_survives() {
    let test = "feedparser_and_elementtree_read_every_item_and_the_hostile_name_survives";
    let Some(python) = python_with("feedparser", test) else { return };
    let fixture = Fixture::new(false);
    fixture.site.build().ok();

    for (name, url_name, ranges) in [("demo", "demo", 2), (HOSTILE, HOSTILE_URL, 1)] {
        let feed = fixture.out().join(name).join("feed.xml");
        let listed = fixture.torrents_json(name);
        let listed = listed["torrents"].as_array().unwrap();
        assert_eq!(listed.len(), ranges);

        let parsed: Value = serde_json::from_str(&run_python(&python, FEEDPARSER, &[feed.to_str().unwrap()])).unwrap();
        assert_eq!(parsed["bozo"], false, "feedparser: {}", parsed["problem"]);
        assert_eq!(parsed["title"], format!("{name} tile torrents"));
        assert!(parsed["updated"].as_str().is_some_and(|d| d.ends_with("GMT")), "{parsed}");
        let entries = parsed["entries"].as_array().unwrap();
        assert_eq!(entries.len(), ranges);
        // Newest range first; each item matches what torrents.json says.
        for (entry, torrent) in entries.iter().zip(listed.iter().rev()) {
            let (start, end) = (torrent["start_index"].as_u64().unwrap(), torrent["end_index"].as_u64().unwrap() + 1);
            let file = format!("L01-{start}-{end}.torrent");
            let torrent_name = format!("{name}-L01-{start}-{end}");
            let size = std::fs::metadata(fixture.out().join(name).join(&file)).unwrap().len();
            assert_eq!(entry["title"], torrent_name.as_str());
            assert_eq!(entry["id"], torrent["infohash"]);
            assert_eq!(entry["guidislink"], false);
            assert!(entry["published"].as_str().is_some_and(|d| d.ends_with("GMT")), "{entry}");
            let url = format!("{FEEDS}/{url_name}/{file}");
            assert_eq!(
                entry["enclosures"],
                serde_json::json!([{"href": url, "length": size.to_string(), "type": "application/x-bittorrent"}])
            );
            assert_eq!(entry["infoHash"], torrent["infohash"]);
            assert_eq!(entry["contentLength"], torrent["data_size_bytes"].to_string());
            assert_eq!(entry["magnetURI"], torrent["magnet"]);
            assert_eq!(entry["fileName"], format!("{torrent_name}.torrent"));
            let magnet = entry["magnetURI"].as_str().unwrap();
            assert!(magnet.starts_with(&format!("magnet:?xt=urn:btih:{}&dn=", torrent["infohash"].as_str().unwrap())));
            for parameter in [
                "&tr=udp%3A%2F%2Ftracker.helio.invalid",
                "&ws=http%3A%2F%2F127.0.0.1%3A9%2Fwebseed%2F",
                "&xs=https%3A%2F%2F",
            ] {
                assert!(magnet.contains(parameter), "{parameter} missing from {magnet}");
            }
        }

        // A strict XML parser sees the same text: the escaping is right, not
        // just forgiving feedparser.
        let strict: Value = serde_json::from_str(&run_python(&python, ELEMENTTREE, &[feed.to_str().unwrap()])).unwrap();
        assert_eq!(strict["title"], format!("{name} tile torrents"));
        assert_eq!(strict["link"], format!("{FEEDS}/{url_name}/index.html"));
        let items = strict["items"].as_array().unwrap();
        assert_eq!(items.len(), ranges);
        for (item, entry) in items.iter().zip(entries) {
            assert_eq!(item["title"], entry["title"]);
            assert_eq!((&item["guid"], item["isPermaLink"].as_str()), (&entry["id"], Some("false")));
            assert_eq!(item["enclosure"]["url"], entry["enclosures"][0]["href"]);
            for field in ["infoHash", "contentLength", "magnetURI", "fileName"] {
                assert_eq!(item[field], entry[field], "{field}");
            }
        }
    }
    let magnet = fixture.torrents_json(HOSTILE)["torrents"][0]["magnet"].as_str().unwrap().to_string();
    assert!(magnet.contains("&dn=a%26b%20%3C%22c%27%3E%20%C3%A9-L01-0-1024&"), "{magnet}");
}

#[test]
fn a_second_build_changes_nothing_and_a_new_range_adds_one_item_on_top() {
    let mut fixture = Fixture::new(false);
    fixture.site.build().ok();
    let before = fixture.site.snapshot();
    let feed_path = fixture.out().join("demo/feed.xml");
    let first = channel(&feed_path);
    assert_eq!(first.items().len(), 2);

    let run = fixture.site.build();
    run.ok();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""), "nothing new is quiet");
    assert_eq!(fixture.site.snapshot(), before, "every output file is byte-identical");

    // lastBuildDate has one-second resolution: make sure the clock moved.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fixture.demo.resize(3 * 1024 + 1);
    fixture.site.build().ok();
    let after = channel(&feed_path);
    assert_eq!(after.items().len(), 3);
    assert_eq!(after.items()[0].title(), Some("demo-L01-2048-3072"));
    assert_eq!(&after.items()[1..], first.items(), "the older items are unchanged");
    assert!(after.last_build_date().is_some() && after.last_build_date() != first.last_build_date());
    let page = std::fs::read_to_string(fixture.out().join("demo/index.html")).unwrap();
    assert!(page.contains("href=\"L01-2048-3072.torrent\""), "{page}");
    // The other log's files did not change.
    let after_files = fixture.site.snapshot();
    for (path, bytes) in &before {
        if path.starts_with(HOSTILE) {
            assert_eq!(after_files.get(path), Some(bytes), "{}", path.display());
        }
    }
}

#[test]
fn a_failing_log_is_shown_on_every_page_until_it_recovers() {
    let fixture = Fixture::new(true);
    let run = fixture.site.build();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let status: Value =
        serde_json::from_slice(&std::fs::read(fixture.out().join("broken/status.json")).unwrap()).unwrap();
    let message = status["error"].as_str().unwrap().to_string();
    assert!(message.contains("gone</i>"), "{status}");
    let root = std::fs::read_to_string(fixture.out().join("index.html")).unwrap();
    assert!(root.contains("<tr class=\"failing\">"), "{root}");
    assert!(root.contains("<span class=\"badge failing\">failing</span> <span class=\"muted\">for <time"), "{root}");
    assert!(root.contains("&lt;i&gt;gone&lt;/i&gt; &amp; &quot;away&quot;"), "{root}");
    assert!(!root.contains("<i>"), "{root}");
    let before = fixture.site.snapshot();

    // The same failure again, then a run of the other logs only: nothing moves.
    assert_eq!(fixture.site.build().code, 1);
    assert_eq!(fixture.site.snapshot(), before, "a repeated failure keeps its first time");
    let config = fixture.site.config();
    let out = fixture.out();
    helio(&["build", "-c", config.to_str().unwrap(), "--log", "demo", out.to_str().unwrap()]).ok();
    assert_eq!(fixture.site.snapshot(), before, "a run of another log still shows the failure");

    // Fixed: the log builds and the failure is gone from the pages.
    std::fs::create_dir_all(&fixture.missing).unwrap();
    helio::fixture::generate::write_log(
        &fixture.missing,
        &helio::fixture::generate::LogSpec { origin: ORIGIN.into(), seed: 1, size: 10, gzip_data_tiles: false },
    )
    .unwrap();
    fixture.site.build().ok();
    let status: Value =
        serde_json::from_slice(&std::fs::read(fixture.out().join("broken/status.json")).unwrap()).unwrap();
    assert_eq!((&status["status"], &status["error"]), (&Value::from("ok"), &Value::Null), "{status}");
    let root = std::fs::read_to_string(fixture.out().join("index.html")).unwrap();
    assert!(!root.contains("failing</span>") && !root.contains("gone"), "{root}");
}

/// Renders `page` with headless Chromium and returns the serialized DOM.
fn dump_dom(chromium: &Path, profile: &Path, page: &Path) -> String {
    let output = chromium_command(chromium, profile).arg("--dump-dom").arg(file_url(page)).output().unwrap();
    assert!(output.status.success(), "chromium: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn file_url(path: &Path) -> String {
    let encoded: String = percent_encoding::utf8_percent_encode(path.to_str().unwrap(), URL_PATH).to_string();
    format!("file://{encoded}")
}

const URL_PATH: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Every `href` and `src` in a DOM Chromium serialized (attributes in double
/// quotes, `&` and `"` escaped).
fn references(dom: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in [" href=\"", " src=\""] {
        for (at, _) in dom.match_indices(attribute) {
            let rest = &dom[at + attribute.len()..];
            let value = &rest[..rest.find('"').unwrap()];
            found.push(value.replace("&quot;", "\"").replace("&amp;", "&"));
        }
    }
    found
}

#[test]
#[cfg_attr(not(has_chromium), ignore = "needs chromium, not installed here (HELIO_E2E=1 requires it)")]
fn chromium_renders_the_pages_with_no_broken_link_and_nothing_injected() {
    let test = "chromium_renders_the_pages_with_no_broken_link_and_nothing_injected";
    let Some(chromium) = tool("chromium", test) else { return };
    let fixture = Fixture::new(true);
    assert_eq!(fixture.site.build().code, 1);
    let profile = tempfile::tempdir().unwrap();
    let out = fixture.out();
    let pages = [
        out.join("index.html"),
        out.join("demo/index.html"),
        out.join(HOSTILE).join("index.html"),
        out.join("broken/index.html"),
    ];
    let mut checked = 0;
    for page in &pages {
        let dom = dump_dom(&chromium, profile.path(), page);
        assert!(dom.contains("</main>"), "{} did not render:\n{dom}", page.display());
        for reference in references(&dom) {
            if reference.starts_with("magnet:?") || reference.starts_with("http") {
                continue;
            }
            assert!(!reference.contains("://") && !reference.starts_with('/'), "{reference} is not relative");
            let path = reference.split(['#', '?']).next().unwrap();
            let decoded = percent_decode_str(path).decode_utf8().unwrap();
            let target = page.parent().unwrap().join(decoded.as_ref());
            assert!(target.is_file(), "{} links to {reference}, which does not exist", page.display());
            checked += 1;
        }
        // The hostile name and the failure message are text, not markup.
        assert!(!dom.contains("<i>"), "{}:\n{dom}", page.display());
        if page == &pages[0] || page == &pages[3] {
            assert!(dom.contains("&lt;i&gt;gone&lt;/i&gt; &amp; \"away\""), "{}:\n{dom}", page.display());
        }
        if page == &pages[0] || page == &pages[2] {
            assert!(dom.contains("a&amp;b &lt;\"c'&gt; é</"), "{}:\n{dom}", page.display());
        }
    }
    assert!(checked > 20, "only {checked} links checked");
    let hostile = dump_dom(&chromium, profile.path(), &pages[2]);
    assert_eq!(hostile.matches("<h1>").count(), 1);
    assert!(hostile.contains("<h1>a&amp;b &lt;\"c'&gt; é</h1>"), "{hostile}");

    // HELIO_SCREENSHOTS=<dir> keeps pictures of the pages for a person to judge.
    if let Some(dir) = std::env::var_os("HELIO_SCREENSHOTS").map(PathBuf::from) {
        std::fs::create_dir_all(&dir).unwrap();
        for (page, name) in [(&pages[0], "root"), (&pages[1], "log")] {
            for (scheme, flags) in [("light", &[][..]), ("dark", &["--force-dark-mode"][..])] {
                for (size, width) in [("wide", "1200,900"), ("phone", "390,1200")] {
                    let png = dir.join(format!("{name}-{scheme}-{size}.png"));
                    let status = chromium_command(&chromium, profile.path())
                        .args(flags)
                        .arg(format!("--window-size={width}"))
                        .arg(format!("--screenshot={}", png.display()))
                        .arg(file_url(page))
                        .output()
                        .unwrap();
                    assert!(status.status.success() && png.is_file(), "{}", png.display());
                }
            }
        }
    }
}
