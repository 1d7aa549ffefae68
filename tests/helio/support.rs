//! What the tests share: generated logs, configs, running the binary, and the
//! external tools of the end-to-end tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use helio::fixture::generate::{FixtureLog, LogSpec, write_log};
use helio::fixture::server::{LogServer, ServerOptions};
use helio::torrent::range::TorrentRange;
use tempfile::TempDir;

pub const ORIGIN: &str = "test.helio.invalid/2026";
pub const CONTACT: &str = "tests@helio.invalid";

/// A generated log in a temporary folder.
pub struct TestLog {
    pub dir: TempDir,
    pub log: FixtureLog,
    pub seed: u64,
}

impl TestLog {
    pub fn new(size: u64) -> TestLog {
        TestLog::with_seed(size, 7)
    }

    pub fn with_seed(size: u64, seed: u64) -> TestLog {
        let dir = tempfile::tempdir().unwrap();
        let log = write_log(dir.path(), &spec(size, seed)).unwrap();
        TestLog { dir, log, seed }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Grows (or shrinks) the log in place, as a live log would.
    pub fn resize(&mut self, size: u64) {
        self.log = write_log(self.dir.path(), &spec(size, self.seed)).unwrap();
    }

    /// Serves it over loopback, gzipping data tiles whatever the client asks for.
    pub fn serve(&self) -> LogServer {
        LogServer::start(self.path(), ServerOptions { gzip_data_tiles: true, ..ServerOptions::default() }).unwrap()
    }
}

fn spec(size: u64, seed: u64) -> LogSpec {
    LogSpec { origin: ORIGIN.to_string(), seed, size, gzip_data_tiles: false }
}

/// A folder with a config file and an output folder.
pub struct Site {
    pub dir: TempDir,
}

impl Site {
    pub fn new() -> Site {
        Site { dir: tempfile::tempdir().unwrap() }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("helio.yaml")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn write_config(&self, yaml: &str) -> PathBuf {
        std::fs::write(self.config(), yaml).unwrap();
        self.config()
    }

    /// A config for one log at `log_url`, verified with the fixture's key.
    pub fn config_for(&self, name: &str, log_url: &str, log: &FixtureLog, extra: &str) -> PathBuf {
        self.write_config(&format!(
            "scraper_contact_email: {CONTACT}\nentries_per_torrent: 1024\ntrackers: [udp://tracker.helio.invalid:1337/announce]\n\
             webseeds: [http://127.0.0.1:9/webseed/]\nfeed_url_base: https://feeds.helio.invalid/t\n{extra}\
             logs:\n  - name: {name}\n    log_url: {log_url}\n    origin: {ORIGIN}\n    key: {}\n",
            log.key
        ))
    }

    /// Runs `helio build` on this site's config and output folder.
    pub fn build(&self) -> Run {
        helio(&["build", "-c", self.config().to_str().unwrap(), self.out().to_str().unwrap()])
    }

    /// Every file under the output folder with its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot(&self.out())
    }

    pub fn torrent(&self, log: &str, start: u64, end: u64) -> Vec<u8> {
        std::fs::read(self.out().join(log).join(format!("L01-{start}-{end}.torrent"))).unwrap()
    }
}

/// The outcome of running the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, 0, "helio failed:\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

/// Runs the helio binary with a scrubbed environment: no developer settings
/// leak in, and retries give up quickly.
pub fn helio(args: &[&str]) -> Run {
    helio_with_env(args, &[])
}

pub fn helio_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = command(args, env).output().unwrap();
    finish(output)
}

pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_helio"));
    command.args(args);
    for var in ["HELIO_CONFIG", "HELIO_LOG", "RUST_LOG", "HELIO_RETRY_BUDGET"] {
        command.env_remove(var);
    }
    command.env("HELIO_RETRY_BUDGET", "3");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs the binary like [`helio_with_env`], but kills it and fails the test
/// if it has not exited within `limit` (a read that blocks for ever).
pub fn helio_within(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut child = command(args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = out.read_to_end(&mut text);
        text
    });
    let stderr = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = err.read_to_end(&mut text);
        text
    });
    let code = wait_bounded(&mut child, limit, &format!("helio {}", args.join(" ")));
    Run {
        code,
        stdout: String::from_utf8_lossy(&stdout.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap()).into_owned(),
    }
}

/// Makes a FIFO at `path`, which blocks whoever opens it for reading until
/// a writer comes — none ever does.
pub fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success(), "mkfifo {}", path.display());
}

pub fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// An external program an end-to-end test needs. A test that needs one is
/// marked `#[cfg_attr(not(has_<tool>), ignore = …)]` (build.rs sets the cfg
/// when the tool is installed, and always under `HELIO_E2E=1`), so it is
/// reported as ignored where the tool is missing; if it runs anyway (`cargo
/// test -- --ignored`, or `HELIO_E2E=1`) without the tool, it says so and
/// stops: quietly under `--ignored`, as a failure under `HELIO_E2E=1`.
pub fn tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        skip(test, &format!("{name} is not installed"));
    }
    found
}

/// A Python interpreter that can import `module`: `$HELIO_PYTHON`, else the
/// system's `/usr/bin/python3` (where Debian puts python3-libtorrent), else `python3`.
pub fn python_with(module: &str, test: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("HELIO_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/python3"), PathBuf::from("python3")]);
    for python in candidates {
        let imported = Command::new(&python).args(["-c", &format!("import {module}")]).output();
        if imported.is_ok_and(|o| o.status.success()) {
            return Some(python);
        }
    }
    skip(test, &format!("no Python with the {module} module (set HELIO_PYTHON)"));
    None
}

pub fn skip(test: &str, why: &str) {
    if std::env::var_os("HELIO_E2E").is_some_and(|v| v == "1") {
        panic!("HELIO_E2E=1 but {why}: {test} cannot run");
    }
    eprintln!("SKIPPED: {test}: {why}");
}

/// Runs a Python script with arguments and returns its stdout, failing the test on error.
pub fn run_python(python: &Path, script: &str, args: &[&str]) -> String {
    let output = Command::new(python).arg("-c").arg(script).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Lays the log's tiles out as the torrent has them (data tiles uncompressed,
/// README.md from the profile), under `dir/<torrent name>/`.
pub fn lay_out(log_dir: &Path, torrent: &[u8], readme: &[u8], dir: &Path) -> PathBuf {
    #[derive(serde::Deserialize)]
    struct Raw {
        info: Info,
    }
    #[derive(serde::Deserialize)]
    struct Info {
        name: String,
        files: Vec<File>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        path: Vec<String>,
    }
    let raw: Raw = serde_bencode::from_bytes(torrent).unwrap();
    let root = dir.join(&raw.info.name);
    // BEP 47 pad files of a hybrid torrent are never on disk.
    for file in raw.info.files.iter().filter(|file| file.path.first().is_none_or(|first| first != ".pad")) {
        lay_out_file(log_dir, &file.path.join("/"), readme, &root);
    }
    root
}

/// Lays out the files of `range` as helio's torrent of it has them, under
/// `dir/<name>/`, without a torrent to read the list from.
pub fn lay_out_range(log_dir: &Path, range: TorrentRange, readme: &[u8], dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    for file in range.content() {
        lay_out_file(log_dir, &file.path(), readme, &root);
    }
    root
}

fn lay_out_file(log_dir: &Path, relative: &str, readme: &[u8], root: &Path) {
    let target = root.join(relative);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let bytes = if relative == "README.md" {
        readme.to_vec()
    } else {
        let raw = std::fs::read(log_dir.join(relative)).unwrap();
        // Only data tiles may be stored gzipped; a hash tile can start with the magic by chance.
        if relative.starts_with("tile/data/") && raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
            out
        } else {
            raw
        }
    };
    std::fs::write(target, bytes).unwrap();
}

/// Runs aria2c's own piece check (`--hash-check-only`) of `torrent` against the
/// files under `dir`, failing the test unless every piece verifies.
pub fn aria2_check(aria2c: &Path, torrent: &Path, dir: &Path) {
    let check = Command::new(aria2c)
        .args(["--check-integrity=true", "--hash-check-only=true", "--console-log-level=warn", "--summary-interval=0"])
        .arg(format!("--dir={}", dir.display()))
        .arg(torrent)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "aria2c: {out}{}", String::from_utf8_lossy(&check.stderr));
    assert!(out.contains("OK"), "aria2c did not report every piece verified: {out}");
}

/// A long-running helio command (`serve`, `mirror`) on loopback, killed when
/// dropped; what it prints is collected as it goes.
pub struct Listening {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// With `--listen-https`: the HTTPS address.
    pub https: Option<SocketAddr>,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

impl Listening {
    /// Starts `helio ARGS` and waits, at most `limit`, for the `listening on
    /// http://ADDR` it prints (and `https://ADDR` with `--listen-https`).
    pub fn start(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Listening {
        Listening::start_command(command(args, env), args, limit)
    }

    /// [`Listening::start`] with at most `files` open files (`ulimit -n`),
    /// which lowers the server's limit of connections to `files` - 256.
    pub fn start_with_files(args: &[&str], env: &[(&str, &str)], files: u64, limit: Duration) -> Listening {
        let mut script = format!("ulimit -n {files} && exec \"$0\"");
        for i in 1..=args.len() {
            script.push_str(&format!(" \"${i}\""));
        }
        let inner = command(args, env);
        let mut sh = Command::new("sh");
        sh.arg("-c").arg(script).arg(inner.get_program()).args(args);
        for (key, value) in inner.get_envs() {
            match value {
                Some(value) => sh.env(key, value),
                None => sh.env_remove(key),
            };
        }
        Listening::start_command(sh, args, limit)
    }

    /// Starts `command` (helio with `args`) and waits as [`Listening::start`] does.
    fn start_command(mut command: Command, args: &[&str], limit: Duration) -> Listening {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                collected.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let lines = Arc::clone(&stdout);
        let (found, listening) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = found.send((false, addr.parse::<SocketAddr>().unwrap()));
                } else if let Some(addr) = line.strip_prefix("listening on https://") {
                    let _ = found.send((true, addr.parse::<SocketAddr>().unwrap()));
                }
                lines.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let wants_https = args.contains(&"--listen-https");
        let (mut addr, mut https) = (None, None);
        while addr.is_none() || (wants_https && https.is_none()) {
            match listening.recv_timeout(limit) {
                Ok((false, found)) => addr = Some(found),
                Ok((true, found)) => https = Some(found),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    thread::sleep(Duration::from_millis(100));
                    panic!("helio {} did not start:\n{}", args[0], stderr.lock().unwrap());
                }
            }
        }
        Listening { child: Some(child), addr: addr.unwrap(), https, stdout, stderr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    pub fn terminate(mut self) -> i32 {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
        let mut child = self.child.take().unwrap();
        wait_bounded(&mut child, Duration::from_secs(15), "helio after SIGTERM")
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for a child at most `limit`, killing it (and failing) past that.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Headless Chromium with a profile of its own and nothing that reaches the
/// network; the caller adds what to do with which page.
pub fn chromium_command(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}
