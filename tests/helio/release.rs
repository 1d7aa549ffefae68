//! helio as operators get it: `contrib/dist.sh` packs a release archive (the
//! binary, README, LICENSE, shell completions, man pages) with its SHA-256,
//! `contrib/install.sh` installs one from a release server (here on
//! loopback, laid out as GitHub's) and refuses a corrupted one; and the
//! commands a release adds: `--version` naming the commit, `helio
//! completions`, `helio man`, `helio logs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use helio::fixture::server::{Fault, LogServer, ServerOptions};
use tempfile::TempDir;

use crate::support::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `contrib/dist.sh OUT` with the binary under test (no second
/// release build) and returns the archive it printed.
pub fn pack(out: &Path, env: &[(&str, &str)]) -> PathBuf {
    let mut command = Command::new("sh");
    command.arg(repo("contrib/dist.sh")).arg(out).env("HELIO_BIN", env!("CARGO_BIN_EXE_helio"));
    command.env_remove("CARGO_BUILD_TARGET");
    for (key, value) in env {
        command.env(key, value);
    }
    let run = finish(command.output().unwrap());
    assert_eq!(run.code, 0, "dist.sh failed:\n{}\n{}", run.stdout, run.stderr);
    let archive = PathBuf::from(run.stdout.trim());
    assert!(archive.is_file(), "dist.sh printed {:?}", run.stdout);
    archive
}

/// The archive of the binary under test, packed once per test run (the
/// debug binary is large: packing it takes a while) into the target
/// folder's scratch space, replaced by the next run.
pub fn packed() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dist");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        pack(&dir, &[("SOURCE_DATE_EPOCH", "1767225600")])
    })
}

/// The visible commands, as `helio --help` lists them.
fn commands() -> Vec<String> {
    let help = helio(&["--help"]);
    let section = help.stdout.split("Commands:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

fn unpack(archive: &Path, into: &Path) {
    let status = Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(into).status().unwrap();
    assert!(status.success());
}

#[test]
fn dist_packs_binary_docs_completions_and_man_pages() {
    let archive = packed();
    let out = archive.parent().unwrap();
    let file_name = archive.file_name().unwrap().to_str().unwrap().to_string();
    let name = file_name.strip_suffix(".tar.gz").unwrap().to_string();
    assert!(name.starts_with(&format!("helio-{VERSION}-")), "{name}");

    // The checksum file is what sha256sum writes and checks.
    let sums = std::fs::read_to_string(out.join(format!("{file_name}.sha256"))).unwrap();
    assert_eq!(sums, format!("{}  {file_name}\n", sha256_hex(archive)));

    let listing = Command::new("tar").arg("-tzf").arg(archive).output().unwrap();
    let entries: BTreeSet<String> = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .filter(|entry| !entry.ends_with('/'))
        .map(|entry| entry.strip_prefix(&format!("{name}/")).unwrap_or_else(|| panic!("{entry}")).to_string())
        .collect();
    let mut expected: BTreeSet<String> =
        ["helio", "README.md", "LICENSE", "man/helio.1"].into_iter().map(str::to_string).collect();
    for completion in ["helio.bash", "_helio", "helio.fish", "helio.elv", "_helio.ps1"] {
        expected.insert(format!("completions/{completion}"));
    }
    let commands = commands();
    assert!(commands.contains(&"logs".to_string()) && commands.len() >= 8, "{commands:?}");
    expected.extend(commands.iter().map(|command| format!("man/helio-{command}.1")));
    assert_eq!(entries, expected, "every command has its page");

    let unpacked = tempfile::tempdir().unwrap();
    unpack(archive, unpacked.path());
    let dir = unpacked.path().join(&name);
    assert_eq!(std::fs::read(dir.join("helio")).unwrap(), std::fs::read(env!("CARGO_BIN_EXE_helio")).unwrap());
    assert_eq!(std::fs::read(dir.join("README.md")).unwrap(), std::fs::read(repo("README.md")).unwrap());
    assert_eq!(std::fs::read(dir.join("LICENSE")).unwrap(), std::fs::read(repo("LICENSE")).unwrap());
    let page = std::fs::read_to_string(dir.join("man/helio-build.1")).unwrap();
    assert!(page.contains(&format!(".TH helio-build 1  \"helio {VERSION}")), "{page}");
    assert!(page.contains("resume\\-from"), "{page}");

    // Same inputs, same archive (with a small stand-in for the binary: the
    // debug build is slow to pack twice).
    let stand_in = tempfile::tempdir().unwrap();
    let fake = stand_in.path().join("helio");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ncase $1 in --version) echo 'helio {VERSION}' ;; *) echo \"$*\" ;; esac\n"),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fake = fake.to_str().unwrap();
    let twice: Vec<String> = ["a", "b"]
        .iter()
        .map(|run| {
            let out = stand_in.path().join(run);
            let mut command = Command::new("sh");
            command
                .arg(repo("contrib/dist.sh"))
                .arg(&out)
                .env("HELIO_BIN", fake)
                .env("SOURCE_DATE_EPOCH", "1767225600");
            assert!(command.status().unwrap().success());
            sha256_hex(&out.join(&file_name))
        })
        .collect();
    assert_eq!(twice[0], twice[1], "dist.sh is reproducible");

    // A binary of another version is refused rather than packed under the wrong name.
    let fake = tempfile::tempdir().unwrap();
    let impostor = fake.path().join("helio");
    std::fs::write(&impostor, "#!/bin/sh\necho helio 9.9.9\n").unwrap();
    std::fs::set_permissions(&impostor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let refused = Command::new("sh")
        .arg(repo("contrib/dist.sh"))
        .arg(fake.path().join("out"))
        .env("HELIO_BIN", &impostor)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("helio 9.9.9, but Cargo.toml says"));
}

#[test]
#[cfg_attr(not(has_groff), ignore = "needs groff, not installed here (HELIO_E2E=1 requires it)")]
fn man_pages_render_without_warnings() {
    let Some(groff) = tool("groff", "man_pages_render_without_warnings") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut pages = vec![("helio".to_string(), helio(&["man"]))];
    pages.extend(commands().into_iter().map(|command| (format!("helio-{command}"), helio(&["man", &command]))));
    for (name, run) in pages {
        run.ok();
        let path = dir.path().join(format!("{name}.1"));
        std::fs::write(&path, &run.stdout).unwrap();
        let output = Command::new(&groff).args(["-man", "-Tutf8", "-ww", "-P-cbou"]).arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success() && stderr.trim().is_empty(), "{name}: {stderr}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("SYNOPSIS") && text.contains(&name), "{name}:\n{text}");
    }
    let build = helio(&["man", "build"]).stdout;
    assert!(build.contains("max\\-time") && build.contains("another build holds the lock of a log"), "{build}");
    let root = helio(&["man"]).stdout;
    assert!(root.contains("helio\\-logs(1)") && !root.contains("fixture"), "{root}");

    let unknown = helio(&["man", "fixture"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("helio has no command \"fixture\"; man pages: build, serve"), "{}", unknown.stderr);
}

/// What bash offers after `words` (the last one being completed), with
/// helio's completion script loaded as bash-completion would.
fn bash_completes(bash: &Path, script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {script}\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE={line:?}\nCOMP_POINT={point}\n\
         _helio helio {current:?} {previous:?}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = script.display(),
        words = words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(" "),
        cword = words.len() - 1,
        point = line.len(),
        current = words[words.len() - 1],
        previous = words[words.len() - 2],
    );
    let output = Command::new(bash).args(["--noprofile", "--norc", "-c", &program]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
}

#[test]
#[cfg_attr(not(has_bash), ignore = "needs bash, not installed here (HELIO_E2E=1 requires it)")]
fn bash_completes_commands_flags_and_shells() {
    let Some(bash) = tool("bash", "bash_completes_commands_flags_and_shells") else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("helio.bash");
    let generated = helio(&["completions", "bash"]);
    generated.ok();
    std::fs::write(&script, &generated.stdout).unwrap();
    assert_eq!(bash_completes(&bash, &script, &["helio", "lo"]), ["logs"]);
    assert!(bash_completes(&bash, &script, &["helio", "build", "--ma"]).contains(&"--max-time".to_string()));
    let shells = bash_completes(&bash, &script, &["helio", "completions", ""]);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.contains(&shell.to_string()), "{shells:?}");
    }
    // Flags only where they mean something.
    let verify = bash_completes(&bash, &script, &["helio", "verify", "-"]);
    assert!(verify.contains(&"--site".to_string()) && !verify.contains(&"--config".to_string()), "{verify:?}");

    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = helio(&["completions", shell]);
        run.ok();
        assert!(run.stdout.contains("max-time") && run.stdout.contains("logs"), "{shell}");
    }
    assert_eq!(helio(&["completions", "tcsh"]).code, 2);
}

#[test]
fn help_shows_only_the_flags_each_command_takes() {
    for command in ["verify", "mirror", "completions", "man"] {
        let help = helio(&[command, "--help"]);
        help.ok();
        assert!(!help.stdout.contains("--config"), "{command}:\n{}", help.stdout);
        assert!(!help.stdout.contains("progress bars"), "{command}:\n{}", help.stdout);
        assert_eq!(helio(&[command, "-c", "helio.yaml", "--help"]).code, 2, "{command} refuses -c");
    }
    for command in ["completions", "man", "logs"] {
        assert!(!helio(&[command, "--help"]).stdout.contains("--quiet"), "{command}");
    }
    for command in ["build", "serve", "init", "logs"] {
        assert!(helio(&[command, "--help"]).stdout.contains("-c, --config <FILE>"), "{command}");
    }
    let build = helio(&["build", "--help"]).stdout;
    assert!(build.contains("another build holds the lock of a log of this run"), "{build}");
    assert!(!build.contains("output directory's lock"), "{build}");
    let serve = helio(&["serve", "--help"]).stdout;
    assert!(serve.contains("[OUT_DIR]"), "{serve}");
    let mirror = helio(&["mirror", "--help"]).stdout;
    assert!(mirror.contains("--cache-mb <MIB>"), "{mirror}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let run = helio(&["--version"]);
    run.ok();
    let line = run.stdout.trim();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let checkout = repo(".git").exists();
    match (checkout, git(&["rev-parse", "--short=12", "HEAD"]), git(&["log", "-1", "--format=%cs"])) {
        (true, Some(commit), Some(date)) => assert_eq!(line, format!("helio {VERSION} ({commit} {date})")),
        _ => assert_eq!(line, format!("helio {VERSION}")),
    }
    let build = helio(&["build", "--version"]).stdout;
    assert_eq!(build.trim().strip_prefix("helio-build "), line.strip_prefix("helio "), "every command says the same");
}

/// A loopback server laid out as GitHub's releases: the archive under
/// `releases/download/v<version>/`, and `releases/latest` redirecting to
/// `releases/tag/v<version>`.
pub struct ReleaseServer {
    _root: TempDir,
    pub server: LogServer,
    pub archive: PathBuf,
}

impl ReleaseServer {
    pub fn start() -> ReleaseServer {
        let root = tempfile::tempdir().unwrap();
        let folder = root.path().join(format!("releases/download/v{VERSION}"));
        std::fs::create_dir_all(&folder).unwrap();
        // A copy of the archive and its checksum: a test may corrupt its own.
        let packed = packed();
        let archive = folder.join(packed.file_name().unwrap());
        std::fs::copy(packed, &archive).unwrap();
        let sums = format!("{}.sha256", packed.display());
        std::fs::copy(&sums, format!("{}.sha256", archive.display())).unwrap();
        let server = LogServer::start(root.path(), ServerOptions::default()).unwrap();
        let tag = format!("{}releases/tag/v{VERSION}", server.url());
        server.set_fault(move |path, _| {
            (path == "releases/latest").then(|| Fault::Status {
                code: 302,
                headers: vec![("Location".into(), tag.clone())],
                body: Vec::new(),
            })
        });
        ReleaseServer { _root: root, server, archive }
    }

    /// What `HELIO_BASE_URL` is for this server.
    pub fn base_url(&self) -> String {
        format!("{}releases/download", self.server.url())
    }
}

/// Runs `contrib/install.sh` with dash (the POSIX sh it is written for).
pub fn install(dash: &Path, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(dash);
    command.arg(repo("contrib/install.sh"));
    for var in ["HELIO_VERSION", "HELIO_BASE_URL", "HELIO_INSTALL_DIR", "HELIO_REPOSITORY"] {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    finish(command.output().unwrap())
}

#[test]
#[cfg_attr(not(all(has_curl, has_dash)), ignore = "needs curl and dash, not installed here (HELIO_E2E=1 requires it)")]
fn install_sh_installs_a_release_and_refuses_a_corrupted_one() {
    let test = "install_sh_installs_a_release_and_refuses_a_corrupted_one";
    let (Some(dash), Some(_curl)) = (tool("dash", test), tool("curl", test)) else { return };
    let release = ReleaseServer::start();
    let base = release.base_url();
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_str().unwrap();
    let expected = helio(&["--version"]).stdout;

    // The latest release into ~/.local/bin, the defaults.
    let run = install(&dash, &[("HELIO_BASE_URL", &base), ("HOME", home_dir)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let installed = home.path().join(".local/bin/helio");
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout), expected);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&installed).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o755);
    assert!(run.stderr.contains(&format!("installed {}", expected.trim())), "{}", run.stderr);
    assert_eq!(release.server.hits("releases/latest"), 1, "latest is asked once");

    // A pinned version into a folder of one's choice.
    let pinned = home.path().join("bin");
    let pinned_dir = pinned.to_str().unwrap();
    let run =
        install(&dash, &[("HELIO_BASE_URL", &base), ("HELIO_VERSION", VERSION), ("HELIO_INSTALL_DIR", pinned_dir)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(pinned.join("helio")).unwrap(), std::fs::read(env!("CARGO_BIN_EXE_helio")).unwrap());
    assert_eq!(release.server.hits("releases/latest"), 1, "a pinned version does not ask");

    // A version that was never released installs nothing.
    let nowhere = home.path().join("nowhere");
    let run = install(
        &dash,
        &[("HELIO_BASE_URL", &base), ("HELIO_VERSION", "9.9.9"), ("HELIO_INSTALL_DIR", nowhere.to_str().unwrap())],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("cannot download") && run.stderr.contains("v9.9.9/helio-9.9.9-"), "{}", run.stderr);
    assert!(!nowhere.exists());

    // One byte changed in the archive on the server: refused, nothing installed.
    let mut bytes = std::fs::read(&release.archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&release.archive, bytes).unwrap();
    let fresh = home.path().join("fresh");
    let run = install(
        &dash,
        &[("HELIO_BASE_URL", &base), ("HELIO_VERSION", VERSION), ("HELIO_INSTALL_DIR", fresh.to_str().unwrap())],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("checksum mismatch") && run.stderr.contains("nothing installed"), "{}", run.stderr);
    assert!(!fresh.exists(), "not even the folder is made");

    // Over an existing install: the old binary stays, and no temporary file is left.
    std::fs::write(pinned.join("helio"), "#!/bin/sh\necho helio 0.0.1\n").unwrap();
    let run =
        install(&dash, &[("HELIO_BASE_URL", &base), ("HELIO_VERSION", VERSION), ("HELIO_INSTALL_DIR", pinned_dir)]);
    assert_ne!(run.code, 0);
    assert_eq!(std::fs::read_to_string(pinned.join("helio")).unwrap(), "#!/bin/sh\necho helio 0.0.1\n");
    let left: Vec<_> = std::fs::read_dir(&pinned).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["helio"], "{left:?}");
}

#[test]
fn helio_logs_lists_the_configured_logs() {
    let site = Site::new();
    let config = site.write_config(&format!(
        "scraper_contact_email: {CONTACT}\nlogs:\n\
         - name: sycamore2026h1\n  log_url: https://mon.sycamore.ct.letsencrypt.org/2026h1/\n  format: hybrid\n\
         - name: retired\n  log_url: https://retired.example.org/\n  final: true\n"
    ));
    let config = config.to_str().unwrap();
    let run = helio(&["logs", "-c", config]);
    run.ok();
    assert_eq!(
        run.stdout,
        "NAME            FORMAT  FINAL  LOG_URL\n\
         sycamore2026h1  hybrid  no     https://mon.sycamore.ct.letsencrypt.org/2026h1/\n\
         retired         v1      yes    https://retired.example.org/\n"
    );
    let run = helio(&["logs", "-c", config, "--json"]);
    run.ok();
    assert_eq!(run.stdout.lines().count(), 1, "one line, as a GITHUB_OUTPUT value must be");
    let logs: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        logs,
        serde_json::json!([
            {"name": "sycamore2026h1", "log_url": "https://mon.sycamore.ct.letsencrypt.org/2026h1/", "final": false, "format": "hybrid"},
            {"name": "retired", "log_url": "https://retired.example.org/", "final": true, "format": "v1"},
        ])
    );
    // $HELIO_CONFIG, as for every command that reads the config.
    let run = helio_with_env(&["logs", "--json"], &[("HELIO_CONFIG", config)]);
    assert_eq!(run.code, 0);
    // A config that does not load is a usage error naming it.
    site.write_config("logs: []\nwebseed: x\n");
    let run = helio(&["logs", "-c", config]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("unknown key `webseed`"), "{}", run.stderr);
}
