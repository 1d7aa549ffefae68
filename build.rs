//! What the compiler cannot know by itself:
//!
//! - `HELIO_BUILD_VERSION`, what `helio --version` prints: the crate's version,
//!   followed by the commit and its date when built from a git checkout
//!   (`0.1.0 (736214c0a1b2 2026-12-06)`), the plain version otherwise (a crate
//!   tarball has no `.git`).

use std::path::Path;
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let version = match git_commit() {
        Some((commit, date)) => format!("{version} ({commit} {date})"),
        None => version,
    };
    println!("cargo::rustc-env=HELIO_BUILD_VERSION={version}");
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
