//! The recipes shipped in the repository (GitHub Actions workflows, systemd
//! units, the cron file, README's examples) stay runnable: the workflows are
//! YAML of the shape GitHub reads, the units pass `systemd-analyze verify`,
//! and every helio command line in them uses a subcommand and flags the
//! binary has.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

use crate::support::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const WORKFLOWS: &[&str] = &[".github/workflows/publish-pages.yml", ".github/workflows/publish-s3.yml"];

/// Every `run:` script of a workflow.
fn run_scripts(workflow: &Value) -> Vec<String> {
    let mut scripts = Vec::new();
    for (_, job) in workflow["jobs"].as_mapping().unwrap() {
        for step in job["steps"].as_sequence().unwrap() {
            if let Some(run) = step.get("run") {
                scripts.push(run.as_str().unwrap().to_string());
            }
        }
    }
    scripts
}

/// The helio invocations in `text`: each line that runs the binary, from its
/// name on (`helio build …`, `target/release/helio build …`, `./helio build …`).
fn invocations(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "helio" || w.ends_with("/helio")) else { continue };
        let Some(subcommand) = words.get(at + 1) else { continue };
        if !["build", "serve", "init"].contains(subcommand) {
            continue;
        }
        let words: Vec<String> = words[at + 1..]
            .iter()
            .take_while(|w| !["||", "&&", ">/dev/null", "|", ";"].contains(w))
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        found.push(words);
    }
    found
}

/// Checks that the subcommand exists and knows every flag used.
fn check_invocation(source: &str, words: &[String]) {
    let help = helio(&[&words[0], "--help"]);
    assert_eq!(help.code, 0, "{source}: `helio {}` is not a subcommand", words[0]);
    for flag in words.iter().filter(|w| w.starts_with('-')) {
        let known = help.stdout.contains(&format!("{flag} ")) || help.stdout.contains(&format!("{flag},"));
        assert!(known, "{source}: `helio {}` has no flag {flag}:\n{}", words[0], help.stdout);
    }
}

#[test]
fn workflows_parse_and_call_helio_as_it_is() {
    for path in WORKFLOWS {
        let workflow: Value = serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(workflow.get("on").is_some() && workflow["name"].is_string(), "{path}");
        let jobs = workflow["jobs"].as_mapping().unwrap_or_else(|| panic!("{path}: no jobs"));
        for (name, job) in jobs {
            assert!(job["runs-on"].is_string(), "{path}: job {name:?} has no runs-on");
            for step in job["steps"].as_sequence().unwrap() {
                let uses = step.get("uses").and_then(Value::as_str);
                assert!(uses.is_some() != step.get("run").is_some(), "{path}: a step needs one of uses/run: {step:?}");
                if let Some(uses) = uses {
                    let (action, version) = uses.split_once('@').unwrap();
                    assert!(action.contains('/') && version.starts_with('v'), "{path}: {uses}");
                }
            }
        }
        let calls: Vec<Vec<String>> = run_scripts(&workflow).iter().flat_map(|s| invocations(s)).collect();
        assert!(!calls.is_empty(), "{path} never runs helio");
        for call in &calls {
            check_invocation(path, call);
        }
    }

    let pages: Value = serde_yaml::from_str(&read(WORKFLOWS[0])).unwrap();
    let build = run_scripts(&pages).join("\n");
    assert!(build.contains("--resume-from \"$SITE_URL/\""), "{build}");
    assert_eq!(pages["jobs"]["build"]["steps"][1]["uses"], "actions/configure-pages@v5");

    let s3: Value = serde_yaml::from_str(&read(WORKFLOWS[1])).unwrap();
    let matrix = &s3["jobs"]["build"]["strategy"]["matrix"]["log"];
    assert!(matrix.as_sequence().is_some_and(|logs| !logs.is_empty()), "{matrix:?}");
    assert!(run_scripts(&s3).join("\n").contains("--log \"$LOG\""));
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
    // The cron file: five time fields, a user, then the command.
    let line =
        read("contrib/cron/helio").lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap().to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[5..7], ["helio", "/usr/local/bin/helio"], "{line}");
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze", "systemd_units_pass_systemd_analyze_verify") else { return };
    // verify also checks that ExecStart's program exists: point it at the
    // binary under test instead of /usr/local/bin/helio.
    let dir = tempfile::tempdir().unwrap();
    let units = ["helio-build.service", "helio-build.timer", "helio-serve.service"];
    for unit in units {
        let text =
            read(&format!("contrib/systemd/{unit}")).replace("/usr/local/bin/helio", env!("CARGO_BIN_EXE_helio"));
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let output = Command::new(&analyze)
        .arg("verify")
        .args(units.iter().map(|unit| dir.path().join(unit)))
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
