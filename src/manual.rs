//! What helio says about itself outside `--help`: shell completion scripts
//! (`helio completions SHELL`, clap_complete) and roff man pages (`helio man
//! [COMMAND]`, clap_mangen), both generated from the command line defined in
//! [`crate::cli`], so they never drift from the flags the binary has.
//! `contrib/dist.sh` puts their output in every release archive.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;
use thiserror::Error;

use crate::cli::Cli;

/// A man page that does not exist (exit status 2).
#[derive(Debug, Error)]
#[error("helio has no command {name:?}; man pages: {}", known.join(", "))]
pub struct ManualError {
    pub name: String,
    pub known: Vec<String>,
}

/// The command line as clap sees it once built (subcommands know their
/// full names, global settings are propagated), without the `help`
/// subcommand, which has no page of its own.
fn command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// Writes the completion script for `shell`. A closed pipe is no failure.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    let mut command = command();
    let mut buffer = Vec::new();
    clap_complete::generate(shell, &mut command, "helio", &mut buffer);
    let _ = out.write_all(&buffer).and_then(|()| out.flush());
}

/// Writes helio(1), or helio-COMMAND(1) for a visible command.
pub fn man_page(name: Option<&str>, out: &mut dyn Write) -> Result<(), ManualError> {
    let command = command();
    let page = match name {
        None => command,
        Some(name) => {
            let visible = || command.get_subcommands().filter(|sub| !sub.is_hide_set());
            match visible().find(|sub| sub.get_name() == name) {
                Some(sub) => sub.clone(),
                None => {
                    let known = visible().map(|sub| sub.get_name().to_string()).collect();
                    return Err(ManualError { name: name.to_string(), known });
                }
            }
        }
    };
    // Every page names the program and its version, as helio(1) does.
    let source = format!("helio {}", env!("HELIO_BUILD_VERSION"));
    let mut buffer = Vec::new();
    // Rendering into memory cannot fail; writing out may (a closed pipe), which is no failure.
    let _ = clap_mangen::Man::new(page).source(source).render(&mut buffer);
    let _ = out.write_all(&buffer).and_then(|()| out.flush());
    Ok(())
}

/// The names of the commands that have a page of their own.
pub fn commands() -> Vec<String> {
    command().get_subcommands().filter(|sub| !sub.is_hide_set()).map(|sub| sub.get_name().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: Option<&str>) -> String {
        let mut out = Vec::new();
        man_page(name, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_command_has_its_own_page_with_its_flags() {
        let build = page(Some("build"));
        let title = format!(".TH helio-build 1  \"helio {}\"", env!("HELIO_BUILD_VERSION"));
        assert!(build.contains(&title), "{build}");
        assert!(build.contains("\\fBhelio build\\fR"), "{build}");
        assert!(build.contains("resume\\-from"), "{build}");
        let root = page(None);
        assert!(root.contains("helio\\-build(1)"), "{root}");
        assert!(!root.contains("fixture"), "hidden commands stay out of the manual");
    }

    #[test]
    fn an_unknown_page_names_the_known_ones() {
        let error = man_page(Some("fixture"), &mut Vec::new()).unwrap_err();
        assert!(error.to_string().contains("build, serve, init, verify, mirror, logs, completions, man"), "{error}");
        assert_eq!(commands().len(), 8);
    }

    #[test]
    fn completions_know_the_commands() {
        let mut out = Vec::new();
        completions(Shell::Bash, &mut out);
        let script = String::from_utf8(out).unwrap();
        assert!(script.contains("complete -F _helio") && script.contains("logs"), "{script}");
    }
}
