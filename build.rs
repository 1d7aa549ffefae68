//! What the compiler cannot know by itself:
//!
//! - which of the programs the end-to-end tests drive are installed:
//!   `cfg(has_<tool>)` for each (`has_chromium`, `has_py_libtorrent`, …), and
//!   `cfg(is_root)`, so that a test whose tool is missing is reported as
//!   ignored, with the reason, rather than as passed. With `HELIO_E2E=1` (as
//!   `.ci/run` sets) every one is on: a missing tool then fails its test;
//! - `HELIO_BUILD_VERSION`, what `helio --version` prints: the crate's version,
//!   followed by the commit and its date when built from a git checkout
//!   (`0.1.0 (736214c0a1b2 2026-12-06)`), the plain version otherwise (a crate
//!   tarball has no `.git`).

use std::path::Path;
use std::process::Command;

/// The programs the tests run, by the name of their `cfg(has_…)`.
const PROGRAMS: &[(&str, &str)] = &[
    ("aria2c", "aria2c"),
    ("bash", "bash"),
    ("chromium", "chromium"),
    ("curl", "curl"),
    ("dash", "dash"),
    ("groff", "groff"),
    ("openssl", "openssl"),
    ("promtool", "promtool"),
    ("script", "script"),
    ("systemd_analyze", "systemd-analyze"),
    ("zizmor", "zizmor"),
];

/// The Python modules the tests import, by the name of their `cfg(has_py_…)`.
const MODULES: &[(&str, &str)] = &[
    ("feedparser", "feedparser"),
    ("hashlib", "hashlib"),
    ("libtorrent", "libtorrent"),
    ("moto", "moto.server"),
    ("torf", "torf"),
    ("torrentfile", "torrentfile"),
];

fn main() {
    tools();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let version = match git_commit() {
        Some((commit, date)) => format!("{version} ({commit} {date})"),
        None => version,
    };
    println!("cargo::rustc-env=HELIO_BUILD_VERSION={version}");
}

/// `cfg(has_…)` for every test tool found (all of them under `HELIO_E2E=1`).
fn tools() {
    for var in ["PATH", "HELIO_E2E", "HELIO_PYTHON"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let required = std::env::var_os("HELIO_E2E").is_some_and(|v| v == "1");
    let path: Vec<std::path::PathBuf> = std::env::var_os("PATH").iter().flat_map(std::env::split_paths).collect();
    let python = std::env::var_os("HELIO_PYTHON").map(std::path::PathBuf::from);
    let on_path = |name: &str| {
        // zizmor lives in the venv beside $HELIO_PYTHON, as the tests look for it.
        let beside = python.as_ref().and_then(|p| p.parent()).map(|bin| bin.join(name));
        beside.iter().chain(path.iter().map(|dir| dir.join(name)).collect::<Vec<_>>().iter()).any(|p| p.is_file())
    };
    for (cfg, program) in PROGRAMS {
        println!("cargo::rustc-check-cfg=cfg(has_{cfg})");
        if required || on_path(program) {
            println!("cargo::rustc-cfg=has_{cfg}");
        }
    }
    let pythons: Vec<std::path::PathBuf> = python
        .clone()
        .into_iter()
        .chain([std::path::PathBuf::from("/usr/bin/python3"), std::path::PathBuf::from("python3")])
        .collect();
    for (cfg, module) in MODULES {
        println!("cargo::rustc-check-cfg=cfg(has_py_{cfg})");
        let importable = || {
            pythons.iter().any(|python| {
                Command::new(python)
                    .args(["-c", &format!("import {module}")])
                    .output()
                    .is_ok_and(|output| output.status.success())
            })
        };
        if required || importable() {
            println!("cargo::rustc-cfg=has_py_{cfg}");
        }
    }
    println!("cargo::rustc-check-cfg=cfg(is_root)");
    let uid = Command::new("id").arg("-u").output().ok().and_then(|o| String::from_utf8(o.stdout).ok());
    if required || uid.is_some_and(|uid| uid.trim() == "0") {
        println!("cargo::rustc-cfg=is_root");
    }
}

/// The checked-out commit (12 hex digits) and its commit date, when the
/// package's own folder is a git checkout and git runs. Only the package's
/// folder counts: a crate unpacked inside some other repository (as
/// `cargo package` verifies it, under `target/package/`) is not built from
/// that repository's commit.
fn git_commit() -> Option<(String, String)> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let dir = Path::new(&dir);
    // A worktree's `.git` is a file naming the repository's folder.
    if !dir.join(".git").exists() {
        return None;
    }
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let date = git(&["log", "-1", "--format=%cs", "HEAD"])?;
    // Run again when HEAD moves: a checkout, or a commit on the current branch.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|r| r.starts_with("refs/")) {
        watched.push(branch);
    }
    for name in watched {
        // A path that does not exist would make cargo run this script on every build.
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo::rerun-if-changed={path}");
        }
    }
    Some((commit, date))
}
