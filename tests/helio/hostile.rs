//! Hostile inputs a build must survive with a clear error and bounded time
//! and memory: lying checkpoints, YAML bombs, redirects off the web, a file
//! where the output folder should be, a log that resets every connection, a
//! FIFO wherever helio reads a file, malformed settings in the environment.
//! The risky ones run under a memory limit, so a regression fails the test
//! instead of taking the machine down, or under a time limit, so that a
//! hang fails it instead of holding the suite.

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

/// A log built into a site, with its first range laid out as a client saves it.
fn downloaded_range() -> (TestLog, Site, tempfile::TempDir, std::path::PathBuf) {
    let log = TestLog::new(2 * 1024 + 10);
    let site = Site::new();
    site.config_for("test", log.path().to_str().unwrap(), &log.log, "");
    site.build().ok();
    let downloads = tempfile::tempdir().unwrap();
    let readme = format!("LOG_URL: {}\n", log.path().display());
    let folder = lay_out(log.path(), &site.torrent("test", 0, 1024), readme.as_bytes(), downloads.path());
    (log, site, downloads, folder)
}

#[test]
fn a_fifo_anywhere_helio_reads_is_refused_at_once() {
    let limit = Duration::from_secs(20);
    let (log, site, downloads, folder) = downloaded_range();
    let site_dir = site.out().join("test");
    let key = log.log.key.clone();
    let verify = |site: &std::path::Path| {
        helio_within(
            &["verify", downloads.path().to_str().unwrap(), "--site", site.to_str().unwrap(), "--key", &key],
            &[],
            limit,
        )
    };

    // A downloaded tile.
    let tile = folder.join("tile/data/001");
    let bytes = std::fs::read(&tile).unwrap();
    mkfifo(&tile);
    let run = verify(&site_dir);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("tile/data/001: not a regular file"), "{}", run.stderr);
    let run = helio_within(
        &[
            "mirror",
            downloads.path().to_str().unwrap(),
            "--site",
            site_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
        limit,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("tile/data/001: not a regular file"), "{}", run.stderr);
    std::fs::remove_file(&tile).unwrap();
    std::fs::write(&tile, &bytes).unwrap();

    // The --site folder's checkpoint.
    let copy = tempfile::tempdir().unwrap();
    for (relative, bytes) in snapshot(&site_dir) {
        let target = copy.path().join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
    mkfifo(&copy.path().join("checkpoint"));
    let run = verify(copy.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("checkpoint: not a regular file"), "{}", run.stderr);

    // A --resume-from folder's torrents.json.
    let resumed = Site::new();
    resumed.config_for("test", log.path().to_str().unwrap(), &log.log, "");
    let published = tempfile::tempdir().unwrap();
    std::fs::create_dir(published.path().join("test")).unwrap();
    mkfifo(&published.path().join("test/torrents.json"));
    let config = resumed.config();
    let out = resumed.out();
    let args = ["build", "-c", config.to_str().unwrap(), out.to_str().unwrap()];
    let run = helio_within(&[&args[..], &["--resume-from", published.path().to_str().unwrap()]].concat(), &[], limit);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("torrents.json: not a regular file"), "{}", run.stderr);

    // The config file, and the state in the output folder.
    let fifo_config = resumed.dir.path().join("fifo.yaml");
    mkfifo(&fifo_config);
    let run = helio_within(&["build", "-c", fifo_config.to_str().unwrap(), out.to_str().unwrap()], &[], limit);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("fifo.yaml: cannot read the config file: not a regular file"), "{}", run.stderr);
    std::fs::create_dir_all(out.join("test")).unwrap();
    mkfifo(&out.join("test/torrents.json"));
    let run = helio_within(&args, &[], limit);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("torrents.json: not a regular file"), "{}", run.stderr);
}

#[test]
fn a_tile_swapped_for_a_fifo_never_holds_a_mirror_thread() {
    let (log, site, downloads, folder) = downloaded_range();
    let site_dir = site.out().join("test");
    let mirror = Listening::start(
        &[
            "mirror",
            downloads.path().to_str().unwrap(),
            "--site",
            site_dir.to_str().unwrap(),
            "--key",
            &log.log.key,
            "--listen",
            "127.0.0.1:0",
            "--cache-mb",
            "0",
        ],
        &[],
        Duration::from_secs(60),
    );
    mkfifo(&folder.join("tile/data/001"));
    // More requests than the mirror has threads to read files with.
    let started = Instant::now();
    for _ in 0..80 {
        let reply = helio::fixture::wire::request(mirror.addr, "GET", "/tile/data/001", &[]).unwrap();
        assert_eq!(reply.status, 502, "{}", String::from_utf8_lossy(&reply.body));
    }
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    // A tile that shares no piece with it is served as ever.
    let reply = helio::fixture::wire::request(mirror.addr, "GET", "/tile/data/003", &[]).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(mirror.terminate(), 0);
}

#[test]
fn malformed_settings_are_one_line_and_exit_2_never_a_panic() {
    let site = Site::new();
    let log = TestLog::new(256);
    site.config_for("test", log.path().to_str().unwrap(), &log.log, "");
    let config = site.config().to_str().unwrap().to_string();
    let out = site.out();
    let out = out.to_str().unwrap();
    let dead = "http://127.0.0.1:1";
    // Everything an operator could get wrong in the environment, with the
    // status it must give: 2 (usage) unless the value is well-formed and
    // the bucket then cannot be reached (1).
    let environment: &[(&[(&str, &str)], i32)] = &[
        (&[("AWS_ENDPOINT_URL", "http://127.0.0.1:99999")], 2),
        (&[("AWS_ENDPOINT_URL", "not a url")], 2),
        (&[("AWS_ENDPOINT_URL", "http://[::1")], 2),
        (&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1/ x")], 2),
        (&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1\n")], 2),
        (&[("AWS_ENDPOINT_URL", "ftp://127.0.0.1/")], 2),
        (&[("AWS_ENDPOINT_URL", "http://user:pw@127.0.0.1:1")], 2),
        (&[("AWS_ENDPOINT_URL_S3", "http://\u{1b}[31mred")], 2),
        (&[("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE\n")], 2),
        (&[("AWS_SECRET_ACCESS_KEY", "secret\n")], 2),
        (&[("AWS_SESSION_TOKEN", "token\n")], 2),
        (&[("AWS_REGION", "us-east-1\n")], 2),
        (&[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "eu west")], 2),
        (&[("AWS_CHECKSUM_ALGORITHM", "nonsense")], 2),
        (&[("AWS_SKIP_SIGNATURE", "maybe")], 2),
        // Flags object_store reads as false unless "true".
        (&[("AWS_ALLOW_HTTP", "perhaps")], 1),
        (&[("AWS_CONDITIONAL_PUT", "nonsense")], 2),
        (&[("AWS_COPY_IF_NOT_EXISTS", "nonsense")], 2),
        (&[("AWS_UNSIGNED_PAYLOAD", "x")], 2),
        (&[("AWS_IMDSV1_FALLBACK", "x")], 1),
        (&[("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "x")], 1),
        (&[("AWS_SERVER_SIDE_ENCRYPTION", "nonsense")], 2),
        (&[("AWS_S3_EXPRESS", "x")], 2),
        (&[("AWS_REQUEST_PAYER", "x")], 2),
        (&[("AWS_METADATA_ENDPOINT", "not a url")], 1),
        (&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/\n")], 2),
        (&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent"), ("AWS_ROLE_ARN", "arn:x")], 1),
        (&[("HELIO_RETRY_BUDGET", "1e20")], 2),
        (&[("HELIO_RETRY_BUDGET", "inf")], 2),
        (&[("HELIO_RETRY_BUDGET", "-1")], 2),
        (&[("HELIO_RETRY_BUDGET", "three")], 2),
        (&[("SOURCE_DATE_EPOCH", "99999999999999999999")], 2),
        (&[("SOURCE_DATE_EPOCH", "253402300800")], 2),
        (&[("SOURCE_DATE_EPOCH", "yesterday")], 2),
        (&[("HELIO_LOG", "helio=[")], 2),
        (&[("HELIO_LOG", "helio=nonsense")], 2),
    ];
    let mut failures = Vec::new();
    for (env, code) in environment {
        let mut with: Vec<(&str, &str)> = vec![
            ("AWS_ENDPOINT_URL", dead),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "us-east-1"),
            ("HELIO_RETRY_BUDGET", "1"),
        ];
        with.retain(|(name, _)| !env.iter().any(|(set, _)| set == name));
        with.extend(env.iter().copied());
        let run = helio_within(&["build", "-c", &config, "s3://helio-test/site"], &with, Duration::from_secs(30));
        if let Err(failure) = std::panic::catch_unwind(|| assert_one_line(&run, *code, &format!("{env:?}"))) {
            failures.push(failure.downcast_ref::<String>().cloned().unwrap_or_default());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The same settings of helio's own with a folder, and for every command.
    for (name, value) in [("HELIO_RETRY_BUDGET", "1e20"), ("SOURCE_DATE_EPOCH", "-5"), ("HELIO_LOG", "=[")] {
        for args in [
            vec!["build", "-c", config.as_str(), out],
            vec!["serve", "-c", config.as_str(), "--listen", "127.0.0.1:0"],
            vec!["verify", out, "--site", out],
        ] {
            let run = helio_within(&args, &[(name, value)], Duration::from_secs(30));
            assert_one_line(&run, 2, &format!("{name}={value:?} {args:?}"));
            assert!(run.stderr.contains(name), "{}", run.stderr);
        }
    }
    // Durations in the config and on the command line that would overflow a clock.
    for (yaml, message) in [
        ("max_time: 600000000y\n", "max_time: "),
        ("retry_budget: 18446744073709551615\n", "retry_budget: "),
        ("unreachable_budget: 100000y\n", "unreachable_budget: "),
    ] {
        let text = std::fs::read_to_string(&config).unwrap();
        let broken = site.dir.path().join("broken.yaml");
        std::fs::write(&broken, format!("{yaml}{text}")).unwrap();
        let run = helio_within(&["build", "-c", broken.to_str().unwrap(), out], &[], Duration::from_secs(30));
        assert_one_line(&run, 2, yaml);
        assert!(run.stderr.contains(message) && run.stderr.contains("longer than ten years"), "{}", run.stderr);
    }
    let run = helio_within(&["build", "-c", &config, out, "--max-time", "500000000y"], &[], Duration::from_secs(30));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// No panic, the expected status, and one `helio:` line that ends stderr.
fn assert_one_line(run: &Run, code: i32, case: &str) {
    assert!(!run.stderr.contains("panicked"), "{case}: {}", run.stderr);
    assert_eq!(run.code, code, "{case}: {}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("helio: "), "{case}: {}", run.stderr);
    assert_eq!(run.stderr.matches("helio: ").count(), 1, "{case}: {}", run.stderr);
}
