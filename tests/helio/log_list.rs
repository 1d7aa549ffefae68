//! The CT log list as the source of the config: a list made by the test, its
//! logs generated and served on loopback, the list changing between runs
//! (a new shard, a rejected log, a retired one), the list out of reach, a
//! signed list, `helio init` with a list, and the mistakes that are usage
//! errors.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use helio::fixture::generate::{FixtureLog, LogSpec, write_log};
use helio::fixture::server::{LogServer, ServerOptions};
use serde_json::{Value, json};

use crate::support::*;

/// A log of the test's ecosystem: generated, served, and listed.
struct Listed {
    name: &'static str,
    _dir: tempfile::TempDir,
    log: FixtureLog,
    server: LogServer,
}

impl Listed {
    fn new(name: &'static str, size: u64, seed: u64) -> Listed {
        let dir = tempfile::tempdir().unwrap();
        let origin = format!("{name}.helio.invalid");
        let log = write_log(dir.path(), &LogSpec { origin, seed, size, gzip_data_tiles: true }).unwrap();
        let server = LogServer::start(dir.path(), ServerOptions::default()).unwrap();
        Listed { name, _dir: dir, log, server }
    }

    /// Its entry in a list's `tiled_logs`, in `state` (`None`: no state).
    fn entry(&self, state: Option<&str>) -> Value {
        let mut entry = json!({
            "description": self.name,
            "log_id": "",
            "key": self.log.key,
            "submission_url": format!("https://{}/", self.log.origin),
            "monitoring_url": self.server.url(),
            "mmd": 60,
        });
        if let Some(state) = state {
            entry["state"] = json!({ state: { "timestamp": "2026-01-01T00:00:00Z" } });
        }
        entry
    }

    fn requests(&self) -> usize {
        self.server.total_hits()
    }
}

fn list(entries: &[Value]) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "version": "1.0",
        "log_list_timestamp": "2026-12-01T00:00:00Z",
        "operators": [{ "name": "Test Operator", "email": ["ops@helio.invalid"], "logs": [], "tiled_logs": entries }]
    }))
    .unwrap()
}

/// A site whose config names the list at `source`.
fn site_with_list(source: &str, extra: &str) -> Site {
    let site = Site::new();
    site.write_config(&format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: []\n\
         feed_url_base: https://feeds.helio.invalid/t\nlog_list: '{source}'\n{extra}"
    ));
    site
}

fn logs_json(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("logs.json")).unwrap()).unwrap()
}

fn entry<'a>(logs: &'a Value, name: &str) -> &'a Value {
    logs["logs"].as_array().unwrap().iter().find(|log| log["name"] == name).unwrap_or(&Value::Null)
}

fn torrents(out: &Path, name: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(out.join(name))
        .map(|dir| dir.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    files.retain(|f| f.ends_with(".torrent"));
    files.sort();
    files
}

#[test]
fn usable_retired_and_rejected_logs_are_built_or_left_as_documented() {
    let live = Listed::new("live", 2 * 1024 + 10, 1);
    let old = Listed::new("old", 1024 + 300, 2);
    let bad = Listed::new("bad", 1024, 3);
    let soon = Listed::new("soon", 1024, 4);
    let staging = Listed::new("staging", 1024, 5);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.json");
    std::fs::write(
        &file,
        list(&[
            live.entry(Some("usable")),
            old.entry(Some("retired")),
            bad.entry(Some("rejected")),
            soon.entry(Some("pending")),
            staging.entry(None),
        ]),
    )
    .unwrap();
    let site = site_with_list(file.to_str().unwrap(), "");
    site.build().ok();
    let out = site.out();
    assert_eq!(torrents(&out, "live"), ["L01-0-1024.torrent", "L01-1024-2048.torrent"]);
    // Retired: final by itself, its last entries in one last torrent.
    assert_eq!(torrents(&out, "old"), ["L01-0-1024.torrent", "L01-1024-1324.torrent"]);
    for left in [&bad, &soon, &staging] {
        assert_eq!(left.requests(), 0, "{} is not in the selection: never asked", left.name);
        assert!(!out.join(left.name).exists(), "{}", left.name);
    }
    let logs = logs_json(&out);
    let names: Vec<&str> = logs["logs"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["live", "old"]);
    assert_eq!(entry(&logs, "old")["status"], "finished");
    // The whole selection, states widened: the pending and stateless ones too.
    let wide = site_with_list(file.to_str().unwrap(), "log_list_states: [usable, pending, none]\n");
    wide.build().ok();
    let names: Vec<String> = std::fs::read_dir(wide.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.contains('.'))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(names, ["live", "soon", "staging"]);
    assert_eq!(bad.requests(), 0);
}

#[test]
fn a_list_that_changes_between_runs_adds_shards_archives_rejected_logs_and_finishes_retired_ones() {
    let a = Listed::new("a", 1024 + 7, 11);
    let b = Listed::new("b", 1024 + 20, 12);
    let c = Listed::new("c", 2 * 1024, 13);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.json");
    std::fs::write(&file, list(&[a.entry(Some("usable")), b.entry(Some("usable"))])).unwrap();
    let site = site_with_list(file.to_str().unwrap(), "");
    let out = site.out();
    let at = |t: u64| [("SOURCE_DATE_EPOCH", t.to_string())];
    let build = |t: u64| {
        let env = at(t);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        helio_with_env(&["build", "-c", site.config().to_str().unwrap(), out.to_str().unwrap()], &env)
    };
    build(1_795_000_000).ok();
    assert_eq!(torrents(&out, "a"), ["L01-0-1024.torrent"]);
    assert_eq!(torrents(&out, "b"), ["L01-0-1024.torrent"]);
    let a_before: Vec<_> = snapshot(&out.join("a")).into_iter().filter(|(p, _)| !p.ends_with("status.json")).collect();

    // Six months on: a is rejected, b retired, and a new shard c is listed.
    std::fs::write(&file, list(&[a.entry(Some("rejected")), b.entry(Some("retired")), c.entry(Some("usable"))]))
        .unwrap();
    let asked = a.requests();
    let run = build(1_795_003_600);
    run.ok();
    assert_eq!(a.requests(), asked, "a left the selection: not fetched at all");
    assert_eq!(torrents(&out, "c"), ["L01-0-1024.torrent", "L01-1024-2048.torrent"], "the new shard is published");
    assert_eq!(torrents(&out, "b"), ["L01-0-1024.torrent", "L01-1024-1044.torrent"], "retired: its final torrent");
    let a_after: Vec<_> = snapshot(&out.join("a")).into_iter().filter(|(p, _)| !p.ends_with("status.json")).collect();
    let pages = |files: &[(PathBuf, Vec<u8>)]| files.iter().filter(|(p, _)| !p.ends_with("index.html")).count();
    assert_eq!(pages(&a_after), pages(&a_before), "a's torrents and feeds stay");
    let logs = logs_json(&out);
    let archived = entry(&logs, "a");
    assert_eq!(archived["status"], "archived", "{archived}");
    assert_eq!(archived["reason"], "left out of the log list's selection: its state is rejected", "{archived}");
    assert_eq!(archived["torrents"], 1);
    assert_eq!(entry(&logs, "b")["status"], "finished");
    assert_eq!(entry(&logs, "c")["status"], "ok");
    let page = std::fs::read_to_string(out.join("a/index.html")).unwrap();
    assert!(page.contains("<strong>Archived:</strong> no longer built (left out of the log list"), "{page}");
    let root = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(root.contains("<tr class=\"archived\">"), "{root}");
    // helio serve still seeds the archived log's torrents.
    let config = site.config();
    let args = ["serve", "-c", config.to_str().unwrap(), out.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let served = Listening::start(&args, &[], Duration::from_secs(20));
    let readme = ureq::get(&format!("{}webseed/a/a-L01-0-1024/README.md", served.url())).call().unwrap();
    assert_eq!(readme.status(), 200);
    let tile = ureq::get(&format!("{}webseed/a/a-L01-0-1024/tile/data/000", served.url())).call().unwrap();
    assert_eq!(tile.status(), 200);
    drop(served);
    let asked = a.requests();

    // Nothing new a run later: the archived log costs nothing and writes nothing.
    let before = snapshot(&out);
    build(1_795_003_600).ok();
    assert_eq!(snapshot(&out), before);
    assert_eq!(a.requests(), asked);

    // Gone from the list altogether: still archived, saying so.
    std::fs::write(&file, list(&[b.entry(Some("retired")), c.entry(Some("usable"))])).unwrap();
    build(1_795_007_200).ok();
    assert_eq!(entry(&logs_json(&out), "a")["reason"], "no longer in the CT log list");
    assert_eq!(a.requests(), asked);
}

#[test]
fn a_list_at_a_url_is_asked_for_only_if_it_changed_and_its_last_good_copy_stands_in_when_it_is_out_of_reach() {
    let live = Listed::new("live", 1024 + 3, 21);
    let lists = tempfile::tempdir().unwrap();
    std::fs::write(lists.path().join("all_logs_list.json"), list(&[live.entry(Some("usable"))])).unwrap();
    let server = LogServer::start(lists.path(), ServerOptions::default()).unwrap();
    let url = format!("{}all_logs_list.json", server.url());
    let site = site_with_list(&url, "");
    site.build().ok();
    let copy: Value = serde_json::from_slice(&std::fs::read(site.out().join("log-list.json")).unwrap()).unwrap();
    assert_eq!(copy["source"], url.as_str());
    assert!(copy["etag"].is_string(), "{copy}");
    assert_eq!(copy["list"]["operators"][0]["tiled_logs"][0]["description"], "live");

    // Unchanged: a conditional request, a 304, nothing written.
    let before = snapshot(&site.out());
    let run = site.build();
    run.ok();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""), "quiet: nothing new");
    let asked = server.requests();
    let last = asked.last().unwrap();
    assert_eq!(last.path, "all_logs_list.json");
    assert_eq!(last.if_none_match.as_ref(), copy["etag"].as_str().map(str::to_string).as_ref());
    assert_eq!(snapshot(&site.out()), before);

    // Out of reach: the last good copy, one warning, the logs still built.
    drop(server);
    live.server.clear_fault();
    let run = site.build();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("cannot read the log list")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains(&url) && warnings[0].contains("using the last good copy (version 1.0"),
        "{}",
        warnings[0]
    );
    assert_eq!(logs_json(&site.out())["logs"][0]["name"], "live");
    // helio serve reads the same copy: it serves the list's log.
    let (config, out) = (site.config(), site.out());
    let args = ["serve", "-c", config.to_str().unwrap(), out.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let served = Listening::start(&args, &[], Duration::from_secs(20));
    let readme = ureq::get(&format!("{}webseed/live/live-L01-0-1024/README.md", served.url())).call().unwrap();
    assert_eq!(readme.status(), 200);
    drop(served);

    // Without a copy there is nothing to fall back on: the run fails, in one
    // line, and so does helio serve of that folder.
    let fresh = site.dir.path().join("fresh");
    for command in ["build", "serve"] {
        let mut args = vec![command, "-c", config.to_str().unwrap(), fresh.to_str().unwrap()];
        if command == "serve" {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        let run = helio(&args);
        assert_eq!(run.code, 1, "helio {command}: {}", run.stderr);
        assert!(run.stderr.starts_with("helio: cannot read the log list: "), "helio {command}: {}", run.stderr);
        assert_eq!(run.stderr.lines().filter(|l| l.starts_with("helio: ")).count(), 1, "{}", run.stderr);
    }
}

#[test]
fn entries_of_the_config_override_logs_of_the_list_by_name_and_add_their_own() {
    let live = Listed::new("live", 2 * 1024, 31);
    let own = TestLog::new(1024);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.json");
    std::fs::write(&file, list(&[live.entry(Some("usable"))])).unwrap();
    let site = site_with_list(
        file.to_str().unwrap(),
        &format!(
            "logs:\n  - name: live\n    format: hybrid\n  - name: mine\n    log_url: {}\n    origin: {ORIGIN}\n    key: {}\n",
            own.path().display(),
            own.log.key
        ),
    );
    site.build().ok();
    let torrents =
        serde_json::from_slice::<Value>(&std::fs::read(site.out().join("live/torrents.json")).unwrap()).unwrap();
    assert!(torrents["torrents"][0]["infohash_v2"].is_string(), "the override made it hybrid: {torrents}");
    assert!(site.out().join("mine/L01-0-1024.torrent").exists(), "an entry of its own is added");
    let listed = helio(&["logs", "-c", site.config().to_str().unwrap(), "--json"]);
    listed.ok();
    let logs: Value = serde_json::from_str(listed.stdout.trim()).unwrap();
    let names: Vec<&str> = logs.as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["live", "mine"], "helio logs lists the list's logs: {logs}");
    assert_eq!(logs[0]["format"], "hybrid");

    // An override that names no log of the list and has no log_url of its own.
    let typo = site_with_list(file.to_str().unwrap(), "logs:\n  - name: lvie\n    format: hybrid\n");
    let run = typo.build();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("logs[0].log_url: missing, and the log list has no log named \"lvie\" to take it from"),
        "{}",
        run.stderr
    );
}

#[test]
#[cfg_attr(not(has_openssl), ignore = "needs openssl, not installed here (HELIO_E2E=1 requires it)")]
fn a_signed_list_is_used_only_when_its_signature_verifies() {
    let test = "a_signed_list_is_used_only_when_its_signature_verifies";
    let Some(openssl) = tool("openssl", test) else { return };
    let live = Listed::new("live", 1024 + 1, 41);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log_list.json");
    let bytes = list(&[live.entry(Some("usable"))]);
    std::fs::write(&file, &bytes).unwrap();
    let run = |args: &[&str]| {
        let status = Command::new(&openssl).args(args).current_dir(dir.path()).output().unwrap();
        assert!(status.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&status.stderr));
    };
    for (kind, generate) in [
        ("rsa", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key"][..]),
        ("ec", &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.key"][..]),
    ] {
        run(generate);
        let key = format!("{kind}.key");
        let public = format!("{kind}.pem");
        run(&["pkey", "-in", &key, "-pubout", "-out", &public]);
        run(&["dgst", "-sha256", "-sign", &key, "-out", "log_list.sig", "log_list.json"]);
        let pem = std::fs::read_to_string(dir.path().join(&public)).unwrap();
        let extra = format!(
            "log_list_signature: '{}'\nlog_list_key: |\n{}",
            dir.path().join("log_list.sig").display(),
            pem.lines().map(|l| format!("  {l}\n")).collect::<String>()
        );
        let site = site_with_list(file.to_str().unwrap(), &extra);
        site.build().ok();
        assert!(site.out().join("live/L01-0-1024.torrent").exists(), "{kind}: a list that verifies is used");

        // One byte changed after signing: refused, the last good copy stands in.
        let mut tampered = bytes.clone();
        let at = tampered.iter().position(|&b| b == b'5').unwrap();
        tampered[at] = b'6';
        std::fs::write(&file, &tampered).unwrap();
        let again = site.build();
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert!(again.stderr.contains("does not verify"), "{kind}: {}", again.stderr);
        let fresh = site.dir.path().join("fresh");
        let refused = helio(&["build", "-c", site.config().to_str().unwrap(), fresh.to_str().unwrap()]);
        assert_eq!(refused.code, 1, "{kind}: {}", refused.stderr);
        assert!(!fresh.join("live").exists(), "{kind}: nothing built from a list that does not verify");
        std::fs::write(&file, &bytes).unwrap();
    }
}

#[test]
fn init_writes_a_config_that_builds_as_written_and_gives_up_on_an_unreachable_list_in_time() {
    let live = Listed::new("live", 1024 + 9, 51);
    let soon = Listed::new("soon", 1024, 52);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.json");
    std::fs::write(&file, list(&[live.entry(Some("usable")), soon.entry(Some("pending"))])).unwrap();

    let config = dir.path().join("helio.yaml");
    let init = helio(&[
        "init",
        "-c",
        config.to_str().unwrap(),
        "--log-list",
        file.to_str().unwrap(),
        "--contact",
        "ops@helio.invalid",
    ]);
    init.ok();
    assert!(init.stdout.contains("with 1 log from the log list"), "{}", init.stdout);
    assert!(init.stdout.contains("left out 1 of the list's logs: 1 (its state is pending)"), "{}", init.stdout);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(&format!("log_list: \"{}\"", file.display())), "{text}");
    let run = helio(&["build", "-c", config.to_str().unwrap()]);
    run.ok();
    let logs = logs_json(&dir.path().join("torrents"));
    assert_eq!(logs["logs"][0]["name"], "live");
    assert_eq!(logs["logs"][0]["status"], "ok");
    assert_eq!(soon.requests(), 0);

    // Without --contact: the first build stops on that key alone, in one line.
    let bare = dir.path().join("bare.yaml");
    helio(&["init", "-c", bare.to_str().unwrap(), "--log-list", file.to_str().unwrap()]).ok();
    let run = helio(&["build", "-c", bare.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("scraper_contact_email: required because live of the log list"), "{}", run.stderr);

    // The expanded form lists the logs themselves.
    let expanded = dir.path().join("expanded.yaml");
    let args = ["init", "-c", expanded.to_str().unwrap(), "--log-list", file.to_str().unwrap(), "--expand"];
    helio(&[&args[..], &["--contact", "ops@helio.invalid", "--states", "usable,pending"]].concat()).ok();
    let text = std::fs::read_to_string(&expanded).unwrap();
    assert!(text.contains("  - name: \"live\"") && text.contains("  - name: \"soon\""), "{text}");
    assert!(!text.contains("log_list:"), "{text}");

    // Offline: one line naming the URL, within the short budget.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{closed}/all_logs_list.json");
    let started = Instant::now();
    let offline = dir.path().join("offline.yaml");
    let run = helio(&["init", "-c", offline.to_str().unwrap(), "--log-list", &url]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(took < Duration::from_secs(15), "gave up after {took:?}");
    assert!(run.stderr.starts_with(&format!("helio: cannot read the log list: {url}: ")), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!offline.exists(), "nothing written");
    let bad_state = helio(&["init", "-c", offline.to_str().unwrap(), "--log-list", &url, "--states", "live"]);
    assert_eq!(bad_state.code, 2, "{}", bad_state.stderr);
}

#[test]
fn near_misses_of_a_bucket_and_a_url_without_its_scheme_are_usage_errors_that_write_nothing() {
    let log = TestLog::new(1024);
    let site = Site::new();
    site.config_for("test", log.path().to_str().unwrap(), &log.log, "");
    let work = site.dir.path();
    for (target, meant) in
        [("s3:/bucket/x", "s3://bucket/x"), ("s3:bucket/x", "s3://bucket/x"), ("S3://bucket", "s3://bucket")]
    {
        let run = Command::new(env!("CARGO_BIN_EXE_helio"))
            .args(["build", "-c", site.config().to_str().unwrap(), target])
            .current_dir(work)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{target}: {stderr}");
        assert!(stderr.contains(&format!("did you mean \"{meant}\"")), "{target}: {stderr}");
        let created: Vec<String> = std::fs::read_dir(work)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.to_ascii_lowercase().starts_with("s3"))
            .collect();
        assert!(created.is_empty(), "{target}: wrote {created:?}");
    }
    // No AWS credentials anywhere: one line naming where they were looked
    // for (the instance metadata service asked once, briefly), exit 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_helio"));
    command.args(["build", "-c", site.config().to_str().unwrap(), "s3://helio-nowhere/site"]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("http://127.0.0.1:{closed}"))
        .env("HELIO_RETRY_BUDGET", "2");
    let started = Instant::now();
    let run = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("helio: s3://helio-nowhere/site at "), "{stderr}");
    assert!(
        stderr.contains(
            "no AWS credentials: looked for AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a web identity token"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("the instance metadata service (http://127.0.0.1:{closed}/latest/api/token")));
    assert!(!stderr.contains("169.254.169.254"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let schemeless = Site::new();
    schemeless.config_for("test", "mon.sycamore.ct.letsencrypt.org/2026h1/", &log.log, "");
    let run = schemeless.build();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("did you mean \"https://mon.sycamore.ct.letsencrypt.org/2026h1/\"?"), "{}", run.stderr);
    assert!(!schemeless.out().exists(), "nothing written");
}

#[test]
fn the_example_config_in_contrib_names_googles_list_and_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/helio.yaml");
    let config = helio::config::Config::load(&path).unwrap();
    let list = config.log_list.as_ref().unwrap();
    assert_eq!(list.source, helio::config::log_list::DEFAULT_LOG_LIST);
    assert_eq!(list.selection, helio::config::log_list::Selection::default());
    assert_eq!(config.alert_after, Some(Duration::from_secs(3 * 3600)));
}
