//! Hostile inputs a build must survive with a clear error and bounded time
//! and memory: lying checkpoints, YAML bombs, redirects off the web, a file
//! where the output folder should be, a log that resets every connection.
//! The risky ones run under a memory limit, so a regression fails the test
//! instead of taking the machine down.

use std::process::Command;
use std::time::{Duration, Instant};

use helio::fixture::server::Fault;

use crate::support::*;

/// Runs `helio ARGS` with its address space limited to `limit_mb`.
fn helio_limited(limit_mb: u64, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut script = format!("ulimit -v {} && exec \"$0\"", limit_mb * 1024);
    for i in 1..=args.len() {
        script.push_str(&format!(" \"${i}\""));
    }
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(script).arg(env!("CARGO_BIN_EXE_helio")).args(args);
    for var in ["HELIO_CONFIG", "HELIO_LOG", "RUST_LOG"] {
        sh.env_remove(var);
    }
    sh.env("HELIO_RETRY_BUDGET", "3");
    for (key, value) in env {
        sh.env(key, value);
    }
    finish(sh.output().unwrap())
}

#[test]
fn a_checkpoint_claiming_2_to_the_63_entries_fails_its_log_fast_and_alone() {
    let site = Site::new();
    let big = site.dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    let root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    std::fs::write(
        big.join("checkpoint"),
        format!("big.invalid\n9223372036854775808\n{root}\n\n— big.invalid AAAAAAAAAA==\n"),
    )
    .unwrap();
    let good = TestLog::new(1024);
    site.write_config(&format!(
        "entries_per_torrent: 1024\ntrackers: []\nlogs:\n  - {{name: big, log_url: big}}\n  \
         - {{name: good, log_url: '{}', origin: {ORIGIN}, key: '{}'}}\n",
        good.path().display(),
        good.log.key
    ));
    let started = Instant::now();
    let run = helio_limited(2048, &["build", "-c", site.config().to_str().unwrap(), site.out().to_str().unwrap()], &[]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(run.stderr.contains("log big: "), "{}", run.stderr);
    assert!(run.stderr.contains("helio: 1 of 2 logs failed: big"), "{}", run.stderr);
    assert!(site.out().join("good/L01-0-1024.torrent").exists(), "the other log is still published");
}

#[test]
fn yaml_bombs_are_refused_with_one_line_in_bounded_time_and_memory() {
    let site = Site::new();
    let big = "x".repeat(1 << 20);
    let aliases = vec!["*a"; 20_000].join(", ");
    let cases = [
        (
            format!("data_dir: &a \"{big}\"\nlogs:\n- {{name: n, log_url: /x, trackers: [{aliases}]}}\n"),
            "expands to more than 16 MiB of text",
        ),
        (format!("logs: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)), "collections nested more than 64 deep"),
        (format!("logs: {}1{}\n", "{a: ".repeat(100_000), "}".repeat(100_000)), "collections nested more than 64 deep"),
    ];
    for (yaml, expected) in cases {
        site.write_config(&yaml);
        let started = Instant::now();
        let run =
            helio_limited(512, &["build", "-c", site.config().to_str().unwrap(), site.out().to_str().unwrap()], &[]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
        assert!(!site.out().exists(), "nothing written");
    }
}

#[test]
fn a_redirect_off_the_web_is_named_as_such() {
    let log = TestLog::new(1024);
    let server = log.serve();
    server.set_fault(|path, _| {
        (path == "checkpoint").then(|| Fault::Status {
            code: 302,
            headers: vec![("Location".into(), "file:///etc/passwd".into())],
            body: vec![],
        })
    });
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "");
    let run = site.build();
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "{}checkpoint: redirected to \"file:///etc/passwd\", which is not an http(s) URL",
            server.url()
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("too many redirects"), "{}", run.stderr);
}

#[test]
fn an_http_redirect_is_followed() {
    let log = TestLog::new(1024);
    let server = log.serve();
    let target = server.url();
    server.set_fault(move |path, _| {
        (path == "moved/checkpoint").then(|| Fault::Status {
            code: 301,
            headers: vec![("Location".into(), format!("{target}checkpoint"))],
            body: vec![],
        })
    });
    let site = Site::new();
    // Only the checkpoint is redirected; the tiles then 404 under moved/.
    site.config_for("test", &format!("{}moved/", server.url()), &log.log, "");
    let run = site.build();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("moved/tile/"), "the checkpoint came through the redirect: {}", run.stderr);
}

#[test]
fn a_file_where_the_output_folder_should_be_is_named() {
    let log = TestLog::new(1024);
    let site = Site::new();
    site.config_for("test", log.path().to_str().unwrap(), &log.log, "");
    let file = site.dir.path().join("passwd");
    std::fs::write(&file, "root:x:0:0\n").unwrap();
    let run = helio(&["build", "-c", site.config().to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.trim(), format!("helio: cannot write into {}: it is a file, not a folder", file.display()));
}

#[test]
fn a_log_that_resets_every_body_is_given_up_on_within_the_short_budget() {
    let log = TestLog::new(1024);
    let server = log.serve();
    server.set_fault(|path, _| path.starts_with("tile/data/").then_some(Fault::Truncate));
    let site = Site::new();
    site.config_for("test", &server.url(), &log.log, "retry_budget: 60s\nunreachable_budget: 2s\n");
    let started = Instant::now();
    let run = helio_with_env(
        &["build", "-c", site.config().to_str().unwrap(), site.out().to_str().unwrap()],
        &[("HELIO_RETRY_BUDGET", "100")],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(took < Duration::from_secs(15), "not the whole 60 s budget: {took:?}\n{}", run.stderr);
    assert!(run.stderr.contains("tile/data/"), "{}", run.stderr);
}
