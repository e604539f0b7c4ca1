//! ferry: a runc-compatible OCI runtime whose checkpoint/restore keeps the mount tree exact.

mod cli;
mod cr;
mod lifecycle;
mod mounts;
mod output;

use clap::{Parser, Subcommand};
use cli::GlobalOpts;

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
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(lifecycle::CreateArgs),
    /// Run the user process of a created container.
    Start { id: String },
    /// Create and start a container, waiting for it unless --detach.
    Run(lifecycle::RunArgs),
    /// Print a container's state as JSON.
    State { id: String },
    /// List containers.
    List(lifecycle::ListArgs),
    /// Send a signal to a container's init (or all its processes).
    Kill(lifecycle::KillArgs),
    /// Delete a container and its resources.
    Delete(lifecycle::DeleteArgs),
    /// Run a process in a running container.
    Exec(lifecycle::ExecArgs),
    /// List the processes of a container.
    Ps(lifecycle::PsArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a container's resource limits.
    Update(lifecycle::UpdateArgs),
    /// Print resource statistics of a container.
    Events(lifecycle::EventsArgs),
    /// Print the features this runtime supports (OCI features JSON).
    Features,
    /// Write a default config.json.
    Spec(lifecycle::SpecArgs),
    /// Checkpoint a running container with CRIU, its mount tree recorded by mountv2.
    Checkpoint(cr::CheckpointArgs),
    /// Restore a container from a checkpoint; its mount tree is checked against the image.
    Restore(cr::RestoreArgs),
    /// Use the mount-v2 engine on its own: dump, plan, restore and diff mount trees.
    Mounts(mounts::MountsArgs),
}

impl Command {
    /// Commands that place processes into a container run from a sealed copy of the binary.
    fn enters_container(&self) -> bool {
        matches!(
            self,
            Command::Create(_) | Command::Run(_) | Command::Exec(_)
        )
    }
}

fn main() {
    // A pipe nobody reads fails the write instead of killing ferry (a hook that ignores its
    // stdin must not end `create` half-way); output::stdout still ends ferry quietly when
    // the reader of its own output goes away (`ferry list | head`), as runc does.
    output::catch_sigpipe();
    let args = cli::normalise_args(std::env::args());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version exit 0; usage errors exit 1 as runc does.
            let code = if e.use_stderr() { 1 } else { 0 };
            // urfave/cli's wording for a flag without its value: podman probes for it.
            if matches!(
                e.kind(),
                clap::error::ErrorKind::InvalidValue | clap::error::ErrorKind::NoEquals
            ) && e.to_string().contains("a value is required")
            {
                if let Some(clap::error::ContextValue::String(arg)) =
                    e.get(clap::error::ContextKind::InvalidArg)
                {
                    let flag = arg.split_whitespace().next().unwrap_or(arg);
                    eprintln!("flag needs an argument: {flag}");
                    std::process::exit(1);
                }
            }
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = cli::init_logging(&cli.global) {
        eprintln!("ferry: {e:#}");
        std::process::exit(1);
    }
    if cli.command.enters_container() {
        if let Err(e) = ferry_runtime::sealed::ensure_sealed() {
            tracing::error!("re-executing from a sealed copy of the ferry binary: {e}");
            std::process::exit(1);
        }
    }
    let g = &cli.global;
    // runc's exec fails with 255, so its own errors never look like the process's exit code.
    let error_code = if matches!(cli.command, Command::Exec(_)) {
        255
    } else {
        1
    };
    let result = match cli.command {
        Command::Create(a) => lifecycle::create(g, a),
        Command::Start { id } => lifecycle::start(g, id),
        Command::Run(a) => lifecycle::run(g, a),
        Command::State { id } => lifecycle::state(g, id),
        Command::List(a) => lifecycle::list(g, a),
        Command::Kill(a) => lifecycle::kill(g, a),
        Command::Delete(a) => lifecycle::delete(g, a),
        Command::Exec(a) => lifecycle::exec(g, a),
        Command::Ps(a) => lifecycle::ps(g, a),
        Command::Pause { id } => lifecycle::pause(g, id),
        Command::Resume { id } => lifecycle::resume(g, id),
        Command::Update(a) => lifecycle::update(g, a),
        Command::Events(a) => lifecycle::events(g, a),
        Command::Features => lifecycle::features(),
        Command::Spec(a) => lifecycle::spec(g, a),
        Command::Checkpoint(a) => cr::checkpoint(g, a),
        Command::Restore(a) => cr::restore(g, a),
        Command::Mounts(args) => mounts::run(g, args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = error_message(&e);
            tracing::error!("{msg}");
            if cli.global.log.is_some() {
                eprintln!("ferry: {msg}");
            }
            std::process::exit(error_code);
        }
    }
}

/// An error and its causes on one line, each said once: ferry's runtime errors already spell
/// out their causes, which anyhow's `{:#}` would repeat. libcontainer's texts that name
/// their runtime `youki` are said of ferry.
fn error_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg.replace("if youki will", "if ferry will")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("inner failure")
        }
    }
    impl std::error::Error for Inner {}

    /// An error whose text already holds its cause's, as ferry's runtime errors do.
    #[derive(Debug)]
    struct Outer(Inner);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "doing it: {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_are_said_once() {
        let e = anyhow::Error::new(Outer(Inner)).context("deleting \"c\"");
        assert_eq!(error_message(&e), "deleting \"c\": doing it: inner failure");
        let e = anyhow::anyhow!("cannot allocate tty if youki will detach");
        assert_eq!(
            error_message(&e),
            "cannot allocate tty if ferry will detach"
        );
    }
}
