//! The command line as clap parses it: global flags and the commands.

use crate::commands;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Root directory for storage of container state.
    #[arg(long, global = true, default_value = "/run/ferry")]
    pub root: PathBuf,
    /// Log file (default: standard error).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json (one object per line with level, msg and time).
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported here: there is no systemd).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Path to the criu binary.
    #[arg(long, global = true)]
    pub criu: Option<PathBuf>,
    /// Rootless mode (`spec --rootless`: a rootless config.json).
    #[arg(
        long,
        global = true,
        value_enum,
        ignore_case = true,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub rootless: Option<Rootless>,
}

/// `--rootless`: runc reads a Go boolean (`1`, `t`, `true`, `0`, `f`, `false`, any case) or
/// `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rootless {
    #[value(alias = "1", alias = "t")]
    True,
    #[value(alias = "0", alias = "f")]
    False,
    /// Decide from the user ferry runs as.
    Auto,
}

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    // runc's shape: `<name> version X` then component versions, one per line.
    version = concat!(
        "version ",
        env!("CARGO_PKG_VERSION"),
        "\nspec: 1.2.0\nlibcontainer: 0.7.0"
    ),
    about = "An OCI runtime whose checkpoint and restore keep a container's mount tree exact",
    args_override_self = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(commands::create::CreateArgs),
    /// Run the user process of a created container.
    Start { id: String },
    /// Create and start a container, waiting for it unless --detach.
    Run(commands::run::RunArgs),
    /// Print a container's state as JSON.
    State { id: String },
    /// List containers.
    List(commands::list::ListArgs),
    /// Send a signal to a container's init (or all its processes).
    Kill(commands::kill::KillArgs),
    /// Delete a container and its resources.
    Delete(commands::delete::DeleteArgs),
    /// Run a process in a running container.
    Exec(commands::exec::ExecArgs),
    /// List the processes of a container.
    Ps(commands::ps::PsArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a container's resource limits.
    Update(commands::update::UpdateArgs),
    /// Print resource statistics of a container.
    Events(commands::events::EventsArgs),
    /// Print the features this runtime supports (OCI features JSON).
    Features,
    /// Write a default config.json.
    Spec(commands::spec::SpecArgs),
    /// Checkpoint a running container with CRIU, its mount tree recorded by mountv2.
    Checkpoint(commands::checkpoint::CheckpointArgs),
    /// Restore a container from a checkpoint; its mount tree is checked against the image.
    Restore(commands::restore::RestoreArgs),
    /// Use the mount-v2 engine on its own: dump, plan, restore and diff mount trees.
    Mounts(commands::mounts::MountsArgs),
}

impl Command {
    /// Commands that place processes into a container run from a sealed copy of the binary.
    pub fn enters_container(&self) -> bool {
        matches!(
            self,
            Command::Create(_) | Command::Run(_) | Command::Exec(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied()))
    }

    /// A value outside a flag's choices is refused while parsing, with the flag and every
    /// allowed value named (the runtime never sees it).
    #[test]
    fn unknown_choice_values_are_refused_naming_the_flag_and_the_choices() {
        let cases: &[(&[&str], &str, &[&str])] = &[
            (
                &["checkpoint", "--manage-cgroups-mode", "props", "cl-c1"],
                "--manage-cgroups-mode",
                &["soft", "full", "strict", "ignore"],
            ),
            (
                &["restore", "--manage-cgroups-mode=props", "cl-c1"],
                "--manage-cgroups-mode",
                &["soft", "full", "strict", "ignore"],
            ),
            (
                &["restore", "--mount-mismatch", "maybe", "cl-c1"],
                "--mount-mismatch",
                &["fail", "warn"],
            ),
            (
                &["--rootless=sometimes", "spec"],
                "--rootless",
                &["true", "false", "auto"],
            ),
            (
                &["restore", "--empty-ns", "disk", "cl-c1"],
                "--empty-ns",
                &["network"],
            ),
        ];
        for (args, flag, allowed) in cases {
            let err = match parse(args) {
                Ok(cli) => panic!("{args:?} was accepted: {cli:?}"),
                Err(e) => e,
            };
            assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue, "{args:?}");
            assert!(err.use_stderr(), "{args:?}: a usage error, exit 1");
            let text = err.to_string();
            assert!(text.contains(flag), "{args:?}: {text}");
            for value in *allowed {
                assert!(
                    text.contains(value),
                    "{args:?}: {value} not named in {text}"
                );
            }
        }
    }

    /// `--rootless` takes what runc's Go boolean parsing takes, and alone means true (as
    /// `runc spec --rootless`).
    #[test]
    fn rootless_takes_go_booleans_and_auto() {
        let rootless = |args: &[&str]| match parse(args) {
            Ok(cli) => cli.global.rootless,
            Err(e) => panic!("{args:?}: {e}"),
        };
        for yes in [
            "--rootless=true",
            "--rootless=TRUE",
            "--rootless=1",
            "--rootless=t",
        ] {
            assert_eq!(rootless(&[yes, "spec"]), Some(Rootless::True), "{yes}");
        }
        for no in [
            "--rootless=false",
            "--rootless=False",
            "--rootless=0",
            "--rootless=F",
        ] {
            assert_eq!(rootless(&[no, "spec"]), Some(Rootless::False), "{no}");
        }
        assert_eq!(rootless(&["--rootless=AUTO", "list"]), Some(Rootless::Auto));
        assert_eq!(rootless(&["spec", "--rootless"]), Some(Rootless::True));
        assert_eq!(rootless(&["list"]), None);
    }
}
