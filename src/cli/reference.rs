//! The command tree as users read it: `--help` with examples, shell completions, man pages and
//! the command reference in docs/CLI.md, all generated from the one clap definition.

#[cfg(any(test, feature = "test-support"))]
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Command, CommandFactory};

use super::error::{CliError, CliResult};
use super::examples::{examples_of, examples_text};
use super::{Cli, Context, RunCommand};

/// The clap command of the tool, every command's help ending in its examples.
pub fn command() -> Command {
    with_examples(Cli::command(), "")
}

fn with_examples(mut command: Command, path: &str) -> Command {
    if let Some(examples) = examples_of(path) {
        let text = examples_text(examples);
        let after = match command.get_after_help() {
            Some(existing) => format!("{existing}\n\n{text}"),
            None => text,
        };
        command = command.after_help(after);
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in names {
        let child = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        command = command.mut_subcommand(&name, |sub| with_examples(sub, &child));
    }
    command
}

/// Every command's path ("", "import", "blob put", ...), depth first in definition order.
pub fn command_paths() -> Vec<String> {
    fn walk(command: &Command, path: &str, paths: &mut Vec<String>) {
        paths.push(path.to_string());
        for sub in command.get_subcommands() {
            let child = if path.is_empty() {
                sub.get_name().to_string()
            } else {
                format!("{path} {}", sub.get_name())
            };
            walk(sub, &child, paths);
        }
    }
    let mut paths = Vec::new();
    walk(&Cli::command(), "", &mut paths);
    paths
}

/// Writes a shell's completion script for `oci-store` to standard output.
#[derive(Debug, Args)]
pub struct CompletionsCommand {
    /// The shell to complete in
    shell: clap_complete::Shell,
}

impl RunCommand for CompletionsCommand {
    fn run(self, _context: &Context) -> CliResult<ExitCode> {
        let mut out = std::io::stdout().lock();
        clap_complete::generate(self.shell, &mut command(), "oci-store", &mut out);
        Ok(ExitCode::SUCCESS)
    }
}

/// Writes a man page for the tool and one for every command (`oci-store-blob-put.1`) into
/// DIR, generated from the same definitions as `--help`.
#[derive(Debug, Args)]
pub struct ManCommand {
    /// Directory to write the pages into (created if absent)
    dir: PathBuf,
}

impl RunCommand for ManCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let io_error = |source| CliError::Input {
            context: "writing man pages into",
            path: self.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io_error)?;
        clap_mangen::generate_to(command(), &self.dir).map_err(io_error)?;
        let written = command_paths().len();
        context.output().value(
            &serde_json::json!({ "dir": self.dir, "pages": written }),
            |out| writeln!(out, "wrote {written} man pages to {}", self.dir.display()),
        )?;
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(any(test, feature = "test-support"))]
/// The command reference of docs/CLI.md: per command its summary, usage, its own arguments
/// and options (the global ones are listed once, under the tool itself) and its examples.
pub fn markdown_reference() -> String {
    let mut root = command();
    root.build();
    let mut text = String::new();
    write_command(&mut text, &root, "", true);
    text
}

#[cfg(any(test, feature = "test-support"))]
fn write_command(text: &mut String, command: &Command, path: &str, is_root: bool) {
    let title = if path.is_empty() {
        "oci-store".to_string()
    } else {
        format!("oci-store {path}")
    };
    let _ = writeln!(text, "### `{title}`\n");
    let about = command
        .get_long_about()
        .or(command.get_about())
        .map(|about| about.to_string())
        .unwrap_or_default();
    if !about.is_empty() {
        let _ = writeln!(text, "{}\n", about.trim());
    }
    let aliases: Vec<&str> = command.get_visible_aliases().collect();
    if !aliases.is_empty() {
        let _ = writeln!(text, "Aliases: {}\n", aliases.join(", "));
    }
    let usage = command
        .clone()
        .render_usage()
        .to_string()
        .replace("Usage: ", "");
    let _ = writeln!(text, "```text\n{}\n```\n", usage.trim());
    let arguments: Vec<String> = command
        .get_arguments()
        .filter(|arg| is_root || !arg.is_global_set())
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .map(describe_argument)
        .collect();
    if !arguments.is_empty() {
        for argument in arguments {
            let _ = writeln!(text, "- {argument}");
        }
        text.push('\n');
    }
    if let Some(examples) = examples_of(path) {
        let _ = writeln!(text, "```sh\n{}\n```\n", examples.join("\n"));
    }
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let child = if path.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{path} {}", sub.get_name())
        };
        write_command(text, sub, &child, false);
    }
}

#[cfg(any(test, feature = "test-support"))]
fn describe_argument(arg: &clap::Arg) -> String {
    let name = match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("`-{short}`, `--{long}`"),
        (None, Some(long)) => format!("`--{long}`"),
        (Some(short), None) => format!("`-{short}`"),
        (None, None) => {
            let value = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or_else(
                    || arg.get_id().to_string().to_uppercase(),
                    |name| name.to_string(),
                );
            format!("`{value}`")
        }
    };
    let value = if arg.get_long().is_some() && arg.get_action().takes_values() {
        arg.get_value_names()
            .and_then(|names| names.first())
            .map(|name| format!(" `{name}`"))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|help| help.to_string().replace('\n', " "))
        .unwrap_or_default();
    let mut notes = Vec::new();
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| value.get_name().to_string())
        .collect();
    if !possible.is_empty() && arg.get_action().takes_values() {
        notes.push(format!("one of {}", possible.join(", ")));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|value| value.to_string_lossy().to_string())
        .collect();
    if !defaults.is_empty() && !arg.is_hide_default_value_set() && arg.get_action().takes_values() {
        notes.push(format!("default {}", defaults.join(", ")));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    format!("{name}{value}: {help}{notes}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits an example line the way a shell would, for these simple lines: the command of
    /// the pipeline that runs `oci-store` (`docker save x | oci-store import -` runs it
    /// second), `VAR=value` prefixes dropped, cut at a redirection or comment, single quotes
    /// kept together.
    fn example_words(line: &str) -> Vec<String> {
        let mut commands: Vec<Vec<String>> = vec![Vec::new()];
        let mut current = String::new();
        let mut quoted = false;
        let mut cut = false;
        for c in line.chars() {
            if cut && c != '|' {
                continue;
            }
            match c {
                '\'' => quoted = !quoted,
                '|' if !quoted => {
                    let words = commands.last_mut().expect("one command at least");
                    if !current.is_empty() {
                        words.push(std::mem::take(&mut current));
                    }
                    commands.push(Vec::new());
                    cut = false;
                }
                '>' | '#' if !quoted => cut = true,
                ' ' if !quoted => {
                    if !current.is_empty() {
                        let words = commands.last_mut().expect("one command at least");
                        words.push(std::mem::take(&mut current));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            commands
                .last_mut()
                .expect("one command at least")
                .push(current);
        }
        let mut words = commands
            .into_iter()
            .find(|words| words.iter().any(|w| w == "oci-store"))
            .expect("an example runs oci-store");
        let start = words
            .iter()
            .position(|w| w == "oci-store")
            .expect("found above");
        words.split_off(start)
    }

    #[test]
    fn every_command_has_an_example_and_every_example_parses() {
        for path in command_paths() {
            assert!(
                examples_of(&path).is_some(),
                "`oci-store {path}` has no example in examples.rs"
            );
        }
        let paths = command_paths();
        for (path, examples) in super::super::examples::EXAMPLES {
            assert!(
                paths.iter().any(|p| p == path),
                "example for unknown command {path:?}"
            );
            for line in *examples {
                let words = example_words(line);
                if let Err(error) = command().try_get_matches_from(&words) {
                    panic!("example {line:?} does not parse: {error}");
                }
            }
        }
    }

    #[test]
    fn the_reference_lists_every_command() {
        let reference = markdown_reference();
        for path in command_paths() {
            let title = if path.is_empty() {
                "### `oci-store`".to_string()
            } else {
                format!("### `oci-store {path}`")
            };
            assert!(reference.contains(&title), "{title} missing");
        }
    }
}
