//! The recipes shipped in the repository hold up when copied: the systemd
//! units' command lines, run as written (paths mapped into a temporary root),
//! build a site that helio serve then answers, and pass `systemd-analyze
//! verify`; the GitHub Actions workflows pass zizmor, pin every action to a
//! commit, and their scripts — installing a release with contrib/install.sh,
//! listing the logs for the matrix, building with or without the cached site
//! — run against loopback servers and do what the workflow expects; every
//! helio command line in them, in the cron file and in README.md uses a
//! command and flags the binary has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use helio::fixture::server::{LogServer, ServerOptions};
use helio::fixture::wire;
use helio::store::{LockScope, Store, Target};
use serde_yaml::Value;

use crate::release::ReleaseServer;
use crate::support::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const PAGES: &str = ".github/workflows/publish-pages.yml";
const S3: &str = ".github/workflows/publish-s3.yml";
const S3_OIDC: &str = ".github/workflows/publish-s3-oidc.yml";
const RELEASE: &str = ".github/workflows/release.yml";
const WORKFLOWS: &[&str] = &[PAGES, S3, S3_OIDC, RELEASE];
const UNITS: &[&str] =
    &["helio-build.service", "helio-build.timer", "helio-serve.service", "helio-serve-https.service"];

fn workflow(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn jobs(workflow: &Value) -> &serde_yaml::Mapping {
    workflow["jobs"].as_mapping().unwrap()
}

/// Every `run:` script of a workflow.
fn run_scripts(workflow: &Value) -> Vec<String> {
    let mut scripts = Vec::new();
    for (_, job) in jobs(workflow) {
        for step in job["steps"].as_sequence().unwrap() {
            if let Some(run) = step.get("run") {
                scripts.push(run.as_str().unwrap().to_string());
            }
        }
    }
    scripts
}

/// The step of `job` with this `name` or `id`.
fn step<'a>(workflow: &'a Value, job: &str, name: &str) -> &'a Value {
    workflow["jobs"][job]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|step| {
            step.get("name").and_then(Value::as_str) == Some(name)
                || step.get("id").and_then(Value::as_str) == Some(name)
        })
        .unwrap_or_else(|| panic!("no step {name:?} in job {job}"))
}

/// Runs a `run:` step as the runner does (`bash -e -o pipefail`) in `dir`:
/// the workflow's and the step's literal `env`, and for each of the step's
/// `${{ … }}` values, what the test says it evaluates to (it must say).
fn run_step(workflow: &Value, job: &str, name: &str, dir: &Path, values: &[(&str, &str)]) -> Run {
    let step = step(workflow, job, name);
    let script = step["run"].as_str().unwrap();
    let mut command = Command::new("bash");
    command.args(["--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script]).current_dir(dir);
    for var in ["HELIO_CONFIG", "HELIO_LOG", "RUST_LOG", "HELIO_VERSION", "HELIO_BASE_URL", "HELIO_INSTALL_DIR"] {
        command.env_remove(var);
    }
    command.env("HELIO_RETRY_BUDGET", "3");
    let mut env: Vec<(&Value, &Value)> = Vec::new();
    if let Some(global) = workflow.get("env").and_then(Value::as_mapping) {
        env.extend(global);
    }
    if let Some(own) = step.get("env").and_then(Value::as_mapping) {
        env.extend(own);
    }
    for (key, value) in env {
        let (key, value) = (key.as_str().unwrap(), value.as_str().unwrap());
        if value.contains("${{") {
            let given = values.iter().find(|(k, _)| *k == key);
            let (_, given) = given.unwrap_or_else(|| panic!("{job}/{name}: the test must give {key} = {value}"));
            command.env(key, given);
        } else {
            command.env(key, value);
        }
    }
    for (key, value) in values {
        command.env(key, value);
    }
    finish(command.output().unwrap())
}

/// The helio invocations in `text`: each line that runs the binary, from its
/// name on (`helio build …`, `"$HOME/.local/bin/helio" build …`), up to the
/// end of the command (a pipe, a redirection, `||`, or the two spaces before
/// a usage line's description), with the brackets and ellipses of a usage
/// line taken off.
fn invocations(text: &str) -> Vec<Vec<String>> {
    let commands = commands();
    let is_helio = |word: &str| {
        let word = word.trim_matches(|c| c == '"' || c == '`');
        word == "helio" || word.ends_with("/helio")
    };
    let mut found = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = (0..words.len().saturating_sub(1))
            .find(|&i| is_helio(words[i]) && commands.iter().any(|c| c == words[i + 1]))
        else {
            continue;
        };
        // From the program's name on, as far as the command goes.
        let start = line.find(&format!("{} {}", words[at], words[at + 1])).unwrap();
        let command = line[start..].split("  ").next().unwrap();
        let words: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .take_while(|w| !["||", "&&", "|", ";"].contains(w) && !w.starts_with('>') && !w.starts_with('#'))
            .map(|w| w.trim_matches(|c| "\"`[]…()".contains(c)).to_string())
            .collect();
        found.push(words);
    }
    found
}

/// The visible commands, as `helio --help` lists them.
fn commands() -> Vec<String> {
    let help = helio(&["--help"]);
    let section = help.stdout.split("Commands:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    section.lines().filter_map(|line| line.split_whitespace().next()).map(str::to_string).collect()
}

/// Checks that the subcommand exists and knows every flag used.
fn check_invocation(source: &str, words: &[String]) {
    let help = helio(&[&words[0], "--help"]);
    assert_eq!(help.code, 0, "{source}: `helio {}` is not a subcommand", words[0]);
    for flag in words.iter().filter(|w| w.starts_with('-')) {
        let flag = flag.split('=').next().unwrap();
        let known = help.stdout.contains(&format!("{flag} ")) || help.stdout.contains(&format!("{flag},"));
        assert!(known, "{source}: `helio {}` has no flag {flag}:\n{}", words[0], help.stdout);
    }
}

// ---- GitHub Actions

#[test]
fn workflows_pin_actions_drop_credentials_and_grant_per_job() {
    for path in WORKFLOWS {
        let workflow = workflow(path);
        let text = read(path);
        assert!(workflow.get("on").is_some() && workflow["name"].is_string(), "{path}");
        // Nothing granted to the whole workflow; each job says what it needs.
        assert_eq!(workflow["permissions"], Value::Mapping(Default::default()), "{path}: permissions: {{}}");
        for (name, job) in jobs(&workflow) {
            assert!(job["runs-on"].is_string(), "{path}: job {name:?} has no runs-on");
            assert!(job["permissions"].is_mapping(), "{path}: job {name:?} has no permissions");
            for step in job["steps"].as_sequence().unwrap() {
                let uses = step.get("uses").and_then(Value::as_str);
                assert!(uses.is_some() != step.get("run").is_some(), "{path}: a step needs one of uses/run: {step:?}");
                let Some(uses) = uses else { continue };
                // A commit, with the version it is in a comment: `uses: a/b@<40 hex> # v1.2.3`.
                let (action, commit) = uses.split_once('@').unwrap();
                assert!(action.contains('/'), "{path}: {uses}");
                assert!(
                    commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
                    "{path}: {uses} is not pinned"
                );
                let line = text.lines().find(|line| line.contains(uses)).unwrap();
                let comment =
                    line.split(" # ").nth(1).unwrap_or_else(|| panic!("{path}: {uses} has no version comment"));
                assert!(comment.starts_with('v') && comment[1..].split('.').count() == 3, "{path}: {line}");
                if action == "actions/checkout" {
                    assert_eq!(step["with"]["persist-credentials"], Value::Bool(false), "{path}: {name:?}");
                }
            }
        }
        let calls: Vec<Vec<String>> = run_scripts(&workflow).iter().flat_map(|s| invocations(s)).collect();
        for call in &calls {
            check_invocation(path, call);
            // A build in a job that GitHub stops at its time limit keeps to a run budget.
            if call[0] == "build" {
                assert!(call.iter().any(|w| w == "--max-time"), "{path}: {call:?}");
            }
        }
        if *path != RELEASE {
            assert!(calls.iter().any(|call| call[0] == "build"), "{path} never runs helio build");
        }
        // The same action is pinned to the same commit everywhere.
        for other in WORKFLOWS {
            for line in text.lines().filter(|l| l.contains("uses: ")) {
                let (action, _) = line.split("uses: ").nth(1).unwrap().split_once('@').unwrap();
                for twin in read(other).lines().filter(|l| l.contains(&format!("uses: {action}@"))) {
                    let pin = |line: &str| line.trim().trim_start_matches("- ").to_string();
                    assert_eq!(pin(twin), pin(line), "{path} and {other}");
                }
            }
        }
    }
    // Only the jobs that must write can: Pages' deploy, the OIDC token, the release.
    let writes = |path: &str| -> Vec<(String, String)> {
        let workflow = workflow(path);
        let mut writes = Vec::new();
        for (name, job) in jobs(&workflow) {
            for (scope, level) in job["permissions"].as_mapping().unwrap() {
                if level.as_str() == Some("write") {
                    writes.push((name.as_str().unwrap().to_string(), scope.as_str().unwrap().to_string()));
                }
            }
        }
        writes
    };
    let pairs = |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(writes(PAGES), pairs(&[("deploy", "pages"), ("deploy", "id-token")]));
    assert_eq!(writes(S3), pairs(&[]));
    assert_eq!(writes(S3_OIDC), pairs(&[("build", "id-token")]));
    assert_eq!(writes(RELEASE), pairs(&[("release", "contents")]));
}

/// zizmor: next to `$HELIO_PYTHON` (the venv `.ci/run` makes), else on PATH.
fn zizmor(test: &str) -> Option<PathBuf> {
    let beside = std::env::var_os("HELIO_PYTHON")
        .map(PathBuf::from)
        .and_then(|python| python.parent().map(|bin| bin.join("zizmor")))
        .filter(|path| path.is_file());
    beside.or_else(|| tool("zizmor", test))
}

/// zizmor's findings of medium severity or more, one line each.
fn zizmor_findings(zizmor: &Path, dir: &Path) -> Vec<String> {
    let output = Command::new(zizmor)
        .args(["--offline", "--no-progress", "--min-severity", "medium", "--format", "json"])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let findings: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("zizmor: {e}:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            let location = &finding["locations"][0]["symbolic"];
            format!(
                "{} ({}) in {}: {}",
                finding["ident"],
                finding["determinations"]["severity"],
                location["key"]["Local"]["verbatim_path"],
                location["annotation"]
            )
        })
        .collect()
}

#[test]
#[cfg_attr(not(has_zizmor), ignore = "needs zizmor, not installed here (HELIO_E2E=1 requires it)")]
fn zizmor_finds_nothing_in_the_workflows() {
    let Some(zizmor) = zizmor("zizmor_finds_nothing_in_the_workflows") else { return };
    let findings = zizmor_findings(&zizmor, &repo(".github/workflows"));
    assert!(findings.is_empty(), "zizmor:\n{}", findings.join("\n"));

    // And it does find what these workflows avoid, so the check above means something.
    let dir = tempfile::tempdir().unwrap();
    let job = "    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n";
    let bad = format!("name: bad\non: push\npermissions:\n  id-token: write\njobs:\n  a:\n{job}  b:\n{job}");
    std::fs::write(dir.path().join("bad.yml"), bad).unwrap();
    let findings = zizmor_findings(&zizmor, &dir.path().join("bad.yml")).join("\n");
    for audit in ["unpinned-uses", "artipacked", "excessive-permissions"] {
        assert!(findings.contains(audit), "zizmor missed {audit}:\n{findings}");
    }
}

/// A runner's workspace: the repository's files a workflow needs (the
/// config, contrib/install.sh) and an empty home.
struct Workspace {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Workspace {
    fn new(config: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("contrib")).unwrap();
        std::fs::copy(repo("contrib/install.sh"), dir.path().join("contrib/install.sh")).unwrap();
        std::fs::write(dir.path().join("helio.yaml"), config).unwrap();
        Workspace { dir, home: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> &str {
        self.home.path().to_str().unwrap()
    }

    /// Runs the workflow's "Install helio" step against the release server.
    fn install(&self, workflow: &Value, job: &str, release: &ReleaseServer) {
        let base = release.base_url();
        let values = [("HELIO_REPOSITORY", "OWNER/helio"), ("HELIO_BASE_URL", base.as_str()), ("HOME", self.home())];
        let run = run_step(workflow, job, "Install helio", self.path(), &values);
        assert_eq!(run.code, 0, "install:\n{}", run.stderr);
        assert!(run.stderr.contains("installed helio"), "{}", run.stderr);
    }
}

fn config_for(logs: &[(&str, &str)], log: &TestLog) -> String {
    let mut yaml = format!(
        "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: []\n\
         webseeds: [http://127.0.0.1:9/webseed/]\nfeed_url_base: https://feeds.helio.invalid/t\nlogs:\n"
    );
    for (name, url) in logs {
        yaml.push_str(&format!(
            "  - name: {name}\n    log_url: {url}\n    origin: {ORIGIN}\n    key: {}\n",
            log.log.key
        ));
    }
    yaml
}

#[test]
#[cfg_attr(not(all(has_curl, has_dash)), ignore = "needs curl and dash, not installed here (HELIO_E2E=1 requires it)")]
fn s3_workflows_matrix_comes_from_helio_logs_and_each_job_builds_its_log() {
    let test = "s3_workflows_matrix_comes_from_helio_logs_and_each_job_builds_its_log";
    let (Some(_dash), Some(_curl)) = (tool("dash", test), tool("curl", test)) else { return };
    let release = ReleaseServer::start();
    let log = TestLog::new(2048);
    let upstream = log.serve();
    let config = config_for(&[("alpha", &upstream.url()), ("beta", &upstream.url())], &log);

    for path in [S3, S3_OIDC] {
        let workflow = workflow(path);
        // The wiring between the jobs, as GitHub evaluates it.
        let logs_job = &workflow["jobs"]["logs"];
        assert_eq!(logs_job["outputs"]["logs"], "${{ steps.logs.outputs.logs }}", "{path}");
        let build = &workflow["jobs"]["build"];
        assert_eq!(build["needs"], "logs");
        assert_eq!(build["strategy"]["matrix"]["log"], "${{ fromJSON(needs.logs.outputs.logs) }}", "{path}");
        assert_eq!(step(&workflow, "build", "helio build")["env"]["LOG"], "${{ matrix.log.name }}", "{path}");
        assert_eq!(build["concurrency"]["group"], "helio-s3-${{ matrix.log.name }}", "{path}");

        // The logs job: install, then `helio logs --json` into GITHUB_OUTPUT.
        let runner = Workspace::new(&config);
        runner.install(&workflow, "logs", &release);
        let output = runner.path().join("github_output");
        let github_output = output.to_str().unwrap();
        let values = [("CONFIG", "helio.yaml"), ("HOME", runner.home()), ("GITHUB_OUTPUT", github_output)];
        run_step(&workflow, "logs", "logs", runner.path(), &values).ok();
        let written = std::fs::read_to_string(&output).unwrap();
        let json = written.strip_prefix("logs=").unwrap_or_else(|| panic!("{written}"));
        assert_eq!(json.lines().count(), 1, "a GITHUB_OUTPUT value on one line");
        let matrix: serde_json::Value = serde_json::from_str(json).unwrap();
        let names: Vec<&str> = matrix.as_array().unwrap().iter().map(|log| log["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["alpha", "beta"]);

        // One build job per matrix entry, each on a fresh runner, into one
        // store. Its install step is the logs job's, so the binary that job
        // installed stands in for each job's own.
        let install = |job: &str| step(&workflow, job, "Install helio").clone();
        assert_eq!(install("build"), install("logs"), "{path}");
        let bucket = tempfile::tempdir().unwrap();
        let bucket_url = bucket.path().to_str().unwrap();
        let aws =
            [("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", ""), ("AWS_REGION", ""), ("AWS_ENDPOINT_URL", "")];
        for entry in matrix.as_array().unwrap() {
            let name = entry["name"].as_str().unwrap();
            let job = Workspace::new(&config);
            let mut values = vec![
                ("CONFIG", "helio.yaml"),
                ("MAX_TIME", "4h"),
                ("BUCKET_URL", bucket_url),
                ("LOG", name),
                ("HOME", runner.home()),
            ];
            if path == S3 {
                values.extend(aws);
            }
            run_step(&workflow, "build", "helio build", job.path(), &values).ok();
            assert!(bucket.path().join(format!("{name}/L01-1024-2048.torrent")).is_file(), "{path}: {name}");
        }
        let logs_json = std::fs::read_to_string(bucket.path().join("logs.json")).unwrap();
        assert!(logs_json.contains("\"alpha\"") && logs_json.contains("\"beta\""), "{logs_json}");

        // A log still held by an earlier run's job: exit 3, which the job counts as success.
        let store = Store::open(&Target::Dir(bucket.path().to_path_buf())).unwrap();
        let held = store.lock(LockScope::Log("alpha")).unwrap();
        let job = Workspace::new(&config);
        let mut values = vec![
            ("CONFIG", "helio.yaml"),
            ("MAX_TIME", "4h"),
            ("BUCKET_URL", bucket_url),
            ("LOG", "alpha"),
            ("HOME", runner.home()),
        ];
        if path == S3 {
            values.extend(aws);
        }
        let run = run_step(&workflow, "build", "helio build", job.path(), &values);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("::notice::alpha is still being built by an earlier run"), "{}", run.stdout);
        drop(held);
    }
    // The OIDC variant asks for the role's credentials before the build.
    let oidc = workflow(S3_OIDC);
    let aws = step(&oidc, "build", "helio build");
    let steps = oidc["jobs"]["build"]["steps"].as_sequence().unwrap();
    let at = |wanted: &Value| steps.iter().position(|s| s == wanted).unwrap();
    let credentials = steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@")))
        .unwrap();
    assert!(at(credentials) < at(aws));
    assert_eq!(credentials["with"]["role-to-assume"], "${{ vars.AWS_ROLE_ARN }}");
    assert!(aws.get("env").unwrap().get("AWS_ACCESS_KEY_ID").is_none(), "no stored key");
}

#[test]
#[cfg_attr(not(all(has_curl, has_dash)), ignore = "needs curl and dash, not installed here (HELIO_E2E=1 requires it)")]
fn pages_workflow_builds_on_the_cached_site_and_resumes_only_without_one() {
    let test = "pages_workflow_builds_on_the_cached_site_and_resumes_only_without_one";
    let (Some(_dash), Some(_curl)) = (tool("dash", test), tool("curl", test)) else { return };
    let workflow = workflow(PAGES);
    // The cache: restored into site/ before the build, saved from it after;
    // the build step is told whether anything was restored.
    let restore = step(&workflow, "build", "site");
    assert!(restore["uses"].as_str().unwrap().starts_with("actions/cache/restore@"));
    assert_eq!(restore["with"]["path"], "site");
    assert_eq!(restore["with"]["restore-keys"], "helio-site-");
    let save = step(&workflow, "build", "Keep the site for the next run");
    assert!(save["uses"].as_str().unwrap().starts_with("actions/cache/save@"));
    assert_eq!(save["with"]["path"], "site");
    assert!(save["with"]["key"].as_str().unwrap().starts_with("helio-site-"));
    let build = step(&workflow, "build", "helio build");
    assert_eq!(build["env"]["CACHED"], "${{ steps.site.outputs.cache-matched-key }}");
    let steps = workflow["jobs"]["build"]["steps"].as_sequence().unwrap();
    let at = |wanted: &Value| steps.iter().position(|s| s == wanted).unwrap();
    assert!(at(restore) < at(build) && at(build) < at(save));
    let upload = steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-pages-artifact@")))
        .unwrap();
    assert!(at(save) < at(upload));
    // The run budget leaves room for the upload within the job's limit.
    let minutes = workflow["jobs"]["build"]["timeout-minutes"].as_u64().unwrap();
    assert_eq!(build["env"]["MAX_TIME"], "${{ vars.HELIO_MAX_TIME || '4h' }}");
    assert!((4 * 60 + 30..6 * 60).contains(&minutes), "timeout-minutes {minutes}: 4h, then the upload, within 6h");

    let release = ReleaseServer::start();
    let log = TestLog::new(2048);
    let upstream = log.serve();
    let config = config_for(&[("test", &upstream.url())], &log);
    let runner = Workspace::new(&config);
    runner.install(&workflow, "build", &release);
    let empty = tempfile::tempdir().unwrap();
    let nothing_published = LogServer::start(empty.path(), ServerOptions::default()).unwrap();
    let values = |site_url: &str, cached: &str| -> Vec<(String, String)> {
        [
            ("CONFIG", "helio.yaml"),
            ("MAX_TIME", "4h"),
            ("SITE_URL", site_url),
            ("CACHED", cached),
            ("HOME", runner.home()),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
    };
    let run = |values: &[(String, String)]| {
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_step(&workflow, "build", "helio build", runner.path(), &values)
    };

    // The first run: no cache, nothing published yet (404): a fresh build.
    let site_url = nothing_published.url();
    let first = run(&values(site_url.trim_end_matches('/'), ""));
    first.ok();
    assert!(first.stdout.contains("::notice::no cached site"), "{}", first.stdout);
    let site = runner.path().join("site");
    assert!(site.join("test/L01-1024-2048.torrent").is_file());
    assert!(!site.join("test/.helio.lock").exists(), "locks are not published");
    let data_tiles = upstream.hits("tile/data/000");
    assert!(data_tiles > 0);

    // The cache evicted: the published site (here served on loopback) is restored, nothing rebuilt.
    let published = tempfile::tempdir().unwrap();
    std::fs::rename(&site, published.path().join("site")).unwrap();
    let pages = LogServer::start(&published.path().join("site"), ServerOptions::default()).unwrap();
    let pages_url = pages.url();
    let second = run(&values(pages_url.trim_end_matches('/'), ""));
    second.ok();
    assert!(second.stdout.contains("::notice::no cached site"), "{}", second.stdout);
    assert_eq!(pages.hits("test/L01-0-1024.torrent"), 1, "restored from the published site");
    assert_eq!(upstream.hits("tile/data/000"), data_tiles, "not built again");
    assert!(site.join("test/L01-0-1024.torrent").is_file());

    // The cache restored: the site is built on as it is, and the published one is never asked.
    let unreachable = "http://127.0.0.1:9";
    let third = run(&values(unreachable, "helio-site-0123abcd"));
    assert_eq!(third.code, 0, "{}\n{}", third.stdout, third.stderr);
    assert!(!third.stdout.contains("no cached site"), "{}", third.stdout);
    assert_eq!(pages.hits("test/L01-0-1024.torrent"), 1);
    assert_eq!(upstream.hits("tile/data/000"), data_tiles);
}

#[test]
fn release_workflow_packs_with_dist_sh_and_publishes_every_archive() {
    let workflow = workflow(RELEASE);
    assert_eq!(workflow["on"]["push"]["tags"][0], "v*");
    let dist = &workflow["jobs"]["dist"];
    let targets: BTreeSet<&str> = dist["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|entry| entry["target"].as_str().unwrap())
        .collect();
    let wanted = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "aarch64-apple-darwin"];
    assert_eq!(targets, wanted.into_iter().collect());
    // The same names install.sh asks for on each machine.
    let install = read("contrib/install.sh");
    for target in wanted {
        assert!(install.contains(&format!(") target={target} ;;")), "install.sh does not install {target}");
    }
    let pack = step(&workflow, "dist", "Pack");
    assert_eq!(pack["run"], "contrib/dist.sh dist");
    assert_eq!(pack["env"]["CARGO_BUILD_TARGET"], "${{ matrix.target }}");
    let publish = step(&workflow, "release", "Publish")["run"].as_str().unwrap();
    assert!(publish.contains("sha256sum -c ./*.sha256") && publish.contains("./*.tar.gz ./*.sha256"), "{publish}");

    // The tag check, run as the workflow runs it.
    let checkout = repo(".");
    let good = run_step(
        &workflow,
        "dist",
        "The tag is Cargo.toml's version",
        &checkout,
        &[("TAG", &format!("v{}", env!("CARGO_PKG_VERSION")))],
    );
    good.ok();
    let bad = run_step(&workflow, "dist", "The tag is Cargo.toml's version", &checkout, &[("TAG", "v0.0.0-not")]);
    assert_eq!(bad.code, 1);
    assert!(bad.stdout.contains("::error::tag v0.0.0-not is not v"), "{}", bad.stdout);
}

#[test]
fn recipes_pin_the_release_this_checkout_is() {
    let version = env!("CARGO_PKG_VERSION");
    for path in [PAGES, S3, S3_OIDC] {
        assert_eq!(workflow(path)["env"]["HELIO_VERSION"], version, "{path} installs helio {version}");
    }
    let unit = read("contrib/systemd/helio-build.service");
    assert!(unit.contains(&format!("HELIO_VERSION={version} HELIO_INSTALL_DIR=/usr/local/bin sh contrib/install.sh")));
    assert!(read("README.md").contains(&format!("HELIO_VERSION={version}")));
}

// ---- systemd and cron

/// A unit of contrib/systemd with its paths mapped under `root`, as the
/// machine it is installed on would see them.
fn mapped_unit(name: &str, root: &Path) -> String {
    let root = root.to_str().unwrap();
    read(&format!("contrib/systemd/{name}"))
        .replace("/usr/local/bin/helio", env!("CARGO_BIN_EXE_helio"))
        .replace("/etc/", &format!("{root}/etc/"))
        .replace("/srv/helio", &format!("{root}/srv/helio"))
        .replace("/run/credentials/", &format!("{root}/run/credentials/"))
}

/// The values of `key=` in a unit.
fn directive(unit: &str, key: &str) -> Vec<String> {
    unit.lines().filter_map(|line| line.strip_prefix(&format!("{key}="))).map(str::to_string).collect()
}

fn exec_line(unit: &str, key: &str) -> Vec<String> {
    let lines = directive(unit, key);
    assert_eq!(lines.len(), 1, "{key}: {lines:?}");
    lines[0].split_whitespace().map(str::to_string).collect()
}

#[test]
#[cfg_attr(not(has_systemd_analyze), ignore = "needs systemd-analyze, not installed here (HELIO_E2E=1 requires it)")]
fn systemd_units_pass_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze", "systemd_units_pass_systemd_analyze_verify") else { return };
    // verify also checks that ExecStart's program exists: point it at the
    // binary under test instead of /usr/local/bin/helio.
    let dir = tempfile::tempdir().unwrap();
    for unit in UNITS {
        let text =
            read(&format!("contrib/systemd/{unit}")).replace("/usr/local/bin/helio", env!("CARGO_BIN_EXE_helio"));
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let output = Command::new(&analyze)
        .arg("verify")
        .args(UNITS.iter().map(|unit| dir.path().join(unit)))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");

    // And a broken unit is caught, so the check above means something.
    std::fs::write(dir.path().join("broken.timer"), "[Timer]\nOnCalendar=every now and then\n").unwrap();
    let output = Command::new(&analyze).arg("verify").arg(dir.path().join("broken.timer")).output().unwrap();
    assert!(!output.status.success() || !output.stderr.is_empty());
}

/// The units' command lines, run as written with their paths mapped into a
/// temporary root: the build writes the folder that serve then answers.
#[test]
fn systemd_build_then_serve_answer_the_same_folder() {
    let root = tempfile::tempdir().unwrap();
    let log = TestLog::new(2048);
    let upstream = log.serve();
    std::fs::create_dir_all(root.path().join("etc/helio")).unwrap();
    // torrent_dir is left at its default (a folder beside the config): the
    // units name the folder themselves.
    std::fs::write(root.path().join("etc/helio/helio.yaml"), config_for(&[("test", &upstream.url())], &log)).unwrap();

    let build = mapped_unit("helio-build.service", root.path());
    assert_eq!(directive(&build, "SuccessExitStatus"), ["3"]);
    let words = exec_line(&build, "ExecStart");
    assert_eq!(words[0], env!("CARGO_BIN_EXE_helio"));
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    helio(&args).ok();
    let srv = root.path().join("srv/helio");
    assert_eq!(directive(&build, "ReadWritePaths"), [srv.to_str().unwrap()]);
    let torrent = std::fs::read(srv.join("test/L01-0-1024.torrent")).unwrap();

    for name in ["helio-serve.service", "helio-serve-https.service"] {
        let unit = mapped_unit(name, root.path());
        assert_eq!(directive(&unit, "ReadOnlyPaths"), [srv.to_str().unwrap()], "{name}");
        let words = exec_line(&unit, "ExecStart");
        assert_eq!(words[0], env!("CARGO_BIN_EXE_helio"));
        assert!(!words.iter().any(|w| w.starts_with("--listen")), "{name}: the config's ports");
        // The one change: loopback on a free port instead of the config's ports.
        let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        args.extend(["--listen", "127.0.0.1:0"]);
        let served = Listening::start(&args, &[], Duration::from_secs(15));
        let reply = wire::request(served.addr, "GET", "/torrents/test/L01-0-1024.torrent", &[]).unwrap();
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.body, torrent, "{name}");

        // ExecReload as written: SIGHUP, after which the server still answers.
        for reload in directive(&unit, "ExecReload") {
            let words: Vec<String> =
                reload.split_whitespace().map(|w| w.replace("$MAINPID", &served.pid().to_string())).collect();
            assert!(Command::new(&words[0]).args(&words[1..]).status().unwrap().success());
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(wire::request(served.addr, "GET", "/healthz", &[]).unwrap().status, 200, "{name}");
        }
        assert_eq!(served.terminate(), 0);
    }
    assert_eq!(directive(&mapped_unit("helio-serve.service", root.path()), "ExecReload"), ["/bin/kill -HUP $MAINPID"]);

    // helio build's other kind of OUT_DIR, a bucket, is not a folder to serve.
    let config = root.path().join("etc/helio/helio.yaml");
    let refused = helio(&["serve", "-c", config.to_str().unwrap(), "s3://ct-torrents/site", "--listen", "127.0.0.1:0"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("s3://ct-torrents/site is a bucket"), "{}", refused.stderr);
}

/// The HTTPS unit: ports below 1024 with one capability, and the key handed
/// over by systemd (emulated: each LoadCredential= source copied into the
/// credentials folder) where the config README shows expects it.
#[test]
#[cfg_attr(
    not(all(has_curl, has_openssl)),
    ignore = "needs curl and openssl, not installed here (HELIO_E2E=1 requires it)"
)]
fn systemd_https_unit_serves_tls_from_its_credentials() {
    let test = "systemd_https_unit_serves_tls_from_its_credentials";
    let (Some(openssl), Some(curl)) = (tool("openssl", test), tool("curl", test)) else { return };
    let root = tempfile::tempdir().unwrap();
    let unit = mapped_unit("helio-serve-https.service", root.path());
    assert_eq!(directive(&unit, "User"), ["helio"]);
    assert_eq!(directive(&unit, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(directive(&unit, "CapabilityBoundingSet"), ["CAP_NET_BIND_SERVICE"]);

    // What certbot leaves under /etc/letsencrypt/live/<name>/.
    let credentials = directive(&unit, "LoadCredential");
    assert_eq!(credentials.len(), 2, "{credentials:?}");
    let source = |id: &str| -> PathBuf {
        let line = credentials.iter().find(|c| c.starts_with(&format!("{id}:"))).unwrap();
        PathBuf::from(line.split_once(':').unwrap().1)
    };
    let (cert, key) = (source("tls-cert"), source("tls-key"));
    std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
    let output = Command::new(&openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // systemd's part at start: a copy of each, named by its id.
    let folder = root.path().join("run/credentials/helio-serve-https.service");
    std::fs::create_dir_all(&folder).unwrap();
    for id in ["tls-cert", "tls-key"] {
        std::fs::copy(source(id), folder.join(id)).unwrap();
    }

    // The config lines README and the unit's header give, paths mapped.
    let readme = read("README.md");
    let header = read("contrib/systemd/helio-serve-https.service");
    let lines = [
        "tls_cert: /run/credentials/helio-serve-https.service/tls-cert",
        "tls_key: /run/credentials/helio-serve-https.service/tls-key",
    ];
    for line in lines {
        assert!(readme.contains(line) && header.contains(&format!("#   {line}")), "{line}");
    }
    let log = TestLog::new(1024);
    let upstream = log.serve();
    let mut config = config_for(&[("test", &upstream.url())], &log);
    config.push_str("http_port: 80\nhttps_port: 443\n");
    for line in lines {
        config.push_str(&format!(
            "{}\n",
            line.replace("/run/credentials/", &format!("{}/run/credentials/", root.path().display()))
        ));
    }
    std::fs::create_dir_all(root.path().join("etc/helio")).unwrap();
    std::fs::write(root.path().join("etc/helio/helio.yaml"), config).unwrap();

    let words = exec_line(&unit, "ExecStart");
    let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    args.extend(["--listen", "127.0.0.1:0", "--listen-https", "127.0.0.1:0"]);
    let served = Listening::start(&args, &[], Duration::from_secs(15));
    let url = format!("https://{}/healthz", served.https.unwrap());
    let output =
        Command::new(&curl).args(["-sS", "--max-time", "20", "--cacert"]).arg(&cert).arg(&url).output().unwrap();
    assert!(output.status.success(), "curl: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn cron_and_readme_call_helio_as_it_is() {
    for path in ["contrib/cron/helio", "README.md", "contrib/systemd/helio-build.service"] {
        let calls = invocations(&read(path));
        assert!(!calls.is_empty(), "{path} never runs helio");
        for call in &calls {
            check_invocation(path, call);
        }
    }
    // README's usage block has a line for every command.
    let readme = read("README.md");
    let usage = readme.split("## Running helio").nth(1).unwrap().split("```").nth(1).unwrap();
    for command in commands().iter().filter(|c| *c != "help") {
        assert!(usage.contains(&format!("\nhelio {command} ")), "README's usage lacks helio {command}");
    }
    // The cron file: five time fields, a user, then the command.
    let line =
        read("contrib/cron/helio").lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap().to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[5..7], ["helio", "/usr/local/bin/helio"], "{line}");
}

/// The lines of README's ```sh blocks.
fn readme_shell_lines(readme: &str) -> Vec<&str> {
    readme.split("```sh\n").skip(1).flat_map(|block| block.split("```").next().unwrap().lines()).collect()
}

#[test]
fn readme_commands_that_print_run_as_shown() {
    let readme = read("README.md");
    let shown: Vec<&str> = readme_shell_lines(&readme)
        .into_iter()
        .filter(|l| l.starts_with("helio completions ") || l.starts_with("helio man"))
        .collect();
    assert!(shown.len() >= 4, "{shown:?}");
    for line in shown {
        let command = line.split(" > ").next().unwrap().split(" | ").next().unwrap();
        let words: Vec<&str> = command.split_whitespace().skip(1).collect();
        let run = helio(&words);
        assert_eq!(run.code, 0, "README: {line}\n{}", run.stderr);
        assert!(!run.stdout.is_empty(), "README: {line}");
    }
    assert!(!readme.contains("helio fixture"), "the release binary has no fixture command");
    let demo = repo("fixtures/demo.yaml");
    let run = helio(&["logs", "-c", demo.to_str().unwrap(), "--json"]);
    run.ok();
    assert!(run.stdout.starts_with("[{\"name\":\"demo\""), "{}", run.stdout);
}

#[test]
fn readme_development_tree_is_the_source_tree() {
    let readme = read("README.md");
    let tree =
        readme.split("## Development").nth(1).unwrap().split("```text").nth(1).unwrap().split("```").next().unwrap();
    let named: BTreeSet<String> = tree
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| word.starts_with("src/"))
        .map(|word| word.trim_end_matches('/').to_string())
        .collect();
    let actual: BTreeSet<String> = std::fs::read_dir(repo("src"))
        .unwrap()
        .map(|entry| format!("src/{}", entry.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(named, actual, "README's Development tree and src/");
    for line in tree.lines().filter(|l| !l.starts_with("src/") && !l.starts_with(' ')) {
        for word in line.split_whitespace().take_while(|w| w.ends_with('/') || w.ends_with(",")) {
            let path = word.trim_end_matches(',');
            assert!(repo(path).exists(), "README names {path}");
        }
    }
}

#[test]
fn readme_names_every_tool_ci_installs() {
    let ci = read(".ci/run");
    let readme = read("README.md");
    let apt = ci.split("--no-install-recommends").nth(1).unwrap().split("\n\n").next().unwrap();
    let packages: Vec<&str> =
        apt.split_whitespace().filter(|w| *w != "\\" && !w.starts_with("python3") && *w != "ca-certificates").collect();
    assert!(packages.contains(&"systemd"), "{packages:?}");
    let pip = ci.split("--disable-pip-version-check").nth(1).unwrap().split("\n\n").next().unwrap();
    let pypi: Vec<String> = pip
        .split_whitespace()
        .filter(|w| w.contains("=="))
        .map(|w| w.trim_matches('\'').split(['=', '[']).next().unwrap().to_string())
        .collect();
    assert!(pypi.iter().any(|p| p == "zizmor"), "{pypi:?}");
    let tests_paragraph =
        readme.split("The end-to-end tests drive real programs").nth(1).unwrap().split("\n\n").next().unwrap();
    for name in packages.iter().copied().chain(pypi.iter().map(String::as_str)).chain(["python3-libtorrent"]) {
        assert!(tests_paragraph.contains(name), "README's end-to-end paragraph does not name {name}");
    }
}

/// The top-level modules each file of `src/` uses through `crate::…`, outside
/// comments and its `mod tests`.
fn crate_imports(dir: &Path, top: Option<&str>, found: &mut Vec<(String, String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let module = top.map(str::to_string).unwrap_or_else(|| name.trim_end_matches(".rs").to_string());
        if path.is_dir() {
            crate_imports(&path, Some(&module), found);
            continue;
        }
        if !name.ends_with(".rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for used in line.split("crate::").skip(1) {
                let used: String = used.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !used.is_empty() && used != module {
                    found.push((
                        module.clone(),
                        used,
                        path.strip_prefix(repo("")).unwrap_or(&path).display().to_string(),
                    ));
                }
            }
        }
    }
}

#[test]
fn architecture_is_the_import_graph() {
    let doc = read("docs/architecture.md");
    let table = doc.split("## Which module may use which").nth(1).unwrap().split("```text").nth(1).unwrap();
    let table = table.split("```").next().unwrap();
    let mut allowed: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        let (module, uses) = line.split_once("->").unwrap_or_else(|| panic!("table line {line:?}"));
        allowed.insert(module.trim().to_string(), uses.split_whitespace().map(str::to_string).collect());
    }
    // The table is a DAG: peel modules that use nothing left until none remain.
    let mut left = allowed.clone();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|(_, uses)| uses.iter().all(|u| !left.contains_key(u)))
            .map(|(m, _)| m.clone())
            .collect();
        assert!(!ready.is_empty(), "docs/architecture.md's table has a cycle among {:?}", left.keys());
        for module in ready {
            left.remove(&module);
        }
    }
    let mut found = Vec::new();
    crate_imports(&repo("src"), None, &mut found);
    let mut modules: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(repo("src")).unwrap() {
        modules.insert(entry.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_string());
    }
    for module in &modules {
        if module != "lib" && module != "main" {
            assert!(allowed.contains_key(module), "src/{module} is not in docs/architecture.md's table");
        }
    }
    let mut wrong: BTreeSet<String> = BTreeSet::new();
    for (module, used, file) in &found {
        if module == "lib" || module == "main" || !modules.contains(used) {
            continue;
        }
        if !allowed[module].contains(used) {
            wrong.insert(format!("{file} uses crate::{used}, which {module} may not"));
        }
    }
    assert!(wrong.is_empty(), "imports docs/architecture.md does not allow:\n{}", Vec::from_iter(wrong).join("\n"));
}
